//! The WAL flows of the instance role (architecture §5.1, §5.2): archive a segment (and up
//! to `maxParallel - 1` other ready ones) and restore one (and prefetch the next ones into
//! the spool). Both shell out to our `barman-cloud-*` binaries with the plugin's argument
//! vectors ([`crate::barman::command`]) and the store's credentials in their environment.
//!
//! Each failure is an [`Error`] whose message names the object and what to do, and whose
//! [`Error::code`] is the gRPC code the plugin returns for it (`cnpg-i-protocol.md` §1.4)
//! or, where the plugin returns a bare Go error (gRPC UNKNOWN), the code that says what
//! happened: FAILED_PRECONDITION for a configuration to fix, INVALID_ARGUMENT for a request
//! that can never succeed, UNAVAILABLE for a retry that may.

pub mod archive;
pub mod restore;
pub mod segment;
pub mod spool;

use std::io;
use std::path::PathBuf;

use tonic::Code;

use crate::barman::run::{self, Ended};
use crate::instance::StoreError;
use crate::kubernetes;
use crate::metadata::PLUGIN_NAME;

/// Why an Archive or Restore call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `cluster_definition` is not a Cluster's JSON.
    #[error(
        "decode the Cluster definition of the request: {0}; CloudNativePG sends the Cluster's JSON"
    )]
    ClusterDefinition(serde_json::Error),
    /// The Cluster has no `spec.plugins` entry for this plugin.
    #[error(
        "{action} for Cluster {cluster:?}: it has no spec.plugins entry named {PLUGIN_NAME}; \
         add one whose parameters name the ObjectStore (barmanObjectName)"
    )]
    PluginNotConfigured {
        /// "archive WAL" or "restore WAL".
        action: &'static str,
        /// The Cluster's name.
        cluster: String,
    },
    /// The plugin entry (or the recovery / replica source) names no ObjectStore.
    #[error(
        "{action} for Cluster {cluster:?}: {which} has no parameters.barmanObjectName; \
         set it to the name of an ObjectStore in the Cluster's namespace"
    )]
    NoBarmanObjectName {
        /// "archive WAL" or "restore WAL".
        action: &'static str,
        /// The Cluster's name.
        cluster: String,
        /// Which entry: the Cluster's own plugin entry, its recovery source, …
        which: &'static str,
    },
    /// A WAL name that is not a plain file name.
    #[error("{action} {name:?}: not a WAL file name (a file name without a directory)")]
    BadWalName {
        /// "archive WAL" or "restore WAL".
        action: &'static str,
        /// The name sent.
        name: String,
    },
    /// The sidecar was started without `PGDATA`.
    #[error(
        "archive WAL {path:?}: PGDATA is not set in the sidecar's environment; the plugin's \
         operator copies it from the postgres container, export it when running by hand"
    )]
    NoPgdata {
        /// The path sent.
        path: PathBuf,
    },
    /// A path PostgreSQL would never send: not a file directly in `$PGDATA/pg_wal`.
    #[error(
        "archive WAL {path:?}: not a file in {pg_wal:?}; only the WAL PostgreSQL keeps in its \
         data directory is archived"
    )]
    OutsidePgWal {
        /// The path sent.
        path: PathBuf,
        /// `$PGDATA/pg_wal`.
        pg_wal: PathBuf,
    },
    /// The ObjectStore cannot be read.
    #[error("read ObjectStore {name:?}: {source}")]
    ObjectStore {
        /// Its name.
        name: String,
        /// The API's answer.
        source: Box<kubernetes::Error>,
    },
    /// The store's credentials cannot be read from their Secrets.
    #[error("read the credentials of ObjectStore {store:?}: {source}{hint}")]
    Credentials {
        /// The store's name.
        store: String,
        /// The API's answer.
        source: Box<kubernetes::Error>,
        /// A retry hint when the read was forbidden.
        hint: &'static str,
    },
    /// A file of the spool or of PGDATA cannot be read or written.
    #[error("{action} {path:?}: {source}")]
    File {
        /// What was done ("remove the spool marker").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A `barman-cloud-*` command could not be started.
    #[error(transparent)]
    Run(#[from] run::Error),
    /// `barman-cloud-check-wal-archive` refused the destination.
    #[error(
        "check that ObjectStore {store:?} holds no WAL for server {server:?}: {program} {ended}; \
         a new Cluster must not archive over another one's WAL (use another serverName, or \
         set the annotation cnpg.io/skipEmptyWalArchiveCheck: enabled)"
    )]
    NotEmpty {
        /// The store.
        store: String,
        /// The server name.
        server: String,
        /// The program.
        program: &'static str,
        /// How it ended, with its last stderr line.
        ended: Ended,
    },
    /// `barman-cloud-wal-archive` failed for one file.
    #[error("archive WAL {path:?} to ObjectStore {store:?}: {program} {ended}")]
    Archive {
        /// The WAL file.
        path: PathBuf,
        /// The store.
        store: String,
        /// The program.
        program: &'static str,
        /// How it ended.
        ended: Ended,
    },
    /// `barman-cloud-wal-restore` failed for the requested file.
    #[error(
        "restore WAL {name:?} from ObjectStore {store:?} (server {server:?}): {program} {ended}"
    )]
    Restore {
        /// The WAL name.
        name: String,
        /// The store.
        store: String,
        /// The server name.
        server: String,
        /// The program.
        program: &'static str,
        /// How it ended.
        ended: Ended,
    },
    /// The end-of-wal-stream flag was set by an earlier prefetch: PostgreSQL should switch
    /// to streaming. The message is the plugin's.
    #[error("end of WAL reached")]
    EndOfWalStream,
}

/// The spool directory, created if missing.
pub(crate) fn open_spool(dir: &std::path::Path) -> Result<spool::Spool, Error> {
    spool::Spool::open(dir).map_err(|source| Error::File {
        action: "create the spool directory",
        path: dir.to_owned(),
        source,
    })
}

/// Added to a forbidden Secret read, whose message already says why: the plugin's says
/// "retrying", and PostgreSQL does retry.
const FORBIDDEN_HINT: &str = "; retrying";

impl Error {
    /// The gRPC code of the call's status.
    pub fn code(&self) -> Code {
        match self {
            Error::ClusterDefinition(_) | Error::BadWalName { .. } | Error::OutsidePgWal { .. } => {
                Code::InvalidArgument
            }
            Error::PluginNotConfigured { .. }
            | Error::NoBarmanObjectName { .. }
            | Error::NoPgdata { .. }
            | Error::NotEmpty { .. } => Code::FailedPrecondition,
            Error::ObjectStore { source, .. } | Error::Credentials { source, .. } => source.code(),
            Error::File { .. } | Error::Run(_) => Code::Internal,
            Error::Archive { ended, .. } => match ended.code {
                Some(2 | 4) => Code::Unavailable,
                _ => Code::Internal,
            },
            Error::Restore { ended, .. } => ended.wal_restore_code(),
            Error::EndOfWalStream => Code::OutOfRange,
        }
    }

    /// The error of [`Instance::store`] for the store `name`.
    pub(crate) fn store(name: &str, error: StoreError) -> Self {
        match error {
            StoreError::Read(source) => Error::ObjectStore {
                name: name.to_owned(),
                source: Box::new(source),
            },
            StoreError::Credentials(source) => Error::credentials(name, source),
        }
    }

    /// The credentials error, with the retry hint when the read was forbidden.
    pub(crate) fn credentials(store: &str, source: kubernetes::Error) -> Self {
        let hint = if source.is_forbidden() {
            FORBIDDEN_HINT
        } else {
            ""
        };
        Error::Credentials {
            store: store.to_owned(),
            source: Box::new(source),
            hint,
        }
    }
}

/// Checks that a WAL name from a request is a plain file name, so it can be joined to the
/// spool directory.
fn plain_name(action: &'static str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::BadWalName {
            action,
            name: name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_last_stderr_line() {
        let error = Error::Restore {
            name: "000000010000000000000009".into(),
            store: "s".into(),
            server: "pg".into(),
            program: "barman-cloud-wal-restore",
            ended: Ended {
                code: Some(1),
                last_error_line: Some("ERROR: WAL file 000000010000000000000009 not found".into()),
            },
        };
        assert_eq!(error.code(), Code::NotFound);
        assert_eq!(
            error.to_string(),
            "restore WAL \"000000010000000000000009\" from ObjectStore \"s\" (server \"pg\"): \
             barman-cloud-wal-restore exited 1: ERROR: WAL file 000000010000000000000009 not found"
        );
        assert_eq!(Error::EndOfWalStream.to_string(), "end of WAL reached");
        assert_eq!(Error::EndOfWalStream.code(), Code::OutOfRange);
    }

    #[test]
    fn plain_names_only() {
        assert!(plain_name("restore WAL", "000000010000000000000001").is_ok());
        assert!(plain_name("restore WAL", "00000002.history").is_ok());
        for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd"] {
            let error = plain_name("restore WAL", bad).unwrap_err();
            assert_eq!(error.code(), Code::InvalidArgument, "{bad}");
        }
    }
}
