//! barman-cloud-backup-list, -show and -keep next to Barman's (issue #4): on synthetic
//! catalogs on every cloud provider, and on one bucket holding real PostgreSQL 15 backups
//! taken by both tools, where a keep:standalone backup must also keep exactly the WAL that
//! makes it consistent once retention has deleted the others.

use chrono::Local;

use crate::support::primary::{By, Options, Primary, Recovery, start_restored};
use crate::support::synthetic::{self, Backup, Row};
use crate::support::{Provider, Ran, Store, TestCommand, barman, matrix, ours};

/// Runs one of the catalog commands, Barman's (`barman == true`) or ours, options first.
fn tool(store: &Store, barman_side: bool, name: &str, options: &[&str], rest: &[&str]) -> Ran {
    let program = if barman_side {
        barman(name).expect("the rig provides Barman")
    } else {
        ours(name)
    };
    store
        .command(program)
        .args(options)
        .args([store.url.as_str(), "pg"])
        .args(rest)
        .ran()
}

/// Runs a command with both tools; asserts the same exit code and returns both stdouts.
fn both(store: &Store, name: &str, options: &[&str], rest: &[&str]) -> (String, String) {
    let theirs = tool(store, true, name, options, rest);
    let mine = tool(store, false, name, options, rest);
    assert_eq!(
        mine.exit_code(),
        theirs.exit_code(),
        "{name} {options:?} {rest:?}: exit codes differ (ours said {}, Barman said {})",
        mine.stderr(),
        theirs.stderr()
    );
    (mine.stdout().to_string(), theirs.stdout().to_string())
}

/// Same values (parsed), then the same text: key order and number formats included.
fn same_json(mine: &str, theirs: &str, what: &str) {
    let parse = |s: &str| -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {s}"))
    };
    assert_eq!(parse(mine), parse(theirs), "{what}: values differ");
    assert_eq!(mine, theirs, "{what}: same values, different text");
}

/// Compares list (both formats), show (both formats) of every backup and of names and
/// shortcuts, and keep status of every backup.
fn compare_catalog_views(store: &Store, ids: &[String], references: &[&str]) {
    let (mine, theirs) = both(
        store,
        "barman-cloud-backup-list",
        &["--format", "json"],
        &[],
    );
    same_json(&mine, &theirs, "backup-list --format json");
    let (mine, theirs) = both(store, "barman-cloud-backup-list", &[], &[]);
    assert_eq!(mine, theirs, "backup-list console");
    let all = ids
        .iter()
        .map(String::as_str)
        .chain(references.iter().copied());
    for reference in all {
        let (mine, theirs) = both(
            store,
            "barman-cloud-backup-show",
            &["--format", "json"],
            &[reference],
        );
        same_json(&mine, &theirs, &format!("backup-show {reference} json"));
        let (mine, theirs) = both(store, "barman-cloud-backup-show", &[], &[reference]);
        assert_eq!(mine, theirs, "backup-show {reference} console");
    }
    for id in ids {
        let (mine, theirs) = both(store, "barman-cloud-backup-keep", &["-s"], &[id]);
        assert_eq!(mine, theirs, "backup-keep -s {id}");
    }
}

fn synthetic_table() -> Vec<Row> {
    use barman_cloud::catalog::Status::*;
    let row = Row::new;
    vec![
        Row {
            keep: Some("standalone"),
            tablespace: true,
            ..row(9, Done, 1, (0, 2), Some((0, 3)))
        },
        Row {
            name: Some("nightly €"),
            ..row(5, Done, 1, (0, 9), Some((0, 10)))
        },
        row(4, Failed, 1, (0, 12), Some((0, 12))),
        Row {
            keep: Some("full"),
            ..row(2, Done, 2, (1, 1), Some((1, 2)))
        },
        row(1, Started, 2, (1, 5), None),
    ]
}

fn catalog_views_match_barman(provider: Provider) {
    let Some(store) = Store::new(provider) else {
        return;
    };
    if barman("barman-cloud-backup-list").is_none() {
        return;
    }
    let backups: Vec<Backup> = synthetic_table()
        .iter()
        .map(|r| synthetic::backup(r, Local::now()))
        .collect();
    synthetic::upload(&store, "pg", synthetic::backup_objects(&backups));
    let ids: Vec<String> = backups.iter().map(|b| b.id.clone()).collect();
    compare_catalog_views(
        &store,
        &ids,
        &["nightly €", "latest", "oldest", "last-failed"],
    );

    // Refusals and their exit codes.
    both(
        &store,
        "barman-cloud-backup-show",
        &[],
        &["20991231T235959"],
    );
    both(&store, "barman-cloud-backup-show", &[], &["no-such-name"]);
    both(
        &store,
        "barman-cloud-backup-keep",
        &["--target", "full"],
        &[&ids[2]],
    );
    both(
        &store,
        "barman-cloud-backup-keep",
        &["--target", "full"],
        &["20991231T235959"],
    );
    let (mine, theirs) = both(
        &store,
        "barman-cloud-backup-keep",
        &["-s"],
        &["20991231T235959"],
    );
    assert_eq!(
        (mine.as_str(), theirs.as_str()),
        ("Keep: nokeep\n", "Keep: nokeep\n")
    );

    // Keeps set by either tool are seen, honoured and released by the other.
    let (kept_by_barman, kept_by_us) = (ids[1].as_str(), ids[3].as_str());
    let keep = |barman_side: bool, options: &[&str], id: &str| {
        tool(
            &store,
            barman_side,
            "barman-cloud-backup-keep",
            options,
            &[id],
        )
        .code(0);
    };
    keep(false, &["-r"], kept_by_us);
    keep(true, &["--target", "full"], kept_by_barman);
    keep(false, &["--target", "standalone"], kept_by_us);
    compare_catalog_views(&store, &ids, &[]);
    for (id, refused_by_barman) in [(kept_by_barman, false), (kept_by_us, true)] {
        let options = ["--dry-run", "-b", id];
        // A keep stops -b.
        tool(
            &store,
            refused_by_barman,
            "barman-cloud-backup-delete",
            &options,
            &[],
        )
        .code(1);
    }
    let (mine, _) = both(&store, "barman-cloud-backup-keep", &["-s"], &[kept_by_us]);
    assert_eq!(mine, "Keep: standalone\n");
    keep(true, &["-r"], kept_by_us);
    keep(false, &["--release"], kept_by_barman);
    compare_catalog_views(&store, &ids, &[]);
    let (mine, _) = both(
        &store,
        "barman-cloud-backup-keep",
        &["-s"],
        &[kept_by_barman],
    );
    assert_eq!(mine, "Keep: nokeep\n");
}

matrix! {
    catalog_views_match_barman_s3 => catalog_views_match_barman(Provider::S3),
    catalog_views_match_barman_azure => catalog_views_match_barman(Provider::Azure),
    catalog_views_match_barman_gcs => catalog_views_match_barman(Provider::Gcs),
}

fn json_field(json: &str, field: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["cloud"][field].as_str().unwrap().to_string()
}

/// The WAL names in the archive, compression suffixes removed.
fn archived_wal(store: &Store) -> Vec<String> {
    store
        .list_keys("pg/wals")
        .iter()
        .map(|k| k.rsplit('/').next().unwrap())
        .map(|name| name.strip_suffix(".gz").unwrap_or(name).to_string())
        .collect()
}

/// Real PostgreSQL 15 backups on one S3 bucket, two by Barman and one by us: list, show and
/// keep agree with Barman's. A keep:standalone on the oldest (set by us on Barman's backup),
/// then `REDUNDANCY 1` (Barman's dry run first, then ours for real): exactly the WAL between
/// that backup's begin and end stays below the newest backup, and the kept backup, restored,
/// reaches consistency with that WAL alone.
#[test]
fn real_backups_by_both_tools_and_a_standalone_keep_s3() {
    if barman("barman-cloud-backup").is_none() {
        return;
    }
    let Some(primary) = Primary::new(
        Provider::S3,
        Options {
            archive_flags: "--gzip",
            ..Options::default()
        },
    ) else {
        return;
    };
    let store = &primary.store;
    let backup = |by: By, flags: &[&str]| {
        primary.backup(by, &[flags, &["--immediate-checkpoint"]].concat());
    };
    primary.mark("in the kept backup");
    backup(By::Barman, &["-n", "kept one"]);
    for _ in 2..=4 {
        primary.mark("after the kept backup");
    }
    backup(By::Us, &["--gzip", "-n", "ours"]);
    primary.mark("after ours");
    backup(By::Barman, &["--snappy"]);
    primary.mark("after the newest");

    let ids = primary.backup_ids();
    assert_eq!(ids.len(), 3, "{ids:?}");
    compare_catalog_views(store, &ids, &["kept one", "ours", "latest", "oldest"]);
    tool(
        store,
        false,
        "barman-cloud-backup-keep",
        &["--target", "standalone"],
        &["kept one"],
    )
    .code(0);
    compare_catalog_views(store, &ids, &[]);

    let (mine, theirs) = both(
        store,
        "barman-cloud-backup-delete",
        &["--dry-run", "-r", "REDUNDANCY 1"],
        &[],
    );
    assert_eq!(mine, theirs, "dry run of REDUNDANCY 1");
    let show = |id: &str| {
        tool(
            store,
            false,
            "barman-cloud-backup-show",
            &["--format", "json"],
            &[id],
        )
        .ok()
    };
    let kept_json = show(&ids[0]);
    let (begin, end) = (
        json_field(&kept_json, "begin_wal"),
        json_field(&kept_json, "end_wal"),
    );
    let newest_begin = json_field(&show(&ids[2]), "begin_wal");
    let before = archived_wal(store);
    tool(
        store,
        false,
        "barman-cloud-backup-delete",
        &["-r", "REDUNDANCY 1"],
        &[],
    )
    .code(0);

    let in_kept_range = |name: &str| {
        let segment = &name[..24.min(name.len())];
        segment >= begin.as_str() && segment <= end.as_str()
    };
    let expected: Vec<String> = before
        .iter()
        .filter(|n| in_kept_range(n) || n.as_str() >= newest_begin.as_str())
        .cloned()
        .collect();
    let after = archived_wal(store);
    assert_eq!(
        after, expected,
        "the WAL left is not the kept backup's range plus the newest's"
    );
    assert!(after.len() < before.len() && after.iter().any(|n| in_kept_range(n)));
    assert!(store.list_keys(&format!("pg/base/{}", ids[1])).is_empty());

    // The kept backup alone, restored, is consistent with what is left of the archive.
    let dir = primary.dir("restored");
    let data = dir.join("data");
    store
        .command_as_postgres(ours("barman-cloud-restore"))
        .args([store.url.as_str(), "pg", "kept one"])
        .arg(&data)
        .args([
            "--write-recovery-conf",
            "--recovery-target-immediate",
            "--recovery-target-action",
            "promote",
        ])
        .ok();
    let pg = start_restored(&dir, data, store, Recovery::AsRestored);
    assert_eq!(
        pg.sql("SELECT string_agg(note, ',' ORDER BY id) FROM marker"),
        "in the kept backup"
    );
    assert!(
        pg.log().contains("consistent recovery state reached"),
        "{}",
        pg.log()
    );
}
