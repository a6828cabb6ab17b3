//! What the catalog commands print, character for character as Barman 3.19.1 prints it: the
//! backup-list table, backup-show's sections, `json.dumps` of Barman's JSON documents (which
//! CloudNativePG parses), and backup-delete's dry-run lines. Every function returns text; the
//! commands print it.

use std::fmt::Write;
use std::io::{ErrorKind, Write as _};

use object_store::path::Path;

use crate::catalog::pyrepr::{PyValue, float_repr};
use crate::catalog::{BackupInfo, Catalog, Status};
use crate::error::{Error, Result};
use crate::retention::Action;

/// Writes `text` to stdout. A closed pipe (`backup-list | head`) is not an error.
///
/// # Errors
/// Any other write error.
pub fn emit(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Error::Io {
            action: "write",
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Python's `json.dumps(value)` with its defaults: `", "` and `": "` separators, everything
/// outside printable ASCII escaped, floats as `repr`, `NaN`/`Infinity` allowed, tuples as
/// arrays, non-string keys turned into strings.
pub fn json_dumps(value: &PyValue) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &PyValue) {
    match value {
        PyValue::None => out.push_str("null"),
        PyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PyValue::Int(n) => {
            let _ = write!(out, "{n}");
        }
        PyValue::Float(x) => out.push_str(&json_float(*x)),
        PyValue::Str(s) => write_json_str(out, s),
        PyValue::List(items) | PyValue::Tuple(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_json(out, item);
            }
            out.push(']');
        }
        PyValue::Dict(items) => {
            out.push('{');
            for (n, (key, item)) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                let key = match key {
                    PyValue::Str(s) => s.clone(),
                    PyValue::Float(x) => json_float(*x),
                    other => json_dumps(other),
                };
                write_json_str(out, &key);
                out.push_str(": ");
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

fn json_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        float_repr(x)
    }
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// `barman-cloud-backup-list --format json`: `{"backups_list": [...]}`, in ID order.
pub fn backup_list_json(catalog: &Catalog) -> String {
    let list = catalog
        .backups
        .iter()
        .map(|(id, info)| info.to_json(id))
        .collect();
    json_dumps(&PyValue::Dict(vec![(
        PyValue::Str("backups_list".into()),
        PyValue::List(list),
    )]))
}

/// `barman-cloud-backup-list`: one fixed-width row per backup. DONE backups show their keep
/// target, the others their status. The catalog's keep annotations must have been read.
pub fn backup_list_console(catalog: &Catalog) -> String {
    let row = |cells: [&str; 5]| {
        let [id, end, wal, status, name] = cells;
        format!("{id:<20}{end:<25}{wal:<30}{status:<17}{name:<20}\n")
    };
    let mut out = row([
        "Backup ID",
        "End Time",
        "Begin Wal",
        "Archival Status",
        "Name",
    ]);
    for (id, info) in &catalog.backups {
        let end = info
            .end_time
            .map(|t| t.0.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let archival = if info.status == Status::Done {
            catalog
                .keep_line(id)
                .filter(|line| !line.is_empty())
                .map(|line| format!("KEEP:{}", line.to_uppercase()))
                .unwrap_or_default()
        } else {
            info.status.to_string()
        };
        out.push_str(&row([
            id,
            &end,
            info.begin_wal.as_deref().unwrap_or(""),
            &archival,
            info.backup_name.as_deref().unwrap_or(""),
        ]));
    }
    out
}

/// `barman-cloud-backup-show --format json`: the backup under its `server_name` (`cloud`
/// for object-store backups).
pub fn backup_show_json(id: &str, info: &BackupInfo) -> String {
    let server = info.server_name.clone().map_or(PyValue::None, PyValue::Str);
    json_dumps(&PyValue::Dict(vec![(server, info.to_json(id))]))
}

/// Python's `str()` of a value, as Barman's `format` calls print them.
fn py_str(value: &PyValue) -> String {
    match value {
        PyValue::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Python's `str()` of an optional field: `None` when null.
fn or_none<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "None".to_string(), T::to_string)
}

/// Barman's `pretty_size`: base 1024, bytes as a whole number, larger units with one decimal.
pub fn pretty_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    for (n, unit) in UNITS.iter().enumerate() {
        if size.abs() < 1024.0 || n == UNITS.len() - 1 {
            return if n == 0 {
                format!("{} {unit}", size.trunc())
            } else {
                format!("{size:.1} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("the last unit always returns")
}

/// Barman's `human_readable_timedelta` of a number of seconds: `1 day, 2 hours, 1 second`,
/// `less than one second`, with ` ago` when negative.
pub fn human_timedelta(seconds: f64) -> String {
    let micros = (seconds * 1e6).round_ties_even();
    let abs = micros.abs() as u64;
    let total = abs / 1_000_000;
    let parts: Vec<String> = [
        (total / 86_400, "day"),
        (total % 86_400 / 3600, "hour"),
        (total % 3600 / 60, "minute"),
        (total % 60, "second"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
    .collect();
    let mut human = if abs < 1_000_000 {
        "less than one second".to_string()
    } else {
        parts.join(", ")
    };
    if micros < 0.0 {
        human.push_str(" ago");
    }
    human
}

/// `barman-cloud-backup-show`: Barman's console rendering of one backup.
pub fn backup_show_console(id: &str, info: &BackupInfo) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let row = |key: &str, value: &str| format!("  {key:<23}: {value}");
    let header = |title: &str| format!("  {title}:");
    let nested = |key: &str, value: &str| format!("    {key:<21}: {value}");
    let copy_done = matches!(info.status, Status::Done | Status::WaitingForWals);

    line(format!("Backup {id}:"));
    if let Some(name) = present(&info.backup_name) {
        line(row("Backup Name", name));
    }
    line(row("Server Name", &or_none(&info.server_name)));
    if let Some(systemid) = present(&info.systemid) {
        line(row("System Id", systemid));
    }
    line(row("Status", info.status.as_str()));
    if copy_done {
        line(row("PostgreSQL Version", &or_none(&info.version)));
        line(row("PGDATA directory", &or_none(&info.pgdata)));
        if let Some(size) = info.cluster_size.filter(|&s| s > 0) {
            line(row("Estimated Cluster Size", &pretty_size(size as f64)));
        }
    }
    line(String::new());

    let checksums = present(&info.data_checksums);
    let summarizer = present(&info.summarize_wal);
    if checksums.is_some() || summarizer.is_some() {
        line(header("Server information"));
        if let Some(c) = checksums {
            line(nested("Checksums", c));
        }
        if let Some(s) = summarizer {
            line(nested("WAL summarizer", s));
        }
        line(String::new());
    }

    if !copy_done {
        if let Some(error) = present(&info.error) {
            line(row("Error", error));
        }
        return out;
    }

    if let Some(snapshots) = &info.snapshots_info {
        line(header("Snapshot information"));
        if let PyValue::Dict(items) = snapshots {
            for (key, value) in items {
                if !matches!(key.as_str(), Some("snapshots" | "provider_info")) {
                    line(nested(&py_str(key), &py_str(value)));
                }
            }
        }
        if let Some(PyValue::Dict(items)) = snapshots.get("provider_info") {
            for (key, value) in items {
                line(nested(&py_str(key), &py_str(value)));
            }
        }
        line(String::new());
        for snapshot in snapshots
            .get("snapshots")
            .and_then(PyValue::as_seq)
            .unwrap_or(&[])
        {
            if let Some(PyValue::Dict(provider)) = snapshot.get("provider") {
                let mut provider: Vec<(String, String)> = provider
                    .iter()
                    .map(|(k, v)| (py_str(k), py_str(v)))
                    .collect();
                provider.sort();
                for (key, value) in provider {
                    line(nested(&key, &value));
                }
            }
            let mount = |key: &str| {
                snapshot
                    .get("mount")
                    .and_then(|m| m.get(key))
                    .map_or_else(|| "None".to_string(), py_str)
            };
            line(nested("Mount point", &mount("mount_point")));
            line(nested("Mount options", &mount("mount_options")));
            line(String::new());
        }
    }

    if let Some(tablespaces) = info.tablespaces.as_ref().filter(|t| !t.is_empty()) {
        line(header("Tablespaces"));
        for t in tablespaces {
            line(nested(&t.name, &format!("{} (oid: {})", t.location, t.oid)));
        }
        line(String::new());
    }

    line(header("Base backup information"));
    if let Some(mode) = present(&info.mode) {
        line(nested("Backup Method", mode));
    }
    if let Some(encryption) = present(&info.encryption) {
        line(nested("Encryption", encryption));
    }
    if let Some(size) = info.deduplicated_size.filter(|&s| s > 0) {
        line(nested("Backup Size", &pretty_size(size as f64)));
    }
    if let Some(compression) = present(&info.compression).filter(|c| *c != "none") {
        line(nested("Backup Compression", compression));
    }
    line(nested("Timeline", &or_none(&info.timeline)));
    line(nested("Begin WAL", &or_none(&info.begin_wal)));
    line(nested("End WAL", &or_none(&info.end_wal)));
    line(nested("Begin time", &or_none(&info.begin_time)));
    line(nested("End time", &or_none(&info.end_time)));
    let stat = |key: &str| {
        info.copy_stats
            .as_ref()
            .and_then(|s| s.get(key))
            .and_then(PyValue::as_f64)
            .unwrap_or(0.0)
    };
    let copy_time = stat("copy_time");
    if copy_time != 0.0 {
        let mut text = human_timedelta(copy_time);
        let analysis_time = stat("analysis_time");
        if analysis_time >= 1.0 {
            let _ = write!(text, " + {} startup", human_timedelta(analysis_time));
        }
        line(nested("Copy time", &text));
    }
    line(nested("Begin Offset", &or_none(&info.begin_offset)));
    line(nested("End Offset", &or_none(&info.end_offset)));
    line(nested("Begin LSN", &or_none(&info.begin_xlog)));
    line(nested("End LSN", &or_none(&info.end_xlog)));
    line(String::new());

    if info.mode.as_deref() == Some("postgres") {
        if let Some(children) = &info.children_backup_ids {
            line(nested("Children Backup(s)", &children.join(",")));
        }
    }
    out
}

/// A text field that Python finds true: set and not empty.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.is_empty())
}

/// A Python list of keys, as Barman's dry run prints one.
fn key_list(keys: &[Path]) -> String {
    PyValue::List(keys.iter().map(|k| PyValue::Str(k.to_string())).collect()).to_string()
}

/// The line `barman-cloud-backup-delete --dry-run` prints for a step it skips.
pub fn dry_run_line(action: &Action) -> String {
    match action {
        Action::Backup { objects, .. } | Action::Wals(objects) => format!(
            "Skipping deletion of objects {} due to --dry-run option",
            key_list(objects)
        ),
        Action::WalPrefix(prefix) => {
            format!(
                "Skipping deletion of all objects under prefix {prefix} due to --dry-run option"
            )
        }
        Action::Snapshots { .. } => "Skipping deletion of snapshots due to --dry-run option".into(),
        Action::SnapshotLabel(key) => format!("Skipping deletion of {key} due to --dry-run option"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/backup_info")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn done_backup() -> BackupInfo {
        BackupInfo::parse(&fixture("done-tablespace-named.info")).unwrap()
    }

    #[test]
    fn show_json_is_what_barman_prints() {
        // The expected text was printed by Barman 3.19.1 from the same backup.info.
        let expected = fixture("done-tablespace-named.show.json");
        assert_eq!(
            backup_show_json("20261125T035049", &done_backup()) + "\n",
            expected
        );
    }

    #[test]
    fn show_console_is_what_barman_prints() {
        let expected = fixture("done-tablespace-named.show.txt");
        assert_eq!(
            backup_show_console("20261125T035049", &done_backup()),
            expected
        );
    }

    #[test]
    fn show_console_of_a_failed_backup_stops_after_the_status() {
        let info = BackupInfo {
            status: Status::Failed,
            server_name: Some("cloud".into()),
            data_checksums: Some("on".into()),
            error: Some("failure uploading data (KeyboardInterrupt)".into()),
            ..BackupInfo::default()
        };
        let expected = [
            "Backup 20261125T035437:",
            "  Server Name            : cloud",
            "  Status                 : FAILED",
            "",
            "  Server information:",
            "    Checksums            : on",
            "",
            "  Error                  : failure uploading data (KeyboardInterrupt)",
            "",
        ];
        assert_eq!(
            backup_show_console("20261125T035437", &info),
            expected.join("\n")
        );
    }

    #[test]
    fn json_escapes_and_numbers_follow_python() {
        // Python: json.dumps({"a": "é\x7f\u2028😀\n\t\"\\/\x01", "f": [1.5, 1e-05, 1e16,
        // float('nan'), float('inf'), -0.0], "k": {1: False, None: 2.0}})
        let value = PyValue::Dict(vec![
            (
                PyValue::Str("a".into()),
                PyValue::Str("é\u{7f}\u{2028}😀\n\t\"\\/\u{1}".into()),
            ),
            (
                PyValue::Str("f".into()),
                PyValue::List(
                    [1.5, 1e-05, 1e16, f64::NAN, f64::INFINITY, -0.0]
                        .into_iter()
                        .map(PyValue::Float)
                        .collect(),
                ),
            ),
            (
                PyValue::Str("k".into()),
                PyValue::Dict(vec![
                    (PyValue::Int(1), PyValue::Bool(false)),
                    (PyValue::None, PyValue::Float(2.0)),
                ]),
            ),
        ]);
        assert_eq!(
            json_dumps(&value),
            r#"{"a": "\u00e9\u007f\u2028\ud83d\ude00\n\t\"\\/\u0001", "f": [1.5, 1e-05, 1e+16, NaN, Infinity, -0.0], "k": {"1": false, "null": 2.0}}"#
        );
    }

    #[test]
    fn sizes_and_durations_read_as_barman_writes_them() {
        assert_eq!(pretty_size(26832585.0), "25.6 MiB");
        assert_eq!(pretty_size(1023.0), "1023 B");
        assert_eq!(pretty_size(1024.0), "1.0 KiB");
        assert_eq!(pretty_size(5.0 * 1024f64.powi(4)), "5.0 TiB");
        assert_eq!(human_timedelta(1.639165), "1 second");
        assert_eq!(human_timedelta(0.4), "less than one second");
        assert_eq!(
            human_timedelta(90061.0),
            "1 day, 1 hour, 1 minute, 1 second"
        );
        assert_eq!(human_timedelta(7322.5), "2 hours, 2 minutes, 2 seconds");
        assert_eq!(human_timedelta(-3.0), "3 seconds ago");
    }

    #[test]
    fn dry_run_lines_are_barmans() {
        let keys = vec![
            Path::from("p/pg/base/20261125T035049/data.tar.gz"),
            Path::from("p/pg/base/20261125T035049/backup.info"),
        ];
        assert_eq!(
            dry_run_line(&Action::Wals(keys)),
            "Skipping deletion of objects ['p/pg/base/20261125T035049/data.tar.gz', \
             'p/pg/base/20261125T035049/backup.info'] due to --dry-run option"
        );
        assert_eq!(
            dry_run_line(&Action::WalPrefix("p/pg/wals/0000000100000000/".into())),
            "Skipping deletion of all objects under prefix p/pg/wals/0000000100000000/ due to \
             --dry-run option"
        );
    }
}
