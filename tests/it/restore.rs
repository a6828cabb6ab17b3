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
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::pg::Pg;
use crate::support::{self, Provider, Store, barman, ours, run, temp_dir};

/// A directory owned by `postgres` (PostgreSQL refuses a tablespace it does not own).
fn postgres_dir(path: &Path) {
    fs::create_dir_all(path).unwrap();
    if fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
    {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a restore must reproduce: both tables' counts and sums, and the markers.
fn fingerprint(pg: &Pg) -> String {
    pg.sql(
        "SELECT (SELECT count(*) || ':' || sum(abalance) FROM pgbench_accounts) || '/' || \
         (SELECT count(*) || ':' || sum(v) FROM in_tbs) || '/' || \
         (SELECT string_agg(note, ',' ORDER BY id) FROM marker)",
    )
}

/// A PostgreSQL 15 server with a tablespace, archiving its WAL with Barman's
/// barman-cloud-wal-archive into `store`.
struct Source {
    dir: tempfile::TempDir,
    pg: Pg,
    tbs: PathBuf,
}

impl Source {
    fn new(store: &Store) -> Option<Source> {
        let archive = barman("barman-cloud-wal-archive")?;
        let dir = temp_dir();
        let primary = dir.path().join("primary");
        let tbs = dir.path().join("tbs");
        fs::create_dir(&primary).unwrap();
        postgres_dir(&tbs);
        support::chmod_world(&primary);
        let mut pg = Pg::init(&primary);
        let command = format!(
            "{}{} {}'{}' pg %p",
            store.shell_env(),
            archive.display(),
            store.shell_args(),
            store.url
        );
        pg.conf(&format!(
            "archive_mode = on\narchive_command = '{}'",
            command.replace('\'', "''")
        ));
        pg.start();
        pg.sql(&format!(
            "CREATE TABLESPACE tbs LOCATION '{}'",
            tbs.display()
        ));
        pg.pgbench(&["-i", "-s", "1", "-q"]);
        pg.sql(
            "CREATE TABLE in_tbs (v int) TABLESPACE tbs; \
             INSERT INTO in_tbs SELECT generate_series(1, 50000); \
             CREATE TABLE marker (id int, note text) TABLESPACE tbs; \
             INSERT INTO marker VALUES (1, 'before backup')",
        );
        Some(Source { dir, pg, tbs })
    }

    /// Takes a backup with Barman's barman-cloud-backup.
    fn backup(&self, store: &Store, flags: &[&str]) {
        let tool = barman("barman-cloud-backup").unwrap();
        let out = run(store
            .command(tool)
            .args(flags)
            .args(["--immediate-checkpoint", "-U", "postgres", "-h"])
            .arg(&self.pg.socket_dir)
            .args([&store.url, "pg"]));
        assert!(
            out.status.success(),
            "Barman's backup failed: {}",
            stderr(&out)
        );
    }

    /// Changes both tablespaces and adds a marker.
    fn write(&self, id: i32, note: &str) {
        self.pg.sql(&format!(
            "INSERT INTO marker VALUES ({id}, '{note}'); \
             UPDATE pgbench_accounts SET abalance = abalance + {id} WHERE aid % 7 = 0; \
             INSERT INTO in_tbs SELECT generate_series(1, 1000)"
        ));
    }

    fn switch_and_wait(&self) {
        let last = self.pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
        self.pg.wait_archived(&last);
    }
}

/// Runs our barman-cloud-restore.
fn restore(store: &Store, rest: &[&str]) -> Output {
    let mut cmd = store.command(ours("barman-cloud-restore"));
    cmd.arg("-v").arg(&store.url).arg("pg").args(rest);
    run(&mut cmd)
}

/// A restored data directory, started as a server of its own.
/// `dir` (a [`temp_dir`]) is writable by everyone, so it can hold the server's socket and log.
fn start_restored(dir: &Path, data: PathBuf, store: &Store, extra_conf: &str) -> Pg {
    let mut pg = Pg::from_data(dir, data);
    pg.conf(&format!(
        "archive_mode = off\nunix_socket_directories = '{}'\n{extra_conf}",
        dir.display()
    ));
    pg.start_with_env(&store.env);
    pg.wait_promoted();
    pg
}

fn assert_owned_by_postgres(path: &Path) {
    if fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
    {
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
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let Some(mut source) = Source::new(&store) else {
        return;
    };
    source.backup(&store, &["--snappy", "-S", "1MB"]);
    let between = source.pg.sql("SELECT now()");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    source.write(2, "after first backup");
    let expected = fingerprint(&source.pg);
    source.pg.sql("SELECT pg_create_restore_point('rp1')");
    source.write(3, "after restore point");
    source.switch_and_wait();
    source.backup(&store, &["--snappy", "-S", "1MB"]);
    source.write(4, "after second backup");
    source.switch_and_wait();
    source.pg.stop();

    let dir = temp_dir();
    let data = dir.path().join("data");
    let tbs = dir.path().join("tbs-relocated");
    let out = restore(
        &store,
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
    );
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("INFO: Restoring from backup_id: "), "{log}");
    assert!(
        log.contains("data_0001.tar.snappy"),
        "the backup was not split: {log}"
    );
    let label = fs::read_to_string(data.join("backup_label")).unwrap();
    let backups = list_backup_ids(&store);
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

    let restored = start_restored(dir.path(), data, &store, "");
    assert!(
        restored
            .log()
            .contains("recovery stopping at restore point \"rp1\""),
        "{}",
        restored.log()
    );
    assert_eq!(fingerprint(&restored), expected, "{}", restored.log());
    drop(source);
}

fn list_backup_ids(store: &Store) -> Vec<String> {
    let tool = barman("barman-cloud-backup-list").unwrap();
    let out = run(store
        .command(tool)
        .args(["--format", "json", &store.url, "pg"]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
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
    let Some(store) = Store::new(Provider::Azure) else {
        return;
    };
    let Some(mut source) = Source::new(&store) else {
        return;
    };
    source.backup(&store, &["-z"]);
    source.write(2, "after backup");
    source.switch_and_wait();
    let expected = fingerprint(&source.pg);
    source.pg.stop();
    // The original location must be empty for the restore: move the source's away.
    let moved = source.dir.path().join("tbs-source");
    fs::rename(&source.tbs, &moved).unwrap();
    let id = list_backup_ids(&store).pop().unwrap();

    let dir = temp_dir();
    let ours_data = dir.path().join("ours");
    let out = restore(&store, &[&id, ours_data.to_str().unwrap()]);
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    assert!(
        fs::read_dir(&source.tbs).unwrap().next().is_some(),
        "the tablespace is not back in its original location"
    );

    let theirs_data = dir.path().join("barman");
    let theirs_tbs = dir.path().join("barman-tbs");
    let out = run(store
        .command(barman("barman-cloud-restore").unwrap())
        .args([&store.url, "pg", &id, theirs_data.to_str().unwrap()])
        .arg(format!("--tablespace=tbs:{}", theirs_tbs.display())));
    assert!(
        out.status.success(),
        "Barman's restore failed: {}",
        stderr(&out)
    );
    assert_same_tree(&ours_data, &theirs_data);
    assert_same_tree(&source.tbs, &theirs_tbs);

    let restore_command = format!(
        "{} {}'{}' pg %f %p",
        ours("barman-cloud-wal-restore").display(),
        store.shell_args(),
        store.url
    );
    fs::write(ours_data.join("recovery.signal"), "").unwrap();
    let restored = start_restored(
        dir.path(),
        ours_data,
        &store,
        &format!(
            "restore_command = '{}'",
            restore_command.replace('\'', "''")
        ),
    );
    assert_eq!(fingerprint(&restored), expected, "{}", restored.log());
}

/// bzip2, split parts, chosen by name, relocated tablespace, two parts at a time, our
/// recovery settings replaying to the end of the archive, on GCS.
#[test]
fn gcs_bzip2_split_by_name_full_replay() {
    bzip2_split_by_name_full_replay(Provider::Gcs);
}

fn bzip2_split_by_name_full_replay(provider: Provider) {
    let Some(store) = Store::new(provider) else {
        return;
    };
    let Some(mut source) = Source::new(&store) else {
        return;
    };
    source.backup(&store, &["-j", "-S", "1MB", "-n", "nightly"]);
    source.write(2, "after backup");
    source.switch_and_wait();
    let expected = fingerprint(&source.pg);
    source.pg.stop();

    let dir = temp_dir();
    let data = dir.path().join("data");
    let tbs = dir.path().join("elsewhere/tbs");
    let out = restore(
        &store,
        &[
            "nightly",
            data.to_str().unwrap(),
            "--tablespace",
            &format!("tbs:{}", tbs.display()),
            "--write-recovery-conf",
            "-J",
            "2",
        ],
    );
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    assert!(
        stderr(&out).contains("data_0001.tar.bz2"),
        "{}",
        stderr(&out)
    );
    let restored = start_restored(dir.path(), data, &store, "");
    assert_eq!(fingerprint(&restored), expected, "{}", restored.log());
    assert!(
        restored.log().contains("restored log file"),
        "{}",
        restored.log()
    );
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
        let out = restore(&store, &args);
        assert!(out.status.success(), "{targets:?}: {}", stderr(&out));
        assert_eq!(
            fs::read_to_string(dest.join("marker")).unwrap(),
            expected,
            "{targets:?}"
        );
        assert!(dest.join("pg_wal").is_dir());
        assert!(stderr(&out).contains(&format!("Restoring from backup_id: {expected}")));
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
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Cannot find any candidate backup for recovery."));
    for (flag, value) in [
        ("--target-tli", "current"),
        ("--target-time", "yesterday"),
        ("--target-lsn", "x"),
    ] {
        let out = restore(&store, &["auto", dest.to_str().unwrap(), flag, value]);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{flag} {value}: {}",
            stderr(&out)
        );
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
    let out = restore(&store, &["latest", dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "Destination {} already exists and it is not empty",
            dest.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 1);

    let fresh = dir.path().join("fresh");
    let fresh = fresh.to_str().unwrap();
    // An ID with no backup: exit 1, Barman's message.
    let out = restore(&store, &["20991231T000000", fresh]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Backup 20991231T000000 for server pg does not exists"));
    // An unknown name: exit 4.
    let out = restore(&store, &["no-such-name", fresh]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("Unknown backup 'no-such-name' for server 'pg'"));
    // Snapshot options: accepted by the parser, refused by the command.
    let out = restore(
        &store,
        &["latest", fresh, "--snapshot-recovery-instance", "vm"],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("snapshot backups are not supported yet"));
    // A bad tablespace rule is a usage error.
    let out = restore(&store, &["latest", fresh, "--tablespace", "nocolon"]);
    assert_eq!(out.status.code(), Some(3));

    // A data archive with an unreadable extension only: skipped, then missing (exit 1).
    put_backup(
        &store,
        "20261103T000000",
        &backup_info("2026-11-03 00:10:00+00:00", "0/B000100"),
        &[("data.tar.zst", vec![0; 10])],
    );
    let out = restore(&store, &["20261103T000000", fresh]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Skipping unknown extension: tar.zst"));
    assert!(stderr(&out).contains("Missing file pg/base/20261103T000000/data.* for server pg"));

    // A hostile archive: exit 4, nothing written outside the destination.
    let evil = gzip(&tar(&[("./PG_VERSION", "15\n"), ("../escaped", "pwned")]));
    put_backup(
        &store,
        "20261104T000000",
        &backup_info("2026-11-04 00:10:00+00:00", "0/C000100"),
        &[("data.tar.gz", evil)],
    );
    let out = restore(&store, &["20261104T000000", fresh]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("refusing to extract '../escaped'"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("escaped").exists());
}
