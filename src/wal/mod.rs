//! The WAL path: archive (`archive_command`), restore (`restore_command`) and the archive check.

pub mod archive;
pub mod check;
mod lsn;
mod name;
pub mod prearchive;
pub mod restore;
mod segment;

pub use archive::{ArchiveOptions, Archived, archive};
pub use check::check_archive;
pub use lsn::Lsn;
pub use name::{InvalidWalName, WalKind, WalName};
pub use prearchive::{Prearchived, archive_with_prefetch};
pub use restore::{RestoreOptions, Restored, restore};
