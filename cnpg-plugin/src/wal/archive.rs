//! `WAL/Archive` (architecture §5.1): PostgreSQL's `archive_command`, relayed by
//! CloudNativePG's `manager wal-archive` with the segment's absolute path.
//!
//! 1. Decode the Cluster and its plugin settings; check the path is a file directly in
//!    `$PGDATA/pg_wal` (nothing else is PostgreSQL's WAL, and nothing else may be uploaded).
//! 2. Read the ObjectStore `barmanObjectName` and its credentials.
//! 3. The empty-archive check, when the request asks for it (`check_empty_wal_archive`) or,
//!    from a CloudNativePG that does not send the field, when the annotation does not turn
//!    it off and `$PGDATA/.check-empty-wal-archive` exists: `barman-cloud-check-wal-archive`
//!    must pass. The marker is removed after the first upload that succeeds.
//! 4. A spool marker `$SPOOL_DIRECTORY/<walname>` means an earlier call uploaded the segment
//!    ahead: remove it and succeed.
//! 5. Up to `maxParallel - 1` other `.ready` files of `$PGDATA/pg_wal/archive_status`, in
//!    name order (the order of the plugin's directory walk), join the requested one, which
//!    comes first.
//! 6. One `barman-cloud-wal-archive` per file, all at once. After each success the file's
//!    page cache is dropped (`posix_fadvise(DONTNEED)`: the sidecar's cgroup is charged for
//!    the pages it reads), the empty-archive marker removed and, for the extra files, a
//!    spool marker created, so PostgreSQL's own calls for them return at once.
//! 7. Any file's failure fails the call (the first in list order is reported): PostgreSQL
//!    retries the requested segment, and an extra one without its marker is uploaded again
//!    when PostgreSQL asks for it.
//!
//! Why one process per file rather than our wal-archive's own `--max-parallel`: the plugin
//! does it this way, so the sidecar stays a drop-in in both directions. The markers are the
//! plugin's (`$SPOOL_DIRECTORY/<walname>`, which a sidecar upgraded or downgraded to the Go
//! one reads the same way), each file's success or failure is known on its own (its marker,
//! the fadvise, the empty-archive marker follow from it), and users'
//! `archiveAdditionalCommandArgs` reach a command line of the shape they were written for,
//! so Barman's own Python tool on `PATH` would work too. The cost the plugin's users
//! complain about, a Python start per file, is a small Rust binary's start here.

use std::path::{Component, Path, PathBuf};

use serde_json::json;
use tokio::task::JoinSet;

use super::spool::Spool;
use super::{Error, plain_name};
use crate::barman::command::{self, CHECK_WAL_ARCHIVE, WAL_ARCHIVE};
use crate::barman::run::Ended;
use crate::barman::run::{Invocation, Stdout};
use crate::cluster::Cluster;
use crate::instance::Instance;
use crate::log::Logger;
use crate::proto::wal::WalArchiveRequest;

/// The marker CloudNativePG creates in PGDATA when a new Cluster's first archived WAL must
/// find the destination empty.
pub const CHECK_EMPTY_WAL_ARCHIVE_FILE: &str = ".check-empty-wal-archive";

const ACTION: &str = "archive WAL";

/// What a successful call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Archived {
    /// An earlier call had uploaded it ahead; its spool marker was removed.
    Ahead,
    /// Uploaded, with `extra` other ready files uploaded ahead.
    Uploaded {
        /// How many other files were uploaded (and got spool markers).
        extra: usize,
    },
}

/// Runs the flow for one request.
///
/// # Errors
/// [`Error`], with the gRPC code the call should end with.
pub async fn archive(instance: &Instance, request: &WalArchiveRequest) -> Result<Archived, Error> {
    let log = instance.log.named("wal-archive");
    let cluster =
        Cluster::from_json(&request.cluster_definition).map_err(Error::ClusterDefinition)?;
    let cluster_name = cluster.metadata.name.clone();
    if cluster.plugin().is_none() {
        return Err(Error::PluginNotConfigured {
            action: ACTION,
            cluster: cluster_name,
        });
    }
    let settings = cluster.plugin_settings();
    let Some(store_name) = settings.barman_object_name.clone() else {
        return Err(Error::NoBarmanObjectName {
            action: ACTION,
            cluster: cluster_name,
            which: "its plugin entry",
        });
    };
    let sent = PathBuf::from(&request.source_file_name);
    let Some(pgdata) = instance.config.pgdata.clone() else {
        return Err(Error::NoPgdata { path: sent });
    };
    let (wal_path, wal_name) = wal_in_pg_wal(&pgdata, &sent)?;

    let (store, env) = instance
        .store(&store_name)
        .await
        .map_err(|error| Error::store(&store_name, error))?;
    let configuration = &store.spec.configuration;
    let spool_dir = &instance.config.spool_directory;
    let spool = super::open_spool(spool_dir)?;

    let marker = pgdata.join(CHECK_EMPTY_WAL_ARCHIVE_FILE);
    let check_empty = match request.check_empty_wal_archive {
        Some(decision) => decision,
        None => {
            !cluster.skips_empty_wal_archive_check()
                && marker.try_exists().map_err(|source| Error::File {
                    action: "look for the empty-archive marker",
                    path: marker.clone(),
                    source,
                })?
        }
    };
    if check_empty {
        log.info(
            "Checking the WAL archive is empty before the first upload",
            &[
                ("objectStore", json!(store_name)),
                ("serverName", json!(settings.server_name)),
            ],
        );
        let check = Invocation {
            program: CHECK_WAL_ARCHIVE,
            args: command::check_wal_archive(configuration, &settings.server_name),
            env: env.clone(),
        };
        let finished = check.run(&log, Stdout::Log).await?;
        if !finished.success() {
            return Err(Error::NotEmpty {
                store: store_name,
                server: settings.server_name,
                program: CHECK_WAL_ARCHIVE,
                ended: Ended::from(&finished),
            });
        }
    }

    if spool.remove(&wal_name).map_err(|source| Error::File {
        action: "remove the spool marker",
        path: spool.path(&wal_name),
        source,
    })? {
        log.info(
            "WAL file already archived, skipping",
            &[("walName", json!(wal_name))],
        );
        return Ok(Archived::Ahead);
    }

    let mut files = vec![wal_path];
    files.extend(ready_files(
        &pgdata,
        &wal_name,
        configuration.max_parallel() - 1,
        &log,
    ));
    log.debug("WAL files to archive", &[("walFiles", json!(files))]);

    let mut uploads = JoinSet::new();
    for (index, path) in files.iter().enumerate() {
        let job = Upload {
            index,
            invocation: Invocation {
                program: WAL_ARCHIVE,
                args: command::wal_archive(
                    configuration,
                    &settings.server_name,
                    &path.to_string_lossy(),
                ),
                env: env.clone(),
            },
            path: path.clone(),
            store: store_name.clone(),
            marker: marker.clone(),
            spool: spool.clone(),
            log: log.clone(),
        };
        uploads.spawn(job.run());
    }
    let mut results = Vec::with_capacity(files.len());
    while let Some(joined) = uploads.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            // A panicking upload task: report it as the file's failure.
            Err(error) => results.push((usize::MAX, Err(panicked(&error)))),
        }
    }
    results.sort_by_key(|(index, _)| *index);
    // The first failure in list order is the call's (the service logs it); any later one
    // is logged here, so each failed file is logged once.
    let mut errors = results.into_iter().filter_map(|(_, result)| result.err());
    if let Some(first) = errors.next() {
        for other in errors {
            log.warning(
                "Failed pre-archiving WAL: PostgreSQL will retry it",
                &[("error", json!(other.to_string()))],
            );
        }
        return Err(first);
    }
    Ok(Archived::Uploaded {
        extra: files.len() - 1,
    })
}

/// One file's upload and what follows its success.
struct Upload {
    index: usize,
    invocation: Invocation,
    path: PathBuf,
    store: String,
    marker: PathBuf,
    spool: Spool,
    log: Logger,
}

impl Upload {
    async fn run(self) -> (usize, Result<(), Error>) {
        let index = self.index;
        (index, self.upload().await)
    }

    async fn upload(self) -> Result<(), Error> {
        let name = file_name(&self.path);
        let finished = self.invocation.run(&self.log, Stdout::Log).await?;
        if !finished.success() {
            return Err(Error::Archive {
                path: self.path,
                store: self.store,
                program: WAL_ARCHIVE,
                ended: Ended::from(&finished),
            });
        }
        if let Err(error) = drop_page_cache(&self.path) {
            self.log.error(
                "Error issuing fadvise after archiving WAL",
                &[
                    ("walName", json!(name)),
                    ("error", json!(error.to_string())),
                ],
            );
        }
        match std::fs::remove_file(&self.marker) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::File {
                    action: "remove the empty-archive marker",
                    path: self.marker,
                    source,
                });
            }
        }
        if self.index == 0 {
            self.log
                .info("Archived WAL file", &[("walName", json!(name))]);
            return Ok(());
        }
        self.spool.touch(&name).map_err(|source| Error::File {
            action: "create the spool marker",
            path: self.spool.path(&name),
            source,
        })?;
        self.log.info(
            "Pre-archived WAL file (parallel)",
            &[("walName", json!(name))],
        );
        Ok(())
    }
}

fn panicked(error: &tokio::task::JoinError) -> Error {
    Error::File {
        action: "archive a WAL file (the upload task failed)",
        path: PathBuf::new(),
        source: std::io::Error::other(error.to_string()),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The path sent, made absolute against PGDATA, and its file name; an error unless it is a
/// file directly in `$PGDATA/pg_wal` (checked on the path's words, not by resolving links:
/// `pg_wal` is a symbolic link when WAL has its own volume).
fn wal_in_pg_wal(pgdata: &Path, sent: &Path) -> Result<(PathBuf, String), Error> {
    let path = if sent.is_absolute() {
        sent.to_owned()
    } else {
        pgdata.join(sent)
    };
    let pg_wal = pgdata.join("pg_wal");
    let outside = || Error::OutsidePgWal {
        path: sent.to_owned(),
        pg_wal: pg_wal.clone(),
    };
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(outside());
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(outside());
    };
    if parent != pg_wal {
        return Err(outside());
    }
    let name = name.to_string_lossy().into_owned();
    plain_name(ACTION, &name)?;
    Ok((path, name))
}

/// Up to `max` files PostgreSQL has marked ready, other than `requested`, as paths in
/// `$PGDATA/pg_wal`, in name order. A directory that cannot be read gives none (logged):
/// the requested file is archived all the same.
fn ready_files(pgdata: &Path, requested: &str, max: usize, log: &Logger) -> Vec<PathBuf> {
    if max == 0 {
        return Vec::new();
    }
    let status = pgdata.join("pg_wal").join("archive_status");
    let entries = match std::fs::read_dir(&status) {
        Ok(entries) => entries,
        Err(error) => {
            log.error(
                "failed reading path",
                &[("path", json!(status)), ("error", json!(error.to_string()))],
            );
            return Vec::new();
        }
    };
    let skip = format!("{requested}.ready");
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".ready") && !name.ends_with(&skip))
        .collect();
    names.sort();
    names
        .into_iter()
        .take(max)
        .map(|name| {
            let wal = name.trim_end_matches(".ready");
            pgdata.join("pg_wal").join(wal)
        })
        .collect()
}

/// `posix_fadvise(POSIX_FADV_DONTNEED)` on the whole file.
fn drop_page_cache(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Level, LogOptions};

    fn quiet() -> Logger {
        Logger::to_writer(
            LogOptions {
                level: Level::Error,
                ..LogOptions::default()
            },
            Box::new(std::io::sink()),
        )
    }

    #[test]
    fn only_files_directly_in_pg_wal() {
        let pgdata = Path::new("/var/lib/postgresql/data/pgdata");
        let (path, name) = wal_in_pg_wal(
            pgdata,
            Path::new("/var/lib/postgresql/data/pgdata/pg_wal/000000010000000000000001"),
        )
        .unwrap();
        assert_eq!(name, "000000010000000000000001");
        assert_eq!(path, pgdata.join("pg_wal/000000010000000000000001"));
        // %p as PostgreSQL gives it, relative to PGDATA.
        let (path, _) = wal_in_pg_wal(pgdata, Path::new("pg_wal/00000002.history")).unwrap();
        assert_eq!(path, pgdata.join("pg_wal/00000002.history"));
        for outside in [
            "/etc/passwd",
            "/var/lib/postgresql/data/pgdata/postgresql.conf",
            "/var/lib/postgresql/data/pgdata/pg_wal/../global/pg_control",
            "/var/lib/postgresql/data/pgdata/pg_wal/archive_status/x.ready",
            "/var/lib/postgresql/data/pgdata/pg_wal",
            "../pgdata/pg_wal/000000010000000000000001",
        ] {
            let error = wal_in_pg_wal(pgdata, Path::new(outside)).unwrap_err();
            assert_eq!(error.code(), tonic::Code::InvalidArgument, "{outside}");
            assert!(
                error.to_string().contains(outside),
                "names the path: {error}"
            );
        }
    }

    #[test]
    fn ready_files_in_name_order_without_the_requested_one() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("pg_wal/archive_status");
        std::fs::create_dir_all(&status).unwrap();
        for name in [
            "000000010000000000000004.ready",
            "000000010000000000000002.ready",
            "000000010000000000000001.ready",
            "000000010000000000000003.done",
            "00000002.history.ready",
            "000000010000000000000005.ready",
        ] {
            std::fs::write(status.join(name), b"").unwrap();
        }
        std::fs::create_dir(status.join("x.ready")).unwrap();
        let names = |max| {
            ready_files(dir.path(), "000000010000000000000001", max, &quiet())
                .into_iter()
                .map(|p| p.strip_prefix(dir.path()).unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(3),
            [
                PathBuf::from("pg_wal/000000010000000000000002"),
                PathBuf::from("pg_wal/000000010000000000000004"),
                PathBuf::from("pg_wal/000000010000000000000005"),
            ]
        );
        assert_eq!(names(10).len(), 4, "the .history is ready too");
        assert!(names(0).is_empty());
        // No archive_status directory: nothing extra, no failure.
        assert!(ready_files(&dir.path().join("none"), "x", 3, &quiet()).is_empty());
    }

    #[test]
    fn fadvise_on_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000000010000000000000001");
        std::fs::write(&path, vec![0u8; 65536]).unwrap();
        drop_page_cache(&path).unwrap();
        assert!(drop_page_cache(&dir.path().join("missing")).is_err());
    }
}
