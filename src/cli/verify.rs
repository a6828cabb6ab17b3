//! `barman-cloud-verify SOURCE_URL SERVER_NAME [BACKUP]` (our addition).

use clap::Parser;

use super::args::{CommonArgs, Destination, FormatArgs, FromCloud};
use crate::catalog::resolve_reference;
use crate::error::{Error, Result};
use crate::verify::{self, Selection, VerifyOptions};

/// Checks, without restoring, that backups made with barman-cloud-backup are whole and that
/// the WAL archive has every segment they and a recovery need.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-verify", after_help = super::manual::after_help("barman-cloud-verify"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: Destination<FromCloud>,
    /// The backup ID, a backup name, a shortcut (latest, last, oldest, first, last-failed)
    /// or `all`.
    #[arg(default_value = "all")]
    pub backup: String,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Check the WAL archive only, no backup.
    #[arg(long)]
    pub wal_only: bool,
    /// How many objects are downloaded and checked at once.
    #[arg(short = 'J', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    #[command(flatten)]
    pub format: FormatArgs,
}

super::command_with_common_args!(Args, |_: &Args| true);

/// Runs the command.
///
/// # Errors
/// [`Error::VerifyFailed`] when anything is missing or damaged, backup lookup and storage
/// errors.
pub async fn run(args: Args) -> Result<()> {
    let Some((storage, layout)) = args.source.open(&args.common, None).await? else {
        return Ok(());
    };
    let selection = if args.wal_only {
        Selection::None
    } else if args.backup == "all" {
        Selection::All
    } else {
        Selection::One(resolve_reference(&storage, &layout, &args.backup).await?)
    };
    let options = VerifyOptions {
        jobs: usize::from(args.jobs),
        progress: super::progress::for_terminal("verify", args.common.quiet),
        now: chrono::Utc::now(),
    };
    let report = verify::verify(&storage, &layout, &selection, &options).await?;
    if args.format.json() {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Input(format!("cannot render the report as JSON: {e}")))?;
        super::emit(&(json + "\n"))?;
    } else {
        super::emit(&report.to_text())?;
    }
    match report.problems().count() {
        0 => Ok(()),
        count => Err(Error::VerifyFailed {
            server: args.source.server_name.clone(),
            count,
        }),
    }
}
