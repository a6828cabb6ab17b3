//! Which backup a recovery starts from (architecture §6 step 3b), chosen from
//! `barman-cloud-backup-list` as the plugin's Go library chooses it (`FindBackupInfo`,
//! `LatestBackupInfo`): only completed backups (both times known) count, newest first by
//! start time, and
//! - `backupID`: that backup, exactly;
//! - else `targetTime`: the newest whose end time is not after the target;
//! - else `targetLSN`: the newest whose end LSN is below the target;
//! - else the newest;
//!
//! each on timeline `targetTLI` when it is a number (empty or `latest`: any timeline; any
//! other word matches no backup, as in the library). No recovery target at all: the newest.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

use crate::barman::catalog::{BarmanBackup, parse_lsn};
use crate::cluster::RecoveryTarget;

/// Why no backup can be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `targetTime` is not a time PostgreSQL or the library accepts.
    #[error(
        "read recoveryTarget.targetTime {0:?}: not a time; write it as \
         YYYY-MM-DD HH:MM:SS[.ffffff][±TZ] or RFC 3339 (no zone means UTC)"
    )]
    TargetTime(String),
    /// `targetLSN` is not `X/Y`.
    #[error("read recoveryTarget.targetLSN {0:?}: not an LSN; write it as X/Y in hexadecimal")]
    TargetLsn(String),
}

/// The backup to restore for `target` (`None`: no `recoveryTarget`), or `None` when no
/// completed backup fits it.
///
/// # Errors
/// [`Error`] when the target's time or LSN cannot be read.
pub fn choose<'a>(
    backups: &'a [BarmanBackup],
    target: Option<&RecoveryTarget>,
) -> Result<Option<&'a BarmanBackup>, Error> {
    let mut done: Vec<(DateTime<Utc>, &BarmanBackup)> = backups
        .iter()
        .filter(|b| b.is_done())
        .filter_map(|b| Some((b.started()?, b)))
        .collect();
    // Stable, so two backups started at the same second keep the list's order.
    done.sort_by_key(|&(started, _)| started);
    let mut newest_first = done.into_iter().rev().map(|(_, b)| b);
    let Some(target) = target else {
        return Ok(newest_first.next());
    };
    if !target.backup_id.is_empty() {
        return Ok(newest_first.find(|b| b.backup_id == target.backup_id));
    }
    let on_timeline = |b: &BarmanBackup| on_timeline(b, &target.target_tli);
    if !target.target_time.is_empty() {
        let time = parse_target_time(&target.target_time)
            .ok_or_else(|| Error::TargetTime(target.target_time.clone()))?;
        return Ok(newest_first.find(|b| on_timeline(b) && b.ended().is_some_and(|e| e <= time)));
    }
    if !target.target_lsn.is_empty() {
        let lsn = parse_lsn(&target.target_lsn)
            .ok_or_else(|| Error::TargetLsn(target.target_lsn.clone()))?;
        return Ok(newest_first.find(|b| on_timeline(b) && b.end_lsn() < lsn));
    }
    Ok(newest_first.find(|b| on_timeline(b)))
}

/// `targetTLI` empty or `latest` takes any timeline; otherwise it must be the backup's
/// timeline written in decimal (a backup without one is timeline 0, as in Go).
fn on_timeline(backup: &BarmanBackup, target_tli: &str) -> bool {
    target_tli.is_empty()
        || target_tli == "latest"
        || backup.timeline.unwrap_or(0).to_string() == target_tli
}

/// `targetTime` as the library's `ParseTargetTime` reads it: PostgreSQL's
/// `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM]]`, RFC 3339, or RFC 3339 without a zone; no zone
/// means UTC (plugin v0.10.0, #700).
pub fn parse_target_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let zoned = |format: &str| {
        DateTime::<FixedOffset>::parse_from_str(text, format)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let utc = |format: &str| {
        NaiveDateTime::parse_from_str(text, format)
            .ok()
            .map(|t| t.and_utc())
    };
    zoned("%Y-%m-%d %H:%M:%S%.f%#z")
        .or_else(|| utc("%Y-%m-%d %H:%M:%S%.f"))
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
        .or_else(|| utc("%Y-%m-%dT%H:%M:%S%.f"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A completed backup `id` on timeline `tli`, from `begin` to `end` (RFC 3339), ending
    /// at LSN `end_lsn`.
    fn backup(id: &str, tli: u32, begin: &str, end: &str, end_lsn: &str) -> BarmanBackup {
        BarmanBackup {
            backup_id: id.into(),
            begin_time_iso: Some(begin.into()),
            end_time_iso: Some(end.into()),
            end_xlog: Some(end_lsn.into()),
            timeline: Some(tli),
            ..BarmanBackup::default()
        }
    }

    /// Three completed backups (two on timeline 1, one on 2), listed out of order, and a
    /// failed one, newer than all.
    fn catalog() -> Vec<BarmanBackup> {
        vec![
            backup(
                "b2",
                1,
                "2026-12-01T02:00:00Z",
                "2026-12-01T02:10:00Z",
                "0/5000100",
            ),
            backup(
                "b1",
                1,
                "2026-12-01T01:00:00Z",
                "2026-12-01T01:10:00Z",
                "0/3000100",
            ),
            backup(
                "b3",
                2,
                "2026-12-01T04:00:00+01:00",
                "2026-12-01T04:10:00+01:00",
                "0/7000100",
            ),
            BarmanBackup {
                backup_id: "failed".into(),
                begin_time_iso: Some("2026-12-01T05:00:00Z".into()),
                end_xlog: Some("0/9000000".into()),
                timeline: Some(2),
                error: Some("failure".into()),
                ..BarmanBackup::default()
            },
        ]
    }

    fn target(fields: &[(&str, &str)]) -> RecoveryTarget {
        let mut target = RecoveryTarget::default();
        for &(field, value) in fields {
            let slot = match field {
                "backupID" => &mut target.backup_id,
                "targetTime" => &mut target.target_time,
                "targetLSN" => &mut target.target_lsn,
                "targetTLI" => &mut target.target_tli,
                other => panic!("no field {other}"),
            };
            *slot = value.to_owned();
        }
        target
    }

    fn chosen(fields: &[(&str, &str)]) -> Option<String> {
        let backups = catalog();
        choose(&backups, Some(&target(fields)))
            .unwrap()
            .map(|b| b.backup_id.clone())
    }

    #[test]
    fn no_target_is_the_newest_completed_backup() {
        let backups = catalog();
        // b3 started at 03:00Z (04:00+01:00); the failed one, newer, never counts.
        assert_eq!(choose(&backups, None).unwrap().unwrap().backup_id, "b3");
        assert_eq!(chosen(&[]).as_deref(), Some("b3"));
        assert_eq!(choose(&backups[3..], None).unwrap(), None);
        assert_eq!(choose(&[], None).unwrap(), None);
    }

    #[test]
    fn backup_id_is_exact_and_completed() {
        assert_eq!(chosen(&[("backupID", "b1")]).as_deref(), Some("b1"));
        // Wins over every other field.
        assert_eq!(
            chosen(&[("backupID", "b1"), ("targetTime", "2026-12-01 09:00:00")]).as_deref(),
            Some("b1")
        );
        assert_eq!(chosen(&[("backupID", "b")]), None);
        assert_eq!(chosen(&[("backupID", "failed")]), None);
    }

    #[test]
    fn target_time_takes_the_newest_ended_by_then() {
        // No zone is UTC, in both spellings.
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01 01:30:00")]).as_deref(),
            Some("b1")
        );
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01T01:30:00")]).as_deref(),
            Some("b1")
        );
        // Exactly the end time counts (not after it).
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01 01:10:00")]).as_deref(),
            Some("b1")
        );
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01 01:09:59.999999")]),
            None
        );
        // With a zone: 03:30+02 is 01:30Z.
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01 03:30:00+02")]).as_deref(),
            Some("b1")
        );
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01 03:30:00.5+02:00")]).as_deref(),
            Some("b1")
        );
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01T03:30:00+02:00")]).as_deref(),
            Some("b1")
        );
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01T02:30:00Z")]).as_deref(),
            Some("b2")
        );
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01T03:09:59Z")]).as_deref(),
            Some("b2")
        );
        assert_eq!(
            chosen(&[("targetTime", "2026-12-01T05:00:00Z")]).as_deref(),
            Some("b3")
        );
    }

    #[test]
    fn target_time_on_a_timeline() {
        let at = ("targetTime", "2026-12-01T05:00:00Z");
        assert_eq!(chosen(&[at, ("targetTLI", "1")]).as_deref(), Some("b2"));
        assert_eq!(chosen(&[at, ("targetTLI", "2")]).as_deref(), Some("b3"));
        assert_eq!(
            chosen(&[at, ("targetTLI", "latest")]).as_deref(),
            Some("b3")
        );
        assert_eq!(chosen(&[at, ("targetTLI", "")]).as_deref(), Some("b3"));
        assert_eq!(chosen(&[at, ("targetTLI", "3")]), None);
        // The library's pattern takes only empty and `latest`; `current` matches nothing.
        assert_eq!(chosen(&[at, ("targetTLI", "current")]), None);
    }

    #[test]
    fn target_lsn_takes_the_newest_ending_below_it() {
        assert_eq!(chosen(&[("targetLSN", "0/6000000")]).as_deref(), Some("b2"));
        // Strictly below.
        assert_eq!(chosen(&[("targetLSN", "0/5000100")]).as_deref(), Some("b1"));
        assert_eq!(chosen(&[("targetLSN", "0/3000100")]), None);
        assert_eq!(chosen(&[("targetLSN", "1/0")]).as_deref(), Some("b3"));
        assert_eq!(
            chosen(&[("targetLSN", "1/0"), ("targetTLI", "1")]).as_deref(),
            Some("b2")
        );
    }

    #[test]
    fn only_a_timeline_takes_its_newest() {
        assert_eq!(chosen(&[("targetTLI", "1")]).as_deref(), Some("b2"));
        assert_eq!(chosen(&[("targetTLI", "latest")]).as_deref(), Some("b3"));
        assert_eq!(chosen(&[("targetTLI", "9")]), None);
    }

    #[test]
    fn bad_targets_are_named() {
        let backups = catalog();
        let error = choose(&backups, Some(&target(&[("targetTime", "yesterday")]))).unwrap_err();
        assert_eq!(error, Error::TargetTime("yesterday".into()));
        assert!(error.to_string().contains("\"yesterday\""), "{error}");
        let error = choose(&backups, Some(&target(&[("targetLSN", "0-1")]))).unwrap_err();
        assert_eq!(error, Error::TargetLsn("0-1".into()));
    }
}
