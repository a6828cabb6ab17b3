//! The Backup call end to end (issue #15, Backup): CloudNativePG's instance manager asks the
//! sidecar of a running PostgreSQL 15 (archiving through the CNPG stand-in) for a backup; the
//! sidecar runs our real `barman-cloud-backup`, `-backup-show` and `-backup-list` against the
//! S3 emulator and writes the recovery window into the ObjectStore of the Kubernetes API
//! stand-in.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::DateTime;
use cnpg_plugin::metadata::{PLUGIN_NAME, PLUGIN_VERSION};
use cnpg_plugin::proto::backup::{BackupRequest, BackupResult, backup_client::BackupClient};
use serde_json::{Value, json};
use tonic::Code;

use crate::support::barman_bin_dir;
use crate::wal::postgres::TestCommand;
use crate::wal::postgres::pg::{Pg, as_postgres};
use crate::wal::replay::barman_bin;
use crate::wal::rig::{
    Rig, SECRET_ACCESS_KEY, SERVER, Sidecar, cluster, definition, shared_dir, write_json,
};

const STORE: &str = "backups";

fn request(cluster: &Value) -> BackupRequest {
    BackupRequest {
        cluster_definition: definition(cluster),
        backup_definition: json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "default"},
            "spec": {"method": "plugin", "pluginConfiguration": {"name": PLUGIN_NAME}}})
        .to_string()
        .into_bytes(),
        parameters: Default::default(),
    }
}

async fn take(sidecar: &Sidecar, cluster: &Value) -> Result<BackupResult, tonic::Status> {
    BackupClient::new(sidecar.channel().await)
        .backup(request(cluster))
        .await
        .map(tonic::Response::into_inner)
}

/// What our `barman-cloud-backup-show` says of `backup` in the rig's store, run here.
fn show(rig: &Rig, backup: &str) -> Value {
    let out = std::process::Command::new(barman_bin_dir().join("barman-cloud-backup-show"))
        .envs(rig.aws_env())
        .args([
            "--format",
            "json",
            "--cloud-provider",
            "aws-s3",
            "--endpoint-url",
        ])
        .arg(&rig.endpoint)
        .args([&rig.destination(STORE), SERVER, backup])
        .ok();
    serde_json::from_str::<Value>(&out).expect("backup-show JSON")["cloud"].clone()
}

fn seconds(iso: &Value) -> i64 {
    DateTime::parse_from_rfc3339(iso.as_str().expect("an ISO time"))
        .expect("RFC 3339")
        .timestamp()
}

/// `status.serverRecoveryWindow[SERVER]` of the store in the API stand-in.
fn window(rig: &Rig) -> Value {
    let store = rig
        .api
        .object("objectstores", STORE)
        .expect("the ObjectStore");
    store["status"]["serverRecoveryWindow"][SERVER].clone()
}

/// The end time of `shown` as the API stores it (seconds, UTC).
fn api_time(shown: &Value) -> Value {
    let end = DateTime::parse_from_rfc3339(shown["end_time_iso"].as_str().unwrap()).unwrap();
    json!(
        end.with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_call_returns_what_backup_show_says_and_records_the_window() {
    let Some(rig) = Rig::new() else { return };
    // An immediate checkpoint, or pg_backup_start waits for a spread one (minutes).
    let mut configuration = rig.configuration(STORE, json!({}));
    configuration["data"] = json!({"immediateCheckpoint": true, "jobs": 1});
    rig.api.put_object_store(STORE, configuration);
    let mut primary = Pg::init(&shared_dir(&rig.root.join("primary")));
    let socket_dir = primary.socket_dir().to_owned();
    let sidecar = rig
        .sidecar_with_env(
            "pg-1",
            &primary.data,
            &[("PGHOST", &socket_dir), ("PGPORT", Path::new("5432"))],
        )
        .await;
    let cluster = cluster(Some(STORE), "pg-1");
    let cluster_file = rig.root.join("cluster.json");
    write_json(&cluster_file, &cluster);
    primary.conf(&format!(
        "archive_mode = on\narchive_command = '{}'\n",
        sidecar.command(&cluster_file, "wal-archive %p")
    ));
    primary.start();
    primary.pgbench(&["-i", "-s", "1", "-q"]);
    // Another writer touched the store since the sidecar read it: the PUT must retry.
    rig.api.inject_conflicts(1);

    let first = take(&sidecar, &cluster)
        .await
        .unwrap_or_else(|status| panic!("{status:?}\n{}", sidecar.log()));
    let shown = show(&rig, &first.backup_id);
    assert_eq!(shown["backup_id"], json!(first.backup_id));
    assert_eq!(shown["backup_name"], json!(first.backup_name));
    let name = first.backup_name.strip_prefix("backup-").expect("backup-…");
    assert!(
        name.len() == 14 && name.bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
    assert_eq!(shown["begin_wal"], json!(first.begin_wal));
    assert_eq!(shown["end_wal"], json!(first.end_wal));
    assert_eq!(shown["begin_xlog"], json!(first.begin_lsn));
    assert_eq!(shown["end_xlog"], json!(first.end_lsn));
    assert_eq!(seconds(&shown["begin_time_iso"]), first.started_at);
    assert_eq!(seconds(&shown["end_time_iso"]), first.stopped_at);
    assert!(!first.begin_wal.is_empty() && !first.end_lsn.is_empty());
    assert_eq!(first.instance_id, "pg-1");
    assert!(first.online);
    assert!(first.backup_label_file.is_empty() && first.tablespace_map_file.is_empty());
    let metadata = &first.metadata;
    assert_eq!(metadata["timeline"], shown["timeline"].to_string());
    assert_eq!(metadata["clusterUID"], "cluster-uid");
    assert_eq!(metadata["pluginName"], PLUGIN_NAME);
    assert_eq!(metadata["name"], PLUGIN_NAME);
    assert_eq!(metadata["version"], PLUGIN_VERSION);
    assert_eq!(metadata["displayName"], "BarmanCloudInstance");

    // The plugin's command line, and TMPDIR in the controller volume.
    let executed = sidecar.executed("barman-cloud-backup");
    assert_eq!(executed.len(), 1);
    assert_eq!(
        executed[0][..4],
        ["--user", "postgres", "--name", first.backup_name.as_str()]
    );
    assert!(
        executed[0]
            .windows(3)
            .any(|w| w == ["--immediate-checkpoint", "--jobs", "1"]),
        "{executed:?}"
    );
    assert_eq!(
        executed[0][executed[0].len() - 2..],
        [rig.destination(STORE), SERVER.to_owned()]
    );
    let window_after_first = window(&rig);
    assert_eq!(
        window_after_first["firstRecoverabilityPoint"],
        api_time(&shown)
    );
    assert_eq!(
        window_after_first["lastSuccessfulBackupTime"],
        api_time(&shown)
    );

    // A second backup (a second later: names and IDs have one-second resolution) moves the
    // end of the window, not its start.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    primary.pgbench(&["-t", "200"]);
    let second = take(&sidecar, &cluster).await.unwrap();
    assert_ne!(second.backup_id, first.backup_id);
    let window = window(&rig);
    assert_eq!(window["firstRecoverabilityPoint"], api_time(&shown));
    assert_eq!(
        window["lastSuccessfulBackupTime"],
        api_time(&show(&rig, &second.backup_id))
    );
    assert!(window.get("lastFailedBackupTime").is_none());
    assert!(!sidecar.log().contains(SECRET_ACCESS_KEY));

    // The other way round from wal::bootstrap's: Barman's own tools restore the sidecar's
    // backup and its WAL.
    if let Some(barman) = barman_bin() {
        restore_with_barman(&rig, &barman, &primary, &second.backup_id);
    }
    primary.stop();
}

/// What the restore must reproduce: every row of pgbench's tables.
fn pgbench_rows(pg: &Pg) -> String {
    pg.sql(
        "SELECT (SELECT md5(string_agg(a::text, ',' ORDER BY aid)) FROM pgbench_accounts a) \
         || ' ' || (SELECT md5(string_agg(h::text, ',' ORDER BY h::text)) FROM pgbench_history h) \
         || ' ' || (SELECT count(*) FROM pgbench_history)",
    )
}

/// Restores `backup_id` (taken through the sidecar's Backup call) with Barman's own
/// `barman-cloud-restore`, and starts PostgreSQL on it with Barman's `barman-cloud-wal-restore`
/// as `restore_command` over the WAL the sidecar archived: it replays to `primary`'s rows.
fn restore_with_barman(rig: &Rig, barman: &Path, primary: &Pg, backup_id: &str) {
    let expected = pgbench_rows(primary);
    let last = primary.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    primary.sql("SELECT pg_switch_wal()");
    primary.wait_archived(&last);

    let dir = shared_dir(&rig.root.join("by-barman"));
    let data = dir.join("data");
    // Barman 3.13+ wants the provider before the endpoint here.
    as_postgres(barman.join("barman-cloud-restore"))
        .envs(rig.aws_env())
        .args([
            "--cloud-provider",
            "aws-s3",
            "--endpoint-url",
            &rig.endpoint,
        ])
        .args([&rig.destination(STORE), SERVER, backup_id])
        .arg(&data)
        .ok();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut restored = Pg::from_data(&dir, data);
    restored.conf(&format!(
        "unix_socket_directories = '{}'\narchive_mode = off\n\
         restore_command = '{} --cloud-provider aws-s3 --endpoint-url {} {} {SERVER} %f %p'\n",
        dir.display(),
        barman.join("barman-cloud-wal-restore").display(),
        rig.endpoint,
        rig.destination(STORE),
    ));
    restored.write_file("recovery.signal", "");
    let env: Vec<(String, String)> = rig
        .aws_env()
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    restored.start_with_env(&env);
    restored.wait_promoted();
    assert_eq!(
        pgbench_rows(&restored),
        expected,
        "Barman's restore of the sidecar's backup replays to the primary's rows"
    );
    restored.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_is_an_error_naming_the_command_and_is_recorded() {
    let Some(rig) = Rig::new() else { return };
    rig.object_store(STORE, json!({}));
    // No PostgreSQL listens in this directory.
    let nowhere = shared_dir(&rig.root.join("nowhere"));
    let pgdata = shared_dir(&nowhere.join("data"));
    let sidecar = rig
        .sidecar_with_env("pg-1", &pgdata, &[("PGHOST", &nowhere)])
        .await;
    let failed = take(&sidecar, &cluster(Some(STORE), "pg-1"))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unknown);
    let message = failed.message();
    assert!(
        message.starts_with("barman-cloud-backup took backup \"backup-"),
        "{message}"
    );
    assert!(message.contains("\": exited "), "{message}");
    assert!(!message.contains('\n'), "{message}");
    let recorded = window(&rig)["lastFailedBackupTime"].clone();
    let recorded = DateTime::parse_from_rfc3339(recorded.as_str().expect("a time")).unwrap();
    assert!((chrono::Utc::now().timestamp() - recorded.timestamp()).abs() < 120);
    assert!(window(&rig).get("lastSuccessfulBackupTime").is_none());
    assert_eq!(sidecar.logged("Backup call failed"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_cluster_without_a_store_is_refused_before_any_command() {
    let Some(rig) = Rig::new() else { return };
    let pgdata = shared_dir(&rig.root.join("data"));
    let sidecar = rig.sidecar("pg-1", &pgdata).await;
    let refused = take(&sidecar, &cluster(None, "pg-1")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("barmanObjectName"),
        "{refused:?}"
    );
    let refused = take(&sidecar, &cluster(Some("missing"), "pg-1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("default/missing"), "{refused:?}");
    assert!(sidecar.executed("barman-cloud-backup").is_empty());
}
