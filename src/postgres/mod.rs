//! PostgreSQL's own vocabulary, with no I/O: WAL file names, log sequence numbers, the page
//! header that states a segment's size, timeline history files, a tablespace as a backup
//! records it, and the backup manifest `pg_verifybackup` reads. A leaf: it imports nothing
//! from the rest of the crate, so every layer above can share it.

pub mod backup_manifest;
mod lsn;
mod timeline_history;
mod wal_name;
pub(crate) mod wal_segment;

pub use lsn::Lsn;
pub use timeline_history::{history_entries, last_switch};
pub use wal_name::{InvalidWalName, WalKind, WalName, parse_hash_dir};

/// A tablespace as `pg_tablespace` names it and `backup.info`'s `tablespaces` records it:
/// `(name, oid, location)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablespace {
    /// Its name.
    pub name: String,
    /// Its OID, the name of its directory under `pg_tblspc`.
    pub oid: u32,
    /// Where its files are.
    pub location: String,
}
