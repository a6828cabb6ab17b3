//! A backup stopped by SIGINT or SIGTERM (issue #17): while `pg_backup_start` waits for a
//! spread checkpoint, the query is cancelled, the backup is stored FAILED naming that phase,
//! the process exits 1 (Barman's exit for an interrupted backup) within 2 s, and PostgreSQL
//! keeps no session (so no backup) of ours; mid-upload, the backup is FAILED, never DONE.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::pg::running_as_root;
use crate::support::primary::{By, Options, Primary};
use crate::support::{Provider, TestCommand, next_backup_second, ours, wait_until};

/// How long an interrupted backup may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(2);

/// A primary whose checkpoints are spread over most of an hour.
fn spread_checkpoints() -> Option<Primary> {
    Primary::new(
        Provider::File,
        Options {
            conf: "checkpoint_timeout = 1h\ncheckpoint_completion_target = 0.9\n\
                   max_wal_size = 4GB",
            ..Options::default()
        },
    )
}

/// Our backup of `source`, in a process group of its own (as a terminal's Ctrl-C reaches
/// the group), its stderr captured. Run as `postgres` straight through setuid, not under
/// runuser: runuser answers SIGTERM by waiting 2 s before it kills its child.
fn spawn_backup(source: &Primary, flags: &[&str]) -> Child {
    let mut command = source.store.command(ours("barman-cloud-backup"));
    if running_as_root() {
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, "postgres"]).ok();
            out.trim().parse().unwrap()
        };
        command.uid(id("-u")).gid(id("-g"));
    }
    command
        .args(flags)
        .args(["-U", "postgres", "-h"])
        .arg(source.pg.socket_dir())
        .arg(&source.store.url)
        .arg("pg")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// Sends `signal` to the group of `child`; returns its exit code, its stderr and how long
/// it took to exit. A child still running after a minute is killed and fails the test.
fn interrupt(child: &mut Child, signal: &str) -> (Option<i32>, String, Duration) {
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(60) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            panic!("SIG{signal}: the backup still runs after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr, took)
}

/// The sessions our backups hold open in `source`.
fn our_sessions(source: &Primary) -> u32 {
    source
        .pg
        .sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'barman_cloud_backup'")
        .parse()
        .unwrap()
}

fn backup_info(source: &Primary, id: &str) -> String {
    source.store.get_text(&format!("pg/base/{id}/backup.info"))
}

#[test]
fn a_signal_during_the_checkpoint_cancels_it_and_fails_the_backup_at_once() {
    let Some(source) = spread_checkpoints() else {
        return;
    };
    for (round, signal) in ["TERM", "INT"].into_iter().enumerate() {
        // Thousands of dirty buffers: a spread checkpoint writes about ten a second.
        source.pg.sql("CHECKPOINT");
        source.pg.sql(&format!(
            "CREATE TABLE dirty{round} AS SELECT g, repeat('x', 200) AS pad \
             FROM generate_series(1, 100000) g"
        ));
        let before = source.backup_ids().len();
        let mut child = spawn_backup(&source, &[]);
        wait_until(
            Duration::from_secs(30),
            "pg_backup_start waiting for the checkpoint",
            || {
                source.pg.sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = \
                     'barman_cloud_backup' AND query LIKE '%pg_backup_start%' \
                     AND wait_event = 'CheckpointDone'",
                ) == "1"
            },
        );
        let (code, stderr, took) = interrupt(&mut child, signal);
        assert!(
            took < EXIT_WITHIN,
            "SIG{signal}: exited after {took:?}\n{stderr}"
        );
        assert_eq!(code, Some(1), "SIG{signal}\n{stderr}");
        assert!(
            stderr.contains("interrupted while waiting for PostgreSQL's checkpoint"),
            "SIG{signal}\n{stderr}"
        );
        assert!(
            stderr.contains("failed while waiting for PostgreSQL's checkpoint"),
            "SIG{signal}\n{stderr}"
        );
        assert!(!stderr.contains("uploading data"), "SIG{signal}\n{stderr}");
        let ids = source.backup_ids();
        assert_eq!(ids.len(), before + 1, "SIG{signal}: no backup.info stored");
        let info = backup_info(&source, ids.last().unwrap());
        assert!(info.contains("\nstatus=FAILED\n"), "SIG{signal}\n{info}");
        assert!(
            info.contains(
                "\nerror=failure waiting for PostgreSQL's checkpoint \
                 (barman-cloud-backup was interrupted by the user)\n"
            ),
            "SIG{signal}\n{info}"
        );
        // The session is gone, and with it the backup PostgreSQL had started for it.
        wait_until(EXIT_WITHIN, "our session ending", || {
            our_sessions(&source) == 0
        });
        assert!(
            source
                .pg
                .log()
                .contains("canceling statement due to user request"),
            "SIG{signal}: no cancel request reached PostgreSQL"
        );
        next_backup_second();
    }
    // The next backup works (its fast checkpoint also hurries the spread one still running).
    source.backup(By::Us, &["--immediate-checkpoint"]);
    let id = source.backup_ids().pop().unwrap();
    assert!(backup_info(&source, &id).contains("\nstatus=DONE\n"));
}

#[test]
fn a_signal_during_the_upload_fails_the_backup_at_once() {
    let Some(source) = spread_checkpoints() else {
        return;
    };
    source.pg.sql(
        "CREATE TABLE filler AS SELECT g, md5(g::text) AS pad FROM generate_series(1, 200000) g",
    );
    for signal in ["INT", "TERM"] {
        let before = source.backup_ids().len();
        // A 200 kB/s cap makes the copy last long enough to be interrupted mid-upload.
        let mut child = spawn_backup(
            &source,
            &["--max-bandwidth", "200KB", "--immediate-checkpoint"],
        );
        wait_until(Duration::from_secs(30), "the backup starting", || {
            source.backup_ids().len() > before
        });
        std::thread::sleep(Duration::from_millis(500));
        let (code, stderr, took) = interrupt(&mut child, signal);
        assert!(
            took < EXIT_WITHIN,
            "SIG{signal}: exited after {took:?}\n{stderr}"
        );
        assert_eq!(code, Some(1), "SIG{signal}\n{stderr}");
        let info = backup_info(&source, source.backup_ids().last().unwrap());
        assert!(info.contains("\nstatus=FAILED\n"), "SIG{signal}\n{info}");
        assert!(
            info.contains("\nerror=failure uploading data ("),
            "SIG{signal}\n{info}"
        );
        wait_until(EXIT_WITHIN, "our session ending", || {
            our_sessions(&source) == 0
        });
        next_backup_second();
    }
}
