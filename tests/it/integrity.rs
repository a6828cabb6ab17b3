//! Never restore wrong bytes (issue #14, items 3 and 4): faults planted in real split backups
//! of a PostgreSQL 15 server (ours uncompressed on `file://`, Barman's snappy on S3) and in
//! `backup.info` files, each restore refused with the right exit code and without
//! `global/pg_control` in place; and for `backup.info`, the exit codes Barman's own tools give
//! on the same objects, in list, show and restore.

use std::path::{Path as FsPath, PathBuf};

use object_store::path::Path;

use crate::support::pg::Pg;
use crate::support::{Provider, Ran, Store, TestCommand, barman, block_on, ours, temp_dir};
use barman_cloud::storage::{Storage, WriteOptions};

/// Objects of one store, read and planted directly.
struct Bucket {
    storage: Storage,
    prefix: String,
}

impl Bucket {
    fn new(store: &Store) -> Bucket {
        let storage = store.open(&store.url);
        let prefix = storage.location().prefix.trim_matches('/').to_string();
        Bucket { storage, prefix }
    }

    fn key(&self, id: &str, name: &str) -> Path {
        Path::from(format!("{}/pg/base/{id}/{name}", self.prefix))
    }

    /// The file names in backup `id`'s directory, sorted.
    fn names(&self, id: &str) -> Vec<String> {
        let dir = Path::from(format!("{}/pg/base/{id}", self.prefix));
        let mut names: Vec<String> = block_on(self.storage.list_all(&dir))
            .unwrap()
            .into_iter()
            .map(|m| m.location.filename().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    fn get(&self, id: &str, name: &str) -> Vec<u8> {
        let bytes = block_on(self.storage.get(&self.key(id, name)));
        bytes.unwrap().to_vec()
    }

    fn put(&self, id: &str, name: &str, data: Vec<u8>) {
        self.put_at(&format!("pg/base/{id}/{name}"), data);
    }

    /// Stores `data` at `sub` under the URL's prefix.
    fn put_at(&self, sub: &str, data: Vec<u8>) {
        let key = Path::from(format!("{}/{sub}", self.prefix));
        let options = WriteOptions::default();
        let put = self.storage.put(&key, bytes::Bytes::from(data), &options);
        block_on(put).unwrap();
    }

    /// Copies backup `id` as `copy`, each object through `edit` (`None` leaves it out).
    fn copy_backup(&self, id: &str, copy: &str, edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) {
        for name in self.names(id) {
            if let Some(data) = edit(&name, self.get(id, &name)) {
                self.put(copy, &name, data);
            }
        }
    }
}

/// The data parts of a backup, in order (`data.tar*` first, then `data_0001.tar*` ...).
fn data_parts(names: &[String]) -> Vec<String> {
    let mut parts: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with("data.") || n.starts_with("data_"))
        .cloned()
        .collect();
    parts.sort_by_key(|n| n.starts_with("data_"));
    parts
}

/// Where each member of a tar stream starts (at its first extension header, if any), and
/// where the end-of-archive marker starts.
fn member_starts(tar: &[u8]) -> (Vec<usize>, usize) {
    let mut starts = Vec::new();
    let mut at = 0;
    let mut start = None;
    loop {
        let block = &tar[at..at + 512];
        if block.iter().all(|&b| b == 0) {
            return (starts, at);
        }
        let header = tar::Header::from_byte_slice(block);
        let size = header.entry_size().unwrap() as usize;
        let kind = header.entry_type();
        let extension = kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink();
        start.get_or_insert(at);
        if !extension {
            starts.push(start.take().unwrap());
        }
        at += 512 + size.next_multiple_of(512);
    }
}

/// The offsets in a snappy framed stream after which a chunk ends, with how many bytes the
/// chunks up to there decompress to.
fn snappy_chunk_ends(stream: &[u8]) -> Vec<(usize, usize)> {
    let mut ends = Vec::new();
    let (mut at, mut out) = (0, 0);
    while at < stream.len() {
        let kind = stream[at];
        let len = u32::from_le_bytes([stream[at + 1], stream[at + 2], stream[at + 3], 0]) as usize;
        let body = &stream[at + 4..at + 4 + len];
        out += match kind {
            0x00 => snap::raw::decompress_len(&body[4..]).unwrap(),
            0x01 => len - 4,
            _ => 0,
        };
        at += 4 + len;
        ends.push((at, out));
    }
    ends
}

fn unsnappy(stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut snap::read::FrameDecoder::new(stream), &mut out).unwrap();
    out
}

fn stderr(out: &Ran) -> String {
    out.stderr().to_string()
}

/// Our restore of backup `id` into `dest`.
fn restore(store: &Store, id: &str, dest: &FsPath) -> Ran {
    store
        .command(ours("barman-cloud-restore"))
        .args([&store.url, "pg", id])
        .arg(dest)
        .ran()
}

/// Restores `copy`, a copy of backup `id` whose object `part` is cut to the length `cut`
/// gives, into `dest`.
fn restore_cut(
    store: &Store,
    (id, copy): (&str, &str),
    part: &str,
    dest: &FsPath,
    cut: impl Fn(&[u8]) -> usize,
) -> Ran {
    let bucket = Bucket::new(store);
    bucket.copy_backup(id, copy, |name, data| {
        Some(if name == part {
            data[..cut(&data)].to_vec()
        } else {
            data
        })
    });
    restore(store, copy, dest)
}

/// A refused restore: `code`, one error line containing `needle`, no `pg_control` in place.
fn assert_refused(out: &Ran, code: i32, needle: &str, dest: &FsPath) {
    let err = stderr(out);
    assert_eq!(out.exit_code(), Some(code), "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        !dest.join("global/pg_control").exists(),
        "an incomplete restore looks startable"
    );
}

/// A small PostgreSQL 15 server to take split backups of (no archiving: the restored copies
/// are never started, only checked).
fn source() -> (tempfile::TempDir, Pg) {
    let dir = temp_dir();
    let mut pg = Pg::init(dir.path());
    pg.start();
    pg.pgbench(&["-i", "-s", "1", "-q"]);
    (dir, pg)
}

fn backup_with(tool: PathBuf, store: &Store, pg: &Pg, flags: &[&str]) -> String {
    store
        .command(tool)
        .args(flags)
        .args(["--immediate-checkpoint", "-U", "postgres", "-h"])
        .arg(pg.socket_dir())
        .args([&store.url, "pg"])
        .code(0);
    let bucket = Bucket::new(store);
    let dir = Path::from(format!("{}/pg/base", bucket.prefix));
    let listing = block_on(bucket.storage.list_all(&dir)).unwrap();
    let ids: Vec<String> = listing
        .iter()
        .filter(|m| m.location.filename() == Some("backup.info"))
        .map(|m| m.location.as_ref().rsplit('/').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

/// Faults any split backup must be refused for: a part missing in between (seen in the
/// listing, so refused before anything is downloaded) and a missing last part (no
/// `backup_label`); the untouched backup restores.
fn missing_parts_are_refused(store: &Store, id: &str, dir: &FsPath) {
    let bucket = Bucket::new(store);
    let parts = data_parts(&bucket.names(id));
    assert!(parts.len() >= 3, "the backup was not split: {parts:?}");

    let dest = dir.join("whole");
    restore(store, id, &dest).code(0);
    assert!(dest.join("global/pg_control").is_file());
    assert!(dest.join("backup_label").is_file());

    let second = parts[1].clone();
    bucket.copy_backup(id, "20300101T000003", |name, data| {
        (name != second).then_some(data)
    });
    let dest = dir.join("gap");
    let out = restore(store, "20300101T000003", &dest);
    let stem = second.split('.').next().unwrap();
    assert_refused(
        &out,
        1,
        &format!("20300101T000003/{stem}.* for server pg"),
        &dest,
    );
    assert!(!dest.exists(), "a restore with a gap started downloading");

    let last = parts.last().unwrap().clone();
    bucket.copy_backup(id, "20300101T000004", |name, data| {
        (name != last).then_some(data)
    });
    let dest = dir.join("no-last");
    let out = restore(store, "20300101T000004", &dest);
    assert_refused(
        &out,
        1,
        "Backup 20300101T000004 is incomplete: no archive of it holds backup_label",
        &dest,
    );
}

/// Our uncompressed split backup on `file://`: parts cut at a member boundary and inside the
/// end-of-archive marker, a part missing in between, the last part missing.
#[test]
fn file_split_backup_cut_or_missing_parts_are_refused() {
    let store = Store::new(Provider::File).unwrap();
    let (dir, pg) = source();
    let id = backup_with(ours("barman-cloud-backup"), &store, &pg, &["-S", "1MB"]);
    let bucket = Bucket::new(&store);
    let parts = data_parts(&bucket.names(&id));
    assert_eq!(parts[0], "data.tar");

    // data.tar cut where a member starts: every byte read is good, the rest of it is gone.
    let dest = dir.path().join("cut-member");
    let out = restore_cut(
        &store,
        (&id, "20300101T000001"),
        "data.tar",
        &dest,
        |data| {
            let (starts, _) = member_starts(data);
            starts[starts.len() / 2]
        },
    );
    let needle = "data.tar': the tar archive ends without its end-of-archive marker";
    assert_refused(&out, 4, needle, &dest);

    // data_0001.tar cut inside its end-of-archive marker: after the first zero block.
    let dest = dir.path().join("cut-marker");
    let out = restore_cut(
        &store,
        (&id, "20300101T000002"),
        "data_0001.tar",
        &dest,
        |data| member_starts(data).1 + 512,
    );
    let needle = "data_0001.tar': the tar archive ends without";
    assert_refused(&out, 4, needle, &dest);

    missing_parts_are_refused(&store, &id, dir.path());
    drop(pg);
}

/// Barman's snappy split backup on S3: a part cut at a snappy chunk boundary that is also a
/// member boundary decompresses cleanly (snappy has no end marker), so only the tar end
/// marker tells; then the missing parts, as on `file://`.
#[test]
fn s3_barman_snappy_split_backup_cut_or_missing_parts_are_refused() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let Some(tool) = barman("barman-cloud-backup") else {
        return;
    };
    let (dir, pg) = source();
    let id = backup_with(tool, &store, &pg, &["--snappy", "-S", "1MB"]);
    let bucket = Bucket::new(&store);

    // The first part with a chunk that ends where a member starts.
    let cut = data_parts(&bucket.names(&id)).into_iter().find_map(|part| {
        let stream = bucket.get(&id, &part);
        let (starts, _) = member_starts(&unsnappy(&stream));
        snappy_chunk_ends(&stream)
            .into_iter()
            .find(|(_, out)| *out > 0 && starts.contains(out))
            .map(|(at, _)| (part, at))
    });
    let (part, at) = cut.expect("no snappy chunk of the backup ends at a member boundary");
    let dest = dir.path().join("cut-snappy");
    let out = restore_cut(&store, (&id, "20300101T000001"), &part, &dest, |_| at);
    let needle = format!("{part}': the tar archive ends without its end-of-archive marker");
    assert_refused(&out, 4, &needle, &dest);

    missing_parts_are_refused(&store, &id, dir.path());
    drop(pg);
}

/// Where a command's program is: ours or Barman's.
type Tool = fn(&str) -> PathBuf;

/// A data archive as Python's tarfile writes it, with the members a restore requires.
fn small_data_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in [
        ("PG_VERSION", &b"15\n"[..]),
        ("global/pg_control", &[7u8; 8192][..]),
        ("backup_label", &b"START WAL LOCATION: 0/4000028\n"[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        builder.append_data(&mut h, name, content).unwrap();
    }
    let mut tar = builder.into_inner().unwrap();
    tar.resize(tar.len().next_multiple_of(10240), 0);
    tar
}

/// Empty, cut and byte-order-marked `backup.info` files: restore exits 4 for the first two
/// and 1 for the last, list and show as Barman (0 and 0, 1 and 1); on S3 Barman's own tools
/// give the same codes on the same objects, but for a file cut inside its last line, which
/// Barman restores.
#[test]
fn damaged_backup_info_exit_codes_match_barman() {
    let fixture = FsPath::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/backup_info/done-tablespace-named.info");
    let mut whole = String::new();
    for line in std::fs::read_to_string(fixture).unwrap().lines() {
        let line = if line.starts_with("tablespaces=") {
            "tablespaces=None"
        } else {
            line
        };
        whole.push_str(line);
        whole.push('\n');
    }
    let at = |key: &str| whole.find(key).unwrap();
    // The text, then the exit codes of list, show and restore: ours, then Barman's.
    let cases = [
        (String::new(), [0, 0, 4], [0, 0, 4]),
        (whole[..at("end_offset=")].to_string(), [0, 0, 4], [0, 0, 4]),
        (
            whole[..at("status=DONE") + 9].to_string(),
            [0, 0, 4],
            [0, 0, 4],
        ),
        (
            whole[..at("xlog_segment_size=") + 20].to_string(),
            [0, 0, 4],
            [0, 0, 0],
        ),
        (format!("\u{feff}{whole}"), [1, 1, 1], [1, 1, 1]),
        (whole.clone(), [0, 0, 0], [0, 0, 0]),
    ];
    let stores: Vec<Store> = [Provider::File, Provider::S3]
        .into_iter()
        .filter_map(Store::new)
        .collect();
    let dir = temp_dir();
    for (s, store) in stores.iter().enumerate() {
        let bucket = Bucket::new(store);
        for (i, (text, ours_codes, barman_codes)) in cases.iter().enumerate() {
            // One backup per server, so that the listing shows only it.
            let server = format!("srv{i}");
            let id = format!("2030010{}T000000", i + 1);
            for (name, data) in [
                ("backup.info", text.as_bytes().to_vec()),
                ("data.tar", small_data_tar()),
            ] {
                bucket.put_at(&format!("{server}/base/{id}/{name}"), data);
            }
            let mut tools: Vec<(Tool, &[i32; 3])> = vec![(ours, ours_codes)];
            if store.file_root().is_none() && barman("barman-cloud-restore").is_some() {
                tools.push((|name| barman(name).unwrap(), barman_codes));
            }
            for (t, (tool, expected)) in tools.into_iter().enumerate() {
                let dest = dir.path().join(format!("{s}-{i}-{t}"));
                let codes = [
                    store
                        .command(tool("barman-cloud-backup-list"))
                        .args([&store.url, &server]),
                    store
                        .command(tool("barman-cloud-backup-show"))
                        .args([&store.url, &server, &id]),
                    store
                        .command(tool("barman-cloud-restore"))
                        .args([&store.url, &server, &id])
                        .arg(&dest),
                ]
                .map(|cmd| cmd.ran().exit_code().unwrap());
                assert_eq!(
                    &codes, expected,
                    "case {i} ({text:.40?}), tool {t}, {}",
                    store.url
                );
                if t == 0 && expected[2] != 0 {
                    assert!(!dest.exists(), "case {i}: the restore started");
                }
            }
        }
    }
    assert!(!stores.is_empty());
}
