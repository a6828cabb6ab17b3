//! `archive_command`: compress one WAL file and store it, never overwriting a different one.
//!
//! Barman overwrites silently. We look first (one listing of the WAL's directory, overlapped
//! with compression, or with all but the end of an uncompressed upload): identical content
//! already stored under any suffix means success with nothing stored, so PostgreSQL's
//! retries after a lost acknowledgement are cheap (an upload started beside the listing has
//! sent what it could in the listing's time, for nothing); different content means exit 1
//! and the stored object untouched, as PostgreSQL's documentation asks of an
//! `archive_command`. The upload itself is a conditional create, so two servers that both
//! found nothing (two primaries after a split brain) cannot both store the name: the loser
//! compares against the winner's object, as if the listing had found it.

use std::path::Path as FsPath;
use std::time::Duration;

use bytes::Bytes;

use crate::buffer;
use crate::compress::{self, Compression, Level};
use crate::error::{Error, Result};
use crate::layout::{Layout, parse_wal_object};
use crate::postgres::{InvalidWalName, WalKind, WalName};
use crate::storage::{Created, Storage, WriteOptions};
use crate::task;

/// How to archive.
#[derive(Debug, Clone, Default)]
pub struct ArchiveOptions {
    /// The codec, or none.
    pub compression: Option<Compression>,
    /// `--compression-level`.
    pub level: Option<Level>,
    /// Tags for every object.
    pub tags: Vec<(String, String)>,
    /// Tags that replace `tags` on `.history` files, when given.
    pub history_tags: Option<Vec<(String, String)>>,
}

/// What archiving did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Archived {
    /// The object was uploaded to this key.
    Uploaded(String),
    /// Identical content was already stored at this key; nothing was stored.
    AlreadyStored(String),
}

/// Validates the name of the file at `wal_path` before anything else happens.
///
/// # Errors
/// [`Error::InvalidWalName`] when the file name is not a WAL name.
pub fn wal_name_of(wal_path: &FsPath) -> Result<WalName> {
    let name = wal_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(WalName::parse(&name).map_err(|_| InvalidWalName {
        name: wal_path.display().to_string(),
    })?)
}

/// Archives the WAL file at `wal_path`.
///
/// # Errors
/// [`Error::InvalidWalName`], [`Error::Io`] for an unreadable file, [`Error::WalConflict`]
/// when different content is already archived, storage errors otherwise.
pub async fn archive(
    storage: &Storage,
    layout: &Layout,
    wal_path: &FsPath,
    options: &ArchiveOptions,
) -> Result<Archived> {
    let wal = wal_name_of(wal_path)?;
    let key = layout.wal_key(&wal, options.compression);

    // Issue #17: an uncompressed archive only reads, and says so.
    let action = match options.compression {
        Some(_) => "read and compress WAL file",
        None => "read WAL file",
    };
    let tags = match (&options.history_tags, wal.kind()) {
        (Some(history), WalKind::History) => history.clone(),
        _ => options.tags.clone(),
    };
    let write = WriteOptions { tags };
    // Only a listing that finds nothing lets a copy complete.
    let (found_nothing, proceed) = tokio::sync::oneshot::channel();
    let listing = async {
        let stored = stored_copies(storage, layout, &wal).await;
        let _ = found_nothing.send(matches!(&stored, Ok(stored) if stored.is_empty()));
        stored
    };
    // Compressed as it is read: only the (usually much smaller) result is held in memory. A
    // store that copies an uncompressed file itself, in pieces, starts with the listing (S3
    // over plain HTTP sends all but the last chunk meanwhile; `file://` waits for it):
    // reading 16 MiB into a fresh buffer first cost more than the listing.
    let prepare = async {
        if options.compression.is_none() && storage.copies_files() {
            let proceed = async { proceed.await.unwrap_or(false) };
            let created = storage.create_copy(&key, wal_path, action, &write, proceed);
            return Ok(Prepared::Copied(created.await));
        }
        let path = wal_path.to_path_buf();
        let (compression, level) = (options.compression, options.level);
        let what = match compression {
            Some(_) => "compressing the WAL file",
            None => "reading the WAL file",
        };
        let encoded = task::blocking(what, move || match compression {
            Some(c) => compress::compress_file(c, level, &path),
            None => buffer::read_file(&path),
        });
        let encoded = encoded.await?.map_err(Error::io(action, wal_path))?;
        Ok::<_, Error>(Prepared::Encoded(Bytes::from(encoded)))
    };
    let wal_dir = layout.wal_dir(&wal);
    let (stored, prepared, ()) = tokio::join!(
        listing,
        prepare,
        // Uploads of this directory killed mid-write (file:// only). A WAL file is written
        // in one go: one idle for 15 minutes has no writer left.
        storage.sweep_staging(&wal_dir, Duration::from_secs(15 * 60))
    );
    let prepared = prepared?;

    let stored = stored?;
    if !stored.is_empty() {
        let raw = read_raw(wal_path).await?;
        return compare_with_stored(storage, layout, &wal, &raw, stored).await;
    }

    let created = match prepared {
        Prepared::Copied(created) => created?,
        Prepared::Encoded(data) => storage.create(&key, data, &write).await?,
    };
    match created {
        Created::Stored => Ok(Archived::Uploaded(key.to_string())),
        // Another writer stored this name between our listing and our upload: the same
        // comparison as for a copy the listing had found decides.
        Created::Exists => {
            let raw = read_raw(wal_path).await?;
            compare_with_stored(
                storage,
                layout,
                &wal,
                &raw,
                vec![(key, options.compression)],
            )
            .await
        }
        // Only a listing that found something or failed calls the copy off, and both
        // returned above.
        Created::CalledOff => Err(Error::Storage {
            action: "upload",
            key: key.to_string(),
            source: "the upload was called off".into(),
        }),
    }
}

/// A WAL file made ready for the store while the listing was under way.
enum Prepared {
    /// Copied by the store itself, as far as the listing allowed.
    Copied(Result<Created>),
    /// Compressed (or read) into memory, to upload once the listing has found nothing.
    Encoded(Bytes),
}

async fn read_raw(wal_path: &FsPath) -> Result<Bytes> {
    let path = wal_path.to_path_buf();
    task::blocking("reading the WAL file", move || buffer::read_file(&path))
        .await?
        .map(Bytes::from)
        .map_err(Error::io("read WAL file", wal_path))
}

/// The keys already holding `wal`, under any compression suffix.
async fn stored_copies(
    storage: &Storage,
    layout: &Layout,
    wal: &WalName,
) -> Result<Vec<(object_store::path::Path, Option<Compression>)>> {
    let listing = storage.list_dir(&layout.wal_dir(wal)).await?;
    Ok(listing
        .into_iter()
        .filter_map(|meta| {
            let (name, compression) = parse_wal_object(&meta.location)?;
            (name.as_str() == wal.as_str()).then_some((meta.location, compression))
        })
        .collect())
}

async fn compare_with_stored(
    storage: &Storage,
    layout: &Layout,
    wal: &WalName,
    raw: &Bytes,
    stored: Vec<(object_store::path::Path, Option<Compression>)>,
) -> Result<Archived> {
    let mut first_identical = None;
    for (key, compression) in stored {
        let content = storage.get(&key).await?;
        let content =
            match compression {
                Some(c) => Bytes::from(compress::decompress(c, &content).map_err(|source| {
                    Error::Corrupt {
                        key: key.to_string(),
                        source,
                    }
                })?),
                None => content,
            };
        if content != *raw {
            let server = layout.server_name();
            return Err(Error::WalConflict {
                name: wal.to_string(),
                key: key.to_string(),
                server,
            });
        }
        first_identical.get_or_insert(key.to_string());
    }
    Ok(Archived::AlreadyStored(first_identical.unwrap_or_default()))
}
