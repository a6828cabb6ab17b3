//! The WAL path: archive (`archive_command`), restore (`restore_command`) and the archive check.
//! What a WAL name or an LSN is lives in [`crate::postgres`]; this module does the I/O.

pub mod archive;
pub mod check;
pub mod prearchive;
pub mod restore;

pub use archive::{ArchiveOptions, Archived, archive};
pub use check::check_archive;
pub use prearchive::{Prearchived, archive_with_prefetch};
pub use restore::{RestoreOptions, Restored, restore, verify_object};
