//! Test support: our real binaries, the emulators the rig started, and throwaway PostgreSQL
//! servers. Nothing here mocks what users run against.
//!
//! The rig (`harness/services.sh start`) exports the emulator endpoints as `BCRS_*` variables.
//! When one is missing a test that needs it is skipped with a message, unless
//! `BCRS_REQUIRE_SERVICES=1` (set by `.ci/run` and the test script), where it fails.

pub mod command;
pub mod faults;
pub mod pg;
pub mod primary;
pub mod store;
pub mod synthetic;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use command::{Ran, TestCommand};
pub use store::{Provider, Store, block_on};

/// One `#[test]` per row of a matrix, each a call of the shared body:
/// `matrix! { replay_s3_gzip => archive_and_replay(Provider::S3, "--gzip"), … }`.
macro_rules! matrix {
    ($($name:ident => $body:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $body;
            }
        )*
    };
}
pub(crate) use matrix;

/// The ten programs we ship, and where cargo built each.
pub const PROGRAMS: [(&str, &str); 10] = [
    (
        "barman-cloud-wal-archive",
        env!("CARGO_BIN_EXE_barman-cloud-wal-archive"),
    ),
    (
        "barman-cloud-wal-restore",
        env!("CARGO_BIN_EXE_barman-cloud-wal-restore"),
    ),
    (
        "barman-cloud-check-wal-archive",
        env!("CARGO_BIN_EXE_barman-cloud-check-wal-archive"),
    ),
    (
        "barman-cloud-backup",
        env!("CARGO_BIN_EXE_barman-cloud-backup"),
    ),
    (
        "barman-cloud-restore",
        env!("CARGO_BIN_EXE_barman-cloud-restore"),
    ),
    (
        "barman-cloud-backup-list",
        env!("CARGO_BIN_EXE_barman-cloud-backup-list"),
    ),
    (
        "barman-cloud-backup-show",
        env!("CARGO_BIN_EXE_barman-cloud-backup-show"),
    ),
    (
        "barman-cloud-backup-delete",
        env!("CARGO_BIN_EXE_barman-cloud-backup-delete"),
    ),
    (
        "barman-cloud-backup-keep",
        env!("CARGO_BIN_EXE_barman-cloud-backup-keep"),
    ),
    (
        "barman-cloud-verify",
        env!("CARGO_BIN_EXE_barman-cloud-verify"),
    ),
];

/// Our binaries, copied to a world-readable directory: PostgreSQL runs `archive_command` as
/// the `postgres` user, who cannot enter a clone under `/root`.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_stale_bin_dirs();
        let dir = PathBuf::from(format!("/tmp/bcrs-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, path) in PROGRAMS {
            let target = dir.join(name);
            std::fs::copy(path, &target).unwrap();
        }
        chmod_world(&dir);
        dir
    })
}

/// Earlier test runs' copies (over a gigabyte each in a debug build): removed once their
/// process is gone.
fn remove_stale_bin_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("bcrs-bin-") else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Makes a path and everything below it readable (and directories enterable) by anyone.
pub fn chmod_world(path: &Path) {
    Command::new("chmod").arg("-R").arg("a+rwX").arg(path).ok();
}

/// The path of one of our binaries.
pub fn ours(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Barman's Python tools, installed by the rig.
pub fn barman(name: &str) -> Option<PathBuf> {
    let dir = std::env::var("BCRS_BARMAN_BIN")
        .ok()
        .or_else(|| required("BCRS_BARMAN_BIN"))?;
    Some(Path::new(&dir).join(name))
}

/// Whether a missing service fails the test instead of skipping it.
pub fn services_required() -> bool {
    std::env::var("BCRS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Reads a variable the rig sets; `None` means skip (or a panic when services are required).
pub fn required(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if services_required() => {
            panic!("{var} is not set: start the rig with harness/services.sh start")
        }
        _ => {
            eprintln!("skipped: {var} is not set (run harness/test.sh to start the services)");
            None
        }
    }
}

/// Waits until the wall clock enters its next second: backup IDs have a one-second
/// resolution, so a backup taken after this never shares an ID with one taken before.
pub fn next_backup_second() {
    let second = || chrono::Local::now().timestamp();
    let before = second();
    while second() == before {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `done` every 200 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The WAL files waiting in a spool directory (in its per-source subdirectories), sorted.
pub fn spooled(spool: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(spool)
        .unwrap()
        .flat_map(|source| std::fs::read_dir(source.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A fresh directory for one test, removed on drop, readable by the postgres user.
pub fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("bcrs-it-")
        .tempdir_in("/tmp")
        .unwrap();
    chmod_world(dir.path());
    dir
}

/// Deterministic, partly compressible bytes shaped like WAL (pages with headers and noise).
/// From 40 bytes on they start with a long page header stating `len` as the segment size, as
/// every real segment does: wal-restore checks a segment's size against it.
pub fn wal_like_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    out.extend(long_page_header(len as u32, state));
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let word = (state >> 33) as u32;
        // Half the pages are text-like (compressible), half noise.
        if (out.len() / 8192) % 2 == 0 {
            out.extend_from_slice(b"INSERT INTO pgbench_history VALUES (");
            out.extend_from_slice(word.to_string().as_bytes());
            out.extend_from_slice(b");\n");
        } else {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

/// PostgreSQL 15's `XLogLongPageHeaderData` (little-endian) for a segment of `seg_size`
/// bytes of the system `sysid`.
fn long_page_header(seg_size: u32, sysid: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(40);
    h.extend(0xD110u16.to_le_bytes()); // xlp_magic
    h.extend(0x0002u16.to_le_bytes()); // xlp_info: XLP_LONG_HEADER
    h.extend(1u32.to_le_bytes()); // xlp_tli
    h.extend(0u64.to_le_bytes()); // xlp_pageaddr
    h.extend([0; 8]); // xlp_rem_len, padding
    h.extend(sysid.to_le_bytes());
    h.extend(seg_size.to_le_bytes());
    h.extend(8192u32.to_le_bytes()); // xlp_xlog_blcksz
    h
}
