//! The pieces of a WAL test, each real but CloudNativePG and Kubernetes: a bucket on the
//! S3 emulator (moto), the Kubernetes API stand-in holding the ObjectStores and the
//! credentials' Secret, `manager instance` started as the `postgres` user (in a Pod both
//! containers run as the same user, and PostgreSQL's commands must reach its socket and read
//! the files it writes), and the CNPG stand-in ([`standin`]) PostgreSQL runs as its
//! `archive_command` and `restore_command`.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cnpg_plugin::client::{connect, socket_path};
use cnpg_plugin::metadata::PLUGIN_NAME;
use serde_json::{Value, json};
use tempfile::TempDir;
use tonic::transport::Channel;

use super::postgres::TestCommand;
use crate::support::apiserver::ApiServer;
use crate::support::path_with_barman;

/// The Secret holding the emulator's credentials, and its keys.
pub(crate) const SECRET: &str = "moto-credentials";
/// The access key (moto takes any).
pub(crate) const ACCESS_KEY_ID: &str = "wal-rig-access-key";
/// The secret key: distinctive, so a test can look for it where it must never be.
pub(crate) const SECRET_ACCESS_KEY: &str = "wal-rig-SECRET-9f2c71d4e8";
/// The server name every Cluster of these tests archives under.
pub(crate) const SERVER: &str = "pg";

/// One test's bucket, API stand-in and scratch directory (readable by `postgres`).
pub(crate) struct Rig {
    pub(crate) api: ApiServer,
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    pub(crate) root: PathBuf,
    _dir: TempDir,
}

/// Whether a missing service fails the test instead of skipping it (CI sets it).
fn services_required() -> bool {
    std::env::var("BCRS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// `BCRS_S3_ENDPOINT`, or `None` (skip, with a message) unless services are required.
fn s3_endpoint() -> Option<String> {
    match std::env::var("BCRS_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ if services_required() => {
            panic!("BCRS_S3_ENDPOINT is not set: start the rig with harness/services.sh start")
        }
        _ => {
            eprintln!("skipped: BCRS_S3_ENDPOINT is not set (harness/services.sh start)");
            None
        }
    }
}

/// Makes `path` (a directory or file) usable by anyone.
pub(crate) fn open_up(path: &Path) {
    let mode = if path.is_dir() { 0o777 } else { 0o666 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A directory anyone can write, created with its parents.
pub(crate) fn shared_dir(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    open_up(path);
    path.to_owned()
}

/// Writes `value` as JSON to `path`, readable by anyone.
pub(crate) fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, value.to_string()).unwrap();
    open_up(path);
}

/// The CNPG stand-in (`examples/cnpg_standin.rs`), built by `cargo test` beside the tests.
pub(crate) fn standin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in <target>/<profile>/deps");
    let standin = debug.join("examples").join("cnpg_standin");
    assert!(
        standin.is_file(),
        "no {}: build the examples as programs first (`cargo build -p cnpg-plugin --examples`; \
         `cargo test -p cnpg-plugin` does it too, not with --all-targets or --test)",
        standin.display()
    );
    standin
}

/// The uid and gid of `postgres` when the tests run as root, else `None` (run as we are).
fn postgres_ids() -> Option<(u32, u32)> {
    if !super::postgres::pg::running_as_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres")).then(|| {
            (
                fields[2].parse().expect("a uid"),
                fields[3].parse().expect("a gid"),
            )
        })
    })
}

impl Rig {
    /// A fresh bucket and API stand-in with the credentials' Secret; `None` when the S3
    /// emulator is not running (and not required).
    pub(crate) fn new() -> Option<Self> {
        let endpoint = s3_endpoint()?;
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let bucket = format!(
            "cnpg-wal-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000_000
        );
        Command::new("curl")
            .args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")])
            .ok();
        let api = ApiServer::start();
        api.put_secret(
            SECRET,
            &[
                ("ACCESS_KEY_ID", ACCESS_KEY_ID.as_bytes()),
                ("ACCESS_SECRET_KEY", SECRET_ACCESS_KEY.as_bytes()),
                ("REGION", b"us-east-1"),
            ],
        );
        let dir = tempfile::Builder::new()
            .prefix("cnpg-wal-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = shared_dir(dir.path());
        std::fs::copy(api.kubeconfig(), root.join("kubeconfig")).unwrap();
        open_up(&root.join("kubeconfig"));
        Some(Self {
            api,
            endpoint,
            bucket,
            root,
            _dir: dir,
        })
    }

    /// `s3://BUCKET/NAME`, the destination of the ObjectStore `name`.
    pub(crate) fn destination(&self, name: &str) -> String {
        format!("s3://{}/{name}", self.bucket)
    }

    /// The `spec.configuration` of an ObjectStore on this bucket, with `wal` settings.
    pub(crate) fn configuration(&self, name: &str, wal: Value) -> Value {
        json!({
            "destinationPath": self.destination(name),
            "endpointURL": self.endpoint,
            "s3Credentials": {
                "accessKeyId": {"name": SECRET, "key": "ACCESS_KEY_ID"},
                "secretAccessKey": {"name": SECRET, "key": "ACCESS_SECRET_KEY"},
                "region": {"name": SECRET, "key": "REGION"},
            },
            "wal": wal,
        })
    }

    /// Stores the ObjectStore `name` (destination `s3://BUCKET/NAME`) with `wal` settings.
    pub(crate) fn object_store(&self, name: &str, wal: Value) {
        self.api
            .put_object_store(name, self.configuration(name, wal));
    }

    /// The keys under `prefix` in the bucket, sorted.
    pub(crate) fn keys(&self, prefix: &str) -> Vec<String> {
        let listing = Command::new("curl")
            .args([
                "-sf",
                &format!(
                    "{}/{}?list-type=2&max-keys=1000&prefix={prefix}",
                    self.endpoint, self.bucket
                ),
            ])
            .ok();
        let mut keys: Vec<String> = listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// The environment a `barman-cloud-*` tool needs to reach the bucket.
    pub(crate) fn aws_env(&self) -> [(&'static str, &'static str); 3] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ]
    }

    /// Starts `manager instance` for Pod `pod` with PGDATA `pgdata`, its spool, controller
    /// and plugin directories under `<root>/<pod>/`.
    pub(crate) async fn sidecar(&self, pod: &str, pgdata: &Path) -> Sidecar {
        self.start("instance", pod, pgdata, &[]).await
    }

    /// As [`Rig::sidecar`], with `env` added (a Backup needs `PGHOST` and `PGPORT`, which the
    /// sidecar inherits from PostgreSQL's container in a Pod).
    pub(crate) async fn sidecar_with_env(
        &self,
        pod: &str,
        pgdata: &Path,
        env: &[(&str, &Path)],
    ) -> Sidecar {
        self.start("instance", pod, pgdata, env).await
    }

    /// Starts `manager restore` (the recovery Job's sidecar, no `CLUSTER_NAME`) for Pod
    /// `pod`, with `env` on top (the WAL volume's path).
    pub(crate) async fn restore_sidecar(
        &self,
        pod: &str,
        pgdata: &Path,
        env: &[(&str, &Path)],
    ) -> Sidecar {
        self.start("restore", pod, pgdata, env).await
    }

    async fn start(&self, role: &str, pod: &str, pgdata: &Path, env: &[(&str, &Path)]) -> Sidecar {
        let home = shared_dir(&self.root.join(pod));
        let spool = shared_dir(&home.join("spool"));
        let controller = shared_dir(&home.join("controller"));
        let plugins = shared_dir(&home.join("plugins"));
        let log_path = home.join("sidecar.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_manager"));
        command
            .env_clear()
            .env("PATH", path_with_barman())
            .env("NAMESPACE", "default")
            .env("POD_NAME", pod)
            .env("PGDATA", pgdata)
            .env("SPOOL_DIRECTORY", &spool)
            .env("BARMAN_CLOUD_CONTROLLER_DIR", &controller)
            .env("KUBECONFIG", self.root.join("kubeconfig"))
            .env("HOME", &home)
            .args(["--log-level", "debug", "--plugin-path"])
            .arg(&plugins)
            .arg(role)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if role == "instance" {
            command.env("CLUSTER_NAME", "pg");
        }
        command.envs(env.iter().copied());
        if let Some((uid, gid)) = postgres_ids() {
            command.uid(uid).gid(gid);
        }
        let child = command.spawn().expect("start manager");
        let sidecar = Sidecar {
            child: Some(child),
            socket: socket_path(&plugins),
            spool,
            controller,
            log_path,
        };
        sidecar.channel().await;
        sidecar
    }
}

/// A running `manager instance` or `manager restore`, killed on drop.
pub(crate) struct Sidecar {
    child: Option<Child>,
    /// Its socket.
    pub(crate) socket: PathBuf,
    /// Its `SPOOL_DIRECTORY`.
    pub(crate) spool: PathBuf,
    /// Its `BARMAN_CLOUD_CONTROLLER_DIR`.
    pub(crate) controller: PathBuf,
    log_path: PathBuf,
}

impl Sidecar {
    /// A connection, once the socket accepts them.
    pub(crate) async fn channel(&self) -> Channel {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match connect(&self.socket).await {
                Ok(channel) => return channel,
                Err(error) if Instant::now() > deadline => {
                    panic!(
                        "the sidecar did not listen within 30 s: {error}\n{}",
                        self.log()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The stand-in's command line for `wal-archive` or `wal-restore`, reading the Cluster
    /// from `cluster`, with PostgreSQL's `%p` / `%f %p` after it.
    pub(crate) fn command(&self, cluster: &Path, call: &str) -> String {
        format!(
            "{} --socket {} --cluster {} {call}",
            standin().display(),
            self.socket.display(),
            cluster.display()
        )
    }

    /// Everything the sidecar logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The log's JSON lines.
    pub(crate) fn log_lines(&self) -> Vec<Value> {
        self.log()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line {line:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// The argument vectors `program` was run with, in order.
    pub(crate) fn executed(&self, program: &str) -> Vec<Vec<String>> {
        self.log_lines()
            .into_iter()
            .filter(|line| {
                line["msg"] == "Executing barman-cloud command" && line["logger"] == program
            })
            .map(|line| {
                line["args"]
                    .as_array()
                    .expect("args is a list")
                    .iter()
                    .map(|a| a.as_str().expect("each argument is a string").to_owned())
                    .collect()
            })
            .collect()
    }

    /// How many log lines have this `msg`.
    pub(crate) fn logged(&self, msg: &str) -> usize {
        self.log_lines().iter().filter(|l| l["msg"] == msg).count()
    }

    /// The names in the spool, sorted.
    pub(crate) fn spooled(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.spool)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Cluster `pg` archiving to `store` (when given) under [`SERVER`], with this
/// `status.currentPrimary`.
pub(crate) fn cluster(store: Option<&str>, current_primary: &str) -> Value {
    let mut parameters = json!({"serverName": SERVER});
    if let Some(store) = store {
        parameters["barmanObjectName"] = json!(store);
    }
    json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg", "namespace": "default", "uid": "cluster-uid"},
        "spec": {
            "instances": 2,
            "plugins": [{"name": PLUGIN_NAME, "isWALArchiver": true, "parameters": parameters}],
        },
        "status": {"currentPrimary": current_primary},
    })
}

/// A Cluster `pg-copy` bootstrapping (no primary yet) from `store`'s server `server`.
pub(crate) fn recovering_cluster(store: &str, server: &str) -> Value {
    json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg-copy", "namespace": "default", "uid": "copy-uid"},
        "spec": {
            "bootstrap": {"recovery": {"source": "origin"}},
            "externalClusters": [{"name": "origin", "plugin": {"name": PLUGIN_NAME,
                "parameters": {"barmanObjectName": store, "serverName": server}}}],
        },
        "status": {"currentPrimary": ""},
    })
}

/// Bytes of `cluster` for a CNPG-I request.
pub(crate) fn definition(cluster: &Value) -> Vec<u8> {
    cluster.to_string().into_bytes()
}

/// Polls `done` every 100 ms until it holds; panics with `what()` after `limit`.
pub(crate) async fn wait_until(
    limit: Duration,
    what: impl Fn() -> String,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "not within {limit:?}: {}",
            what()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
