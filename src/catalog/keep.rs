//! Keep annotations: `base/<id>/annotations/keep`, whose body names the recovery target an
//! archival backup must stay restorable to (`full` or `standalone`).
//!
//! Barman reads the body's first line as is (newline included) and gives it three meanings,
//! which we keep apart because its commands disagree on an odd body:
//! - the object's presence alone stops `backup-delete -b`;
//! - retention and WAL cleanup compare the line: exactly `standalone`, any other non-empty
//!   line (counted as `full`, the safer), or an empty line (not kept at all);
//! - `backup-list` and `backup-keep --status` print the line itself.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::layout::{BackupId, Layout};
use crate::storage::{Storage, WriteOptions};

/// A keep annotation's target (`--target` of backup-keep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Keep {
    /// Restorable to any point after the backup: every later WAL stays.
    Full,
    /// Restorable to its own end only: just the WAL between its begin and end stays.
    Standalone,
}

impl Keep {
    /// What retention makes of an annotation's first line (as read, newline included):
    /// exactly `standalone` is standalone, an empty line keeps nothing, anything else is full.
    pub fn from_annotation(line: &str) -> Option<Keep> {
        match line {
            "" => None,
            "standalone" => Some(Keep::Standalone),
            _ => Some(Keep::Full),
        }
    }

    /// The body Barman writes for this target.
    pub fn as_str(self) -> &'static str {
        match self {
            Keep::Full => "full",
            Keep::Standalone => "standalone",
        }
    }
}

/// The first line of `id`'s keep annotation, newline included, or `None` without one.
///
/// # Errors
/// Storage errors other than the annotation's absence.
pub async fn read_keep(
    storage: &Storage,
    layout: &Layout,
    id: &BackupId,
) -> Result<Option<String>> {
    match storage.get(&layout.keep_annotation(id)).await {
        Ok(body) => Ok(Some(first_line(&body))),
        Err(Error::ObjectNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Python's `readline()` of the body, decoded.
pub(super) fn first_line(body: &[u8]) -> String {
    let end = body
        .iter()
        .position(|&b| b == b'\n')
        .map_or(body.len(), |i| i + 1);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// Stores a keep annotation for `id` (replacing any other).
///
/// # Errors
/// Storage errors.
pub async fn write_keep(
    storage: &Storage,
    layout: &Layout,
    id: &BackupId,
    keep: Keep,
) -> Result<()> {
    let body = Bytes::from_static(keep.as_str().as_bytes());
    storage
        .put(&layout.keep_annotation(id), body, &WriteOptions::default())
        .await
}

/// Removes `id`'s keep annotation; one that does not exist is not an error.
///
/// # Errors
/// Storage errors.
pub async fn release_keep(storage: &Storage, layout: &Layout, id: &BackupId) -> Result<()> {
    storage.delete(&layout.keep_annotation(id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_lines_mean_what_they_mean_to_barman() {
        assert_eq!(Keep::from_annotation("standalone"), Some(Keep::Standalone));
        assert_eq!(Keep::from_annotation("full"), Some(Keep::Full));
        // Barman compares the raw line: a trailing newline makes it "some other target".
        assert_eq!(Keep::from_annotation("standalone\n"), Some(Keep::Full));
        assert_eq!(Keep::from_annotation("weekly"), Some(Keep::Full));
        assert_eq!(Keep::from_annotation(""), None);
        assert_eq!(first_line(b"standalone\nextra"), "standalone\n");
        assert_eq!(first_line(b"full"), "full");
        assert_eq!(first_line(b""), "");
    }
}
