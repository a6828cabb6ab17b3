//! barman-cloud-rs: a drop-in replacement for Barman's cloud tools.
//!
//! (crate docs are written once the flows exist)

pub mod backup;
pub mod catalog;
pub mod cli;
pub mod compress;
pub mod durable;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod layout;
pub mod pg;
pub mod progress;
pub mod redact;
pub mod restore;
pub mod retention;
pub mod storage;
pub mod wal;
