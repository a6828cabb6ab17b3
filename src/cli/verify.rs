//! `barman-cloud-verify SOURCE_URL SERVER_NAME [BACKUP]` (our addition).

use std::path::PathBuf;

use clap::Parser;

use super::args::{CommonArgs, Destination, FromCloud};
use crate::catalog::resolve_reference;
use crate::error::{Error, Result};
use crate::verify::{self, Selection, VerifyOptions, health};

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
    /// Check the WAL archive only, no backup's objects (the catalog is still read, for the
    /// backup gauges of the prometheus format).
    #[arg(long)]
    pub wal_only: bool,
    /// How many objects are downloaded and checked at once.
    #[arg(short = 'J', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Output format. prometheus: the text exposition format, gauges named barman_cloud_*
    /// with a server label: verify_ok (1/0), verify_problems, verify_timestamp,
    /// backups{status}, last_backup_info{backup_id,status}, last_backup_end_timestamp,
    /// first_recoverability_point, last_available_backup_timestamp,
    /// last_failed_backup_timestamp (unix seconds, 0 for none, as CloudNativePG's),
    /// wal_newest_timeline, wal_newest_segment, wal_newest_timestamp,
    /// wal_newest_age_seconds, wal_gaps, wal_missing_segments, wal_missing_history_files,
    /// and backup_verify_problems{backup_id} for each backup verified.
    #[arg(long, value_enum, default_value_t = Format::Console)]
    pub format: Format,
    /// Also write the prometheus format to this file for node_exporter's textfile collector
    /// (a name ending in .prom in its --collector.textfile.directory), replacing it
    /// atomically (mode 0644); when verification cannot run, the file says verify_ok 0.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
}

/// What `--format` prints on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A line per backup and timeline, then a line per problem.
    Console,
    /// The whole report as one JSON document.
    Json,
    /// Prometheus' text exposition format.
    Prometheus,
}

super::command_with_common_args!(Args, |_: &Args| true);

/// Runs the command.
///
/// # Errors
/// [`Error::VerifyFailed`] when anything is missing or damaged, backup lookup and storage
/// errors, and [`Error::Io`] when the `--textfile` cannot be written.
pub async fn run(args: Args) -> Result<()> {
    let now = chrono::Utc::now();
    let report = match verify_report(&args, now).await {
        Ok(Some(report)) => report,
        Ok(None) => return Ok(()),
        Err(e) => {
            if let Some(path) = &args.textfile {
                // Best effort: the error that stopped verification is the one to report.
                let text = health::failure_to_prometheus(&args.source.server_name, now);
                let _ = health::write_textfile(path, &text);
            }
            return Err(e);
        }
    };
    if let Some(path) = &args.textfile {
        health::write_textfile(path, &health::to_prometheus(&report, now))?;
    }
    match args.format {
        Format::Json => {
            let json = serde_json::to_string_pretty(&report)
                .map_err(|e| Error::Input(format!("cannot render the report as JSON: {e}")))?;
            super::emit(&(json + "\n"))?;
        }
        Format::Prometheus => super::emit(&health::to_prometheus(&report, now))?,
        Format::Console => super::emit(&report.to_text())?,
    }
    match report.problems().count() {
        0 => Ok(()),
        count => Err(Error::VerifyFailed {
            server: args.source.server_name.clone(),
            count,
        }),
    }
}

/// The report, or `None` under `-t/--test` once the store answered.
async fn verify_report(
    args: &Args,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<verify::Report>> {
    let Some((storage, layout)) = args.source.open(&args.common, None).await? else {
        return Ok(None);
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
        now,
    };
    verify::verify(&storage, &layout, &selection, &options)
        .await
        .map(Some)
}
