//! A hot base backup into the object store, laid out exactly as `barman-cloud-backup` lays it.
//!
//! The order is Barman 3.19's: read the server facts, `pg_backup_start`, store a STARTED
//! `backup.info`, stream the tablespaces then PGDATA (then `pg_control` and the configuration
//! files kept outside PGDATA) into tar parts, `pg_backup_stop` (which waits for the WAL to be
//! archived), add the `backup_label` member and then the `backup_manifest` (ours: Barman
//! writes none; see [`backup_manifest`]), commit every part, and only then store the DONE
//! `backup.info`. Any failure after the start stores FAILED with the reason, so a broken
//! backup is never mistaken for a good one; a killed process leaves STARTED, which no tool
//! treats as usable.

mod rules;
mod tarball;
mod upload;
mod walk;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

pub use rules::Rules;
pub use upload::PartStats;

use crate::catalog::{BackupInfo, Status};
use crate::compress::Compression;
use crate::error::{Error, PgFailure, Result};
use crate::layout::{BackupId, Layout};
use crate::pg::{BackupStart, BackupStop, Pg, ServerFacts};
use crate::postgres::backup_manifest::{self, ChecksumAlgorithm};
use crate::progress::{Counting, NOTICE, Progress as _, ProgressHandle};
use crate::python::PyValue;
use crate::python::pretty_size;
use crate::storage::{Provider, Storage, WriteOptions};
use crate::task;
use tarball::TarParts;
use upload::UploadSettings;

/// What `barman-cloud-backup` was asked to do.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// `-n/--name`.
    pub name: Option<String>,
    /// Tarball compression (gzip, bzip2, snappy or lz4).
    pub compression: Option<Compression>,
    /// `--compression-level` (our addition); `None`: gzip 6, bzip2 9.
    pub level: Option<crate::compress::Level>,
    /// `--immediate-checkpoint`: ask PostgreSQL for a fast checkpoint.
    pub immediate_checkpoint: bool,
    /// `-J/--jobs`: chunks uploaded at once.
    pub jobs: usize,
    /// `-S/--max-archive-size`: start a new part past this many (compressed) bytes.
    pub max_archive_size: u64,
    /// `--min-chunk-size`: the smallest multipart chunk, in bytes.
    pub min_chunk_size: Option<u64>,
    /// Bytes per second, `None` for unlimited.
    pub max_bandwidth: Option<u64>,
    /// `--tags`: object tags put on every uploaded object.
    pub tags: Vec<(String, String)>,
    /// The `backup_manifest` and its file checksums (`--manifest-checksums`); `None` for no
    /// manifest (`--no-manifest`, Barman's tarballs exactly).
    pub manifest: Option<ChecksumAlgorithm>,
    /// Where bytes read from PGDATA are reported.
    pub progress: ProgressHandle,
}

/// Barman's default `--max-archive-size` (100 GiB in its units) and its cap (1 TiB).
pub const DEFAULT_MAX_ARCHIVE_SIZE: u64 = 100 << 30;
const MAX_ARCHIVE_SIZE_CAP: u64 = 1 << 40;

/// The multipart chunk size Barman derives per provider from the archive size limit: at
/// least twice the size that would fill the provider's part count with `largest_archive`
/// bytes, and at least its minimum part. Every part of one upload has this size (R2 and
/// some other S3-compatible stores require equal parts).
pub fn chunk_size(provider: Provider, largest_archive: u64, min_chunk: Option<u64>) -> usize {
    let (max_chunks, min) = match provider {
        Provider::AzureBlobStorage => (50_000, 64 << 10),
        // S3, and GCS and file:// where our streamed uploads take any size: S3's figures.
        _ => (10_000, 5 << 20),
    };
    (2 * (largest_archive / max_chunks))
        .max(min)
        .max(min_chunk.unwrap_or(0)) as usize
}

/// The backup ID: the local time when the backup starts.
pub fn new_backup_id() -> BackupId {
    BackupId::new(chrono::Local::now().format("%Y%m%dT%H%M%S").to_string())
}

/// The major version as it names tablespace directories: `15`, or `9.6` before version 10.
fn major_version(version: u32) -> String {
    if version >= 100_000 {
        (version / 10_000).to_string()
    } else {
        format!("{}.{}", version / 10_000, version / 100 % 100)
    }
}

/// What the backup is doing, named in its failure: in the log, in the `error` of
/// `backup.info` (`failure <phase> (<reason>)`, Barman's form) and in the exit message.
mod phase {
    pub(super) const SETTINGS: &str = "reading the server settings";
    pub(super) const CHECKPOINT: &str = "waiting for PostgreSQL's checkpoint";
    pub(super) const UPLOADING: &str = "uploading data";
    pub(super) const STOPPING: &str = "waiting for pg_backup_stop (WAL archiving)";
    pub(super) const SWITCHING: &str = "switching WAL";
    pub(super) const RESTORE_POINT: &str = "creating the restore point";
}

/// The step the copy is in, read when it fails or is interrupted.
#[derive(Debug)]
struct Steps(std::sync::Mutex<&'static str>);

impl Steps {
    fn enter(&self, phase: &'static str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    fn current(&self) -> &'static str {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes a backup of the server `pg` is connected to. When `interrupt` resolves first (a
/// signal, say), the copy stops and the backup is stored as FAILED.
///
/// # Errors
/// [`Error::BackupFailed`] once a backup ID exists (its `backup.info` then says FAILED);
/// PostgreSQL or storage errors before that.
pub async fn backup(
    storage: &Storage,
    layout: &Layout,
    pg: &Pg,
    options: &BackupOptions,
    interrupt: impl std::future::Future<Output = ()>,
) -> Result<BackupId> {
    let started = Instant::now();
    let backup_id = new_backup_id();
    let systemid = pg.system_id().await?;
    if pg.version < 90_600 {
        return Err(Error::Postgres {
            action: "take a backup",
            source: PgFailure::Unexpected(format!(
                "unsupported PostgreSQL version {}: 9.6 or later is required",
                pg.version
            )),
        });
    }
    let mut info = BackupInfo {
        server_name: Some("cloud".into()),
        systemid: Some(systemid),
        version: Some(pg.version),
        status: Status::Started,
        ..Default::default()
    };
    // Parts of earlier backups killed mid-write (file:// only). A running backup's data
    // part can sit idle while pg_backup_stop waits for WAL to be archived, so only a day
    // without a write marks one as abandoned.
    storage
        .sweep_staging(&layout.base_dir(), Duration::from_secs(24 * 3600))
        .await;
    let (stop, stopped) = watch::channel(false);
    let steps = Steps(std::sync::Mutex::new(phase::SETTINGS));
    let outcome = {
        let copying = copy(
            storage, layout, pg, options, &backup_id, &mut info, started, stopped, &steps,
        );
        tokio::pin!(copying);
        tokio::select! {
            outcome = &mut copying => outcome.map_err(|error| (steps.current(), error)),
            () = interrupt => {
                let during = steps.current();
                tracing::warn!("interrupted while {during}: cancelling the backup");
                // Let the uploader abort the parts in flight: an S3 multipart upload left
                // open is billed until a lifecycle rule removes it.
                let _ = stop.send(true);
                stop_copy(pg, &mut copying).await;
                Err((during, Error::Interrupted("barman-cloud-backup")))
            }
        }
    };
    info.backup_name = options.name.clone();
    match outcome {
        Ok(summary) => {
            info.status = Status::Done;
            store_info(storage, layout, &backup_id, &info, options).await?;
            tracing::info!(target: NOTICE, "{}", summary.line(&backup_id));
            Ok(backup_id)
        }
        Err((phase, error)) => {
            let reason = error.to_string();
            let first_line = reason.lines().next().unwrap_or_default();
            info.status = Status::Failed;
            info.copy_stats = None;
            tracing::error!("Backup failed {phase} ({first_line})");
            info.error = Some(format!("failure {phase} ({first_line})"));
            if let Err(e) = store_info(storage, layout, &backup_id, &info, options).await {
                tracing::error!("cannot store the FAILED backup.info of {backup_id}: {e}");
            }
            Err(Error::BackupFailed {
                backup_id: backup_id.to_string(),
                phase,
                reason: Box::new(error),
            })
        }
    }
}

/// Stops an interrupted copy: cancels what PostgreSQL runs for it (the checkpoint
/// `pg_backup_start` waits for, `pg_backup_stop`'s wait for archiving), again every
/// [`CANCEL_EVERY`] since a step may send its query after a cancel landed, until the copy
/// gives up or [`ABORT_GRACE`] has passed. The session then ends, and PostgreSQL aborts a
/// backup left open in it.
async fn stop_copy<T>(
    pg: &Pg,
    copying: &mut std::pin::Pin<&mut impl std::future::Future<Output = T>>,
) {
    let deadline = Instant::now() + ABORT_GRACE;
    loop {
        pg.cancel().await;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        if tokio::time::timeout(CANCEL_EVERY.min(left), copying.as_mut())
            .await
            .is_ok()
        {
            return;
        }
    }
}

/// How often an interrupted backup repeats its cancel request.
const CANCEL_EVERY: Duration = Duration::from_millis(200);

async fn store_info(
    storage: &Storage,
    layout: &Layout,
    backup_id: &BackupId,
    info: &BackupInfo,
    options: &BackupOptions,
) -> Result<()> {
    let write = WriteOptions {
        tags: options.tags.clone(),
    };
    storage
        .put(
            &layout.backup_info(backup_id),
            Bytes::from(info.to_string()),
            &write,
        )
        .await
}

/// How long an interrupted backup waits for its uploads to be aborted.
const ABORT_GRACE: Duration = Duration::from_secs(10);

#[allow(clippy::too_many_arguments)]
async fn copy(
    storage: &Storage,
    layout: &Layout,
    pg: &Pg,
    options: &BackupOptions,
    backup_id: &BackupId,
    info: &mut BackupInfo,
    started: Instant,
    stopped: watch::Receiver<bool>,
    steps: &Steps,
) -> Result<Summary> {
    let facts = pg.facts().await?;
    record_facts(info, &facts);
    let segment_size = info.xlog_segment_size;
    let label = format!("Barman backup cloud {backup_id}");
    if !options.immediate_checkpoint {
        // A spread checkpoint can take minutes, with nothing else to see (issue #17).
        tracing::info!(
            target: NOTICE,
            "Waiting for PostgreSQL's checkpoint before the backup starts (spread over \
             checkpoint_timeout x checkpoint_completion_target): run CHECKPOINT in psql to \
             hurry it, or pass --immediate-checkpoint"
        );
    }
    steps.enter(phase::CHECKPOINT);
    let start = pg
        .backup_start(&label, options.immediate_checkpoint)
        .await?;
    steps.enter(phase::UPLOADING);
    tracing::info!("Starting backup '{backup_id}' at {}", start.lsn);
    info.timeline = Some(start.timeline);
    info.begin_time = Some(start.time);
    info.begin_xlog = Some(start.lsn.to_string());
    info.begin_wal = Some(start.lsn.segment(start.timeline, segment_size).to_string());
    info.begin_offset = Some(start.lsn.offset(segment_size));
    store_info(storage, layout, backup_id, info, options).await?;

    let max_archive_size = if options.max_archive_size > MAX_ARCHIVE_SIZE_CAP {
        tracing::warn!("max-archive-size too big. Capping it to 1.0 TiB");
        MAX_ARCHIVE_SIZE_CAP
    } else {
        options.max_archive_size
    };
    // Barman sizes parts for the largest archive allowed (a 100 GiB part by default: 21 MB
    // chunks, three in memory at -J 2). No archive can be larger than the server's data
    // (compressed or not) plus its logs and config; four times the tablespaces' size leaves
    // room for those and for tables that grow during the backup, and still sizes the parts
    // of a database under 6 GB at the 5 MiB minimum (issue #19 item 4).
    let largest_archive = facts
        .cluster_size
        .map_or(max_archive_size, |size| size.saturating_mul(4))
        .min(max_archive_size);
    let settings = UploadSettings {
        chunk_size: chunk_size(storage.provider(), largest_archive, options.min_chunk_size),
        jobs: options.jobs.max(1),
        max_bandwidth: options.max_bandwidth,
        write: WriteOptions {
            tags: options.tags.clone(),
        },
    };
    let (tx, rx) = tarball::queue();
    let uploader = upload::upload_parts(storage, layout, backup_id, rx, &settings, stopped);
    let read = Counting::new(options.progress.clone());
    read.start(facts.cluster_size);
    let tree = Tree {
        progress: ProgressHandle(read.clone()),
        pgdata: PathBuf::from(&facts.pgdata),
        facts: facts.clone(),
        major: major_version(pg.version),
        compression: options.compression,
        level: options.level,
        max_archive_size,
        manifest: options.manifest,
    };
    // The data tar stays open across pg_backup_stop: backup_label is its last member.
    let producer = async {
        let walker = task::blocking("reading PGDATA", move || tree.copy(tx));
        let (data, tree) = walker.await?.map_err(copy_error)?;
        steps.enter(phase::STOPPING);
        let stop = pg.backup_stop().await?;
        steps.enter(phase::UPLOADING);
        let (begun, ended) = (start.clone(), stop.clone());
        let finisher = task::blocking("writing backup_label", move || {
            tree.finish(data, &begun, &ended)
        });
        finisher.await?.map_err(copy_error)?;
        Ok::<_, Error>(stop)
    };
    let (stop, parts) = tokio::join!(producer, uploader);
    read.finish(stop.is_ok() && parts.is_ok());
    // When both sides failed, one caused the other: the tar side reports a closed pipe when
    // the uploader stopped first, the uploader a cut-off part when the tar side did.
    let closed_pipe = |e: &Error| matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe);
    let (stop, parts) = match (stop, parts) {
        (Err(e), _) if !closed_pipe(&e) => return Err(e),
        (_, Err(e)) => return Err(e),
        (stop, Ok(parts)) => (stop?, parts),
    };
    if !pg.is_in_recovery().await.unwrap_or(true) {
        steps.enter(phase::SWITCHING);
        pg.switch_wal().await?;
        steps.enter(phase::RESTORE_POINT);
        pg.create_restore_point(&format!("barman_{backup_id}"))
            .await?;
    }
    info.end_time = Some(stop.time);
    info.end_xlog = Some(stop.lsn.to_string());
    info.end_wal = Some(stop.lsn.segment(stop.timeline, segment_size).to_string());
    info.end_offset = Some(stop.lsn.offset(segment_size));
    info.backup_label = Some(stop.label);
    info.copy_stats = Some(copy_stats(&parts, options.jobs, started));
    Ok(Summary {
        read: read.bytes(),
        stored: parts.iter().map(|p| p.bytes).sum(),
        started,
    })
}

/// What the one line after a backup says (issue #17).
struct Summary {
    /// Bytes read from PGDATA and the tablespaces.
    read: u64,
    /// Bytes stored, after compression.
    stored: u64,
    started: Instant,
}

impl Summary {
    fn line(&self, backup_id: &BackupId) -> String {
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = self.read as f64 / seconds.max(0.001);
        format!(
            "Backup {backup_id} done: {} read, {} stored, in {seconds:.1} s ({}/s)",
            pretty_size(self.read as f64),
            pretty_size(self.stored as f64),
            pretty_size(rate)
        )
    }
}

fn copy_error(source: std::io::Error) -> Error {
    Error::Io {
        action: "copy",
        path: PathBuf::from("PGDATA"),
        source,
    }
}

fn record_facts(info: &mut BackupInfo, facts: &ServerFacts) {
    info.pgdata = Some(facts.pgdata.clone());
    info.xlog_segment_size = facts.wal_segment_size;
    info.config_file = facts.config_file.clone();
    info.hba_file = facts.hba_file.clone();
    info.ident_file = facts.ident_file.clone();
    info.included_files = facts.included_files.clone();
    info.tablespaces = (!facts.tablespaces.is_empty()).then(|| facts.tablespaces.clone());
    info.data_checksums = facts.data_checksums.clone();
    info.summarize_wal = facts.summarize_wal.clone();
    info.cluster_size = facts.cluster_size;
}

/// Barman's `copy_stats`: per tar base, the time its upload took.
fn copy_stats(parts: &[PartStats], jobs: usize, started: Instant) -> PyValue {
    let mut per_item: Vec<(String, f64)> = Vec::new();
    for part in parts {
        match per_item.iter_mut().find(|(b, _)| *b == part.tarball.base) {
            Some((_, seconds)) => *seconds += part.seconds,
            None => per_item.push((part.tarball.base.clone(), part.seconds)),
        }
    }
    let round = |x: f64| (x * 1e6).round() / 1e6;
    let dict = |f: &dyn Fn(f64) -> PyValue| {
        PyValue::Dict(
            per_item
                .iter()
                .map(|(b, s)| (PyValue::Str(b.clone()), f(*s)))
                .collect(),
        )
    };
    let copy_time = per_item.iter().map(|(_, s)| *s).fold(0.0, f64::max);
    let serialized: f64 = per_item.iter().map(|(_, s)| *s).sum();
    let entry = |k: &str, v: PyValue| (PyValue::Str(k.into()), v);
    PyValue::Dict(vec![
        entry(
            "total_time",
            PyValue::Float(round(started.elapsed().as_secs_f64())),
        ),
        entry("number_of_workers", PyValue::Int(jobs as i64)),
        entry("analysis_time", PyValue::Int(0)),
        entry("analysis_time_per_item", dict(&|_| PyValue::Int(0))),
        entry("copy_time_per_item", dict(&|s| PyValue::Float(round(s)))),
        entry(
            "serialized_copy_time_per_item",
            dict(&|s| PyValue::Float(round(s))),
        ),
        entry("copy_time", PyValue::Float(round(copy_time))),
        entry("serialized_copy_time", PyValue::Float(round(serialized))),
    ])
}

/// The files of one backup, walked on a blocking thread.
struct Tree {
    progress: ProgressHandle,
    pgdata: PathBuf,
    facts: ServerFacts,
    major: String,
    compression: Option<Compression>,
    level: Option<crate::compress::Level>,
    max_archive_size: u64,
    manifest: Option<ChecksumAlgorithm>,
}

impl Tree {
    fn parts(&self, base: &str, tx: mpsc::Sender<Message>) -> TarParts {
        TarParts::new(
            base,
            self.compression,
            self.max_archive_size,
            tx,
            self.progress.clone(),
        )
        .with_level(self.level)
    }

    /// Tablespaces, then PGDATA, `pg_control` and the outside configuration files; returns
    /// the still-open data tar.
    fn copy(self, tx: mpsc::Sender<Message>) -> std::io::Result<(TarParts, Tree)> {
        let mut stats = walk::WalkStats::default();
        let mut exclude = Vec::new();
        let mut manifest = self
            .manifest
            .map(|algorithm| {
                backup_manifest::Writer::new(algorithm, backup_manifest::Spool::open())
            })
            .transpose()?;
        for ts in &self.facts.tablespaces {
            let oid = ts.oid.to_string();
            if let Some(inside) = ts.location.strip_prefix(&format!("{}/", self.facts.pgdata)) {
                exclude.push(format!("/{inside}"));
            }
            exclude.push(format!("/pg_tblspc/{oid}"));
            tracing::info!("Uploading tablespace '{}' ({})", ts.name, ts.location);
            // pg_basebackup lists a tablespace's files as PGDATA reaches them.
            let mut parts = self
                .parts(&oid, tx.clone())
                .with_manifest(manifest, &format!("pg_tblspc/{oid}/"));
            let location = self.pgdata.join("pg_tblspc").join(&oid);
            let location = std::fs::canonicalize(&location).unwrap_or(ts.location.clone().into());
            walk::walk(&location, &Rules::tablespace(&self.major), &mut parts)?;
            manifest = parts.take_manifest();
            parts.finish()?;
        }
        let pgdata = std::fs::canonicalize(&self.pgdata)?;
        tracing::info!("Uploading PGDATA ({})", pgdata.display());
        let mut data = self.parts("data", tx).with_manifest(manifest, "");
        walk::walk(&pgdata, &Rules::pgdata(exclude), &mut data)?;
        walk::add_file(
            &pgdata.join("global/pg_control"),
            "global/pg_control",
            &mut data,
            &mut stats,
        )?;
        let files = [
            (&self.facts.config_file, false),
            (&self.facts.hba_file, false),
            (&self.facts.ident_file, true),
        ];
        for (file, optional) in files {
            let Some(file) = file.as_deref().map(Path::new) else {
                continue;
            };
            if file.starts_with(&pgdata) || file.starts_with(&self.pgdata) {
                continue;
            }
            if optional && !file.exists() {
                continue;
            }
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            tracing::info!("Uploading configuration file '{}'", file.display());
            walk::add_file(file, &name, &mut data, &mut stats)?;
        }
        for file in self.facts.included_files.iter().flatten() {
            if !Path::new(file).starts_with(&pgdata) && !Path::new(file).starts_with(&self.pgdata) {
                tracing::warn!(
                    "included configuration file '{file}' is outside PGDATA and is not backed up"
                );
            }
        }
        Ok((data, self))
    }

    /// Appends `backup_label` (Barman's header: mode 0644, uid 0, PGDATA's group, time 0),
    /// then the manifest, and closes the data tar.
    fn finish(
        self,
        mut data: TarParts,
        start: &BackupStart,
        stop: &BackupStop,
    ) -> std::io::Result<()> {
        let pgdata = std::fs::metadata(&self.pgdata)?;
        let gid = pgdata.gid().into();
        data.add_bytes("backup_label", stop.label.as_bytes(), 0o644, 0, gid)?;
        if let Some(manifest) = data.take_manifest() {
            let ranges = self.wal_ranges(start, stop)?;
            let files = manifest.files();
            let (spool, len) = manifest.finish(&ranges)?;
            tracing::info!(
                "Adding {} ({files} files, {len} bytes)",
                backup_manifest::FILE_NAME,
            );
            // PGDATA's owner and pg_basebackup's mode: pg_verifybackup, run as the server's
            // user, must be able to read it after a restore as root.
            let header = (0o600, pgdata.uid().into(), gid, now_seconds());
            let reader = spool.into_reader()?;
            data.add_unlisted(backup_manifest::FILE_NAME, reader, len, header)?;
        }
        data.finish()
    }

    /// The manifest's WAL ranges; a backup that ends on another timeline than it started
    /// (a standby promoted meanwhile) takes them from the end timeline's history file.
    fn wal_ranges(
        &self,
        start: &BackupStart,
        stop: &BackupStop,
    ) -> std::io::Result<Vec<backup_manifest::WalRange>> {
        let history =
            if start.timeline == stop.timeline {
                Vec::new()
            } else {
                let wal = ["pg_wal", "pg_xlog"]
                    .into_iter()
                    .find(|d| self.pgdata.join(d).is_dir())
                    .unwrap_or("pg_wal");
                let path = self
                    .pgdata
                    .join(wal)
                    .join(format!("{:08X}.history", stop.timeline));
                crate::postgres::history_entries(&std::fs::read_to_string(&path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                })?)
            };
        backup_manifest::wal_ranges(
            (start.lsn, start.timeline),
            (stop.lsn, stop.timeline),
            &history,
        )
        .map_err(std::io::Error::other)
    }
}

use tarball::Message;

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_follow_barmans_formula() {
        assert_eq!(
            chunk_size(Provider::AwsS3, DEFAULT_MAX_ARCHIVE_SIZE, None),
            21_474_836
        );
        assert_eq!(
            chunk_size(Provider::AzureBlobStorage, DEFAULT_MAX_ARCHIVE_SIZE, None),
            4_294_966
        );
        assert_eq!(chunk_size(Provider::AwsS3, 1 << 20, None), 5 << 20);
        assert_eq!(chunk_size(Provider::AwsS3, 1 << 20, Some(8 << 20)), 8 << 20);
    }

    #[test]
    fn major_versions_name_tablespace_directories() {
        assert_eq!(major_version(150018), "15");
        assert_eq!(major_version(90624), "9.6");
    }
}
