//! The WAL flows of the instance role: archive a segment (and other ready ones) and restore
//! one (and prefetch the next ones into the spool).
