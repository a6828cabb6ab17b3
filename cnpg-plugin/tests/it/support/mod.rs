//! Runs `manager instance` on a temporary `--plugin-path` and connects to it the way
//! CloudNativePG's instance manager does (plaintext HTTP/2 on the Unix socket); the
//! Kubernetes API stand-in it reads objects from ([`apiserver`]).

pub(crate) mod apiserver;

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cnpg_plugin::client::{connect, socket_path};
use tempfile::TempDir;
use tonic::transport::Channel;

/// The environment the plugin's operator gives the instance sidecar.
pub(crate) const INSTANCE_ENV: [(&str, &str); 5] = [
    ("NAMESPACE", "default"),
    ("CLUSTER_NAME", "pg"),
    ("POD_NAME", "pg-1"),
    ("PGDATA", "/var/lib/postgresql/data/pgdata"),
    ("SPOOL_DIRECTORY", "/controller/wal-restore-spool"),
];

/// The environment the plugin's operator gives the recovery Job's sidecar: no Cluster
/// name (the Job's Pod has none to give).
pub(crate) const RESTORE_ENV: [(&str, &str); 4] = [
    ("NAMESPACE", "default"),
    ("POD_NAME", "pg-copy-1-full-recovery"),
    ("PGDATA", "/var/lib/postgresql/data/pgdata"),
    ("SPOOL_DIRECTORY", "/controller/wal-restore-spool"),
];

/// `manager` with a clean environment (only PATH kept) plus `env`.
pub(crate) fn manager(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_manager"));
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(env.iter().copied());
    command
}

/// The directory of our root crate's `barman-cloud-*` binaries: cargo builds them
/// (`cargo build --bins` in the root package) into the same target directory as `manager`.
/// Panics with the command to run when they are not there.
pub(crate) fn barman_bin_dir() -> PathBuf {
    let manager = Path::new(env!("CARGO_BIN_EXE_manager"));
    let dir = manager
        .parent()
        .expect("manager is in a directory")
        .to_owned();
    assert!(
        dir.join("barman-cloud-wal-archive").is_file(),
        "no barman-cloud-wal-archive in {}: build the root binaries first (cargo build --bins \
         in the repository root, same CARGO_TARGET_DIR)",
        dir.display()
    );
    dir
}

/// `PATH` with [`barman_bin_dir`] first, so a bare `barman-cloud-wal-archive` is ours.
pub(crate) fn path_with_barman() -> String {
    let mut path = barman_bin_dir().to_string_lossy().into_owned();
    if let Some(rest) = std::env::var_os("PATH") {
        path.push(':');
        path.push_str(&rest.to_string_lossy());
    }
    path
}

/// `manager --plugin-path DIR healthcheck unix`.
pub(crate) fn healthcheck(plugin_path: &Path) -> Output {
    manager(&[])
        .arg("--plugin-path")
        .arg(plugin_path)
        .args(["healthcheck", "unix"])
        .output()
        .expect("run manager healthcheck unix")
}

/// A running `manager instance` or `manager restore`, killed if a test fails before
/// stopping it.
pub(crate) struct Sidecar {
    /// Holds the plugin directory's parent.
    _dir: TempDir,
    /// The `--plugin-path` given (created by the sidecar).
    pub(crate) plugin_path: PathBuf,
    child: Option<Child>,
    /// Reads the sidecar's stderr as it comes: a pipe nobody empties blocks the sidecar's
    /// logging once the kernel's buffer (64 KiB) is full.
    logs: Option<JoinHandle<String>>,
}

impl Sidecar {
    /// Starts `manager instance` on `<tmp>/plugins` after `prepare` has run on that path
    /// (the directory does not exist yet unless `prepare` makes it).
    pub(crate) fn start(prepare: impl FnOnce(&Path)) -> Self {
        Self::start_with_env(prepare, std::iter::empty::<(&str, &str)>())
    }

    /// As [`Sidecar::start`], with `env` added after [`INSTANCE_ENV`] (so it may replace
    /// `PGDATA`, `SPOOL_DIRECTORY` or `PATH`): `KUBECONFIG` of an [`apiserver::ApiServer`],
    /// `PATH` from [`path_with_barman`], `BARMAN_CLOUD_CONTROLLER_DIR`, ….
    pub(crate) fn start_with_env<K, V>(
        prepare: impl FnOnce(&Path),
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Self::start_role("instance", &INSTANCE_ENV, prepare, env)
    }

    /// `manager restore` (the recovery Job's sidecar) with [`RESTORE_ENV`], as
    /// [`Sidecar::start`].
    pub(crate) fn start_restore(prepare: impl FnOnce(&Path)) -> Self {
        Self::start_role(
            "restore",
            &RESTORE_ENV,
            prepare,
            std::iter::empty::<(&str, &str)>(),
        )
    }

    fn start_role<K, V>(
        role: &str,
        base: &[(&str, &str)],
        prepare: impl FnOnce(&Path),
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let dir = tempfile::tempdir().expect("make a temp dir");
        let plugin_path = dir.path().join("plugins");
        prepare(&plugin_path);
        let mut child = manager(base)
            .envs(env)
            .arg("--plugin-path")
            .arg(&plugin_path)
            .arg(role)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start manager");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let logs = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).expect("UTF-8 logs");
            text
        });
        Self {
            _dir: dir,
            plugin_path,
            child: Some(child),
            logs: Some(logs),
        }
    }

    /// The socket path.
    pub(crate) fn socket(&self) -> PathBuf {
        socket_path(&self.plugin_path)
    }

    /// Connects once the socket accepts connections (a stale file may be there before).
    pub(crate) async fn connect(&self) -> Channel {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match connect(&self.socket()).await {
                Ok(channel) => return channel,
                Err(error) if Instant::now() > deadline => {
                    panic!("the sidecar did not listen within 30 s: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Sends `signal` (TERM, INT) and waits for the exit; returns the status and stderr.
    /// Async, so the test's runtime keeps driving client connections (and answers the
    /// server's GOAWAY) while the sidecar shuts down.
    pub(crate) async fn stop(&mut self, signal: &str) -> (ExitStatus, String) {
        let child = self.child.take().expect("the sidecar is running");
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
        let status = wait_with_timeout(child, Duration::from_secs(30)).await;
        let logs = self.logs.take().expect("stderr is read");
        (status, logs.join().expect("read the sidecar's stderr"))
    }
}

async fn wait_with_timeout(mut child: Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("poll the sidecar").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the sidecar did not stop within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.wait().expect("reap the sidecar")
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Each stderr line parsed as JSON; panics on a line that is not a JSON object.
pub(crate) fn json_lines(logs: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("log line {line:?} is not JSON: {error}"));
            assert!(value.is_object(), "log line {line:?} is not an object");
            value
        })
        .collect()
}
