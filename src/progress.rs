//! How long operations report how far they are, without the library touching a terminal:
//! the CLI supplies a bar on a TTY, and nothing anywhere else.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `tracing` target of the INFO lines a DBA needs at the default verbosity (Barman's is
/// WARNING, where nothing else is said): what a long wait is waiting for, and a command's
/// summary (issue #17). The CLI shows them unless `-q` is given.
pub const NOTICE: &str = "barman_cloud::notice";

/// Receives progress of one operation (a backup or a restore).
pub trait Progress: Send + Sync {
    /// The work begins; `total` bytes when known.
    fn start(&self, total: Option<u64>);
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
    /// The work ended: `complete` when every byte was processed (then what was processed is
    /// the real total, whatever [`Progress::start`] was told), not when it stopped on an error.
    fn finish(&self, complete: bool);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self, _: bool) {}
}

/// A shareable progress receiver.
#[derive(Clone)]
pub struct ProgressHandle(pub Arc<dyn Progress>);

impl ProgressHandle {
    /// A receiver that ignores everything.
    pub fn silent() -> Self {
        ProgressHandle(Arc::new(Silent))
    }
}

impl Default for ProgressHandle {
    fn default() -> Self {
        Self::silent()
    }
}

impl std::fmt::Debug for ProgressHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHandle")
    }
}

impl std::ops::Deref for ProgressHandle {
    type Target = dyn Progress;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

/// Passes progress on to another receiver and keeps the total of the bytes reported.
pub struct Counting {
    inner: ProgressHandle,
    bytes: AtomicU64,
}

impl Counting {
    /// Counts what goes to `inner`.
    pub fn new(inner: ProgressHandle) -> Arc<Self> {
        Arc::new(Counting {
            inner,
            bytes: AtomicU64::new(0),
        })
    }

    /// The bytes reported so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Progress for Counting {
    fn start(&self, total: Option<u64>) {
        self.inner.start(total);
    }

    fn advance(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.inner.advance(bytes);
    }

    fn finish(&self, complete: bool) {
        self.inner.finish(complete);
    }
}
