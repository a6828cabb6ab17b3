//! The catalog: what Barman stores about backups (`backup.info`, keep annotations).

mod backup_info;
pub mod pyrepr;

pub use backup_info::{
    BackupInfo, DEFAULT_SEGMENT_SIZE, ParseError, Status, Tablespace, Timestamp,
};
