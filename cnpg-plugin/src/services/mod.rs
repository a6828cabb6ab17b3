//! One module per CNPG-I service of the two roles (RestoreJobHooks is the restore role's). Each answers its `GetCapabilities` as
//! the plugin's instance role does. WAL Archive and Restore call the flows of
//! [`crate::wal`], Backup those of [`crate::backup`], Metrics' Collect reads the
//! ObjectStore's status.

pub mod backup;
pub mod identity;
pub mod metrics;
pub mod restore_job;
pub mod wal;
