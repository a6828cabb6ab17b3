//! Restoring a base backup: download its tarball parts, decompress and unpack them into the
//! recovery directory and the tablespace locations, then link the tablespaces in.
//!
//! The phases, in order (the steps of `barman-cloud-restore`, §3.10 of the contract):
//! 1. `plan`: the destinations must be missing or empty; the parts are found by listing the
//!    backup's directory, and a missing PGDATA or tablespace archive stops everything before
//!    a byte is written.
//! 2. Parts are downloaded a few at a time. Each one streams through a bounded channel into
//!    a blocking thread that unpacks it (`extract`), with the decompression on a thread of
//!    its own a few megabytes ahead (`read_ahead`), so memory stays flat whatever the part
//!    size. Parts are started in Barman's order (PGDATA first, each base before its `_NNNN`
//!    parts); each is an independent archive, so they may finish in any order.
//! 3. `check_complete`: every archive ended with its end-of-archive marker (checked as each
//!    is unpacked) and the parts were numbered without a gap (checked by `plan`); now the
//!    data archives must have held `backup_label`, the last member Barman and we write, and
//!    `global/pg_control`. A missing last part shows here.
//! 4. Directory attributes are applied, `pg_tblspc/<oid>` links and a missing `pg_wal` are
//!    created, the optional recovery settings are written ([`recovery_conf`]), and the whole
//!    tree is flushed to disk. Only then does `global/pg_control`, unpacked under a temporary
//!    name, take its place: PostgreSQL will not start on a directory whose restore stopped
//!    half-way, or whose backup was not whole.
//!
//! `backup_label` comes out of the data archive. Barman writes its tar header with uid 0, so
//! a restore run as root leaves it owned by root; we give it to the owner of PGDATA instead,
//! which is what PostgreSQL needs to rename it at the end of recovery.

mod extract;
mod plan;
mod read_ahead;
pub mod recovery_conf;

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

pub use extract::Stats;
pub use recovery_conf::{RecoveryConf, RecoveryTarget, TargetAction};

use self::extract::{ExtractError, Extractor, Owner, running_as_root};
use self::plan::Part;
use crate::catalog::BackupInfo;
use crate::durable;
use crate::error::{Error, Result};
use crate::layout::{BACKUP_INFO, BackupId, Layout};
use crate::postgres::backup_manifest;
use crate::progress::ProgressHandle;
use crate::storage::{Storage, blocking};
use crate::task;

/// Chunks of a download held between the network and the unpacking thread, per part: pieces
/// of at most 64 KiB, so 1 MiB (they keep the network's buffers they were cut from alive: 32
/// of them held up to 3 MB; issue #19 item 4).
const CHANNEL_CHUNKS: usize = 16;

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// `--tablespace NAME:LOCATION` rules: tablespace name to new location.
    pub tablespace_locations: BTreeMap<String, PathBuf>,
    /// How many parts are downloaded and unpacked at once.
    pub jobs: usize,
    /// Recovery settings to write once the files are in place (our addition).
    pub recovery_conf: Option<RecoveryConf>,
    /// Where downloaded bytes are reported.
    pub progress: ProgressHandle,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            tablespace_locations: BTreeMap::new(),
            jobs: 4,
            recovery_conf: None,
            progress: ProgressHandle::silent(),
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Parts downloaded.
    pub parts: usize,
    /// Members unpacked, over every target.
    pub stats: Stats,
    /// Each tablespace's name and the directory it went to.
    pub tablespaces: Vec<(String, PathBuf)>,
}

/// Restores backup `backup_id` (described by `info`) into `recovery_dir`.
///
/// # Errors
/// [`Error::DestinationNotEmpty`], [`Error::MissingBackupFile`] (also for a gap in the
/// parts), [`Error::UnsafeArchive`], [`Error::TruncatedArchive`], [`Error::IncompleteBackup`],
/// [`Error::Unsupported`] for snapshot backups, storage, decompression and I/O errors.
pub async fn restore(
    storage: &Storage,
    layout: &Layout,
    backup_id: &BackupId,
    info: &BackupInfo,
    recovery_dir: &FsPath,
    options: &RestoreOptions,
) -> Result<Restored> {
    plan::check_empty(recovery_dir)?;
    // Settings that cannot be written must fail before hours of downloading, not after.
    if let Some(conf) = &options.recovery_conf {
        conf.lines()?;
    }
    if info.snapshots_info.is_some() {
        return Err(Error::Unsupported(format!(
            "backup {backup_id} is a snapshot backup, and snapshot backups are not supported \
             yet: restore it with Barman's barman-cloud-restore"
        )));
    }
    let server = layout.server_name();
    let backup_dir = layout.backup_dir(backup_id);
    let listing = storage.list_dir(&backup_dir).await?;
    let total: u64 = listing
        .iter()
        .filter(|m| m.location.filename() != Some(BACKUP_INFO))
        .map(|m| m.size)
        .sum();
    let mut objects: Vec<_> = listing.into_iter().map(|m| m.location).collect();
    objects.sort();
    let plan = plan::find_parts(backup_id, &backup_dir, &objects, info, &server)?;

    let mut tablespaces = Vec::new();
    for (tablespace, parts) in &plan.tablespaces {
        let target = plan::tablespace_target(tablespace, &options.tablespace_locations).map_err(
            Error::io("resolve the location of tablespace", &tablespace.location),
        )?;
        tracing::debug!(
            "Tablespace {} (oid={}) will be located at {}",
            tablespace.name,
            tablespace.oid,
            target.display()
        );
        plan::check_empty(&target)?;
        tablespaces.push((tablespace.clone(), target, parts.clone()));
    }

    let as_root = running_as_root();
    // Without pg_control PostgreSQL refuses to start: a restore that stops half-way must not
    // leave a directory it would take for a complete one.
    let data = Arc::new(
        new_extractor(recovery_dir, as_root)?
            .hold_back(PG_CONTROL)
            .require(BACKUP_LABEL)
            .require(PG_CONTROL),
    );
    let mut jobs: Vec<(Part, Arc<Extractor>)> = plan
        .data
        .iter()
        .map(|p| (p.clone(), data.clone()))
        .collect();
    let mut tablespace_extractors = Vec::new();
    for (tablespace, target, parts) in &tablespaces {
        let extractor = Arc::new(new_extractor(target, as_root)?);
        jobs.extend(parts.iter().map(|p| (p.clone(), extractor.clone())));
        tablespace_extractors.push((tablespace.clone(), extractor));
    }

    let part_count = jobs.len();
    options.progress.start(Some(total));
    let per_part: Result<Vec<Stats>> = futures::stream::iter(jobs)
        .map(|(part, extractor)| restore_part(storage, part, extractor, &options.progress))
        .buffer_unordered(options.jobs.max(1))
        .try_collect()
        .await;
    options.progress.finish(per_part.is_ok());
    let per_part = per_part?;
    let mut stats = Stats::default();
    for s in per_part {
        stats += s;
    }

    let wal_dir = if info.version.is_none_or(|v| v >= 100_000) {
        "pg_wal"
    } else {
        "pg_xlog"
    };
    let recovery_conf = options.recovery_conf.clone();
    let targets: Vec<(u32, PathBuf)> = tablespaces
        .iter()
        .map(|(t, target, _)| (t.oid, target.clone()))
        .collect();
    check_complete(backup_id, &data)?;
    task::blocking("finishing the restore", move || {
        finish(
            &data,
            &tablespace_extractors,
            &targets,
            wal_dir,
            recovery_conf.as_ref(),
            as_root,
        )
    })
    .await??;

    Ok(Restored {
        parts: part_count,
        stats,
        tablespaces: tablespaces
            .into_iter()
            .map(|(t, target, _)| (t.name, target))
            .collect(),
    })
}

/// The member Barman and we write last into the data archive, after `pg_backup_stop`.
const BACKUP_LABEL: &str = "backup_label";
/// Held back until the restore is known to be whole.
const PG_CONTROL: &str = "global/pg_control";

/// Whether the unpacked backup is whole, the last check before `pg_control` is released.
///
/// Each archive's end marker and the part numbering say that no part was cut and none is
/// missing in between; a missing *last* data part (or a backup that failed before its end)
/// leaves no other trace than the absence of `backup_label`. A missing last part of a
/// tablespace leaves none at all: that takes a list of every file, which the backup manifest
/// (to be written by the backup side) will give. Its check belongs here, on the same
/// extractors, before anything is released.
///
/// # Errors
/// [`Error::IncompleteBackup`] naming the first required file no archive held.
fn check_complete(backup_id: &str, data: &Extractor) -> Result<()> {
    match data.missing().first() {
        None => Ok(()),
        Some(missing) => Err(Error::IncompleteBackup {
            backup_id: backup_id.to_string(),
            missing: missing.display().to_string(),
        }),
    }
}

/// An extractor for the fuzz targets (see `crate::fuzzing`).
#[doc(hidden)]
pub fn fuzz_extractor(target: &FsPath) -> std::io::Result<FuzzExtractor> {
    Extractor::new(target, false).map(FuzzExtractor)
}

/// Tar extraction as the restore does it, for fuzzing.
#[doc(hidden)]
pub struct FuzzExtractor(Extractor);

impl FuzzExtractor {
    /// Unpacks one tar stream.
    ///
    /// # Errors
    /// Whatever the archive does wrong.
    pub fn extract(&self, data: &[u8]) -> std::result::Result<Stats, String> {
        self.0.extract(data).map_err(|e| format!("{e:?}"))
    }
}

/// Creates a destination (parents with default permissions, the directory itself private,
/// as PostgreSQL wants PGDATA) and an extractor for it.
fn new_extractor(dir: &FsPath, as_root: bool) -> Result<Extractor> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(Error::io("create directory", dir)(e)),
    }
    Extractor::new(dir, as_root).map_err(Error::io("resolve directory", dir))
}

/// Everything after the downloads, on a blocking thread.
fn finish(
    data: &Extractor,
    tablespaces: &[(crate::postgres::Tablespace, Arc<Extractor>)],
    targets: &[(u32, PathBuf)],
    wal_dir: &str,
    recovery_conf: Option<&RecoveryConf>,
    as_root: bool,
) -> Result<()> {
    let pgdata = data.root();
    let unpack_error = |e| extract_error(e, pgdata.display().to_string());
    data.finish(None).map_err(unpack_error)?;
    // As root, what the archives did not say who owns goes to PGDATA's owner.
    let owner: Option<Owner> = if as_root {
        let meta = fs::metadata(pgdata).map_err(Error::io("inspect", pgdata))?;
        Some((meta.uid(), meta.gid()))
    } else {
        None
    };
    for (tablespace, extractor) in tablespaces {
        extractor
            .finish(owner)
            .map_err(|e| extract_error(e, format!("tablespace {}", tablespace.name)))?;
    }
    if let Some((uid, gid)) = owner {
        let label = pgdata.join("backup_label");
        if fs::symlink_metadata(&label).is_ok_and(|m| m.is_file() && m.uid() == 0) {
            tracing::debug!("giving backup_label (archived with uid 0) to PGDATA's owner");
            std::os::unix::fs::chown(&label, Some(uid), Some(gid))
                .map_err(Error::io("change the owner of", &label))?;
        }
    }

    let tblspc = pgdata.join("pg_tblspc");
    for (oid, target) in targets {
        if !tblspc.is_dir() {
            DirBuilder::new()
                .mode(0o700)
                .create(&tblspc)
                .map_err(Error::io("create directory", &tblspc))?;
        }
        let link = tblspc.join(oid.to_string());
        std::os::unix::fs::symlink(target, &link)
            .map_err(Error::io("create tablespace link", &link))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&link, Some(uid), Some(gid))
                .map_err(Error::io("change the owner of", &link))?;
        }
    }

    // pg_wal is not in the archive when it was a symbolic link on the server.
    let wal = pgdata.join(wal_dir);
    if fs::symlink_metadata(&wal).is_err() {
        DirBuilder::new()
            .mode(0o700)
            .create(&wal)
            .map_err(Error::io("create directory", &wal))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&wal, Some(uid), Some(gid))
                .map_err(Error::io("change the owner of", &wal))?;
        }
    }

    if let Some(conf) = recovery_conf {
        conf.write(pgdata, owner)?;
    }

    for root in std::iter::once(pgdata).chain(tablespaces.iter().map(|(_, e)| e.root())) {
        durable::sync_tree(root).map_err(Error::io("flush to disk", root))?;
    }
    data.release().map_err(unpack_error)
}

fn extract_error(e: ExtractError, key: String) -> Error {
    match e {
        ExtractError::Read(source) => Error::Corrupt { key, source },
        ExtractError::Write {
            action,
            path,
            source,
        } => Error::Io {
            action,
            path,
            source,
        },
        ExtractError::Unsafe { entry, reason } => Error::UnsafeArchive { key, entry, reason },
        ExtractError::Truncated(reason) => Error::TruncatedArchive { key, reason },
    }
}

/// Downloads one part into its extractor.
async fn restore_part(
    storage: &Storage,
    part: Part,
    extractor: Arc<Extractor>,
    progress: &ProgressHandle,
) -> Result<Stats> {
    tracing::debug!(
        "Extracting {} to {} ({})",
        part.key,
        extractor.root().display(),
        part.compression
            .map_or("no compression".to_string(), |c| format!(
                "decompressing {}",
                c.name()
            ))
    );
    let (_, stats) = stream_part(storage, &part, progress, move |reader| {
        extractor.extract(reader)
    })
    .await?;
    Ok(stats)
}

/// Downloads one part and hands its decompressed stream to `consume`: the download runs
/// here, `consume` on a blocking thread, with at most [`CHANNEL_CHUNKS`] chunks between
/// them and the decompression a few megabytes ahead on a thread of its own. Returns the
/// size of the object as read, and what `consume` returned.
async fn stream_part<T: Send + 'static>(
    storage: &Storage,
    part: &Part,
    progress: &ProgressHandle,
    consume: impl FnOnce(&mut dyn io::Read) -> Result<T, ExtractError> + Send + 'static,
) -> Result<(u64, T)> {
    let (feeder, mut reader) = blocking::channel(CHANNEL_CHUNKS);
    let compression = part.compression;
    let unpack = task::blocking("unpacking the tarball", move || match compression {
        Some(c) => std::thread::scope(|s| {
            let mut decoded = read_ahead::spawn(s, move || crate::compress::decoder(c, reader));
            consume(&mut decoded)
        }),
        None => consume(&mut reader),
    });
    let download = async {
        let (size, body) = storage.stream(&part.key).await?;
        feeder.feed(body, |n| progress.advance(n as u64)).await?;
        Ok::<_, Error>(size)
    };
    let downloaded = download.await;
    let unpacked = unpack.await;
    let size = downloaded?;
    let consumed = unpacked?.map_err(|e| extract_error(e, part.key.to_string()))?;
    Ok((size, consumed))
}

/// What verifying a backup's tarballs found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Parts read to their end.
    pub parts: usize,
    /// Their size in the store.
    pub stored_bytes: u64,
    /// What their archives held.
    pub stats: Stats,
    /// Each problem found, naming its object; the other parts were still read.
    pub problems: Vec<Error>,
    /// What the backup manifest let verification check, in one line.
    pub manifest: String,
}

/// Reads every tarball part of backup `backup_id` to its end without writing anything, as
/// [`restore`] would unpack it: every part it needs must be in the store with the size the
/// listing gives, decompress to its end and hold a whole tar archive, and the data archives
/// must hold `backup_label` and `global/pg_control`. Up to `jobs` parts are read at once.
///
/// # Errors
/// Only what stops the whole verification: the listing failing, and the connection,
/// credential and configuration errors of any read; a part that is missing or damaged is a
/// problem in [`Verified::problems`].
pub async fn verify(
    storage: &Storage,
    layout: &Layout,
    backup_id: &BackupId,
    info: &BackupInfo,
    jobs: usize,
    progress: &ProgressHandle,
) -> Result<Verified> {
    let mut verified = Verified::default();
    if info.snapshots_info.is_some() {
        verified.problems.push(Error::Unsupported(format!(
            "backup {backup_id} is a snapshot backup, and snapshot backups cannot be verified yet"
        )));
        return Ok(verified);
    }
    let backup_dir = layout.backup_dir(backup_id);
    let listing = storage.list_dir(&backup_dir).await?;
    let listed: BTreeMap<String, u64> = listing
        .iter()
        .map(|m| (m.location.to_string(), m.size))
        .collect();
    let mut objects: Vec<_> = listing.into_iter().map(|m| m.location).collect();
    objects.sort();
    let (plan, missing) = plan::collect_parts(
        backup_id,
        &backup_dir,
        &objects,
        info,
        &layout.server_name(),
    );
    verified.problems.extend(missing);
    let wanted: &'static [&'static str] = &[BACKUP_LABEL, PG_CONTROL];
    // Each part with the prefix that makes its members' paths the manifest's.
    let parts =
        plan.data
            .iter()
            .map(|p| (p, true, String::new()))
            .chain(plan.tablespaces.iter().flat_map(|(t, parts)| {
                parts
                    .iter()
                    .map(move |p| (p, false, format!("pg_tblspc/{}/", t.oid)))
            }));
    let total = parts
        .clone()
        .filter_map(|(p, _, _)| listed.get(p.key.as_ref()))
        .sum();
    progress.start(Some(total));
    type Scanned = Result<(u64, extract::Scanned)>;
    let results: Vec<(&Part, String, Scanned)> = futures::stream::iter(parts)
        .map(|(part, data, prefix)| async move {
            let scanned = stream_part(storage, part, progress, move |r| {
                extract::scan(r, if data { wanted } else { &[] })
            })
            .await;
            (part, prefix, scanned)
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    progress.finish(results.iter().all(|(_, _, scanned)| scanned.is_ok()));
    let mut found = Vec::new();
    let mut files = BTreeMap::new();
    let mut manifest = None;
    for (part, prefix, result) in results {
        match result {
            Ok((size, scanned)) => {
                verified.parts += 1;
                verified.stored_bytes += size;
                verified.stats += scanned.stats;
                found.extend(scanned.found);
                for f in scanned.files {
                    let path = format!("{prefix}{}", f.path.display());
                    files.insert(path, (f, part.key.to_string()));
                }
                if let Some(m) = scanned.manifest {
                    manifest = Some((m, part.key.to_string()));
                }
                let listed = listed.get(part.key.as_ref()).copied();
                if let Some(listed) = listed.filter(|&l| l != size) {
                    verified.problems.push(Error::Corrupt {
                        key: part.key.to_string(),
                        source: io::Error::other(format!(
                            "the listing gives {listed} bytes but {size} were read"
                        )),
                    });
                }
            }
            Err(e) if stops_verification(&e) => return Err(e),
            Err(e) => verified.problems.push(e),
        }
    }
    verified.manifest = match manifest {
        None => "no backup_manifest (Barman's barman-cloud-backup writes none): each file's \
                 size and checksum not checked"
            .to_string(),
        Some((bytes, key)) => check_manifest(backup_id, &bytes, &key, &files, &mut verified),
    };
    // A missing last data part, or a backup that never finished, leaves no other trace.
    if let Some(missing) = wanted.iter().find(|w| !found.iter().any(|f| f == *w)) {
        verified.problems.push(Error::IncompleteBackup {
            backup_id: backup_id.to_string(),
            missing: missing.to_string(),
        });
    }
    Ok(verified)
}

/// Compares every file read with the manifest found in `key`; returns the summary line.
fn check_manifest(
    backup_id: &BackupId,
    bytes: &[u8],
    key: &str,
    files: &BTreeMap<String, (extract::ScannedFile, String)>,
    verified: &mut Verified,
) -> String {
    let mismatch = |detail: String| Error::ManifestMismatch {
        backup_id: backup_id.to_string(),
        detail,
    };
    let manifest = match backup_manifest::Manifest::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            verified.problems.push(mismatch(format!(
                "its backup_manifest in '{key}' cannot be used: {e}"
            )));
            return format!("backup_manifest in '{key}' damaged: files not checked");
        }
    };
    let mut algorithms = std::collections::BTreeSet::new();
    let mut listed = std::collections::BTreeSet::new();
    for entry in &manifest.files {
        let path = String::from_utf8_lossy(&entry.path).into_owned();
        listed.insert(path.clone());
        let Some((file, part)) = files.get(&path) else {
            verified.problems.push(mismatch(format!(
                "'{path}' is listed in its backup_manifest but in none of its archives"
            )));
            continue;
        };
        if file.size != entry.size {
            verified.problems.push(mismatch(format!(
                "'{path}' in '{part}' has {} bytes, its backup_manifest says {}",
                file.size, entry.size
            )));
            continue;
        }
        if let Some(want) = &entry.checksum {
            algorithms.insert(want.algorithm.name());
            let got = file
                .checksums
                .iter()
                .find(|c| c.algorithm == want.algorithm);
            if let Some(got) = got.filter(|g| g.hex != want.hex) {
                verified.problems.push(mismatch(format!(
                    "'{path}' in '{part}' has {} checksum {}, its backup_manifest says {}: the \
                     part is damaged",
                    want.algorithm, got.hex, want.hex
                )));
            }
        }
    }
    for (path, (_, part)) in files {
        if !listed.contains(path) {
            verified.problems.push(mismatch(format!(
                "'{path}' in '{part}' is not listed in its backup_manifest"
            )));
        }
    }
    let algorithms = match algorithms.len() {
        0 => "no checksums (NONE)".to_string(),
        _ => format!(
            "{} checksums",
            algorithms.into_iter().collect::<Vec<_>>().join("/")
        ),
    };
    format!(
        "backup_manifest: {} file(s), sizes and {algorithms} checked",
        manifest.files.len()
    )
}

/// Whether a read's failure is the store's or the configuration's rather than the object's:
/// then no other object can be read either, and verification stops.
pub fn stops_verification(e: &Error) -> bool {
    matches!(e.class(), crate::error::ExitClass::Network)
        || matches!(
            e,
            Error::AccessDenied { .. }
                | Error::Config { .. }
                | Error::BucketNotFound { .. }
                | Error::InvalidUrl { .. }
        )
}
