//! `restore_command`: fetch one WAL file, whatever its compression, and optionally prefetch the
//! next ones into a spool directory (Barman 3.19's `--parallel` and `--spool-dir`).
//!
//! The requested file is found with one listing of its directory, which also names the
//! candidates to prefetch. Every file lands through [`crate::durable`], so neither PostgreSQL
//! nor a later call that takes a file from the spool can read one still being written.

use std::io::{self, Read};
use std::path::{Path as FsPath, PathBuf};

use object_store::path::Path;

use crate::compress::Compression;
use crate::durable;
use crate::error::{Error, Result};
use crate::layout::{Layout, parse_wal_object};
use crate::storage::{Storage, blocking};
use crate::wal::{WalKind, WalName};

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
    Downloaded { key: String, prefetched: usize },
}

/// Restores `wal_name` to `dest`.
///
/// # Errors
/// [`Error::InvalidWalName`], [`Error::WalNotFound`] (PostgreSQL's end of archive),
/// [`Error::Spool`] for spool-directory problems, storage and I/O errors otherwise.
pub async fn restore(
    storage: &Storage,
    layout: &Layout,
    wal_name: &str,
    dest: &FsPath,
    options: &RestoreOptions,
) -> Result<Restored> {
    let wal = WalName::parse(wal_name)?;
    let spooled = options.spool_dir.join(wal.as_str());
    if spooled.exists() {
        let (from, to) = (spooled.clone(), dest.to_path_buf());
        tokio::task::spawn_blocking(move || durable::move_file(&from, &to))
            .await
            .expect("spool task panicked")
            .map_err(|source| Error::Spool {
                path: spooled,
                source,
            })?;
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
    let (requested, extra) = choose(&wal, &keys, options);
    let Some((key, compression)) = requested else {
        let server = layout.server_name();
        return Err(Error::WalNotFound {
            name: wal.to_string(),
            server,
        });
    };

    if !extra.is_empty() {
        std::fs::create_dir_all(&options.spool_dir).map_err(|source| Error::Spool {
            path: options.spool_dir.clone(),
            source,
        })?;
    }
    let prefetches = extra.into_iter().map(|(name, key, compression)| {
        let dest = options.spool_dir.join(name.as_str());
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
/// a segment is never held whole in memory. The file appears only once complete, decoded
/// and synced; a corrupt or broken-off object leaves nothing behind.
async fn fetch(
    storage: &Storage,
    key: &Path,
    compression: Option<Compression>,
    dest: &FsPath,
) -> Result<()> {
    let (_, body) = storage.stream(key).await?;
    let (feeder, reader) = blocking::channel(FETCH_CHUNKS);
    let (key, dest) = (key.to_string(), dest.to_path_buf());
    let write =
        tokio::task::spawn_blocking(move || write_decoded(reader, compression, &key, &dest));
    let downloaded = feeder.feed(body, |_| {}).await;
    let written = write.await.expect("restore task panicked");
    // A broken download also fails the decoding: report the download.
    downloaded?;
    written
}

/// Chunks of a WAL download held between the network and the writing thread.
const FETCH_CHUNKS: usize = 8;

fn write_decoded(
    reader: blocking::BlockingReader,
    compression: Option<Compression>,
    key: &str,
    dest: &FsPath,
) -> Result<()> {
    let corrupt = |source| Error::Corrupt {
        key: key.to_string(),
        source,
    };
    let mut input: Box<dyn Read> = match compression {
        Some(c) => crate::compress::decoder(c, reader).map_err(corrupt)?,
        None => Box::new(reader),
    };
    // Reading (decoding) and writing fail differently: remember which one did.
    let mut decode_error = None;
    let written = durable::write_atomically(dest, |file| {
        let mut buf = vec![0u8; 1 << 20];
        match durable::copy_into(&mut input, file, &mut buf) {
            Ok(_) => Ok(()),
            Err(durable::CopyError::Write(e)) => Err(e),
            Err(durable::CopyError::Read(e)) => {
                let failed = io::Error::new(e.kind(), e.to_string());
                decode_error = Some(e);
                Err(failed)
            }
        }
    });
    match (written, decode_error) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(e)) => Err(corrupt(e)),
        (Err(e), None) => Err(Error::io("write WAL file", dest)(e)),
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
    fn backup_labels_are_never_restored() {
        let wal = WalName::parse("000000010000000000000004.00000028.backup").unwrap();
        let k = keys(&["000000010000000000000004.00000028.backup"]);
        assert!(choose(&wal, &k, &RestoreOptions::default()).0.is_none());
    }
}
