//! `Backup/Backup`: a base backup of this instance with `barman-cloud-backup`, as the plugin
//! takes it (architecture §5.3): the name `backup-<local time>`, `TMPDIR` in the
//! `/controller` volume, then `barman-cloud-backup-show` for the result CloudNativePG
//! copies into the Backup object, and `barman-cloud-backup-list` for the recovery window in
//! the ObjectStore's status.
//!
//! Unlike the plugin, the status is re-read and retried on a 409 after a successful backup
//! too: a backup runs for hours, and the object the call started with is stale by then.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Local, SecondsFormat, Utc};
use serde_json::json;

use crate::barman::catalog::{self, BarmanBackup};
use crate::barman::command;
use crate::barman::run::{self, Ended, Invocation, Stdout};
use crate::cluster::Cluster;
use crate::instance::{Instance, StoreError};
use crate::kubernetes;
use crate::log::Logger;
use crate::metadata::{DISPLAY_NAME, PLUGIN_NAME, PLUGIN_VERSION};
use crate::objectstore::RecoveryWindow;
use crate::proto::backup::{BackupRequest, BackupResult};

/// Why a Backup call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request's `cluster_definition` is not a Cluster.
    #[error("read the Cluster definition of the backup request: {0}")]
    Cluster(#[source] serde_json::Error),
    /// The Cluster does not name an ObjectStore for this plugin.
    #[error(
        "find the ObjectStore of Cluster {cluster:?}: its spec.plugins entry {PLUGIN_NAME:?} \
         has no barmanObjectName parameter; add one naming the ObjectStore to back up to"
    )]
    NoObjectStore {
        /// The Cluster's name.
        cluster: String,
    },
    /// The ObjectStore, a Secret or a key could not be read.
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::Error),
    /// `<controller>/backup` could not be created.
    #[error("create the backup temporary directory {path:?}: {source}")]
    TemporaryDirectory {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A command could not be run at all.
    #[error(transparent)]
    Run(#[from] run::Error),
    /// A command exited non-zero.
    #[error("{program} {subject}: {ended}{hint}")]
    Failed {
        /// The program.
        program: &'static str,
        /// What it was asked (`took backup "backup-…"`).
        subject: String,
        /// Its exit code and last stderr line.
        ended: Ended,
        /// The plugin's hint for barman-cloud-backup's exit 3, else empty.
        hint: &'static str,
    },
    /// backup-show or backup-list printed something unreadable.
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
}

impl Error {
    /// The gRPC status CloudNativePG gets. The plugin returns plain errors (UNKNOWN); ours
    /// are the WAL calls' codes: a request or configuration to fix is INVALID_ARGUMENT or
    /// FAILED_PRECONDITION, a failed command UNKNOWN with its last line.
    pub fn status(&self) -> tonic::Status {
        let code = match self {
            Error::Kubernetes(error) => error.code(),
            Error::Cluster(_) => tonic::Code::InvalidArgument,
            Error::NoObjectStore { .. } => tonic::Code::FailedPrecondition,
            _ => tonic::Code::Unknown,
        };
        tonic::Status::new(code, self.to_string())
    }
}

/// Takes the backup the request asks for and returns what CloudNativePG records.
///
/// # Errors
/// [`Error`] for the first step that fails; a failed barman-cloud-backup also sets
/// `lastFailedBackupTime` in the ObjectStore's status.
pub async fn take(instance: &Instance, request: &BackupRequest) -> Result<BackupResult, Error> {
    let log = instance.log.named("backup");
    let cluster = Cluster::from_json(&request.cluster_definition).map_err(Error::Cluster)?;
    let settings = cluster.plugin_settings();
    let store_name = settings
        .barman_object_name
        .clone()
        .ok_or_else(|| Error::NoObjectStore {
            cluster: cluster.metadata.name.clone(),
        })?;
    let server = settings.server_name.as_str();
    let (store, mut env) = instance
        .store(&store_name)
        .await
        .map_err(StoreError::into_source)?;
    let configuration = &store.spec.configuration;
    let tmpdir = instance.backup_dir();
    std::fs::create_dir_all(&tmpdir).map_err(|source| Error::TemporaryDirectory {
        path: tmpdir.clone(),
        source,
    })?;
    env.push(("TMPDIR".to_owned(), tmpdir.display().to_string()));

    let name = backup_name(Local::now());
    log.info(
        "Starting backup",
        &[
            ("backupName", json!(name)),
            ("objectStore", json!(store_name)),
        ],
    );
    let backup = Invocation {
        program: command::BACKUP,
        args: command::backup(configuration, &name, server),
        env: env.clone(),
    };
    let finished = backup.run(&log, Stdout::Log).await?;
    if !finished.success() {
        let failure = failed(&backup, &finished, format!("took backup {name:?}"));
        log.error(
            "Backup failed",
            &[
                ("backupName", json!(name)),
                ("error", json!(failure.to_string())),
            ],
        );
        record_failure(instance, &log, &store_name, server).await;
        return Err(failure);
    }

    let show = Invocation {
        program: command::BACKUP_SHOW,
        args: command::backup_show(configuration, server, &name),
        env: env.clone(),
    };
    let executed = BarmanBackup::from_show(&query(&show, &log, &name).await?)?;
    log.info("Backup completed", &[("backup", json!(executed.backup_id))]);

    let list = Invocation {
        program: command::BACKUP_LIST,
        args: command::backup_list(configuration, server),
        env,
    };
    let catalog = BarmanBackup::from_list(&query(&list, &log, server).await?)?;
    let (first, last) = catalog::recovery_window(&catalog);
    let updated = instance
        .kubernetes
        .update_recovery_window(&store_name, server, |window: &mut RecoveryWindow| {
            window.first_recoverability_point = first.map(api_time);
            window.last_successful_backup_time = last.map(api_time);
        })
        .await;
    if let Err(error) = updated {
        // As the plugin: the backup is taken and recorded by CloudNativePG either way.
        log.error(
            "Could not update the recovery window in the ObjectStore status, skipping",
            &[
                ("objectStore", json!(store_name)),
                ("error", json!(error.to_string())),
            ],
        );
    }
    Ok(result(
        &executed,
        &instance.config.pod_name,
        &cluster.metadata.uid,
    ))
}

/// `backup-YYYYMMDDHHMMSS` in the sidecar's local time, the plugin's name for each backup.
fn backup_name(now: DateTime<Local>) -> String {
    format!("backup-{}", now.format("%Y%m%d%H%M%S"))
}

/// A time as the Kubernetes API stores it (RFC 3339, seconds, `Z`).
fn api_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Runs a JSON query command and returns its stdout; a non-zero exit is an error.
async fn query(invocation: &Invocation, log: &Logger, subject: &str) -> Result<Vec<u8>, Error> {
    let finished = invocation.run(log, Stdout::Keep).await?;
    if finished.success() {
        Ok(finished.stdout)
    } else {
        Err(failed(invocation, &finished, format!("for {subject:?}")))
    }
}

fn failed(invocation: &Invocation, finished: &run::Finished, subject: String) -> Error {
    let hint = match finished.code {
        Some(3) if invocation.program == command::BACKUP => {
            " (invalid arguments: check the ObjectStore's data.additionalCommandArgs)"
        }
        _ => "",
    };
    Error::Failed {
        program: invocation.program,
        subject,
        ended: Ended::from(finished),
        hint,
    }
}

/// Sets `lastFailedBackupTime`; a failure to do so is logged, the backup's error is what
/// the call returns.
async fn record_failure(instance: &Instance, log: &Logger, store: &str, server: &str) {
    let now = api_time(Utc::now());
    let updated = instance
        .kubernetes
        .update_recovery_window(store, server, |window: &mut RecoveryWindow| {
            window.last_failed_backup_time = Some(now.clone());
        })
        .await;
    if let Err(error) = updated {
        log.error(
            "Could not record the failed backup in the ObjectStore status, skipping",
            &[
                ("objectStore", json!(store)),
                ("error", json!(error.to_string())),
            ],
        );
    }
}

/// The `BackupResult` field for field as the plugin fills it: no label or tablespace map,
/// `online` always, the Pod as instance, and the metadata retention later matches on.
fn result(executed: &BarmanBackup, pod_name: &str, cluster_uid: &str) -> BackupResult {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let seconds = |time: Option<DateTime<Utc>>| time.map_or(0, |t| t.timestamp());
    let metadata = HashMap::from([
        (
            "timeline".to_owned(),
            executed.timeline.unwrap_or_default().to_string(),
        ),
        ("version".to_owned(), PLUGIN_VERSION.to_owned()),
        ("name".to_owned(), PLUGIN_NAME.to_owned()),
        ("displayName".to_owned(), DISPLAY_NAME.to_owned()),
        ("clusterUID".to_owned(), cluster_uid.to_owned()),
        ("pluginName".to_owned(), PLUGIN_NAME.to_owned()),
    ]);
    BackupResult {
        backup_id: executed.backup_id.clone(),
        backup_name: text(&executed.backup_name),
        started_at: seconds(executed.started()),
        stopped_at: seconds(executed.ended()),
        begin_wal: text(&executed.begin_wal),
        end_wal: text(&executed.end_wal),
        begin_lsn: text(&executed.begin_xlog),
        end_lsn: text(&executed.end_xlog),
        backup_label_file: Vec::new(),
        tablespace_map_file: Vec::new(),
        instance_id: pod_name.to_owned(),
        online: true,
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_name_is_the_local_time_compact() {
        let now = Local.with_ymd_and_hms(2026, 12, 2, 7, 8, 9).unwrap();
        assert_eq!(backup_name(now), "backup-20261202070809");
    }

    #[test]
    fn the_result_is_filled_as_the_plugin_fills_it() {
        let executed = BarmanBackup {
            backup_id: "20261202T070809".into(),
            backup_name: Some("backup-20261202070809".into()),
            begin_time_iso: Some("2026-12-02T07:08:09+00:00".into()),
            end_time_iso: Some("2026-12-02T07:08:19+00:00".into()),
            begin_wal: Some("000000010000000000000004".into()),
            end_wal: Some("000000010000000000000005".into()),
            begin_xlog: Some("0/4000028".into()),
            end_xlog: Some("0/5000100".into()),
            timeline: Some(1),
            ..BarmanBackup::default()
        };
        let result = result(&executed, "pg-1", "uid-1");
        assert_eq!(result.backup_id, "20261202T070809");
        assert_eq!(result.stopped_at - result.started_at, 10);
        assert_eq!(result.begin_lsn, "0/4000028");
        assert_eq!(result.instance_id, "pg-1");
        assert!(result.online);
        assert!(result.backup_label_file.is_empty());
        assert_eq!(result.metadata["timeline"], "1");
        assert_eq!(result.metadata["clusterUID"], "uid-1");
        assert_eq!(result.metadata["pluginName"], PLUGIN_NAME);
        assert_eq!(result.metadata["version"], PLUGIN_VERSION);
        assert_eq!(result.metadata.len(), 6);
    }
}
