//! `backup.info`: one `key=value` per line, keys in ASCII order, `None` for null, Python
//! literals for the structured fields. Barman refuses a file with a key it does not know, so we
//! write exactly its key set and read exactly that set.

use std::fmt::{self, Write};
use std::str::FromStr;

use crate::postgres::Tablespace;
use crate::python::{PyValue, Timestamp, str_repr};

/// Where a backup is in its life. Object-store backups only use STARTED, DONE and FAILED;
/// the others appear in files written by a Barman server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    /// No status yet (a `backup.info` with no `status` key).
    Empty,
    /// The copy is running.
    Started,
    /// Copied; WAL files it needs are still to be archived.
    WaitingForWals,
    /// Complete and usable.
    Done,
    /// Being synced to a passive Barman node.
    Syncing,
    /// The copy failed.
    Failed,
    /// A status this version does not know, kept as written.
    Other(String),
}

impl Status {
    /// The status as `backup.info` writes it (`DONE`, `FAILED`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Status::Empty => "EMPTY",
            Status::Started => "STARTED",
            Status::WaitingForWals => "WAITING_FOR_WALS",
            Status::Done => "DONE",
            Status::Syncing => "SYNCING",
            Status::Failed => "FAILED",
            Status::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "EMPTY" => Status::Empty,
            "STARTED" => Status::Started,
            "WAITING_FOR_WALS" => Status::WaitingForWals,
            "DONE" => Status::Done,
            "SYNCING" => Status::Syncing,
            "FAILED" => Status::Failed,
            other => Status::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The contents of a `backup.info`, one field per key Barman 3.19 knows.
///
/// Each field is the key of the same name, with the meaning Barman gives it (the field list
/// of `BackupInfo` in `barman/infofile.py`); `None` is a key absent or written `None`.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    missing_docs,
    reason = "each field is the backup.info key of its name, documented by Barman"
)]
pub struct BackupInfo {
    pub backup_label: Option<String>,
    pub backup_name: Option<String>,
    pub begin_offset: Option<u64>,
    pub begin_time: Option<Timestamp>,
    pub begin_wal: Option<String>,
    pub begin_xlog: Option<String>,
    pub children_backup_ids: Option<Vec<String>>,
    pub cluster_size: Option<u64>,
    pub compression: Option<String>,
    pub config_file: Option<String>,
    pub copy_stats: Option<PyValue>,
    pub data_checksums: Option<String>,
    pub deduplicated_size: Option<u64>,
    pub encryption: Option<String>,
    pub end_offset: Option<u64>,
    pub end_time: Option<Timestamp>,
    pub end_wal: Option<String>,
    pub end_xlog: Option<String>,
    pub error: Option<String>,
    pub hba_file: Option<String>,
    pub ident_file: Option<String>,
    pub included_files: Option<Vec<String>>,
    pub mode: Option<String>,
    pub parent_backup_id: Option<String>,
    pub pgdata: Option<String>,
    pub server_name: Option<String>,
    pub size: Option<u64>,
    pub snapshots_info: Option<PyValue>,
    pub status: Status,
    pub summarize_wal: Option<String>,
    pub systemid: Option<String>,
    pub tablespaces: Option<Vec<Tablespace>>,
    pub timeline: Option<u32>,
    pub version: Option<u32>,
    pub xlog_segment_size: u64,
}

/// PostgreSQL's default WAL segment size, Barman's default for `xlog_segment_size`.
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

impl Default for BackupInfo {
    fn default() -> Self {
        BackupInfo {
            backup_label: None,
            backup_name: None,
            begin_offset: None,
            begin_time: None,
            begin_wal: None,
            begin_xlog: None,
            children_backup_ids: None,
            cluster_size: None,
            compression: None,
            config_file: None,
            copy_stats: None,
            data_checksums: None,
            deduplicated_size: None,
            encryption: None,
            end_offset: None,
            end_time: None,
            end_wal: None,
            end_xlog: None,
            error: None,
            hba_file: None,
            ident_file: None,
            included_files: None,
            mode: None,
            parent_backup_id: None,
            pgdata: None,
            server_name: None,
            size: None,
            snapshots_info: None,
            status: Status::Empty,
            summarize_wal: None,
            systemid: None,
            tablespaces: None,
            timeline: None,
            version: None,
            xlog_segment_size: DEFAULT_SEGMENT_SIZE,
        }
    }
}

/// Why a `backup.info` text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
    /// The key, when it is one Barman does not know. Barman treats that apart from a bad
    /// value: it stops the whole command with exit 1 instead of skipping the backup.
    pub unknown_key: Option<String>,
}

/// The key Barman (since 2.0, long before barman-cloud-backup) and we write last.
const LAST_KEY: &str = "xlog_segment_size";

fn number<T: FromStr>(value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("'{value}' is not a whole number"))
}

fn literal(value: &str) -> Result<PyValue, String> {
    PyValue::parse(value).map_err(|e| format!("not a Python literal ({e})"))
}

/// A literal that must be a string (`backup_label`).
fn literal_str(value: &str) -> Result<String, String> {
    match literal(value)? {
        PyValue::Str(s) => Ok(s),
        other => Err(format!("expected a quoted string, found {other}")),
    }
}

fn literal_strings(value: &str) -> Result<Vec<String>, String> {
    let v = literal(value)?;
    v.as_seq()
        .and_then(|items| {
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| format!("expected a list of strings, found {v}"))
}

fn literal_tablespaces(value: &str) -> Result<Vec<Tablespace>, String> {
    let v = literal(value)?;
    let bad = || format!("expected a list of (name, oid, location), found {v}");
    v.as_seq()
        .ok_or_else(bad)?
        .iter()
        .map(|t| match t.as_seq() {
            Some([name, oid, location]) => Some(Tablespace {
                name: name.as_str()?.to_string(),
                oid: u32::try_from(oid.as_int()?).ok()?,
                location: location.as_str()?.to_string(),
            }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)
}

impl BackupInfo {
    /// Reads a `backup.info` as Barman does: blank and `#` lines skipped, each line split at the
    /// first `=` with both sides stripped, `None` is null, an unknown key is an error.
    pub fn parse(text: &str) -> Result<BackupInfo, ParseError> {
        let mut info = BackupInfo::default();
        for (n, line) in text.lines().enumerate() {
            let err = |reason: String| ParseError {
                line: n + 1,
                reason,
                unknown_key: None,
            };
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| err(format!("'{}' is not key=value", line.trim())))?;
            let (key, value) = (key.trim(), value.trim());
            let value = (value != "None").then_some(value);
            info.set(key, value).map_err(|reason| ParseError {
                unknown_key: reason.unknown.then(|| key.to_string()),
                ..err(format!("{key}: {}", reason.text))
            })?;
        }
        Ok(info)
    }

    /// Why `text` cannot be a whole `backup.info`, if it cannot: every writer ends each line
    /// with a newline and writes the keys in order, `LAST_KEY` last, so a file cut anywhere
    /// lacks its final newline or that key. Older files lacking keys added since still pass.
    pub fn incomplete(text: &str) -> Option<&'static str> {
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.split_once('=').map_or(l, |(key, _)| key).trim())
            .collect();
        if keys.is_empty() {
            Some("empty")
        } else if !text.ends_with('\n') {
            Some("cut inside its last line")
        } else if !keys.contains(&LAST_KEY) {
            Some("cut before its last key, xlog_segment_size")
        } else {
            None
        }
    }

    fn set(&mut self, key: &str, value: Option<&str>) -> Result<(), SetError> {
        fn opt<T>(
            value: Option<&str>,
            f: impl FnOnce(&str) -> Result<T, String>,
        ) -> Result<Option<T>, String> {
            value.map(f).transpose()
        }
        let text = |v: Option<&str>| v.map(str::to_string);
        match key {
            "backup_label" => self.backup_label = opt(value, literal_str)?,
            "backup_name" => self.backup_name = text(value),
            "begin_offset" => self.begin_offset = opt(value, number)?,
            "begin_time" => self.begin_time = opt(value, str::parse)?,
            "begin_wal" => self.begin_wal = text(value),
            "begin_xlog" => self.begin_xlog = text(value),
            "children_backup_ids" => {
                self.children_backup_ids = value.map(|v| v.split(',').map(str::to_string).collect())
            }
            "cluster_size" => self.cluster_size = opt(value, number)?,
            "compression" => self.compression = text(value),
            "config_file" => self.config_file = text(value),
            "copy_stats" => self.copy_stats = opt(value, literal)?,
            "data_checksums" => self.data_checksums = text(value),
            "deduplicated_size" => self.deduplicated_size = opt(value, number)?,
            "encryption" => self.encryption = text(value),
            "end_offset" => self.end_offset = opt(value, number)?,
            "end_time" => self.end_time = opt(value, str::parse)?,
            "end_wal" => self.end_wal = text(value),
            "end_xlog" => self.end_xlog = text(value),
            "error" => self.error = text(value),
            "hba_file" => self.hba_file = text(value),
            "ident_file" => self.ident_file = text(value),
            "included_files" => self.included_files = opt(value, literal_strings)?,
            "mode" => self.mode = text(value),
            "parent_backup_id" => self.parent_backup_id = text(value),
            "pgdata" => self.pgdata = text(value),
            "server_name" => self.server_name = text(value),
            "size" => self.size = opt(value, number)?,
            "snapshots_info" => self.snapshots_info = opt(value, literal)?,
            "status" => self.status = value.map(Status::parse).unwrap_or_default(),
            "summarize_wal" => self.summarize_wal = text(value),
            "systemid" => self.systemid = text(value),
            "tablespaces" => self.tablespaces = opt(value, literal_tablespaces)?,
            "timeline" => self.timeline = opt(value, number)?,
            "version" => self.version = opt(value, number)?,
            "xlog_segment_size" => {
                self.xlog_segment_size = opt(value, number)?.unwrap_or(DEFAULT_SEGMENT_SIZE)
            }
            _ => {
                return Err(SetError {
                    text: "unsupported field (not a Barman 3.19 backup.info key)".into(),
                    unknown: true,
                });
            }
        }
        Ok(())
    }

    /// Every field as Barman holds it in memory, in key order; `None` for null.
    /// `backup_name` and `snapshots_info` are left out when null, as Barman hides them.
    fn fields(&self) -> Vec<(&'static str, Option<Value>)> {
        fn text(v: &Option<String>) -> Option<Value> {
            v.clone().map(Value::Text)
        }
        fn int<T: Into<u64> + Copy>(v: &Option<T>) -> Option<Value> {
            v.map(|n| Value::Int(n.into()))
        }
        let strings =
            |v: &Vec<String>| PyValue::List(v.iter().cloned().map(PyValue::Str).collect());
        let tablespaces = self.tablespaces.as_ref().map(|ts| {
            Value::Literal(PyValue::List(
                ts.iter()
                    .map(|t| {
                        PyValue::Tuple(vec![
                            PyValue::Str(t.name.clone()),
                            PyValue::Int(t.oid.into()),
                            PyValue::Str(t.location.clone()),
                        ])
                    })
                    .collect(),
            ))
        });
        let mut fields = vec![
            (
                "backup_label",
                // Barman stores the label's repr and never parses it back for output.
                self.backup_label
                    .as_deref()
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::Text(str_repr(l))),
            ),
            ("backup_name", text(&self.backup_name)),
            ("begin_offset", int(&self.begin_offset)),
            ("begin_time", self.begin_time.map(Value::Time)),
            ("begin_wal", text(&self.begin_wal)),
            ("begin_xlog", text(&self.begin_xlog)),
            (
                "children_backup_ids",
                self.children_backup_ids
                    .as_ref()
                    .filter(|ids| !ids.is_empty())
                    .map(|ids| Value::Text(ids.join(","))),
            ),
            ("cluster_size", int(&self.cluster_size)),
            ("compression", text(&self.compression)),
            ("config_file", text(&self.config_file)),
            ("copy_stats", self.copy_stats.clone().map(Value::Literal)),
            ("data_checksums", text(&self.data_checksums)),
            ("deduplicated_size", int(&self.deduplicated_size)),
            ("encryption", text(&self.encryption)),
            ("end_offset", int(&self.end_offset)),
            ("end_time", self.end_time.map(Value::Time)),
            ("end_wal", text(&self.end_wal)),
            ("end_xlog", text(&self.end_xlog)),
            ("error", text(&self.error)),
            ("hba_file", text(&self.hba_file)),
            ("ident_file", text(&self.ident_file)),
            (
                "included_files",
                self.included_files
                    .as_ref()
                    .map(|v| Value::Literal(strings(v))),
            ),
            ("mode", text(&self.mode)),
            ("parent_backup_id", text(&self.parent_backup_id)),
            ("pgdata", text(&self.pgdata)),
            ("server_name", text(&self.server_name)),
            ("size", int(&self.size)),
            (
                "snapshots_info",
                self.snapshots_info.clone().map(Value::Literal),
            ),
            ("status", Some(Value::Text(self.status.to_string()))),
            ("summarize_wal", text(&self.summarize_wal)),
            ("systemid", text(&self.systemid)),
            ("tablespaces", tablespaces),
            ("timeline", int(&self.timeline)),
            ("version", int(&self.version)),
            (
                "xlog_segment_size",
                Some(Value::Int(self.xlog_segment_size)),
            ),
        ];
        fields.retain(|(key, value)| {
            value.is_some() || !matches!(*key, "backup_name" | "snapshots_info")
        });
        fields
    }

    /// Barman's `BackupInfo.to_json()` for the backup stored as `backup_id`: every field in
    /// key order as typed values (times as `ctime()` strings, literals as lists and dicts,
    /// the label still as its repr), then `backup_id`, then `begin_time_iso` and
    /// `end_time_iso` when those times are known. backup-show and backup-list print this, and
    /// CloudNativePG parses it.
    pub fn to_json(&self, backup_id: &str) -> PyValue {
        let mut items = Vec::new();
        let mut iso = Vec::new();
        for (key, value) in self.fields() {
            let json = match value {
                None => PyValue::None,
                Some(Value::Text(s)) => PyValue::Str(s),
                Some(Value::Int(n)) => PyValue::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                Some(Value::Literal(v)) => v,
                Some(Value::Time(t)) => {
                    iso.push((format!("{key}_iso"), t.isoformat()));
                    PyValue::Str(t.ctime())
                }
            };
            items.push((PyValue::Str(key.to_string()), json));
        }
        items.push((
            PyValue::Str("backup_id".into()),
            PyValue::Str(backup_id.to_string()),
        ));
        items.extend(
            iso.into_iter()
                .map(|(k, v)| (PyValue::Str(k), PyValue::Str(v))),
        );
        PyValue::Dict(items)
    }
}

/// Why one key's value was refused.
struct SetError {
    text: String,
    /// The key itself is unknown.
    unknown: bool,
}

impl From<String> for SetError {
    fn from(text: String) -> SetError {
        SetError {
            text,
            unknown: false,
        }
    }
}

/// A field's value as Barman holds it, before it is written to the file or to JSON.
enum Value {
    Text(String),
    Int(u64),
    Time(Timestamp),
    /// A Python literal (list, dict): its repr in the file, itself in JSON.
    Literal(PyValue),
}

impl fmt::Display for BackupInfo {
    /// The file text, byte for byte as Barman writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in self.fields() {
            f.write_str(key)?;
            f.write_char('=')?;
            match value {
                None => f.write_str("None")?,
                Some(Value::Text(s)) => f.write_str(&s)?,
                Some(Value::Int(n)) => write!(f, "{n}")?,
                Some(Value::Time(t)) => write!(f, "{t}")?,
                // Barman's null_repr: an empty list or dict is written as None.
                Some(Value::Literal(v)) if v.is_falsy() => f.write_str("None")?,
                Some(Value::Literal(v)) => write!(f, "{v}")?,
            }
            f.write_char('\n')?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
