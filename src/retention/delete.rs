//! Deleting backups and the WAL only they needed, as `barman-cloud-backup-delete` does:
//! one backup named by `-b`, or every backup a retention policy makes obsolete.
//!
//! Each backup goes in Barman's order, so an interrupted run can simply be repeated: its
//! tarballs, then its `backup.info` (once that is gone the directory is no longer a backup),
//! then the WAL files the remaining catalog no longer needs. Unlike Barman we list `base/`
//! and the WAL archive once per run instead of once per backup, and send the deletions as
//! bulk requests a few at a time; what is deleted, and what a dry run reports, is the same.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset};
use object_store::path::Path;

use super::wal::{WalBackup, protected_ranges, remove_until, wal_cleanup};
use super::{Candidate, Policy, RetentionStatus, evaluate};
use crate::catalog::{BackupInfo, Catalog, Status, WalArchive, read_keep};
use crate::error::{Error, Result};
use crate::layout::{BackupId, Layout, TARBALL_COMPRESSIONS};
use crate::postgres::WalName;
use crate::python::Timestamp;
use crate::storage::Storage;

/// How a deletion runs.
#[derive(Debug, Clone, Copy)]
pub struct DeleteOptions {
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
    /// The most objects per delete request (`--batch-size`), clamped to the provider's limit.
    pub batch_size: usize,
}

/// One step of a deletion, reported before it runs (a dry run reports it only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A backup's tarballs, then its `backup.info` (the last key).
    Backup {
        /// The backup ID.
        id: BackupId,
        /// Its keys, in the order they go.
        objects: Vec<Path>,
    },
    /// A disk-snapshot backup's snapshots.
    Snapshots {
        /// The backup ID.
        id: BackupId,
    },
    /// A disk-snapshot backup's `backup_label` object.
    SnapshotLabel(Path),
    /// Every object under one WAL hash directory (a key prefix ending in `/`).
    WalPrefix(String),
    /// Single WAL files, sorted.
    Wals(Vec<Path>),
}

/// The WAL archive as this run knows it: listed once, then kept up to date as files go.
struct WalState {
    /// Barman's `get_wal_paths`: each WAL name and its key.
    by_name: BTreeMap<WalName, String>,
    /// The hash directories (as key prefixes) and every object under each.
    prefixes: BTreeMap<String, BTreeSet<Path>>,
}

impl WalState {
    fn new(archive: WalArchive, layout: &Layout) -> WalState {
        let wals_dir = format!("{}/", layout.wals_dir());
        let mut prefixes: BTreeMap<String, BTreeSet<Path>> = BTreeMap::new();
        for key in &archive.objects {
            let Some(relative) = key.as_ref().strip_prefix(&wals_dir) else {
                continue;
            };
            if let Some((dir, _)) = relative.split_once('/') {
                prefixes
                    .entry(format!("{wals_dir}{dir}/"))
                    .or_default()
                    .insert(key.clone());
            }
        }
        let by_name = archive
            .by_name()
            .into_iter()
            .map(|(name, key)| (name, key.to_string()))
            .collect();
        WalState { by_name, prefixes }
    }
}

/// A deletion run over one server's catalog.
pub struct Deleter<'a> {
    storage: &'a Storage,
    layout: &'a Layout,
    catalog: Catalog,
    wals: Option<WalState>,
    /// The newest `begin_wal` this run's deletions may remove WAL up to: the archive is only
    /// listed that far.
    wal_bound: Option<WalName>,
    options: DeleteOptions,
}

impl<'a> Deleter<'a> {
    /// Loads the catalog and its keep annotations.
    ///
    /// # Errors
    /// [`Error::UnreadableCatalog`] when any `backup.info` cannot be read, as deciding what
    /// is obsolete over a partial catalog could delete what is still needed; storage errors.
    pub async fn open(
        storage: &'a Storage,
        layout: &'a Layout,
        options: DeleteOptions,
    ) -> Result<Deleter<'a>> {
        let mut catalog = Catalog::load(storage, layout).await?;
        if !catalog.unreadable.is_empty() {
            return Err(Error::UnreadableCatalog {
                ids: catalog.unreadable.iter().map(BackupId::to_string).collect(),
            });
        }
        catalog.read_keeps(storage, layout).await?;
        Ok(Deleter {
            storage,
            layout,
            catalog,
            wals: None,
            wal_bound: None,
            options,
        })
    }

    /// The catalog as the run has left it so far.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// `-b`: deletes the backup `reference` names (ID, name or shortcut), unless it is kept
    /// or `minimum_redundancy` forbids it. An ID without a backup is only a warning, as in
    /// Barman. WAL is only removed when no older backup needs it.
    ///
    /// # Errors
    /// [`Error::BackupKept`], [`Error::MinimumRedundancy`], reference errors, and those of
    /// the deletion itself.
    pub async fn delete_requested(
        &mut self,
        reference: &str,
        minimum_redundancy: u32,
        report: &mut dyn FnMut(&Action),
    ) -> Result<()> {
        let id = self.catalog.resolve(reference)?;
        // Read again rather than from the listing: someone may have just kept it.
        if read_keep(self.storage, self.layout, &id).await?.is_some() {
            return Err(Error::BackupKept {
                id: id.to_string(),
                server: self.catalog.server.clone(),
            });
        }
        if minimum_redundancy > 0 {
            let current = self
                .catalog
                .backups
                .iter()
                .filter(|(_, info)| info.status != Status::Started)
                .count();
            if minimum_redundancy as usize >= current {
                return Err(Error::MinimumRedundancy {
                    id: id.to_string(),
                    server: self.catalog.server.clone(),
                    minimum: minimum_redundancy,
                    current,
                });
            }
        }
        self.bound_wal_listing(std::slice::from_ref(&id));
        self.delete_backup(&id, true, report).await
    }

    /// `-r`: deletes every backup `policy` makes obsolete at `now`, oldest first, each with
    /// the WAL it alone needed. Returns their IDs.
    ///
    /// # Errors
    /// Those of the deletions; the run stops at the first backup that cannot be deleted.
    pub async fn apply_policy(
        &mut self,
        policy: Policy,
        minimum_redundancy: u32,
        now: DateTime<FixedOffset>,
        report: &mut dyn FnMut(&Action),
    ) -> Result<Vec<BackupId>> {
        let candidates: Vec<Candidate> = self
            .catalog
            .backups
            .iter()
            .map(|(id, info)| Candidate {
                id: id.clone(),
                status: info.status.clone(),
                end_time: info.end_time.map(|t| t.0),
                keep: self.catalog.keep(id),
            })
            .collect();
        let statuses = evaluate(&candidates, policy, minimum_redundancy, now);
        if let Some(window) = policy.window() {
            let point = Timestamp(now - window);
            for (c, _) in candidates
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| **s == RetentionStatus::PotentiallyObsolete)
            {
                tracing::warn!(
                    "Keeping obsolete backup {} for server {} (older than {point}) due to \
                     minimum redundancy requirements ({minimum_redundancy})",
                    c.id,
                    self.catalog.server
                );
            }
        }
        let mut obsolete: Vec<BackupId> = candidates
            .into_iter()
            .zip(statuses)
            .filter(|(_, status)| *status == RetentionStatus::Obsolete)
            .map(|(c, _)| c.id)
            .collect();
        obsolete.sort();
        self.bound_wal_listing(&obsolete);
        for id in &obsolete {
            self.delete_backup(id, false, report).await?;
        }
        Ok(obsolete)
    }

    async fn delete_backup(
        &mut self,
        id: &BackupId,
        skip_wal_cleanup_if_standalone: bool,
        report: &mut dyn FnMut(&Action),
    ) -> Result<()> {
        let Some(info) = self.catalog.get(id).cloned() else {
            tracing::warn!("Backup {id} does not exist");
            return Ok(());
        };
        if info.snapshots_info.is_some() {
            self.delete_snapshots(id, report)?;
        }
        let mut objects = backup_files(
            &self.layout.backup_dir(id),
            self.catalog.objects.get(id).map_or(&[][..], Vec::as_slice),
            &info,
        );
        let backup_info = self.layout.backup_info(id);
        objects.push(backup_info.clone());
        report(&Action::Backup {
            id: id.clone(),
            objects: objects.clone(),
        });
        if !self.options.dry_run {
            let files = &objects[..objects.len() - 1];
            let deleted = match self
                .storage
                .delete_many(files, self.options.batch_size)
                .await
            {
                // backup.info goes last, so that a failed deletion can be retried.
                Ok(()) => self.storage.delete(&backup_info).await,
                Err(e) => Err(e),
            };
            deleted.map_err(|reason| Error::DeleteFailed {
                id: id.to_string(),
                reason: Box::new(reason),
            })?;
        }
        self.remove_wals(id, skip_wal_cleanup_if_standalone, report)
            .await?;
        // WAL cleanup needs the deleted backup still in the catalog.
        self.catalog.remove(id);
        Ok(())
    }

    fn delete_snapshots(&self, id: &BackupId, report: &mut dyn FnMut(&Action)) -> Result<()> {
        if !self.options.dry_run {
            return Err(Error::Unsupported(format!(
                "backup {id} is a disk-snapshot backup, and deleting snapshots is not \
                 supported yet: delete it with Barman's barman-cloud-backup-delete"
            )));
        }
        report(&Action::Snapshots { id: id.clone() });
        report(&Action::SnapshotLabel(
            self.layout.backup_dir(id).clone().join("backup_label"),
        ));
        Ok(())
    }

    /// What WAL cleanup needs to know of the catalog as it now is.
    fn wal_backups(&self) -> Vec<WalBackup> {
        self.catalog
            .backups
            .iter()
            .map(|(id, info)| WalBackup {
                id: id.clone(),
                status: info.status.clone(),
                timeline: info.timeline,
                begin_wal: wal_name(id, "begin_wal", &info.begin_wal),
                end_wal: wal_name(id, "end_wal", &info.end_wal),
                keep: self.catalog.keep(id),
            })
            .collect()
    }

    /// Sets how far the WAL archive must be listed to delete `ids` (oldest first): up to the
    /// newest segment any of them may remove WAL up to. Deleting older backups does not
    /// change which backup follows a newer one, so the bound holds for the whole run.
    fn bound_wal_listing(&mut self, ids: &[BackupId]) {
        let backups = self.wal_backups();
        self.wal_bound = ids
            .iter()
            .filter_map(|id| remove_until(&backups, id))
            .filter_map(|until| until.begin_wal.clone())
            .max();
    }

    async fn remove_wals(
        &mut self,
        id: &str,
        skip_if_standalone: bool,
        report: &mut dyn FnMut(&Action),
    ) -> Result<()> {
        let backups = self.wal_backups();
        // Listing a large archive is the expensive part: only when some WAL may go.
        if protected_ranges(&backups, id, skip_if_standalone).is_none() {
            return Ok(());
        }
        if self.wals.is_none() {
            let bound = self.wal_bound.as_ref();
            match WalArchive::list(self.storage, self.layout, bound).await {
                Ok(archive) => self.wals = Some(WalState::new(archive, self.layout)),
                Err(e) => {
                    tracing::error!(
                        "Cannot clean up WALs for backup {id} because an error occurred \
                         listing WALs: {e}"
                    );
                    return Ok(());
                }
            }
        }
        let state = self.wals.as_mut().expect("listed above");
        let prefixes: Option<Vec<String>> = self
            .storage
            .deletes_by_prefix()
            .then(|| state.prefixes.keys().cloned().collect());
        let cleanup = wal_cleanup(
            &backups,
            id,
            &state.by_name,
            prefixes.as_deref(),
            skip_if_standalone,
        );
        for prefix in &cleanup.prefixes {
            report(&Action::WalPrefix(prefix.clone()));
        }
        if !self.options.dry_run && !cleanup.prefixes.is_empty() {
            // The listing holds every key under these prefixes: delete them in full batches
            // across prefixes, where Barman lists and deletes one prefix at a time (like it,
            // ignoring --batch-size here).
            let keys: Vec<Path> = cleanup
                .prefixes
                .iter()
                .flat_map(|p| state.prefixes.remove(p).unwrap_or_default())
                .collect();
            self.storage
                .delete_many(&keys, self.storage.max_delete_batch())
                .await?;
            state
                .by_name
                .retain(|_, key| !cleanup.prefixes.iter().any(|p| key.starts_with(p.as_str())));
        }
        if cleanup.wals.is_empty() {
            return Ok(());
        }
        let keys: Vec<Path> = cleanup
            .wals
            .iter()
            .map(|(_, key)| Path::from(key.as_str()))
            .collect();
        report(&Action::Wals(keys.clone()));
        if !self.options.dry_run {
            if let Err(e) = self
                .storage
                .delete_many(&keys, self.options.batch_size)
                .await
            {
                // Left in the run's view of the archive, for the next backup to retry.
                tracing::error!(
                    "Could not delete the WALs no longer needed after backup {id}: {e}"
                );
                return Ok(());
            }
        }
        for (name, key) in &cleanup.wals {
            state.by_name.remove(name);
            // A later prefix deletion must not send these keys again.
            if let Some((dir, _)) = key.rsplit_once('/') {
                if let Some(keys) = state.prefixes.get_mut(&format!("{dir}/")) {
                    keys.remove(&Path::from(key.as_str()));
                }
            }
        }
        Ok(())
    }
}

/// A WAL name of `backup.info`; one that does not parse is treated as absent, so the backup
/// bounds no WAL removal and protects no range, with a warning each time the catalog is
/// read for WAL cleanup (once per backup deleted).
fn wal_name(id: &str, field: &str, value: &Option<String>) -> Option<WalName> {
    let value = value.as_deref()?;
    WalName::parse(value)
        .inspect_err(|e| tracing::warn!("Ignoring {field} of backup {id}: {e}"))
        .ok()
}

/// A backup's tarballs as Barman finds them for deletion (`get_backup_files` with missing
/// files allowed): among the objects directly in the backup's directory, those named after
/// `data` or a tablespace oid followed by `.tar[.gz|.bz2|.snappy|.lz4|.zst]` (the first part;
/// if several match, the last listed) or by `_<anything>.tar[...]` (further parts). PGDATA's
/// come first, then each tablespace's by oid; first part, then the others by key.
pub fn backup_files(dir: &Path, objects: &[Path], info: &BackupInfo) -> Vec<Path> {
    let mut oids: Vec<u32> = info.tablespaces.iter().flatten().map(|t| t.oid).collect();
    oids.sort_unstable();
    let bases: Vec<String> = std::iter::once("data".to_string())
        .chain(oids.iter().map(u32::to_string))
        .collect();
    let mut first: Vec<Option<Path>> = vec![None; bases.len()];
    let mut others: Vec<Vec<Path>> = vec![Vec::new(); bases.len()];
    for key in objects {
        let in_dir = key
            .as_ref()
            .strip_prefix(dir.as_ref())
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|name| !name.contains('/'));
        let Some(name) = in_dir else { continue };
        for (n, base) in bases.iter().enumerate() {
            let Some(suffix) = name.strip_prefix(base.as_str()) else {
                continue;
            };
            let extension = match suffix.as_bytes().first() {
                Some(b'.') => &suffix[1..],
                // A further part: the extension starts after its first dot.
                Some(b'_') => suffix.split_once('.').map_or(suffix, |(_, ext)| ext),
                _ => continue,
            };
            let known = extension == "tar"
                || TARBALL_COMPRESSIONS
                    .iter()
                    .any(|c| extension.strip_prefix("tar") == Some(c.suffix()));
            if !known {
                tracing::warn!("Skipping unknown extension: {extension}");
                continue;
            }
            if suffix.starts_with('.') {
                first[n] = Some(key.clone());
            } else {
                others[n].push(key.clone());
            }
            break;
        }
    }
    first
        .into_iter()
        .zip(others)
        .flat_map(|(first, mut others)| {
            others.sort();
            first.into_iter().chain(others)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::Tablespace;

    #[test]
    fn backup_files_are_found_and_ordered_as_barman_deletes_them() {
        let dir = Path::from("p/pg/base/20261125T035049");
        let key = |name: &str| Path::from(format!("{dir}/{name}"));
        let objects: Vec<Path> = [
            "16385.tar",
            "16384_0001.tar.gz",
            "16384.tar.gz",
            "annotations/keep",
            "backup.info",
            "data.tar.zst",
            "data_0002.tar.lz4",
            "data_0001.tar.lz4",
            "data.tar.lz4",
            "data_x.tar",
            "datafile.tar",
            "16384_0002.tar.xz",
            "sub/data.tar",
        ]
        .iter()
        .map(|n| key(n))
        .collect();
        let info = BackupInfo {
            tablespaces: Some(vec![
                Tablespace {
                    name: "b".into(),
                    oid: 16385,
                    location: "/b".into(),
                },
                Tablespace {
                    name: "a".into(),
                    oid: 16384,
                    location: "/a".into(),
                },
            ]),
            ..BackupInfo::default()
        };
        let files: Vec<String> = backup_files(&dir, &objects, &info)
            .iter()
            .map(|k| k.as_ref().rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(
            files,
            [
                "data.tar.lz4",
                "data_0001.tar.lz4",
                "data_0002.tar.lz4",
                "data_x.tar",
                "16384.tar.gz",
                "16384_0001.tar.gz",
                "16385.tar",
            ]
        );
        assert!(backup_files(&dir, &[], &BackupInfo::default()).is_empty());
        // Our zstd tarballs are a backup's files too.
        let zstd = [key("data.tar.zst"), key("data_0001.tar.zst")];
        assert_eq!(backup_files(&dir, &zstd, &BackupInfo::default()), zstd);
    }
}
