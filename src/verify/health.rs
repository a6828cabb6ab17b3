//! Archive health for monitoring: a verification [`Report`] as Prometheus gauges, printed
//! (`--format prometheus`) or written for node_exporter's textfile collector (`--textfile`).
//!
//! The names start with `barman_cloud_` and carry a `server` label. The three recovery
//! window gauges have the names and meanings of CloudNativePG's (`cnpg_collector_…`, and
//! the Barman Cloud Plugin's `barman_cloud_cloudnative_pg_io_…`): Unix seconds, 0 when
//! there is no such backup, so an alert on their age fires when there is none. The newest
//! WAL is given as its timeline and segment number rather than as a label, which would start
//! a new series with every segment.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Report;
use crate::catalog::{BackupInfo, Status};
use crate::error::{Error, Result};
use crate::layout::BackupId;
use crate::postgres::WalName;

/// What the catalog says of one backup, for the backup gauges.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    /// The backup ID.
    pub backup_id: String,
    /// Its `backup.info` status.
    pub status: String,
    /// When it started.
    pub begin_time: Option<DateTime<Utc>>,
    /// When it ended.
    pub end_time: Option<DateTime<Utc>>,
}

impl BackupSummary {
    /// The summary of backup `id` from its `backup.info`.
    pub fn of(id: &BackupId, info: &BackupInfo) -> Self {
        BackupSummary {
            backup_id: id.to_string(),
            status: info.status.as_str().to_string(),
            begin_time: info.begin_time.map(|t| t.0.with_timezone(&Utc)),
            end_time: info.end_time.map(|t| t.0.with_timezone(&Utc)),
        }
    }

    fn done(&self) -> bool {
        self.status == Status::Done.as_str()
    }
}

/// The catalog as the health gauges need it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CatalogSummary {
    /// Every readable backup, oldest first.
    pub backups: Vec<BackupSummary>,
    /// The WAL segment size the backups give (16 MiB without one), to number segments.
    pub segment_size: u64,
}

/// The statuses always reported, so that an alert on a count of 0 has a series to read.
const STATUSES: [&str; 4] = ["DONE", "FAILED", "STARTED", "WAITING_FOR_WALS"];

/// Accumulates the exposition text, one metric family at a time.
struct Exposition {
    out: String,
    server: String,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP barman_cloud_{name} {help}");
        let _ = writeln!(self.out, "# TYPE barman_cloud_{name} gauge");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.out, "barman_cloud_{name}{{server=\"{}\"", self.server);
        for (key, val) in labels {
            let _ = write!(self.out, ",{key}=\"{}\"", escape(val));
        }
        let _ = writeln!(self.out, "}} {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, help);
        self.sample(name, &[], value);
    }
}

/// A label value as the exposition format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix(time: Option<DateTime<Utc>>) -> i64 {
    time.map_or(0, |t| t.timestamp())
}

/// The segment's number counted from the start of its timeline's WAL (LSN / segment size),
/// which grows by one per segment, so `rate()` reads the archiving speed from it.
fn segment_number(name: &str, segment_size: u64) -> Option<u64> {
    let parsed = WalName::parse(name).ok()?;
    let seg = u64::from_str_radix(parsed.segment_name()?.get(16..24)?, 16).ok()?;
    let per_log = 0x1_0000_0000u64 / segment_size.max(1);
    Some(u64::from(parsed.log()) * per_log + seg)
}

/// The gauges of `report`, verified at `now`, in the text exposition format (version
/// 0.0.4).
pub fn to_prometheus(report: &Report, now: DateTime<Utc>) -> String {
    let mut e = Exposition {
        out: String::new(),
        server: escape(&report.server),
    };
    let problems = report.problems().count();
    e.gauge(
        "verify_ok",
        "1 when barman-cloud-verify found no problem, else 0",
        u8::from(problems == 0),
    );
    e.gauge(
        "verify_problems",
        "Problems barman-cloud-verify found, each printed on a line of its own",
        problems,
    );
    e.gauge(
        "verify_timestamp",
        "When barman-cloud-verify ran, as a unix timestamp",
        now.timestamp(),
    );
    verified_backups(&mut e, report);

    let backups = &report.catalog.backups;
    e.family("backups", "Backups in the catalog by backup.info status");
    let mut statuses: Vec<&str> = STATUSES.to_vec();
    for b in backups {
        if !statuses.contains(&b.status.as_str()) {
            statuses.push(&b.status);
        }
    }
    for status in statuses {
        let count = backups.iter().filter(|b| b.status == status).count();
        e.sample("backups", &[("status", status)], count);
    }
    if let Some(last) = backups.last() {
        e.family(
            "last_backup_info",
            "The newest backup of the catalog, whatever its status: always 1",
        );
        e.sample(
            "last_backup_info",
            &[("backup_id", &last.backup_id), ("status", &last.status)],
            1,
        );
    }
    e.gauge(
        "last_backup_end_timestamp",
        "When the newest backup of the catalog ended, whatever its status, as a unix \
         timestamp (0: none, or it has not ended)",
        unix(backups.last().and_then(|b| b.end_time)),
    );
    let done: Vec<&BackupSummary> = backups.iter().filter(|b| b.done()).collect();
    e.gauge(
        "first_recoverability_point",
        "The first point of recoverability: the end of the oldest DONE backup, as a unix \
         timestamp (0: none)",
        unix(done.first().and_then(|b| b.end_time)),
    );
    e.gauge(
        "last_available_backup_timestamp",
        "The end of the newest DONE backup, as a unix timestamp (0: none)",
        unix(done.last().and_then(|b| b.end_time)),
    );
    let failed = backups.iter().rev().find(|b| b.status == "FAILED");
    e.gauge(
        "last_failed_backup_timestamp",
        "When the newest FAILED backup ended (or began, if it never ended), as a unix \
         timestamp (0: none)",
        unix(failed.and_then(|b| b.end_time.or(b.begin_time))),
    );

    let a = &report.archive;
    if let (Some(name), Some(time), Some(age)) =
        (&a.newest_wal, a.newest_wal_time, a.newest_wal_age_seconds)
    {
        let timeline = WalName::parse(name).map_or(0, |n| n.timeline());
        e.gauge(
            "wal_newest_timeline",
            "The timeline of the newest archived WAL segment",
            timeline,
        );
        if let Some(number) = segment_number(name, report.catalog.segment_size) {
            e.gauge(
                "wal_newest_segment",
                "The newest archived WAL segment's number on its timeline (its start LSN \
                 divided by the segment size)",
                number,
            );
        }
        e.gauge(
            "wal_newest_timestamp",
            "When the newest archived WAL segment was stored, as a unix timestamp",
            time.timestamp(),
        );
        e.gauge(
            "wal_newest_age_seconds",
            "How long ago the newest archived WAL segment was stored",
            age.max(0),
        );
    }
    e.gauge(
        "wal_gaps",
        "Runs of consecutive WAL segments missing from the archive",
        a.continuity.gaps.len(),
    );
    e.gauge(
        "wal_missing_segments",
        "WAL segments missing from the archive, all gaps together",
        a.continuity.gaps.iter().map(|g| g.count).sum::<u64>(),
    );
    e.gauge(
        "wal_missing_history_files",
        "Timelines with archived segments but no .history file",
        a.continuity.missing_history.len(),
    );
    e.out
}

/// The per-backup gauges, for the backups whose contents were verified (none with
/// `--wal-only`).
fn verified_backups(e: &mut Exposition, report: &Report) {
    if report.backups.is_empty() {
        return;
    }
    e.family(
        "backup_verify_problems",
        "Problems found in a verified backup's objects and WAL",
    );
    for b in &report.backups {
        e.sample(
            "backup_verify_problems",
            &[("backup_id", &b.backup_id)],
            b.problems.len(),
        );
    }
}

/// The gauges when verification could not run at all (the store unreachable, ...): not ok,
/// and when it was tried, so that a stale file never reads as healthy.
pub fn failure_to_prometheus(server: &str, now: DateTime<Utc>) -> String {
    let mut e = Exposition {
        out: String::new(),
        server: escape(server),
    };
    e.gauge(
        "verify_ok",
        "1 when barman-cloud-verify found no problem, else 0",
        0,
    );
    e.gauge(
        "verify_timestamp",
        "When barman-cloud-verify ran, as a unix timestamp",
        now.timestamp(),
    );
    e.out
}

/// Replaces `path` with `text` as node_exporter's textfile collector needs: a temporary
/// file in the same directory (hidden and not ending in `.prom`, so the collector skips
/// it), fsynced, mode 0644, then renamed over `path`, so a scrape reads the old file or the
/// new one, never part of one.
///
/// # Errors
/// [`Error::Io`] naming `path` when the directory cannot be written.
pub fn write_textfile(path: &Path, text: &str) -> Result<()> {
    crate::durable::write_atomically(path, |file| {
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.write_all(text.as_bytes())
    })
    .map_err(|source| Error::Io {
        action: "write the metrics file",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_numbered_along_the_timeline() {
        const MB16: u64 = 16 << 20;
        assert_eq!(segment_number("000000010000000000000005", MB16), Some(5));
        assert_eq!(segment_number("000000020000000100000003", MB16), Some(259));
        assert_eq!(
            segment_number("000000010000000100000003", 1 << 30),
            Some(4 + 3)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
