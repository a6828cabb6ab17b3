//! The catalog: what Barman stores about backups (`backup.info`, keep annotations), the list
//! of a server's backups, and how a user's backup reference picks one of them.

mod backup_info;
mod list;
pub mod pyrepr;
pub mod select;

pub use backup_info::{
    BackupInfo, DEFAULT_SEGMENT_SIZE, ParseError, Status, Tablespace, Timestamp,
};
pub use list::{Catalog, read_backup_info, resolve_reference, wal_names};
pub use select::{RecoveryTargets, TargetTli, parse_target_time, select_for_recovery};
