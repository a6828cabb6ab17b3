//! `WAL/Restore` (architecture §5.2): PostgreSQL's `restore_command`, relayed by
//! CloudNativePG's `manager wal-restore` with the WAL name and the absolute destination.
//!
//! 1. Choose the store and server name ([`source`]): a current primary with a replica source
//!    is a designated primary still promoting and reads the source; while the Cluster has no
//!    primary yet (bootstrap) the recovery source; otherwise the Cluster's own store.
//! 2. Read the ObjectStore and its credentials. (The plugin first sets a CA variable pointing
//!    at `/controller/certificates/backup-barman-ca.crt` and then lets the credentials'
//!    environment override it, which it always does under the same condition; the
//!    credentials' environment alone is therefore the same.)
//! 3. Rewind mode (pg_rewind asking): a stale end-of-wal-stream flag is cleared, never obeyed.
//! 4. A segment prefetched by an earlier call is moved from the spool to the destination,
//!    never visible there half-copied ([`super::spool::Spool::move_out`]).
//! 5. The end-of-wal-stream flag ([`uses_end_of_wal_flag`]): when streaming is possible and
//!    this is not a rewind, a flag left by an earlier prefetch is removed and the call fails
//!    with OUT_OF_RANGE "end of WAL reached", so PostgreSQL switches to streaming.
//! 6. The requested file and, for a regular segment, the next `maxParallel - 1` names (one
//!    in all when rewinding, which walks backwards), fetched at once: the requested one to
//!    the destination, the others to `<spool>/<name>.tmp`, renamed to `<spool>/<name>` on
//!    success and deleted on failure.
//! 7. The requested file's failure fails the call with the code of its exit status
//!    ([`Ended::wal_restore_code`]); a prefetch that found nothing (exit 1) sets the flag when
//!    it applies. Other prefetch failures only lose the prefetch.

use std::path::PathBuf;

use serde_json::json;
use tokio::task::JoinSet;

use super::segment::files_to_fetch;
use super::spool::END_OF_WAL_STREAM;
use super::{Error, plain_name};
use crate::barman::command::{self, WAL_RESTORE};
use crate::barman::run::Ended;
use crate::barman::run::{self, Invocation, Stdout};
use crate::cluster::{Cluster, PluginSettings};
use crate::instance::Instance;
use crate::proto::wal::{WalRestoreRequest, wal_restore_request::Mode};

const ACTION: &str = "restore WAL";

/// What a successful call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// An earlier call had prefetched it; moved from the spool.
    FromSpool,
    /// Fetched, with `prefetched` more files now waiting in the spool.
    Fetched {
        /// Prefetches that succeeded.
        prefetched: usize,
    },
}

/// Where a restore reads from: the ObjectStore's name and the server name in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The ObjectStore.
    pub store: String,
    /// The server name.
    pub server: String,
}

/// The store and server name a restore on `pod` reads from (the plugin's
/// `resolveRestoreObjectStore`).
///
/// # Errors
/// When the chosen role names no ObjectStore.
pub fn source(cluster: &Cluster, settings: &PluginSettings, pod: &str) -> Result<Source, Error> {
    let primary = &cluster.status.current_primary;
    let missing = |which: &'static str| {
        let ours = cluster.plugin().is_some()
            || [cluster.recovery_source(), cluster.replica_source()]
                .into_iter()
                .flatten()
                .filter_map(|c| c.plugin.as_ref())
                .any(|p| p.name == crate::metadata::PLUGIN_NAME);
        if ours {
            Error::NoBarmanObjectName {
                action: ACTION,
                cluster: cluster.metadata.name.clone(),
                which,
            }
        } else {
            Error::PluginNotConfigured {
                action: ACTION,
                cluster: cluster.metadata.name.clone(),
            }
        }
    };
    if primary == pod
        && let Some(store) = &settings.replica_source_barman_object_name
    {
        return Ok(Source {
            store: store.clone(),
            server: settings.replica_source_server_name.clone(),
        });
    }
    if primary.is_empty() {
        return match &settings.recovery_barman_object_name {
            Some(store) => Ok(Source {
                store: store.clone(),
                server: settings.recovery_server_name.clone(),
            }),
            None => Err(missing(
                "the plugin entry of its recovery source (bootstrap.recovery.source)",
            )),
        };
    }
    match &settings.barman_object_name {
        Some(store) => Ok(Source {
            store: store.clone(),
            server: settings.server_name.clone(),
        }),
        None => Err(missing("its plugin entry")),
    }
}

/// Whether the end-of-wal-stream flag applies: never when rewinding (pg_rewind cannot
/// stream, and must not stop on a flag it did not set), and only when this instance can
/// stream: not while bootstrapping, always on a replica, and on a designated primary only
/// when its source external cluster has connection parameters.
pub fn uses_end_of_wal_flag(cluster: &Cluster, pod: &str, rewind: bool) -> bool {
    if rewind {
        return false;
    }
    let primary = &cluster.status.current_primary;
    if primary.is_empty() {
        return false;
    }
    if primary != pod {
        return true;
    }
    if cluster.is_replica() {
        return cluster
            .replica_source()
            .is_some_and(|source| !source.connection_parameters.is_empty());
    }
    false
}

/// Runs the flow for one request.
///
/// # Errors
/// [`Error`], with the gRPC code the call should end with.
pub async fn restore(instance: &Instance, request: &WalRestoreRequest) -> Result<Restored, Error> {
    let log = instance.log.named("wal-restore");
    let cluster =
        Cluster::from_json(&request.cluster_definition).map_err(Error::ClusterDefinition)?;
    let settings = cluster.plugin_settings();
    let pod = &instance.config.pod_name;
    let Source {
        store: store_name,
        server,
    } = source(&cluster, &settings, pod)?;
    let name = request.source_wal_name.clone();
    plain_name(ACTION, &name)?;
    let destination = destination(instance, &request.destination_file_name);
    let rewind = request.mode == Mode::Rewind as i32;
    log.info(
        "Restoring WAL file",
        &[
            ("objectStore", json!(store_name)),
            ("serverName", json!(server)),
            ("walName", json!(name)),
            ("mode", json!(mode_name(request.mode))),
        ],
    );

    let (store, env) = instance
        .store(&store_name)
        .await
        .map_err(|error| Error::store(&store_name, error))?;
    let configuration = &store.spec.configuration;
    let spool_dir = &instance.config.spool_directory;
    let spool = super::open_spool(spool_dir)?;
    let flag_error = |action, source| Error::File {
        action,
        path: spool.path(END_OF_WAL_STREAM),
        source,
    };

    // Before the spool is looked at, so a staged file cannot skip the clearing.
    if rewind {
        spool
            .remove(END_OF_WAL_STREAM)
            .map_err(|source| flag_error("remove the end-of-wal-stream flag", source))?;
    }

    let moved = {
        let spool = spool.clone();
        let (name, destination) = (name.clone(), destination.clone());
        tokio::task::spawn_blocking(move || spool.move_out(&name, &destination))
            .await
            .map_err(|error| Error::File {
                action: "move from the spool (the copy task failed)",
                path: spool_dir.join(&request.source_wal_name),
                source: std::io::Error::other(error.to_string()),
            })?
    };
    if moved.map_err(|source| Error::File {
        action: "move the prefetched WAL file from the spool to its destination",
        path: spool.path(&name),
        source,
    })? {
        log.info(
            "Restored WAL file from spool (parallel)",
            &[("walName", json!(name))],
        );
        return Ok(Restored::FromSpool);
    }

    let use_flag = uses_end_of_wal_flag(&cluster, pod, rewind);
    if use_flag
        && spool
            .remove(END_OF_WAL_STREAM)
            .map_err(|source| flag_error("remove the end-of-wal-stream flag", source))?
    {
        return Err(Error::EndOfWalStream);
    }

    let count = if rewind {
        1
    } else {
        configuration.max_parallel()
    };
    let names = files_to_fetch(&name, count);
    let mut fetches = JoinSet::new();
    for (index, wal) in names.iter().enumerate() {
        let target = if index == 0 {
            destination.clone()
        } else {
            spool.temp_path(wal)
        };
        let invocation = Invocation {
            program: WAL_RESTORE,
            args: command::wal_restore(configuration, &server, wal, &target.to_string_lossy()),
            env: env.clone(),
        };
        let (log, spool, wal) = (log.clone(), spool.clone(), wal.clone());
        fetches.spawn(async move {
            let result = invocation.run(&log, Stdout::Log).await;
            if index > 0 {
                match &result {
                    Ok(finished) if finished.success() => {
                        if let Err(error) = spool.commit(&wal) {
                            log.warning(
                                "Prefetched WAL file could not be added to the spool",
                                &[("walName", json!(wal)), ("error", json!(error.to_string()))],
                            );
                            return (index, Fetch::Lost);
                        }
                    }
                    _ => spool.discard_temp(&wal),
                }
            }
            (index, Fetch::from(result))
        });
    }
    let mut results = Vec::with_capacity(names.len());
    while let Some(joined) = fetches.join_next().await {
        results.push(joined.unwrap_or((usize::MAX, Fetch::Lost)));
    }
    results.sort_by_key(|(index, _)| *index);
    let mut results = results.into_iter().map(|(_, fetch)| fetch);
    match results.next() {
        Some(Fetch::Done) => {}
        Some(Fetch::Failed(ended)) => {
            return Err(Error::Restore {
                name,
                store: store_name,
                server,
                program: WAL_RESTORE,
                ended,
            });
        }
        Some(Fetch::NotRun(error)) => return Err(Error::Run(error)),
        Some(Fetch::Lost) | None => {
            return Err(Error::File {
                action: "restore WAL (the download task failed)",
                path: destination,
                source: std::io::Error::other("task ended without a result"),
            });
        }
    }
    let prefetches: Vec<Fetch> = results.collect();
    let prefetched = prefetches
        .iter()
        .filter(|f| matches!(f, Fetch::Done))
        .count();
    let end_found = prefetches
        .iter()
        .any(|f| matches!(f, Fetch::Failed(ended) if ended.code == Some(1)));
    if use_flag && end_found {
        log.info(
            "Set end-of-wal-stream flag as one of the WAL files to be prefetched was not found",
            &[],
        );
        spool
            .touch(END_OF_WAL_STREAM)
            .map_err(|source| flag_error("create the end-of-wal-stream flag", source))?;
    }
    log.info(
        "Restored WAL file",
        &[
            ("walName", json!(name)),
            ("maxParallel", json!(count)),
            ("prefetched", json!(prefetched)),
        ],
    );
    Ok(Restored::Fetched { prefetched })
}

/// One download's outcome.
enum Fetch {
    Done,
    Failed(Ended),
    NotRun(run::Error),
    /// Downloaded but not kept (the spool rename failed), or its task died.
    Lost,
}

impl From<Result<run::Finished, run::Error>> for Fetch {
    fn from(result: Result<run::Finished, run::Error>) -> Self {
        match result {
            Ok(finished) if finished.success() => Fetch::Done,
            Ok(finished) => Fetch::Failed(Ended::from(&finished)),
            Err(error) => Fetch::NotRun(error),
        }
    }
}

/// The destination, made absolute against PGDATA when CloudNativePG sends it relative
/// (PostgreSQL's `%p` is relative to its data directory).
fn destination(instance: &Instance, sent: &str) -> PathBuf {
    let path = PathBuf::from(sent);
    match &instance.config.pgdata {
        Some(pgdata) if path.is_relative() => pgdata.join(path),
        _ => path,
    }
}

fn mode_name(mode: i32) -> &'static str {
    match Mode::try_from(mode) {
        Ok(Mode::Recovery) => "MODE_RECOVERY",
        Ok(Mode::Rewind) => "MODE_REWIND",
        _ => "MODE_UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(value: serde_json::Value) -> Cluster {
        Cluster::from_json(value.to_string().as_bytes()).unwrap()
    }

    /// A Cluster archiving to `own`, recovering from `recovery`, replicating `replica`.
    fn full(primary: &str, replica_enabled: bool, connection: bool) -> Cluster {
        let connection = if connection {
            json!({"host": "origin-rw"})
        } else {
            json!({})
        };
        cluster(json!({
            "metadata": {"name": "pg"},
            "spec": {
                "plugins": [{"name": crate::metadata::PLUGIN_NAME,
                             "parameters": {"barmanObjectName": "own", "serverName": "pg-own"}}],
                "bootstrap": {"recovery": {"source": "origin"}},
                "replica": {"enabled": replica_enabled, "source": "origin"},
                "externalClusters": [{"name": "origin", "connectionParameters": connection,
                    "plugin": {"name": crate::metadata::PLUGIN_NAME,
                               "parameters": {"barmanObjectName": "theirs", "serverName": "origin"}}}]
            },
            "status": {"currentPrimary": primary}
        }))
    }

    fn chosen(cluster: &Cluster, pod: &str) -> (String, String) {
        let s = source(cluster, &cluster.plugin_settings(), pod).unwrap();
        (s.store, s.server)
    }

    #[test]
    fn the_store_follows_the_instances_role() {
        // Designated primary (still promoting): the replica source.
        let c = full("pg-1", true, true);
        assert_eq!(chosen(&c, "pg-1"), ("theirs".into(), "origin".into()));
        // A standby of that cluster: its own store.
        assert_eq!(chosen(&c, "pg-2"), ("own".into(), "pg-own".into()));
        // Bootstrap: the recovery source.
        let c = full("", false, false);
        assert_eq!(chosen(&c, "pg-1"), ("theirs".into(), "origin".into()));
    }

    #[test]
    fn a_role_without_a_store_is_named() {
        let c = cluster(json!({"metadata": {"name": "pg"}, "status": {"currentPrimary": "pg-1"}}));
        let error = source(&c, &c.plugin_settings(), "pg-2").unwrap_err();
        assert_eq!(error.code(), tonic::Code::FailedPrecondition);
        assert!(
            error.to_string().contains("no spec.plugins entry"),
            "{error}"
        );
        let c = cluster(json!({"metadata": {"name": "pg"},
            "spec": {"plugins": [{"name": crate::metadata::PLUGIN_NAME, "parameters": {}}]}}));
        let error = source(&c, &c.plugin_settings(), "pg-1").unwrap_err();
        assert!(error.to_string().contains("recovery source"), "{error}");
    }

    #[test]
    fn end_of_wal_flag_rules() {
        // Bootstrap: no streaming.
        assert!(!uses_end_of_wal_flag(&full("", false, true), "pg-1", false));
        // A standby always streams.
        assert!(uses_end_of_wal_flag(
            &full("pg-1", false, false),
            "pg-2",
            false
        ));
        // Rewinding never uses it.
        assert!(!uses_end_of_wal_flag(
            &full("pg-1", false, false),
            "pg-2",
            true
        ));
        // The primary of a normal Cluster streams from nobody.
        assert!(!uses_end_of_wal_flag(
            &full("pg-1", false, true),
            "pg-1",
            false
        ));
        // A designated primary streams when its source can be connected to.
        assert!(uses_end_of_wal_flag(
            &full("pg-1", true, true),
            "pg-1",
            false
        ));
        assert!(!uses_end_of_wal_flag(
            &full("pg-1", true, false),
            "pg-1",
            false
        ));
        assert!(!uses_end_of_wal_flag(
            &full("pg-1", true, true),
            "pg-1",
            true
        ));
    }
}
