//! Streamed uploads in parts, and the `file://` staging that a killed writer leaves behind.

use std::time::Duration;

use bytes::Bytes;
use object_store::WriteMultipart;
use object_store::path::Path;

use super::Location;
use super::classify::{self, classify};
use super::gcs::ResumableUpload;
use crate::error::Result;

/// An object being uploaded in parts; see [`Storage::upload`](super::Storage::upload).
pub struct Upload {
    sink: Sink,
    location: Location,
    key: Path,
}

pub(super) enum Sink {
    Multipart {
        write: WriteMultipart,
        concurrency: usize,
    },
    // Resumable uploads take their requests one after the other (Barman uses one job on GCS).
    Gcs {
        upload: ResumableUpload,
        chunk_size: usize,
    },
}

impl Upload {
    pub(super) fn new(sink: Sink, location: Location, key: Path) -> Self {
        Upload {
            sink,
            location,
            key,
        }
    }

    /// Queues `data`, waiting first while `concurrency` parts are in flight.
    ///
    /// # Errors
    /// A part upload failed (the caller should [`Upload::abort`]).
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        match &mut self.sink {
            Sink::Multipart { write, concurrency } => {
                write
                    .wait_for_capacity(*concurrency)
                    .await
                    .map_err(|e| classify(e, "upload", &self.key, &self.location))?;
                write.put(data);
                Ok(())
            }
            Sink::Gcs { upload, chunk_size } => upload
                .write(&data, *chunk_size)
                .await
                .map_err(|e| classify::request(e, "upload", &self.key, &self.location)),
        }
    }

    /// Uploads what is left and commits the object.
    ///
    /// # Errors
    /// The upload failed; it has been aborted.
    pub async fn finish(self) -> Result<()> {
        let Upload {
            sink,
            location,
            key,
        } = self;
        match sink {
            Sink::Multipart { write, .. } => write
                .finish()
                .await
                .map(drop)
                .map_err(|e| classify(e, "upload", &key, &location)),
            Sink::Gcs { upload, .. } => upload
                .finish()
                .await
                .map_err(|e| classify::request(e, "upload", &key, &location)),
        }
    }

    /// Abandons the upload and asks the store to drop the parts already sent.
    pub async fn abort(self) {
        match self.sink {
            Sink::Multipart { write, .. } => {
                if let Err(e) = write.abort().await {
                    tracing::warn!("cannot abort the upload of '{}': {e}", self.key);
                }
            }
            Sink::Gcs { upload, .. } => upload.abort().await,
        }
    }
}

/// Removes the staged files (`<name>#<digits>`) in `dir` and below that have not been
/// modified for `age`; returns their paths.
pub(super) fn sweep_staged_files(dir: &std::path::Path, age: Duration) -> Vec<std::path::PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    // Names first, from the directory entry alone: a WAL directory holds hundreds of files
    // and this runs in archive_command.
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            removed.extend(sweep_staged_files(&path, age));
            continue;
        }
        let name = entry.file_name();
        let staged = name
            .to_str()
            .and_then(|n| n.rsplit_once('#'))
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !staged {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|elapsed| elapsed >= age);
        if old && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stale_staged_files_are_swept() {
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("base/20261126T000000");
        std::fs::create_dir_all(&nested).unwrap();
        let mut stale = Vec::new();
        for (path, old) in [
            (nested.join("data.tar#1"), true),
            (dir.path().join("000000010000000000000001#17"), true),
            (dir.path().join("000000010000000000000002#3"), false),
            (dir.path().join("000000010000000000000003"), true),
            (dir.path().join("notes#draft"), true),
        ] {
            let file = std::fs::File::create(&path).unwrap();
            if old {
                file.set_modified(hour_ago).unwrap();
            }
            if old && path.to_string_lossy().contains("tar#1")
                || path.to_string_lossy().ends_with("#17")
            {
                stale.push(path);
            }
        }
        let mut removed = sweep_staged_files(dir.path(), Duration::from_secs(15 * 60));
        removed.sort();
        stale.sort();
        assert_eq!(removed, stale);
        for kept in [
            "000000010000000000000002#3",
            "000000010000000000000003",
            "notes#draft",
        ] {
            assert!(dir.path().join(kept).exists(), "{kept} was removed");
        }
    }
}
