//! `barman-cloud-wal-archive DESTINATION_URL SERVER_NAME [WAL_PATH]`.

use std::path::PathBuf;

use clap::Parser;

use super::args::{
    self, CommonArgs, Destination, EncryptionArgs, TagArgs, ToCloud, WalCompressionArgs, heading,
};
use crate::compress::Level;
use crate::error::{Error, Result};
use crate::wal::{self, ArchiveOptions, Archived, Prearchived};

/// Ships one WAL file to the cloud: use it as PostgreSQL's `archive_command`.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-wal-archive", after_help = super::manual::after_help("barman-cloud-wal-archive"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub destination: Destination<ToCloud>,
    /// The value of the '%p' keyword (according to 'archive_command').
    pub wal_path: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub compression: WalCompressionArgs,
    /// A compression level for the specified compression algorithm: low, medium, high or an
    /// integer (clamped to the algorithm's range).
    #[arg(long, value_parser = args::parse_level, allow_negative_numbers = true)]
    pub compression_level: Option<Level>,
    #[command(flatten)]
    pub tags: TagArgs,
    /// Tags, each as KEY,VALUE, for history files, replacing --tags on them (deprecated form).
    #[arg(long, num_args = 0.., value_parser = args::parse_csv_tag, conflicts_with = "history_tag", value_name = "TAG")]
    pub history_tags: Option<Vec<(String, String)>>,
    /// A KEY,VALUE tag for history files, replacing --tag on them (repeatable).
    #[arg(long, value_parser = args::parse_tag)]
    pub history_tag: Vec<(String, String)>,
    #[command(flatten)]
    pub encryption: EncryptionArgs,
    /// Our addition: also upload up to N-1 further WAL files PostgreSQL has marked ready,
    /// in parallel, so its next calls return at once (1: off).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64), value_name = "N")]
    pub max_parallel: u16,
    /// Where files archived ahead are remembered (with --max-parallel), per server name.
    #[arg(long, default_value = "/var/tmp/walarchive")]
    pub spool_dir: PathBuf,
    /// Accepted for compatibility; uploads are sized by the storage client.
    #[arg(long, value_parser = args::parse_size, help_heading = heading::AZURE)]
    pub max_block_size: Option<u64>,
    /// Accepted for compatibility; uploads are sized by the storage client.
    #[arg(
        long,
        help_heading = heading::AZURE
    )]
    pub max_concurrency: Option<u32>,
    /// Accepted for compatibility; uploads are sized by the storage client.
    #[arg(long, value_parser = args::parse_size, help_heading = heading::AZURE)]
    pub max_single_put_size: Option<u64>,
}

super::command_with_common_args!(Args, |a: &Args| a.max_parallel > 1);

/// Barman's hook mode: run as an `archive_script` pre-hook, the WAL comes from `BARMAN_FILE`.
fn wal_path_from_hook() -> Result<Option<PathBuf>> {
    let (Ok(hook), Ok(phase)) = (std::env::var("BARMAN_HOOK"), std::env::var("BARMAN_PHASE"))
    else {
        return Ok(None);
    };
    if !matches!(hook.as_str(), "archive_script" | "archive_retry_script") || phase != "pre" {
        return Err(Error::Input(format!(
            "barman-cloud-wal-archive called as unsupported hook script: {phase}_{hook}"
        )));
    }
    let file = std::env::var_os("BARMAN_FILE")
        .ok_or_else(|| Error::Input("Expected environment variable BARMAN_FILE not set".into()))?;
    Ok(Some(PathBuf::from(file)))
}

/// Runs the command.
///
/// # Errors
/// Everything [`wal::archive()`] returns.
pub async fn run(args: Args) -> Result<()> {
    let wal_path = match wal_path_from_hook()? {
        Some(path) => Some(path),
        None => args.wal_path.clone(),
    };
    if let Some(path) = &wal_path {
        wal::archive::wal_name_of(path)?;
    }
    let opened = args.destination.open(&args.common, Some(&args.encryption));
    let Some((storage, layout)) = opened.await? else {
        return Ok(());
    };
    let wal_path =
        wal_path.ok_or_else(|| args::input("the following arguments are required: WAL_PATH"))?;
    let history_tags = (args.history_tags.is_some() || !args.history_tag.is_empty())
        .then(|| args::tags(args.history_tags.as_ref(), &args.history_tag));
    let options = ArchiveOptions {
        compression: args.compression.compression(),
        level: args.compression_level,
        tags: args.tags.pairs(),
        history_tags,
    };
    let archived = if args.max_parallel > 1 {
        let spool = args.spool_dir.join(&args.destination.server_name);
        let outcome = wal::archive_with_prefetch(
            &storage,
            &layout,
            &wal_path,
            &options,
            usize::from(args.max_parallel),
            &spool,
        );
        match outcome.await? {
            Prearchived::FromSpool => {
                tracing::info!(
                    "{} was archived ahead by an earlier call",
                    wal_path.display()
                );
                return Ok(());
            }
            Prearchived::Archived { archived, ahead } => {
                tracing::debug!("{ahead} more WAL files archived ahead");
                archived
            }
        }
    } else {
        wal::archive(&storage, &layout, &wal_path, &options).await?
    };
    match archived {
        Archived::Uploaded(key) => tracing::info!("archived {} as {key}", wal_path.display()),
        Archived::AlreadyStored(key) => {
            tracing::info!(
                "{} is already archived with identical content as {key}; nothing uploaded",
                wal_path.display()
            );
        }
    }
    Ok(())
}
