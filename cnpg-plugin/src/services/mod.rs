//! One module per CNPG-I service of the instance role. Each answers its `GetCapabilities` as
//! the plugin's instance role does; the flow calls (WAL Archive and Restore, Backup, metrics
//! collection) come in later parts of issue #15 and are refused with UNIMPLEMENTED until then.

pub mod backup;
pub mod identity;
pub mod metrics;
pub mod wal;

/// The status of a call this build does not carry out yet, naming the call and the object
/// it was asked about, so CloudNativePG's log says what was refused.
pub(crate) fn not_implemented(call: &str, object: &str) -> tonic::Status {
    tonic::Status::unimplemented(format!(
        "{call} {object:?}: not implemented yet in this sidecar (issue #15, part 2)"
    ))
}
