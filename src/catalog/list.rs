//! A server's catalog as stored: its backups (every directory under `<server>/base/` holding a
//! `backup.info`) and the names in its WAL archive.
//!
//! Loading follows `CloudBackupCatalog.get_backup_list`: a directory without `backup.info` is
//! not a backup, and one whose `backup.info` cannot be read is skipped with a warning and
//! remembered as unreadable (delete and retention refuse to work around such holes). We part
//! from Barman in one respect: a lost connection or a missing bucket stops the load, where
//! Barman would report every backup as unreadable.

use futures::StreamExt;

use super::BackupInfo;
use super::select::{self, Entry, ResolveError};
use crate::error::{Error, Result};
use crate::layout::{Layout, is_backup_id, parse_wal_object};
use crate::storage::Storage;

/// How many `backup.info` files are fetched at once.
const CONCURRENT_READS: usize = 8;

/// The backups of one server, in ID order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The server name, for messages.
    pub server: String,
    /// Every readable backup, ordered by ID (the directory name, compared as a string).
    pub backups: Vec<Entry>,
    /// IDs whose `backup.info` exists but cannot be read.
    pub unreadable: Vec<String>,
}

impl Catalog {
    /// Lists and reads every backup of `layout`'s server.
    ///
    /// # Errors
    /// Storage errors that make the whole listing meaningless (connection, missing bucket).
    pub async fn load(storage: &Storage, layout: &Layout) -> Result<Catalog> {
        let dirs = storage.list_subdirs(&layout.base_dir()).await?;
        let ids: Vec<String> = dirs
            .iter()
            .filter_map(|d| d.filename().map(str::to_string))
            .collect();
        let infos: Vec<(String, Result<Option<BackupInfo>>)> = futures::stream::iter(ids)
            .map(|id| async move {
                let info = read_backup_info(storage, layout, &id).await;
                (id, info)
            })
            .buffered(CONCURRENT_READS)
            .collect()
            .await;
        let mut catalog = Catalog {
            server: layout.server_name(),
            ..Catalog::default()
        };
        for (id, info) in infos {
            match info {
                Ok(Some(info)) => catalog.backups.push((id, info)),
                Ok(None) => {}
                Err(e @ (Error::Connection { .. } | Error::BucketNotFound { .. })) => {
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

    /// The `backup.info` of `id`, if the catalog holds it.
    pub fn get(&self, id: &str) -> Option<&BackupInfo> {
        self.backups
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, info)| info)
    }

    /// Resolves a backup reference (ID, shortcut or name); an ID is not checked for existence.
    ///
    /// # Errors
    /// [`Error::UnknownBackup`] and [`Error::AmbiguousBackupName`].
    pub fn resolve(&self, reference: &str) -> Result<String> {
        select::resolve(&self.backups, reference).map_err(|e| match e {
            ResolveError::Unknown => Error::UnknownBackup {
                reference: reference.to_string(),
                server: self.server.clone(),
            },
            ResolveError::Ambiguous(ids) => Error::AmbiguousBackupName {
                name: reference.to_string(),
                ids,
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
) -> Result<String> {
    if is_backup_id(reference) {
        return Ok(reference.to_string());
    }
    Catalog::load(storage, layout).await?.resolve(reference)
}

/// Reads one backup's `backup.info`; `None` when there is none.
///
/// # Errors
/// Storage errors, and [`Error::Storage`] naming the line for a file that does not parse.
pub async fn read_backup_info(
    storage: &Storage,
    layout: &Layout,
    id: &str,
) -> Result<Option<BackupInfo>> {
    let key = layout.backup_info(id);
    let bytes = match storage.get(&key).await {
        Ok(bytes) => bytes,
        Err(Error::ObjectNotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let unreadable = |message: String| Error::Storage {
        action: "read",
        key: key.to_string(),
        message,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| unreadable(format!("not UTF-8: {e}")))?;
    BackupInfo::parse(text)
        .map(Some)
        .map_err(|e| unreadable(e.to_string()))
}

/// The names (compression suffix removed) of every file in the server's WAL archive, history
/// and backup-label files included; keys that are not WAL files are ignored, as in Barman.
///
/// # Errors
/// Storage errors.
pub async fn wal_names(storage: &Storage, layout: &Layout) -> Result<Vec<String>> {
    let objects = storage.list_all(&layout.wals_dir()).await?;
    Ok(objects
        .iter()
        .filter_map(|meta| parse_wal_object(&meta.location))
        .map(|(name, _)| name.to_string())
        .collect())
}
