//! The settings the plugin's operator passes to the sidecar as environment variables (the
//! instance Pod's `NAMESPACE`, `CLUSTER_NAME`, `POD_NAME`, `PGDATA`, `SPOOL_DIRECTORY`, and
//! `CUSTOM_CNPG_GROUP`/`CUSTOM_CNPG_VERSION` for a CloudNativePG built under another API
//! group). Read once at start, as the plugin does with viper; an empty value counts as
//! missing, as there.

use std::path::PathBuf;

use crate::Error;

/// Which sidecar role is starting: each requires a different subset of the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The sidecar of every instance Pod (`manager instance`).
    Instance,
    /// The sidecar of the recovery Job (`manager restore`), which has no cluster name.
    Restore,
}

impl Role {
    /// The subcommand's name, as logged.
    pub fn name(self) -> &'static str {
        match self {
            Role::Instance => "instance",
            Role::Restore => "restore",
        }
    }
}

/// The sidecar's settings, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The Cluster's namespace: every object the sidecar reads is in it.
    pub namespace: String,
    /// The Cluster's name (empty for the restore role, which does not need it).
    pub cluster_name: String,
    /// This Pod's name: the instance name, and a Backup's `instance_id`.
    pub pod_name: String,
    /// PostgreSQL's data directory, when the Pod sets it (CloudNativePG does); WAL paths
    /// from PostgreSQL are checked against it.
    pub pgdata: Option<PathBuf>,
    /// Where prefetched WAL files and archive markers are kept.
    pub spool_directory: PathBuf,
    /// The API group of CloudNativePG's resources when not `postgresql.cnpg.io`.
    pub custom_cnpg_group: Option<String>,
    /// The API version of CloudNativePG's resources when not `v1`.
    pub custom_cnpg_version: Option<String>,
    /// The scratch volume CloudNativePG shares with the sidecar (`/controller`): `backup/`
    /// (barman-cloud-backup's `TMPDIR`), `recovery/`, the GCS credentials file. Ours, not
    /// the plugin's: [`CONTROLLER_DIR_VARIABLE`] moves it for tests and other layouts.
    pub controller_root: PathBuf,
    /// Where the restore role moves `pg_wal` when the Cluster has `walStorage`: `pg_wal` in
    /// the WAL volume CloudNativePG mounts at `/var/lib/postgresql/wal`. Ours, not the
    /// plugin's (a constant there): [`PG_WAL_VOLUME_VARIABLE`] moves it for tests.
    pub pg_wal_volume: PathBuf,
}

/// The variable that overrides [`DEFAULT_CONTROLLER_ROOT`].
pub const CONTROLLER_DIR_VARIABLE: &str = "BARMAN_CLOUD_CONTROLLER_DIR";

/// Where CloudNativePG mounts its scratch volume in the instance Pod.
pub const DEFAULT_CONTROLLER_ROOT: &str = "/controller";

/// The variable that overrides [`DEFAULT_PG_WAL_VOLUME`].
pub const PG_WAL_VOLUME_VARIABLE: &str = "BARMAN_CLOUD_PG_WAL_VOLUME";

/// `pg_wal` inside the WAL volume, when the Cluster has one.
pub const DEFAULT_PG_WAL_VOLUME: &str = "/var/lib/postgresql/wal/pg_wal";

impl Config {
    /// Reads the settings from the process environment.
    ///
    /// # Errors
    /// [`Error::MissingSetting`] for the first required setting that is unset or empty.
    pub fn from_env(role: Role) -> Result<Self, Error> {
        Self::from_lookup(role, |name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a table in tests). The
    /// required ones are checked in the plugin's order, so the first missing one named is
    /// the one the plugin would name.
    ///
    /// # Errors
    /// [`Error::MissingSetting`] for the first required setting that is unset or empty.
    pub fn from_lookup(role: Role, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |variable: &str| lookup(variable).filter(|value| !value.is_empty());
        let require = |setting: &'static str, variable: &'static str| {
            get(variable).ok_or(Error::MissingSetting { setting, variable })
        };
        let namespace = require("namespace", "NAMESPACE")?;
        let cluster_name = match role {
            Role::Instance => require("cluster-name", "CLUSTER_NAME")?,
            Role::Restore => get("CLUSTER_NAME").unwrap_or_default(),
        };
        let pod_name = require("pod-name", "POD_NAME")?;
        let spool_directory = require("spool-directory", "SPOOL_DIRECTORY")?.into();
        Ok(Self {
            namespace,
            cluster_name,
            pod_name,
            pgdata: get("PGDATA").map(PathBuf::from),
            spool_directory,
            custom_cnpg_group: get("CUSTOM_CNPG_GROUP"),
            custom_cnpg_version: get("CUSTOM_CNPG_VERSION"),
            controller_root: get(CONTROLLER_DIR_VARIABLE)
                .unwrap_or_else(|| DEFAULT_CONTROLLER_ROOT.to_owned())
                .into(),
            pg_wal_volume: get(PG_WAL_VOLUME_VARIABLE)
                .unwrap_or_else(|| DEFAULT_PG_WAL_VOLUME.to_owned())
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: [(&str, &str); 7] = [
        ("NAMESPACE", "default"),
        ("CLUSTER_NAME", "pg"),
        ("POD_NAME", "pg-1"),
        ("PGDATA", "/var/lib/postgresql/data/pgdata"),
        ("SPOOL_DIRECTORY", "/controller/wal-restore-spool"),
        ("CUSTOM_CNPG_GROUP", "postgresql.example.com"),
        ("CUSTOM_CNPG_VERSION", "v2"),
    ];

    /// `FULL` with `unset` removed and `empty` set to "".
    fn env(unset: &[&str], empty: &[&str]) -> impl Fn(&str) -> Option<String> {
        let table: Vec<(String, String)> = FULL
            .iter()
            .filter(|(name, _)| !unset.contains(name))
            .map(|&(name, value)| {
                let value = if empty.contains(&name) { "" } else { value };
                (name.to_owned(), value.to_owned())
            })
            .collect();
        move |name| {
            table
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn reads_every_setting() {
        let config = Config::from_lookup(Role::Instance, env(&[], &[])).unwrap();
        assert_eq!(
            config,
            Config {
                namespace: "default".into(),
                cluster_name: "pg".into(),
                pod_name: "pg-1".into(),
                pgdata: Some("/var/lib/postgresql/data/pgdata".into()),
                spool_directory: "/controller/wal-restore-spool".into(),
                custom_cnpg_group: Some("postgresql.example.com".into()),
                custom_cnpg_version: Some("v2".into()),
                controller_root: "/controller".into(),
                pg_wal_volume: "/var/lib/postgresql/wal/pg_wal".into(),
            }
        );
    }

    #[test]
    fn optional_settings_may_be_missing() {
        let optional = ["PGDATA", "CUSTOM_CNPG_GROUP", "CUSTOM_CNPG_VERSION"];
        let config = Config::from_lookup(Role::Instance, env(&optional, &[])).unwrap();
        assert_eq!(config.pgdata, None);
        assert_eq!(config.custom_cnpg_group, None);
        assert_eq!(config.custom_cnpg_version, None);
        let config = Config::from_lookup(Role::Instance, env(&[], &optional)).unwrap();
        assert_eq!(config.pgdata, None);
        assert_eq!(config.custom_cnpg_group, None);
    }

    #[test]
    fn the_controller_root_can_be_moved() {
        let moved = |lookup: &dyn Fn(&str) -> Option<String>| {
            Config::from_lookup(Role::Instance, |name| {
                if name == CONTROLLER_DIR_VARIABLE {
                    Some("/tmp/ctl".to_owned())
                } else {
                    lookup(name)
                }
            })
            .unwrap()
            .controller_root
        };
        assert_eq!(moved(&env(&[], &[])), PathBuf::from("/tmp/ctl"));
        let wal = Config::from_lookup(Role::Restore, |name| {
            (name == PG_WAL_VOLUME_VARIABLE)
                .then(|| "/tmp/wal/pg_wal".to_owned())
                .or_else(|| env(&[], &[])(name))
        })
        .unwrap();
        assert_eq!(wal.pg_wal_volume, PathBuf::from("/tmp/wal/pg_wal"));
    }

    fn missing(role: Role, unset: &[&str], empty: &[&str]) -> String {
        Config::from_lookup(role, env(unset, empty))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn each_required_setting_is_named_when_missing() {
        for (setting, variable) in [
            ("namespace", "NAMESPACE"),
            ("cluster-name", "CLUSTER_NAME"),
            ("pod-name", "POD_NAME"),
            ("spool-directory", "SPOOL_DIRECTORY"),
        ] {
            let message = missing(Role::Instance, &[variable], &[]);
            assert_eq!(
                message,
                format!(
                    "read required setting \"{setting}\": environment variable {variable} is \
                     not set; the plugin's operator sets it in the sidecar, export it when \
                     running by hand"
                )
            );
            assert!(!message.contains('\n'));
            // Empty is missing, as with viper's GetString.
            assert_eq!(missing(Role::Instance, &[], &[variable]), message);
        }
    }

    #[test]
    fn the_first_missing_setting_in_the_plugins_order_is_named() {
        let message = missing(Role::Instance, &["SPOOL_DIRECTORY", "POD_NAME"], &[]);
        assert!(message.contains("POD_NAME"), "{message}");
    }

    #[test]
    fn the_restore_role_needs_no_cluster_name() {
        let config = Config::from_lookup(Role::Restore, env(&["CLUSTER_NAME"], &[])).unwrap();
        assert_eq!(config.cluster_name, "");
        let message = missing(Role::Restore, &["NAMESPACE"], &[]);
        assert!(message.contains("NAMESPACE"), "{message}");
    }
}
