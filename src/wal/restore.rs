//! `restore_command`: fetch one WAL file, whatever its compression, and optionally prefetch the
//! next ones into a spool directory (Barman 3.19's `--parallel` and `--spool-dir`).
//!
//! The requested file is found with one listing of its directory, which also names the
//! candidates to prefetch. Every file lands through [`crate::durable`], so neither PostgreSQL
//! nor a later call that takes a file from the spool can read one still being written, and
//! only once decoded without error and, for a segment, of a segment's size: a damaged
//! object fails the call with an exit status that stops recovery.

use std::io::{self, Read};
use std::path::{Path as FsPath, PathBuf};

use object_store::path::Path;

use crate::compress::Compression;
use crate::durable;
use crate::error::{Error, Result};
use crate::layout::{Layout, parse_wal_object};
use crate::postgres::wal_segment;
use crate::postgres::{WalKind, WalName};
use crate::storage::{Storage, blocking};
use crate::task;

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// `--no-partial`: never serve a `.partial` file for a missing segment.
    pub no_partial: bool,
    /// `-p/--parallel`: how many files to fetch in all, the requested one included.
    pub parallel: usize,
    /// `--spool-dir`.
    pub spool_dir: PathBuf,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            no_partial: false,
            parallel: 0,
            spool_dir: PathBuf::from("/var/tmp/walrestore"),
        }
    }
}

/// Where the delivered file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// Taken from the spool, with no request to the store.
    FromSpool,
    /// Downloaded from this key; `prefetched` more files went to the spool.
    Downloaded {
        /// The key it came from.
        key: String,
        /// How many more files went to the spool.
        prefetched: usize,
    },
}

/// Restores `wal_name` to `dest`.
///
/// # Errors
/// [`Error::InvalidWalName`], [`Error::WalNotFound`] (PostgreSQL's end of archive),
/// [`Error::WalDamaged`] for an object that must not be replayed, storage and I/O errors
/// otherwise. The spool never fails a call: at worst the file is downloaded.
pub async fn restore(
    storage: &Storage,
    layout: &Layout,
    wal_name: &str,
    dest: &FsPath,
    options: &RestoreOptions,
) -> Result<Restored> {
    let wal = WalName::parse(wal_name)?;
    let spool = Spool::of(&options.spool_dir, storage, layout);
    if spool.take(&wal, dest).await {
        return Ok(Restored::FromSpool);
    }

    let mut keys: Vec<Path> = storage
        .list_dir(&layout.wal_dir(&wal))
        .await?
        .into_iter()
        .map(|m| m.location)
        .collect();
    // Barman takes the first match in byte order of the keys; so do we.
    keys.sort();
    let (requested, mut extra) = choose(&wal, &keys, options);
    let Some((key, compression)) = requested else {
        let server = layout.server_name();
        return Err(Error::WalNotFound {
            name: wal.to_string(),
            server,
        });
    };

    // What another call (of this or another standby on the same source) has spooled
    // already is not fetched again.
    extra.retain(|(name, _, _)| !spool.entry(name).exists());
    if !extra.is_empty() && !spool.create() {
        extra.clear();
    }
    let prefetches = extra.into_iter().map(|(name, key, compression)| {
        let dest = spool.entry(&name);
        async move {
            if let Err(e) = fetch(storage, &key, compression, &dest).await {
                // A failed prefetch only costs a later download; the requested file matters.
                tracing::warn!("prefetch of {name} failed: {e}");
                return false;
            }
            true
        }
    });
    let (main, prefetched) = tokio::join!(
        fetch(storage, &key, compression, dest),
        futures::future::join_all(prefetches)
    );
    main?;
    Ok(Restored::Downloaded {
        key: key.to_string(),
        prefetched: prefetched.into_iter().filter(|ok| *ok).count(),
    })
}

/// The part of the spool directory that belongs to one source: a subdirectory named after
/// the source URL, its endpoint and the server name. The default spool directory is shared
/// by every standby of a host, and a segment name says nothing of the cluster it belongs
/// to: only an entry prefetched from the same source may answer a call.
///
/// Entries appear by rename once whole and checked, and leave by rename, so processes and
/// tasks sharing the directory each either get a whole file or none (and then download it).
struct Spool {
    dir: PathBuf,
}

impl Spool {
    fn of(root: &FsPath, storage: &Storage, layout: &Layout) -> Spool {
        let source = format!("{}\n{}", storage.destination(), layout.server_name());
        let id = twox_hash::XxHash3_128::oneshot(source.as_bytes());
        Spool {
            dir: root.join(format!("{id:032x}")),
        }
    }

    fn entry(&self, name: &WalName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    /// Creates the directory (concurrent creators all succeed); `false`, with a warning,
    /// when it cannot be used.
    fn create(&self) -> bool {
        match std::fs::create_dir_all(&self.dir) {
            Ok(()) => true,
            Err(e) => {
                let dir = self.dir.display();
                tracing::warn!("not prefetching: cannot create spool directory '{dir}': {e}");
                false
            }
        }
    }

    /// Moves the spooled `name` to `dest`; `false` when there is none, or another process
    /// took it first.
    async fn take(&self, name: &WalName, dest: &FsPath) -> bool {
        let (from, to) = (self.entry(name), dest.to_path_buf());
        let moved = task::blocking("taking the WAL file from the spool", move || {
            durable::move_file(&from, &to)
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        match moved {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                let entry = self.entry(name);
                tracing::warn!(
                    "cannot take '{}' from the spool: {e}; downloading it",
                    entry.display()
                );
                false
            }
        }
    }
}

type Candidate = (Path, Option<Compression>);
type Prefetch = (WalName, Path, Option<Compression>);

/// Picks the requested file and, with `parallel > 1`, the files to prefetch: the valid WAL
/// names sorting after it, up to `parallel` files in all.
fn choose(
    wal: &WalName,
    keys: &[Path],
    options: &RestoreOptions,
) -> (Option<Candidate>, Vec<Prefetch>) {
    let partial = format!("{wal}.partial");
    let usable = |name: &WalName| match name.kind() {
        WalKind::Backup => false,
        WalKind::Partial => !options.no_partial,
        _ => true,
    };
    let mut requested: Option<Candidate> = None;
    let mut extra: Vec<Prefetch> = Vec::new();
    for key in keys {
        let Some((name, compression)) = parse_wal_object(key) else {
            continue;
        };
        if !usable(&name) {
            continue;
        }
        let is_requested = name.as_str() == wal.as_str() || name.as_str() == partial;
        match &requested {
            None if is_requested => requested = Some((key.clone(), compression)),
            // Only whole segments are prefetched: PostgreSQL never asks for a .partial under
            // the plain name, so spooling one could later serve the wrong bytes.
            Some(_)
                if !is_requested
                    && wal.kind() == WalKind::Segment
                    && name.kind() == WalKind::Segment
                    && extra.len() + 1 < options.parallel
                    && !extra.iter().any(|(n, _, _)| n == &name) =>
            {
                extra.push((name, key.clone(), compression));
            }
            _ => {}
        }
    }
    (requested, extra)
}

/// Downloads one object and writes it, decompressed, to `dest` atomically, as it arrives:
/// a segment is never held whole in memory. The file appears only once complete, decoded,
/// checked and synced; a corrupt, short or broken-off object leaves nothing behind.
async fn fetch(
    storage: &Storage,
    key: &Path,
    compression: Option<Compression>,
    dest: &FsPath,
) -> Result<()> {
    let segment = parse_wal_object(key).is_some_and(|(name, _)| name.kind() == WalKind::Segment);
    let (_, body) = storage.stream(key).await?;
    let (feeder, reader) = blocking::channel(FETCH_CHUNKS);
    let (key, dest) = (key.to_string(), dest.to_path_buf());
    let write = task::blocking("decoding the WAL file", move || {
        write_decoded(reader, compression, segment, &key, &dest)
    });
    let downloaded = feeder.feed(body, |_| {}).await;
    let written = write.await?;
    // A broken download also fails the decoding: report the download.
    downloaded?;
    written
}

/// Chunks of a WAL download held between the network and the writing thread.
const FETCH_CHUNKS: usize = 8;

/// Decodes `reader` into `dest`; a `segment` must also have a segment's size.
fn write_decoded(
    reader: blocking::BlockingReader,
    compression: Option<Compression>,
    segment: bool,
    key: &str,
    dest: &FsPath,
) -> Result<()> {
    let mut input =
        decoding(reader, compression).map_err(Error::io("start decompressing WAL file", dest))?;
    // Why the object was refused, as against a failed write.
    let mut refused = None;
    let written = durable::write_atomically(dest, |file| {
        let mut buf = vec![0u8; 1 << 20];
        let checked = match durable::copy_into(&mut input, file, &mut buf) {
            Ok(size) => input.check(size, segment),
            Err(durable::CopyError::Write(e)) => return Err(e),
            Err(durable::CopyError::Read(e)) => Err(format!("cannot decompress it: {e}")),
        };
        checked.map_err(|reason| {
            refused = Some(reason);
            io::Error::other("refused")
        })
    });
    match (written, refused) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(reason)) => Err(Error::WalDamaged {
            key: key.to_string(),
            reason,
        }),
        (Err(e), None) => Err(Error::io("write WAL file", dest)(e)),
    }
}

/// The decoded stream of a WAL object, keeping its page header for [`Head::check`].
fn decoding<'a>(
    reader: impl Read + 'a,
    compression: Option<Compression>,
) -> io::Result<Head<Box<dyn Read + 'a>>> {
    let inner: Box<dyn Read + 'a> = match compression {
        Some(c) => crate::compress::decoder(c, reader)?,
        None => Box::new(reader),
    };
    Ok(Head {
        inner,
        head: Vec::with_capacity(wal_segment::HEADER_LEN),
    })
}

/// Downloads and decodes one archived WAL object to its end without keeping it, with the
/// checks a restore makes (a segment must decode to the size its page header states).
/// Returns the decoded size.
///
/// # Errors
/// [`Error::WalDamaged`] for an object a restore would refuse, storage errors otherwise.
pub async fn verify_object(storage: &Storage, key: &Path) -> Result<u64> {
    let Some((name, compression)) = parse_wal_object(key) else {
        return Err(Error::Input(format!(
            "'{key}' is not the key of a WAL file"
        )));
    };
    let segment = name.kind() == WalKind::Segment;
    let (_, body) = storage.stream(key).await?;
    let (feeder, reader) = blocking::channel(FETCH_CHUNKS);
    let key_text = key.to_string();
    let decode = task::blocking("decoding the WAL file", move || {
        let damaged = |reason| Error::WalDamaged {
            key: key_text.clone(),
            reason,
        };
        let mut input =
            decoding(reader, compression).map_err(|e| damaged(format!("cannot decode it: {e}")))?;
        let size = io::copy(&mut input, &mut io::sink())
            .map_err(|e| damaged(format!("cannot decompress it: {e}")))?;
        input.check(size, segment).map_err(damaged)?;
        Ok(size)
    });
    let downloaded = feeder.feed(body, |_| {}).await;
    let decoded = decode.await?;
    downloaded?;
    decoded
}

/// A reader that keeps the first bytes it passes on: a segment's page header.
struct Head<R> {
    inner: R,
    head: Vec<u8>,
}

impl<R> Head<R> {
    /// Whether an object that decoded to `size` bytes is whole: for a `segment`, the size its
    /// page header states.
    fn check(&self, size: u64, segment: bool) -> Result<(), String> {
        if segment {
            wal_segment::check_size(&self.head, size)
        } else {
            Ok(())
        }
    }
}

impl<R: Read> Read for Head<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = wal_segment::HEADER_LEN - self.head.len();
        self.head.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<Path> {
        names
            .iter()
            .map(|n| Path::from(format!("pg/wals/0000000100000000/{n}")))
            .collect()
    }

    #[test]
    fn picks_the_first_match_and_prefetches_following_segments() {
        let wal = WalName::parse("000000010000000000000004").unwrap();
        let k = keys(&[
            "000000010000000000000003.gz",
            "000000010000000000000004.00000028.backup.gz",
            "000000010000000000000004.gz",
            "000000010000000000000005.gz",
            "000000010000000000000006",
            "000000010000000000000007.gz",
        ]);
        let opts = RestoreOptions {
            parallel: 3,
            ..Default::default()
        };
        let (requested, extra) = choose(&wal, &k, &opts);
        assert_eq!(requested.unwrap().1, Some(Compression::Gzip));
        let names: Vec<_> = extra.iter().map(|(n, _, _)| n.to_string()).collect();
        assert_eq!(
            names,
            ["000000010000000000000005", "000000010000000000000006"]
        );
    }

    #[test]
    fn a_partial_stands_in_for_a_missing_segment_unless_refused() {
        let wal = WalName::parse("00000001000000000000000C").unwrap();
        let k = keys(&["00000001000000000000000C.partial"]);
        assert!(choose(&wal, &k, &RestoreOptions::default()).0.is_some());
        let no_partial = RestoreOptions {
            no_partial: true,
            ..Default::default()
        };
        assert!(choose(&wal, &k, &no_partial).0.is_none());
    }

    #[test]
    fn each_source_and_server_has_its_own_spool() {
        use crate::storage::{Location, Provider, StorageOptions};
        let stores = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let dir = stores.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("file://{}", dir.display());
            let location = Location::parse(&url, Provider::AwsS3).unwrap();
            Storage::open(&location, &StorageOptions::default()).unwrap()
        };
        let root = FsPath::new("/var/tmp/walrestore");
        let dir = |storage: &Storage, server: &str| {
            Spool::of(root, storage, &Layout::new("p", server)).dir
        };
        let (a, b) = (open("a"), open("b"));
        assert_eq!(dir(&a, "pg"), dir(&open("a"), "pg"));
        assert_ne!(dir(&a, "pg"), dir(&b, "pg"));
        assert_ne!(dir(&a, "pg"), dir(&a, "pg2"));
        assert_eq!(dir(&a, "pg").parent(), Some(root));
    }

    #[test]
    fn backup_labels_are_never_restored() {
        let wal = WalName::parse("000000010000000000000004.00000028.backup").unwrap();
        let k = keys(&["000000010000000000000004.00000028.backup"]);
        assert!(choose(&wal, &k, &RestoreOptions::default()).0.is_none());
    }

    #[tokio::test]
    async fn an_archived_segment_restores_byte_for_byte() {
        use super::super::{ArchiveOptions, Archived, archive};
        let storage = Storage::in_memory();
        let layout = Layout::new("", "pg");
        let dir = tempfile::tempdir().unwrap();
        let name = "000000010000000000000004";
        let segment: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join(name), &segment).unwrap();
        let options = ArchiveOptions {
            compression: Some(Compression::Gzip),
            ..Default::default()
        };
        let archived = archive(&storage, &layout, &dir.path().join(name), &options).await;
        let Archived::Uploaded(key) = archived.unwrap() else {
            panic!("nothing uploaded");
        };
        let dest = dir.path().join("RECOVERYXLOG");
        let options = RestoreOptions {
            spool_dir: dir.path().join("spool"),
            ..Default::default()
        };
        let restored = restore(&storage, &layout, name, &dest, &options)
            .await
            .unwrap();
        assert_eq!(restored, Restored::Downloaded { key, prefetched: 0 });
        assert_eq!(std::fs::read(&dest).unwrap(), segment);
    }
}
