//! Faults between our tools and the store (a proxy in front of the S3 and Azure emulators): transient
//! errors are retried, and no failure is ever reported as success or leaves a partial file.

use std::path::Path;
use std::time::Duration;

use crate::support::faults::{Fault, FaultProxy, Rule, behind_proxy, behind_proxy_on, via};
use crate::support::{Provider, Ran, Store, TestCommand, block_on, ours, temp_dir, wal_like_bytes};

const SEGMENT: &str = "000000010000000000000007";

fn segment(dir: &Path) -> std::path::PathBuf {
    let path = dir.join(SEGMENT);
    std::fs::write(&path, wal_like_bytes(16 << 20, 7)).unwrap();
    path
}

/// The archived segment restores (through the proxy) to the bytes of `wal`.
fn assert_restores(store: &Store, proxy: &FaultProxy, wal: &Path) {
    let back = wal.with_extension("back");
    via(
        store,
        proxy,
        "barman-cloud-wal-restore",
        &[],
        &[SEGMENT, back.to_str().unwrap()],
    )
    .code(0);
    assert_eq!(std::fs::read(back).unwrap(), std::fs::read(wal).unwrap());
}

fn archived_keys(store: &Store) -> Vec<String> {
    store.list_keys("pg/wals")
}

/// Runs `check` on S3 and on Azure, each store behind a proxy of its own.
fn on_s3_and_azure(check: fn(Store, FaultProxy)) {
    for provider in [Provider::S3, Provider::Azure] {
        if let Some((store, proxy)) = behind_proxy_on(provider) {
            check(store, proxy);
        }
    }
}

#[test]
fn wal_archive_retries_transient_faults() {
    on_s3_and_azure(retries_transient_faults);
}

fn retries_transient_faults(store: Store, proxy: FaultProxy) {
    let dir = temp_dir();
    let wal = segment(dir.path());
    proxy.set(vec![
        Rule::new(Fault::Status(503)).method("PUT").times(2),
        Rule::new(Fault::Drop).method("PUT").times(1),
        Rule::new(Fault::Status(500)).method("GET").times(1),
    ]);
    via(
        &store,
        &proxy,
        "barman-cloud-wal-archive",
        &["--zstd"],
        &[wal.to_str().unwrap()],
    )
    .code(0);
    assert!(
        proxy.injected() >= 3,
        "faults injected: {}",
        proxy.injected()
    );
    // The stored object is whole: it restores to the same bytes (without faults).
    proxy.set(vec![]);
    assert_restores(&store, &proxy, &wal);
}

/// A rule for the chunk-signed uploads (S3 over plain HTTP) only.
fn chunk_signed_put(fault: Fault) -> Rule {
    Rule::new(fault)
        .method("PUT")
        .header("content-encoding: aws-chunked")
}

/// Archives an uncompressed segment on S3 through `proxy` with `rules`, then checks (without
/// faults) that it restores whole; returns the archive's stderr and the faults applied.
fn archive_uncompressed_through(rules: Vec<Rule>) -> Option<(String, usize)> {
    let (store, proxy) = behind_proxy()?;
    let dir = temp_dir();
    let wal = segment(dir.path());
    proxy.set(rules);
    let out = via(
        &store,
        &proxy,
        "barman-cloud-wal-archive",
        &["-vv"],
        &[wal.to_str().unwrap()],
    )
    .code(0);
    let injected = proxy.injected();
    proxy.set(vec![]);
    assert_restores(&store, &proxy, &wal);
    Some((out.stderr().to_string(), injected))
}

/// Over plain HTTP an uncompressed segment goes out with its payload signed chunk by chunk,
/// read from the file as it is sent: a failed attempt is sent again from the start.
#[test]
fn chunk_signed_uploads_are_retried_whole() {
    let rules = vec![
        chunk_signed_put(Fault::Status(503)).times(1),
        chunk_signed_put(Fault::Drop).times(1),
    ];
    let Some((stderr, injected)) = archive_uncompressed_through(rules) else {
        return;
    };
    assert!(stderr.contains("signed in 256 KiB chunks"), "{stderr}");
    assert_eq!(injected, 2);
}

/// Over plain HTTP an uncompressed segment's upload starts with the listing of its directory
/// and completes only once the listing has found nothing: a copy the listing finds, or a
/// listing that fails, leaves nothing new stored, however late it answers.
#[test]
fn an_upload_started_beside_the_listing_completes_only_after_it() {
    let Some((store, proxy)) = behind_proxy() else {
        return;
    };
    let dir = temp_dir();
    let wal = segment(dir.path());
    let archive = |wal: &Path, flags: &[&str]| {
        via(
            &store,
            &proxy,
            "barman-cloud-wal-archive",
            flags,
            &[wal.to_str().unwrap()],
        )
    };
    archive(&wal, &["--gzip"]).code(0);
    let listing = |fault| Rule::new(fault).method("GET").target("list-type=2");
    // Answered a second late: the upload has sent all it may by then.
    proxy.set(vec![listing(Fault::Stall(Duration::from_secs(1)))]);
    archive(&wal, &[]).code(0);
    assert_eq!(
        archived_keys(&store).len(),
        1,
        "{:?}",
        archived_keys(&store)
    );
    std::fs::write(&wal, wal_like_bytes(16 << 20, 8)).unwrap();
    let out = archive(&wal, &[]).code(1);
    assert!(
        out.stderr().contains("different content"),
        "{}",
        out.stderr()
    );
    assert_eq!(
        archived_keys(&store).len(),
        1,
        "{:?}",
        archived_keys(&store)
    );
    proxy.set(vec![]);
    std::fs::write(&wal, wal_like_bytes(16 << 20, 7)).unwrap();
    assert_restores(&store, &proxy, &wal);

    let other = dir.path().join("000000010000000000000008");
    std::fs::write(&other, wal_like_bytes(16 << 20, 9)).unwrap();
    proxy.set(vec![listing(Fault::Status(403))]);
    let out = archive(&other, &[]);
    assert!(!out.success(), "a failed listing reported as success");
    assert_eq!(out.stderr().trim().lines().count(), 1, "{}", out.stderr());
    assert_eq!(
        archived_keys(&store).len(),
        1,
        "{:?}",
        archived_keys(&store)
    );
}

/// A server that does not take chunk-signed uploads (an S3-compatible one answering 501) gets
/// the segment uploaded whole, with its payload signed as one, at once.
#[test]
fn a_server_refusing_chunk_signed_uploads_gets_whole_ones() {
    let rules = vec![chunk_signed_put(Fault::Status(501))];
    let Some((_, injected)) = archive_uncompressed_through(rules) else {
        return;
    };
    assert_eq!(
        injected, 1,
        "no chunk-signed upload was tried, or it was retried"
    );
}

#[test]
fn wal_archive_never_reports_a_failed_upload_as_stored() {
    on_s3_and_azure(never_reports_a_failed_upload);
}

fn never_reports_a_failed_upload(store: Store, proxy: FaultProxy) {
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
        assert!(!out.success(), "{fault:?} reported as success");
        assert!(archived_keys(&store).is_empty(), "{fault:?} left an object");
        let stderr = out.stderr();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

/// A segment archived through a proxy on S3, and an empty `pg_wal` to restore it into.
struct ArchivedSegment {
    store: Store,
    proxy: FaultProxy,
    _dir: tempfile::TempDir,
    wal: std::path::PathBuf,
    dest_dir: std::path::PathBuf,
    dest: std::path::PathBuf,
}

fn archived_segment_behind_proxy() -> Option<ArchivedSegment> {
    let (store, proxy) = behind_proxy()?;
    let dir = temp_dir();
    let wal = segment(dir.path());
    via(
        &store,
        &proxy,
        "barman-cloud-wal-archive",
        &[],
        &[wal.to_str().unwrap()],
    )
    .code(0);
    let dest_dir = dir.path().join("pg_wal");
    std::fs::create_dir(&dest_dir).unwrap();
    let dest = dest_dir.join("RECOVERYXLOG");
    Some(ArchivedSegment {
        store,
        proxy,
        _dir: dir,
        wal,
        dest_dir,
        dest,
    })
}

#[test]
fn wal_restore_never_leaves_a_partial_file() {
    let Some(ArchivedSegment {
        store,
        proxy,
        _dir,
        wal,
        dest_dir,
        dest,
    }) = archived_segment_behind_proxy()
    else {
        return;
    };
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
        assert!(!out.success(), "{fault:?} reported as restored");
        assert!(proxy.injected() > 0, "{fault:?} was not injected");
        let left: Vec<_> = std::fs::read_dir(&dest_dir).unwrap().collect();
        assert!(left.is_empty(), "{fault:?} left files: {left:?}");
    }
    // A single truncated answer is resumed from where it broke off.
    proxy.set(vec![
        Rule::new(Fault::Truncate)
            .method("GET")
            .target(SEGMENT)
            .times(1),
    ]);
    via(
        &store,
        &proxy,
        "barman-cloud-wal-restore",
        &[],
        &[SEGMENT, dest.to_str().unwrap()],
    )
    .code(0);
    assert_eq!(proxy.injected(), 1);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&wal).unwrap());
}

/// Two archive calls for the same segment at once (PostgreSQL retrying while the first is
/// still running, or two archivers): both succeed and the object is whole.
#[test]
fn concurrent_archive_calls_for_one_segment() {
    let Some((store, proxy)) = behind_proxy() else {
        return;
    };
    let dir = temp_dir();
    let wal = segment(dir.path());
    let spawn = || {
        let proxied = store.through(&proxy.url);
        proxied
            .command(ours("barman-cloud-wal-archive"))
            .arg("--lz4")
            .args([&proxied.url, "pg", wal.to_str().unwrap()])
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_restores(&store, &proxy, &wal);
}

/// Two primaries (a split brain) archive different bytes under one WAL name at the same
/// moment: exactly one wins, the other exits 1 naming the conflict, and the archive holds the
/// winner's bytes (issue #14). Not on GCS: the emulator ignores `ifGenerationMatch`.
#[test]
fn split_brain_archivers_never_both_succeed() {
    for provider in [Provider::File, Provider::S3, Provider::Azure] {
        let Some(store) = Store::new(provider) else {
            return;
        };
        for attempt in 0..6u64 {
            let dir = temp_dir();
            let name = format!("0000000200000000000000{:02X}", 0x10 + attempt);
            let wals: Vec<_> = [1, 2]
                .into_iter()
                .map(|side| {
                    let path = dir.path().join(format!("{side}")).join(&name);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, wal_like_bytes(1 << 20, attempt * 10 + side)).unwrap();
                    path
                })
                .collect();
            let mut children: Vec<_> = wals
                .iter()
                .map(|wal| {
                    store
                        .command(ours("barman-cloud-wal-archive"))
                        .args([&store.url, "pg", wal.to_str().unwrap()])
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let outcomes: Vec<_> = children
                .drain(..)
                .map(|c| Ran::new("wal-archive".into(), c.wait_with_output().unwrap()))
                .collect();
            let codes: Vec<_> = outcomes.iter().map(Ran::exit_code).collect();
            let winner = match codes[..] {
                [Some(0), Some(1)] => 0,
                [Some(1), Some(0)] => 1,
                _ => panic!("{provider:?} attempt {attempt}: exit codes {codes:?}"),
            };
            let loser = outcomes[1 - winner].stderr();
            assert!(
                loser.contains("with different content; refusing to overwrite it"),
                "{provider:?}: {loser}"
            );
            let back = dir.path().join("back");
            store
                .command(ours("barman-cloud-wal-restore"))
                .args([&store.url, "pg", &name, back.to_str().unwrap()])
                .code(0);
            assert_eq!(
                std::fs::read(&back).unwrap(),
                std::fs::read(&wals[winner]).unwrap(),
                "{provider:?} attempt {attempt}: the archive does not hold the winner's bytes"
            );
        }
    }
}

/// Two restore calls prefetching into the same spool at once: every file delivered is whole.
#[test]
fn concurrent_prefetching_restores_share_a_spool() {
    let Some((store, proxy)) = behind_proxy() else {
        return;
    };
    let dir = temp_dir();
    let names: Vec<String> = (1..=6)
        .map(|n| format!("0000000100000000000000{n:02X}"))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let path = dir.path().join(name);
        std::fs::write(&path, wal_like_bytes(4 << 20, i as u64)).unwrap();
        via(
            &store,
            &proxy,
            "barman-cloud-wal-archive",
            &["--snappy"],
            &[path.to_str().unwrap()],
        )
        .code(0);
    }
    let spool = dir.path().join("spool");
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let spool_arg = format!("--spool-dir={}", spool.display());
    let restore = |name: &str| {
        let proxied = store.through(&proxy.url);
        proxied
            .command(ours("barman-cloud-wal-restore"))
            .args(["--parallel=4", &spool_arg])
            .args([&proxied.url, "pg", name])
            .arg(out_dir.join(name))
            .spawn()
            .unwrap()
    };
    for pair in names.chunks(2) {
        let (mut a, mut b) = (restore(&pair[0]), restore(&pair[1]));
        assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    }
    for name in &names {
        assert_eq!(
            std::fs::read(out_dir.join(name)).unwrap(),
            std::fs::read(dir.path().join(name)).unwrap(),
            "{name}"
        );
    }
}

/// Hostile or broken objects in the store: one clear line and the right exit code each.
#[test]
fn bad_objects_give_one_clear_line() {
    let Some((store, proxy)) = behind_proxy() else {
        return;
    };
    let storage = store.open(&store.url);
    let prefix = storage.location().prefix.trim_matches('/').to_string();
    let put = |key: &str, body: &[u8]| {
        block_on(storage.put(
            &object_store::path::Path::from(format!("{prefix}/pg/{key}")),
            bytes::Bytes::copy_from_slice(body),
            &barman_cloud::storage::WriteOptions::default(),
        ))
        .unwrap();
    };
    let dir = temp_dir();
    let dest = dir.path().join("dest");
    // A corrupted compressed WAL: exit 255 (PostgreSQL stops recovery rather than promoting
    // at it), nothing written.
    put(
        "wals/0000000100000000/00000001000000000000000A.gz",
        b"\x1f\x8b\x08\x00garbage",
    );
    let out = via(
        &store,
        &proxy,
        "barman-cloud-wal-restore",
        &[],
        &["00000001000000000000000A", dest.to_str().unwrap()],
    )
    .code(255);
    assert!(!dest.exists());
    let stderr = out.stderr();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("corrupt"), "{stderr}");
    // An unknown suffix is not a WAL file (as in Barman): not found, exit 1.
    put(
        "wals/0000000100000000/00000001000000000000000B.br",
        b"whatever",
    );
    via(
        &store,
        &proxy,
        "barman-cloud-wal-restore",
        &[],
        &["00000001000000000000000B", dest.to_str().unwrap()],
    )
    .code(1);
    // A WAL name that is not one: exit 3.
    via(
        &store,
        &proxy,
        "barman-cloud-wal-restore",
        &[],
        &["00000001000000000000000", dest.to_str().unwrap()],
    )
    .code(3);
    // Malformed, unknown-keyed and truncated backup.info: the restore names the problem and
    // fails (exit 1 for the unknown key, 4 for the others, as Barman).
    for (id, text) in [
        ("20261126T010101", "status=DONE\nno_such_field=1\n"),
        ("20261126T020202", "backup_label='START WAL"),
    ] {
        put(&format!("base/{id}/backup.info"), text.as_bytes());
        let target = dir.path().join(id);
        let out = via(
            &store,
            &proxy,
            "barman-cloud-restore",
            &[],
            &[id, target.to_str().unwrap()],
        );
        assert!(!out.success(), "{id} restored");
        let stderr = out.stderr();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("backup.info") || stderr.contains(id),
            "{stderr}"
        );
    }
}

/// Retention deletes old backups and WAL while PostgreSQL keeps archiving newer WAL: nothing
/// archived meanwhile is lost, and exactly what the policy names goes.
#[test]
fn retention_while_wal_is_archived() {
    use crate::support::synthetic::{Row, backup, backup_objects, segment, upload, wal_key};
    use barman_cloud::catalog::Status;
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let now = chrono::Local::now();
    let backups: Vec<_> = [(3, 0x10), (2, 0x20), (1, 0x30)]
        .into_iter()
        .map(|(days, seg)| {
            backup(
                &Row::new(days, Status::Done, 1, (0, seg), Some((0, seg))),
                now,
            )
        })
        .collect();
    let mut objects = backup_objects(&backups);
    for seg in 1..0x38 {
        objects.push((
            wal_key(&segment(1, 0, seg), ""),
            bytes::Bytes::from_static(b"old wal"),
        ));
    }
    upload(&store, "pg", objects);

    let dir = temp_dir();
    let fresh: Vec<String> = (0x40..0x50).map(|seg| segment(1, 0, seg)).collect();
    for (i, name) in fresh.iter().enumerate() {
        std::fs::write(
            dir.path().join(name),
            wal_like_bytes(1 << 20, 100 + i as u64),
        )
        .unwrap();
    }
    let archiver = {
        let (store_args, env, url) = (store.args.clone(), store.env.clone(), store.url.clone());
        let (dir, fresh) = (dir.path().to_path_buf(), fresh.clone());
        std::thread::spawn(move || {
            for name in fresh {
                std::process::Command::new(ours("barman-cloud-wal-archive"))
                    .args(&store_args)
                    .envs(env.iter().cloned())
                    .args(["--gzip", &url, "pg"])
                    .arg(dir.join(&name))
                    .code(0);
            }
        })
    };
    store
        .command(ours("barman-cloud-backup-delete"))
        .args(["-r", "REDUNDANCY 1", &store.url, "pg"])
        .code(0);
    archiver.join().unwrap();

    let keys = store.list_keys("pg");
    let bases: Vec<_> = keys
        .iter()
        .filter(|k| k.ends_with("/backup.info"))
        .collect();
    assert_eq!(bases.len(), 1, "{bases:?}");
    for seg in 1..0x38 {
        let key = format!("/{}", wal_key(&segment(1, 0, seg), ""));
        let kept = keys.iter().any(|k| k.ends_with(&key));
        assert_eq!(kept, seg >= 0x30, "segment {seg:#x}");
    }
    for name in &fresh {
        let back = dir.path().join(format!("{name}.back"));
        store
            .command(ours("barman-cloud-wal-restore"))
            .args([&store.url, "pg", name])
            .arg(&back)
            .code(0);
        assert_eq!(
            std::fs::read(&back).unwrap(),
            std::fs::read(dir.path().join(name)).unwrap()
        );
    }
}

/// Waits for `child` at most `limit`: its output, or `None` (and the child killed) when it
/// was still running.
fn wait_at_most(what: &str, mut child: std::process::Child, limit: Duration) -> Option<Ran> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return Some(Ran::new(what.into(), child.wait_with_output().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A server that sends one byte every 2 s keeps no wal-restore waiting (issue #14): the
/// speed floor ends the download within a read timeout's window, exit 2, nothing written,
/// with and without prefetching.
#[test]
fn a_trickling_download_fails_within_its_window() {
    let Some(ArchivedSegment {
        store,
        proxy,
        _dir,
        dest_dir,
        dest,
        ..
    }) = archived_segment_behind_proxy()
    else {
        return;
    };
    proxy.set(vec![
        Rule::new(Fault::Trickle(Duration::from_secs(2)))
            .method("GET")
            .target(SEGMENT),
    ]);
    for parallel in ["0", "4"] {
        let proxied = store.through(&proxy.url);
        let child = proxied
            .command(ours("barman-cloud-wal-restore"))
            .args(["--read-timeout", "3", "--parallel", parallel])
            .args([&proxied.url, "pg", SEGMENT, dest.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let out = wait_at_most(
            &format!("wal-restore --parallel {parallel}"),
            child,
            Duration::from_secs(60),
        )
        .unwrap_or_else(|| panic!("--parallel {parallel}: still downloading after 60 s"))
        .code(2);
        assert!(out.stderr().contains("the download stalled"), "{out:?}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        let left: Vec<_> = std::fs::read_dir(&dest_dir).unwrap().collect();
        assert!(left.is_empty(), "left files: {left:?}");
    }
}

/// An endpoint that accepts connections and never answers stops every provider within the
/// retry budget at the default read timeout, as botocore does (issue #14: GCS took 301 s).
#[test]
fn a_silent_endpoint_stops_every_provider_within_the_retry_budget() {
    if crate::support::required("BCRS_S3_ENDPOINT").is_none() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection, never reading or writing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let silent = format!("http://127.0.0.1:{port}");
    let dir = temp_dir();
    let dest = dir.path().join("RECOVERYXLOG");
    let key =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    let cases = [
        (
            "s3",
            vec![
                "--endpoint-url".to_string(),
                silent.clone(),
                "s3://b/p".into(),
            ],
            vec![
                ("AWS_ACCESS_KEY_ID", "testing".to_string()),
                ("AWS_SECRET_ACCESS_KEY", "testing-secret".to_string()),
            ],
        ),
        (
            "azure",
            vec![
                "--cloud-provider".into(),
                "azure-blob-storage".into(),
                format!("{silent}/devstoreaccount1/c/p"),
            ],
            vec![(
                "AZURE_STORAGE_CONNECTION_STRING",
                format!(
                    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};\
                     BlobEndpoint={silent}/devstoreaccount1;"
                ),
            )],
        ),
        (
            "gcs",
            vec![
                "--cloud-provider".into(),
                "google-cloud-storage".into(),
                "gs://b/p".into(),
            ],
            vec![("STORAGE_EMULATOR_HOST", silent.clone())],
        ),
    ];
    let started = std::time::Instant::now();
    let children: Vec<_> = cases
        .iter()
        .map(|(name, args, env)| {
            let child = std::process::Command::new(ours("barman-cloud-wal-restore"))
                .args(args)
                .args(["pg", SEGMENT, dest.to_str().unwrap()])
                .envs(env.iter().cloned())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (name, child)
        })
        .collect();
    for (name, child) in children {
        let remaining = Duration::from_secs(150).saturating_sub(started.elapsed());
        wait_at_most(name, child, remaining)
            .unwrap_or_else(|| panic!("{name}: still waiting after 150 s"))
            .code(2);
        // The first attempt waits out the 60 s read timeout, which spends the 60 s budget.
        assert!(
            started.elapsed() < Duration::from_secs(100),
            "{name}: {:?}",
            started.elapsed()
        );
    }
}

/// A `file://` upload killed mid-write leaves its staged `<name>#<n>` file; the next archive
/// call into that directory removes it once stale, and leaves a live writer's alone (#14).
#[test]
fn stale_staged_files_of_killed_writers_are_swept() {
    let store = Store::new(Provider::File).unwrap();
    let root = store.file_root().unwrap();
    let wal_dir = root.join("pg/wals/0000000100000000");
    std::fs::create_dir_all(&wal_dir).unwrap();
    let stale = wal_dir.join("000000010000000000000001.gz#4");
    let live = wal_dir.join("000000010000000000000002#9");
    for path in [&stale, &live] {
        std::fs::write(path, b"half a segment").unwrap();
    }
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let dir = temp_dir();
    let wal = dir.path().join("000000010000000000000003");
    std::fs::write(&wal, wal_like_bytes(1 << 20, 3)).unwrap();
    store
        .command(ours("barman-cloud-wal-archive"))
        .args([&store.url, "pg", wal.to_str().unwrap()])
        .code(0);
    assert!(!stale.exists(), "the stale staged file is still there");
    assert!(live.exists(), "a live writer's staged file was removed");
}
