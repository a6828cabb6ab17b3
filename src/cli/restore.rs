//! `barman-cloud-restore SOURCE_URL SERVER_NAME BACKUP_ID RECOVERY_DIR`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser};

use super::args::{CommonArgs, Destination, FromCloud, heading};
use crate::catalog::{self, BackupInfo, Catalog, RecoveryTargets, Status, TargetTli};
use crate::error::{Error, Result};
use crate::layout::{BackupId, Layout};
use crate::postgres::Lsn;
use crate::restore::{self, RecoveryConf, RecoveryTarget, RestoreOptions, TargetAction};
use crate::storage::Storage;

/// Downloads a backup made with barman-cloud-backup into a directory, ready for PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "barman-cloud-restore", after_help = super::manual::after_help("barman-cloud-restore"), version = super::VERSION, disable_help_flag = true, infer_long_args = true)]
pub struct Args {
    #[command(flatten)]
    pub source: Destination<FromCloud>,
    /// The backup ID, a backup name, a shortcut (latest, last, oldest, first, last-failed) or
    /// `auto` to choose with --target-time/--target-lsn/--target-tli.
    pub backup_id: String,
    /// The path to a directory for recovery (missing or empty).
    pub recovery_dir: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Tablespace relocation rule (repeatable): restore tablespace NAME into LOCATION.
    #[arg(long, value_name = "NAME:LOCATION", value_parser = parse_tablespace_rule)]
    pub tablespace: Vec<(String, PathBuf)>,
    /// Target timeline (a number, `current` or `latest`), used by `auto` to choose the backup.
    #[arg(long, value_parser = parse_tli)]
    pub target_tli: Option<TargetTli>,
    /// Target LSN (Log Sequence Number), used by `auto` to choose the backup (and written as
    /// recovery_target_lsn with --write-recovery-conf).
    #[arg(long, conflicts_with = "target_time")]
    pub target_lsn: Option<String>,
    /// Target time, used by `auto` to choose the backup (and written as recovery_target_time
    /// with --write-recovery-conf). Any unambiguous form, e.g. "YYYY-MM-DD HH:MM:SS.mmm"
    /// (local time without an offset).
    #[arg(long)]
    pub target_time: Option<String>,
    /// How many backup parts are downloaded and unpacked at once.
    #[arg(short = 'J', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    #[command(flatten)]
    pub recovery: RecoveryArgs,
}

/// Barman's snapshot-recovery options: accepted, then refused, since snapshot backups are
/// not supported yet.
#[derive(Debug, ClapArgs)]
pub struct SnapshotArgs {
    /// Instance where the disks recovered from the snapshots are attached (snapshot backups
    /// are not supported yet).
    #[arg(long)]
    pub snapshot_recovery_instance: Option<String>,
    /// Zone containing the instance and disks for the snapshot recovery.
    #[arg(long, visible_alias = "snapshot-recovery-zone", help_heading = heading::GCS)]
    pub gcp_zone: Option<String>,
    /// Name of the AWS region where the instance and disks for snapshot recovery are located.
    #[arg(long, help_heading = heading::S3)]
    pub aws_region: Option<String>,
    /// Resource group containing the instance and disks for the snapshot recovery.
    #[arg(long, help_heading = heading::AZURE)]
    pub azure_resource_group: Option<String>,
}

/// Recovery settings: a barman-cloud-rs addition, off by default (Barman leaves them to the
/// caller).
#[derive(Debug, ClapArgs)]
#[command(next_help_heading = "Recovery settings (barman-cloud-rs addition)")]
pub struct RecoveryArgs {
    /// Write recovery.signal and append a restore_command running barman-cloud-wal-restore
    /// (with this source and these provider flags) to postgresql.auto.conf. Credentials are
    /// not written: PostgreSQL's environment must provide them.
    #[arg(long)]
    pub write_recovery_conf: bool,
    /// recovery_target_time: stop at this time (PostgreSQL's syntax).
    #[arg(long, requires = "write_recovery_conf", group = "recovery_target")]
    pub recovery_target_time: Option<String>,
    /// recovery_target_xid: stop after this transaction.
    #[arg(long, requires = "write_recovery_conf", group = "recovery_target")]
    pub recovery_target_xid: Option<String>,
    /// recovery_target_lsn: stop at this WAL position.
    #[arg(long, requires = "write_recovery_conf", group = "recovery_target")]
    pub recovery_target_lsn: Option<Lsn>,
    /// recovery_target_name: stop at this restore point.
    #[arg(long, requires = "write_recovery_conf", group = "recovery_target")]
    pub recovery_target_name: Option<String>,
    /// recovery_target = 'immediate': stop as soon as the backup is consistent.
    #[arg(long, requires = "write_recovery_conf", group = "recovery_target")]
    pub recovery_target_immediate: bool,
    /// recovery_target_action: what to do once the target is reached.
    #[arg(long, value_enum, requires = "write_recovery_conf")]
    pub recovery_target_action: Option<TargetAction>,
    /// recovery_target_timeline: latest, current or a timeline number.
    #[arg(long, requires = "write_recovery_conf")]
    pub recovery_target_timeline: Option<String>,
    /// Also write archive_mode = 'off': the restored server would otherwise archive with the
    /// source's archive_command, into the source's server name.
    #[arg(long, requires = "write_recovery_conf")]
    pub disable_archiving: bool,
}

super::command_with_common_args!(Args, |_: &Args| true);

/// `--tablespace NAME:LOCATION`, split at the first colon.
fn parse_tablespace_rule(s: &str) -> std::result::Result<(String, PathBuf), String> {
    s.split_once(':')
        .map(|(name, location)| (name.to_string(), PathBuf::from(location)))
        .ok_or_else(|| {
            format!("Invalid tablespace relocation rule '{s}': the valid syntax is NAME:LOCATION")
        })
}

fn parse_tli(s: &str) -> std::result::Result<TargetTli, String> {
    s.parse()
}

/// Runs the command.
///
/// # Errors
/// Everything [`restore::restore`] returns, plus backup lookup errors.
pub async fn run(args: Args) -> Result<()> {
    refuse_snapshot_options(&args.snapshot)?;
    let Some((storage, layout)) = args.source.open(&args.common, None).await? else {
        return Ok(());
    };
    let options = RestoreOptions {
        tablespace_locations: args.tablespace.iter().cloned().collect::<BTreeMap<_, _>>(),
        jobs: usize::from(args.jobs),
        recovery_conf: recovery_conf(&args)?,
        progress: super::progress::for_terminal("restore", args.common.quiet),
    };
    let work = async {
        let (backup_id, info) = choose_backup(&args, &storage, &layout).await?;
        tracing::info!("Restoring from backup_id: {backup_id}");
        let info = info.ok_or_else(|| Error::BackupNotFound {
            id: backup_id.to_string(),
            server: args.source.server_name.clone(),
        })?;
        if info.status != Status::Done {
            tracing::warn!(
                "backup {backup_id} has status {}; restoring it anyway, as Barman does",
                info.status
            );
        }
        let restored = restore::restore(
            &storage,
            &layout,
            &backup_id,
            &info,
            &args.recovery_dir,
            &options,
        )
        .await?;
        tracing::info!(
            "restored backup {backup_id} into {}: {} parts, {} files, {} bytes",
            args.recovery_dir.display(),
            restored.parts,
            restored.stats.files,
            restored.stats.bytes
        );
        for (name, location) in &restored.tablespaces {
            tracing::info!("tablespace {name} restored into {}", location.display());
        }
        Ok(())
    };
    // Barman exits 1 when a restore is interrupted; without this, SIGINT would kill us with
    // the shell's 130.
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted("barman-cloud-restore")),
    }
}

fn refuse_snapshot_options(s: &SnapshotArgs) -> Result<()> {
    let given = [
        (
            "--snapshot-recovery-instance",
            &s.snapshot_recovery_instance,
        ),
        ("--gcp-zone", &s.gcp_zone),
        ("--aws-region", &s.aws_region),
        ("--azure-resource-group", &s.azure_resource_group),
    ]
    .into_iter()
    .find(|(_, v)| v.is_some());
    match given {
        Some((flag, _)) => Err(Error::Unsupported(format!(
            "{flag} is for snapshot backups, and snapshot backups are not supported yet: \
             restore them with Barman's barman-cloud-restore"
        ))),
        None => Ok(()),
    }
}

/// The backup to restore and its `backup.info` (`None` when an ID names nothing).
async fn choose_backup(
    args: &Args,
    storage: &Storage,
    layout: &Layout,
) -> Result<(BackupId, Option<BackupInfo>)> {
    if args.backup_id != "auto" {
        let id = catalog::resolve_reference(storage, layout, &args.backup_id).await?;
        let info = catalog::read_whole_backup_info(storage, layout, &id).await?;
        return Ok((id, info));
    }
    let catalog = Catalog::load(storage, layout).await?;
    let timeline = match args.target_tli {
        None => None,
        Some(tli) => {
            let names = match tli {
                TargetTli::Latest => catalog::wal_names(storage, layout).await?,
                _ => Vec::new(),
            };
            Some(
                tli.resolve_for_auto(names.iter().map(String::as_str))
                    .map_err(Error::InvalidTarget)?,
            )
        }
    };
    let targets = RecoveryTargets {
        time: args
            .target_time
            .as_deref()
            .map(catalog::parse_target_time)
            .transpose()
            .map_err(Error::InvalidTarget)?,
        lsn: args
            .target_lsn
            .as_deref()
            .map(str::parse::<Lsn>)
            .transpose()
            .map_err(Error::InvalidTarget)?,
        timeline,
    };
    let id = catalog::select_for_recovery(&catalog.backups, &targets).ok_or_else(|| {
        Error::NoCandidateBackup {
            server: args.source.server_name.clone(),
        }
    })?;
    // Read again, whole, as Barman reads the chosen one again: the catalog takes what it can.
    let info = catalog::read_whole_backup_info(storage, layout, &id).await?;
    Ok((id, info))
}

/// The recovery settings asked for, checked before anything is downloaded.
fn recovery_conf(args: &Args) -> Result<Option<RecoveryConf>> {
    let r = &args.recovery;
    if !r.write_recovery_conf {
        return Ok(None);
    }
    // A URL can carry secrets (user information, a SAS token in the query): never write one
    // into a file that backups and support bundles copy around.
    let url = url::Url::parse(&args.source.url).ok();
    if url
        .is_some_and(|u| u.query().is_some() || !u.username().is_empty() || u.password().is_some())
    {
        return Err(Error::Input(
            "the source URL carries a query string or user information, which may hold \
             credentials; refusing to write it into postgresql.auto.conf: pass credentials \
             through the environment"
                .into(),
        ));
    }
    let program = wal_restore_program();
    let mut argv = args.common.provider_argv();
    argv.extend([args.source.url.clone(), args.source.server_name.clone()]);
    let conf = RecoveryConf {
        restore_command: restore::recovery_conf::restore_command(&program, &argv),
        target: recovery_target(args)?,
        target_action: r.recovery_target_action,
        target_timeline: r.recovery_target_timeline.clone().or_else(|| {
            args.target_tli.map(|tli| match tli {
                TargetTli::Number(n) => n.to_string(),
                TargetTli::Current => "current".into(),
                TargetTli::Latest => "latest".into(),
            })
        }),
        disable_archiving: r.disable_archiving,
    };
    if !r.disable_archiving {
        tracing::warn!(
            "the restored server keeps the source's archive_command and so archives into \
             server {} unless changed: pass --disable-archiving to write archive_mode = 'off'",
            args.source.server_name
        );
    }
    conf.lines()?;
    Ok(Some(conf))
}

/// Where recovery stops: a `--recovery-target-*` flag, else the `--target-time` or
/// `--target-lsn` that chose the backup, so that one flag both chooses and stops.
fn recovery_target(args: &Args) -> Result<Option<RecoveryTarget>> {
    let r = &args.recovery;
    let target = if let Some(t) = &r.recovery_target_time {
        Some(RecoveryTarget::Time(t.clone()))
    } else if let Some(x) = &r.recovery_target_xid {
        Some(RecoveryTarget::Xid(x.clone()))
    } else if let Some(l) = r.recovery_target_lsn {
        Some(RecoveryTarget::Lsn(l))
    } else if let Some(n) = &r.recovery_target_name {
        Some(RecoveryTarget::Name(n.clone()))
    } else if r.recovery_target_immediate {
        Some(RecoveryTarget::Immediate)
    } else if let Some(t) = &args.target_time {
        // Written with its offset: PostgreSQL would read a bare time in its own time zone,
        // which need not be the one `auto` chose the backup in.
        let at = catalog::parse_target_time(t).map_err(Error::InvalidTarget)?;
        Some(RecoveryTarget::Time(
            at.format("%Y-%m-%d %H:%M:%S%.f%:z").to_string(),
        ))
    } else if let Some(l) = &args.target_lsn {
        Some(RecoveryTarget::Lsn(
            l.parse().map_err(Error::InvalidTarget)?,
        ))
    } else {
        None
    };
    Ok(target)
}

/// Our `barman-cloud-wal-restore`: installed next to this program, else found on the PATH.
fn wal_restore_program() -> PathBuf {
    const NAME: &str = "barman-cloud-wal-restore";
    let sibling = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(NAME))
        .filter(|p| p.is_file());
    sibling.unwrap_or_else(|| {
        tracing::warn!("{NAME} is not next to this program; restore_command relies on the PATH");
        PathBuf::from(NAME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> std::result::Result<Args, clap::Error> {
        Args::try_parse_from(
            ["barman-cloud-restore"]
                .iter()
                .chain(argv)
                .copied()
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn barman_argument_vectors() {
        let a = parse(&[
            "--cloud-provider",
            "aws-s3",
            "s3://b/p",
            "pg",
            "auto",
            "/var/lib/pg",
            "--tablespace",
            "tbs:/new:loc",
            "--tablespace",
            "other:rel",
            "--target-tli",
            "latest",
            "--target-time",
            "2026-11-25 10:00:00",
        ])
        .unwrap();
        assert_eq!(a.tablespace[0], ("tbs".into(), PathBuf::from("/new:loc")));
        assert_eq!(a.target_tli, Some(TargetTli::Latest));
        assert_eq!(a.jobs, 4);
        let conflict = parse(&[
            "u",
            "s",
            "auto",
            "d",
            "--target-lsn",
            "0/1",
            "--target-time",
            "x",
        ]);
        assert!(conflict.is_err());
        assert!(parse(&["u", "s", "auto", "d", "--tablespace", "nocolon"]).is_err());
        assert!(parse(&["u", "s", "auto", "d", "--target-tli", "0"]).is_err());
        // Snapshot options parse; the command refuses them.
        let snap = parse(&["u", "s", "x", "d", "--snapshot-recovery-zone", "z"]).unwrap();
        assert!(refuse_snapshot_options(&snap.snapshot).is_err());
    }

    #[test]
    fn recovery_targets_need_write_recovery_conf_and_are_exclusive() {
        assert!(parse(&["u", "s", "x", "d", "--recovery-target-immediate"]).is_err());
        assert!(
            parse(&[
                "u",
                "s",
                "x",
                "d",
                "--write-recovery-conf",
                "--recovery-target-immediate",
                "--recovery-target-name",
                "n"
            ])
            .is_err()
        );
        let a = parse(&[
            "s3://b/p%20q",
            "pg",
            "x",
            "d",
            "--endpoint-url",
            "http://127.0.0.1:9000",
            "--write-recovery-conf",
            "--recovery-target-lsn",
            "0/3000060",
            "--recovery-target-action",
            "promote",
        ])
        .unwrap();
        let conf = recovery_conf(&a).unwrap().unwrap();
        assert!(
            conf.restore_command
                .ends_with(" --endpoint-url http://127.0.0.1:9000 s3://b/p%%20q pg %f %p"),
            "{}",
            conf.restore_command
        );
        assert_eq!(
            conf.target,
            Some(RecoveryTarget::Lsn("0/3000060".parse().unwrap()))
        );
        // One --target-time both chooses and stops; an explicit recovery target wins.
        let one = |extra: &[&str]| {
            let mut argv = vec!["u", "s", "auto", "d", "--write-recovery-conf"];
            argv.extend(extra);
            recovery_conf(&parse(&argv).unwrap()).unwrap().unwrap()
        };
        let conf = one(&[
            "--target-time",
            "2026-11-25 10:00:00.5+01",
            "--target-tli",
            "2",
        ]);
        assert_eq!(
            conf.target,
            Some(RecoveryTarget::Time("2026-11-25 10:00:00.500+01:00".into()))
        );
        assert_eq!(conf.target_timeline.as_deref(), Some("2"));
        let conf = one(&["--target-lsn", "0/5000028", "--disable-archiving"]);
        assert_eq!(
            conf.target,
            Some(RecoveryTarget::Lsn("0/5000028".parse().unwrap()))
        );
        assert!(conf.disable_archiving);
        let conf = one(&[
            "--target-time",
            "2026-11-25",
            "--recovery-target-name",
            "rp",
        ]);
        assert_eq!(conf.target, Some(RecoveryTarget::Name("rp".into())));
        let secret = parse(&["s3://b/p?sig=x", "pg", "x", "d", "--write-recovery-conf"]).unwrap();
        assert!(recovery_conf(&secret).is_err());
    }
}
