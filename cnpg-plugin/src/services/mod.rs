//! One module per CNPG-I service of the two roles (RestoreJobHooks is the restore role's). Each answers its `GetCapabilities` as
//! the plugin's instance role does. WAL Archive and Restore call the flows of
//! [`crate::wal`], Backup those of [`crate::backup`]; a flow call not written yet (metrics
//! collection) is refused with UNIMPLEMENTED.

pub mod backup;
pub mod identity;
pub mod metrics;
pub mod restore_job;
pub mod wal;

/// The status of a call this build does not carry out yet, naming the call and the object
/// it was asked about, so CloudNativePG's log says what was refused.
pub(crate) fn not_implemented(call: &str, object: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!(
        "{call} {object:?}: not implemented yet in this sidecar (issue #15, part 2)"
    ))
}
