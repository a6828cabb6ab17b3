//! `RestoreJobHooks/Restore` (architecture §6): the recovery Job's sidecar bootstraps an
//! empty PGDATA from the recovery source's object store, step by step as the plugin:
//!
//! 1. Decode the Cluster; its recovery source (`bootstrap.recovery.source`) must be an
//!    external cluster read through this plugin, naming an ObjectStore. Read that store.
//! 2. When the new Cluster archives too (its own `barmanObjectName`), read that store and,
//!    unless turned off (`check_empty_wal_archive` false; from a CloudNativePG that does not
//!    send the field, the annotation `cnpg.io/skipEmptyWalArchiveCheck: enabled`), run
//!    `barman-cloud-check-wal-archive` on it: a new cluster must not archive over another
//!    one's WAL. The server name is the new Cluster's.
//! 3. `barman-cloud-backup-list --format json` on the recovery store, and the backup choice
//!    of [`choice`] for `bootstrap.recovery.recoveryTarget`. None fits: "no target backup
//!    found", naming the target.
//! 4. The begin-WAL probe: `barman-cloud-wal-restore` of the backup's `begin_wal` into
//!    `<controller>/recovery/test.wal`, deleted afterwards, so a backup whose WAL is missing
//!    fails here rather than after the data is down.
//! 5. `barman-cloud-restore` into `$PGDATA` with the plugin's argument vector.
//! 6. With `spec.walStorage`: `$PGDATA/pg_wal`'s content moves to the WAL volume and
//!    `pg_wal` becomes a symlink to it (nothing to do when the link is already there).
//! 7. The answer: the plugin's two lines of `restore_config`, no environment.
//!
//! Codes: the plugin returns bare errors (gRPC UNKNOWN); ours say what happened, as the WAL
//! flows do ([`crate::wal`]).

pub mod choice;
pub mod wal_storage;

use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;
use tonic::Code;

use crate::barman::catalog::{self, BarmanBackup};
use crate::barman::command::{self, BACKUP_LIST, CHECK_WAL_ARCHIVE, RESTORE, WAL_RESTORE};
use crate::barman::run::Ended;
use crate::barman::run::{self, Invocation, Stdout};
use crate::cluster::{Cluster, RecoveryTarget};
use crate::instance::{Instance, StoreError};
use crate::kubernetes;
use crate::log::Logger;
use crate::metadata::PLUGIN_NAME;
use crate::objectstore::ObjectStore;
use crate::proto::wal::RestoreRequest;

/// What CloudNativePG appends to `custom.conf`, byte for byte the plugin's: promote at the
/// recovery target, and fetch WAL through CloudNativePG's own `manager wal-restore` (its
/// path in the PostgreSQL container, and its log), which calls this sidecar's WAL/Restore.
pub const RESTORE_CONFIG: &str = "recovery_target_action = promote\n\
    restore_command = '/controller/manager wal-restore --log-destination \
    /controller/log/postgres.json %f %p'\n";

/// Why a Restore call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `cluster_definition` is not a Cluster's JSON.
    #[error(
        "decode the Cluster definition of the request: {0}; CloudNativePG sends the Cluster's JSON"
    )]
    ClusterDefinition(serde_json::Error),
    /// The recovery source is not read through this plugin, or names no store.
    #[error(
        "bootstrap Cluster {cluster:?} from a backup: its recovery source {source_name:?} \
         (bootstrap.recovery.source) is not an external cluster with a plugin entry named \
         {PLUGIN_NAME} whose parameters name an ObjectStore (barmanObjectName)"
    )]
    NoRecoveryStore {
        /// The Cluster's name.
        cluster: String,
        /// `bootstrap.recovery.source`, empty when there is none.
        source_name: String,
    },
    /// The sidecar was started without `PGDATA`.
    #[error(
        "restore a backup for Cluster {cluster:?}: PGDATA is not set in the sidecar's \
         environment; the plugin's operator copies it from the Job's container, export it \
         when running by hand"
    )]
    NoPgdata {
        /// The Cluster's name.
        cluster: String,
    },
    /// An ObjectStore cannot be read.
    #[error("read ObjectStore {name:?}: {source}")]
    ObjectStore {
        /// Its name.
        name: String,
        /// The API's answer.
        source: Box<kubernetes::Error>,
    },
    /// A store's credentials cannot be read.
    #[error("read the credentials of ObjectStore {store:?}: {source}")]
    Credentials {
        /// The store.
        store: String,
        /// The API's answer.
        source: Box<kubernetes::Error>,
    },
    /// A `barman-cloud-*` command could not be started.
    #[error(transparent)]
    Run(#[from] run::Error),
    /// The new Cluster's own archive already holds WAL.
    #[error(
        "check that ObjectStore {store:?} holds no WAL for server {server:?}: {CHECK_WAL_ARCHIVE} \
         {ended}; a new Cluster must not archive over another one's WAL (use another \
         serverName, or set the annotation cnpg.io/skipEmptyWalArchiveCheck: enabled)"
    )]
    NotEmpty {
        /// The new Cluster's store.
        store: String,
        /// Its server name.
        server: String,
        /// How the check ended.
        ended: Ended,
    },
    /// `barman-cloud-backup-list` failed.
    #[error(
        "list the backups of server {server:?} in ObjectStore {store:?}: {BACKUP_LIST} {ended}"
    )]
    List {
        /// The recovery store.
        store: String,
        /// The recovery server name.
        server: String,
        /// How it ended.
        ended: Ended,
    },
    /// Its JSON cannot be read.
    #[error("list the backups of server {server:?} in ObjectStore {store:?}: {source}")]
    Catalog {
        /// The recovery store.
        store: String,
        /// The recovery server name.
        server: String,
        /// What is wrong with the JSON.
        source: Box<catalog::Error>,
    },
    /// The recovery target cannot be read.
    #[error("choose the backup of Cluster {cluster:?}: {source}")]
    Target {
        /// The Cluster's name.
        cluster: String,
        /// What is wrong with the target.
        source: choice::Error,
    },
    /// No completed backup fits the target.
    #[error(
        "no target backup found for {target} among the {completed} completed backups of server \
         {server:?} in ObjectStore {store:?}; take a backup first, or change \
         bootstrap.recovery.recoveryTarget"
    )]
    NoBackup {
        /// The target, described.
        target: String,
        /// How many completed backups there are.
        completed: usize,
        /// The recovery server name.
        server: String,
        /// The recovery store.
        store: String,
    },
    /// The backup's first WAL is not in the archive (or cannot be fetched).
    #[error(
        "check that WAL {wal:?}, the first backup {backup_id:?} needs, is in ObjectStore \
         {store:?} (server {server:?}): {WAL_RESTORE} {ended}"
    )]
    FirstWal {
        /// The backup's `begin_wal`.
        wal: String,
        /// The backup.
        backup_id: String,
        /// The recovery store.
        store: String,
        /// The recovery server name.
        server: String,
        /// How it ended.
        ended: Ended,
    },
    /// The chosen backup names no first WAL.
    #[error("restore backup {backup_id:?}: barman-cloud-backup-list gives it no begin_wal")]
    NoBeginWal {
        /// The backup.
        backup_id: String,
    },
    /// `barman-cloud-restore` failed.
    #[error(
        "restore backup {backup_id:?} of server {server:?} from ObjectStore {store:?} into \
         {pgdata:?}: {RESTORE} {ended}"
    )]
    Restore {
        /// The backup.
        backup_id: String,
        /// The recovery server name.
        server: String,
        /// The recovery store.
        store: String,
        /// The data directory.
        pgdata: PathBuf,
        /// How it ended.
        ended: Ended,
    },
    /// `pg_wal` cannot be moved to the WAL volume.
    #[error("move pg_wal to the WAL volume (spec.walStorage): {0}")]
    WalStorage(#[from] wal_storage::Error),
    /// A file or directory cannot be written.
    #[error("{action} {path:?}: {source}")]
    File {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

impl Error {
    /// The gRPC code of the call's status.
    pub fn code(&self) -> Code {
        match self {
            Error::ClusterDefinition(_) | Error::Target { .. } => Code::InvalidArgument,
            Error::NoRecoveryStore { .. }
            | Error::NoPgdata { .. }
            | Error::NotEmpty { .. }
            | Error::NoBeginWal { .. } => Code::FailedPrecondition,
            Error::ObjectStore { source, .. } | Error::Credentials { source, .. } => source.code(),
            Error::NoBackup { .. } => Code::NotFound,
            Error::FirstWal { ended, .. } => ended.wal_restore_code(),
            // barman-cloud-restore and backup-list: 2 is a connectivity problem, worth a
            // retry; 1 (operation), 3 (command line), 4 (general) are not.
            Error::List { ended, .. } | Error::Restore { ended, .. } => match ended.code {
                Some(2) => Code::Unavailable,
                _ => Code::Internal,
            },
            Error::Catalog { .. } | Error::Run(_) | Error::File { .. } | Error::WalStorage(_) => {
                Code::Internal
            }
        }
    }
}

/// What a successful call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup restored.
    pub backup_id: String,
    /// Whether `pg_wal` was moved to the WAL volume.
    pub moved_wal: bool,
}

/// A store and its credentials' environment.
async fn store(
    instance: &Instance,
    name: &str,
) -> Result<(ObjectStore, Vec<(String, String)>), Error> {
    instance.store(name).await.map_err(|error| match error {
        StoreError::Read(source) => Error::ObjectStore {
            name: name.to_owned(),
            source: Box::new(source),
        },
        StoreError::Credentials(source) => Error::Credentials {
            store: name.to_owned(),
            source: Box::new(source),
        },
    })
}

/// Runs the flow for one request.
///
/// # Errors
/// [`Error`], with the gRPC code the call should end with.
pub async fn restore(instance: &Instance, request: &RestoreRequest) -> Result<Restored, Error> {
    let log = instance.log.named("restore");
    let cluster =
        Cluster::from_json(&request.cluster_definition).map_err(Error::ClusterDefinition)?;
    let cluster_name = cluster.metadata.name.clone();
    let settings = cluster.plugin_settings();
    let Some(recovery_name) = settings.recovery_barman_object_name.clone() else {
        return Err(Error::NoRecoveryStore {
            cluster: cluster_name,
            source_name: cluster
                .spec
                .bootstrap
                .as_ref()
                .and_then(|b| b.recovery.as_ref())
                .map(|r| r.source.clone())
                .unwrap_or_default(),
        });
    };
    let Some(pgdata) = instance.config.pgdata.clone() else {
        return Err(Error::NoPgdata {
            cluster: cluster_name,
        });
    };
    let recovery_server = settings.recovery_server_name.clone();
    let (recovery, recovery_env) = store(instance, &recovery_name).await?;

    // 2. The new Cluster's own archive must be empty.
    if let Some(own_name) = &settings.barman_object_name {
        let (own, own_env) = store(instance, own_name).await?;
        let check = request
            .check_empty_wal_archive
            .unwrap_or_else(|| !cluster.skips_empty_wal_archive_check());
        if check {
            log.info(
                "Checking the new Cluster's WAL archive is empty",
                &[
                    ("objectStore", json!(own_name)),
                    ("serverName", json!(settings.server_name)),
                ],
            );
            let finished = Invocation {
                program: CHECK_WAL_ARCHIVE,
                args: command::check_wal_archive(&own.spec.configuration, &settings.server_name),
                env: own_env,
            }
            .run(&log, Stdout::Log)
            .await?;
            if !finished.success() {
                return Err(Error::NotEmpty {
                    store: own_name.clone(),
                    server: settings.server_name.clone(),
                    ended: Ended::from(&finished),
                });
            }
        }
    }

    // 3. The backup.
    let configuration = &recovery.spec.configuration;
    log.info(
        "Recovering from external cluster",
        &[
            ("objectStore", json!(recovery_name)),
            ("serverName", json!(recovery_server)),
        ],
    );
    let listed = Invocation {
        program: BACKUP_LIST,
        args: command::backup_list(configuration, &recovery_server),
        env: recovery_env.clone(),
    }
    .run(&log, Stdout::Keep)
    .await?;
    if !listed.success() {
        return Err(Error::List {
            store: recovery_name,
            server: recovery_server,
            ended: Ended::from(&listed),
        });
    }
    let backups = BarmanBackup::from_list(&listed.stdout).map_err(|source| Error::Catalog {
        store: recovery_name.clone(),
        server: recovery_server.clone(),
        source: Box::new(source),
    })?;
    log.info(
        "Downloaded backup catalog",
        &[("backups", short_catalog(&backups))],
    );
    let target = cluster
        .spec
        .bootstrap
        .as_ref()
        .and_then(|b| b.recovery.as_ref())
        .and_then(|r| r.recovery_target.as_ref());
    let backup = choice::choose(&backups, target)
        .map_err(|source| Error::Target {
            cluster: cluster_name.clone(),
            source,
        })?
        .ok_or_else(|| Error::NoBackup {
            target: describe(target),
            completed: backups.iter().filter(|b| b.is_done()).count(),
            server: recovery_server.clone(),
            store: recovery_name.clone(),
        })?;
    log.info(
        "Target backup found",
        &[
            ("backupID", json!(backup.backup_id)),
            ("beginWal", json!(backup.begin_wal)),
            ("endTime", json!(backup.ended().map(|t| t.to_rfc3339()))),
        ],
    );

    // 4. Its first WAL must be in the archive.
    let Some(begin_wal) = backup.begin_wal.clone().filter(|w| !w.is_empty()) else {
        return Err(Error::NoBeginWal {
            backup_id: backup.backup_id.clone(),
        });
    };
    let probe = instance
        .config
        .controller_root
        .join("recovery")
        .join("test.wal");
    let probed = probe_first_wal(
        &log,
        &probe,
        configuration,
        &recovery_server,
        &begin_wal,
        &recovery_env,
    )
    .await;
    remove_probe(&log, &probe);
    let finished = probed?;
    if !finished.success() {
        return Err(Error::FirstWal {
            wal: begin_wal,
            backup_id: backup.backup_id.clone(),
            store: recovery_name,
            server: recovery_server,
            ended: Ended::from(&finished),
        });
    }

    // 5. The data directory.
    log.info(
        "Starting barman-cloud-restore",
        &[
            ("backupID", json!(backup.backup_id)),
            ("pgdata", json!(pgdata)),
        ],
    );
    let restored = Invocation {
        program: RESTORE,
        args: command::restore(
            configuration,
            &recovery_server,
            &backup.backup_id,
            &pgdata.to_string_lossy(),
        ),
        env: recovery_env,
    }
    .run(&log, Stdout::Log)
    .await?;
    if !restored.success() {
        return Err(Error::Restore {
            backup_id: backup.backup_id.clone(),
            server: recovery_server,
            store: recovery_name,
            pgdata,
            ended: Ended::from(&restored),
        });
    }
    log.info(
        "Restore completed",
        &[("backupID", json!(backup.backup_id))],
    );

    // 6. The WAL volume.
    let moved_wal = if cluster.spec.wal_storage.is_some() {
        wal_storage::move_pg_wal(&log, &pgdata, &instance.config.pg_wal_volume)?
    } else {
        false
    };
    log.info(
        "sending restore response",
        &[("config", json!(RESTORE_CONFIG))],
    );
    Ok(Restored {
        backup_id: backup.backup_id.clone(),
        moved_wal,
    })
}

/// `barman-cloud-wal-restore … BEGIN_WAL <probe>` (the probe's directory created first).
async fn probe_first_wal(
    log: &Logger,
    probe: &Path,
    configuration: &crate::objectstore::BarmanObjectStoreConfiguration,
    server: &str,
    begin_wal: &str,
    env: &[(String, String)],
) -> Result<run::Finished, Error> {
    if let Some(parent) = probe.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::File {
            action: "create the recovery scratch directory",
            path: parent.to_owned(),
            source,
        })?;
    }
    Ok(Invocation {
        program: WAL_RESTORE,
        args: command::wal_restore(configuration, server, begin_wal, &probe.to_string_lossy()),
        env: env.to_vec(),
    }
    .run(log, Stdout::Log)
    .await?)
}

/// Deletes the probe's file; a failure is only logged, as in the plugin.
fn remove_probe(log: &Logger, probe: &Path) {
    match std::fs::remove_file(probe) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => log.warning(
            "Could not delete the temporary WAL file",
            &[("path", json!(probe)), ("error", json!(error.to_string()))],
        ),
    }
}

/// The catalog as the plugin logs it: ID, start and end of each backup.
fn short_catalog(backups: &[BarmanBackup]) -> serde_json::Value {
    backups
        .iter()
        .map(|b| {
            json!({
                "backupID": b.backup_id,
                "startTime": b.started().map(|t| t.to_rfc3339()),
                "endTime": b.ended().map(|t| t.to_rfc3339()),
            })
        })
        .collect()
}

/// The recovery target in words, for the error that none fits.
fn describe(target: Option<&RecoveryTarget>) -> String {
    let Some(target) = target else {
        return "no recovery target (the latest backup)".to_owned();
    };
    let mut parts = Vec::new();
    for (field, value) in [
        ("backupID", &target.backup_id),
        ("targetTime", &target.target_time),
        ("targetLSN", &target.target_lsn),
        ("targetTLI", &target.target_tli),
    ] {
        if !value.is_empty() {
            parts.push(format!("{field} {value:?}"));
        }
    }
    if parts.is_empty() {
        "an empty recoveryTarget (the latest backup)".to_owned()
    } else {
        format!("recoveryTarget {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_config_is_the_plugins_two_lines() {
        assert_eq!(
            RESTORE_CONFIG,
            "recovery_target_action = promote\nrestore_command = '/controller/manager \
             wal-restore --log-destination /controller/log/postgres.json %f %p'\n"
        );
        assert_eq!(RESTORE_CONFIG.lines().count(), 2);
    }

    #[test]
    fn the_target_is_named_when_no_backup_fits() {
        let target = RecoveryTarget {
            target_time: "2026-12-01 01:00:00".into(),
            target_tli: "2".into(),
            ..RecoveryTarget::default()
        };
        let error = Error::NoBackup {
            target: describe(Some(&target)),
            completed: 3,
            server: "pg".into(),
            store: "origin".into(),
        };
        assert_eq!(error.code(), Code::NotFound);
        assert_eq!(
            error.to_string(),
            "no target backup found for recoveryTarget targetTime \"2026-12-01 01:00:00\", \
             targetTLI \"2\" among the 3 completed backups of server \"pg\" in ObjectStore \
             \"origin\"; take a backup first, or change bootstrap.recovery.recoveryTarget"
        );
        assert_eq!(describe(None), "no recovery target (the latest backup)");
        assert_eq!(
            describe(Some(&RecoveryTarget::default())),
            "an empty recoveryTarget (the latest backup)"
        );
    }
}
