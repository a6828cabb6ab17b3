//! A PostgreSQL 15 primary archiving its WAL into a store, the fixture of the backup,
//! restore and catalog tests; backups of it by either tool; and a restored copy started
//! as a server of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::pg::{Pg, running_as_root};
use super::{Provider, Store, TestCommand, barman, ours, temp_dir};

/// Which tool does the work: ours or Barman's Python one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Us,
    Barman,
}

impl By {
    /// The path of this side's `name`, or `None` (skip) when the rig has no Barman.
    pub fn program(self, name: &str) -> Option<PathBuf> {
        match self {
            By::Us => Some(ours(name)),
            By::Barman => barman(name),
        }
    }
}

/// How to build a [`Primary`].
pub struct Options<'a> {
    /// Who archives the WAL.
    pub archiver: By,
    /// Our wal-archive's flags (compression and the like); Barman's archives uncompressed.
    pub archive_flags: &'a str,
    /// A tablespace of this name in `<root>/tbs`, which the `marker` table lives in.
    pub tablespace: Option<&'a str>,
    /// `pgbench -i -s <scale>`.
    pub pgbench_scale: Option<u32>,
    /// Extra `postgresql.conf` lines.
    pub conf: &'a str,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            archiver: By::Us,
            archive_flags: "",
            tablespace: None,
            pgbench_scale: None,
            conf: "",
        }
    }
}

/// A running primary archiving into its own store, with a `marker (id, note)` table.
/// Its files are under `root`: `primary/` (data and socket), `tbs/` for the tablespace, and
/// whatever directories a test restores into.
pub struct Primary {
    pub pg: Pg,
    pub store: Store,
    pub root: PathBuf,
    /// The tablespace's directory, when there is one.
    pub tbs: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Primary {
    /// A primary on a fresh store of `provider`; `None` when that service (or Barman, to
    /// archive) is not there and services are not required.
    pub fn new(provider: Provider, options: Options) -> Option<Primary> {
        let store = Store::new(provider)?;
        let archive_command = match options.archiver {
            By::Us => store.archive_command(options.archive_flags),
            By::Barman => format!(
                "{}{} {}'{}' pg %p",
                store.shell_env(),
                barman("barman-cloud-wal-archive")?.display(),
                store.shell_args(),
                store.url
            ),
        };
        let dir = temp_dir();
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join("primary")).unwrap();
        super::chmod_world(&root);
        let mut pg = Pg::init(&root.join("primary"));
        pg.conf(&format!(
            "archive_mode = on\narchive_command = '{}'\n{}",
            archive_command.replace('\'', "''"),
            options.conf
        ));
        pg.start();
        let tbs = options.tablespace.map(|name| {
            let path = root.join("tbs");
            postgres_dir(&path);
            pg.sql(&format!(
                "CREATE TABLESPACE {name} LOCATION '{}'",
                path.display()
            ));
            pg.sql(&format!(
                "CREATE TABLE marker (id int, note text) TABLESPACE {name}"
            ));
            path
        });
        if tbs.is_none() {
            pg.sql("CREATE TABLE marker (id int, note text)");
        }
        if let Some(scale) = options.pgbench_scale {
            pg.pgbench(&["-i", "-s", &scale.to_string(), "-q"]);
        }
        Some(Primary {
            pg,
            store,
            root,
            tbs,
            _dir: dir,
        })
    }

    /// A directory under `root` that the postgres user can write (to restore into).
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        super::chmod_world(&dir);
        dir
    }

    /// Writes the next marker row, switches WAL and waits for it to be archived.
    pub fn mark(&self, note: &str) {
        self.pg.sql(&format!(
            "INSERT INTO marker VALUES ((SELECT count(*) FROM marker) + 1, '{note}')"
        ));
        self.switch_wal_and_wait();
    }

    /// Switches WAL and waits for the segment to be archived.
    pub fn switch_wal_and_wait(&self) {
        let last = self.pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
        self.pg.wait_archived(&last);
    }

    /// A backup `by` either tool of the server whose socket is in `socket_dir` into `store`
    /// (this primary's, maybe through a proxy). Ours runs as the postgres user, as
    /// CloudNativePG and cron run it.
    pub fn backup_command(
        &self,
        by: By,
        store: &Store,
        socket_dir: &Path,
        flags: &[&str],
    ) -> Command {
        let program = by
            .program("barman-cloud-backup")
            .expect("the rig provides Barman");
        let mut cmd = match by {
            By::Us => store.command_as_postgres(program),
            By::Barman => store.command(program),
        };
        cmd.args(flags)
            .args(["-U", "postgres", "-h"])
            .arg(socket_dir)
            .arg(&store.url)
            .arg("pg");
        cmd
    }

    /// A backup of this primary `by` either tool; returns once the next backup would get
    /// another ID.
    pub fn backup(&self, by: By, flags: &[&str]) {
        self.backup_command(by, &self.store, self.pg.socket_dir(), flags)
            .ok();
        super::next_backup_second();
    }

    /// The IDs of the backups in the store (any status), oldest first.
    pub fn backup_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .store
            .list_keys("pg/base")
            .into_iter()
            .filter(|k| k.ends_with("/backup.info"))
            .map(|k| k.rsplit('/').nth(1).unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

/// A directory owned by `postgres` (PostgreSQL refuses a tablespace it does not own).
pub fn postgres_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    if running_as_root() {
        Command::new("chown")
            .args(["postgres:postgres"])
            .arg(path)
            .ok();
    }
}

/// The second part of a [`fingerprint`]: `pgbench_history`, which a pgbench load fills.
pub const HISTORY: (&str, &str) = ("pgbench_history", "delta");

/// What a replay or a restore must reproduce: `pgbench_accounts`' count and balance, the
/// count and sum of `column` in `table`, and the marker notes in order.
pub fn fingerprint(pg: &Pg, (table, column): (&str, &str)) -> String {
    pg.sql(&format!(
        "SELECT (SELECT count(*) || ':' || sum(abalance) FROM pgbench_accounts) || '/' || \
         (SELECT count(*) || ':' || coalesce(sum({column}), 0) FROM {table}) || '/' || \
         (SELECT string_agg(note, ',' ORDER BY id) FROM marker)"
    ))
}

/// The restored `pg` holds the `expected` [`fingerprint`] (of `table`) and took WAL from
/// the archive to get there.
pub fn assert_replayed(pg: &Pg, expected: &str, table: (&str, &str)) {
    assert_eq!(
        fingerprint(pg, table),
        expected,
        "replayed data differs\n{}",
        pg.log()
    );
    assert!(
        pg.log().contains("restored log file"),
        "nothing came from the archive:\n{}",
        pg.log()
    );
}

/// How a restored server gets its WAL.
pub enum Recovery<'a> {
    /// As our restore's `--write-recovery-conf` (or the test) already set it up.
    AsRestored,
    /// Through our wal-restore from the store, with these recovery target lines.
    Replay(&'a str),
}

/// Starts the restored `data` as a server of its own with its socket and log in `dir`
/// (writable by the postgres user), with `store`'s credentials in its environment, and
/// waits for recovery to end.
pub fn start_restored(dir: &Path, data: PathBuf, store: &Store, recovery: Recovery) -> Pg {
    let mut pg = restored(dir, data, store, recovery);
    pg.start_with_env(&store.env);
    pg.wait_promoted();
    pg
}

/// The restored `data` set up as [`start_restored`] does, not started.
pub fn restored(dir: &Path, data: PathBuf, store: &Store, recovery: Recovery) -> Pg {
    let pg = Pg::from_data(dir, data);
    pg.conf(&format!(
        "archive_mode = off\nunix_socket_directories = '{}'",
        dir.display()
    ));
    if let Recovery::Replay(targets) = recovery {
        pg.conf(&format!(
            "restore_command = '{}'\n{targets}",
            store.restore_command().replace('\'', "''")
        ));
        pg.write_file("recovery.signal", "");
    }
    pg
}
