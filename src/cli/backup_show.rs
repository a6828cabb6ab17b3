//! `barman-cloud-backup-show SOURCE_URL SERVER_NAME BACKUP_ID`.

use clap::Parser;

use super::args::{CommonArgs, FormatArgs, SourceArgs};
use super::output;
use crate::catalog::{read_backup_info, resolve_reference};
use crate::error::{Error, Result};

/// Shows the metadata of one backup made with barman-cloud-backup.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-backup-show", version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
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
    let Some((storage, layout)) = args.source.open(&args.common).await? else {
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
        output::emit(&(output::backup_show_json(&id, &info) + "\n"))
    } else {
        output::emit(&output::backup_show_console(&id, &info))
    }
}
