//! An ObjectStore's credentials → the environment of the `barman-cloud-*` commands, exactly
//! as the plugin sets it (architecture §7): AWS keys, region and session token, Azure
//! connection string, account, key or SAS token, the GCS key written to a 0600 file, and the
//! endpoint's CA bundle.

use std::path::Path;

use crate::kubernetes::{self, Kubernetes};
use crate::objectstore::ObjectStore;

/// The variables to add to the sidecar's own environment for one store's commands.
///
/// # Errors
/// When a referenced Secret or key cannot be read, or the store has no credentials block.
pub async fn environment(
    kubernetes: &Kubernetes,
    store: &ObjectStore,
    controller_root: &Path,
) -> Result<Vec<(String, String)>, kubernetes::Error> {
    let _ = (kubernetes, store, controller_root);
    Err(kubernetes::Error::NotImplemented)
}
