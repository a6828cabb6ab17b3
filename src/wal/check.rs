//! `barman-cloud-check-wal-archive`: may a new server start archiving into this path?
//!
//! CloudNativePG asks before a new cluster archives into an existing destination. Without a
//! timeline the archive must be empty; with timeline T only older timelines may be present
//! (history files count too), exactly as Barman decides.

use crate::error::{Error, Result};
use crate::layout::{Layout, parse_wal_object};
use crate::storage::Storage;

/// Checks the archive of `layout`'s server.
///
/// # Errors
/// [`Error::ArchiveNotUsable`] with Barman's reason, or storage errors.
pub async fn check_archive(
    storage: &Storage,
    layout: &Layout,
    timeline: Option<u32>,
) -> Result<()> {
    let objects = storage.list_all(&layout.wals_dir()).await?;
    let timelines = objects
        .iter()
        .filter_map(|meta| parse_wal_object(&meta.location))
        .map(|(w, _)| w.timeline());
    let server = layout.server_name();
    let reason = match timeline {
        None => (timelines.count() > 0).then(|| "Expected empty archive".to_string()),
        Some(t) => match timelines.filter(|&tli| tli >= t).count() {
            0 => None,
            n => Some(format!(
                "Found {n} file{} in WAL archive equal to or newer than timeline {t}",
                if n > 1 { "s" } else { "" }
            )),
        },
    };
    match reason {
        Some(reason) => Err(Error::ArchiveNotUsable { server, reason }),
        None => Ok(()),
    }
}
