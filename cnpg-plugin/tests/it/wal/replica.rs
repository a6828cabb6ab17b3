//! A replica cluster (issue #16's acceptance): the designated primary of a Cluster with
//! `replica: {enabled: true, source: origin}` and an external cluster with
//! `connectionParameters` (the plugin's `cluster-replica-streaming.yaml`) replays the
//! origin's archive through its sidecar until a prefetch misses, is then answered
//! OUT_OF_RANGE "end of WAL reached", and a real PostgreSQL standby switches to streaming
//! from the origin, as it does in a Pod.

use std::time::Duration;

use cnpg_plugin::metadata::PLUGIN_NAME;
use serde_json::{Value, json};

use super::postgres::pg::Pg;
use super::rig::{Rig, SERVER, cluster, shared_dir, wait_until, write_json};

const FLAG_SET: &str =
    "Set end-of-wal-stream flag as one of the WAL files to be prefetched was not found";

/// The replica Cluster `pg-replica`, its designated primary `pg-replica-1`, following the
/// origin's store `store` and connecting to `host` (the origin's socket directory here).
fn replica_cluster(store: &str, host: &str) -> Value {
    json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg-replica", "namespace": "default", "uid": "replica-uid"},
        "spec": {
            "instances": 1,
            "bootstrap": {"pg_basebackup": {"source": "origin"}},
            "replica": {"enabled": true, "source": "origin"},
            "externalClusters": [{
                "name": "origin",
                "connectionParameters": {"host": host, "user": "postgres", "dbname": "postgres"},
                "plugin": {"name": PLUGIN_NAME,
                    "parameters": {"barmanObjectName": store, "serverName": SERVER}},
            }],
        },
        "status": {"currentPrimary": "pg-replica-1"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cluster_replays_the_archive_then_streams_when_the_flag_says_so() {
    let Some(rig) = Rig::new() else { return };
    rig.object_store("origin", json!({"maxParallel": 3}));
    let mut origin = Pg::init(&shared_dir(&rig.root.join("origin")));
    let origin_sidecar = rig.sidecar("pg-1", &origin.data).await;
    let origin_cluster = rig.root.join("origin.json");
    write_json(&origin_cluster, &cluster(Some("origin"), "pg-1"));
    origin.conf(&format!(
        "archive_mode = on\narchive_command = '{}'\n",
        origin_sidecar.command(&origin_cluster, "wal-archive %p")
    ));
    origin.start();
    origin.pgbench(&["-i", "-s", "1", "-q"]);
    let replica_dir = shared_dir(&rig.root.join("replica"));
    origin.base_backup_without_wal(&replica_dir.join("data"));
    origin.sql("CREATE TABLE marks (n int)");
    origin.pgbench(&["-t", "200", "-N"]);
    let last = origin.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    origin.sql("SELECT pg_switch_wal()");
    origin.wait_archived(&last);

    let mut replica = Pg::from_data(&replica_dir, replica_dir.join("data"));
    let sidecar = rig.sidecar("pg-replica-1", &replica.data).await;
    let replica_cluster_file = rig.root.join("replica.json");
    let host = origin.socket_dir.to_string_lossy().into_owned();
    write_json(&replica_cluster_file, &replica_cluster("origin", &host));
    // What CloudNativePG writes for a designated primary: restore_command through the
    // plugin, primary_conninfo from the external cluster's connectionParameters.
    replica.conf(&format!(
        "unix_socket_directories = '{}'\narchive_mode = off\nrestore_command = '{}'\n\
         primary_conninfo = 'host={host} user=postgres dbname=postgres application_name=pg-replica-1'\n\
         log_min_messages = debug2\n",
        replica_dir.display(),
        sidecar.command(&replica_cluster_file, "wal-restore %f %p")
    ));
    replica.write_file("standby.signal", "");
    replica.start();

    // WAL written after the last archived segment reaches the replica only by streaming.
    origin.sql("INSERT INTO marks VALUES (42)");
    wait_until(
        Duration::from_secs(120),
        || format!("the replica did not stream the mark:\n{}", replica.log()),
        || {
            replica.sql("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")
                == "1"
                && replica.sql("SELECT coalesce(sum(n), 0) FROM marks") == "42"
        },
    )
    .await;

    // The archive was read through the sidecar, from the origin's store and server name.
    let restores = sidecar.executed("barman-cloud-wal-restore");
    assert!(restores.len() > 1, "{restores:?}");
    for args in &restores {
        assert_eq!(args[4..6], [rig.destination("origin").as_str(), SERVER]);
    }
    assert!(
        sidecar.logged("Restored WAL file from spool (parallel)") > 0,
        "{}",
        sidecar.log()
    );
    // A prefetch missed, the flag was set, and PostgreSQL's next restore_command was told
    // "end of WAL reached": the stand-in failed it (exit 1, as CloudNativePG's wal-restore),
    // and PostgreSQL went on to streaming.
    assert!(sidecar.logged(FLAG_SET) >= 1, "{}", sidecar.log());
    let log = replica.log();
    let told = log
        .find("OutOfRange: end of WAL reached")
        .unwrap_or_else(|| panic!("no OUT_OF_RANGE answer in the replica's log:\n{log}"));
    let after = &log[told..];
    assert!(
        after.contains("from archive: child process exited with exit code 1"),
        "the restore_command failed on it:\n{after}"
    );
    assert!(
        after.contains("started streaming WAL from primary"),
        "streaming began after it:\n{after}"
    );
    replica.stop();
    origin.stop();
}
