//! The catalog: what Barman stores about backups (`backup.info`, keep annotations), the list
//! of a server's backups and WAL files, and how a user's backup reference picks a backup.

mod backup_info;
mod keep;
mod list;
pub mod select;

pub use backup_info::{BackupInfo, DEFAULT_SEGMENT_SIZE, ParseError, Status};
pub use keep::{Keep, read_keep, release_keep, write_keep};
pub use list::{
    Catalog, WalArchive, read_backup_info, read_whole_backup_info, resolve_reference, wal_names,
};
pub use select::{RecoveryTargets, TargetTli, parse_target_time, select_for_recovery};
