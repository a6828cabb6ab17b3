//! Base backups end to end: our barman-cloud-backup under a write load, restored and started
//! with our restore_command; interop with Barman's backup-show/list/restore; interrupted
//! backups never DONE.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::pg::{Pg, as_postgres};
use crate::support::{self, Provider, Store, barman, ours, run, temp_dir};
use crate::wal::{archive_command, restore_command};

/// A primary archiving to `store`, with a tablespace holding part of the data.
struct Source {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pg: Pg,
    store: Store,
}

impl Source {
    fn new(provider: Provider, wal_compression: &str) -> Option<Source> {
        let store = Store::new(provider)?;
        let dir = temp_dir();
        let root = dir.path().to_path_buf();
        for d in ["primary", "tbs", "restored", "moved-tbs"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        support::chmod_world(&root);
        let mut pg = Pg::init(&root.join("primary"));
        pg.conf(&format!(
            "archive_mode = on\narchive_command = '{}'\ncheckpoint_timeout = 30s",
            archive_command(&store, wal_compression).replace('\'', "''")
        ));
        pg.start();
        let chown = Command::new("chown")
            .args(["postgres"])
            .arg(root.join("tbs"))
            .status();
        assert!(chown.is_ok_and(|s| s.success()));
        pg.sql(&format!(
            "CREATE TABLESPACE tbs1 LOCATION '{}'",
            root.join("tbs").display()
        ));
        pg.sql("CREATE TABLE marker (id int, note text) TABLESPACE tbs1");
        pg.pgbench(&["-i", "-s", "3", "-q"]);
        Some(Source {
            _dir: dir,
            root,
            pg,
            store,
        })
    }

    /// Our barman-cloud-backup, run as the postgres user as CloudNativePG and cron do.
    fn backup(&self, flags: &[&str]) -> Output {
        run(&mut self.backup_command(flags))
    }

    fn backup_command(&self, flags: &[&str]) -> Command {
        self.backup_command_on(&self.root.join("primary"), flags)
    }

    /// Our backup of the server whose socket is in `socket_dir`.
    fn backup_command_on(&self, socket_dir: &Path, flags: &[&str]) -> Command {
        self.backup_command_to(&self.store, socket_dir, flags)
    }

    /// Our backup into `store` (this source's bucket, maybe through a proxy).
    fn backup_command_to(&self, store: &Store, socket_dir: &Path, flags: &[&str]) -> Command {
        let mut cmd = as_postgres(ours("barman-cloud-backup"));
        cmd.args(&store.args)
            .envs(store.env.iter().map(|(k, v)| (k, v)))
            .args(flags)
            .args(["-h", socket_dir.to_str().unwrap()])
            .args(["-U", "postgres"])
            .arg(&store.url)
            .arg("pg");
        cmd
    }

    /// Restores `id` with Barman's barman-cloud-restore (as postgres) into `restored/data`,
    /// moving tablespace `tbs1` to `moved-tbs`; returns both directories.
    fn barman_restore(&self, id: &str) -> (PathBuf, PathBuf) {
        let (data, moved) = (self.root.join("restored/data"), self.root.join("moved-tbs"));
        let out = run(as_postgres(barman("barman-cloud-restore").unwrap())
            .args(&self.store.args)
            .envs(self.store.env.iter().map(|(k, v)| (k, v)))
            .arg(format!("--tablespace=tbs1:{}", moved.display()))
            .args([&self.store.url, "pg", id])
            .arg(&data));
        assert!(
            out.status.success(),
            "Barman cannot restore our backup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (data, moved)
    }

    /// Restores `id` with our barman-cloud-restore into `<name>/data`, the tablespace into
    /// `<name>/tbs`, and returns the server (not started).
    fn our_restore(&self, id: &str, name: &str) -> Pg {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        support::chmod_world(&dir);
        let data = dir.join("data");
        let out = run(as_postgres(ours("barman-cloud-restore"))
            .args(&self.store.args)
            .envs(self.store.env.iter().map(|(k, v)| (k, v)))
            .arg(format!("--tablespace=tbs1:{}", dir.join("tbs").display()))
            .args([&self.store.url, "pg", id])
            .arg(&data));
        assert!(out.status.success(), "we cannot restore backup {id}");
        Pg::from_data(&dir, data)
    }

    /// Writes a marker row, switches WAL and waits for it to be archived.
    fn mark(&self, note: &str) {
        self.pg.sql(&format!(
            "INSERT INTO marker VALUES ((SELECT count(*) FROM marker) + 1, '{note}')"
        ));
        let last = self.pg.sql("SELECT pg_walfile_name(pg_switch_wal())");
        self.pg.wait_archived(&last);
    }

    fn backup_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = crate::conformance::list_keys(&self.store, "pg/base")
            .into_iter()
            .filter(|k| k.ends_with("/backup.info"))
            .map(|k| k.rsplit('/').nth(1).unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

/// The state a recovery must reproduce.
fn fingerprint(pg: &Pg) -> String {
    pg.sql(
        "SELECT (SELECT count(*) || ':' || sum(abalance) FROM pgbench_accounts) || '/' || \
         (SELECT count(*) || ':' || coalesce(sum(delta), 0) FROM pgbench_history) || '/' || \
         (SELECT string_agg(note, ',' ORDER BY id) FROM marker)",
    )
}

/// Runs pgbench for `secs` seconds on another thread.
fn load(pg: &Pg, secs: u32) -> std::thread::JoinHandle<()> {
    let socket = pg.socket_dir().to_path_buf();
    std::thread::spawn(move || {
        let out = run(as_postgres(
            Path::new(&std::env::var("BCRS_PG_BIN").unwrap_or("/usr/lib/postgresql/15/bin".into()))
                .join("pgbench"),
        )
        .args(["-U", "postgres", "-h"])
        .arg(&socket)
        .args(["-T", &secs.to_string(), "-c", "2", "postgres"]));
        assert!(out.status.success(), "pgbench load failed");
    })
}

/// Starts a restored data directory with our restore_command and optional recovery targets,
/// and waits for recovery to end.
fn start_restored(source: &Source, data: PathBuf, targets: &str) -> Pg {
    recover(
        source,
        Pg::from_data(&source.root.join("restored"), data),
        targets,
    )
}

fn recover(source: &Source, mut pg: Pg, targets: &str) -> Pg {
    pg.conf(&format!(
        "archive_mode = off\nunix_socket_directories = '{}'\nrestore_command = '{}'\n{targets}",
        pg.socket_dir().display(),
        restore_command(&source.store).replace('\'', "''")
    ));
    pg.write_file("recovery.signal", "");
    pg.start();
    pg.wait_promoted();
    pg
}

/// Point-in-time recovery from our backup with our restore: to a time, an xid, an LSN and a
/// named restore point, each stopping exactly there (marker rows on both sides prove it).
fn pitr(provider: Provider, backup_flag: &str) {
    let Some(source) = Source::new(provider, "--zstd") else {
        return;
    };
    let out = source.backup(&[backup_flag, "--immediate-checkpoint"]);
    assert!(out.status.success(), "backup failed");
    let id = source.backup_ids().remove(0);
    let insert = |n: u32| {
        source
            .pg
            .sql(&format!("INSERT INTO marker VALUES ({n}, 'm{n}')"));
    };
    insert(1);
    let time = source.pg.sql("SELECT clock_timestamp()");
    std::thread::sleep(Duration::from_millis(1100));
    insert(2);
    let xid = source.pg.sql(
        "WITH i AS (INSERT INTO marker VALUES (3, 'm3') RETURNING 1) \
         SELECT txid_current() FROM i",
    );
    insert(4);
    let lsn = source.pg.sql("SELECT pg_current_wal_insert_lsn()");
    insert(5);
    source.pg.sql("SELECT pg_create_restore_point('before-m6')");
    insert(6);
    source.mark("end");

    for (n, (target, markers)) in [
        (format!("recovery_target_time = '{time}'"), "m1"),
        (format!("recovery_target_xid = '{xid}'"), "m1,m2,m3"),
        (format!("recovery_target_lsn = '{lsn}'"), "m1,m2,m3,m4"),
        (
            "recovery_target_name = 'before-m6'".to_string(),
            "m1,m2,m3,m4,m5",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let pg = source.our_restore(&id, &format!("pitr-{n}"));
        let pg = recover(
            &source,
            pg,
            &format!("{target}\nrecovery_target_action = 'promote'"),
        );
        let got =
            pg.sql("SELECT string_agg(note, ',' ORDER BY id) FROM marker WHERE note LIKE 'm%'");
        assert_eq!(got, markers, "{target}\n{}", pg.log());
    }
}

#[test]
fn pitr_file_lz4() {
    pitr(Provider::File, "--lz4");
}

#[test]
fn pitr_gcs_snappy() {
    pitr(Provider::Gcs, "--snappy");
}

/// Our multi-threaded snappy and LZ4 tarballs (blocks compressed on every core) restore with
/// Barman's barman-cloud-restore, and the server replays to the same data.
fn restored_by_barman(backup_flag: &str) {
    let Some(source) = Source::new(Provider::S3, backup_flag) else {
        return;
    };
    let out = source.backup(&[backup_flag, "--immediate-checkpoint"]);
    assert!(out.status.success(), "backup failed");
    source.mark("after backup");
    let expected = fingerprint(&source.pg);
    let ids = source.backup_ids();
    let (data, _) = source.barman_restore(&ids[0]);
    let restored = start_restored(&source, data, "");
    assert_eq!(fingerprint(&restored), expected, "{}", restored.log());
}

#[test]
fn barman_restores_our_snappy_tarballs() {
    restored_by_barman("--snappy");
}

#[test]
fn barman_restores_our_lz4_tarballs() {
    restored_by_barman("--lz4");
}

/// Backup under a pgbench load with split gzip parts and a tablespace; Barman's tools list,
/// show and restore it, and the restored server replays to the same data.
#[test]
fn backup_under_load_restored_by_barman_s3_gzip() {
    let Some(source) = Source::new(Provider::S3, "--gzip") else {
        return;
    };
    source.mark("before backup");
    let load = load(&source.pg, 12);
    std::thread::sleep(Duration::from_secs(2));
    let out = source.backup(&["-z", "-S", "1MB", "--immediate-checkpoint", "-n", "nightly"]);
    assert!(out.status.success(), "backup failed");
    load.join().unwrap();
    source.mark("after backup");
    let expected = fingerprint(&source.pg);

    let ids = source.backup_ids();
    assert_eq!(ids.len(), 1);
    let id = &ids[0];
    let keys = crate::conformance::list_keys(&source.store, &format!("pg/base/{id}"));
    assert!(
        keys.iter().any(|k| k.ends_with("/data_0001.tar.gz")),
        "no split parts: {keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.ends_with("/16384.tar.gz") || k.contains(".tar.gz"))
    );

    // Barman reads our backup.info: show (by name) and list agree with what we stored.
    let show = run(source
        .store
        .command(barman("barman-cloud-backup-show").unwrap())
        .args(["--format", "json", &source.store.url, "pg", "nightly"]));
    assert!(show.status.success(), "Barman cannot show our backup");
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("\"status\": \"DONE\""), "{show}");
    assert!(show.contains(&format!("\"backup_id\": \"{id}\"")), "{show}");

    // Barman restores it, moving the tablespace; PostgreSQL replays our archive to the end.
    let (data, moved) = source.barman_restore(id);
    let restored = start_restored(&source, data, "");
    assert_eq!(fingerprint(&restored), expected, "{}", restored.log());
    assert_eq!(
        restored
            .sql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'tbs1'"),
        moved.display().to_string()
    );
}

/// A backup taken from a streaming standby (bzip2, on Azure) restores and replays.
#[test]
fn backup_from_a_standby_azure_bzip2() {
    let Some(source) = Source::new(Provider::Azure, "--lz4") else {
        return;
    };
    let standby_dir = source.root.join("standby");
    std::fs::create_dir(&standby_dir).unwrap();
    support::chmod_world(&standby_dir);
    let data = standby_dir.join("data");
    let out = run(as_postgres(crate::support::pg::pg_bin("pg_basebackup"))
        .args(["-U", "postgres", "-X", "stream", "-R", "-c", "fast", "-h"])
        .arg(source.pg.socket_dir())
        .arg("-D")
        .arg(&data)
        .arg(format!(
            "--tablespace-mapping={}={}",
            source.root.join("tbs").display(),
            standby_dir.join("tbs").display()
        )));
    assert!(out.status.success(), "cannot create the standby");
    let mut standby = Pg::from_data(&standby_dir, data);
    standby.conf(&format!(
        "archive_mode = off\nunix_socket_directories = '{}'\nhot_standby = on",
        standby_dir.display()
    ));
    standby.start();
    source.mark("before backup");
    let out = run(&mut source.backup_command_on(&standby_dir, &["-j"]));
    assert!(out.status.success(), "backup from the standby failed");
    source.mark("after backup");
    let expected = fingerprint(&source.pg);

    let ids = source.backup_ids();
    let info =
        crate::conformance::get_text(&source.store, &format!("pg/base/{}/backup.info", ids[0]));
    assert!(info.contains("BACKUP FROM: standby"), "{info}");
    let (data, _) = source.barman_restore(&ids[0]);
    let restored = start_restored(&source, data, "");
    assert_eq!(fingerprint(&restored), expected, "{}", restored.log());
}

/// The multipart uploads open in `store`'s bucket (S3), from ListMultipartUploads.
fn open_multipart_uploads(store: &Store) -> usize {
    let bucket = store
        .url
        .trim_start_matches("s3://")
        .split('/')
        .next()
        .unwrap();
    let out =
        run(Command::new("curl").args(["-sf", &format!("{}/{bucket}?uploads", store.endpoint())]));
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .matches("<UploadId>")
        .count()
}

/// A backup killed mid-upload stays STARTED; one stopped by a signal is stored FAILED and
/// aborts its multipart uploads (issue #14: a SIGKILL cannot, and a lifecycle rule must);
/// neither is ever DONE, for us or for Barman.
#[test]
fn interrupted_backups_are_never_done() {
    let Some(source) = Source::new(Provider::S3, "") else {
        return;
    };
    for (signal, left_open) in [("KILL", 1), ("TERM", 0)] {
        let uploads = open_multipart_uploads(&source.store);
        let before = source.backup_ids().len();
        // A 200 kB/s cap makes the copy last long enough to be interrupted mid-upload.
        let mut child = source
            .backup_command(&["--max-bandwidth", "200KB", "--immediate-checkpoint"])
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while source.backup_ids().len() == before {
            assert!(Instant::now() < deadline, "the backup never started");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(2));
        // The whole group: runuser and the backup under it.
        let kill = Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", child.id())])
            .status()
            .unwrap();
        assert!(kill.success());
        assert!(!child.wait().unwrap().success());
        assert_eq!(
            open_multipart_uploads(&source.store) - uploads,
            left_open,
            "multipart uploads left open by SIG{signal}"
        );
        // Backup IDs have a one-second resolution.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let list = run(source
        .store
        .command(barman("barman-cloud-backup-list").unwrap())
        .args(["--format", "json", &source.store.url, "pg"]));
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.contains("\"DONE\""), "{list}");
    let statuses: Vec<String> = source
        .backup_ids()
        .iter()
        .map(|id| {
            let key = format!("pg/base/{id}/backup.info");
            let info = crate::conformance::get_text(&source.store, &key);
            info.lines()
                .find_map(|l| l.strip_prefix("status="))
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses, ["STARTED", "FAILED"], "{list}");
}

/// The progress bar shows on a terminal (run under a pty by `script`) and never otherwise,
/// e.g. inside `archive_command` or cron.
#[test]
fn progress_bar_only_on_a_terminal() {
    let Some(source) = Source::new(Provider::File, "") else {
        return;
    };
    let quiet = source.backup(&["--immediate-checkpoint"]);
    assert!(quiet.status.success());
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("backup ["),
        "a bar without a terminal"
    );
    let command = source.backup_command(&["--immediate-checkpoint"]);
    let line: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let typescript = source.root.join("typescript");
    // Each backup needs its own ID (one-second resolution).
    std::thread::sleep(Duration::from_millis(1100));
    let out = run(Command::new("script")
        .args(["-q", "-e", "-c", &line.join(" ")])
        .arg(&typescript)
        .envs(source.store.env.iter().map(|(k, v)| (k, v))));
    assert!(out.status.success(), "backup under a pty failed");
    let screen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(
        screen.contains("backup ["),
        "no bar on a terminal:\n{screen}"
    );
}

/// Part uploads that keep failing make the backup FAILED (never DONE) with its multipart
/// uploads aborted; a restore whose download keeps breaking off fails without leaving a
/// startable data directory.
#[test]
fn faults_never_make_a_backup_or_a_restore_look_complete() {
    use crate::support::faults::{Fault, FaultProxy, Rule};
    let Some(source) = Source::new(Provider::S3, "") else {
        return;
    };
    let endpoint = source.store.endpoint();
    let proxy = FaultProxy::start(&endpoint);
    let proxied = source.store.through(&proxy.url);
    proxy.set(vec![
        Rule::new(Fault::Status(500))
            .method("PUT")
            .target("partNumber="),
    ]);
    let primary = source.root.join("primary");
    let out = run(&mut source.backup_command_to(
        &proxied,
        &primary,
        &["-S", "1MB", "--immediate-checkpoint"],
    ));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a backup with failing uploads must exit 1"
    );
    let id = source.backup_ids().remove(0);
    let info = crate::conformance::get_text(&source.store, &format!("pg/base/{id}/backup.info"));
    assert!(info.contains("\nstatus=FAILED\n"), "{info}");
    assert!(info.contains("\nerror=failure uploading data ("), "{info}");
    let uploads = run(Command::new("curl").args([
        "-sf",
        &format!(
            "{endpoint}/{}?uploads",
            source
                .store
                .url
                .trim_start_matches("s3://")
                .split('/')
                .next()
                .unwrap()
        ),
    ]));
    let uploads = String::from_utf8_lossy(&uploads.stdout);
    assert!(
        !uploads.contains("<UploadId>"),
        "multipart uploads left open: {uploads}"
    );

    // A good backup, then a restore whose data downloads are always cut short.
    proxy.set(vec![]);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(source.backup(&["--immediate-checkpoint"]).status.success());
    let id = source.backup_ids().pop().unwrap();
    proxy.set(vec![
        Rule::new(Fault::Truncate).method("GET").target("data.tar"),
    ]);
    let target = source.root.join("restored/data");
    let out = run(Command::new(ours("barman-cloud-restore"))
        .args(&proxied.args)
        .envs(proxied.env.iter().map(|(k, v)| (k, v)))
        .args([&proxied.url, "pg", &id])
        .arg(&target));
    assert!(!out.status.success(), "a truncated download was restored");
    assert!(
        !target.join("global/pg_control").exists(),
        "an incomplete restore looks startable"
    );
}
