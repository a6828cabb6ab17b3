//! How long operations report how far they are, without the library touching a terminal:
//! the CLI supplies a bar on a TTY, and nothing anywhere else.

use std::sync::Arc;

/// Receives progress of one operation (a backup or a restore).
pub trait Progress: Send + Sync {
    /// The work begins; `total` bytes when known.
    fn start(&self, total: Option<u64>);
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
    /// The work ended (successfully or not).
    fn finish(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
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
