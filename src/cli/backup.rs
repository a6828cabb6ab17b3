//! `barman-cloud-backup DESTINATION_URL SERVER_NAME`.

use clap::Parser;

use super::args::{
    self, BackupCompressionArgs, CommonArgs, Destination, EncryptionArgs, TagArgs, ToCloud, heading,
};
use crate::backup::{self, BackupOptions, DEFAULT_MAX_ARCHIVE_SIZE};
use crate::catalog::select::RESERVED_NAMES;
use crate::compress::Level;
use crate::error::{Error, Result};
use crate::layout::is_backup_id;
use crate::pg::{ConnectOptions, Pg, ProcessEnv};
use crate::postgres::backup_manifest::ChecksumAlgorithm;

/// Takes a hot base backup of a PostgreSQL server and ships its tarballs to the cloud.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-backup", after_help = super::manual::after_help("barman-cloud-backup"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub destination: Destination<ToCloud>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub compression: BackupCompressionArgs,
    /// Our addition: a compression level for the tarballs: low, medium, high or an integer
    /// (clamped to the algorithm's range). Default: gzip 6 (Barman writes 9: same size on
    /// PostgreSQL data, four times slower), bzip2 9.
    #[arg(long, value_parser = args::parse_level, allow_negative_numbers = true)]
    pub compression_level: Option<Level>,
    /// Host or Unix socket for PostgreSQL connection (default: libpq settings).
    #[arg(short = 'h', long)]
    pub host: Option<String>,
    /// Port for PostgreSQL connection (default: libpq settings).
    #[arg(short = 'p', long)]
    pub port: Option<String>,
    /// User name for PostgreSQL connection (default: libpq settings).
    #[arg(short = 'U', long)]
    pub user: Option<String>,
    /// Forces the initial checkpoint to be done as quickly as possible.
    #[arg(long)]
    pub immediate_checkpoint: bool,
    /// Number of parts uploaded at once.
    #[arg(short = 'J', long, default_value_t = 2, value_parser = parse_positive)]
    pub jobs: usize,
    /// Maximum size of an archive when uploading to cloud storage (default: 100GB).
    #[arg(short = 'S', long, value_parser = args::parse_size)]
    pub max_archive_size: Option<u64>,
    /// Minimum size of an individual chunk when uploading to cloud storage (default: 5MB for
    /// aws-s3, 64KB for azure-blob-storage).
    #[arg(long, value_parser = args::parse_size)]
    pub min_chunk_size: Option<u64>,
    /// The maximum amount of data to be uploaded per second (default: no limit).
    #[arg(long, value_parser = args::parse_size)]
    pub max_bandwidth: Option<u64>,
    /// Database name or conninfo string for Postgres connection (default: postgres). TLS
    /// as in libpq: sslmode (disable, allow, prefer (default), require, verify-ca,
    /// verify-full), sslrootcert, sslcert and sslkey here or in PGSSLMODE, PGSSLROOTCERT,
    /// PGSSLCERT and PGSSLKEY; ~/.postgresql/root.crt, postgresql.crt and postgresql.key by
    /// default.
    #[arg(short = 'd', long)]
    pub dbname: Option<String>,
    /// A name which can be used to reference this backup in commands such as
    /// barman-cloud-restore and barman-cloud-backup-delete.
    #[arg(short = 'n', long = "name", value_name = "BACKUP_NAME", value_parser = parse_backup_name)]
    pub backup_name: Option<String>,
    /// Our addition: the checksum of each file in the backup_manifest stored as the data
    /// tarball's last member, as pg_basebackup's option (pg_verifybackup checks a restored
    /// directory against it; NONE still lists each file's size).
    #[arg(long, value_enum, ignore_case = true, default_value_t = ChecksumAlgorithm::Crc32c)]
    pub manifest_checksums: ChecksumAlgorithm,
    /// Our addition: write no backup_manifest (the tarballs are then exactly Barman's).
    #[arg(long, conflicts_with = "manifest_checksums")]
    pub no_manifest: bool,
    #[command(flatten)]
    pub tags: TagArgs,
    #[command(flatten)]
    pub encryption: EncryptionArgs,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
}

/// Disk-snapshot backups: accepted so command lines parse, refused when used.
#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    /// The name of the VM instance to which the disks to be backed up are attached (snapshot
    /// backups are not supported yet).
    #[arg(long)]
    pub snapshot_instance: Option<String>,
    /// Name of a disk for which snapshots should be taken (repeatable).
    #[arg(long, value_name = "NAME")]
    pub snapshot_disk: Vec<String>,
    /// Zone of the disks from which snapshots should be taken (deprecated: --gcp-zone).
    #[arg(long, value_name = "GCP_ZONE")]
    pub snapshot_zone: Option<String>,
    /// GCP project under which disk snapshots should be stored (deprecated: --gcp-project).
    #[arg(long, value_name = "GCP_PROJECT", help_heading = heading::GCS)]
    pub snapshot_gcp_project: Option<String>,
    /// GCP project under which disk snapshots should be stored.
    #[arg(long, help_heading = heading::GCS)]
    pub gcp_project: Option<String>,
    /// Zone of the disks from which snapshots should be taken.
    #[arg(long, help_heading = heading::GCS)]
    pub gcp_zone: Option<String>,
    /// The name of the AWS region containing the EC2 VM and storage volumes.
    #[arg(long, help_heading = heading::S3)]
    pub aws_region: Option<String>,
    /// The length of time in seconds to wait for snapshots to be created in AWS.
    #[arg(long, help_heading = heading::S3)]
    pub aws_await_snapshots_timeout: Option<u64>,
    /// The lock mode to apply to the snapshot.
    #[arg(long, value_parser = ["governance", "compliance"], help_heading = heading::S3)]
    pub aws_snapshot_lock_mode: Option<String>,
    /// The cool-off period (hours) for the snapshot lock.
    #[arg(long, help_heading = heading::S3)]
    pub aws_snapshot_lock_cool_off_period: Option<u32>,
    /// The expiration date for the snapshot lock.
    #[arg(long, conflicts_with = "aws_snapshot_lock_duration", help_heading = heading::S3)]
    pub aws_snapshot_lock_expiration_date: Option<String>,
    /// The duration (days) of the snapshot lock.
    #[arg(long, help_heading = heading::S3)]
    pub aws_snapshot_lock_duration: Option<u32>,
    /// The ID of the Azure subscription which owns the instance and storage volumes.
    #[arg(long, help_heading = heading::AZURE)]
    pub azure_subscription_id: Option<String>,
    /// The name of the Azure resource group of the instance and disks.
    #[arg(long, help_heading = heading::AZURE)]
    pub azure_resource_group: Option<String>,
}

super::command_with_common_args!(Args, |_: &Args| true);

fn parse_positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' must be a positive integer")),
    }
}

/// Names that would be mistaken for an ID or a shortcut are refused (exit 3), as in Barman.
fn parse_backup_name(s: &str) -> std::result::Result<String, String> {
    if s.is_empty() {
        Err("the backup name cannot be empty".into())
    } else if RESERVED_NAMES.contains(&s) {
        Err(format!("'{s}' is reserved: choose another backup name"))
    } else if is_backup_id(s) {
        Err(format!(
            "'{s}' looks like a backup ID: choose a name that is not one"
        ))
    } else {
        Ok(s.to_string())
    }
}

/// Runs the command.
///
/// # Errors
/// Everything [`backup::backup`] returns, and connection failures.
pub async fn run(args: Args) -> Result<()> {
    let hook = std::env::var("BARMAN_HOOK").unwrap_or_default();
    if matches!(hook.as_str(), "backup_script" | "backup_retry_script")
        && std::env::var("BARMAN_PHASE").is_ok_and(|p| p == "post")
    {
        return Err(Error::Input(
            "running as a Barman backup hook (BARMAN_HOOK) is not supported yet: use Barman's \
             barman-cloud-backup as the hook"
                .into(),
        ));
    }
    let s = &args.snapshots;
    if s.snapshot_instance.is_some() || !s.snapshot_disk.is_empty() {
        return Err(Error::Input(
            "snapshot backups (--snapshot-instance/--snapshot-disk) are not supported yet: \
             use barman-cloud-backup from Barman for those"
                .into(),
        ));
    }
    let opened = args.destination.open(&args.common, Some(&args.encryption));
    let Some((storage, layout)) = opened.await? else {
        return Ok(());
    };
    let conninfo = ConnectOptions {
        host: args.host.clone(),
        port: args.port.clone(),
        user: args.user.clone(),
        dbname: args.dbname.clone(),
    }
    .conninfo();
    let target = crate::pg::config(&conninfo, &ProcessEnv)?;
    let pg = Pg::connect(&target).await?;
    // Before PostgreSQL is asked for a checkpoint that an unreachable store would waste.
    storage.probe().await?;
    let options = BackupOptions {
        name: args.backup_name.clone(),
        compression: args.compression.compression(),
        level: args.compression_level,
        immediate_checkpoint: args.immediate_checkpoint,
        jobs: args.jobs,
        max_archive_size: args.max_archive_size.unwrap_or(DEFAULT_MAX_ARCHIVE_SIZE),
        min_chunk_size: args.min_chunk_size,
        max_bandwidth: args.max_bandwidth,
        tags: args.tags.pairs(),
        manifest: (!args.no_manifest).then_some(args.manifest_checksums),
        progress: super::progress::for_terminal("backup", args.common.quiet),
    };
    let outcome = backup::backup(&storage, &layout, &pg, &options, interrupted()).await;
    pg.close().await;
    let backup_id = outcome?;
    tracing::info!("Backup completed (id: {backup_id})");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_id_like_names_are_refused() {
        for bad in ["latest", "auto", "last-failed", "20261125T035049", ""] {
            assert!(parse_backup_name(bad).is_err(), "{bad}");
        }
        assert!(parse_backup_name("nightly").is_ok());
        assert!(parse_backup_name("20261125X035049").is_ok());
    }
}
