//! The catalog maintenance loop of the real `manager instance`, against moto and the API
//! stand-in, with real backups: a throwaway PostgreSQL 15 archives its WAL with our
//! `barman-cloud-wal-archive` and is backed up with our `barman-cloud-backup`, and the loop
//! runs our `barman-cloud-backup-delete` and `barman-cloud-backup-list` as the sidecar runs
//! them (found through `PATH`, credentials from a Secret in the stand-in).
//!
//! A recovery window is measured in days and the backups are seconds old, so the three
//! backups have the `begin_time`/`end_time` of their `backup.info` moved 40, 30 and 10 days
//! back in the bucket; everything else in them is what our tools wrote. With a window of 7
//! days Barman's rule keeps only the newest of them (the one a recovery to the window's
//! start needs). `REDUNDANCY n` needs no such change.
//!
//! The Metrics service's `Collect` is tested here too: it reads the status the loop writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cnpg_plugin::barman::catalog::BarmanBackup;
use cnpg_plugin::metadata::PLUGIN_NAME;
use cnpg_plugin::proto::metrics::{CollectMetricsRequest, metrics_client::MetricsClient};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::rounds::{required, run_ok, unique};
use crate::support::apiserver::{ApiServer, NAMESPACE, object_path};
use crate::support::{Sidecar, barman_bin_dir, path_with_barman};

const CNPG: &str = "postgresql.cnpg.io/v1";
const STORE: &str = "store";
const SERVER: &str = "pg";
const CLUSTER_UID: &str = "uid-of-pg";
/// The Secret's values: distinctive, so a leak into the log is found.
const KEY_ID: &str = "retention-key-id-7c1d0e";
const SECRET_KEY: &str = "retention-secret-key-4f9b2a";

fn pg_bin(name: &str) -> PathBuf {
    let dir = std::env::var("BCRS_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    Path::new(&dir).join(name)
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` as the `postgres` user when the tests run as root (PostgreSQL refuses root).
fn as_postgres(program: impl AsRef<std::ffi::OsStr>) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL 15 on a Unix socket in its own directory, archiving to the bucket with our
/// `barman-cloud-wal-archive`; stopped on drop.
struct Postgres {
    dir: TempDir,
    data: PathBuf,
}

impl Postgres {
    fn start(archive_command: &str, env: &[(&str, String)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cnpg-retention-")
            .tempdir_in("/tmp")
            .unwrap();
        if running_as_root() {
            run_ok(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(dir.path()),
                "chown the PostgreSQL directory",
            );
        }
        let data = dir.path().join("data");
        run_ok(
            as_postgres(pg_bin("initdb"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data),
            "initdb",
        );
        let conf = format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\nfsync = off\n\
             wal_level = replica\narchive_mode = on\narchive_command = '{archive_command}'\n",
            dir.path().display()
        );
        // Appended as the file's owner would: the file keeps its owner and mode.
        let mut auto = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.auto.conf"))
            .unwrap();
        std::io::Write::write_all(&mut auto, conf.as_bytes()).unwrap();
        let pg = Self { dir, data };
        run_ok(
            as_postgres(pg_bin("pg_ctl"))
                .envs(env.iter().map(|(k, v)| (k, v)))
                .args(["-w", "-t", "60", "-D"])
                .arg(&pg.data)
                .arg("-l")
                .arg(pg.dir.path().join("server.log"))
                .arg("start"),
            "pg_ctl start",
        );
        pg
    }

    fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn sql(&self, sql: &str) -> String {
        run_ok(
            as_postgres(pg_bin("psql"))
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
                .arg(self.socket_dir())
                .args(["-c", sql, "postgres"]),
            "psql",
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(pg_bin("pg_ctl"))
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

/// `text` in a new temporary file (kept until the process ends: tiny).
fn write_temp(text: &str) -> PathBuf {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file.into_temp_path().keep().unwrap()
}

/// A bucket in moto, the stand-in with the store, its Secret and the Cluster, and a
/// PostgreSQL archiving there.
struct Rig {
    endpoint: String,
    bucket: String,
    api: ApiServer,
    pg: Postgres,
    controller: TempDir,
}

impl Rig {
    fn new(endpoint: String) -> Self {
        let bucket = unique("retention");
        run_ok(
            Command::new("curl").args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")]),
            "create the bucket",
        );
        let api = ApiServer::start();
        api.put_secret(
            "s3",
            &[
                ("ID", KEY_ID.as_bytes()),
                ("SECRET", SECRET_KEY.as_bytes()),
                ("REGION", b"us-east-1"),
            ],
        );
        let archive = format!(
            "{}/barman-cloud-wal-archive --endpoint-url {endpoint} --cloud-provider aws-s3 \
             s3://{bucket}/cluster {SERVER} %p",
            barman_bin_dir().display()
        );
        let pg = Postgres::start(&archive, &tool_env());
        let rig = Self {
            endpoint,
            bucket,
            api,
            pg,
            controller: tempfile::tempdir().unwrap(),
        };
        rig.put_store(json!({"retentionPolicy": "7d"}));
        rig.put_cluster("pg-1");
        rig
    }

    fn destination(&self) -> String {
        format!("s3://{}/cluster", self.bucket)
    }

    /// The ObjectStore with `spec` fields added to the configuration (a 1 s interval).
    fn put_store(&self, extra: Value) {
        let mut spec = json!({
            "configuration": {
                "destinationPath": self.destination(),
                "endpointURL": self.endpoint,
                "s3Credentials": {
                    "accessKeyId": {"name": "s3", "key": "ID"},
                    "secretAccessKey": {"name": "s3", "key": "SECRET"},
                    "region": {"name": "s3", "key": "REGION"}
                }
            },
            "instanceSidecarConfiguration": {"retentionPolicyIntervalSeconds": 1}
        });
        for (key, value) in extra.as_object().unwrap() {
            spec[key] = value.clone();
        }
        self.api.put(json!({
            "apiVersion": "barmancloud.cnpg.io/v1",
            "kind": "ObjectStore",
            "metadata": {"name": STORE, "namespace": NAMESPACE},
            "spec": spec,
        }));
    }

    fn put_cluster(&self, primary: &str) {
        self.api.put(cluster_object(primary));
    }

    /// A command of ours with the moto credentials.
    fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(barman_bin_dir().join(name));
        command.envs(tool_env());
        command.args([
            "--endpoint-url",
            &self.endpoint,
            "--cloud-provider",
            "aws-s3",
        ]);
        command
    }

    /// Takes a backup with our barman-cloud-backup after a little work and a WAL switch.
    fn backup(&self, marker: &str) {
        self.pg.sql(&format!(
            "CREATE TABLE {marker} AS SELECT generate_series(1, 1000) AS n; SELECT pg_switch_wal()"
        ));
        run_ok(
            self.tool("barman-cloud-backup")
                .args(["--immediate-checkpoint", "-U", "postgres", "-h"])
                .arg(self.pg.socket_dir())
                .args([&self.destination(), SERVER]),
            "barman-cloud-backup",
        );
    }

    /// The catalog, oldest first.
    fn catalog(&self) -> Vec<BarmanBackup> {
        let json = run_ok(
            self.tool("barman-cloud-backup-list").args([
                "--format",
                "json",
                &self.destination(),
                SERVER,
            ]),
            "barman-cloud-backup-list",
        );
        let mut backups = BarmanBackup::from_list(json.as_bytes()).unwrap();
        backups.sort_by_key(|b| b.backup_id.clone());
        backups
    }

    /// Every key under the server's prefix in the bucket.
    fn keys(&self, under: &str) -> BTreeSet<String> {
        let xml = run_ok(
            s3_curl().args([&format!(
                "{}/{}?list-type=2&prefix=cluster/{SERVER}/{under}",
                self.endpoint, self.bucket
            )]),
            "list the bucket",
        );
        xml.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    /// Moves a backup's times `days` back in its backup.info.
    fn age(&self, id: &str, days: i64) {
        let keys = self.keys("base/");
        let key = keys
            .iter()
            .find(|key| key.ends_with(&format!("/{id}/backup.info")))
            .unwrap_or_else(|| panic!("no backup.info of {id} in {keys:?}"));
        let url = format!("{}/{}/{key}", self.endpoint, self.bucket);
        let info = run_ok(s3_curl().arg(&url), "read backup.info");
        let aged: String = info
            .lines()
            .map(|line| match line.split_once('=') {
                Some((key @ ("begin_time" | "end_time"), value)) => {
                    let time = chrono::DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f%:z")
                        .unwrap_or_else(|e| panic!("{key}={value}: {e}"));
                    let earlier = time - chrono::Duration::days(days);
                    format!("{key}={}\n", earlier.format("%Y-%m-%d %H:%M:%S%.6f%:z"))
                }
                _ => format!("{line}\n"),
            })
            .collect();
        assert_ne!(aged, info);
        let file = write_temp(&aged);
        run_ok(
            // An upload, not form data: moto would take a form-encoded body as a form.
            s3_curl().arg("-T").arg(&file).arg(&url),
            "write backup.info",
        );
    }

    /// A Backup object as CloudNativePG records one the plugin took, for `id`.
    fn put_backup(&self, name: &str, id: &str, change: impl FnOnce(&mut Value)) {
        let mut backup = json!({
            "apiVersion": CNPG,
            "kind": "Backup",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"cluster": {"name": "pg"}, "method": "plugin"},
            "status": {
                "phase": "completed",
                "method": "plugin",
                "backupID": id,
                "pluginMetadata": {"clusterUID": CLUSTER_UID, "pluginName": PLUGIN_NAME}
            }
        });
        change(&mut backup);
        self.api.put(backup);
    }

    fn backup_names(&self) -> BTreeSet<String> {
        self.api
            .objects("backups")
            .iter()
            .map(|b| b["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn sidecar(&self, extra: &[(&str, &str)]) -> Sidecar {
        let path = path_with_barman();
        let mut env = vec![
            ("KUBECONFIG", self.api.kubeconfig().to_str().unwrap()),
            ("PATH", path.as_str()),
            (
                "BARMAN_CLOUD_CONTROLLER_DIR",
                self.controller.path().to_str().unwrap(),
            ),
        ];
        env.extend_from_slice(extra);
        let owned: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Sidecar::start_with_env(|_| {}, owned)
    }

    fn status_path(&self) -> String {
        format!(
            "{}/status",
            object_path("barmancloud.cnpg.io/v1", "objectstores", STORE)
        )
    }

    fn window(&self) -> Value {
        self.api.object("objectstores", STORE).unwrap()["status"]["serverRecoveryWindow"][SERVER]
            .clone()
    }
}

/// curl signing its requests with the test's keys (moto refuses anonymous object reads).
fn s3_curl() -> Command {
    let mut curl = Command::new("curl");
    curl.args(["-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{KEY_ID}:{SECRET_KEY}"));
    curl
}

/// The moto credentials for our tools run by the test and by PostgreSQL.
fn tool_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
    ]
}

fn cluster_object(primary: &str) -> Value {
    json!({
        "apiVersion": CNPG,
        "kind": "Cluster",
        "metadata": {"name": "pg", "namespace": NAMESPACE, "uid": CLUSTER_UID},
        "spec": {
            "instances": 2,
            "plugins": [{
                "name": PLUGIN_NAME,
                "isWALArchiver": true,
                "parameters": {"barmanObjectName": STORE}
            }]
        },
        "status": {"currentPrimary": primary}
    })
}

/// Waits up to 90 s for `done`.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The time as the loop writes it into the status.
fn api_time(backup: &BarmanBackup) -> String {
    backup
        .ended()
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn wals_of(keys: &BTreeSet<String>, segment: &str) -> bool {
    keys.iter().any(|key| key.contains(segment))
}

/// Three backups; the window keeps the newest: the loop deletes the other two and the WAL
/// only they need, exactly their Backup objects, and writes the window; a replica's sidecar
/// does nothing. Then two more backups and `REDUNDANCY 1` through the variable.
#[tokio::test]
async fn the_primary_applies_the_policy_and_deletes_the_backups_gone_from_the_catalog() {
    let Some(endpoint) = required("BCRS_S3_ENDPOINT") else {
        return;
    };
    let rig = Rig::new(endpoint);
    for marker in ["first", "second", "third"] {
        rig.backup(marker);
    }
    let taken = rig.catalog();
    assert_eq!(taken.len(), 3, "{taken:?}");
    let ids: Vec<&str> = taken.iter().map(|b| b.backup_id.as_str()).collect();
    // Barman keeps the newest backup older than the window (recovery to the window's start
    // needs it): with all three older than 7 days, that one is the only one kept.
    rig.age(ids[0], 40);
    rig.age(ids[1], 30);
    rig.age(ids[2], 10);
    let oldest_wal = taken[0].begin_wal.clone().unwrap();
    let kept_wal = taken[2].begin_wal.clone().unwrap();
    assert!(wals_of(&rig.keys("wals/"), &oldest_wal));

    for (name, id) in [("b-0", ids[0]), ("b-1", ids[1]), ("b-2", ids[2])] {
        rig.put_backup(name, id, |_| {});
    }
    // Backups of the deleted IDs that are not the loop's to delete.
    let decoys: [(&str, &str, Value); 6] = [
        ("other-cluster", "/spec/cluster/name", json!("other")),
        ("running", "/status/phase", json!("running")),
        ("snapshot", "/status/method", json!("volumeSnapshot")),
        (
            "earlier-cluster",
            "/status/pluginMetadata/clusterUID",
            json!("uid-old"),
        ),
        (
            "other-plugin",
            "/status/pluginMetadata/pluginName",
            json!("barman-cloud.example.com"),
        ),
        ("in-tree", "/status/method", json!("barmanObjectStore")),
    ];
    for (name, pointer, value) in &decoys {
        rig.put_backup(name, ids[0], |b| {
            *b.pointer_mut(pointer).unwrap() = value.clone()
        });
    }
    let before = rig.backup_names();

    // A replica's sidecar reads the Cluster and the store, and stops there.
    let cluster_path = object_path(CNPG, "clusters", "pg");
    let mut replica = rig.sidecar(&[("POD_NAME", "pg-2")]);
    wait_for("two cycles of the replica", || {
        rig.api.count("GET", &cluster_path) >= 2
    })
    .await;
    let (status, logs) = replica.stop("TERM").await;
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(
        logs.contains("Skipping retention policy enforcement, not the current primary"),
        "{logs}"
    );
    let methods: BTreeSet<String> = rig.api.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        BTreeSet::from(["GET".to_owned()]),
        "{:?}",
        rig.api.requests()
    );
    assert_eq!(rig.catalog().len(), 3);
    assert_eq!(rig.backup_names(), before);

    // The primary's: RECOVERY WINDOW OF 7 DAYS.
    rig.api.clear_requests();
    let mut primary = rig.sidecar(&[]);
    wait_for("the status update", || {
        rig.api.count("PUT", &rig.status_path()) >= 1
    })
    .await;
    let (status, logs) = primary.stop("TERM").await;
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(logs.contains("RECOVERY WINDOW OF 7 DAYS"), "{logs}");
    assert!(
        !logs.contains(SECRET_KEY) && !logs.contains(KEY_ID),
        "{logs}"
    );
    let left = rig.catalog();
    assert_eq!(
        left.iter()
            .map(|b| b.backup_id.as_str())
            .collect::<Vec<_>>(),
        [ids[2]],
        "{logs}"
    );
    let wals = rig.keys("wals/");
    assert!(!wals_of(&wals, &oldest_wal), "{wals:?}");
    assert!(wals_of(&wals, &kept_wal), "{wals:?}");
    assert!(rig.keys("base/").iter().all(|key| key.contains(ids[2])));
    let mut expected = before.clone();
    expected.remove("b-0");
    expected.remove("b-1");
    assert_eq!(rig.backup_names(), expected);
    assert_eq!(
        rig.window()["firstRecoverabilityPoint"],
        json!(api_time(&left[0]))
    );
    assert_eq!(
        rig.window()["lastSuccessfulBackupTime"],
        json!(api_time(&left[0]))
    );

    // Metrics read that status.
    let window_seconds = left[0].ended().unwrap().timestamp() as f64;
    let mut metrics_sidecar = rig.sidecar(&[("POD_NAME", "pg-2")]);
    let collected = MetricsClient::new(metrics_sidecar.connect().await)
        .collect(CollectMetricsRequest {
            cluster_definition: cluster_object("pg-1").to_string().into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<(String, f64)> = collected
        .metrics
        .into_iter()
        .map(|m| (m.fq_name, m.value))
        .collect();
    assert_eq!(
        values,
        [
            (
                "barman_cloud_cloudnative_pg_io_first_recoverability_point".to_owned(),
                window_seconds
            ),
            (
                "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp".to_owned(),
                window_seconds
            ),
            (
                "barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp".to_owned(),
                0.0
            ),
        ]
    );
    let _ = metrics_sidecar.stop("TERM").await;

    // Two more, and REDUNDANCY 1 from the sidecar's environment replaces the window.
    rig.backup("fourth");
    rig.backup("fifth");
    let taken = rig.catalog();
    assert_eq!(taken.len(), 3, "{taken:?}");
    rig.put_backup("b-3", &taken[1].backup_id, |_| {});
    rig.put_backup("b-4", &taken[2].backup_id, |_| {});
    rig.api.clear_requests();
    let mut primary = rig.sidecar(&[("BARMAN_CLOUD_RETENTION_POLICY", "REDUNDANCY 1")]);
    wait_for("the status update", || {
        rig.api.count("PUT", &rig.status_path()) >= 1
    })
    .await;
    let (status, logs) = primary.stop("TERM").await;
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(logs.contains("REDUNDANCY 1"), "{logs}");
    let left = rig.catalog();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].backup_id, taken[2].backup_id);
    let wals = rig.keys("wals/");
    assert!(
        !wals_of(&wals, taken[0].begin_wal.as_deref().unwrap()),
        "{wals:?}"
    );
    assert!(
        wals_of(&wals, taken[2].begin_wal.as_deref().unwrap()),
        "{wals:?}"
    );
    let mut expected_now = expected;
    expected_now.remove("b-2");
    expected_now.insert("b-4".to_owned());
    assert_eq!(rig.backup_names(), expected_now);
    assert_eq!(
        rig.window()["firstRecoverabilityPoint"],
        json!(api_time(&left[0]))
    );

    // Without a policy nothing is deleted from the store, but a Backup whose backup left
    // the catalog some other way still goes, and the window is still written.
    rig.put_store(json!({}));
    rig.put_backup("b-elsewhere", "20200101T000000", |_| {});
    rig.api.modify("objectstores", STORE, |store| {
        store["status"] = json!({});
    });
    rig.api.clear_requests();
    let mut primary = rig.sidecar(&[]);
    wait_for("the status update", || {
        rig.api.count("PUT", &rig.status_path()) >= 1
    })
    .await;
    let (status, logs) = primary.stop("TERM").await;
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(
        logs.contains("Skipping retention policy enforcement, no retention policy specified"),
        "{logs}"
    );
    assert!(!logs.contains("barman-cloud-backup-delete"), "{logs}");
    assert_eq!(rig.catalog(), left);
    assert_eq!(rig.backup_names(), expected_now);
    assert_eq!(
        rig.window()["lastSuccessfulBackupTime"],
        json!(api_time(&left[0]))
    );
}

/// barman-cloud-backup-delete fails (the bucket does not exist): a Warning Event on the
/// Cluster, nothing deleted, no status written, and the next try after the retry interval.
#[tokio::test]
async fn a_failing_delete_posts_a_warning_event() {
    let Some(endpoint) = required("BCRS_S3_ENDPOINT") else {
        return;
    };
    let api = ApiServer::start();
    api.put_secret(
        "s3",
        &[("ID", KEY_ID.as_bytes()), ("SECRET", SECRET_KEY.as_bytes())],
    );
    api.put(json!({
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": {"name": STORE, "namespace": NAMESPACE},
        "spec": {
            "configuration": {
                "destinationPath": format!("s3://{}/cluster", unique("missing")),
                "endpointURL": endpoint,
                "s3Credentials": {
                    "accessKeyId": {"name": "s3", "key": "ID"},
                    "secretAccessKey": {"name": "s3", "key": "SECRET"}
                }
            },
            "retentionPolicy": "30d"
        }
    }));
    api.put(cluster_object("pg-1"));
    let controller = tempfile::tempdir().unwrap();
    let path = path_with_barman();
    let mut sidecar = Sidecar::start_with_env(
        |_| {},
        [
            ("KUBECONFIG", api.kubeconfig().to_str().unwrap()),
            ("PATH", path.as_str()),
            (
                "BARMAN_CLOUD_CONTROLLER_DIR",
                controller.path().to_str().unwrap(),
            ),
            ("BARMAN_CLOUD_RETENTION_RETRY_SECONDS", "1"),
        ],
    );
    wait_for("two events", || api.objects("events").len() >= 2).await;
    let (status, logs) = sidecar.stop("TERM").await;
    assert!(status.success(), "{status:?}\n{logs}");
    for event in api.objects("events") {
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "RetentionPolicyFailed");
        assert_eq!(event["message"], "Retention policy failed");
        assert_eq!(event["involvedObject"]["kind"], "Cluster");
        assert_eq!(event["involvedObject"]["name"], "pg");
        assert_eq!(event["involvedObject"]["uid"], CLUSTER_UID);
    }
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" || r.method == "POST"),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.path.ends_with("/backups")),
        "{requests:?}"
    );
    assert!(
        logs.contains("Retention policy enforcement failed"),
        "{logs}"
    );
    assert!(logs.contains("barman-cloud-backup-delete"), "{logs}");
    assert!(!logs.contains(SECRET_KEY), "{logs}");
}

/// A Cluster without the plugin enabled is skipped; one without `barmanObjectName` is an
/// error; neither reads a store.
#[tokio::test]
async fn a_cluster_without_the_plugin_is_skipped() {
    for (plugins, message) in [
        (
            json!([{"name": PLUGIN_NAME, "enabled": false, "parameters": {"barmanObjectName": STORE}}]),
            None,
        ),
        (json!([]), None),
        (
            json!([{"name": PLUGIN_NAME, "parameters": {}}]),
            Some("has no barmanObjectName parameter"),
        ),
    ] {
        let api = ApiServer::start();
        let mut cluster = cluster_object("pg-1");
        cluster["spec"]["plugins"] = plugins;
        api.put(cluster);
        let mut sidecar = Sidecar::start_with_env(
            |_| {},
            [
                ("KUBECONFIG", api.kubeconfig().to_str().unwrap()),
                ("BARMAN_CLOUD_RETENTION_RETRY_SECONDS", "1"),
            ],
        );
        let cluster_path = object_path(CNPG, "clusters", "pg");
        wait_for("two cycles", || api.count("GET", &cluster_path) >= 2).await;
        let (status, logs) = sidecar.stop("TERM").await;
        assert!(status.success(), "{status:?}\n{logs}");
        assert!(
            api.requests().iter().all(|r| r.path == cluster_path),
            "{:?}",
            api.requests()
        );
        match message {
            Some(message) => assert!(logs.contains(message), "{logs}"),
            None => assert!(
                !logs.contains("Retention policy enforcement failed"),
                "{logs}"
            ),
        }
    }
}

/// `Collect` with a store that has no status for the server: three zeros.
#[tokio::test]
async fn metrics_are_zero_without_a_window() {
    let api = ApiServer::start();
    api.put_object_store(STORE, json!({"destinationPath": "s3://b/p"}));
    api.modify("objectstores", STORE, |store| {
        store["status"] = json!({"serverRecoveryWindow": {"other": {
            "firstRecoverabilityPoint": "2026-11-25T03:50:49Z"
        }}});
    });
    let mut sidecar =
        Sidecar::start_with_env(|_| {}, [("KUBECONFIG", api.kubeconfig().to_str().unwrap())]);
    let mut client = MetricsClient::new(sidecar.connect().await);
    let collected = client
        .collect(CollectMetricsRequest {
            cluster_definition: cluster_object("pg-1").to_string().into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(collected.metrics.len(), 3);
    assert!(collected.metrics.iter().all(|m| m.value == 0.0));
    // The server name comes from the Cluster's parameters.
    let mut cluster = cluster_object("pg-1");
    cluster["spec"]["plugins"][0]["parameters"]["serverName"] = json!("other");
    let collected = client
        .collect(CollectMetricsRequest {
            cluster_definition: cluster.to_string().into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(collected.metrics[0].value, 1_795_578_649.0);
    let refused = client
        .collect(CollectMetricsRequest {
            cluster_definition: b"{".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let _ = sidecar.stop("TERM").await;
}
