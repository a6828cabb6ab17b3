//! PostgreSQL through tokio-postgres: connect, read what a backup records, and drive the
//! non-exclusive backup API (whose function names changed in PostgreSQL 15).

mod conninfo;
mod tls;

pub use conninfo::{ConnectOptions, Env, ProcessEnv, Target, config};
pub use tls::{SslMode, Tls};

use std::time::Duration;

use tokio_postgres::{CancelToken, Client};

use crate::error::{Error, PgFailure, Result};
use crate::postgres::{Lsn, Tablespace};
use crate::python::Timestamp;

/// One session: non-exclusive backups must start and stop in the same one.
pub struct Pg {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
    /// What a cancel request needs: the backend's key, on a new connection to the same host.
    cancel: CancelToken,
    /// The cancel request goes the way the session went: over TLS when it did.
    tls: Tls,
    /// `server_version_num`, e.g. 150018.
    pub version: u32,
}

/// What `pg_backup_start` returned.
#[derive(Debug, Clone)]
pub struct BackupStart {
    /// Where the backup starts.
    pub lsn: Lsn,
    /// The timeline it starts on.
    pub timeline: u32,
    /// When PostgreSQL started it.
    pub time: Timestamp,
}

/// What `pg_backup_stop` returned.
#[derive(Debug, Clone)]
pub struct BackupStop {
    /// Where the backup ends.
    pub lsn: Lsn,
    /// The timeline it ends on.
    pub timeline: u32,
    /// The `backup_label` text, the data tarball's last member.
    pub label: String,
    /// When PostgreSQL stopped it.
    pub time: Timestamp,
}

/// The server facts a `backup.info` records before the copy starts.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    /// `data_directory`.
    pub pgdata: String,
    /// `wal_segment_size`, in bytes.
    pub wal_segment_size: u64,
    /// `config_file`.
    pub config_file: Option<String>,
    /// `hba_file`.
    pub hba_file: Option<String>,
    /// `ident_file`.
    pub ident_file: Option<String>,
    /// `included_files`, the configuration files outside PGDATA.
    pub included_files: Option<Vec<String>>,
    /// The tablespaces, with their locations.
    pub tablespaces: Vec<Tablespace>,
    /// `data_checksums`.
    pub data_checksums: Option<String>,
    /// `summarize_wal` (PostgreSQL 17 and later).
    pub summarize_wal: Option<String>,
    /// The size of every tablespace, in bytes (`pg_tablespace_size` summed).
    pub cluster_size: Option<u64>,
}

fn sql(action: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::Postgres {
        action,
        source: PgFailure::Client(e),
    }
}

fn connect_error(e: tokio_postgres::Error) -> Error {
    Error::PgConnect {
        source: PgFailure::Client(e),
    }
}

/// A connection that never reached a server, named as psql names it: the socket file or the
/// host and port tried, the system's reason, and libpq's hint (issue #17). tokio-postgres
/// tries the hosts in order and keeps the last failure, so that is the one named.
fn unreachable(config: &tokio_postgres::Config, e: tokio_postgres::Error) -> Error {
    use tokio_postgres::config::Host;
    let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
    let (Some(io), Some(host)) = (io, config.get_hosts().last()) else {
        return connect_error(e);
    };
    let ports = config.get_ports();
    let port = ports
        .get(config.get_hosts().len() - 1)
        .or(ports.last())
        .copied()
        .unwrap_or(5432);
    let (target, hint) = match host {
        Host::Unix(dir) => (
            format!("on socket \"{}/.s.PGSQL.{port}\"", dir.display()),
            "Is the server running locally and accepting connections on that socket?",
        ),
        Host::Tcp(name) => (
            format!("at \"{name}\", port {port}"),
            "Is the server running on that host and accepting TCP/IP connections?",
        ),
    };
    let reason = io.to_string();
    // libpq prints strerror's text; Rust appends " (os error N)".
    let reason = match reason.rfind(" (os error ") {
        Some(at) => reason[..at].to_string(),
        None => reason,
    };
    Error::PgConnect {
        source: PgFailure::Unreachable {
            target,
            reason,
            hint,
            source: e,
        },
    }
}

/// PostgreSQL's "no pg_hba.conf entry ... no encryption" with the fix, when the server takes
/// only TLS and sslmode=disable kept us from it.
fn refused_without_tls(target: &Target, e: tokio_postgres::Error) -> Error {
    let message = e.as_db_error().map(|db| db.message().to_string());
    match message {
        Some(message)
            if target.tls.mode == SslMode::Disable && message.ends_with("no encryption") =>
        {
            Error::PgConnect {
                source: PgFailure::Unexpected(format!(
                    "{message}: the server takes this connection over TLS only; use \
                     sslmode=require (or verify-ca, verify-full) instead of sslmode=disable"
                )),
            }
        }
        _ => unreachable(&target.config, e),
    }
}

/// How long [`Pg::close`] waits for the server to finish what it is running.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The session's `now()` in Python's `str(datetime)` form, with the session's offset.
const NOW: &str = "to_char(now(), 'YYYY-MM-DD HH24:MI:SS.USTZH:TZM')";

impl Pg {
    /// Connects to `target` (see [`config`]).
    ///
    /// # Errors
    /// [`Error::PgConnect`] when the server cannot be reached or refuses us.
    pub async fn connect(target: &Target) -> Result<Pg> {
        let config = &target.config;
        let (client, connection) = config
            .connect(target.tls.clone())
            .await
            .map_err(|e| refused_without_tls(target, e))?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("PostgreSQL connection closed: {e}");
            }
        });
        let row = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(connect_error)?;
        let version: i32 = row.get(0);
        Ok(Pg {
            cancel: client.cancel_token(),
            tls: target.tls.clone(),
            client,
            connection,
            version: version as u32,
        })
    }

    /// `pg_control_system().system_identifier` as decimal text.
    pub async fn system_id(&self) -> Result<String> {
        let row = self
            .client
            .query_one(
                "SELECT system_identifier::text FROM pg_control_system()",
                &[],
            )
            .await
            .map_err(sql("read the system identifier"))?;
        Ok(row.get(0))
    }

    async fn text(&self, query: &str) -> Option<String> {
        match self.client.query_opt(query, &[]).await {
            Ok(row) => row.and_then(|r| r.get(0)),
            Err(e) => {
                // Barman records None for what the role may not read; so do we.
                tracing::debug!("{query}: {}", PgFailure::Client(e));
                None
            }
        }
    }

    /// Reads the facts `backup.info` records. Queries a role may not run give `None`, as
    /// in Barman; only `data_directory` and the segment size are required.
    pub async fn facts(&self) -> Result<ServerFacts> {
        let pgdata = self
            .client
            .query_one("SELECT current_setting('data_directory')", &[])
            .await
            .map_err(sql("read data_directory"))?
            .get(0);
        let segment = self
            .client
            .query_one(
                "SELECT setting::bigint * CASE unit WHEN 'B' THEN 1 WHEN '8kB' THEN 8192 \
                 WHEN 'MB' THEN 1048576 ELSE 1 END FROM pg_settings \
                 WHERE name = 'wal_segment_size'",
                &[],
            )
            .await
            .map_err(sql("read wal_segment_size"))?;
        let wal_segment_size: i64 = segment.get(0);
        let setting = |name: &str| format!("SELECT setting FROM pg_settings WHERE name = '{name}'");
        let included_files = match self
            .client
            .query(
                "SELECT DISTINCT sourcefile FROM pg_settings WHERE sourcefile IS NOT NULL \
                 AND sourcefile NOT IN (SELECT setting FROM pg_settings \
                 WHERE name = 'config_file') ORDER BY 1",
                &[],
            )
            .await
        {
            Ok(rows) if !rows.is_empty() => Some(rows.iter().map(|r| r.get(0)).collect()),
            _ => None,
        };
        let tablespaces = self
            .client
            .query(
                "SELECT spcname::text, oid::bigint, pg_tablespace_location(oid) \
                 FROM pg_tablespace WHERE pg_tablespace_location(oid) != '' ORDER BY oid",
                &[],
            )
            .await
            .map_err(sql("list tablespaces"))?
            .iter()
            .map(|r| Tablespace {
                name: r.get(0),
                oid: r.get::<_, i64>(1) as u32,
                location: r.get(2),
            })
            .collect();
        let summarize_wal = if self.version >= 170000 {
            self.text("SHOW summarize_wal").await
        } else {
            None
        };
        let cluster_size = self
            .text("SELECT sum(pg_tablespace_size(oid))::text FROM pg_tablespace")
            .await
            .and_then(|s| s.parse().ok());
        Ok(ServerFacts {
            pgdata,
            wal_segment_size: wal_segment_size as u64,
            config_file: self.text(&setting("config_file")).await,
            hba_file: self.text(&setting("hba_file")).await,
            ident_file: self.text(&setting("ident_file")).await,
            included_files,
            tablespaces,
            data_checksums: self.text("SHOW data_checksums").await,
            summarize_wal,
            cluster_size,
        })
    }

    /// Whether the server is a standby.
    pub async fn is_in_recovery(&self) -> Result<bool> {
        let row = self
            .client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .map_err(sql("check pg_is_in_recovery()"))?;
        Ok(row.get(0))
    }

    /// Starts a non-exclusive backup labelled `label`.
    pub async fn backup_start(&self, label: &str, fast: bool) -> Result<BackupStart> {
        if self.version >= 140000 {
            // The copy can outlast idle_session_timeout; the stop needs this same session.
            self.client
                .batch_execute("SET idle_session_timeout TO 0")
                .await
                .map_err(sql("disable idle_session_timeout"))?;
        }
        let call = if self.version >= 150000 {
            "pg_backup_start($1, $2)"
        } else {
            "pg_start_backup($1, $2, false)"
        };
        let query = format!(
            "SELECT lsn::text, (SELECT timeline_id FROM pg_control_checkpoint())::bigint, {NOW} \
             FROM {call} AS lsn"
        );
        let row = self
            .client
            .query_one(&query, &[&label, &fast])
            .await
            .map_err(sql("start the backup"))?;
        Ok(BackupStart {
            lsn: parse_lsn(row.get(0))?,
            timeline: row.get::<_, i64>(1) as u32,
            time: parse_time(row.get(2))?,
        })
    }

    /// Stops the backup; PostgreSQL waits until the WAL it needs is archived.
    pub async fn backup_stop(&self) -> Result<BackupStop> {
        if self.version >= 140000 {
            self.client
                .batch_execute("RESET idle_session_timeout")
                .await
                .map_err(sql("reset idle_session_timeout"))?;
        }
        let call = if self.version >= 150000 {
            "pg_backup_stop()"
        } else {
            "pg_stop_backup(false)"
        };
        let query = format!(
            "SELECT r.lsn::text, (SELECT CASE WHEN pg_is_in_recovery() \
             THEN min_recovery_end_timeline ELSE timeline_id END \
             FROM pg_control_checkpoint(), pg_control_recovery())::bigint, r.labelfile, {NOW} \
             FROM {call} AS r"
        );
        let row = self
            .client
            .query_one(&query, &[])
            .await
            .map_err(sql("stop the backup"))?;
        Ok(BackupStop {
            lsn: parse_lsn(row.get(0))?,
            timeline: row.get::<_, i64>(1) as u32,
            label: row.get(2),
            time: parse_time(row.get(3))?,
        })
    }

    /// Closes the WAL segment holding the backup end, so it is archived now (primary only).
    pub async fn switch_wal(&self) -> Result<()> {
        let f = if self.version >= 100000 {
            "pg_switch_wal"
        } else {
            "pg_switch_xlog"
        };
        self.client
            .batch_execute(&format!("SELECT {f}()"))
            .await
            .map_err(sql("switch WAL"))
    }

    /// Creates the named restore point Barman leaves after each backup (primary only).
    pub async fn create_restore_point(&self, name: &str) -> Result<()> {
        self.client
            .execute("SELECT pg_create_restore_point($1)::text", &[&name])
            .await
            .map(drop)
            .map_err(sql("create the restore point"))
    }

    /// Asks the server to cancel the query running in this session, as libpq's
    /// `PQcancel` does (a separate connection carrying the backend's key). A session
    /// with nothing running ignores it, so this is safe to send at any moment.
    pub async fn cancel(&self) {
        if let Err(e) = self.cancel.cancel_query(self.tls.clone()).await {
            tracing::debug!("cannot send PostgreSQL a cancel request: {e}");
        }
    }

    /// Ends the session. The connection is dropped after a second even when a query
    /// is still running: the server then ends the session (and any backup in it) itself.
    pub async fn close(self) {
        drop(self.client);
        let mut connection = self.connection;
        if tokio::time::timeout(CLOSE_GRACE, &mut connection)
            .await
            .is_err()
        {
            connection.abort();
        }
    }
}

fn parse_lsn(text: String) -> Result<Lsn> {
    text.parse().map_err(|_| Error::Postgres {
        action: "read an LSN",
        source: PgFailure::Unexpected(format!("unexpected LSN '{text}'")),
    })
}

fn parse_time(text: String) -> Result<Timestamp> {
    text.parse().map_err(|message| Error::Postgres {
        action: "read the server time",
        source: PgFailure::Unexpected(message),
    })
}
