//! What every call of the instance role shares: the settings from the environment, the log,
//! the Kubernetes client and the paths under the `/controller` volume.

use std::path::PathBuf;

use crate::config::Config;
use crate::credentials;
use crate::kubernetes::{self, Kubernetes};
use crate::log::Logger;
use crate::objectstore::ObjectStore;

/// Which read of [`Instance::store`] failed.
#[derive(Debug)]
pub enum StoreError {
    /// The ObjectStore itself.
    Read(kubernetes::Error),
    /// Its credentials: a Secret, a key, the GCS key file.
    Credentials(kubernetes::Error),
}

impl StoreError {
    /// The API's error, for a flow that words both reads alike.
    pub fn into_source(self) -> kubernetes::Error {
        match self {
            StoreError::Read(source) | StoreError::Credentials(source) => source,
        }
    }
}

/// The state of a running `manager instance`, shared by the services.
#[derive(Debug)]
pub struct Instance {
    /// The sidecar's settings.
    pub config: Config,
    /// The sidecar's log; the services name their own loggers from it.
    pub log: Logger,
    /// The API client, scoped to the Cluster's namespace.
    pub kubernetes: Kubernetes,
}

impl Instance {
    /// The instance role's state for `config`.
    pub fn new(config: Config, log: Logger) -> Self {
        let kubernetes = Kubernetes::new(&config.namespace);
        Self {
            config,
            log,
            kubernetes,
        }
    }

    /// The ObjectStore `name` and the variables its commands need on top of the sidecar's
    /// environment (credentials, CA bundle), as every flow starts.
    ///
    /// # Errors
    /// [`StoreError`]: which of the two reads failed, for the flow to word its message.
    pub async fn store(
        &self,
        name: &str,
    ) -> Result<(ObjectStore, Vec<(String, String)>), StoreError> {
        let store = self
            .kubernetes
            .object_store(name)
            .await
            .map_err(StoreError::Read)?;
        let env = credentials::environment(&self.kubernetes, &store, &self.config.controller_root)
            .await
            .map_err(StoreError::Credentials)?;
        Ok((store, env))
    }

    /// `<controller root>/backup`: the `TMPDIR` of barman-cloud-backup.
    pub fn backup_dir(&self) -> PathBuf {
        self.config.controller_root.join("backup")
    }
}
