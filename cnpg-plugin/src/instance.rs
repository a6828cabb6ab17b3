//! What every call of the instance role shares: the settings from the environment, the log,
//! the Kubernetes client and the paths under the `/controller` volume.

use std::path::PathBuf;

use crate::config::Config;
use crate::credentials;
use crate::kubernetes::{self, Kubernetes};
use crate::log::Logger;
use crate::objectstore::ObjectStore;

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
    /// When the store, a Secret or a key cannot be read.
    pub async fn store(
        &self,
        name: &str,
    ) -> Result<(ObjectStore, Vec<(String, String)>), kubernetes::Error> {
        let store = self.kubernetes.object_store(name).await?;
        let env = credentials::environment(&self.kubernetes, &store, &self.config.controller_root)
            .await?;
        Ok((store, env))
    }

    /// `<controller root>/backup`: the `TMPDIR` of barman-cloud-backup.
    pub fn backup_dir(&self) -> PathBuf {
        self.config.controller_root.join("backup")
    }
}
