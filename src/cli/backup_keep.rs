//! `barman-cloud-backup-keep SOURCE_URL SERVER_NAME BACKUP_ID (-r | -s | --target T)`.

use clap::{Args as ClapArgs, Parser};

use super::args::{CommonArgs, Destination, FromCloud};
use crate::catalog::{
    Keep, Status, read_backup_info, read_keep, release_keep, resolve_reference, write_keep,
};
use crate::error::{Error, Result};

/// Marks a backup as archival, so that neither retention nor `backup-delete -b` removes it,
/// or releases it, or shows its keep status.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-backup-keep", after_help = super::manual::after_help("barman-cloud-backup-keep"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: Destination<FromCloud>,
    /// The backup ID of the backup to be kept (or a name, or a shortcut).
    pub backup_id: String,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub action: KeepAction,
}

/// Exactly one of these.
#[derive(Debug, ClapArgs)]
#[group(required = true, multiple = false)]
pub struct KeepAction {
    /// If specified, the command will remove the keep annotation and the backup will be
    /// eligible for deletion.
    #[arg(short = 'r', long)]
    pub release: bool,
    /// Print the keep status of the backup.
    #[arg(short = 's', long)]
    pub status: bool,
    /// Specify the recovery target for this backup: `full` keeps every later WAL,
    /// `standalone` only the WAL that makes the backup consistent.
    #[arg(long, value_enum)]
    pub target: Option<Keep>,
}

super::command_with_common_args!(Args);

/// Runs the command.
///
/// # Errors
/// [`Error::NotKeepable`], [`Error::KeepWithoutBackup`], backup lookup and storage errors.
pub async fn run(args: Args) -> Result<()> {
    let Some((storage, layout)) = args.source.open(&args.common, None).await? else {
        return Ok(());
    };
    let id = resolve_reference(&storage, &layout, &args.backup_id).await?;
    if args.action.release {
        return release_keep(&storage, &layout, &id).await;
    }
    if args.action.status {
        // Like Barman, an ID without a backup simply has no keep.
        let line = read_keep(&storage, &layout, &id).await?;
        let target = line.filter(|l| !l.is_empty());
        return super::emit(&format!(
            "Keep: {}\n",
            target.as_deref().unwrap_or("nokeep")
        ));
    }
    let target = args.action.target.expect("clap requires one action");
    let info = read_backup_info(&storage, &layout, &id)
        .await?
        .ok_or_else(|| Error::KeepWithoutBackup {
            id: id.to_string(),
            server: args.source.server_name.clone(),
        })?;
    if info.status != Status::Done {
        return Err(Error::NotKeepable {
            id: id.to_string(),
            status: info.status.to_string(),
        });
    }
    write_keep(&storage, &layout, &id, target).await
}
