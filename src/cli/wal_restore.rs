//! `barman-cloud-wal-restore SOURCE_URL SERVER_NAME WAL_NAME WAL_DEST`.

use std::path::PathBuf;

use clap::Parser;

use super::args::{CommonArgs, Destination, FromCloud};
use crate::error::Result;
use crate::postgres::WalName;
use crate::wal::{self, RestoreOptions, Restored};

/// Fetches one WAL file from the cloud: use it as PostgreSQL's `restore_command`.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-wal-restore", after_help = super::manual::after_help("barman-cloud-wal-restore"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: Destination<FromCloud>,
    /// The value of the '%f' keyword (according to 'restore_command').
    pub wal_name: String,
    /// The value of the '%p' keyword (according to 'restore_command').
    pub wal_dest: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Do not download partial WAL files.
    #[arg(long)]
    pub no_partial: bool,
    /// How many WAL files to fetch in all, the requested one included; the others wait in the
    /// spool directory for PostgreSQL's next calls.
    // Signed, as Barman's `type=int`: zero or less turns prefetching off there, not an error.
    #[arg(short = 'p', long, default_value_t = 0, allow_negative_numbers = true)]
    pub parallel: i64,
    /// Where prefetched WAL files wait.
    #[arg(long, default_value = "/var/tmp/walrestore")]
    pub spool_dir: PathBuf,
}

super::command_with_common_args!(Args, |a: &Args| a.parallel > 1);

/// Runs the command.
///
/// # Errors
/// Everything [`wal::restore()`] returns.
pub async fn run(args: Args) -> Result<()> {
    WalName::parse(&args.wal_name)?;
    let Some((storage, layout)) = args.source.open(&args.common, None).await? else {
        return Ok(());
    };
    let options = RestoreOptions {
        no_partial: args.no_partial,
        parallel: usize::try_from(args.parallel).unwrap_or(0),
        spool_dir: args.spool_dir.clone(),
    };
    match wal::restore(&storage, &layout, &args.wal_name, &args.wal_dest, &options).await? {
        Restored::FromSpool => {
            tracing::info!("restored {} from the spool directory", args.wal_name)
        }
        Restored::Downloaded { key, prefetched } => {
            tracing::info!(
                "restored {} from {key} ({prefetched} more prefetched)",
                args.wal_name
            );
        }
    }
    Ok(())
}
