//! The async half of a backup copy: turns the tar side's messages into streamed uploads, one
//! object per part, with at most `jobs` chunks in flight and an optional bandwidth cap.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::tarball::Message;
use crate::error::{Error, Result};
use crate::layout::{BackupId, Layout, Tarball};
use crate::storage::{Storage, Upload, WriteOptions};

/// How parts are uploaded.
#[derive(Debug, Clone)]
pub(super) struct UploadSettings {
    pub chunk_size: usize,
    pub jobs: usize,
    pub max_bandwidth: Option<u64>,
    pub write: WriteOptions,
}

/// One stored part.
#[derive(Debug, Clone)]
pub struct PartStats {
    /// The part stored.
    pub tarball: Tarball,
    /// Its stored (compressed) size in bytes.
    pub bytes: u64,
    /// How long its upload took.
    pub seconds: f64,
}

/// Paces uploads to `limit` bytes per second over the whole copy.
struct Throttle {
    limit: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    async fn account(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
        if let Some(limit) = self.limit.filter(|l| *l > 0) {
            let due = Duration::from_secs_f64(self.bytes as f64 / limit as f64);
            let elapsed = self.start.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
}

/// Receives parts until the tar side hangs up, or `stop` turns true (a signal). A part
/// counts only once its upload is committed; an upload still open when the messages stop is
/// aborted.
///
/// # Errors
/// The first storage error, or [`Error::Interrupted`] (the channel is then closed, which stops
/// the tar side).
pub(super) async fn upload_parts(
    storage: &Storage,
    layout: &Layout,
    backup_id: &BackupId,
    mut rx: mpsc::Receiver<Message>,
    settings: &UploadSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<PartStats>> {
    let mut done = Vec::new();
    let mut current: Option<(Upload, PartStats, Instant)> = None;
    let mut throttle = Throttle {
        limit: settings.max_bandwidth,
        start: Instant::now(),
        bytes: 0,
    };
    let work = async {
        while let Some(message) = rx.recv().await {
            match message {
                Message::Start(tarball) => {
                    let key = layout.tarball(backup_id, &tarball);
                    tracing::info!("Uploading '{key}'");
                    let upload = storage
                        .upload(&key, &settings.write, settings.chunk_size, settings.jobs)
                        .await?;
                    let stats = PartStats {
                        tarball,
                        bytes: 0,
                        seconds: 0.0,
                    };
                    current = Some((upload, stats, Instant::now()));
                }
                Message::Data(data) => {
                    let (upload, stats, _) = current.as_mut().ok_or_else(protocol)?;
                    stats.bytes += data.len() as u64;
                    let len = data.len();
                    upload.write(data).await?;
                    throttle.account(len).await;
                }
                Message::End => {
                    let (upload, mut stats, started) = current.take().ok_or_else(protocol)?;
                    upload.finish().await?;
                    stats.seconds = started.elapsed().as_secs_f64();
                    tracing::info!(
                        "Uploaded '{}' ({} bytes)",
                        stats.tarball.file_name(),
                        stats.bytes
                    );
                    done.push(stats);
                }
            }
        }
        Ok(())
    };
    // Wherever the work is (waiting for a part slot, for the bandwidth cap), a stop ends it
    // here, so the part in flight is aborted below.
    let outcome: Result<()> = tokio::select! {
        outcome = work => outcome,
        _ = stop.wait_for(|stop| *stop) => Err(Error::Interrupted("barman-cloud-backup")),
    };
    if let Some((upload, stats, _)) = current.take() {
        tracing::warn!("aborting the upload of '{}'", stats.tarball.file_name());
        upload.abort().await;
        outcome?;
        return Err(Error::Storage {
            action: "upload",
            key: layout.tarball(backup_id, &stats.tarball).to_string(),
            source: "the archive stream ended before the part was complete".into(),
        });
    }
    outcome.map(|()| done)
}

fn protocol() -> Error {
    Error::Storage {
        action: "upload",
        key: String::new(),
        source: "internal error: part data without a part".into(),
    }
}
