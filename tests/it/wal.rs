//! The WAL path end to end: PostgreSQL archiving with our wal-archive and replaying with our
//! wal-restore on every provider, interop with Barman's own tools, and the promises we add.

use std::path::Path;
use std::process::Command;

use crate::support::pg::Pg;
use crate::support::primary::{HISTORY, Recovery, assert_replayed, fingerprint, start_restored};
use crate::support::{
    self, Provider, Ran, Store, TestCommand, barman, matrix, ours, spooled, temp_dir,
    wal_like_bytes,
};

/// PostgreSQL archives a pgbench workload through our wal-archive; a server restored from a
/// WAL-less base backup replays all of it through our wal-restore. Returns the primary's log
/// (where archive_command's messages go).
fn archive_and_replay(provider: Provider, compression: &str) -> String {
    archive_and_replay_with(provider, compression, 0)
}

/// [`archive_and_replay`], the workload ending with `burst` segments switched one right after
/// the other, so that one `archive_command` call finds the next ones ready.
fn archive_and_replay_with(provider: Provider, compression: &str, burst: usize) -> String {
    let Some(store) = Store::new(provider) else {
        return String::new();
    };
    let dir = temp_dir();
    let (primary_dir, replica_dir) = (dir.path().join("primary"), dir.path().join("replica"));
    for d in [&primary_dir, &replica_dir] {
        std::fs::create_dir(d).unwrap();
    }
    support::chmod_world(dir.path());

    let mut primary = Pg::init(&primary_dir);
    primary.conf(&format!(
        "archive_mode = on\narchive_command = '{}'",
        store.archive_command(compression).replace('\'', "''")
    ));
    primary.start();
    let base = replica_dir.join("data");
    primary.base_backup_without_wal(&base);
    primary.pgbench(&["-i", "-s", "2", "-q"]);
    primary.pgbench(&["-t", "200", "-c", "2"]);
    primary.sql(
        "CREATE TABLE marker (id int, note text); INSERT INTO marker VALUES (1, 'end of workload')",
    );
    for id in 2..2 + burst {
        primary.sql(&format!(
            "INSERT INTO marker VALUES ({id}, 'burst'); SELECT pg_switch_wal()"
        ));
    }
    let last = primary.sql("SELECT pg_walfile_name(pg_switch_wal())");
    primary.wait_archived(&last);
    let expected = fingerprint(&primary, HISTORY);
    primary.stop();

    let replica = start_restored(&replica_dir, base, &store, Recovery::Replay(""));
    assert_replayed(&replica, &expected, HISTORY);
    primary.log()
}

matrix! {
    replay_file_zstd => archive_and_replay(Provider::File, "--zstd"),
    replay_file_bzip2 => archive_and_replay(Provider::File, "--bzip2"),
    replay_s3_gzip => archive_and_replay(Provider::S3, "--gzip"),
    replay_s3_xz => archive_and_replay(Provider::S3, "--xz"),
    replay_azure_lz4 => archive_and_replay(Provider::Azure, "--lz4"),
    replay_gcs_snappy => archive_and_replay(Provider::Gcs, "--snappy"),
}

/// With `--max-parallel`, calls upload the next ready segments too and PostgreSQL's later
/// calls are answered from the spool; the replica still replays everything.
#[test]
fn replay_s3_parallel_prearchive() {
    let spool = temp_dir();
    let flags = format!(
        "-v --max-parallel 4 --spool-dir '{}' --gzip",
        spool.path().display()
    );
    // Under load an upload outlasts the workload's pace, and no call finds a second segment
    // ready: segments switched back to back make sure some do.
    let log = archive_and_replay_with(Provider::S3, &flags, 4);
    if !log.is_empty() {
        assert!(
            log.contains("was archived ahead"),
            "no call was served from the spool:\n{log}"
        );
    }
}

/// A spool entry proves an upload only to the destination that wrote it: after
/// `archive_command` moves to another store, the segments pre-archived to the old one are
/// uploaded again.
#[test]
fn spool_entries_do_not_carry_over_to_another_destination() {
    let dir = temp_dir();
    let pg_wal = dir.path().join("pg_wal");
    std::fs::create_dir_all(pg_wal.join("archive_status")).unwrap();
    let names = ["000000010000000000000001", "000000010000000000000002"];
    for (i, name) in names.iter().enumerate() {
        wal_file(&pg_wal, name, 1 << 20, i as u64);
        std::fs::write(pg_wal.join(format!("archive_status/{name}.ready")), "").unwrap();
    }
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    for store in [&old, &new] {
        std::fs::create_dir(store).unwrap();
    }
    let spool = dir.path().join("spool");
    let archive = |store: &Path, name: &str| {
        Command::new(ours("barman-cloud-wal-archive"))
            .args([
                "--max-parallel",
                "2",
                "--spool-dir",
                spool.to_str().unwrap(),
            ])
            .arg(format!("file://{}", store.display()))
            .arg("pg")
            .arg(pg_wal.join(name))
            .code(0);
    };
    let stored =
        |store: &Path, name: &str| store.join("pg/wals/0000000100000000").join(name).exists();
    // The first call also uploads the second segment to the old store, and spools it.
    archive(&old, names[0]);
    assert!(
        stored(&old, names[1]),
        "the second segment was not pre-archived"
    );
    std::fs::rename(
        pg_wal.join(format!("archive_status/{}.ready", names[0])),
        pg_wal.join(format!("archive_status/{}.done", names[0])),
    )
    .unwrap();
    // The archive_command now points elsewhere: the spool entry must not answer for it.
    archive(&new, names[1]);
    assert!(
        stored(&new, names[1]),
        "reported archived without reaching the new store"
    );
}

const COMPRESSIONS: [(&str, &str); 7] = [
    ("", ""),
    ("--gzip", ".gz"),
    ("--bzip2", ".bz2"),
    ("--xz", ".xz"),
    ("--snappy", ".snappy"),
    ("--zstd", ".zst"),
    ("--lz4", ".lz4"),
];

/// Writes a WAL-shaped file named `name` and returns its path.
fn wal_file(dir: &Path, name: &str, len: usize, seed: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, wal_like_bytes(len, seed)).unwrap();
    path
}

/// Runs `program URL pg ...` (see [`Store::tool`]).
fn tool(store: &Store, program: std::path::PathBuf, url: &str, rest: &[&str]) -> Ran {
    store.tool(program, url, rest).ran()
}

/// Every compression both ways: what Barman archives we restore, what we archive Barman
/// restores, and both name the objects identically.
#[test]
fn interop_with_barman_all_compressions() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let Some(barman_archive) = barman("barman-cloud-wal-archive") else {
        return;
    };
    let barman_restore = barman("barman-cloud-wal-restore").unwrap();
    let dir = temp_dir();
    let names = [
        "000000010000000000000001",
        "000000010000000000000002",
        "000000010000000000000003",
        "000000010000000000000004",
        "000000010000000000000005",
        "000000010000000000000006",
        "000000010000000000000007",
    ];
    let (theirs, mine) = (
        format!("{}/barman", store.url),
        format!("{}/ours", store.url),
    );
    for (i, ((flag, _), name)) in COMPRESSIONS.iter().zip(names).enumerate() {
        let wal = wal_file(dir.path(), name, 16 << 20, i as u64);
        let flags: Vec<&str> = [*flag].into_iter().filter(|f| !f.is_empty()).collect();
        let wal_arg = wal.to_str().unwrap();
        tool(
            &store,
            barman_archive.clone(),
            &theirs,
            &[flags.as_slice(), &[wal_arg]].concat(),
        )
        .code(0);
        tool(
            &store,
            ours("barman-cloud-wal-archive"),
            &mine,
            &[flags.as_slice(), &[wal_arg]].concat(),
        )
        .code(0);

        let from_barman = dir.path().join(format!("{name}.from-barman"));
        tool(
            &store,
            ours("barman-cloud-wal-restore"),
            &theirs,
            &[name, from_barman.to_str().unwrap()],
        )
        .code(0);
        assert_eq!(
            std::fs::read(&from_barman).unwrap(),
            std::fs::read(&wal).unwrap(),
            "{flag:?} from Barman"
        );

        let from_ours = dir.path().join(format!("{name}.from-ours"));
        tool(
            &store,
            barman_restore.clone(),
            &mine,
            &[name, from_ours.to_str().unwrap()],
        )
        .code(0);
        assert_eq!(
            std::fs::read(&from_ours).unwrap(),
            std::fs::read(&wal).unwrap(),
            "{flag:?} from us"
        );
    }
    // History and backup-label files too, whose keys differ in shape.
    for name in [
        "00000002.history",
        "000000010000000000000007.00000028.backup",
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, b"1\t0/3000000\tno recovery target specified\n").unwrap();
        for (program, url) in [
            (barman_archive.clone(), &theirs),
            (ours("barman-cloud-wal-archive"), &mine),
        ] {
            tool(&store, program, url, &["--gzip", path.to_str().unwrap()]).ok();
        }
    }
    let keys = |prefix: &str| -> Vec<String> {
        store
            .list_keys(prefix)
            .into_iter()
            .map(|k| {
                k.split_once(&format!("/{prefix}/"))
                    .map(|(_, rest)| rest.to_string())
                    .unwrap()
            })
            .collect()
    };
    let (barman_keys, our_keys) = (keys("barman"), keys("ours"));
    assert_eq!(barman_keys.len(), 9, "{barman_keys:?}");
    assert_eq!(our_keys, barman_keys);
}

/// Archiving is idempotent for identical bytes and refuses different ones, leaving the
/// stored object untouched.
#[test]
fn duplicate_archive_same_bytes_succeeds_different_bytes_fail() {
    for provider in [Provider::File, Provider::S3] {
        let Some(store) = Store::new(provider) else {
            continue;
        };
        let dir = temp_dir();
        let name = "000000010000000000000010";
        let wal = wal_file(dir.path(), name, 1 << 20, 7);
        let archive = |extra: &[&str]| {
            let mut args = extra.to_vec();
            args.push(wal.to_str().unwrap());
            tool(&store, ours("barman-cloud-wal-archive"), &store.url, &args)
        };
        archive(&["--gzip"]).ok();
        archive(&["--gzip"]).ok();
        archive(&["--zstd"]).ok();
        // Uncompressed, the store copies the file itself (in pieces over plain HTTP S3,
        // started beside the listing), and must still find the stored copy first.
        archive(&[]).ok();
        let stored = store.list_keys("");
        assert_eq!(stored.len(), 1, "a duplicate was uploaded: {stored:?}");

        let restored = dir.path().join("restored");
        let fetch = || {
            tool(
                &store,
                ours("barman-cloud-wal-restore"),
                &store.url,
                &[name, restored.to_str().unwrap()],
            )
        };
        fetch().ok();
        let before = std::fs::read(&restored).unwrap();

        std::fs::write(&wal, wal_like_bytes(1 << 20, 8)).unwrap();
        for flags in [&["--gzip"][..], &[]] {
            let out = archive(flags).code(1);
            let stderr = out.stderr();
            assert!(
                stderr.contains("different content") && stderr.lines().count() == 1,
                "{stderr}"
            );
        }
        assert_eq!(store.list_keys("").len(), 1, "{:?}", store.list_keys(""));
        std::fs::remove_file(&restored).unwrap();
        fetch().ok();
        assert_eq!(
            std::fs::read(&restored).unwrap(),
            before,
            "the stored WAL changed"
        );
    }
}

/// The exit codes PostgreSQL and CloudNativePG act on.
#[test]
fn exit_codes_match_barman() {
    let store = Store::new(Provider::File).unwrap();
    let dir = temp_dir();
    let dest = dir.path().join("RECOVERYXLOG");
    let restore = |name: &str| {
        tool(
            &store,
            ours("barman-cloud-wal-restore"),
            &store.url,
            &[name, dest.to_str().unwrap()],
        )
    };
    restore("000000010000000000000099").code(1);
    assert!(!dest.exists());
    restore("not-a-wal").code(3);
    let bad = dir.path().join("not-a-wal");
    std::fs::write(&bad, b"x").unwrap();
    tool(
        &store,
        ours("barman-cloud-wal-archive"),
        &store.url,
        &[bad.to_str().unwrap()],
    )
    .code(3);
    let missing = dir.path().join("000000010000000000000001");
    tool(
        &store,
        ours("barman-cloud-wal-archive"),
        &store.url,
        &[missing.to_str().unwrap()],
    )
    .code(4);
}

/// An endpoint nobody listens on is a connection failure (exit 2), for every WAL command.
#[test]
fn unreachable_endpoint_exits_2() {
    let dir = temp_dir();
    let wal = wal_file(dir.path(), "000000010000000000000001", 1024, 1);
    let env = [
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "y"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ];
    let base = |program: &str| {
        let mut cmd = Command::new(ours(program));
        cmd.envs(env).args([
            "--endpoint-url",
            "http://127.0.0.1:9",
            "s3://bucket/p",
            "pg",
        ]);
        cmd
    };
    let dest = dir.path().join("out");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("barman-cloud-wal-archive", vec![wal.to_str().unwrap()]),
        (
            "barman-cloud-wal-archive",
            vec!["-t", wal.to_str().unwrap()],
        ),
        (
            "barman-cloud-wal-restore",
            vec!["000000010000000000000001", dest.to_str().unwrap()],
        ),
        ("barman-cloud-check-wal-archive", vec![]),
    ];
    for (program, args) in cases {
        base(program).args(&args).code(2);
    }
}

/// `-t` on a missing bucket exits 1 (check-wal-archive: 0, it only tests connectivity);
/// archiving into a missing bucket exits 4, as Barman's tools do.
#[test]
fn missing_bucket_exit_codes() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let url = "s3://bcrs-no-such-bucket/p";
    let dir = temp_dir();
    let wal = wal_file(dir.path(), "000000010000000000000001", 1024, 1);
    tool(
        &store,
        ours("barman-cloud-wal-archive"),
        url,
        &["-t", wal.to_str().unwrap()],
    )
    .code(1);
    let archive = [wal.to_str().unwrap()];
    tool(&store, ours("barman-cloud-wal-archive"), url, &archive).code(4);
    if let Some(theirs) = barman("barman-cloud-wal-archive") {
        tool(&store, theirs.clone(), url, &archive).code(4);
        let test = ["-t", archive[0]];
        tool(&store, theirs, url, &test).code(1);
    }
    tool(
        &store,
        ours("barman-cloud-wal-archive"),
        &store.url,
        &["-t", wal.to_str().unwrap()],
    )
    .ok();
    tool(&store, ours("barman-cloud-check-wal-archive"), url, &["-t"]).ok();
}

/// `-e`/`--sse-kms-key-id` reach the store over plain HTTP, where segments go out
/// chunk-signed: the emulator reports each stored object's encryption on HEAD.
#[test]
fn s3_encryption_reaches_chunk_signed_uploads() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    // The store's credentials, as our tools get them.
    let var = |name: &str| {
        let own = store
            .env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        own.or_else(|| std::env::var(name).ok()).unwrap()
    };
    let dir = temp_dir();
    let cases: [(&str, &[&str], &[&str]); 2] = [
        (
            "000000010000000000000003",
            &["--encryption=AES256"],
            &["x-amz-server-side-encryption: aes256"],
        ),
        (
            "000000010000000000000004",
            &["--encryption=aws:kms", "--sse-kms-key-id=bcrs-key"],
            &[
                "x-amz-server-side-encryption: aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id: bcrs-key",
            ],
        ),
    ];
    for (name, flags, expected) in cases {
        let wal = wal_file(dir.path(), name, 16 << 20, 3);
        let mut archive = flags.to_vec();
        archive.push(wal.to_str().unwrap());
        tool(
            &store,
            ours("barman-cloud-wal-archive"),
            &store.url,
            &archive,
        )
        .ok();
        let keys = store.list_keys("pg/wals");
        let key = keys.iter().find(|k| k.ends_with(name)).unwrap();
        let head = Command::new("curl")
            .args([
                "-sS",
                "-f",
                "-I",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
            ])
            .arg(format!(
                "{}:{}",
                var("AWS_ACCESS_KEY_ID"),
                var("AWS_SECRET_ACCESS_KEY")
            ))
            .arg(format!("{}/{}/{key}", store.endpoint(), store.bucket()))
            .ok()
            .to_ascii_lowercase();
        for header in expected {
            assert!(head.contains(header), "{name}: no {header} in\n{head}");
        }
        assert!(
            head.contains(&format!("content-length: {}", 16 << 20)),
            "{head}"
        );
    }
}

/// check-wal-archive gives Barman's verdicts on the same archives.
#[test]
fn check_wal_archive_agrees_with_barman() {
    for provider in [Provider::File, Provider::S3] {
        let Some(store) = Store::new(provider) else {
            continue;
        };
        let barman_check = (provider == Provider::S3)
            .then(|| barman("barman-cloud-check-wal-archive"))
            .flatten();
        let check = |args: &[&str]| -> (Option<i32>, Option<i32>) {
            let o = tool(
                &store,
                ours("barman-cloud-check-wal-archive"),
                &store.url,
                args,
            )
            .exit_code();
            let b = barman_check.as_ref().map(|p| {
                tool(&store, p.clone(), &store.url, args)
                    .exit_code()
                    .unwrap()
            });
            (o, b)
        };
        let agree = |args: &[&str], want: i32| {
            let (o, b) = check(args);
            assert_eq!(o, Some(want), "ours {args:?} on {provider:?}");
            if let Some(b) = b {
                assert_eq!(b, want, "Barman {args:?}");
            }
        };
        agree(&[], 0);
        let dir = temp_dir();
        let wal = wal_file(dir.path(), "000000020000000000000003", 1024, 3);
        tool(
            &store,
            ours("barman-cloud-wal-archive"),
            &store.url,
            &[wal.to_str().unwrap()],
        )
        .ok();
        agree(&[], 1);
        agree(&["--timeline=2"], 1);
        agree(&["--timeline=3"], 0);
        assert_eq!(check(&["--timeline=0"]).0, Some(3));
    }
}

/// With `--parallel`, the following segments wait in the spool and the next call is served
/// from there without the store.
#[test]
fn restore_prefetches_into_the_spool() {
    let store = Store::new(Provider::File).unwrap();
    let dir = temp_dir();
    let names = [
        "000000010000000000000004",
        "000000010000000000000005",
        "000000010000000000000006",
    ];
    for (i, name) in names.iter().enumerate() {
        let wal = wal_file(dir.path(), name, 1 << 20, i as u64);
        tool(
            &store,
            ours("barman-cloud-wal-archive"),
            &store.url,
            &["--gzip", wal.to_str().unwrap()],
        )
        .ok();
    }
    let spool = dir.path().join("spool");
    let spool_arg = format!("--spool-dir={}", spool.display());
    let restore = |name: &str, dest: &Path| {
        tool(
            &store,
            ours("barman-cloud-wal-restore"),
            &store.url,
            &["--parallel=3", &spool_arg, name, dest.to_str().unwrap()],
        )
    };
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    restore(names[0], &out.join("a")).ok();
    assert_eq!(spooled(&spool), [names[1], names[2]]);
    // Remove the archive: the next two must come from the spool.
    std::fs::remove_dir_all(store.file_root().unwrap().join("pg")).unwrap();
    std::fs::create_dir_all(store.file_root().unwrap()).unwrap();
    restore(names[1], &out.join("b")).ok();
    assert_eq!(
        std::fs::read(out.join("b")).unwrap(),
        wal_like_bytes(1 << 20, 1)
    );
    assert_eq!(
        spooled(&spool),
        [names[2]],
        "a spooled file is handed over, not copied"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "temporary files left behind: {leftovers:?}"
    );
}

/// Issue #19 item 3: a `file://` archive is written in 1 MiB pieces (as pgBackRest does, not
/// one 16 MiB write) to a staged name, fsynced, given the WAL's name, and its directory
/// fsynced before the command exits 0; a write cut short, by an error (`EFBIG` from a
/// file-size limit) or by the process being killed (`SIGXFSZ`), never leaves anything under
/// the WAL's name, and after the error not even a staged file.
#[test]
fn a_file_archive_is_synced_before_success_and_never_partial() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace is not installed: skipped");
        return;
    }
    let dir = temp_dir();
    let root = dir.path().join("store");
    std::fs::create_dir(&root).unwrap();
    let name = "000000010000000000000020";
    let data = wal_like_bytes(16 << 20, 20);
    let wal = dir.path().join(name);
    std::fs::write(&wal, &data).unwrap();
    let url = format!("file://{}", root.display());
    let wal_dir = root.join("pg/wals/0000000100000000");
    let dest = wal_dir.join(name);
    let under = |wrapper: &[&str]| {
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg(ours("barman-cloud-wal-archive"))
            .arg(&url)
            .arg("pg")
            .arg(&wal);
        cmd
    };
    let limit = "--fsize=5242880";

    let failed = under(&[
        "sh",
        "-c",
        "trap '' XFSZ; exec prlimit \"$0\" -- \"$@\"",
        limit,
    ])
    .code(4);
    assert!(
        failed.stderr().contains("File too large"),
        "{}",
        failed.stderr()
    );
    assert!(!dest.exists(), "a failed write left the WAL's name");
    let left: Vec<_> = std::fs::read_dir(&wal_dir).unwrap().collect();
    assert!(left.is_empty(), "a failed write left {left:?}");

    under(&["prlimit", limit, "--"]).failed();
    assert!(!dest.exists(), "a killed write left the WAL's name");

    let trace = dir.path().join("trace");
    let traced = [
        "strace",
        "-f",
        "-qq",
        "-y",
        "-o",
        trace.to_str().unwrap(),
        "-e",
        "trace=write,fsync,fdatasync,link,linkat,rename,renameat,renameat2",
    ];
    under(&traced).ok();
    assert_eq!(std::fs::read(&dest).unwrap(), data);

    let trace = std::fs::read_to_string(&trace).unwrap();
    let calls: Vec<&str> = trace
        .lines()
        // `PID  call(...)`: strace pads the PID with spaces.
        .map(|l| l.split_once(' ').map_or(l, |c| c.1).trim_start())
        .collect();
    let staged = |call: &str| call.contains(&format!("/{name}#"));
    let position = |what: &str, holds: &dyn Fn(&str) -> bool| {
        calls
            .iter()
            .position(|c| holds(c))
            .unwrap_or_else(|| panic!("no {what} in the trace:\n{trace}"))
    };
    let writes: Vec<u64> = calls
        .iter()
        .filter(|c| c.starts_with("write(") && staged(c.split('>').next().unwrap_or_default()))
        .filter_map(|c| c.rsplit("= ").next()?.trim().parse().ok())
        .collect();
    assert_eq!(writes.iter().sum::<u64>(), 16 << 20, "{trace}");
    assert!(
        writes.iter().all(|&n| n <= 1 << 20),
        "writes of {writes:?} bytes"
    );
    let synced = position("fsync of the staged file", &|c| {
        c.starts_with("fsync(") && staged(c) && c.ends_with("= 0")
    });
    let named = position("link to the WAL's name", &|c| {
        (c.starts_with("link") || c.starts_with("rename"))
            && staged(c)
            && c.contains(&format!("/{name}\""))
            && c.ends_with("= 0")
    });
    let dir_synced = position("fsync of the WAL's directory", &|c| {
        c.starts_with("fsync(") && c.contains(&format!("{}>", wal_dir.display()))
    });
    assert!(synced < named && named < dir_synced, "{trace}");
}
