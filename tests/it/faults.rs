//! Faults between our tools and the store (a proxy in front of the S3 emulator): transient
//! errors are retried, and no failure is ever reported as success or leaves a partial file.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::{Provider, Store, ours, run, temp_dir, wal_like_bytes};

/// A store on S3 and a proxy in front of its endpoint.
pub fn behind_proxy() -> Option<(Store, FaultProxy)> {
    let store = Store::new(Provider::S3)?;
    let endpoint = store.args[1].clone();
    Some((store, FaultProxy::start(&endpoint)))
}

/// Runs one of our tools through the proxy: `options` before the URL and server name.
pub fn via(
    store: &Store,
    proxy: &FaultProxy,
    program: &str,
    options: &[&str],
    rest: &[&str],
) -> Output {
    run(std::process::Command::new(ours(program))
        .args(["--endpoint-url", &proxy.url])
        .envs(store.env.iter().map(|(k, v)| (k, v)))
        .args(options)
        .arg(&store.url)
        .arg("pg")
        .args(rest))
}

const SEGMENT: &str = "000000010000000000000007";

fn segment(dir: &Path) -> std::path::PathBuf {
    let path = dir.join(SEGMENT);
    std::fs::write(&path, wal_like_bytes(16 << 20, 7)).unwrap();
    path
}

fn archived_keys(store: &Store) -> Vec<String> {
    crate::conformance::list_keys(store, "pg/wals")
}

#[test]
fn wal_archive_retries_transient_faults() {
    let Some((store, proxy)) = behind_proxy() else {
        return;
    };
    let dir = temp_dir();
    let wal = segment(dir.path());
    proxy.set(vec![
        Rule::new(Fault::Status(503)).method("PUT").times(2),
        Rule::new(Fault::Drop).method("PUT").times(1),
        Rule::new(Fault::Status(500)).method("GET").times(1),
    ]);
    let out = via(
        &store,
        &proxy,
        "barman-cloud-wal-archive",
        &["--zstd"],
        &[wal.to_str().unwrap()],
    );
    assert!(out.status.success(), "transient faults were not retried");
    assert!(
        proxy.injected() >= 3,
        "faults injected: {}",
        proxy.injected()
    );
    // The stored object is whole: it restores to the same bytes (without faults).
    proxy.set(vec![]);
    let back = dir.path().join("back");
    let out = via(
        &store,
        &proxy,
        "barman-cloud-wal-restore",
        &[],
        &[SEGMENT, back.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert_eq!(std::fs::read(back).unwrap(), std::fs::read(&wal).unwrap());
}

#[test]
fn wal_archive_never_reports_a_failed_upload_as_stored() {
    let Some((store, proxy)) = behind_proxy() else {
        return;
    };
    let dir = temp_dir();
    let wal = segment(dir.path());
    for fault in [Fault::Status(500), Fault::Drop, Fault::Status(503)] {
        proxy.set(vec![Rule::new(fault).method("PUT")]);
        let out = via(
            &store,
            &proxy,
            "barman-cloud-wal-archive",
            &["--gzip"],
            &[wal.to_str().unwrap()],
        );
        assert!(!out.status.success(), "{fault:?} reported as success");
        assert!(archived_keys(&store).is_empty(), "{fault:?} left an object");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn wal_restore_never_leaves_a_partial_file() {
    let Some((store, proxy)) = behind_proxy() else {
        return;
    };
    let dir = temp_dir();
    let wal = segment(dir.path());
    let out = via(
        &store,
        &proxy,
        "barman-cloud-wal-archive",
        &[],
        &[wal.to_str().unwrap()],
    );
    assert!(out.status.success());
    let dest_dir = dir.path().join("pg_wal");
    std::fs::create_dir(&dest_dir).unwrap();
    let dest = dest_dir.join("RECOVERYXLOG");
    for (fault, options) in [
        (Fault::Truncate, vec![]),
        (
            Fault::Stall(Duration::from_secs(4)),
            vec!["--read-timeout", "1"],
        ),
        (Fault::Status(500), vec![]),
    ] {
        proxy.set(vec![Rule::new(fault).method("GET").target(SEGMENT)]);
        let out = via(
            &store,
            &proxy,
            "barman-cloud-wal-restore",
            &options,
            &[SEGMENT, dest.to_str().unwrap()],
        );
        assert!(!out.status.success(), "{fault:?} reported as restored");
        assert!(proxy.injected() > 0, "{fault:?} was not injected");
        let left: Vec<_> = std::fs::read_dir(&dest_dir).unwrap().collect();
        assert!(left.is_empty(), "{fault:?} left files: {left:?}");
    }
    // A single truncated answer is retried.
    proxy.set(vec![
        Rule::new(Fault::Truncate)
            .method("GET")
            .target(SEGMENT)
            .times(1),
    ]);
    let out = via(
        &store,
        &proxy,
        "barman-cloud-wal-restore",
        &[],
        &[SEGMENT, dest.to_str().unwrap()],
    );
    if out.status.success() {
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&wal).unwrap());
    } else {
        assert!(!dest.exists());
    }
}
