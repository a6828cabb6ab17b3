//! Library errors.
