//! `barman-cloud-backup-list SOURCE_URL SERVER_NAME`.

use clap::Parser;

use super::args::{CommonArgs, Destination, FormatArgs, FromCloud};
use crate::catalog::{Catalog, Status};
use crate::error::Result;
use crate::python::{PyValue, json_dumps};

/// Lists the backups made with barman-cloud-backup (by Barman or by us).
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-backup-list", after_help = super::manual::after_help("barman-cloud-backup-list"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: Destination<FromCloud>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

super::command_with_common_args!(Args);

/// Runs the command.
///
/// # Errors
/// Storage errors.
pub async fn run(args: Args) -> Result<()> {
    let Some((storage, layout)) = args.source.open(&args.common, None).await? else {
        return Ok(());
    };
    let mut catalog = Catalog::load(&storage, &layout).await?;
    if args.format.json() {
        return super::emit(&(backup_list_json(&catalog) + "\n"));
    }
    catalog.read_keeps(&storage, &layout).await?;
    super::emit(&backup_list_console(&catalog))
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
