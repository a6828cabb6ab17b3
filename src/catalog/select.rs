//! Choosing a backup: what a user's backup reference means, and which backup `auto` picks for
//! a recovery target. Pure functions of the catalog (a list of `(backup_id, BackupInfo)`) so
//! every rule is tested on fixed tables, and every command that takes a backup reference
//! (restore, backup-show, backup-delete, backup-keep) resolves it the same way.
//!
//! The rules are Barman 3.19's (`CloudBackupCatalog.parse_backup_id` and the
//! `get_backup_id_from_target_*` helpers):
//! - an ID-shaped reference is taken as is, without checking that it exists;
//! - `latest`/`last` and `first`/`oldest` skip STARTED backups but count FAILED ones;
//!   `last-failed` is the newest FAILED one; a shortcut that matches nothing falls through to
//!   the name lookup, as in Barman;
//! - anything else is a name, which must match exactly one backup;
//! - `auto` considers every backup but the STARTED ones and takes the newest ID that ends at
//!   or before the target (time or LSN) on the target timeline, if one is given.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

use super::{BackupInfo, Status};
use crate::layout::BackupId;
use crate::postgres::Lsn;

/// A backup as the catalog lists it: its ID (the directory name) and its `backup.info`.
pub type Entry = (BackupId, BackupInfo);

/// The words that are shortcuts (or otherwise reserved) and so cannot be backup names.
pub const RESERVED_NAMES: [&str; 8] = [
    "latest",
    "last",
    "oldest",
    "first",
    "last-failed",
    "latest-full",
    "last-full",
    "auto",
];

/// Why a reference names no single backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Neither an ID, a matching shortcut, nor a known name.
    Unknown,
    /// A name that several backups carry (their IDs, in catalog order).
    Ambiguous(Vec<BackupId>),
}

/// Resolves a backup reference (ID, shortcut or name) to a backup ID. `backups` must be in ID
/// order, as the catalog lists them.
///
/// # Errors
/// [`ResolveError`] when no single backup matches.
pub fn resolve(backups: &[Entry], reference: &str) -> Result<BackupId, ResolveError> {
    if let Some(id) = BackupId::parse(reference) {
        tracing::info!("chose backup {id}: given by its ID");
        return Ok(id);
    }
    if let Some(id) = shortcut(backups, reference) {
        let why = match reference {
            "last-failed" => "the newest FAILED backup",
            "first" | "oldest" => "the oldest backup not STARTED",
            _ => "the newest backup not STARTED",
        };
        tracing::info!("chose backup {id}: '{reference}' is {why}");
        return Ok(id.clone());
    }
    let named: Vec<&BackupId> = backups
        .iter()
        .filter(|(_, info)| info.backup_name.as_deref() == Some(reference))
        .map(|(id, _)| id)
        .collect();
    match named.as_slice() {
        [id] => {
            tracing::info!("chose backup {id}: the only backup named '{reference}'");
            Ok((*id).clone())
        }
        [] => Err(ResolveError::Unknown),
        ids => Err(ResolveError::Ambiguous(
            ids.iter().map(|id| (*id).clone()).collect(),
        )),
    }
}

fn shortcut<'a>(backups: &'a [Entry], word: &str) -> Option<&'a BackupId> {
    let not_started = |(_, info): &&Entry| info.status != Status::Started;
    let found = match word {
        "latest" | "last" => backups.iter().rev().find(not_started),
        "first" | "oldest" => backups.iter().find(not_started),
        "last-failed" => backups
            .iter()
            .rev()
            .find(|(_, info)| info.status == Status::Failed),
        _ => None,
    };
    found.map(|(id, _)| id)
}

/// `--target-tli`: a timeline number, or one of PostgreSQL's keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetTli {
    /// A timeline by number.
    Number(u32),
    /// The backup's own timeline; meaningless when the backup is still to be chosen.
    Current,
    /// The highest timeline in the WAL archive.
    Latest,
}

impl FromStr for TargetTli {
    type Err = String;

    /// Accepts what Barman's `check_tli` accepts: `current`, `latest` or a positive integer.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "current" => Ok(Self::Current),
            "latest" => Ok(Self::Latest),
            _ => {
                let t = s.trim();
                let n: i64 = t
                    .strip_prefix('+')
                    .unwrap_or(t)
                    .parse()
                    .map_err(|_| format!("'{s}' is not a valid input"))?;
                u32::try_from(n)
                    .ok()
                    .filter(|&n| n >= 1)
                    .map(Self::Number)
                    .ok_or_else(|| format!("'{s}' is not a valid positive integer"))
            }
        }
    }
}

impl TargetTli {
    /// The timeline number to choose a backup with. `wal_names` are the names (without
    /// compression suffix) of every file in the WAL archive, history files included.
    ///
    /// # Errors
    /// `current` (no backup is chosen yet) and `latest` on an empty archive.
    pub fn resolve_for_auto<'a>(
        self,
        wal_names: impl IntoIterator<Item = &'a str>,
    ) -> Result<u32, String> {
        match self {
            Self::Number(n) => Ok(n),
            Self::Current => Err(
                "'current' is not a valid timeline keyword when recovering without a backup_id: \
                 give a timeline number or 'latest'"
                    .into(),
            ),
            // Barman takes the highest name in string order, so a lower-case name wins over an
            // upper-case one; its first eight characters are the timeline.
            Self::Latest => wal_names
                .into_iter()
                .max()
                .and_then(|name| name.get(..8))
                .and_then(|tli| u32::from_str_radix(tli, 16).ok())
                .ok_or_else(|| {
                    "cannot resolve --target-tli latest: the WAL archive is empty; give a \
                     timeline number"
                        .into()
                }),
        }
    }
}

/// What `auto` must reach: at most one of a time and an LSN, and a timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryTargets {
    /// `--target-time`.
    pub time: Option<DateTime<FixedOffset>>,
    /// `--target-lsn`.
    pub lsn: Option<Lsn>,
    /// `--target-tli` as a number (keywords resolved before).
    pub timeline: Option<u32>,
}

/// The backup `auto` restores: the newest non-STARTED backup (by ID) that ends at or before
/// the time or LSN target and lies on the target timeline. `None` when there is none.
///
/// A backup without the end field the target needs (a FAILED one that never reached
/// `pg_backup_stop`) cannot serve that target and is passed over; Barman stops with a Python
/// `TypeError` instead.
pub fn select_for_recovery(backups: &[Entry], targets: &RecoveryTargets) -> Option<BackupId> {
    let on_timeline = |info: &BackupInfo| targets.timeline.is_none_or(|t| info.timeline == Some(t));
    let reaches = |info: &BackupInfo| {
        if let Some(time) = targets.time {
            info.end_time.is_some_and(|end| end.0 <= time)
        } else if let Some(lsn) = targets.lsn {
            info.end_xlog
                .as_deref()
                .and_then(|x| x.parse::<Lsn>().ok())
                .is_some_and(|end| end <= lsn)
        } else {
            true
        }
    };
    let mut candidates: Vec<&Entry> = backups
        .iter()
        .filter(|(_, info)| info.status != Status::Started)
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    let chosen = candidates
        .into_iter()
        .rev()
        .find(|(_, info)| reaches(info) && on_timeline(info))
        .map(|(id, _)| id.clone());
    if let Some(id) = &chosen {
        let target = match (targets.time, targets.lsn) {
            (Some(time), _) => format!("ending at or before {time}"),
            (None, Some(lsn)) => format!("ending at or before LSN {lsn}"),
            (None, None) => "of any end".into(),
        };
        let timeline = targets
            .timeline
            .map_or_else(|| "any timeline".into(), |t| format!("timeline {t}"));
        tracing::info!("chose backup {id}: the newest backup not STARTED {target}, on {timeline}");
    }
    chosen
}

/// Reads `--target-time` the way Barman does with dateutil, for the forms people write: a date
/// (`2026-11-25`, `2026/11/25`, `20261125`), optionally followed by a time (`10:30`,
/// `10:30:15`, `10:30:15.123456`, after a space or a `T`) and an offset (`Z`, `UTC`, `GMT`,
/// `+01`, `+0100`, `+01:00`, with or without a space before it). Without an offset the time is
/// local, as in Barman.
///
/// # Errors
/// A message quoting the value and an example of an accepted form.
pub fn parse_target_time(s: &str) -> Result<DateTime<FixedOffset>, String> {
    let invalid = || {
        format!(
            "Unable to parse the target time parameter '{s}': use a form such as \
             \"2026-11-25 10:30:00+01:00\" (without an offset the time is local)"
        )
    };
    let text = s.trim();
    let (date_part, rest) = match text.find([' ', 'T']) {
        Some(i) => (&text[..i], text[i + 1..].trim()),
        None => (text, ""),
    };
    let date = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(date_part, f).ok())
        .ok_or_else(invalid)?;
    let (time_part, offset) = split_offset(rest).ok_or_else(invalid)?;
    let time = if time_part.is_empty() {
        NaiveTime::MIN
    } else {
        ["%H:%M:%S%.f", "%H:%M", "%H%M%S"]
            .iter()
            .find_map(|f| NaiveTime::parse_from_str(time_part, f).ok())
            .ok_or_else(invalid)?
    };
    let naive = NaiveDateTime::new(date, time);
    match offset {
        Some(offset) => offset
            .from_local_datetime(&naive)
            .single()
            .ok_or_else(invalid),
        None => Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.fixed_offset())
            .ok_or_else(invalid),
    }
}

/// Splits a trailing UTC offset off a time of day; `None` when the offset is malformed.
fn split_offset(rest: &str) -> Option<(&str, Option<FixedOffset>)> {
    let lower = rest.to_ascii_lowercase();
    for zulu in ["utc", "gmt", "z"] {
        if let Some(time) = lower.strip_suffix(zulu) {
            return Some((rest[..time.len()].trim(), FixedOffset::east_opt(0)));
        }
    }
    let Some(sign_at) = rest.rfind(['+', '-']) else {
        return Some((rest, None));
    };
    let sign = if rest.as_bytes()[sign_at] == b'-' {
        -1
    } else {
        1
    };
    let digits: String = rest[sign_at + 1..].chars().filter(|&c| c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    let offset = FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?;
    Some((rest[..sign_at].trim(), Some(offset)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::Timestamp;

    fn backup(
        status: Status,
        end: &str,
        end_xlog: &str,
        tli: u32,
        name: Option<&str>,
    ) -> BackupInfo {
        BackupInfo {
            status,
            end_time: (!end.is_empty()).then(|| end.parse::<Timestamp>().unwrap()),
            end_xlog: (!end_xlog.is_empty()).then(|| end_xlog.to_string()),
            timeline: Some(tli),
            backup_name: name.map(str::to_string),
            ..BackupInfo::default()
        }
    }

    /// Five backups on two timelines, one FAILED without end fields, the newest STARTED.
    fn table() -> Vec<Entry> {
        use Status::*;
        vec![
            (
                "20261101T000000".into(),
                backup(
                    Done,
                    "2026-11-01 00:10:00+00:00",
                    "0/9000100",
                    1,
                    Some("monday"),
                ),
            ),
            (
                "20261102T000000".into(),
                backup(Failed, "2026-11-02 00:10:00+00:00", "0/A000100", 1, None),
            ),
            (
                "20261103T000000".into(),
                backup(
                    Done,
                    "2026-11-03 00:10:00+00:00",
                    "0/10000100",
                    2,
                    Some("dup"),
                ),
            ),
            (
                "20261104T000000".into(),
                backup(Failed, "", "", 2, Some("dup")),
            ),
            (
                "20261105T000000".into(),
                backup(Started, "", "", 2, Some("started")),
            ),
        ]
    }

    #[test]
    fn references_resolve_like_barman() {
        let t = table();
        let r = |s: &str| resolve(&t, s);
        assert_eq!(r("latest").unwrap(), "20261104T000000");
        assert_eq!(r("last").unwrap(), "20261104T000000");
        assert_eq!(r("first").unwrap(), "20261101T000000");
        assert_eq!(r("oldest").unwrap(), "20261101T000000");
        assert_eq!(r("last-failed").unwrap(), "20261104T000000");
        assert_eq!(r("monday").unwrap(), "20261101T000000");
        assert_eq!(r("started").unwrap(), "20261105T000000");
        // IDs are not checked for existence.
        assert_eq!(r("20991231T235959").unwrap(), "20991231T235959");
        assert_eq!(r("nope"), Err(ResolveError::Unknown));
        assert_eq!(r("latest-full"), Err(ResolveError::Unknown));
        assert_eq!(
            r("dup"),
            Err(ResolveError::Ambiguous(vec![
                "20261103T000000".into(),
                "20261104T000000".into()
            ]))
        );
    }

    #[test]
    fn shortcuts_on_empty_or_started_only_catalogs_fall_through_to_names() {
        assert_eq!(resolve(&[], "latest"), Err(ResolveError::Unknown));
        let only_started = vec![(
            "20261105T000000".into(),
            backup(Status::Started, "", "", 1, Some("latest")),
        )];
        // No shortcut match, but a (foreign) backup.info may carry the word as its name.
        assert_eq!(resolve(&only_started, "latest").unwrap(), "20261105T000000");
        assert_eq!(
            resolve(&only_started, "last-failed"),
            Err(ResolveError::Unknown)
        );
    }

    fn targets(time: Option<&str>, lsn: Option<&str>, tli: Option<u32>) -> RecoveryTargets {
        RecoveryTargets {
            time: time.map(|t| parse_target_time(t).unwrap()),
            lsn: lsn.map(|l| l.parse().unwrap()),
            timeline: tli,
        }
    }

    #[test]
    fn auto_selection_table() {
        let t = table();
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Option<u32>,
            Option<&'a str>,
        );
        let cases: [Case; 12] = [
            // Nothing: the newest non-STARTED, FAILED included.
            (None, None, None, Some("20261104T000000")),
            (None, None, Some(1), Some("20261102T000000")),
            (None, None, Some(2), Some("20261104T000000")),
            (None, None, Some(3), None),
            // Time: end_time <= target; equality counts.
            (
                Some("2026-11-03 00:10:00+00:00"),
                None,
                None,
                Some("20261103T000000"),
            ),
            (
                Some("2026-11-03 00:09:59Z"),
                None,
                None,
                Some("20261102T000000"),
            ),
            (
                Some("2026-11-03 01:09:59+01:00"),
                None,
                None,
                Some("20261102T000000"),
            ),
            (Some("2026-11-02 00:10:00+00:00"), None, Some(2), None),
            (Some("2026-10-01"), None, None, None),
            // LSN: numeric comparison, 0/A000100 > 0/9000100.
            (None, Some("0/A000100"), None, Some("20261102T000000")),
            (None, Some("0/A0000FF"), None, Some("20261101T000000")),
            (None, Some("1/0"), Some(2), Some("20261103T000000")),
        ];
        for (time, lsn, tli, expected) in cases {
            assert_eq!(
                select_for_recovery(&t, &targets(time, lsn, tli)).as_deref(),
                expected,
                "time={time:?} lsn={lsn:?} tli={tli:?}"
            );
        }
        assert_eq!(select_for_recovery(&[], &RecoveryTargets::default()), None);
    }

    #[test]
    fn target_timelines() {
        assert_eq!("3".parse(), Ok(TargetTli::Number(3)));
        assert_eq!(" +4".parse(), Ok(TargetTli::Number(4)));
        assert_eq!("latest".parse(), Ok(TargetTli::Latest));
        assert!("0".parse::<TargetTli>().unwrap_err().contains("positive"));
        assert!(
            "x".parse::<TargetTli>()
                .unwrap_err()
                .contains("not a valid input")
        );
        let wals = [
            "000000010000000000000004",
            "00000002.history",
            "0000000200000000000000A0.partial",
            "000000020000000000000001",
        ];
        assert_eq!(TargetTli::Latest.resolve_for_auto(wals), Ok(2));
        assert_eq!(
            TargetTli::Latest.resolve_for_auto(["00000003.history", "0000000200000000000000FF"]),
            Ok(3)
        );
        assert!(TargetTli::Latest.resolve_for_auto([]).is_err());
        assert!(TargetTli::Current.resolve_for_auto(wals).is_err());
        assert_eq!(TargetTli::Number(7).resolve_for_auto([]), Ok(7));
    }

    #[test]
    fn target_times_parse_like_dateutil() {
        let utc = |s: &str| parse_target_time(s).unwrap().to_rfc3339();
        assert_eq!(
            utc("2026-11-25 10:30:15+01:00"),
            "2026-11-25T10:30:15+01:00"
        );
        assert_eq!(
            utc("2026-11-25T10:30:15.5Z"),
            "2026-11-25T10:30:15.500+00:00"
        );
        assert_eq!(utc("2026-11-25 10:30 UTC"), "2026-11-25T10:30:00+00:00");
        assert_eq!(
            utc("2026/11/25 10:30:00 -0530"),
            "2026-11-25T10:30:00-05:30"
        );
        assert_eq!(utc("20261125T103000+02"), "2026-11-25T10:30:00+02:00");
        let local = parse_target_time("2026-11-25").unwrap();
        let expected = Local
            .from_local_datetime(&NaiveDate::from_ymd_opt(2026, 11, 25).unwrap().into())
            .earliest()
            .unwrap();
        assert_eq!(local, expected.fixed_offset());
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-25 25:00",
            "2026-11-25 10:00+99",
        ] {
            assert!(parse_target_time(bad).is_err(), "{bad:?}");
        }
    }
}
