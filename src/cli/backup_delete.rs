//! `barman-cloud-backup-delete SOURCE_URL SERVER_NAME (-b BACKUP_ID | -r POLICY)`.

use chrono::Local;
use clap::{Args as ClapArgs, Parser};
use object_store::path::Path;

use super::args::{CommonArgs, Destination, FromCloud};
use crate::error::{Error, Result};
use crate::python::PyValue;
use crate::retention::{Action, DeleteOptions, Deleter, Policy};
use crate::storage::Provider;

/// Deletes backups made with barman-cloud-backup, and the WAL files no remaining backup
/// needs: one backup, or every backup a retention policy makes obsolete.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-backup-delete", after_help = super::manual::after_help("barman-cloud-backup-delete"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: Destination<FromCloud>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub target: DeleteTarget,
    /// The minimum number of backups that should always be available.
    #[arg(short = 'm', long, default_value_t = 0)]
    pub minimum_redundancy: u32,
    /// Find the objects which need to be deleted but do not delete them.
    #[arg(long)]
    pub dry_run: bool,
    /// The maximum number of objects to be deleted in a single request to the cloud provider.
    /// If unset then the maximum allowed batch size for the specified cloud provider will be
    /// used (1000 for aws-s3, 256 for azure-blob-storage and 100 for google-cloud-storage).
    #[arg(long, allow_negative_numbers = true)]
    pub batch_size: Option<i64>,
    /// Check for S3 Object Lock before deleting (accepted; not checked yet: S3 itself refuses
    /// to delete a locked object, and the backup's backup.info then stays).
    #[arg(long)]
    pub check_object_lock: bool,
}

/// Exactly one of these.
#[derive(Debug, ClapArgs)]
#[group(required = true, multiple = false)]
pub struct DeleteTarget {
    /// Backup ID of the backup to be deleted (or a name, or a shortcut).
    #[arg(short = 'b', long)]
    pub backup_id: Option<String>,
    /// If specified, delete all backups eligible for deletion according to the supplied
    /// retention policy. Syntax: REDUNDANCY value | RECOVERY WINDOW OF value
    /// {DAYS | WEEKS | MONTHS}
    #[arg(short = 'r', long)]
    pub retention_policy: Option<String>,
}

super::command_with_common_args!(Args, |_: &Args| true);

/// Runs the command.
///
/// # Errors
/// Refusals ([`Error::BackupKept`], [`Error::MinimumRedundancy`],
/// [`Error::UnreadableCatalog`]), [`Error::DeleteFailed`], a bad policy, storage errors.
pub async fn run(args: Args) -> Result<()> {
    if args.check_object_lock {
        if args.common.cloud_provider == Provider::AwsS3 {
            tracing::warn!(
                "--check-object-lock: object locks are not checked yet; S3 refuses to delete \
                 a locked object, and the backup is then left in the catalog"
            );
        } else {
            tracing::warn!(
                "The --check-object-lock option is currently only supported for aws-s3. \
                 Object lock checks will not be performed for this cloud provider"
            );
        }
    }
    let Some((storage, layout)) = args.source.open(&args.common, None).await? else {
        return Ok(());
    };
    let max = storage.max_delete_batch();
    let batch_size = args.batch_size.map_or(max, |n| {
        usize::try_from(n.max(1)).map_or(max, |n| n.min(max))
    });
    let options = DeleteOptions {
        dry_run: args.dry_run,
        batch_size,
    };
    let mut deleter = Deleter::open(&storage, &layout, options).await?;
    let mut report = |action: &Action| {
        if args.dry_run {
            let _ = super::emit(&(dry_run_line(action) + "\n"));
        } else {
            log_action(action);
        }
    };
    let m = args.minimum_redundancy;
    match (&args.target.backup_id, &args.target.retention_policy) {
        (Some(reference), _) => deleter.delete_requested(reference, m, &mut report).await,
        // Barman tests the policy for truth: an empty one deletes nothing.
        (None, Some(policy)) if policy.is_empty() => Ok(()),
        (None, Some(policy)) => {
            let policy: Policy = policy.parse().map_err(Error::Input)?;
            let now = Local::now().fixed_offset();
            let deleted = deleter.apply_policy(policy, m, now, &mut report).await?;
            tracing::info!(
                "{} backups deleted by retention policy {policy}",
                deleted.len()
            );
            Ok(())
        }
        (None, None) => unreachable!("clap requires -b or -r"),
    }
}

fn log_action(action: &Action) {
    match action {
        Action::Backup { id, objects } => {
            tracing::info!("Deleting backup {id} ({} objects)", objects.len());
        }
        Action::WalPrefix(prefix) => tracing::info!("Deleting all objects under {prefix}"),
        Action::Wals(keys) => tracing::info!("Deleting {} WAL files", keys.len()),
        Action::Snapshots { .. } | Action::SnapshotLabel(_) => {}
    }
}

/// A Python list of keys, as Barman's dry run prints one.
fn key_list(keys: &[Path]) -> String {
    PyValue::List(keys.iter().map(|k| PyValue::Str(k.to_string())).collect()).to_string()
}

/// The line `barman-cloud-backup-delete --dry-run` prints for a step it skips.
pub fn dry_run_line(action: &Action) -> String {
    match action {
        Action::Backup { objects, .. } | Action::Wals(objects) => format!(
            "Skipping deletion of objects {} due to --dry-run option",
            key_list(objects)
        ),
        Action::WalPrefix(prefix) => {
            format!(
                "Skipping deletion of all objects under prefix {prefix} due to --dry-run option"
            )
        }
        Action::Snapshots { .. } => "Skipping deletion of snapshots due to --dry-run option".into(),
        Action::SnapshotLabel(key) => format!("Skipping deletion of {key} due to --dry-run option"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_lines_are_barmans() {
        let keys = vec![
            Path::from("p/pg/base/20261125T035049/data.tar.gz"),
            Path::from("p/pg/base/20261125T035049/backup.info"),
        ];
        assert_eq!(
            dry_run_line(&Action::Wals(keys)),
            "Skipping deletion of objects ['p/pg/base/20261125T035049/data.tar.gz', \
             'p/pg/base/20261125T035049/backup.info'] due to --dry-run option"
        );
        assert_eq!(
            dry_run_line(&Action::WalPrefix("p/pg/wals/0000000100000000/".into())),
            "Skipping deletion of all objects under prefix p/pg/wals/0000000100000000/ due to \
             --dry-run option"
        );
    }
}
