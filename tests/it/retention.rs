//! barman-cloud-backup-delete next to Barman's, on identical synthetic catalogs (issue #4):
//! the dry-run output line for line and the exit code for a set of policies and `-b`
//! references, then the objects left after real deletions. The table has every case the
//! rules distinguish: keep:full and keep:standalone backups, a FAILED and a STARTED one, a
//! timeline switch, tablespace and split parts, an orphan directory, a `.partial`, backup
//! labels, a history file, junk in the archive, WAL stored twice or outside its hash
//! directory.
//!
//! The PostgreSQL-backed check of a standalone keep lives in `catalog.rs`, next to the other
//! tests on real backups.

use bytes::Bytes;
use chrono::Local;

use barman_cloud::catalog::Status;

use crate::support::synthetic::{self, Backup, Row, segment, wal_key};
use crate::support::{Provider, Ran, Store, TestCommand, barman, ours};

/// Nine backups over 40 days, oldest first.
fn table() -> Vec<Row> {
    use Status::*;
    let row = Row::new;
    vec![
        row(40, Done, 1, (0, 2), Some((0, 3))),
        Row {
            keep: Some("standalone"),
            files: &["data.tar"],
            ..row(30, Done, 1, (1, 2), Some((1, 3)))
        },
        Row {
            files: &["data.tar.gz", "data_0001.tar.gz"],
            ..row(25, Failed, 1, (1, 6), None)
        },
        Row {
            tablespace: true,
            files: &[
                "data.tar.gz",
                "data_0001.tar.gz",
                "16384.tar.gz",
                "16384_0001.tar.gz",
                "data.tar.xz",
            ],
            ..row(20, Done, 1, (2, 1), Some((2, 2)))
        },
        Row {
            keep: Some("full"),
            name: Some("monthly"),
            ..row(15, Done, 1, (3, 1), Some((3, 2)))
        },
        row(10, Done, 2, (3, 6), Some((3, 7))),
        Row {
            name: Some("named"),
            files: &["data.tar.snappy"],
            ..row(6, Done, 2, (4, 2), Some((4, 3)))
        },
        Row {
            files: &["data.tar.lz4", "data_0001.tar.lz4"],
            ..row(3, Done, 2, (5, 1), Some((5, 2)))
        },
        Row {
            files: &[],
            ..row(1, Started, 2, (5, 5), None)
        },
    ]
}

/// The WAL archive: timeline 1 up to log 3 segment 5 (ending in a `.partial`), timeline 2
/// from log 3 segment 5 to log 5, a label per backup, a history file, junk, a duplicate.
fn wal_objects(backups: &[Backup]) -> Vec<(String, Bytes)> {
    let mut objects = Vec::new();
    let mut add = |key: String| objects.push((key, Bytes::from_static(b"wal")));
    for log in 0..=3 {
        for seg in 0..8 {
            if log == 3 && seg >= 5 {
                continue;
            }
            add(wal_key(&segment(1, log, seg), ".gz"));
        }
    }
    add(wal_key(&format!("{}.partial", segment(1, 3, 5)), ""));
    for log in 3..=5 {
        for seg in 0..8 {
            if log == 3 && seg < 5 {
                continue;
            }
            add(wal_key(&segment(2, log, seg), ".zst"));
        }
    }
    for b in backups {
        let begin = b.info.begin_wal.as_deref().unwrap();
        add(wal_key(&format!("{begin}.00000028.backup"), ""));
    }
    add(wal_key("00000002.history", ""));
    add(wal_key(&segment(1, 0, 4), ""));
    // Segments stored outside their hash directory: one alone, one shadowing a stored one.
    add(format!("wals/{}", segment(1, 2, 9)));
    add(format!("wals/{}", segment(1, 1, 1)));
    add("wals/0000000100000000/notes.txt".into());
    add("wals/README".into());
    objects
}

/// Fills `store` with the table's catalog, as of `now`; returns the backups.
fn populate(store: &Store, now: chrono::DateTime<Local>) -> Vec<Backup> {
    let backups: Vec<Backup> = table().iter().map(|r| synthetic::backup(r, now)).collect();
    let mut objects = synthetic::backup_objects(&backups);
    objects.extend(wal_objects(&backups));
    // A directory without backup.info is not a backup.
    objects.push((
        "base/20200101T000000/data.tar".into(),
        Bytes::from_static(b"x"),
    ));
    synthetic::upload(store, "pg", objects);
    backups
}

/// Runs a backup-delete (Barman's or ours) with options first, as Barman's parser needs.
fn delete(program: std::path::PathBuf, store: &Store, options: &[String]) -> Ran {
    store
        .command(program)
        .args(options)
        .args([store.url.as_str(), "pg"])
        .ran()
}

/// The dry-run cases: policies, `-b` references, refusals.
fn dry_run_cases(backups: &[Backup], all: bool) -> Vec<Vec<String>> {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut cases = vec![
        args(&["-r", "REDUNDANCY 1"]),
        args(&["-r", "RECOVERY WINDOW OF 12 DAYS"]),
        args(&["-b", &backups[3].id]),
    ];
    if all {
        cases.extend([
            args(&["-r", "REDUNDANCY 2"]),
            args(&["-r", "REDUNDANCY 3"]),
            args(&["-r", "REDUNDANCY 1", "-m", "4"]),
            args(&["-r", "recovery window of 2 weeks", "-m", "5"]),
            args(&["-r", "RECOVERY WINDOW OF 1 MONTH"]),
            args(&["-r", "RECOVERY WINDOW OF 4 DAYS"]),
            args(&["-b", "named"]),
            args(&["-b", "oldest"]),
            args(&["-b", "latest"]),
            args(&["-b", &backups[2].id]),
            args(&["-b", &backups[8].id]),
            // Kept: refused.
            args(&["-b", "monthly"]),
            // Minimum redundancy counts FAILED backups but not STARTED ones: 8.
            args(&["-b", "oldest", "-m", "8"]),
            args(&["-b", "oldest", "-m", "7"]),
            // An ID without a backup is only a warning.
            args(&["-b", "20991231T235959"]),
            args(&["-b", "no-such-name"]),
            args(&["-r", "KEEP 3"]),
        ]);
    }
    cases
        .into_iter()
        .map(|mut c| {
            c.push("--dry-run".into());
            c
        })
        .collect()
}

fn compare_dry_runs(provider: Provider, all: bool) {
    let Some(store) = Store::new(provider) else {
        return;
    };
    let Some(barman_delete) = barman("barman-cloud-backup-delete") else {
        return;
    };
    let backups = populate(&store, Local::now());
    let before = store.list_keys("");
    for case in dry_run_cases(&backups, all) {
        let theirs = delete(barman_delete.clone(), &store, &case);
        let mine = delete(ours("barman-cloud-backup-delete"), &store, &case);
        assert_eq!(
            mine.stdout(),
            theirs.stdout(),
            "{provider:?} {case:?}: dry-run output differs (Barman's stderr: {})",
            theirs.stderr()
        );
        assert_eq!(
            mine.exit_code(),
            theirs.exit_code(),
            "{provider:?} {case:?}: exit codes differ; ours said {}",
            mine.stderr()
        );
    }
    assert_eq!(store.list_keys(""), before, "a dry run deleted something");
}

/// Real deletions, one after the other, on two identical catalogs: one in a `provider`
/// store deleted by Barman, one in an `ours_on` store deleted by us (with small batches, to
/// exercise batching); the objects left must be the same.
fn compare_real_deletes(provider: Provider, ours_on: Provider, steps: &[&[&str]]) {
    let (Some(theirs_store), Some(ours_store)) = (Store::new(provider), Store::new(ours_on)) else {
        return;
    };
    let Some(barman_delete) = barman("barman-cloud-backup-delete") else {
        return;
    };
    let now = Local::now();
    populate(&theirs_store, now);
    populate(&ours_store, now);
    // Keys from the server directory down, whatever the store's key prefix.
    let left_in = |store: &Store| -> Vec<String> {
        store
            .list_keys("")
            .into_iter()
            .map(|k| k[k.find("pg/").unwrap()..].to_string())
            .collect()
    };
    let mut left = left_in(&ours_store).len();
    for step in steps {
        let step: Vec<String> = step.iter().map(|s| s.to_string()).collect();
        let theirs = delete(barman_delete.clone(), &theirs_store, &step);
        let mut mine_args = step.clone();
        mine_args.extend(["--batch-size".into(), "3".into()]);
        let mine = delete(ours("barman-cloud-backup-delete"), &ours_store, &mine_args);
        assert_eq!(mine.exit_code(), theirs.exit_code(), "{step:?}");
        let (left_theirs, left_ours) = (left_in(&theirs_store), left_in(&ours_store));
        assert_eq!(
            left_ours, left_theirs,
            "{provider:?}/{ours_on:?} after {step:?}: the objects left differ"
        );
        assert!(left_ours.len() < left, "{step:?} deleted nothing");
        left = left_ours.len();
    }
}

#[test]
fn dry_runs_match_barman_s3() {
    compare_dry_runs(Provider::S3, true);
}

#[test]
fn dry_runs_match_barman_azure() {
    compare_dry_runs(Provider::Azure, false);
}

#[test]
fn dry_runs_match_barman_gcs() {
    compare_dry_runs(Provider::Gcs, false);
}

#[test]
fn deletions_leave_what_barman_leaves_s3() {
    compare_real_deletes(
        Provider::S3,
        Provider::S3,
        &[
            &["-r", "REDUNDANCY 5"],
            &["-b", "named"],
            &["-r", "RECOVERY WINDOW OF 8 DAYS"],
            &["-b", "last-failed"],
            &["-r", "REDUNDANCY 1"],
            &["-b", "latest"],
        ],
    );
}

#[test]
fn deletions_leave_what_barman_leaves_azure() {
    compare_real_deletes(
        Provider::Azure,
        Provider::Azure,
        &[&["-r", "REDUNDANCY 3"], &["-r", "REDUNDANCY 1"]],
    );
}

#[test]
fn deletions_leave_what_barman_leaves_gcs() {
    compare_real_deletes(
        Provider::Gcs,
        Provider::Gcs,
        &[&["-r", "REDUNDANCY 3"], &["-r", "REDUNDANCY 1"]],
    );
}

/// `file://` has no Barman to compare with: our deletions there go one WAL name at a time,
/// without S3's whole-prefix shortcut (which also takes junk and shadowed copies), so they
/// must leave what Barman's leave on Azure, where it works the same way.
#[test]
fn deletions_on_file_leave_what_barman_leaves_on_azure() {
    compare_real_deletes(
        Provider::Azure,
        Provider::File,
        &[&["-r", "REDUNDANCY 5"], &["-r", "REDUNDANCY 1"]],
    );
}
