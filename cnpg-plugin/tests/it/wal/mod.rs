//! The WAL flows end to end (issue #15, Archive and Restore): PostgreSQL 15 runs the CNPG
//! stand-in as its `archive_command` and `restore_command`, the stand-in calls the real
//! `manager instance` over CNPG-I, and the sidecar runs our real `barman-cloud-*` binaries
//! against the S3 emulator, reading its ObjectStores and Secret from the Kubernetes API
//! stand-in. The bad-input and Restore tests call the sidecar directly, as the stand-in does.
//! The restore role (issue #16, [`bootstrap`]) uses the same pieces with `manager restore`.

mod bootstrap;
pub(crate) mod postgres;
mod providers;
mod refusals;
pub(crate) mod replay;
mod replica;
mod restore;
pub(crate) mod rig;
