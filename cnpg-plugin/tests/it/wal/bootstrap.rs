//! The restore role end to end (issue #16 item 1): a source PostgreSQL 15 archives with our
//! `barman-cloud-wal-archive` and is backed up with our `barman-cloud-backup`; a
//! `manager restore` sidecar bootstraps an empty PGDATA through `RestoreJobHooks/Restore`
//! for a recovery target, and PostgreSQL, started with the returned `restore_config` (its
//! `restore_command` replaced by the CNPG stand-in's line pointing at this sidecar, as
//! CloudNativePG's own `/controller/manager` would) plus the target, stops exactly there and
//! promotes. Bad input is refused by name.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cnpg_plugin::metadata::PLUGIN_NAME;
use cnpg_plugin::proto::identity::{
    GetPluginCapabilitiesRequest, identity_client::IdentityClient, plugin_capability,
};
use cnpg_plugin::proto::wal::{
    RestoreJobHooksCapabilitiesRequest, RestoreRequest, RestoreResponse, WalCapabilitiesRequest,
    restore_job_hooks_capability::Kind, restore_job_hooks_client::RestoreJobHooksClient,
    wal_client::WalClient,
};
use serde_json::{Value, json};
use tonic::Code;

use super::postgres::TestCommand;
use super::postgres::pg::{Pg, as_postgres};
use super::rig::{Rig, SERVER, Sidecar, definition, shared_dir, write_json};
use crate::support::barman_bin_dir;

/// The plugin's `restore_config`, which CloudNativePG appends to `custom.conf`.
const RESTORE_CONFIG: &str = "recovery_target_action = promote\nrestore_command = \
    '/controller/manager wal-restore --log-destination /controller/log/postgres.json %f %p'\n";

/// A Cluster `pg-copy` bootstrapping from `store`'s server [`SERVER`] with this
/// `recoveryTarget` (`Value::Null`: none), and `extra` merged into its spec.
fn bootstrapping(store: &str, target: Value, extra: Value) -> Value {
    let mut recovery = json!({"source": "origin"});
    if !target.is_null() {
        recovery["recoveryTarget"] = target;
    }
    let mut cluster = json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg-copy", "namespace": "default", "uid": "copy-uid"},
        "spec": {
            "bootstrap": {"recovery": recovery},
            "externalClusters": [{"name": "origin", "plugin": {"name": PLUGIN_NAME,
                "parameters": {"barmanObjectName": store, "serverName": SERVER}}}],
        },
        "status": {"currentPrimary": ""},
    });
    for (key, value) in extra.as_object().unwrap() {
        cluster["spec"][key] = value.clone();
    }
    cluster
}

/// The source server: archiving to the ObjectStore `origin` with our wal-archive, a base
/// backup with our barman-cloud-backup, marker rows before and after a target time.
struct Source {
    pg: Pg,
    /// The backup's ID.
    backup_id: String,
    /// A time between the rows `m1` and `m2` (PostgreSQL's text, with its zone).
    target_time: String,
    /// The same time without a zone, in UTC.
    target_time_utc: String,
    /// The WAL position at that time (after `m1`'s commit, before `m2`'s).
    target_lsn: String,
}

fn barman(name: &str) -> PathBuf {
    barman_bin_dir().join(name)
}

fn source(rig: &Rig) -> Source {
    rig.object_store("origin", json!({}));
    let mut pg = Pg::init(&shared_dir(&rig.root.join("source")));
    pg.conf(&format!(
        "archive_mode = on\narchive_command = '{} --endpoint-url {} --cloud-provider aws-s3 {} {SERVER} %p'\n",
        barman("barman-cloud-wal-archive").display(),
        rig.endpoint,
        rig.destination("origin"),
    ));
    let env: Vec<(String, String)> = rig
        .aws_env()
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    pg.start_with_env(&env);
    pg.sql("CREATE TABLE marks (name text PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())");
    pg.sql("INSERT INTO marks (name) VALUES ('m0')");
    take_backup(rig, &pg, &barman("barman-cloud-backup"));
    let backup_id = backup_ids(rig).pop().expect("one backup listed");

    pg.sql("INSERT INTO marks (name) VALUES ('m1')");
    std::thread::sleep(Duration::from_millis(1100));
    let target_time = pg.sql("SELECT clock_timestamp()::text");
    let target_time_utc =
        pg.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')");
    let target_lsn = pg.sql("SELECT pg_current_wal_lsn()::text");
    std::thread::sleep(Duration::from_millis(1100));
    pg.sql("INSERT INTO marks (name) VALUES ('m2')");
    let last = pg.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    pg.sql("SELECT pg_switch_wal()");
    pg.wait_archived(&last);
    Source {
        pg,
        backup_id,
        target_time,
        target_time_utc,
        target_lsn,
    }
}

/// A base backup of `pg` into the ObjectStore `origin` with `program` (ours or Barman's).
fn take_backup(rig: &Rig, pg: &Pg, program: &Path) {
    as_postgres(program)
        .envs(rig.aws_env())
        .args(["--user", "postgres", "-h"])
        .arg(pg.socket_dir())
        .args(["--immediate-checkpoint", "--endpoint-url", &rig.endpoint])
        .args([
            "--cloud-provider",
            "aws-s3",
            &rig.destination("origin"),
            SERVER,
        ])
        .ok();
}

/// The IDs of the backups in `origin`, as our backup-list gives them.
fn backup_ids(rig: &Rig) -> Vec<String> {
    let listed = as_postgres(barman("barman-cloud-backup-list"))
        .envs(rig.aws_env())
        .args(["--format", "json", "--endpoint-url", &rig.endpoint])
        .args([
            "--cloud-provider",
            "aws-s3",
            &rig.destination("origin"),
            SERVER,
        ])
        .ok();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    listed["backups_list"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|b| b["backup_id"].as_str().expect("an ID").to_owned())
        .collect()
}

/// A `manager restore` sidecar for a new empty PGDATA under `<root>/<name>/`, with the WAL
/// volume at `<root>/<name>/wal/pg_wal`.
async fn restore_job(rig: &Rig, name: &str) -> (Sidecar, PathBuf, PathBuf) {
    let dir = shared_dir(&rig.root.join(name));
    let pgdata = dir.join("data");
    let wal_volume = shared_dir(&dir.join("wal")).join("pg_wal");
    let sidecar = rig
        .restore_sidecar(
            &format!("{name}-1-full-recovery"),
            &pgdata,
            &[("BARMAN_CLOUD_PG_WAL_VOLUME", &wal_volume)],
        )
        .await;
    (sidecar, dir, wal_volume)
}

/// `RestoreJobHooks/Restore` for `cluster`, as CloudNativePG's restore Job sends it.
async fn call_restore(
    sidecar: &Sidecar,
    cluster: &Value,
) -> Result<RestoreResponse, tonic::Status> {
    RestoreJobHooksClient::new(sidecar.channel().await)
        .restore(RestoreRequest {
            cluster_definition: definition(cluster),
            check_empty_wal_archive: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Starts PostgreSQL on the restored `dir/data` as CloudNativePG would: `restore_config`
/// with its `restore_command` pointing at the stand-in and this sidecar, plus `target`
/// lines; waits for the promotion and returns the server.
fn start_restored(
    dir: &Path,
    sidecar: &Sidecar,
    cluster: &Value,
    response: &RestoreResponse,
    target: &str,
) -> Pg {
    let cluster_file = dir.join("cluster.json");
    write_json(&cluster_file, cluster);
    let ours = sidecar.command(&cluster_file, "wal-restore %f %p");
    let config: String = response
        .restore_config
        .lines()
        .map(|line| {
            if line.starts_with("restore_command = ") {
                format!("restore_command = '{ours}'")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut pg = Pg::from_data(dir, dir.join("data"));
    pg.conf(&format!(
        "unix_socket_directories = '{}'\narchive_mode = off\n{config}\n{target}",
        dir.display()
    ));
    pg.write_file("recovery.signal", "");
    pg.start();
    pg.wait_promoted();
    pg
}

fn marks(pg: &Pg) -> String {
    pg.sql("SELECT string_agg(name, ',' ORDER BY name) FROM marks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_sidecar_bootstraps_pgdata_to_a_point_in_time() {
    let Some(rig) = Rig::new() else { return };
    let mut source = source(&rig);

    // targetTime between m1 and m2, with the new Cluster on a WAL volume.
    let (sidecar, dir, wal_volume) = restore_job(&rig, "pitr").await;
    let cluster = bootstrapping(
        "origin",
        json!({"targetTime": source.target_time}),
        json!({"walStorage": {"size": "1Gi"}}),
    );
    // The handshake CloudNativePG makes first: the restore role's capabilities.
    let channel = sidecar.channel().await;
    let services: Vec<i32> = IdentityClient::new(channel.clone())
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities
        .into_iter()
        .filter_map(|c| c.r#type.map(|plugin_capability::Type::Service(s)| s.r#type))
        .collect();
    use plugin_capability::service::Type;
    assert_eq!(services, [Type::RestoreJob as i32, Type::WalService as i32]);
    let kinds = RestoreJobHooksClient::new(channel.clone())
        .get_capabilities(RestoreJobHooksCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities;
    assert_eq!(kinds.len(), 1);
    assert_eq!(kinds[0].kind, Kind::Restore as i32);
    let wal = WalClient::new(channel)
        .get_capabilities(WalCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wal.capabilities.len(), 2);

    let started = Instant::now();
    let response = call_restore(&sidecar, &cluster)
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", sidecar.log()));
    let restore_took = started.elapsed();
    assert_eq!(response.restore_config, RESTORE_CONFIG);
    assert!(response.envs.is_empty());
    // The plugin's steps, with its argument vectors.
    let probes = sidecar.executed("barman-cloud-wal-restore");
    assert_eq!(probes.len(), 1);
    let probe = sidecar.controller.join("recovery/test.wal");
    assert_eq!(probes[0].last().unwrap(), &probe.to_string_lossy());
    assert!(!probe.exists(), "the probe's file is deleted");
    let restores = sidecar.executed("barman-cloud-restore");
    assert_eq!(
        restores,
        [vec![
            "--cloud-provider".to_owned(),
            "aws-s3".to_owned(),
            "--endpoint-url".to_owned(),
            rig.endpoint.clone(),
            rig.destination("origin"),
            SERVER.to_owned(),
            source.backup_id.clone(),
            dir.join("data").to_string_lossy().into_owned(),
        ]]
    );
    assert_eq!(sidecar.executed("barman-cloud-check-wal-archive").len(), 0);
    let pg_wal = dir.join("data/pg_wal");
    assert_eq!(std::fs::read_link(&pg_wal).unwrap(), wal_volume);

    let started = Instant::now();
    let mut restored = start_restored(
        &dir,
        &sidecar,
        &cluster,
        &response,
        &format!("recovery_target_time = '{}'\n", source.target_time),
    );
    eprintln!(
        "measured: Restore call {restore_took:?}, PostgreSQL start to promotion {:?}",
        started.elapsed()
    );
    assert_eq!(marks(&restored), "m0,m1", "stopped exactly at the target");
    // Promoted onto a new timeline, its WAL fetched through this sidecar's WAL/Restore.
    assert_eq!(
        restored.sql("SELECT timeline_id FROM pg_control_checkpoint()"),
        "2"
    );
    assert!(
        sidecar.executed("barman-cloud-wal-restore").len() > 1,
        "{}",
        sidecar.log()
    );
    assert!(
        restored.log().contains("recovery stopping before commit"),
        "{}",
        restored.log()
    );
    assert!(!sidecar.log().contains(super::rig::SECRET_ACCESS_KEY));
    restored.stop();

    // The same target without a zone (UTC) chooses the same backup.
    let (utc_sidecar, _, _) = restore_job(&rig, "utc").await;
    let utc = bootstrapping(
        "origin",
        json!({"targetTime": source.target_time_utc}),
        json!({}),
    );
    call_restore(&utc_sidecar, &utc)
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", utc_sidecar.log()));
    assert_eq!(
        utc_sidecar.executed("barman-cloud-restore")[0][6],
        source.backup_id
    );

    // No target: the latest backup, replayed to the end of the archive.
    let (latest_sidecar, latest_dir, _) = restore_job(&rig, "latest").await;
    let latest = bootstrapping("origin", Value::Null, json!({}));
    let response = call_restore(&latest_sidecar, &latest)
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", latest_sidecar.log()));
    assert!(
        !latest_dir.join("data/pg_wal").is_symlink(),
        "no walStorage, no link"
    );
    let mut restored = start_restored(&latest_dir, &latest_sidecar, &latest, &response, "");
    assert_eq!(marks(&restored), "m0,m1,m2");
    restored.stop();

    // targetLSN, with the matching recovery_target_lsn.
    let (lsn_sidecar, lsn_dir, _) = restore_job(&rig, "lsn").await;
    let by_lsn = bootstrapping(
        "origin",
        json!({"targetLSN": source.target_lsn, "targetTLI": "latest"}),
        json!({}),
    );
    let response = call_restore(&lsn_sidecar, &by_lsn)
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", lsn_sidecar.log()));
    assert_eq!(
        lsn_sidecar.executed("barman-cloud-restore")[0][6],
        source.backup_id
    );
    let mut restored = start_restored(
        &lsn_dir,
        &lsn_sidecar,
        &by_lsn,
        &response,
        &format!("recovery_target_lsn = '{}'\n", source.target_lsn),
    );
    assert_eq!(marks(&restored), "m0,m1");
    restored.stop();

    // backupID, exact.
    let (id_sidecar, id_dir, _) = restore_job(&rig, "by-id").await;
    let by_id = bootstrapping("origin", json!({"backupID": source.backup_id}), json!({}));
    let response = call_restore(&id_sidecar, &by_id)
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", id_sidecar.log()));
    let mut restored = start_restored(&id_dir, &id_sidecar, &by_id, &response, "");
    assert_eq!(marks(&restored), "m0,m1,m2");
    restored.stop();

    source.pg.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_cannot_be_done_is_refused_by_name() {
    let Some(rig) = Rig::new() else { return };
    let mut source = source(&rig);
    let (sidecar, dir, _) = restore_job(&rig, "refused").await;

    // A target before the only backup ended.
    let early = bootstrapping(
        "origin",
        json!({"targetTime": "2001-01-01 00:00:00"}),
        json!({}),
    );
    let status = call_restore(&sidecar, &early).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(
        status.message().starts_with(
            "no target backup found for recoveryTarget targetTime \"2001-01-01 00:00:00\" \
             among the 1 completed backups of server \"pg\" in ObjectStore \"origin\""
        ),
        "{}",
        status.message()
    );
    // A backup ID that is not there.
    let status = call_restore(
        &sidecar,
        &bootstrapping("origin", json!({"backupID": "20000101T000000"}), json!({})),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("backupID \"20000101T000000\""));
    // An unreadable target time.
    let status = call_restore(
        &sidecar,
        &bootstrapping("origin", json!({"targetTime": "soon"}), json!({})),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("\"soon\""),
        "{}",
        status.message()
    );

    // A recovery source read through another plugin (or none).
    let mut other = bootstrapping("origin", Value::Null, json!({}));
    other["spec"]["externalClusters"][0]["plugin"]["name"] = json!("other.example.com");
    let status = call_restore(&sidecar, &other).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("recovery source \"origin\""),
        "{}",
        status.message()
    );
    // The new Cluster archiving to a store that already holds WAL: the empty-archive check.
    let mut archiving = bootstrapping("origin", Value::Null, json!({}));
    archiving["spec"]["plugins"] = json!([{"name": PLUGIN_NAME, "parameters": {"barmanObjectName": "origin", "serverName": SERVER}}]);
    let status = call_restore(&sidecar, &archiving).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("holds no WAL for server \"pg\""),
        "{}",
        status.message()
    );
    // Nothing was restored by any of them.
    assert!(sidecar.executed("barman-cloud-restore").is_empty());
    assert!(!dir.join("data").exists());
    assert!(!sidecar.log().contains(super::rig::SECRET_ACCESS_KEY));

    // CloudNativePG saying not to check: the restore goes ahead.
    let response = RestoreJobHooksClient::new(sidecar.channel().await)
        .restore(RestoreRequest {
            cluster_definition: definition(&archiving),
            check_empty_wal_archive: Some(false),
        })
        .await;
    assert!(response.is_ok(), "{response:?}\n{}", sidecar.log());
    assert_eq!(sidecar.executed("barman-cloud-check-wal-archive").len(), 1);
    source.pg.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_barmans_own_tools_made_restores_through_the_sidecar() {
    let Some(rig) = Rig::new() else { return };
    let Some(barman_dir) = super::replay::barman_bin() else {
        return;
    };
    let mut source = source(&rig);
    source.pg.sql("INSERT INTO marks (name) VALUES ('m3')");
    take_backup(&rig, &source.pg, &barman_dir.join("barman-cloud-backup"));
    source.pg.sql("INSERT INTO marks (name) VALUES ('m4')");
    let last = source
        .pg
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    source.pg.sql("SELECT pg_switch_wal()");
    source.pg.wait_archived(&last);
    let ids = backup_ids(&rig);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let by_barman = ids
        .iter()
        .find(|id| **id != source.backup_id)
        .unwrap()
        .clone();

    // No target: the latest backup, Barman's.
    let (sidecar, dir, _) = restore_job(&rig, "from-barman").await;
    let cluster = bootstrapping("origin", Value::Null, json!({}));
    let response = call_restore(&sidecar, &cluster)
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", sidecar.log()));
    assert_eq!(sidecar.executed("barman-cloud-restore")[0][6], by_barman);
    let mut restored = start_restored(&dir, &sidecar, &cluster, &response, "");
    assert_eq!(marks(&restored), "m0,m1,m2,m3,m4");
    restored.stop();
    source.pg.stop();
}
