//! Base backups end to end: our barman-cloud-backup under a write load, restored and started
//! with our restore_command; interop with Barman's backup-show/list/restore; interrupted
//! backups never DONE.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::pg::{Pg, as_postgres, pg_bin};
use crate::support::primary::{
    By, HISTORY, Options, Primary, Recovery, fingerprint, start_restored,
};
use crate::support::{
    Provider, Store, TestCommand, barman, matrix, next_backup_second, ours, wait_until,
};

/// A primary archiving to its store through our wal-archive with `wal_compression`, with
/// a tablespace holding part of the data.
fn source(provider: Provider, wal_compression: &str) -> Option<Primary> {
    Primary::new(
        provider,
        Options {
            archive_flags: wal_compression,
            tablespace: Some("tbs1"),
            pgbench_scale: Some(3),
            conf: "checkpoint_timeout = 30s",
            ..Options::default()
        },
    )
}

/// Restores `id` with Barman's barman-cloud-restore (as postgres) into `restored/data`,
/// moving tablespace `tbs1` to `moved-tbs`; returns both directories.
fn barman_restore(source: &Primary, id: &str) -> (PathBuf, PathBuf) {
    let (data, moved) = (source.dir("restored").join("data"), source.dir("moved-tbs"));
    source
        .store
        .command_as_postgres(barman("barman-cloud-restore").unwrap())
        .arg(format!("--tablespace=tbs1:{}", moved.display()))
        .args([&source.store.url, "pg", id])
        .arg(&data)
        .ok();
    (data, moved)
}

/// Restores `id` with our barman-cloud-restore into `<name>/data`, the tablespace into
/// `<name>/tbs`; returns the directory and the data directory.
fn our_restore(source: &Primary, id: &str, name: &str) -> (PathBuf, PathBuf) {
    let dir = source.dir(name);
    let data = dir.join("data");
    source
        .store
        .command_as_postgres(ours("barman-cloud-restore"))
        .arg(format!("--tablespace=tbs1:{}", dir.join("tbs").display()))
        .args([&source.store.url, "pg", id])
        .arg(&data)
        .ok();
    (dir, data)
}

/// Barman's restore of `id`, started with our restore_command replaying to the end, holds
/// the `expected` [`fingerprint`]; returns the server and where tablespace `tbs1` went.
fn barman_restore_replays_to(source: &Primary, id: &str, expected: &str) -> (Pg, PathBuf) {
    let (data, moved) = barman_restore(source, id);
    let dir = source.root.join("restored");
    let pg = start_restored(&dir, data, &source.store, Recovery::Replay(""));
    assert_eq!(fingerprint(&pg, HISTORY), expected, "{}", pg.log());
    (pg, moved)
}

/// Runs pgbench for `secs` seconds on another thread.
fn load(pg: &Pg, secs: u32) -> std::thread::JoinHandle<()> {
    let socket = pg.socket_dir().to_path_buf();
    std::thread::spawn(move || {
        as_postgres(pg_bin("pgbench"))
            .args(["-U", "postgres", "-h"])
            .arg(&socket)
            .args(["-T", &secs.to_string(), "-c", "2", "postgres"])
            .ok();
    })
}

/// Point-in-time recovery from our backup with our restore: to a time, an xid, an LSN and a
/// named restore point, each stopping exactly there (marker rows on both sides prove it).
fn pitr(provider: Provider, backup_flag: &str) {
    let Some(source) = source(provider, "--zstd") else {
        return;
    };
    source.backup(By::Us, &[backup_flag, "--immediate-checkpoint"]);
    let id = source.backup_ids().remove(0);
    let insert = |n: u32| {
        source
            .pg
            .sql(&format!("INSERT INTO marker VALUES ({n}, 'm{n}')"));
    };
    insert(1);
    let time = source.pg.sql("SELECT clock_timestamp()");
    // The target time is a whole second before the next commit.
    next_backup_second();
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
        let (dir, data) = our_restore(&source, &id, &format!("pitr-{n}"));
        let targets = format!("{target}\nrecovery_target_action = 'promote'");
        let pg = start_restored(&dir, data, &source.store, Recovery::Replay(&targets));
        let got =
            pg.sql("SELECT string_agg(note, ',' ORDER BY id) FROM marker WHERE note LIKE 'm%'");
        assert_eq!(got, markers, "{target}\n{}", pg.log());
    }
}

matrix! {
    pitr_file_lz4 => pitr(Provider::File, "--lz4"),
    pitr_gcs_snappy => pitr(Provider::Gcs, "--snappy"),
}

/// Our multi-threaded snappy and LZ4 tarballs (blocks compressed on every core) restore with
/// Barman's barman-cloud-restore, and the server replays to the same data.
fn restored_by_barman(backup_flag: &str) {
    let Some(source) = source(Provider::S3, backup_flag) else {
        return;
    };
    source.backup(By::Us, &[backup_flag, "--immediate-checkpoint"]);
    source.mark("after backup");
    let expected = fingerprint(&source.pg, HISTORY);
    let ids = source.backup_ids();
    barman_restore_replays_to(&source, &ids[0], &expected);
}

matrix! {
    barman_restores_our_snappy_tarballs => restored_by_barman("--snappy"),
    barman_restores_our_lz4_tarballs => restored_by_barman("--lz4"),
}

/// zstd tarballs (ours alone, #19 item 5), split in parts: our restore replays them to the
/// same data, verify reads them, backup-delete removes every part; Barman's restore, which
/// does not know `.tar.zst`, refuses the backup instead of restoring a short copy.
#[test]
fn zstd_tarballs_are_ours_to_restore_verify_and_delete() {
    let Some(source) = source(Provider::S3, "--zstd") else {
        return;
    };
    source.backup(By::Us, &["--zstd", "-S", "1MB", "--immediate-checkpoint"]);
    source.mark("after backup");
    let expected = fingerprint(&source.pg, HISTORY);
    let id = source.backup_ids().remove(0);
    let base = format!("pg/base/{id}");
    let parts: Vec<String> = source
        .store
        .list_keys(&base)
        .into_iter()
        .filter(|k| k.contains(".tar"))
        .collect();
    assert!(
        parts.len() > 2 && parts.iter().all(|k| k.ends_with(".tar.zst")),
        "{parts:?}"
    );

    let (dir, data) = our_restore(&source, &id, "ours");
    let pg = start_restored(&dir, data, &source.store, Recovery::Replay(""));
    assert_eq!(fingerprint(&pg, HISTORY), expected, "{}", pg.log());
    drop(pg);

    source
        .store
        .tool(ours("barman-cloud-verify"), &source.store.url, &[&id])
        .ok();

    let barman_dir = source.dir("barman-restored");
    let refused = source
        .store
        .command_as_postgres(barman("barman-cloud-restore").unwrap())
        .arg(format!(
            "--tablespace=tbs1:{}",
            source.dir("barman-tbs").display()
        ))
        .args([&source.store.url, "pg", &id])
        .arg(barman_dir.join("data"))
        .failed();
    assert!(
        refused.stderr().contains("Missing file"),
        "{}",
        refused.stderr()
    );

    source
        .store
        .tool(
            ours("barman-cloud-backup-delete"),
            &source.store.url,
            &[&format!("--backup-id={id}")],
        )
        .ok();
    assert_eq!(source.store.list_keys(&base), Vec::<String>::new());
}

/// Backup under a pgbench load with split gzip parts and a tablespace; Barman's tools list,
/// show and restore it, and the restored server replays to the same data.
#[test]
fn backup_under_load_restored_by_barman_s3_gzip() {
    let Some(source) = source(Provider::S3, "--gzip") else {
        return;
    };
    source.mark("before backup");
    let load = load(&source.pg, 12);
    // The backup starts once the load is writing.
    let history = || source.pg.sql("SELECT count(*) FROM pgbench_history");
    wait_until(Duration::from_secs(30), "pgbench writing", || {
        history() != "0"
    });
    source.backup(
        By::Us,
        &["-z", "-S", "1MB", "--immediate-checkpoint", "-n", "nightly"],
    );
    load.join().unwrap();
    source.mark("after backup");
    let expected = fingerprint(&source.pg, HISTORY);

    let ids = source.backup_ids();
    assert_eq!(ids.len(), 1);
    let id = &ids[0];
    let keys = source.store.list_keys(&format!("pg/base/{id}"));
    assert!(
        keys.iter().any(|k| k.ends_with("/data_0001.tar.gz")),
        "no split parts: {keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.ends_with("/16384.tar.gz") || k.contains(".tar.gz"))
    );

    // Barman reads our backup.info: show (by name) and list agree with what we stored.
    let show = source
        .store
        .command(barman("barman-cloud-backup-show").unwrap())
        .args(["--format", "json", &source.store.url, "pg", "nightly"])
        .ok();
    assert!(show.contains("\"status\": \"DONE\""), "{show}");
    assert!(show.contains(&format!("\"backup_id\": \"{id}\"")), "{show}");

    // Barman restores it, moving the tablespace; PostgreSQL replays our archive to the end.
    let (restored, moved) = barman_restore_replays_to(&source, id, &expected);
    assert_eq!(
        restored
            .sql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'tbs1'"),
        moved.display().to_string()
    );
}

/// A backup taken from a streaming standby (bzip2, on Azure) restores and replays.
#[test]
fn backup_from_a_standby_azure_bzip2() {
    let Some(source) = source(Provider::Azure, "--lz4") else {
        return;
    };
    let standby_dir = source.dir("standby");
    let data = standby_dir.join("data");
    as_postgres(pg_bin("pg_basebackup"))
        .args(["-U", "postgres", "-X", "stream", "-R", "-c", "fast", "-h"])
        .arg(source.pg.socket_dir())
        .arg("-D")
        .arg(&data)
        .arg(format!(
            "--tablespace-mapping={}={}",
            source.root.join("tbs").display(),
            standby_dir.join("tbs").display()
        ))
        .ok();
    let mut standby = Pg::from_data(&standby_dir, data);
    standby.conf(&format!(
        "archive_mode = off\nunix_socket_directories = '{}'\nhot_standby = on",
        standby_dir.display()
    ));
    standby.start();
    source.mark("before backup");
    source
        .backup_command(By::Us, &source.store, &standby_dir, &["-j"])
        .ok();
    source.mark("after backup");
    let expected = fingerprint(&source.pg, HISTORY);

    let ids = source.backup_ids();
    let info = source
        .store
        .get_text(&format!("pg/base/{}/backup.info", ids[0]));
    assert!(info.contains("BACKUP FROM: standby"), "{info}");
    barman_restore_replays_to(&source, &ids[0], &expected);
}

/// The multipart uploads open in `store`'s bucket (S3), from ListMultipartUploads.
fn open_multipart_uploads(store: &Store) -> usize {
    Command::new("curl")
        .args([
            "-sf",
            &format!("{}/{}?uploads", store.endpoint(), store.bucket()),
        ])
        .ok()
        .matches("<UploadId>")
        .count()
}

/// A backup killed mid-upload stays STARTED; one stopped by a signal is stored FAILED and
/// aborts its multipart uploads (issue #14: a SIGKILL cannot, and a lifecycle rule must);
/// neither is ever DONE, for us or for Barman.
#[test]
fn interrupted_backups_are_never_done() {
    let Some(source) = source(Provider::S3, "") else {
        return;
    };
    for (signal, left_open) in [("KILL", 1), ("TERM", 0)] {
        let uploads = open_multipart_uploads(&source.store);
        let before = source.backup_ids().len();
        // A 200 kB/s cap makes the copy last long enough to be interrupted mid-upload.
        let mut child = source
            .backup_command(
                By::Us,
                &source.store,
                source.pg.socket_dir(),
                &["--max-bandwidth", "200KB", "--immediate-checkpoint"],
            )
            .process_group(0)
            .spawn()
            .unwrap();
        let limit = Duration::from_secs(60);
        wait_until(limit, "the backup starting", || {
            source.backup_ids().len() > before
        });
        // Interrupted mid-upload: once a multipart upload of a data part is open.
        wait_until(limit, "a multipart upload opening", || {
            open_multipart_uploads(&source.store) > uploads
        });
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
        next_backup_second();
    }
    let list = source
        .store
        .command(barman("barman-cloud-backup-list").unwrap())
        .args(["--format", "json", &source.store.url, "pg"])
        .ok();
    assert!(!list.contains("\"DONE\""), "{list}");
    let statuses: Vec<String> = source
        .backup_ids()
        .iter()
        .map(|id| {
            let key = format!("pg/base/{id}/backup.info");
            let info = source.store.get_text(&key);
            info.lines()
                .find_map(|l| l.strip_prefix("status="))
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses, ["STARTED", "FAILED"], "{list}");
}

/// The progress bar shows on a terminal (run under a pty by `script`) and never otherwise,
/// e.g. inside `archive_command` or cron; on an 80-column terminal the backup's and the
/// restore's bars fit the line, start with their total and end at 100% (issue #17 item 8).
#[test]
fn progress_bar_only_on_a_terminal() {
    let Some(source) = source(Provider::File, "") else {
        return;
    };
    let mut command = source.backup_command(
        By::Us,
        &source.store,
        source.pg.socket_dir(),
        &["--immediate-checkpoint"],
    );
    let quiet = command.code(0);
    assert!(
        !quiet.stderr().contains("backup ["),
        "a bar without a terminal"
    );
    next_backup_second();
    // Slowed to a few seconds, long enough for the rate and the ETA to show.
    let slowed = source.backup_command(
        By::Us,
        &source.store,
        source.pg.socket_dir(),
        &["--immediate-checkpoint", "--max-bandwidth", "20MB"],
    );
    let screen = on_terminal(&slowed, &source.root.join("backup.typescript"));
    let frames = assert_bar_fits_and_completes(&screen, "backup");
    let etas: Vec<&String> = frames.iter().filter(|f| f.contains(" ETA ")).collect();
    assert!(
        !etas.is_empty(),
        "no ETA in a backup of seconds: {frames:#?}"
    );
    for frame in etas {
        let eta = frame.split(" ETA ").nth(1).unwrap().trim();
        assert!(
            eta.ends_with('s') || eta == "1m",
            "an ETA far from the seconds left: {frame:?}"
        );
    }

    let id = source.backup_ids().pop().unwrap();
    let dir = source.dir("restored");
    let mut restore = source
        .store
        .command_as_postgres(ours("barman-cloud-restore"));
    restore
        .arg(format!("--tablespace=tbs1:{}", dir.join("tbs").display()))
        .args([&source.store.url, "pg", &id])
        .arg(dir.join("data"));
    let screen = on_terminal(&restore, &source.root.join("restore.typescript"));
    assert_bar_fits_and_completes(&screen, "restore");
    assert!(dir.join("data/global/pg_control").exists());
}

/// What `command` wrote to a pseudo-terminal of 80 columns (run by `script`), which it
/// must leave with exit code 0.
fn on_terminal(command: &Command, typescript: &std::path::Path) -> String {
    let line: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let envs = command
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())));
    Command::new("script")
        .args(["-q", "-f", "-e", "-c"])
        .arg(format!("stty cols 80 rows 24; {}", line.join(" ")))
        .arg(typescript)
        .envs(envs)
        .ok();
    String::from_utf8_lossy(&std::fs::read(typescript).unwrap()).into_owned()
}

/// Every frame of the `what` bar on `screen` (each redraw, split at `\r` and `\n`, ANSI
/// escapes removed) fits 80 columns; the first knows its total, the last is full and shows
/// the total twice. Returns the frames.
fn assert_bar_fits_and_completes(screen: &str, what: &str) -> Vec<String> {
    let frames: Vec<String> = screen
        .split(['\r', '\n'])
        .map(strip_ansi)
        .filter(|f| f.starts_with(&format!("{what} [")))
        .collect();
    assert!(!frames.is_empty(), "no {what} bar on a terminal:\n{screen}");
    for frame in &frames {
        assert!(
            frame.chars().count() <= 80,
            "a {what} frame wider than the terminal's 80 columns: {frame:?}"
        );
    }
    let counts = |frame: &str| -> (String, String) {
        let after = frame.split("] ").nth(1).expect("bytes after the bar");
        let counts = after
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        let (done, total) = counts.split_once('/').expect("done/total");
        let total = total
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        (done.to_string(), total)
    };
    let first = &frames[0];
    assert_ne!(
        counts(first).1,
        "0 B",
        "the first {what} frame has no total: {first:?}"
    );
    let last = frames.last().unwrap();
    let (done, total) = counts(last);
    assert_eq!(
        done, total,
        "the last {what} frame is not at its total: {last:?}"
    );
    let bar = &last[last.find('[').unwrap() + 1..last.find(']').unwrap()];
    assert!(
        !bar.is_empty() && bar.chars().all(|c| c == '='),
        "the last {what} frame is not full: {last:?}"
    );
    frames
}

/// `text` without its ANSI escape sequences (CSI `ESC [ ... final`, and two-byte ones).
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
        } else if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// Part uploads that keep failing make the backup FAILED (never DONE) with its multipart
/// uploads aborted; a restore whose download keeps breaking off fails without leaving a
/// startable data directory.
#[test]
fn faults_never_make_a_backup_or_a_restore_look_complete() {
    use crate::support::faults::{Fault, FaultProxy, Rule};
    let Some(source) = source(Provider::S3, "") else {
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
    // A backup with failing uploads exits 1.
    source
        .backup_command(
            By::Us,
            &proxied,
            source.pg.socket_dir(),
            &["-S", "1MB", "--immediate-checkpoint"],
        )
        .code(1);
    let id = source.backup_ids().remove(0);
    let info = source.store.get_text(&format!("pg/base/{id}/backup.info"));
    assert!(info.contains("\nstatus=FAILED\n"), "{info}");
    assert!(info.contains("\nerror=failure uploading data ("), "{info}");
    assert_eq!(
        open_multipart_uploads(&source.store),
        0,
        "multipart uploads left open"
    );

    // A good backup, then a restore whose data downloads are always cut short.
    proxy.set(vec![]);
    next_backup_second();
    source.backup(By::Us, &["--immediate-checkpoint"]);
    let id = source.backup_ids().pop().unwrap();
    proxy.set(vec![
        Rule::new(Fault::Truncate).method("GET").target("data.tar"),
    ]);
    let target = source.dir("restored").join("data");
    // A truncated download is never restored.
    proxied
        .command(ours("barman-cloud-restore"))
        .args([&proxied.url, "pg", &id])
        .arg(&target)
        .failed();
    assert!(
        !target.join("global/pg_control").exists(),
        "an incomplete restore looks startable"
    );
}
