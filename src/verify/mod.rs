//! `barman-cloud-verify` (our addition): whether the backups would restore and the WAL
//! archive would replay, found without restoring anything.
//!
//! For each backup chosen, every tarball part is read to its end as the restore reads it
//! ([`restore::verify`]: present, the size the listing gives, decompressing to its end, a
//! whole tar archive; `backup_label` and `global/pg_control` in the data archives) and
//! every WAL segment from its begin WAL to its end WAL is downloaded and decoded as
//! wal-restore decodes it ([`wal::verify_object`]). Then the archive as a whole: on each
//! timeline from the oldest backup's begin WAL (or switch point, from the history file) to
//! its newest segment, every segment must be listed ([`archive::continuity`]).
//!
//! A missing or damaged object is a problem, and checking goes on; what makes every other
//! read fail too (the connection, the credentials) stops it with the command's usual error.

pub mod archive;
pub mod health;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;

pub use archive::{Continuity, Gap, Timeline, continuity};

use crate::catalog::{BackupInfo, Catalog, DEFAULT_SEGMENT_SIZE, Status, WalArchive};
use crate::error::{Error, Result};
use crate::layout::{BackupId, Layout};
use crate::postgres::{WalKind, WalName};
use crate::progress::ProgressHandle;
use crate::restore;
use crate::storage::Storage;
use crate::wal;

/// What to verify.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every backup of the catalog.
    All,
    /// One backup.
    One(BackupId),
    /// No backup: the archive only (`--wal-only`).
    None,
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// How many objects are read at once.
    pub jobs: usize,
    /// Where read bytes are reported.
    pub progress: ProgressHandle,
    /// The time the newest WAL's age is measured against.
    pub now: DateTime<Utc>,
}

/// What was found for one backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The backup ID.
    pub backup_id: String,
    /// Its `backup.info` status.
    pub status: String,
    /// Tarball parts read to their end.
    pub parts: usize,
    /// Their size in the store.
    pub stored_bytes: u64,
    /// Files in the archives.
    pub files: u64,
    /// The bytes of those files.
    pub file_bytes: u64,
    /// Its first WAL segment.
    pub begin_wal: Option<String>,
    /// Its last WAL segment.
    pub end_wal: Option<String>,
    /// Segments from the first to the last that were downloaded and decoded.
    pub wal_segments: u64,
    /// What its backup_manifest let verification check (or that it has none), in one line.
    pub manifest: String,
    /// Each problem, one line naming the object.
    pub problems: Vec<String>,
}

/// What was found in the WAL archive.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveReport {
    /// The segment checking started from (the oldest backup's begin WAL).
    pub start: Option<String>,
    /// Each timeline and its gaps.
    #[serde(flatten)]
    pub continuity: Continuity,
    /// The newest archived segment.
    pub newest_wal: Option<String>,
    /// When it was stored.
    pub newest_wal_time: Option<DateTime<Utc>>,
    /// How long ago, in seconds.
    pub newest_wal_age_seconds: Option<i64>,
    /// Each problem, one line naming the object.
    pub problems: Vec<String>,
}

/// Everything verification found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server name.
    pub server: String,
    /// Each backup verified, oldest first.
    pub backups: Vec<BackupReport>,
    /// The WAL archive.
    pub archive: ArchiveReport,
    /// Every backup of the catalog, for the health gauges ([`health`]).
    pub catalog: health::CatalogSummary,
}

impl Report {
    /// Every problem, backups' first.
    pub fn problems(&self) -> impl Iterator<Item = &str> {
        self.backups
            .iter()
            .flat_map(|b| b.problems.iter())
            .chain(&self.archive.problems)
            .map(String::as_str)
    }

    /// The report as text, one problem a line after the summary lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for b in &self.backups {
            let verdict = match b.problems.len() {
                0 => "OK".to_string(),
                n => format!("{n} problem(s)"),
            };
            out += &format!(
                "backup {}: {verdict}: status {}, {} part(s), {} bytes stored, {} files ({} \
                 bytes); WAL {} to {}: {} segment(s) decoded\n",
                b.backup_id,
                b.status,
                b.parts,
                b.stored_bytes,
                b.files,
                b.file_bytes,
                b.begin_wal.as_deref().unwrap_or("None"),
                b.end_wal.as_deref().unwrap_or("None"),
                b.wal_segments
            );
            if !b.manifest.is_empty() {
                out += &format!("backup {}: {}\n", b.backup_id, b.manifest);
            }
        }
        let a = &self.archive;
        for t in &a.continuity.timelines {
            let gaps = a
                .continuity
                .gaps
                .iter()
                .filter(|g| g.timeline == t.timeline)
                .count();
            out += &format!(
                "WAL archive timeline {}: {} to {}: {} segment(s) archived, {gaps} gap(s)\n",
                t.timeline, t.first, t.last, t.segments
            );
        }
        match (&a.newest_wal, a.newest_wal_age_seconds) {
            (Some(name), Some(age)) => {
                out += &format!("newest archived WAL: {name}, {age} s old\n")
            }
            _ => out += "newest archived WAL: None\n",
        }
        for problem in self.problems() {
            out += &format!("problem: {problem}\n");
        }
        out
    }
}

/// Verifies the `selection` of backups of `layout`'s server and its WAL archive.
///
/// # Errors
/// [`Error::NoSuchBackup`] for a backup without `backup.info`, and what stops every read
/// (see [`restore::stops_verification`]); missing and damaged objects are problems in the
/// report, not errors.
pub async fn verify(
    storage: &Storage,
    layout: &Layout,
    selection: &Selection,
    options: &VerifyOptions,
) -> Result<Report> {
    let catalog = Catalog::load(storage, layout).await?;
    let server = layout.server_name();
    let listing = storage.list_all(&layout.wals_dir()).await?;
    let mut archive = WalArchive {
        objects: listing.iter().map(|m| m.location.clone()).collect(),
    };
    archive.objects.sort();
    let wals = archive.by_name();

    let chosen: Vec<&(BackupId, BackupInfo)> = match selection {
        Selection::None => Vec::new(),
        Selection::All => catalog.backups.iter().collect(),
        Selection::One(id) => match catalog.backups.iter().find(|(b, _)| b == id) {
            Some(entry) => vec![entry],
            None => {
                return Err(Error::NoSuchBackup {
                    id: id.to_string(),
                    server,
                });
            }
        },
    };
    let mut backups = Vec::new();
    for (id, info) in chosen {
        backups.push(verify_backup(storage, layout, id, info, &wals, options).await?);
    }

    let mut problems = Vec::new();
    if matches!(selection, Selection::All) {
        for id in &catalog.unreadable {
            problems.push(format!(
                "'{}' cannot be read: repair it or remove the backup",
                layout.backup_info(id)
            ));
        }
    }
    let segment_size = catalog
        .backups
        .first()
        .map_or(DEFAULT_SEGMENT_SIZE, |(_, i)| i.xlog_segment_size);
    let start = catalog
        .backups
        .iter()
        .filter(|(_, i)| i.status == Status::Done)
        .find_map(|(_, i)| i.begin_wal.as_deref().and_then(|w| WalName::parse(w).ok()))
        .or_else(|| wals.keys().find(|n| n.kind() == WalKind::Segment).cloned());
    let mut histories = BTreeMap::new();
    for (name, key) in wals.iter().filter(|(n, _)| n.kind() == WalKind::History) {
        match read_history(storage, key).await {
            Ok(Some(parsed)) => {
                histories.insert(name.timeline(), parsed);
            }
            Ok(None) => problems.push(format!(
                "'{key}' is not a history file: put back the one its server wrote"
            )),
            Err(e) if restore::stops_verification(&e) => return Err(e),
            Err(e) => problems.push(e.to_string()),
        }
    }
    let names: BTreeSet<WalName> = wals.keys().cloned().collect();
    let continuity = start
        .as_ref()
        .map(|s| continuity(&names, &histories, s, segment_size))
        .unwrap_or_default();
    for t in &continuity.missing_history {
        problems.push(format!(
            "'{}/{t:08X}.history' is missing, so timeline {t} cannot be followed: archive \
             it again from the server (pg_wal/{t:08X}.history)",
            layout.wals_dir()
        ));
    }
    for g in &continuity.gaps {
        problems.push(format!(
            "WAL archive gap on timeline {}: {} to {} ({} segment(s)) missing under '{}'",
            g.timeline,
            g.first,
            g.last,
            g.count,
            layout.wals_dir()
        ));
    }
    let newest = listing
        .iter()
        .filter_map(|m| {
            let (name, _) = crate::layout::parse_wal_object(&m.location)?;
            matches!(name.kind(), WalKind::Segment | WalKind::Partial)
                .then(|| (name, m.last_modified))
        })
        .max_by(|a, b| a.0.cmp(&b.0));
    Ok(Report {
        server,
        catalog: health::CatalogSummary {
            backups: (catalog.backups.iter())
                .map(|(id, info)| health::BackupSummary::of(id, info))
                .collect(),
            segment_size,
        },
        backups,
        archive: ArchiveReport {
            start: start.map(|s| s.to_string()),
            continuity,
            newest_wal: newest.as_ref().map(|(n, _)| n.to_string()),
            newest_wal_time: newest.as_ref().map(|(_, t)| *t),
            newest_wal_age_seconds: newest
                .as_ref()
                .map(|(_, t)| (options.now - *t).num_seconds()),
            problems,
        },
    })
}

/// Reads a history file's parent and switch point; `None` when it has no such line.
async fn read_history(
    storage: &Storage,
    key: &object_store::path::Path,
) -> Result<Option<(u32, crate::postgres::Lsn)>> {
    let data = storage.get(key).await?;
    let text = match crate::layout::parse_wal_object(key).and_then(|(_, c)| c) {
        Some(c) => crate::compress::decompress(c, &data).map_err(|source| Error::Corrupt {
            key: key.to_string(),
            source,
        })?,
        None => data.to_vec(),
    };
    Ok(crate::postgres::last_switch(&String::from_utf8_lossy(
        &text,
    )))
}

/// One backup: its tarballs, then its WAL.
async fn verify_backup(
    storage: &Storage,
    layout: &Layout,
    id: &BackupId,
    info: &BackupInfo,
    wals: &BTreeMap<WalName, object_store::path::Path>,
    options: &VerifyOptions,
) -> Result<BackupReport> {
    let mut report = BackupReport {
        backup_id: id.to_string(),
        status: info.status.as_str().to_string(),
        parts: 0,
        stored_bytes: 0,
        files: 0,
        file_bytes: 0,
        begin_wal: info.begin_wal.clone(),
        end_wal: info.end_wal.clone(),
        wal_segments: 0,
        manifest: String::new(),
        problems: Vec::new(),
    };
    if info.status != Status::Done {
        report.problems.push(format!(
            "backup {id} has status {}, so it cannot be restored: take another backup \
             ('{}')",
            info.status.as_str(),
            layout.backup_info(id)
        ));
        return Ok(report);
    }
    let verified =
        restore::verify(storage, layout, id, info, options.jobs, &options.progress).await?;
    report.parts = verified.parts;
    report.stored_bytes = verified.stored_bytes;
    report.files = verified.stats.files;
    report.file_bytes = verified.stats.bytes;
    report.manifest = verified.manifest;
    report
        .problems
        .extend(verified.problems.iter().map(ToString::to_string));

    let (Some(begin), Some(end)) = (
        info.begin_wal
            .as_deref()
            .and_then(|w| WalName::parse(w).ok()),
        info.end_wal.as_deref().and_then(|w| WalName::parse(w).ok()),
    ) else {
        report.problems.push(format!(
            "'{}' names no begin and end WAL: the backup cannot be recovered",
            layout.backup_info(id)
        ));
        return Ok(report);
    };
    let per_log =
        u32::try_from(0x1_0000_0000u64 / info.xlog_segment_size.max(1)).unwrap_or(u32::MAX);
    let mut needed = Vec::new();
    let mut at = Some(begin);
    while let Some(name) = at.filter(|n| n.as_str() <= end.as_str()) {
        at = name.next_segment(per_log);
        needed.push(name);
    }
    let checks: Vec<(WalName, Option<Result<u64>>)> = futures::stream::iter(needed)
        .map(|name| async move {
            let checked = match wals.get(&name) {
                Some(key) => Some(wal::verify_object(storage, key).await),
                None => None,
            };
            (name, checked)
        })
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    for (name, checked) in checks {
        match checked {
            None => report.problems.push(format!(
                "WAL {name} (needed by backup {id}) is not in the archive under '{}'",
                layout.wal_dir(&name)
            )),
            Some(Ok(_)) => report.wal_segments += 1,
            Some(Err(e)) if restore::stops_verification(&e) => return Err(e),
            Some(Err(e)) => report.problems.push(e.to_string()),
        }
    }
    Ok(report)
}
