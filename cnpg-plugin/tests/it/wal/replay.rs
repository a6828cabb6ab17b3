//! PostgreSQL 15 end to end: a primary archives through the CNPG stand-in and the sidecar
//! with `maxParallel: 4`, a copy made from a base backup replays through the sidecar's
//! Restore to the primary's exact state, and the WAL stays readable by Barman's own tools
//! both ways.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cnpg_plugin::proto::wal::{WalRestoreRequest, wal_client::WalClient};
use serde_json::json;

use super::postgres::TestCommand;
use super::postgres::pg::Pg;
use super::rig::{
    Rig, SERVER, Sidecar, cluster, definition, recovering_cluster, shared_dir, wait_until,
    write_json,
};

/// `archive_status` entries with `suffix` (`.ready`, `.done`), names without it.
fn archive_status(pg: &Pg, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pg.data.join("pg_wal/archive_status"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(suffix).map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// The WAL names stored for `server` in the store `store` (compression suffixes dropped).
fn archived(rig: &Rig, store: &str) -> Vec<String> {
    rig.keys(&format!("{store}/{SERVER}/wals/"))
        .iter()
        .map(|key| {
            let name = key.rsplit('/').next().unwrap();
            name.split('.').next().unwrap().to_owned()
        })
        .collect()
}

/// What the tests compare between the primary and its copy: every row of pgbench's tables.
fn fingerprint(pg: &Pg) -> String {
    pg.sql(
        "SELECT (SELECT md5(string_agg(a::text, ',' ORDER BY aid)) FROM pgbench_accounts a) \
         || (SELECT md5(string_agg(h::text, ',' ORDER BY h::text)) FROM pgbench_history h) \
         || (SELECT count(*) FROM pgbench_history)",
    )
}

pub(crate) fn barman_bin() -> Option<std::path::PathBuf> {
    let dir =
        std::env::var("BCRS_BARMAN_BIN").unwrap_or_else(|_| "/opt/bcrs/barman-venv/bin".into());
    let dir = Path::new(&dir).to_owned();
    if dir.join("barman-cloud-wal-restore").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("BCRS_REQUIRE_SERVICES").as_deref() != Ok("1"),
        "Barman's tools are not in {}",
        dir.display()
    );
    eprintln!(
        "skipped the Barman interoperability part: no Barman in {}",
        dir.display()
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_archives_through_the_sidecar_and_a_copy_replays_it() {
    let Some(rig) = Rig::new() else { return };
    rig.object_store("archive", json!({"maxParallel": 4}));
    let mut primary = Pg::init(&shared_dir(&rig.root.join("primary")));
    let sidecar = rig.sidecar("pg-1", &primary.data).await;
    // No Cluster file yet: the stand-in fails, and PostgreSQL piles up .ready files.
    let cluster_file = rig.root.join("cluster.json");
    primary.conf(&format!(
        "archive_mode = on\narchive_command = '{}'\n",
        sidecar.command(&cluster_file, "wal-archive %p")
    ));
    primary.start();
    primary.pgbench(&["-i", "-s", "2", "-q"]);
    for _ in 0..3 {
        primary.sql("SELECT pg_switch_wal()");
        primary.pgbench(&["-t", "100", "-N"]);
    }
    wait_until(
        Duration::from_secs(60),
        || format!("{:?} ready", archive_status(&primary, ".ready")),
        || archive_status(&primary, ".ready").len() >= 4,
    )
    .await;
    // As CloudNativePG for a new Cluster: the first upload must find the archive empty.
    primary.write_file(".check-empty-wal-archive", "");
    write_json(&cluster_file, &cluster(Some("archive"), "pg-1"));

    let last = primary.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    primary.sql("SELECT pg_switch_wal()");
    primary.wait_archived(&last);
    wait_until(
        Duration::from_secs(60),
        || format!("{:?} still ready", archive_status(&primary, ".ready")),
        || archive_status(&primary, ".ready").is_empty(),
    )
    .await;
    check_archiving(&rig, &primary, &sidecar);

    // A base backup, more work, and the copy replays it all through the Restore call.
    let copy_dir = shared_dir(&rig.root.join("copy"));
    primary.base_backup_without_wal(&copy_dir.join("data"));
    primary.pgbench(&["-t", "300", "-c", "2"]);
    let expected = fingerprint(&primary);
    let last = primary.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    primary.sql("SELECT pg_switch_wal()");
    primary.wait_archived(&last);

    let mut copy = Pg::from_data(&copy_dir, copy_dir.join("data"));
    let copy_sidecar = rig.sidecar("pg-copy-1", &copy.data).await;
    let copy_cluster = rig.root.join("copy-cluster.json");
    write_json(&copy_cluster, &recovering_cluster("archive", SERVER));
    copy.conf(&format!(
        "unix_socket_directories = '{}'\narchive_mode = off\nrestore_command = '{}'\n",
        copy_dir.display(),
        copy_sidecar.command(&copy_cluster, "wal-restore %f %p")
    ));
    copy.write_file("recovery.signal", "");
    copy.start();
    copy.wait_promoted();
    assert_eq!(
        fingerprint(&copy),
        expected,
        "the copy replayed to the primary's state"
    );
    let restores = copy_sidecar.executed("barman-cloud-wal-restore");
    assert!(!restores.is_empty());
    assert!(
        copy_sidecar.logged("Restored WAL file from spool (parallel)") > 0,
        "segments were prefetched and taken from the spool:\n{}",
        copy_sidecar.log()
    );
    assert!(
        copy_sidecar
            .spooled()
            .iter()
            .all(|name| !name.ends_with(".tmp")),
        "no partial prefetch left: {:?}",
        copy_sidecar.spooled()
    );
    copy.stop();

    if let Some(barman) = barman_bin() {
        interoperate_with_barman(&rig, &barman, &copy_sidecar).await;
    }
    primary.stop();
}

/// Every segment landed once, the pre-archived ones through their spool markers, with the
/// plugin's argument vector, after one empty-archive check.
fn check_archiving(rig: &Rig, primary: &Pg, sidecar: &Sidecar) {
    let stats = primary.sql("SELECT archived_count, failed_count FROM pg_stat_archiver");
    let (archived_count, failed_count) = stats.split_once('|').unwrap();
    let archived_count: usize = archived_count.parse().unwrap();
    assert!(
        failed_count.parse::<usize>().unwrap() > 0,
        "the first calls failed: {stats}"
    );
    let stored = archived(rig, "archive");
    assert_eq!(
        stored.len(),
        archived_count,
        "one object per archived segment: {stored:?}"
    );
    for done in archive_status(primary, ".done") {
        assert!(stored.contains(&done), "{done} is archived: {stored:?}");
    }
    assert!(stored.contains(&"000000010000000000000001".to_owned()));

    let uploads: Vec<String> = sidecar
        .executed("barman-cloud-wal-archive")
        .into_iter()
        .map(|args| args.last().unwrap().clone())
        .collect();
    let mut distinct = uploads.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        uploads.len(),
        distinct.len(),
        "nothing uploaded twice: {uploads:?}"
    );
    assert_eq!(uploads.len(), archived_count);
    let ahead = sidecar.logged("Pre-archived WAL file (parallel)");
    assert!(
        ahead >= 3,
        "the backlog went up to four at a time ({ahead} ahead)"
    );
    assert_eq!(
        sidecar.logged("WAL file already archived, skipping"),
        ahead,
        "each spool marker was consumed by PostgreSQL's own call"
    );
    assert!(sidecar.spooled().is_empty(), "{:?}", sidecar.spooled());

    let first = &sidecar.executed("barman-cloud-wal-archive")[0];
    let wal_dir = primary.data.join("pg_wal");
    assert_eq!(
        first[..6],
        [
            "--endpoint-url",
            rig.endpoint.as_str(),
            "--cloud-provider",
            "aws-s3",
            rig.destination("archive").as_str(),
            SERVER
        ]
    );
    assert!(Path::new(first.last().unwrap()).starts_with(&wal_dir));
    assert_eq!(sidecar.executed("barman-cloud-check-wal-archive").len(), 1);
    assert!(
        !primary.data.join(".check-empty-wal-archive").exists(),
        "the marker goes with the first upload"
    );
    assert!(!sidecar.log().contains(super::rig::SECRET_ACCESS_KEY));
}

/// The sidecar's WAL restores with Barman's own wal-restore, and WAL Barman archived (gzip)
/// restores through the sidecar, byte for byte.
async fn interoperate_with_barman(rig: &Rig, barman: &Path, sidecar: &Sidecar) {
    let wal = "000000010000000000000002";
    let dir = shared_dir(&rig.root.join("interop"));
    let by_barman = dir.join("by-barman");
    Command::new(barman.join("barman-cloud-wal-restore"))
        .envs(rig.aws_env())
        .args([
            "--endpoint-url",
            &rig.endpoint,
            "--cloud-provider",
            "aws-s3",
        ])
        .args([&rig.destination("archive"), SERVER, wal])
        .arg(&by_barman)
        .ok();
    let mut client = WalClient::new(sidecar.channel().await);
    let restore = |destination: &Path, store: &str| WalRestoreRequest {
        cluster_definition: definition(&recovering_cluster(store, SERVER)),
        source_wal_name: wal.into(),
        destination_file_name: destination.to_string_lossy().into_owned(),
        ..WalRestoreRequest::default()
    };
    let by_us = dir.join("by-us");
    client.restore(restore(&by_us, "archive")).await.unwrap();
    let bytes = std::fs::read(&by_us).unwrap();
    assert_eq!(bytes.len(), 16 << 20);
    assert_eq!(
        std::fs::read(&by_barman).unwrap(),
        bytes,
        "Barman reads what we wrote"
    );

    // Barman archives the same segment, gzip-compressed, into a store of its own.
    let segment_dir = shared_dir(&dir.join("pg_wal"));
    std::fs::copy(&by_us, segment_dir.join(wal)).unwrap();
    rig.object_store("barman-archive", json!({}));
    Command::new(barman.join("barman-cloud-wal-archive"))
        .envs(rig.aws_env())
        .args([
            "--endpoint-url",
            &rig.endpoint,
            "--cloud-provider",
            "aws-s3",
            "--gzip",
        ])
        .args([&rig.destination("barman-archive"), SERVER])
        .arg(segment_dir.join(wal))
        .ok();
    assert!(
        rig.keys("barman-archive/")
            .iter()
            .any(|k| k.ends_with(".gz"))
    );
    let from_barman = dir.join("from-barman");
    client
        .restore(restore(&from_barman, "barman-archive"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&from_barman).unwrap(),
        bytes,
        "we read what Barman wrote"
    );
}
