//! Issue #14, on the WAL path: wal-restore never delivers wrong bytes. A damaged object (a
//! flipped byte, a cut, the wrong size) fails with the exit status that stops recovery and
//! leaves nothing at `%p`; a spool entry answers only for the source that filled it; calls
//! sharing a spool never fail because of each other.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use barman_cloud::compress::{Compression, compress};
use barman_cloud::storage::{Storage, WriteOptions};
use object_store::path::Path as Key;

use crate::support::pg::{Pg, as_postgres, pg_bin};
use crate::support::primary::{Recovery, restored};
use crate::support::{
    Provider, Ran, Store, TestCommand, barman, block_on, ours, spooled, temp_dir, wal_like_bytes,
};

/// The exit status PostgreSQL stops recovery on (`ExitClass::StopRecovery`).
const DAMAGED: i32 = 255;

const SEGMENT_SIZE: usize = 16 << 20;

/// The objects behind a store URL, read and replaced through the library's client.
struct Objects {
    storage: Storage,
}

impl Objects {
    fn of(store: &Store, url: &str) -> Objects {
        Objects {
            storage: store.open(url),
        }
    }

    /// The directory of WAL `name` under server `pg`.
    fn dir(&self, name: &str) -> String {
        let prefix = self.storage.location().prefix.trim_matches('/').to_string();
        format!("{prefix}/pg/wals/{}", &name[..16])
    }

    /// The key of WAL `name` with `suffix`.
    fn key(&self, name: &str, suffix: &str) -> Key {
        Key::from(format!("{}/{name}{suffix}", self.dir(name)))
    }

    /// The one object stored for WAL `name`: its key and bytes.
    fn wal(&self, name: &str) -> (Key, Vec<u8>) {
        let dir = Key::from(self.dir(name));
        let key = block_on(self.storage.list_dir(&dir))
            .unwrap()
            .into_iter()
            .map(|m| m.location)
            .find(|k| k.filename().is_some_and(|f| f.starts_with(name)))
            .unwrap_or_else(|| panic!("{name} is not stored"));
        let bytes = block_on(self.storage.get(&key)).unwrap().to_vec();
        (key, bytes)
    }

    fn put(&self, key: &Key, bytes: Vec<u8>) {
        let options = WriteOptions::default();
        let put = self.storage.put(key, bytes.into(), &options);
        block_on(put).unwrap();
    }
}

/// Archives `data` as WAL `name` to `url` with `program` (ours or Barman's).
fn archive(store: &Store, program: PathBuf, url: &str, flag: &str, name: &str, data: &[u8]) {
    let dir = temp_dir();
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    let flags: Vec<&str> = [flag].into_iter().filter(|f| !f.is_empty()).collect();
    store
        .tool(
            program,
            url,
            &[&flags[..], &[path.to_str().unwrap()]].concat(),
        )
        .code(0);
}

/// Our wal-restore of `name` into an empty directory, with `options` first: the output and
/// the files left in the directory.
fn restore(
    store: &Store,
    url: &str,
    options: &[&str],
    name: &str,
) -> (Ran, Vec<(String, Vec<u8>)>) {
    let dir = temp_dir();
    let dest = dir.path().join("RECOVERYXLOG");
    let args = [options, &[name, dest.to_str().unwrap()]].concat();
    let out = store
        .tool(ours("barman-cloud-wal-restore"), url, &args)
        .ran();
    let left = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    (out, left)
}

fn assert_refused(store: &Store, url: &str, name: &str, what: &str) {
    let (out, left) = restore(store, url, &[], name);
    let stderr = out.stderr();
    assert_eq!(out.exit_code(), Some(DAMAGED), "{what}: {stderr}");
    let names: Vec<&String> = left.iter().map(|(n, _)| n).collect();
    assert!(left.is_empty(), "{what} left {names:?}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("refusing to restore"), "{stderr}");
}

fn assert_restores(store: &Store, url: &str, name: &str, data: &[u8]) {
    let (out, left) = restore(store, url, &[], name);
    out.code(0);
    assert!(left.len() == 1 && left[0].1 == data, "{name}: wrong bytes");
}

/// Archives WAL with our zstd and lz4 and flips one byte in the middle of each object.
fn flip_a_byte(store: &Store) -> [&'static str; 2] {
    let objects = Objects::of(store, &store.url);
    let names = ["000000010000000000000001", "000000010000000000000002"];
    for (flag, name) in [("--zstd", names[0]), ("--lz4", names[1])] {
        let program = ours("barman-cloud-wal-archive");
        let data = wal_like_bytes(SEGMENT_SIZE, 1);
        archive(store, program, &store.url, flag, name, &data);
        let (key, mut bytes) = objects.wal(name);
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        objects.put(&key, bytes);
    }
    names
}

#[test]
fn a_flipped_byte_in_our_zstd_or_lz4_wal_is_refused() {
    let store = Store::new(Provider::File).unwrap();
    for name in flip_a_byte(&store) {
        assert_refused(&store, &store.url, name, name);
    }
    // Barman's readers check the same checksums.
    let (Some(s3), Some(theirs)) = (Store::new(Provider::S3), barman("barman-cloud-wal-restore"))
    else {
        return;
    };
    for name in flip_a_byte(&s3) {
        assert_refused(&s3, &s3.url, name, name);
        let dir = temp_dir();
        let dest = dir.path().join("RECOVERYXLOG");
        let out = s3
            .tool(theirs.clone(), &s3.url, &[name, dest.to_str().unwrap()])
            .ran();
        assert!(!out.success(), "Barman restored {name}");
    }
}

/// Where each block of the LZ4 frame at the start of `frame` ends (end mark excluded).
fn lz4_block_ends(frame: &[u8]) -> Vec<usize> {
    let flags = frame[4];
    let flag = |bit: u8, len: usize| if flags & bit != 0 { len } else { 0 };
    let mut at = 7 + flag(0x08, 8) + flag(0x01, 4);
    let mut ends = Vec::new();
    loop {
        let size = u32::from_le_bytes(frame[at..at + 4].try_into().unwrap());
        if size == 0 {
            return ends;
        }
        at += 4 + (size & 0x7FFF_FFFF) as usize + flag(0x10, 4);
        ends.push(at);
    }
}

/// Cuts the LZ4 object of `name` after half its blocks: it must be refused.
fn cut_lz4_between_blocks(store: &Store, program: PathBuf, url: &str, name: &str) {
    let data = wal_like_bytes(SEGMENT_SIZE, 3);
    archive(store, program, url, "--lz4", name, &data);
    let objects = Objects::of(store, url);
    let (key, bytes) = objects.wal(name);
    let ends = lz4_block_ends(&bytes);
    assert!(ends.len() > 2, "{} blocks", ends.len());
    objects.put(&key, bytes[..ends[ends.len() / 2]].to_vec());
    assert_refused(store, url, name, "an LZ4 object cut between blocks");
}

#[test]
fn an_lz4_wal_cut_between_blocks_is_refused() {
    let store = Store::new(Provider::File).unwrap();
    let name = "000000010000000000000003";
    cut_lz4_between_blocks(&store, ours("barman-cloud-wal-archive"), &store.url, name);
    let (Some(s3), Some(theirs)) = (Store::new(Provider::S3), barman("barman-cloud-wal-archive"))
    else {
        return;
    };
    cut_lz4_between_blocks(&s3, theirs, &s3.url, name);
}

/// Our 16 MiB bzip2 WAL is several streams; one cut between two still decodes without an
/// error, and only the segment size tells.
#[test]
fn our_bzip2_wal_cut_between_streams_is_refused() {
    let store = Store::new(Provider::File).unwrap();
    let name = "000000010000000000000004";
    let data = wal_like_bytes(SEGMENT_SIZE, 4);
    archive(
        &store,
        ours("barman-cloud-wal-archive"),
        &store.url,
        "--bzip2",
        name,
        &data,
    );
    let objects = Objects::of(&store, &store.url);
    let (key, bytes) = objects.wal(name);
    let starts: Vec<usize> = (0..bytes.len() - 10)
        .filter(|&i| bytes[i..i + 3] == *b"BZh" && bytes[i + 4..i + 10] == *b"1AY&SY")
        .collect();
    assert!(starts.len() > 1, "one stream");
    objects.put(&key, bytes[..*starts.last().unwrap()].to_vec());
    assert_refused(&store, &store.url, name, "bzip2 cut between streams");
}

/// Each codec (and none): half a segment is refused by its page header, although its size
/// is one PostgreSQL can be built with; a size no segment has is refused without a header;
/// the whole segment restores.
#[test]
fn a_short_segment_is_refused_whatever_its_compression() {
    let store = Store::new(Provider::File).unwrap();
    let objects = Objects::of(&store, &store.url);
    let whole = wal_like_bytes(2 << 20, 5);
    let mut headless = whole[..(3 << 20) / 2].to_vec();
    headless[..40].fill(0);
    let codecs = [None].into_iter().chain(Compression::ALL.map(Some));
    for (i, codec) in codecs.enumerate() {
        let name = format!("0000000100000000000000{:02X}", 0x10 + i);
        let key = objects.key(&name, codec.map_or("", |c| c.suffix()));
        let encode =
            |data: &[u8]| codec.map_or(data.to_vec(), |c| compress(c, None, data).unwrap());
        objects.put(&key, encode(&whole[..1 << 20]));
        assert_refused(
            &store,
            &store.url,
            &name,
            &format!("half a segment, {codec:?}"),
        );
        objects.put(&key, encode(&headless));
        assert_refused(&store, &store.url, &name, &format!("1.5 MiB, {codec:?}"));
        objects.put(&key, encode(&whole));
        assert_restores(&store, &store.url, &name, &whole);
    }
}

/// Segment `i` of archive `s` in [`two_archives`].
fn segment_data(s: usize, i: usize) -> Vec<u8> {
    wal_like_bytes(1 << 20, (100 * s + i) as u64)
}

/// Two file archives of server `pg`, each holding segments 1 to `count` (archived with
/// `flag`), with different bytes; and the segment names.
fn two_archives(count: u32, flag: &str) -> ([Store; 2], Vec<String>) {
    let stores = [
        Store::new(Provider::File).unwrap(),
        Store::new(Provider::File).unwrap(),
    ];
    let names: Vec<String> = (1..=count)
        .map(|n| format!("0000000100000000000000{n:02X}"))
        .collect();
    for (s, store) in stores.iter().enumerate() {
        for (i, name) in names.iter().enumerate() {
            let program = ours("barman-cloud-wal-archive");
            archive(store, program, &store.url, flag, name, &segment_data(s, i));
        }
    }
    (stores, names)
}

/// Two archives share one spool directory (the default one is shared by every standby of a
/// host): a segment prefetched from one is never served to a call on the other.
#[test]
fn stores_sharing_a_spool_each_get_their_own_bytes() {
    let (stores, names) = two_archives(3, "--gzip");
    let spool = temp_dir();
    let spool_arg = format!("--spool-dir={}", spool.path().display());
    let options = ["--parallel=3", spool_arg.as_str()];
    let fetch = |s: usize, i: usize| {
        let (out, left) = restore(&stores[s], &stores[s].url, &options, &names[i]);
        out.code(0);
        assert!(
            left.len() == 1 && left[0].1 == segment_data(s, i),
            "store {s}, {}: wrong bytes",
            names[i]
        );
    };
    // Store 0's second and third segments wait in the spool; store 1 asks for its second.
    fetch(0, 0);
    fetch(1, 1);
    fetch(0, 1);
    fetch(1, 2);
    fetch(0, 2);
    assert!(
        spooled(spool.path()).is_empty(),
        "{:?}",
        spooled(spool.path())
    );
}

/// Four standbys on one host (two per archive) replay the same segments at once, each with
/// `--parallel 4` on the one spool: every call exits 0 with its own archive's bytes.
#[test]
fn concurrent_prefetching_restores_on_one_spool_all_succeed() {
    let (stores, names) = two_archives(12, "");
    let spool = temp_dir();
    let spool_arg = format!("--spool-dir={}", spool.path().display());
    let failures: Vec<String> = std::thread::scope(|scope| {
        let standbys: Vec<_> = [0, 0, 1, 1]
            .into_iter()
            .map(|s| {
                let (store, names, spool_arg) = (&stores[s], &names, &spool_arg);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (i, name) in names.iter().enumerate() {
                        let options = ["--parallel=4", spool_arg.as_str()];
                        let (out, left) = restore(store, &store.url, &options, name);
                        if !out.success() {
                            let stderr = out.stderr();
                            let code = out.exit_code();
                            failures.push(format!("store {s} {name}: exit {code:?}: {stderr}"));
                        } else if !(left.len() == 1 && left[0].1 == segment_data(s, i)) {
                            failures.push(format!("store {s} {name}: wrong bytes"));
                        }
                    }
                    failures
                })
            })
            .collect();
        standbys
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
    // No temporary file is left behind in the spool.
    let leftovers: Vec<String> = spooled(spool.path())
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// PostgreSQL takes exit statuses 1 to 125 from `restore_command` as "not in the archive":
/// at a damaged segment, a PITR would end recovery and promote, losing what follows. With
/// our status it stops instead, and once the object is repaired recovery resumes and
/// replays everything.
#[test]
fn recovery_stops_at_a_damaged_segment_and_resumes_once_repaired() {
    let store = Store::new(Provider::File).unwrap();
    let dir = temp_dir();
    let (primary_dir, replica_dir) = (dir.path().join("primary"), dir.path().join("replica"));
    for d in [&primary_dir, &replica_dir] {
        std::fs::create_dir(d).unwrap();
    }
    crate::support::chmod_world(dir.path());
    let mut primary = Pg::init(&primary_dir);
    let archive_command = store.archive_command("--lz4");
    primary.conf(&format!(
        "archive_mode = on\narchive_command = '{}'",
        archive_command.replace('\'', "''")
    ));
    primary.start();
    let base = replica_dir.join("data");
    primary.base_backup_without_wal(&base);
    primary.pgbench(&["-i", "-s", "2", "-q"]);
    let damaged = primary.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    primary.pgbench(&["-t", "200", "-c", "2"]);
    primary.sql("CREATE TABLE marker AS SELECT 'end of workload' AS note");
    let last = primary.sql("SELECT pg_walfile_name(pg_switch_wal())");
    primary.wait_archived(&last);
    primary.stop();

    let objects = Objects::of(&store, &store.url);
    let (key, good) = objects.wal(&damaged);
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x01;
    objects.put(&key, bad);

    let mut replica = restored(&replica_dir, base, &store, Recovery::Replay(""));
    // pg_ctl fails if recovery stops before the server accepts connections; either way
    // the server must shut itself down.
    replica.start_command(&[]).ran();
    let deadline = Instant::now() + Duration::from_secs(120);
    while replica.data.join("postmaster.pid").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = replica.log();
    if replica.data.join("postmaster.pid").exists() {
        let stop = ["-w", "-m", "immediate", "-D"];
        as_postgres(pg_bin("pg_ctl"))
            .args(stop)
            .arg(&replica.data)
            .arg("stop")
            .ran();
        panic!("recovery went on past the damaged {damaged}:\n{text}");
    }
    assert!(text.contains("refusing to restore"), "{text}");
    assert!(
        text.contains(&format!("could not restore file \"{damaged}\"")),
        "{text}"
    );
    assert!(
        !text.contains("selected new timeline ID"),
        "promoted:\n{text}"
    );

    objects.put(&key, good);
    replica.start();
    replica.wait_promoted();
    assert_eq!(replica.sql("SELECT note FROM marker"), "end of workload");
}
