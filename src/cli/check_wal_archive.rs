//! `barman-cloud-check-wal-archive DESTINATION_URL SERVER_NAME`.

use clap::Parser;

use super::args::{CommonArgs, Destination, ToCloud};
use crate::error::{Error, Result};
use crate::storage::{Location, Target};
use crate::wal;

/// Checks that the WAL archive destination for a server is safe to use for a new PostgreSQL
/// cluster.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-check-wal-archive", after_help = super::manual::after_help("barman-cloud-check-wal-archive"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub destination: Destination<ToCloud>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// The earliest timeline whose WALs should cause the check to fail.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub timeline: Option<u32>,
}

super::command_with_common_args!(Args);

/// Runs the command.
///
/// # Errors
/// [`Error::ArchiveNotUsable`], [`Error::Connection`], or storage errors.
pub async fn run(args: Args) -> Result<()> {
    let location = Location::parse(&args.destination.url, args.common.cloud_provider)?;
    if let Target::File { root } = &location.target {
        // Barman creates a missing bucket here, and only here; a directory is our bucket.
        std::fs::create_dir_all(root).map_err(Error::io("create directory", root))?;
    }
    let (storage, layout) =
        args.common
            .open(&args.destination.url, &args.destination.server_name, None)?;
    match storage.check().await {
        // Like Barman's, this test is about connectivity only: a missing bucket passes.
        Err(Error::BucketCheckFailed { .. }) if args.common.test => return Ok(()),
        // Barman would create the bucket here; object_store cannot, so this is its failure.
        Err(Error::BucketCheckFailed { bucket }) => return Err(Error::BucketNotFound { bucket }),
        Err(e) => return Err(e),
        Ok(()) if args.common.test => return Ok(()),
        Ok(()) => {}
    }
    wal::check_archive(&storage, &layout, args.timeline).await
}
