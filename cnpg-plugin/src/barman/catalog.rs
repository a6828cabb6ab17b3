//! The JSON of `barman-cloud-backup-show --format json` and `barman-cloud-backup-list
//! --format json`, read as the plugin's Go library reads it: a backup's times come from
//! `begin_time_iso`/`end_time_iso` when present, else from the ctime-style `begin_time`/
//! `end_time` (taken as UTC; an RFC 3339 value there is accepted too, as Barman 3.12 wrote),
//! and a backup counts as completed when both times are known.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

/// One backup as the two commands describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BarmanBackup {
    /// The backup ID (`20261125T035049`).
    #[serde(default)]
    pub backup_id: String,
    /// The name given with `--name`.
    #[serde(default)]
    pub backup_name: Option<String>,
    /// ctime-style start time.
    #[serde(default)]
    pub begin_time: Option<String>,
    /// ctime-style end time.
    #[serde(default)]
    pub end_time: Option<String>,
    /// RFC 3339 start time, when Barman knows it.
    #[serde(default)]
    pub begin_time_iso: Option<String>,
    /// RFC 3339 end time.
    #[serde(default)]
    pub end_time_iso: Option<String>,
    /// First WAL segment the backup needs.
    #[serde(default)]
    pub begin_wal: Option<String>,
    /// Last WAL segment the backup needs.
    #[serde(default)]
    pub end_wal: Option<String>,
    /// Start LSN.
    #[serde(default)]
    pub begin_xlog: Option<String>,
    /// End LSN.
    #[serde(default)]
    pub end_xlog: Option<String>,
    /// The timeline the backup was taken on.
    #[serde(default)]
    pub timeline: Option<u32>,
    /// PostgreSQL's system identifier.
    #[serde(default)]
    pub systemid: Option<String>,
    /// Why the backup failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// Why a command's JSON could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not the JSON the command prints.
    #[error("read the JSON of {command}: {source}")]
    Json {
        /// The command whose output it was.
        command: &'static str,
        /// serde's message.
        source: serde_json::Error,
    },
    /// A time in it is neither ctime-style nor RFC 3339.
    #[error(
        "read {field} {value:?} of backup {backup_id:?} from {command}: not a time Barman writes"
    )]
    Time {
        /// The command whose output it was.
        command: &'static str,
        /// The backup.
        backup_id: String,
        /// `begin_time`, `end_time_iso`, …
        field: &'static str,
        /// The text.
        value: String,
    },
}

#[derive(Deserialize)]
struct Show {
    cloud: BarmanBackup,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    backups_list: Vec<BarmanBackup>,
}

impl BarmanBackup {
    /// Parses `barman-cloud-backup-show --format json` (`{"cloud": {...}}`), checking its
    /// times.
    ///
    /// # Errors
    /// [`Error`] when the JSON or a time cannot be read.
    pub fn from_show(json: &[u8]) -> Result<Self, Error> {
        let command = "barman-cloud-backup-show";
        let show: Show =
            serde_json::from_slice(json).map_err(|source| Error::Json { command, source })?;
        show.cloud.check_times(command)?;
        Ok(show.cloud)
    }

    /// Parses `barman-cloud-backup-list --format json` (`{"backups_list": [...]}`).
    ///
    /// # Errors
    /// [`Error`] when the JSON or a time cannot be read.
    pub fn from_list(json: &[u8]) -> Result<Vec<Self>, Error> {
        let command = "barman-cloud-backup-list";
        let list: List =
            serde_json::from_slice(json).map_err(|source| Error::Json { command, source })?;
        for backup in &list.backups_list {
            backup.check_times(command)?;
        }
        Ok(list.backups_list)
    }

    fn check_times(&self, command: &'static str) -> Result<(), Error> {
        for (field, iso, ctime) in [
            ("begin_time", &self.begin_time_iso, &self.begin_time),
            ("end_time", &self.end_time_iso, &self.end_time),
        ] {
            if let Err(value) = parse_time(iso.as_deref(), ctime.as_deref()) {
                return Err(Error::Time {
                    command,
                    backup_id: self.backup_id.clone(),
                    field,
                    value,
                });
            }
        }
        Ok(())
    }

    /// When the backup started, if known.
    pub fn started(&self) -> Option<DateTime<Utc>> {
        parse_time(self.begin_time_iso.as_deref(), self.begin_time.as_deref())
            .ok()
            .flatten()
    }

    /// When it ended, if known.
    pub fn ended(&self) -> Option<DateTime<Utc>> {
        parse_time(self.end_time_iso.as_deref(), self.end_time.as_deref())
            .ok()
            .flatten()
    }

    /// Completed: both times known (the plugin's rule).
    pub fn is_done(&self) -> bool {
        self.started().is_some() && self.ended().is_some()
    }

    /// The end LSN as a number, or 0 when missing or unreadable: the Go library compares
    /// LSNs that way, so a backup with a bad `end_xlog` sorts as the oldest.
    pub fn end_lsn(&self) -> u64 {
        self.end_xlog.as_deref().and_then(parse_lsn).unwrap_or(0)
    }
}

/// `X/Y` (two hexadecimal numbers, as PostgreSQL writes an LSN) as `X << 32 + Y`; `None`
/// when the text is not that.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let high = u64::from_str_radix(high, 16).ok()?;
    let low = u64::from_str_radix(low, 16).ok()?;
    Some((high << 32).wrapping_add(low))
}

/// The ISO value when present, else the ctime one (or RFC 3339 in that field); `Err` holds
/// the text that is neither.
fn parse_time(iso: Option<&str>, ctime: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    let rfc3339 = |text: &str| DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc));
    match (
        iso.filter(|t| !t.is_empty()),
        ctime.filter(|t| !t.is_empty()),
    ) {
        (Some(iso), _) => rfc3339(iso).map(Some).map_err(|_| iso.to_owned()),
        (None, Some(ctime)) => NaiveDateTime::parse_from_str(ctime, "%a %b %e %H:%M:%S %Y")
            .map(|t| t.and_utc())
            .or_else(|_| rfc3339(ctime))
            .map(Some)
            .map_err(|_| ctime.to_owned()),
        (None, None) => Ok(None),
    }
}

/// The recovery window the plugin records after a backup: the end time of the oldest and
/// of the newest completed backup (oldest and newest by start time).
pub fn recovery_window(backups: &[BarmanBackup]) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let mut done: Vec<(DateTime<Utc>, DateTime<Utc>)> = backups
        .iter()
        .filter_map(|b| Some((b.started()?, b.ended()?)))
        .collect();
    done.sort();
    (
        done.first().map(|&(_, end)| end),
        done.last().map(|&(_, end)| end),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = r#"{"cloud": {"backup_label": "'START WAL'", "backup_name": "backup-20261125045049",
        "begin_time": "Wed Nov 25 04:50:49 2026", "begin_wal": "000000010000000000000004",
        "begin_xlog": "0/4000028", "end_time": "Wed Nov 25 04:50:50 2026",
        "end_wal": "000000010000000000000004", "end_xlog": "0/4000100", "error": null,
        "status": "DONE", "systemid": "7711951383660576474", "timeline": 1,
        "backup_id": "20261125T035049", "begin_time_iso": "2026-11-25T04:50:49.165843+01:00",
        "end_time_iso": "2026-11-25T04:50:50.092253+01:00"}}"#;

    #[test]
    fn reads_backup_show() {
        let backup = BarmanBackup::from_show(SHOW.as_bytes()).unwrap();
        assert_eq!(backup.backup_id, "20261125T035049");
        assert_eq!(backup.backup_name.as_deref(), Some("backup-20261125045049"));
        assert_eq!(backup.end_xlog.as_deref(), Some("0/4000100"));
        assert_eq!(backup.timeline, Some(1));
        // The ISO time wins over the ctime one, with its offset.
        assert_eq!(backup.started().unwrap().timestamp(), 1_795_578_649);
        assert!(backup.is_done());
    }

    #[test]
    fn ctime_alone_is_utc_and_rfc3339_there_is_accepted() {
        let parsed = |ctime: &str| parse_time(None, Some(ctime)).unwrap().unwrap().timestamp();
        assert_eq!(parsed("Wed Nov 25 03:50:49 2026"), 1_795_578_649);
        assert_eq!(parsed("Tue Dec  1 03:50:49 2026"), 1_796_097_049);
        assert_eq!(parsed("2026-11-25T03:50:49Z"), 1_795_578_649);
        assert_eq!(parse_time(None, Some("yesterday")), Err("yesterday".into()));
    }

    #[test]
    fn lsns_compare_as_numbers() {
        assert_eq!(parse_lsn("0/4000100"), Some(0x400_0100));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert!(parse_lsn("A/0").unwrap() > parse_lsn("9/FFFFFFFF").unwrap());
        for bad in ["", "0", "0/", "/1", "g/1", "1/2/3"] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
        let backup = |lsn: Option<&str>| BarmanBackup {
            end_xlog: lsn.map(Into::into),
            ..BarmanBackup::default()
        };
        assert_eq!(backup(Some("0/4000100")).end_lsn(), 0x400_0100);
        assert_eq!(backup(Some("junk")).end_lsn(), 0);
        assert_eq!(backup(None).end_lsn(), 0);
    }

    #[test]
    fn a_bad_time_is_named() {
        let json = SHOW.replace("2026-11-25T04:50:50.092253+01:00", "soon");
        let error = BarmanBackup::from_show(json.as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "read end_time \"soon\" of backup \"20261125T035049\" from barman-cloud-backup-show: \
             not a time Barman writes"
        );
    }

    #[test]
    fn the_window_spans_the_completed_backups() {
        let backup = |id: &str, begin: Option<&str>, end: Option<&str>| BarmanBackup {
            backup_id: id.into(),
            begin_time_iso: begin.map(Into::into),
            end_time_iso: end.map(Into::into),
            ..BarmanBackup::default()
        };
        let list = [
            backup(
                "b",
                Some("2026-11-02T00:00:00Z"),
                Some("2026-11-02T01:00:00Z"),
            ),
            backup(
                "a",
                Some("2026-11-01T00:00:00Z"),
                Some("2026-11-01T01:00:00Z"),
            ),
            backup("failed", Some("2026-10-01T00:00:00Z"), None),
        ];
        let (first, last) = recovery_window(&list);
        assert_eq!(first.unwrap().to_rfc3339(), "2026-11-01T01:00:00+00:00");
        assert_eq!(last.unwrap().to_rfc3339(), "2026-11-02T01:00:00+00:00");
        assert_eq!(recovery_window(&list[2..]), (None, None));
        let listed = BarmanBackup::from_list(br#"{"backups_list": []}"#).unwrap();
        assert!(listed.is_empty());
    }
}
