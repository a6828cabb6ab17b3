//! barman-cloud-restore end to end: backups taken by Barman's own barman-cloud-backup on a
//! PostgreSQL 15 server with a tablespace, restored by our barman-cloud-restore, started by
//! PostgreSQL and compared with the source; and the refusals and exit codes of §2.10 on
//! small synthetic backups in a `file://` store.
//!
//! The PostgreSQL matrix changes several axes per row:
//!
//! | provider | compression | parts | tablespace | chosen by | recovery settings |
//! |---|---|---|---|---|---|
//! | S3 | snappy | split (-S 1MB) | relocated | auto + --target-time, 2 backups | ours, to a restore point |
//! | Azure | gzip | one | original location | ID, also restored by Barman and compared | written by the test |
//! | S3 (GCS: ignored, see below) | bzip2 | split | relocated | name (-n) | ours, to the end of the archive |

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::pg::running_as_root;
use crate::support::primary::{
    By, Options, Primary, Recovery, assert_replayed, fingerprint, start_restored,
};
use crate::support::{Provider, Ran, Store, TestCommand, barman, ours, temp_dir};

/// The second part of a [`fingerprint`]: the table in the tablespace.
const IN_TBS: (&str, &str) = ("in_tbs", "v");

/// A PostgreSQL 15 server with tablespace `tbs`, archiving its WAL with Barman's
/// barman-cloud-wal-archive into its store.
fn source(provider: Provider) -> Option<Primary> {
    let source = Primary::new(
        provider,
        Options {
            archiver: By::Barman,
            tablespace: Some("tbs"),
            pgbench_scale: Some(1),
            ..Options::default()
        },
    )?;
    source.pg.sql(
        "CREATE TABLE in_tbs (v int) TABLESPACE tbs; \
         INSERT INTO in_tbs SELECT generate_series(1, 50000); \
         INSERT INTO marker VALUES (1, 'before backup')",
    );
    Some(source)
}

/// Changes both tablespaces and adds a marker.
fn write(source: &Primary, id: i32, note: &str) {
    source.pg.sql(&format!(
        "INSERT INTO marker VALUES ({id}, '{note}'); \
         UPDATE pgbench_accounts SET abalance = abalance + {id} WHERE aid % 7 = 0; \
         INSERT INTO in_tbs SELECT generate_series(1, 1000)"
    ));
}

/// Runs our barman-cloud-restore.
fn restore(store: &Store, rest: &[&str]) -> Ran {
    store
        .command(ours("barman-cloud-restore"))
        .arg("-v")
        .arg(&store.url)
        .arg("pg")
        .args(rest)
        .ran()
}

fn assert_owned_by_postgres(path: &Path) {
    if running_as_root() {
        let postgres = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        let meta = fs::symlink_metadata(path).unwrap();
        assert_eq!(meta.uid(), postgres.uid.as_raw(), "{}", path.display());
    }
}

/// S3, snappy, split parts, two backups: `auto --target-time` between them restores the
/// first, to a relocated tablespace, and our recovery settings replay to a restore point
/// written after it.
#[test]
fn s3_snappy_split_auto_time_to_restore_point() {
    let Some(mut source) = source(Provider::S3) else {
        return;
    };
    let backup = ["--snappy", "-S", "1MB", "--immediate-checkpoint"];
    source.backup(By::Barman, &backup);
    let between = source.pg.sql("SELECT now()");
    write(&source, 2, "after first backup");
    let expected = fingerprint(&source.pg, IN_TBS);
    source.pg.sql("SELECT pg_create_restore_point('rp1')");
    write(&source, 3, "after restore point");
    source.switch_wal_and_wait();
    source.backup(By::Barman, &backup);
    write(&source, 4, "after second backup");
    source.switch_wal_and_wait();
    source.pg.stop();
    let store = &source.store;

    let dir = temp_dir();
    let data = dir.path().join("data");
    let tbs = dir.path().join("tbs-relocated");
    let out = restore(
        store,
        &[
            "auto",
            data.to_str().unwrap(),
            "--target-time",
            &between,
            "--tablespace",
            &format!("tbs:{}", tbs.display()),
            "--write-recovery-conf",
            "--recovery-target-name",
            "rp1",
            "--recovery-target-action",
            "promote",
        ],
    )
    .code(0);
    let log = out.stderr();
    assert!(log.contains("INFO: Restoring from backup_id: "), "{log}");
    assert!(
        log.contains("data_0001.tar.snappy"),
        "the backup was not split: {log}"
    );
    let label = fs::read_to_string(data.join("backup_label")).unwrap();
    let backups = list_backup_ids(store);
    assert_eq!(backups.len(), 2);
    assert!(
        label.contains(&backups[0]),
        "auto chose the wrong backup:\n{label}"
    );
    assert_owned_by_postgres(&data.join("backup_label"));
    assert_owned_by_postgres(&data.join("PG_VERSION"));
    let link = fs::read_link(data.join("pg_tblspc").join(tablespace_oid(&data))).unwrap();
    assert_eq!(
        link,
        fs::canonicalize(dir.path()).unwrap().join("tbs-relocated")
    );
    assert!(fs::read_dir(&tbs).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("PG_15_")
    }));
    // The source's archive_command carries the test's credentials; what we add must not.
    let auto_conf = fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    let (_, ours) = auto_conf
        .split_once("# Recovery settings written by barman-cloud-restore\n")
        .expect("no recovery settings written");
    assert!(ours.contains("restore_command = '"), "{ours}");
    assert!(
        !ours.contains("testing"),
        "a credential was written: {ours}"
    );

    let restored = start_restored(dir.path(), data, store, Recovery::AsRestored);
    assert!(
        restored
            .log()
            .contains("recovery stopping at restore point \"rp1\""),
        "{}",
        restored.log()
    );
    assert_eq!(
        fingerprint(&restored, IN_TBS),
        expected,
        "{}",
        restored.log()
    );
}

/// `auto --target-time T --write-recovery-conf --disable-archiving`: the one time both
/// chooses the backup (the first of two) and stops the replay (recovery_target_time, written
/// with its offset), and archiving is switched off in what we write.
#[test]
fn file_one_target_time_chooses_and_stops() {
    let Some(source) = Primary::new(Provider::File, Options::default()) else {
        return;
    };
    source.backup(By::Us, &["--immediate-checkpoint"]);
    source
        .pg
        .sql("INSERT INTO marker VALUES (2, 'before target')");
    let target = source.pg.sql("SELECT now()");
    source
        .pg
        .sql("INSERT INTO marker VALUES (3, 'after target')");
    source.switch_wal_and_wait();
    source.backup(By::Us, &["--immediate-checkpoint"]);
    source
        .pg
        .sql("INSERT INTO marker VALUES (4, 'after second backup')");
    source.switch_wal_and_wait();
    let store = &source.store;

    let dir = temp_dir();
    let data = dir.path().join("data");
    let out = restore(
        store,
        &[
            "auto",
            data.to_str().unwrap(),
            "--target-time",
            &target,
            "--write-recovery-conf",
            "--disable-archiving",
            "--recovery-target-action",
            "promote",
        ],
    )
    .code(0);
    assert!(
        !out.stderr().contains("keeps the source's archive_command"),
        "{}",
        out.stderr()
    );
    let label = fs::read_to_string(data.join("backup_label")).unwrap();
    assert!(
        label.contains(&source.backup_ids()[0]),
        "auto chose the wrong backup:\n{label}"
    );
    let auto_conf = fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    let (_, ours) = auto_conf
        .split_once("# Recovery settings written by barman-cloud-restore\n")
        .expect("no recovery settings written");
    assert!(ours.contains("recovery_target_time = '"), "{ours}");
    assert!(ours.contains("archive_mode = 'off'\n"), "{ours}");

    let restored = start_restored(dir.path(), data, store, Recovery::AsRestored);
    assert!(
        restored.log().contains("recovery stopping before commit"),
        "{}",
        restored.log()
    );
    assert_eq!(
        restored.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM marker"),
        "2"
    );

    // Without --disable-archiving the restore says what the restored server keeps.
    let again = dir.path().join("again");
    let out = restore(
        store,
        &[
            "auto",
            again.to_str().unwrap(),
            "--target-time",
            &target,
            "--write-recovery-conf",
        ],
    )
    .code(0);
    assert!(
        out.stderr().contains(
            "WARNING: the restored server keeps the source's archive_command and so archives \
             into server pg unless changed: pass --disable-archiving to write archive_mode = 'off'"
        ),
        "{}",
        out.stderr()
    );
}

fn list_backup_ids(store: &Store) -> Vec<String> {
    let text = store
        .command(barman("barman-cloud-backup-list").unwrap())
        .args(["--format", "json", &store.url, "pg"])
        .ok();
    let mut ids: Vec<String> = text
        .split("\"backup_id\": \"")
        .skip(1)
        .map(|s| s[..15].to_string())
        .collect();
    ids.sort();
    ids
}

fn tablespace_oid(data: &Path) -> String {
    let entries: Vec<String> = fs::read_dir(data.join("pg_tblspc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

/// Azure, gzip, one part, restored by ID into the tablespace's original location; Barman's
/// own barman-cloud-restore of the same backup gives the same tree; full replay of the
/// archive through our wal-restore.
#[test]
fn azure_gzip_by_id_original_location_matches_barman() {
    let Some(mut source) = source(Provider::Azure) else {
        return;
    };
    source.backup(By::Barman, &["-z", "--immediate-checkpoint"]);
    write(&source, 2, "after backup");
    source.switch_wal_and_wait();
    let expected = fingerprint(&source.pg, IN_TBS);
    source.pg.stop();
    let (store, tbs) = (&source.store, source.tbs.as_ref().unwrap());
    // The original location must be empty for the restore: move the source's away.
    fs::rename(tbs, source.root.join("tbs-source")).unwrap();
    let id = list_backup_ids(store).pop().unwrap();

    let dir = temp_dir();
    let ours_data = dir.path().join("ours");
    restore(store, &[&id, ours_data.to_str().unwrap()]).code(0);
    assert!(
        fs::read_dir(tbs).unwrap().next().is_some(),
        "the tablespace is not back in its original location"
    );

    let theirs_data = dir.path().join("barman");
    let theirs_tbs = dir.path().join("barman-tbs");
    store
        .command(barman("barman-cloud-restore").unwrap())
        .args([&store.url, "pg", &id, theirs_data.to_str().unwrap()])
        .arg(format!("--tablespace=tbs:{}", theirs_tbs.display()))
        .ok();
    assert_same_tree(&ours_data, &theirs_data);
    assert_same_tree(tbs, &theirs_tbs);

    let restored = start_restored(dir.path(), ours_data, store, Recovery::Replay(""));
    assert_eq!(
        fingerprint(&restored, IN_TBS),
        expected,
        "{}",
        restored.log()
    );
}

/// bzip2, split parts, chosen by name, relocated tablespace, two parts at a time, our
/// recovery settings replaying to the end of the archive, on GCS.
#[test]
fn gcs_bzip2_split_by_name_full_replay() {
    bzip2_split_by_name_full_replay(Provider::Gcs);
}

fn bzip2_split_by_name_full_replay(provider: Provider) {
    let Some(mut source) = source(provider) else {
        return;
    };
    source.backup(
        By::Barman,
        &["-j", "-S", "1MB", "-n", "nightly", "--immediate-checkpoint"],
    );
    write(&source, 2, "after backup");
    source.switch_wal_and_wait();
    let expected = fingerprint(&source.pg, IN_TBS);
    source.pg.stop();
    let store = &source.store;

    let dir = temp_dir();
    let data = dir.path().join("data");
    let tbs = dir.path().join("elsewhere/tbs");
    let out = restore(
        store,
        &[
            "nightly",
            data.to_str().unwrap(),
            "--tablespace",
            &format!("tbs:{}", tbs.display()),
            "--write-recovery-conf",
            "-J",
            "2",
        ],
    )
    .code(0);
    assert!(out.stderr().contains("data_0001.tar.bz2"), "{out:?}");
    let restored = start_restored(dir.path(), data, store, Recovery::AsRestored);
    assert_replayed(&restored, &expected, IN_TBS);
}

/// Compares two restored trees, listing only the paths that differ.
fn assert_same_tree(ours: &Path, theirs: &Path) {
    let (a, b) = (tree(ours), tree(theirs));
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: ours {:?}, Barman's {:?}", a.get(k), b.get(k)))
        .collect();
    assert!(
        diff.is_empty(),
        "{} differs from Barman's restore {}:\n{}",
        ours.display(),
        theirs.display(),
        diff.join("\n")
    );
}

/// One line per path: kind, mode, owner, size, mtime (seconds) and content digest or link
/// target. `backup_label`'s owner is left out: Barman leaves it to uid 0, we do not; so are
/// the tablespace links' targets (each restore has its own locations).
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let m = fs::symlink_metadata(&path).unwrap();
            let owner = if rel == "backup_label" {
                String::new()
            } else {
                format!("{}:{}", m.uid(), m.gid())
            };
            let what = if m.file_type().is_symlink() {
                // Tablespace links point at each restore's own location.
                if rel.starts_with("pg_tblspc/") {
                    "link".to_string()
                } else {
                    format!("link {}", fs::read_link(&path).unwrap().display())
                }
            } else if m.is_dir() {
                // Both restores add the tablespace links after setting pg_tblspc's time.
                let mtime = if rel == "pg_tblspc" { 0 } else { m.mtime() };
                format!("dir {:o} {owner} {mtime}", m.mode() & 0o7777)
            } else {
                let data = fs::read(&path).unwrap();
                let digest = data.iter().fold(0xcbf29ce484222325u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
                });
                format!(
                    "file {:o} {owner} {} {} {digest:x}",
                    m.mode() & 0o7777,
                    m.len(),
                    m.mtime()
                )
            };
            out.insert(rel, what);
            if m.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

// Synthetic backups in a file:// store, for the refusals and the choice of `auto`.

/// A minimal DONE backup.info (whole: it ends with the key every writer puts last).
fn backup_info(end_time: &str, end_xlog: &str) -> String {
    format!(
        "backup_label=None\nbegin_offset=40\nbegin_time={end_time}\n\
         begin_wal=000000010000000000000002\nbegin_xlog=0/2000028\nend_time={end_time}\n\
         end_xlog={end_xlog}\nstatus=DONE\ntablespaces=None\ntimeline=1\nversion=150018\n\
         xlog_segment_size=16777216\n"
    )
}

/// A tar stream of (name, content) files, with raw names so hostile ones can be written.
fn tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, content) in files {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(content.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(content.as_bytes());
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn put_backup(store: &Store, id: &str, info: &str, objects: &[(&str, Vec<u8>)]) {
    let dir = store.file_root().unwrap().join("pg/base").join(id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("backup.info"), info).unwrap();
    for (name, data) in objects {
        fs::write(dir.join(name), data).unwrap();
    }
}

/// Two backups a day apart, each holding a marker naming itself.
fn two_backups() -> Store {
    let store = Store::new(Provider::File).unwrap();
    for (id, end, lsn) in [
        ("20261101T000000", "2026-11-01 00:10:00+00:00", "0/9000100"),
        ("20261102T000000", "2026-11-02 00:10:00+00:00", "0/A000100"),
    ] {
        let data = gzip(&tar(&[
            ("./PG_VERSION", "15\n"),
            ("marker", id),
            ("global/pg_control", "control"),
            ("backup_label", "START WAL LOCATION"),
        ]));
        put_backup(&store, id, &backup_info(end, lsn), &[("data.tar.gz", data)]);
    }
    store
}

#[test]
fn auto_picks_the_backup_for_the_target() {
    let store = two_backups();
    let dir = temp_dir();
    let cases = [
        (
            vec!["--target-time", "2026-11-01 12:00:00+00:00"],
            "20261101T000000",
        ),
        (
            vec!["--target-time", "2026-11-02 01:10:00+01:00"],
            "20261102T000000",
        ),
        (vec!["--target-lsn", "0/9FFFFFF"], "20261101T000000"),
        (vec![], "20261102T000000"),
        (vec!["--target-tli", "1"], "20261102T000000"),
    ];
    for (i, (targets, expected)) in cases.into_iter().enumerate() {
        let dest = dir.path().join(i.to_string());
        let mut args = vec!["auto", dest.to_str().unwrap()];
        args.extend(targets.iter().copied());
        let out = restore(&store, &args).code(0);
        assert_eq!(
            fs::read_to_string(dest.join("marker")).unwrap(),
            expected,
            "{targets:?}"
        );
        assert!(dest.join("pg_wal").is_dir());
        assert!(
            out.stderr()
                .contains(&format!("Restoring from backup_id: {expected}"))
        );
    }
    let dest = dir.path().join("none");
    let out = restore(
        &store,
        &[
            "auto",
            dest.to_str().unwrap(),
            "--target-time",
            "2026-10-01",
        ],
    )
    .code(1);
    assert!(
        out.stderr()
            .contains("Cannot find any candidate backup for recovery.")
    );
    for (flag, value) in [
        ("--target-tli", "current"),
        ("--target-time", "yesterday"),
        ("--target-lsn", "x"),
    ] {
        restore(&store, &["auto", dest.to_str().unwrap(), flag, value]).code(4);
    }
    assert!(!dest.exists());
}

#[test]
fn refusals_and_exit_codes() {
    let store = two_backups();
    let dir = temp_dir();
    let dest = dir.path().join("dest");

    // A non-empty destination: exit 1, nothing downloaded into it.
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep"), "mine").unwrap();
    let out = restore(&store, &["latest", dest.to_str().unwrap()]).code(1);
    assert!(
        out.stderr().contains(&format!(
            "Destination {} already exists and it is not empty",
            dest.display()
        )),
        "{out:?}"
    );
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 1);

    let fresh = dir.path().join("fresh");
    let fresh = fresh.to_str().unwrap();
    // An ID with no backup: exit 1, Barman's message.
    let out = restore(&store, &["20991231T000000", fresh]).code(1);
    assert!(
        out.stderr()
            .contains("Backup 20991231T000000 for server pg does not exists")
    );
    // An unknown name: exit 4.
    let out = restore(&store, &["no-such-name", fresh]).code(4);
    assert!(
        out.stderr()
            .contains("Unknown backup 'no-such-name' for server 'pg'")
    );
    // Snapshot options: accepted by the parser, refused by the command.
    let out = restore(
        &store,
        &["latest", fresh, "--snapshot-recovery-instance", "vm"],
    )
    .code(4);
    assert!(
        out.stderr()
            .contains("snapshot backups are not supported yet")
    );
    // A bad tablespace rule is a usage error.
    restore(&store, &["latest", fresh, "--tablespace", "nocolon"]).code(3);

    // A data archive with an unreadable extension only: skipped, then missing (exit 1).
    put_backup(
        &store,
        "20261103T000000",
        &backup_info("2026-11-03 00:10:00+00:00", "0/B000100"),
        &[("data.tar.xz", vec![0; 10])],
    );
    let out = restore(&store, &["20261103T000000", fresh]).code(1);
    assert!(out.stderr().contains("Skipping unknown extension: tar.xz"));
    assert!(
        out.stderr()
            .contains("Missing file pg/base/20261103T000000/data.* for server pg")
    );

    // A hostile archive: exit 4, nothing written outside the destination.
    let evil = gzip(&tar(&[("./PG_VERSION", "15\n"), ("../escaped", "pwned")]));
    put_backup(
        &store,
        "20261104T000000",
        &backup_info("2026-11-04 00:10:00+00:00", "0/C000100"),
        &[("data.tar.gz", evil)],
    );
    let out = restore(&store, &["20261104T000000", fresh]).code(4);
    assert!(
        out.stderr().contains("refusing to extract '../escaped'"),
        "{}",
        out.stderr()
    );
    assert!(!dir.path().join("escaped").exists());
}
