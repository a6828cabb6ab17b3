//! Blocking work (file reads, decoders, tar) run off the async threads.
//!
//! A blocking task that panics, or is cancelled when its runtime shuts down, comes back as
//! [`TaskFailed`], an error of the operation with Barman's exit code, instead of a second
//! panic in the task that waited for it (exit 101, which no caller of ours expects).

use std::future::Future;

/// A blocking task that did not return a value.
#[derive(Debug, thiserror::Error)]
#[error("{what} stopped unexpectedly ({reason}); please report this as a bug")]
pub struct TaskFailed {
    /// What the task was doing, e.g. "decompressing the WAL file".
    pub what: &'static str,
    /// `panicked: MESSAGE` or `cancelled`.
    pub reason: String,
}

/// Starts `work` on tokio's blocking pool at once; the returned future waits for it.
///
/// Must be called inside a tokio runtime.
pub fn blocking<T, F>(what: &'static str, work: F) -> impl Future<Output = Result<T, TaskFailed>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = tokio::task::spawn_blocking(work);
    async move {
        handle.await.map_err(|e| TaskFailed {
            what,
            reason: reason(e),
        })
    }
}

fn reason(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "cancelled".to_string();
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    match message {
        Some(m) => format!("panicked: {m}"),
        None => "panicked".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_an_error_that_names_it() {
        let e = blocking("decoding the test input", || -> u8 { panic!("bad block") })
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "decoding the test input stopped unexpectedly (panicked: bad block); \
             please report this as a bug"
        );
        assert_eq!(blocking("adding", || 1 + 1).await.unwrap(), 2);
    }
}
