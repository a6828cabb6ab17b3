//! A server's catalog as stored: its backups (every directory under `<server>/base/` holding a
//! `backup.info`), their objects and keep annotations, and the files of its WAL archive.
//!
//! Loading follows `CloudBackupCatalog.get_backup_list`: a directory without `backup.info` is
//! not a backup, and one whose `backup.info` cannot be read is skipped with a warning and
//! remembered as unreadable (delete and retention refuse to work around such holes), except
//! that a key Barman does not know (a byte-order mark makes one of the first) stops the load,
//! as it stops Barman. We part from Barman in two respects. One recursive listing of `base/`
//! finds the backups, their objects and their annotations at once, where Barman lists
//! directories, then annotations, then each backup's directory again before deleting it; and
//! a lost connection or a missing bucket stops the load, where Barman would report every
//! backup as unreadable.

use std::collections::BTreeMap;

use futures::StreamExt;
use object_store::path::Path;

use super::BackupInfo;
use super::keep::{Keep, read_keep};
use super::select::{self, Entry, ResolveError};
use crate::error::{Error, Result};
use crate::layout::{BACKUP_INFO, BackupId, Layout, parse_wal_object};
use crate::postgres::WalName;
use crate::storage::Storage;

/// How many objects (`backup.info`, annotations) are fetched at once: enough to hide the
/// round trip on a big catalog without flooding the store.
const CONCURRENT_READS: usize = 16;

/// The backups of one server, in ID order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The server name, for messages.
    pub server: String,
    /// Every readable backup, ordered by ID (the directory name, compared as a string).
    pub backups: Vec<Entry>,
    /// IDs whose `backup.info` exists but cannot be read.
    pub unreadable: Vec<BackupId>,
    /// The objects under each backup directory, sorted, as the listing found them.
    pub objects: BTreeMap<BackupId, Vec<Path>>,
    /// The backups that have a keep annotation, with its first line once read
    /// ([`Catalog::read_keeps`]).
    keeps: BTreeMap<BackupId, Option<String>>,
}

impl Catalog {
    /// Lists and reads every backup of `layout`'s server (keep annotations are only found;
    /// [`Catalog::read_keeps`] reads them).
    ///
    /// # Errors
    /// Storage errors that make the whole listing meaningless (connection, missing bucket).
    pub async fn load(storage: &Storage, layout: &Layout) -> Result<Catalog> {
        let base = layout.base_dir();
        let mut keys: Vec<Path> = storage
            .list_all(&base)
            .await?
            .into_iter()
            .map(|meta| meta.location)
            .collect();
        keys.sort();
        let mut catalog = Catalog {
            server: layout.server_name(),
            ..Catalog::default()
        };
        let mut ids = Vec::new();
        let base_dir = format!("{base}/");
        for key in keys {
            let Some(relative) = key.as_ref().strip_prefix(&base_dir) else {
                continue;
            };
            let parts: Vec<&str> = relative.split('/').collect();
            // Barman finds annotations by shape: `.../<id>/annotations/keep`.
            if let [.., id, "annotations", "keep"] = parts.as_slice() {
                catalog.keeps.insert(BackupId::new(*id), None);
            }
            let [dir, rest @ ..] = parts.as_slice() else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            if rest == [BACKUP_INFO] {
                ids.push(BackupId::new(*dir));
            }
            catalog
                .objects
                .entry(BackupId::new(*dir))
                .or_default()
                .push(key.clone());
        }
        let infos: Vec<(BackupId, Result<Option<BackupInfo>>)> = futures::stream::iter(ids)
            .map(|id| async move {
                let info = read_backup_info(storage, layout, &id).await;
                (id, info)
            })
            .buffered(CONCURRENT_READS)
            .collect()
            .await;
        for (id, info) in infos {
            match info {
                Ok(Some(info)) => catalog.backups.push((id, info)),
                Ok(None) => {}
                // Barman stops on an unknown key rather than skip the backup, so do we.
                Err(
                    e @ (Error::Connection { .. }
                    | Error::BucketNotFound { .. }
                    | Error::UnsupportedBackupInfo { .. }
                    | Error::Stalled { .. }),
                ) => {
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!("Unable to open backup.info file for {id}: {e}");
                    catalog.unreadable.push(id);
                }
            }
        }
        catalog.backups.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(catalog)
    }

    /// Reads the keep annotations the listing found (an annotation gone since then counts
    /// as none, as in Barman).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn read_keeps(&mut self, storage: &Storage, layout: &Layout) -> Result<()> {
        let unread: Vec<BackupId> = self
            .keeps
            .iter()
            .filter(|(_, line)| line.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let lines: Vec<(BackupId, Result<Option<String>>)> = futures::stream::iter(unread)
            .map(|id| async move {
                let line = read_keep(storage, layout, &id).await;
                (id, line)
            })
            .buffered(CONCURRENT_READS)
            .collect()
            .await;
        for (id, line) in lines {
            match line? {
                Some(line) => self.keeps.insert(id, Some(line)),
                None => self.keeps.remove(&id),
            };
        }
        Ok(())
    }

    /// The first line of `id`'s keep annotation, once [`Catalog::read_keeps`] has run.
    pub fn keep_line(&self, id: &str) -> Option<&str> {
        self.keeps.get(id).and_then(|line| line.as_deref())
    }

    /// What retention makes of `id`'s keep annotation (see [`Keep::from_annotation`]).
    pub fn keep(&self, id: &str) -> Option<Keep> {
        self.keep_line(id).and_then(Keep::from_annotation)
    }

    /// The `backup.info` of `id`, if the catalog holds it.
    pub fn get(&self, id: &str) -> Option<&BackupInfo> {
        self.backups
            .iter()
            .find(|(i, _)| i.as_str() == id)
            .map(|(_, info)| info)
    }

    /// Forgets a deleted backup, so later decisions (retention deletes oldest first) see the
    /// catalog as it now is.
    pub fn remove(&mut self, id: &str) {
        self.backups.retain(|(i, _)| i.as_str() != id);
        self.objects.remove(id);
    }

    /// Resolves a backup reference (ID, shortcut or name); an ID is not checked for existence.
    ///
    /// # Errors
    /// [`Error::UnknownBackup`] and [`Error::AmbiguousBackupName`].
    pub fn resolve(&self, reference: &str) -> Result<BackupId> {
        select::resolve(&self.backups, reference).map_err(|e| match e {
            ResolveError::Unknown => Error::UnknownBackup {
                reference: reference.to_string(),
                server: self.server.clone(),
            },
            ResolveError::Ambiguous(ids) => Error::AmbiguousBackupName {
                name: reference.to_string(),
                ids: ids.iter().map(BackupId::to_string).collect(),
            },
        })
    }
}

/// Resolves a backup reference, listing the catalog only when the reference is not an ID
/// (as Barman does: an ID costs no request).
///
/// # Errors
/// As [`Catalog::load`] and [`Catalog::resolve`].
pub async fn resolve_reference(
    storage: &Storage,
    layout: &Layout,
    reference: &str,
) -> Result<BackupId> {
    if let Some(id) = BackupId::parse(reference) {
        return Ok(id);
    }
    Catalog::load(storage, layout).await?.resolve(reference)
}

/// Reads one backup's `backup.info`; `None` when there is none.
///
/// # Errors
/// Storage errors, [`Error::Storage`] naming the line for a file that does not parse, and
/// [`Error::UnsupportedBackupInfo`] for a key Barman does not know (a byte-order mark too),
/// which Barman stops on with exit 1 wherever it reads the file, listing included.
pub async fn read_backup_info(
    storage: &Storage,
    layout: &Layout,
    id: &BackupId,
) -> Result<Option<BackupInfo>> {
    Ok(fetch_backup_info(storage, layout, id)
        .await?
        .map(|(_, _, info)| info))
}

/// Reads the `backup.info` of a backup about to be restored: as [`read_backup_info`], and the
/// file must be whole. Barman fails an empty or cut one too (with exit 4, once it has
/// unpacked everything and finds no `version` to name the WAL directory by); this refuses it
/// before anything is downloaded.
///
/// # Errors
/// As [`read_backup_info`], and [`Error::IncompleteBackupInfo`].
pub async fn read_whole_backup_info(
    storage: &Storage,
    layout: &Layout,
    id: &BackupId,
) -> Result<Option<BackupInfo>> {
    let Some((key, text, info)) = fetch_backup_info(storage, layout, id).await? else {
        return Ok(None);
    };
    match BackupInfo::incomplete(&text) {
        Some(reason) => Err(Error::IncompleteBackupInfo {
            key: key.to_string(),
            reason,
        }),
        None => Ok(Some(info)),
    }
}

/// One `backup.info`: its key, its text and what it says.
async fn fetch_backup_info(
    storage: &Storage,
    layout: &Layout,
    id: &BackupId,
) -> Result<Option<(Path, String, BackupInfo)>> {
    let key = layout.backup_info(id);
    let bytes = match storage.get(&key).await {
        Ok(bytes) => bytes,
        Err(Error::ObjectNotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let unreadable = |message: String| Error::Storage {
        action: "read",
        key: key.to_string(),
        source: message.into(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| unreadable(format!("not UTF-8: {e}")))?;
    match BackupInfo::parse(text) {
        Ok(info) => Ok(Some((key.clone(), text.to_string(), info))),
        Err(e) => Err(match &e.unknown_key {
            Some(k) if k.starts_with('\u{feff}') => Error::UnsupportedBackupInfo {
                key: key.to_string(),
                reason: "it starts with a byte-order mark (U+FEFF), which Barman refuses \
                         too: save it again as UTF-8 without one"
                    .into(),
            },
            Some(k) => Error::UnsupportedBackupInfo {
                key: key.to_string(),
                reason: format!(
                    "line {}: unsupported field '{k}', which Barman refuses too: the backup \
                     was made by a newer Barman (upgrade this tool) or the file was edited",
                    e.line
                ),
            },
            None => unreadable(e.to_string()),
        }),
    }
}

/// The server's WAL archive as one recursive listing found it.
#[derive(Debug, Clone, Default)]
pub struct WalArchive {
    /// Every object under `wals/`, WAL file or not, sorted by key.
    pub objects: Vec<Path>,
}

impl WalArchive {
    /// Lists the archive; with `below`, only as far as the keys of WAL files named before
    /// that segment can sort (its own hash directory included), which is all that deleting
    /// the backups before it can touch, and on a large archive a small part of it.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        storage: &Storage,
        layout: &Layout,
        below: Option<&WalName>,
    ) -> Result<WalArchive> {
        let dir = layout.wals_dir();
        let listing = match below.and_then(WalName::hash_dir) {
            // A name before the segment sorts no later than its hash directory, and so does
            // its key: `<dir>/<hash dir>` followed by anything is the last key that matters.
            Some(hash_dir) => {
                let last = format!("{dir}/{hash_dir}\u{10ffff}");
                storage.list_until(&dir, &last).await?
            }
            None => storage.list_all(&dir).await?,
        };
        let mut objects: Vec<Path> = listing.into_iter().map(|meta| meta.location).collect();
        objects.sort();
        Ok(WalArchive { objects })
    }

    /// The WAL files (segments, history, backup labels, partials) by name without compression
    /// suffix, with their keys; keys that are not WAL files are left out, and of two keys for
    /// one name the later in key order wins, as in Barman's `get_wal_paths`.
    pub fn by_name(&self) -> BTreeMap<WalName, Path> {
        self.objects
            .iter()
            .filter_map(|key| parse_wal_object(key).map(|(name, _)| (name, key.clone())))
            .collect()
    }
}

/// The names (compression suffix removed) of every file in the server's WAL archive, history
/// and backup-label files included; keys that are not WAL files are ignored, as in Barman.
///
/// # Errors
/// Storage errors.
pub async fn wal_names(storage: &Storage, layout: &Layout) -> Result<Vec<String>> {
    let archive = WalArchive::list(storage, layout, None).await?;
    Ok(archive
        .by_name()
        .into_keys()
        .map(|name| name.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::WriteOptions;

    #[tokio::test]
    async fn load_reads_every_backup_info_and_names_the_unreadable_ones() {
        let storage = Storage::in_memory();
        let layout = Layout::new("", "pg");
        let info = include_str!("../../tests/fixtures/backup_info/done-tablespace-named.info");
        for (id, text) in [
            ("20261125T035049", info.as_bytes()),
            ("20261126T035049", info.as_bytes()),
            ("20261127T035049", b"\xff".as_slice()),
        ] {
            let key = layout.backup_info(&id.into());
            let data = bytes::Bytes::copy_from_slice(text);
            storage
                .put(&key, data, &WriteOptions::default())
                .await
                .unwrap();
        }
        let catalog = Catalog::load(&storage, &layout).await.unwrap();
        let ids: Vec<&str> = catalog.backups.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["20261125T035049", "20261126T035049"]);
        assert_eq!(catalog.unreadable, ["20261127T035049"]);
    }
}
