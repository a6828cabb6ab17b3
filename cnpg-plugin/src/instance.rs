//! What every call of the instance role shares: the settings from the environment, the log,
//! the Kubernetes client and the paths under the `/controller` volume.

use std::path::PathBuf;

use crate::config::Config;
use crate::kubernetes::Kubernetes;
use crate::log::Logger;

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

    /// `<controller root>/backup`: the `TMPDIR` of barman-cloud-backup.
    pub fn backup_dir(&self) -> PathBuf {
        self.config.controller_root.join("backup")
    }
}
