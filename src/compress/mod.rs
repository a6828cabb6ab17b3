//! Compression: one table mapping each codec to its flag and object suffix.
