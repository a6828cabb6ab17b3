//! The Kubernetes API as the instance sidecar uses it: GET of ObjectStores and Secrets in the
//! Cluster's namespace (cached 10 s, as the plugin's client), and PUT of an ObjectStore's
//! status with its `resourceVersion`, re-read and retried on a 409 conflict.
//!
//! The client is made on first use from a kubeconfig (`KUBECONFIG`, for tests and runs by
//! hand) or the Pod's in-cluster ServiceAccount, so the sidecar answers the CNPG-I handshake
//! and the startup probe even before the API is reachable.

use crate::objectstore::{ObjectStore, RecoveryWindow, SecretKeySelector};

/// Why a Kubernetes call failed. Each message names the object and what to check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until the client is written (issue #15).
    #[error("Kubernetes access is not implemented yet")]
    NotImplemented,
}

impl Error {
    /// True when the API refused the call (403): the plugin's operator may not have
    /// reconciled the Role for a new Secret or store yet.
    pub fn is_forbidden(&self) -> bool {
        false
    }
}

/// The sidecar's Kubernetes client, scoped to the Cluster's namespace.
#[derive(Debug)]
pub struct Kubernetes {
    namespace: String,
}

impl Kubernetes {
    /// A client for `namespace`; nothing is contacted yet.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    /// The namespace every object is read from.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The ObjectStore `name` (from the 10 s cache when read recently).
    ///
    /// # Errors
    /// When it does not exist, cannot be read, or is not an ObjectStore.
    pub async fn object_store(&self, name: &str) -> Result<ObjectStore, Error> {
        let _ = name;
        Err(Error::NotImplemented)
    }

    /// The value of one key of a Secret (from the 10 s cache when read recently).
    ///
    /// # Errors
    /// When the Secret does not exist, cannot be read, or has no such key.
    pub async fn secret_value(&self, selector: &SecretKeySelector) -> Result<Vec<u8>, Error> {
        let _ = selector;
        Err(Error::NotImplemented)
    }

    /// Applies `change` to `status.serverRecoveryWindow[server]` of the ObjectStore `store`
    /// and PUTs the status with the object's `resourceVersion`; on a 409 the object is read
    /// again and `change` applied again.
    ///
    /// # Errors
    /// When the store cannot be read or the PUT keeps failing.
    pub async fn update_recovery_window(
        &self,
        store: &str,
        server: &str,
        change: impl Fn(&mut RecoveryWindow) + Send + Sync,
    ) -> Result<(), Error> {
        let _ = (store, server, change);
        Err(Error::NotImplemented)
    }
}
