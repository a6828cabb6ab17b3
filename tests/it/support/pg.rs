//! Throwaway PostgreSQL 15 servers for the tests, run as the unprivileged `postgres` user
//! when the tests run as root (PostgreSQL refuses root). They listen on a Unix socket in
//! their own directory only, so parallel tests never compete for a TCP port.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::TestCommand;

/// A PostgreSQL data directory, stopped on drop.
pub struct Pg {
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    running: bool,
}

pub fn pg_bin(name: &str) -> PathBuf {
    let dir = std::env::var("BCRS_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    Path::new(&dir).join(name)
}

/// Whether the tests run as root (so servers and our tools under them run as `postgres`).
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A command that runs as `postgres` when we are root.
pub fn as_postgres(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// `cmd` under coreutils' `timeout`: killed after `secs` seconds instead of hanging a test.
pub fn with_timeout(secs: u32, cmd: Command) -> Command {
    let mut wrapped = Command::new("timeout");
    wrapped
        .arg(secs.to_string())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    wrapped
}

impl Pg {
    /// `initdb` a new cluster in `dir/data` (the socket lives in `dir`).
    pub fn init(dir: &Path) -> Pg {
        let data = dir.join("data");
        as_postgres(pg_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .ok();
        let pg = Pg {
            data,
            socket_dir: dir.to_path_buf(),
            running: false,
        };
        pg.conf(&format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\nfsync = off\nwal_level = replica\n\
             max_wal_senders = 2\nlog_min_messages = info\nlogging_collector = off\n",
            dir.display()
        ));
        pg
    }

    /// An empty cluster directory, for a server restored from a base backup.
    pub fn from_data(dir: &Path, data: PathBuf) -> Pg {
        Pg {
            data,
            socket_dir: dir.to_path_buf(),
            running: false,
        }
    }

    /// Appends to postgresql.auto.conf (read after postgresql.conf, so it wins).
    pub fn conf(&self, lines: &str) {
        let mut text =
            std::fs::read_to_string(self.data.join("postgresql.auto.conf")).unwrap_or_default();
        text.push_str(lines);
        text.push('\n');
        self.write_file("postgresql.auto.conf", &text);
    }

    /// Writes a file inside the data directory as its owner.
    pub fn write_file(&self, name: &str, content: &str) {
        let mut child = as_postgres("tee")
            .arg(self.data.join(name))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// Starts the server and waits for it (`pg_ctl -w`).
    pub fn start(&mut self) {
        self.start_with_env(&[]);
    }

    /// Starts the server with extra environment variables (credentials that a
    /// `restore_command` or `archive_command` reads from the server's environment).
    pub fn start_with_env(&mut self, env: &[(String, String)]) {
        if !self.start_command(env).ran().success() {
            panic!("pg_ctl start failed; log:\n{}", self.log());
        }
        self.running = true;
    }

    /// `pg_ctl start`, waiting for the server, with its log in `server.log` beside the socket.
    pub fn start_command(&self, env: &[(String, String)]) -> Command {
        let mut cmd = as_postgres(pg_bin("pg_ctl"));
        cmd.envs(env.iter().cloned())
            .args(["-w", "-t", "120", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(self.socket_dir.join("server.log"))
            .arg("start");
        cmd
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&mut self) {
        if self.running {
            as_postgres(pg_bin("pg_ctl"))
                .args(["-w", "-m", "fast", "-D"])
                .arg(&self.data)
                .arg("stop")
                .ran();
            self.running = false;
        }
    }

    /// The directory holding the server's socket (its `-h`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.socket_dir.join("server.log")).unwrap_or_default()
    }

    /// Runs SQL and returns the unaligned, tuples-only output.
    pub fn sql(&self, sql: &str) -> String {
        as_postgres(pg_bin("psql"))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .args(["-d", "postgres", "-h"])
            .arg(&self.socket_dir)
            .args(["-c", sql])
            .ok()
            .trim()
            .to_string()
    }

    /// Runs pgbench with the given arguments.
    pub fn pgbench(&self, args: &[&str]) {
        as_postgres(pg_bin("pgbench"))
            .args(["-U", "postgres", "-h"])
            .arg(&self.socket_dir)
            .args(args)
            .arg("postgres")
            .ok();
    }

    /// Waits until `pg_stat_archiver` reports `wal` (or a later file) archived.
    pub fn wait_archived(&self, wal: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let row = self.sql("SELECT coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') FROM pg_stat_archiver");
            let last = row.split('|').next().unwrap_or_default().to_string();
            if !last.is_empty() && last.as_str() >= wal {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "WAL {wal} not archived in time: {row}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until recovery has ended and the server accepts writes.
    pub fn wait_promoted(&self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.sql("SELECT pg_is_in_recovery()") != "f" {
            assert!(
                Instant::now() < deadline,
                "recovery did not finish:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `pg_basebackup` with no WAL, so that a server started from it needs the WAL archive.
    /// It waits for the end WAL to be archived, so a broken `archive_command` would hang it:
    /// `timeout` turns that into a failure.
    pub fn base_backup_without_wal(&self, target: &Path) {
        with_timeout(300, as_postgres(pg_bin("pg_basebackup")))
            .args(["-U", "postgres", "-X", "none", "-c", "fast", "-h"])
            .arg(&self.socket_dir)
            .arg("-D")
            .arg(target)
            .ok();
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.running {
            let _ = as_postgres(pg_bin("pg_ctl"))
                .args(["-w", "-m", "immediate", "-D"])
                .arg(&self.data)
                .arg("stop")
                .output();
        }
    }
}
