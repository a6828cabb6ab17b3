//! barman-cloud-verify for monitoring (issue #18 item 3): `--format prometheus` and
//! `--textfile` on a real PostgreSQL 15 archive, every line valid exposition format and
//! every value what the archive and the catalog hold; the textfile replaced atomically;
//! and the planted faults `verify.rs` does not plant: a `.history` file missing after a real
//! promotion, a truncated lz4 part, a missing tablespace tarball, a damaged WAL segment.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use barman_cloud::python::Timestamp;

use crate::support::primary::{By, Options, Primary, Recovery, restored};
use crate::support::{Provider, Store, TestCommand, ours, temp_dir};
use crate::verify::{segments, sub, verify};

/// The samples of an exposition text, by `name{labels}`, after checking every line against
/// the text format (version 0.0.4) as this command writes it: `# HELP` then `# TYPE gauge`
/// once per family, before its samples, which are contiguous; names `barman_cloud_*`;
/// quoted labels, `server="pg"` first; a number as the value; a newline at the end.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with('\n'), "no final newline: {text:?}");
    let name_ok = |n: &str| {
        n.starts_with("barman_cloud_")
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    };
    let mut samples = BTreeMap::new();
    let mut helped = Vec::<String>::new();
    let mut typed = Vec::<String>::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(line);
            assert!(name_ok(name) && !help.is_empty(), "bad HELP: {line}");
            assert!(!helped.contains(&name.to_string()), "HELP twice: {line}");
            helped.push(name.into());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert_eq!(kind, "gauge", "{line}");
            assert_eq!(helped.last().map(String::as_str), Some(name), "{line}");
            assert!(!typed.contains(&name.to_string()), "TYPE twice: {line}");
            typed.push(name.into());
            current = Some(name.into());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = series.split_once('{').expect(line);
        assert_eq!(
            current.as_deref(),
            Some(name),
            "sample out of its family: {line}"
        );
        let labels = labels.strip_suffix('}').expect(line);
        assert!(labels.starts_with("server=\"pg\""), "{line}");
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").expect(line);
            assert!(
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "bad label name: {line}"
            );
            let mut end = None;
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.unwrap_or_else(|| panic!("unterminated label: {line}"));
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "series twice: {line}"
        );
    }
    assert!(!samples.is_empty());
    samples
}

/// promtool's own check of the text, when the rig has promtool (Debian's `prometheus`
/// package, or `BCRS_PROMTOOL`).
fn promtool_check(text: &str) {
    let promtool = std::env::var("BCRS_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let Ok(mut child) = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn metrics(store: &Store, code: i32, rest: &[&str]) -> BTreeMap<String, f64> {
    let ran = verify(store, &[&["--format", "prometheus"], rest].concat()).code(code);
    promtool_check(ran.stdout());
    parse_exposition(ran.stdout())
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(&format!("barman_cloud_{series}"))
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

/// A `backup.info` time as Unix seconds.
fn info_time(store: &Store, id: &str, field: &str) -> f64 {
    let text = store.info_field(id, field);
    text.parse::<Timestamp>().unwrap().0.timestamp() as f64
}

fn health(provider: Provider) {
    let Some(primary) = Primary::new(
        provider,
        Options {
            archive_flags: "--gzip",
            pgbench_scale: Some(1),
            ..Options::default()
        },
    ) else {
        return;
    };
    let flags = ["--immediate-checkpoint", "--gzip"];
    primary.backup(By::Us, &flags);
    primary.mark("one");
    primary.backup(By::Us, &flags);
    primary.mark("two");
    let store = &primary.store;
    let ids = primary.backup_ids();
    let newest = primary
        .pg
        .sql("SELECT last_archived_wal FROM pg_stat_archiver");
    let before = chrono::Utc::now().timestamp() as f64;

    let m = metrics(store, 0, &["--wal-only"]);
    assert_eq!(value(&m, "verify_ok{server=\"pg\"}"), 1.0);
    assert_eq!(value(&m, "verify_problems{server=\"pg\"}"), 0.0);
    assert!((value(&m, "verify_timestamp{server=\"pg\"}") - before).abs() < 60.0);
    assert_eq!(value(&m, "backups{server=\"pg\",status=\"DONE\"}"), 2.0);
    assert_eq!(value(&m, "backups{server=\"pg\",status=\"FAILED\"}"), 0.0);
    let last = format!(
        "last_backup_info{{server=\"pg\",backup_id=\"{}\",status=\"DONE\"}}",
        ids[1]
    );
    assert_eq!(value(&m, &last), 1.0);
    let (first_end, last_end) = (
        info_time(store, &ids[0], "end_time"),
        info_time(store, &ids[1], "end_time"),
    );
    assert!(first_end < last_end);
    assert_eq!(
        value(&m, "first_recoverability_point{server=\"pg\"}"),
        first_end
    );
    assert_eq!(
        value(&m, "last_available_backup_timestamp{server=\"pg\"}"),
        last_end
    );
    assert_eq!(
        value(&m, "last_backup_end_timestamp{server=\"pg\"}"),
        last_end
    );
    assert_eq!(
        value(&m, "last_failed_backup_timestamp{server=\"pg\"}"),
        0.0
    );
    assert_eq!(value(&m, "wal_newest_timeline{server=\"pg\"}"), 1.0);
    let seg = u64::from_str_radix(&newest[8..16], 16).unwrap() * 256
        + u64::from_str_radix(&newest[16..24], 16).unwrap();
    assert_eq!(
        value(&m, "wal_newest_segment{server=\"pg\"}"),
        seg as f64,
        "{newest}"
    );
    let age = value(&m, "wal_newest_age_seconds{server=\"pg\"}");
    assert!((0.0..300.0).contains(&age), "{age}");
    let stored = value(&m, "wal_newest_timestamp{server=\"pg\"}");
    assert!(
        (stored - (before - age)).abs() <= 60.0,
        "{stored} {age} {before}"
    );
    assert_eq!(value(&m, "wal_gaps{server=\"pg\"}"), 0.0);
    assert_eq!(value(&m, "wal_missing_segments{server=\"pg\"}"), 0.0);
    assert_eq!(value(&m, "wal_missing_history_files{server=\"pg\"}"), 0.0);
    assert!(
        !m.keys().any(|k| k.contains("backup_verify_problems")),
        "--wal-only read a backup"
    );

    // Every backup verified: a gauge for each.
    let m = metrics(store, 0, &[]);
    for id in &ids {
        let series = format!("backup_verify_problems{{server=\"pg\",backup_id=\"{id}\"}}");
        assert_eq!(value(&m, &series), 0.0);
    }

    // The textfile: the same gauges, mode 0644, replaced (a new inode) by every run.
    let dir = temp_dir();
    let textfile = dir.path().join("barman_cloud.prom");
    let path = textfile.to_str().unwrap();
    let ran = verify(store, &["--wal-only", "--textfile", path]).code(0);
    assert!(
        ran.stdout().contains("0 gap(s)"),
        "the console report goes on: {}",
        ran.stdout()
    );
    let text = std::fs::read_to_string(&textfile).unwrap();
    promtool_check(&text);
    let from_file = parse_exposition(&text);
    assert_eq!(
        from_file.keys().collect::<Vec<_>>(),
        metrics(store, 0, &["--wal-only"])
            .keys()
            .collect::<Vec<_>>()
    );
    let meta = std::fs::metadata(&textfile).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    let inode = meta.ino();
    verify(store, &["--wal-only", "--textfile", path]).code(0);
    assert_ne!(
        std::fs::metadata(&textfile).unwrap().ino(),
        inode,
        "rewritten in place"
    );
    atomic_replacement(store, dir.path(), &textfile);

    // A gap: exit 1 as in text, and the gauges say so, in the file too.
    let wals = segments(store);
    let middle = wals[wals.len() - 2].clone();
    store.delete(&sub(&middle));
    let m = metrics(store, 1, &["--wal-only"]);
    assert_eq!(value(&m, "verify_ok{server=\"pg\"}"), 0.0);
    assert_eq!(value(&m, "wal_gaps{server=\"pg\"}"), 1.0);
    assert_eq!(value(&m, "wal_missing_segments{server=\"pg\"}"), 1.0);
    let ran = verify(store, &["--wal-only", "--textfile", path]).code(1);
    assert!(
        ran.stderr().contains("found 1 problem(s)"),
        "{}",
        ran.stderr()
    );
    let from_file = parse_exposition(&std::fs::read_to_string(&textfile).unwrap());
    assert_eq!(value(&from_file, "wal_gaps{server=\"pg\"}"), 1.0);

    // A store that cannot be reached: exit 2, and the file no longer says all is well.
    let ran = Command::new(ours("barman-cloud-verify"))
        .args([
            "--endpoint-url",
            "http://127.0.0.1:1",
            "--wal-only",
            "--textfile",
            path,
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .args(["s3://bucket/prefix", "pg"])
        .code(2);
    assert!(ran.stderr().contains("can't connect"), "{}", ran.stderr());
    let from_file = parse_exposition(&std::fs::read_to_string(&textfile).unwrap());
    assert_eq!(value(&from_file, "verify_ok{server=\"pg\"}"), 0.0);
}

/// While verify rewrites `textfile` again and again, a reader never sees a partial file,
/// and no other name in the directory looks like a textfile (`*.prom`) to the collector.
fn atomic_replacement(store: &Store, dir: &Path, textfile: &Path) {
    let done = AtomicBool::new(false);
    let mut reads = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..5 {
                verify(
                    store,
                    &["--wal-only", "-q", "--textfile", textfile.to_str().unwrap()],
                )
                .code(0);
            }
            done.store(true, Ordering::SeqCst);
        });
        while !done.load(Ordering::SeqCst) {
            let text = std::fs::read_to_string(textfile).unwrap();
            parse_exposition(&text);
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                assert!(
                    name == "barman_cloud.prom"
                        || name.starts_with('.') && !name.ends_with(".prom"),
                    "{name} in the textfile directory"
                );
            }
            reads += 1;
        }
    });
    assert!(reads > 5, "{reads}");
}

#[test]
fn health_metrics_file() {
    health(Provider::File);
}

#[test]
fn health_metrics_s3() {
    health(Provider::S3);
}

/// A real timeline switch: a server restored from the backup promotes at the end of the
/// archive and archives `00000002.history` and timeline 2 into the same store; verify
/// follows it, and names the history file once it is deleted.
#[test]
fn a_missing_history_file_after_a_real_promotion_is_named() {
    let Some(mut primary) = Primary::new(
        Provider::File,
        Options {
            archive_flags: "--gzip",
            ..Options::default()
        },
    ) else {
        return;
    };
    primary.backup(By::Us, &["--immediate-checkpoint", "--gzip"]);
    primary.mark("one");
    primary.pg.stop();
    let store = &primary.store;
    let id = primary.backup_ids().pop().unwrap();

    let dir = primary.dir("promoted");
    let data = dir.join("data");
    // Restored as root (the tests' user): pg_wal/archive_status, which the archive holds no
    // member for, must still be the postgres user's, or the promoted server cannot archive.
    store
        .command(ours("barman-cloud-restore"))
        .args([&store.url, "pg", &id])
        .arg(&data)
        .ok();
    let mut promoted = restored(&dir, data, store, Recovery::Replay(""));
    promoted.conf(&format!(
        "archive_mode = on\narchive_command = '{}'",
        store.archive_command("--gzip").replace('\'', "''")
    ));
    promoted.start_with_env(&store.env);
    promoted.wait_promoted();
    promoted.sql("CREATE TABLE after_promotion AS SELECT 1 AS x");
    let last = promoted.sql("SELECT pg_walfile_name(pg_switch_wal())");
    promoted.wait_archived(&last);
    assert!(last.starts_with("00000002"), "{last}");
    promoted.stop();
    let history = "pg/wals/00000002.history.gz";
    assert!(
        store
            .list_keys("pg/wals")
            .iter()
            .any(|k| k.ends_with("00000002.history.gz"))
    );

    let text = verify(store, &["--wal-only"]).ok();
    assert!(
        text.contains("WAL archive timeline 2:") && !text.contains("problem"),
        "{text}"
    );

    let saved = store.get_bytes(history);
    store.delete(history);
    let ran = verify(store, &["--wal-only"]).code(1);
    let out = format!("{}{}", ran.stdout(), ran.stderr());
    assert!(out.contains("00000002.history' is missing"), "{out}");
    let m = metrics(store, 1, &["--wal-only"]);
    assert_eq!(value(&m, "wal_missing_history_files{server=\"pg\"}"), 1.0);
    store.put_bytes(history, saved);
    verify(store, &["--wal-only"]).ok();
}

/// lz4 parts cut short, a tablespace tarball gone, a WAL segment of the backup damaged:
/// each is named and makes verify exit 1.
#[test]
fn a_truncated_lz4_part_a_missing_tablespace_and_a_damaged_wal_are_named() {
    let Some(primary) = Primary::new(
        Provider::S3,
        Options {
            archive_flags: "--lz4",
            tablespace: Some("tbs"),
            pgbench_scale: Some(1),
            ..Options::default()
        },
    ) else {
        return;
    };
    primary.backup(By::Us, &["--immediate-checkpoint", "--lz4", "-S", "1MB"]);
    primary.mark("one");
    let store = &primary.store;
    let id = primary.backup_ids().pop().unwrap();
    verify(store, &[&id]).ok();
    let failure = |rest: &[&str]| {
        let ran = verify(store, rest).code(1);
        format!("{}{}", ran.stdout(), ran.stderr())
    };

    let part = format!("pg/base/{id}/data_0001.tar.lz4");
    let original = store.get_bytes(&part);
    store.put_bytes(&part, original[..original.len() / 2].to_vec());
    let out = failure(&[&id]);
    assert!(out.contains("data_0001.tar.lz4"), "{out}");
    store.put_bytes(&part, original);

    let keys = store.list_keys(&format!("pg/base/{id}"));
    let tablespace = keys
        .iter()
        .map(|k| k.rsplit('/').next().unwrap().to_string())
        .find(|n| n.ends_with(".tar.lz4") && !n.starts_with("data"))
        .expect("no tablespace tarball");
    let key = format!("pg/base/{id}/{tablespace}");
    let saved = store.get_bytes(&key);
    store.delete(&key);
    let oid = tablespace.split('.').next().unwrap();
    let out = failure(&[&id]);
    assert!(out.contains(oid), "{out}");
    store.put_bytes(&key, saved);

    let begin = store.info_field(&id, "begin_wal");
    let wal = store
        .list_keys("pg/wals")
        .into_iter()
        .find(|k| k.ends_with(&format!("/{begin}.lz4")))
        .expect("no begin WAL");
    let saved = store.get_bytes(&sub(&wal));
    store.put_bytes(&sub(&wal), saved[..saved.len() / 3].to_vec());
    let out = failure(&[&id]);
    assert!(out.contains(&begin), "{out}");
    store.put_bytes(&sub(&wal), saved);
    verify(store, &[&id]).ok();
}
