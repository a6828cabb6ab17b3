//! barman-cloud-rs: a drop-in replacement for Barman's cloud tools.
//!
//! (crate docs are written once the flows exist)

pub mod catalog;
pub mod compress;
pub mod error;
pub mod layout;
