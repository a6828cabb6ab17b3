//! `barman-cloud-backup-list SOURCE_URL SERVER_NAME`.

use clap::Parser;

use super::args::{CommonArgs, FormatArgs, SourceArgs};
use super::output;
use crate::catalog::Catalog;
use crate::error::Result;

/// Lists the backups made with barman-cloud-backup (by Barman or by us).
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-backup-list", version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
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
    let Some((storage, layout)) = args.source.open(&args.common).await? else {
        return Ok(());
    };
    let mut catalog = Catalog::load(&storage, &layout).await?;
    if args.format.json() {
        return output::emit(&(output::backup_list_json(&catalog) + "\n"));
    }
    catalog.read_keeps(&storage, &layout).await?;
    output::emit(&output::backup_list_console(&catalog))
}
