//! `barman-cloud-backup-show SOURCE_URL SERVER_NAME BACKUP_ID`.

use std::fmt::Write;

use clap::Parser;

use super::args::{CommonArgs, Destination, FormatArgs, FromCloud};
use crate::catalog::{BackupInfo, Status, read_backup_info, resolve_reference};
use crate::error::{Error, Result};
use crate::python::{PyValue, human_timedelta, json_dumps, or_none, pretty_size, py_str};

/// Shows the metadata of one backup made with barman-cloud-backup.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-backup-show", after_help = super::manual::after_help("barman-cloud-backup-show"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: Destination<FromCloud>,
    /// The backup ID, a backup name, or a shortcut (latest, last, oldest, first, last-failed).
    pub backup_id: String,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

super::command_with_common_args!(Args);

/// Runs the command.
///
/// # Errors
/// [`Error::NoSuchBackup`], backup lookup and storage errors.
pub async fn run(args: Args) -> Result<()> {
    let Some((storage, layout)) = args.source.open(&args.common, None).await? else {
        return Ok(());
    };
    let id = resolve_reference(&storage, &layout, &args.backup_id).await?;
    let info = read_backup_info(&storage, &layout, &id)
        .await?
        .ok_or_else(|| Error::NoSuchBackup {
            id: id.to_string(),
            server: args.source.server_name.clone(),
        })?;
    if args.format.json() {
        super::emit(&(backup_show_json(&id, &info) + "\n"))
    } else {
        super::emit(&backup_show_console(&id, &info))
    }
}

/// `barman-cloud-backup-show --format json`: the backup under its `server_name` (`cloud`
/// for object-store backups).
pub fn backup_show_json(id: &str, info: &BackupInfo) -> String {
    let server = info.server_name.clone().map_or(PyValue::None, PyValue::Str);
    json_dumps(&PyValue::Dict(vec![(server, info.to_json(id))]))
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
}
