//! A floor under download speed, on top of the read timeout.
//!
//! The read timeout (`--read-timeout`, botocore's meaning) restarts with every byte, so a
//! server or a link that sends one byte every few seconds keeps a download alive for hours:
//! `restore_command` then never returns and PostgreSQL waits on it. Like curl's
//! `--speed-limit`/`--speed-time`, a download must bring at least [`MIN_BYTES_PER_WINDOW`]
//! in every window of one read timeout, or it fails as a network error (exit 2).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// What a window must bring: 64 KiB per read timeout, about 1 KiB/s with the default 60 s.
/// Any link a database is backed up over does far more.
pub(super) const MIN_BYTES_PER_WINDOW: u64 = 64 << 10;

/// `body`, failing with [`Error::Stalled`] as soon as it has kept its reader waiting for
/// `window` in all without delivering [`MIN_BYTES_PER_WINDOW`]; `what` names the download.
///
/// Only time spent waiting on `body` counts: a reader that stops polling (a restore held up
/// by a slow disk, the stream's buffer full) must not make the network look stalled.
pub(super) fn guard(
    body: BoxStream<'static, Result<Bytes>>,
    window: Duration,
    what: String,
) -> BoxStream<'static, Result<Bytes>> {
    struct State {
        body: BoxStream<'static, Result<Bytes>>,
        /// Waited, and received, since the window last filled.
        waited: Duration,
        received: u64,
        failed: bool,
    }
    let state = State {
        body,
        waited: Duration::ZERO,
        received: 0,
        failed: false,
    };
    futures::stream::unfold(state, move |mut st| {
        let what = what.clone();
        async move {
            if st.failed {
                return None;
            }
            let started = Instant::now();
            let next = tokio::time::timeout(window.saturating_sub(st.waited), st.body.next());
            let outcome = next.await;
            st.waited += started.elapsed();
            match outcome {
                Ok(Some(Ok(chunk))) => {
                    st.received += chunk.len() as u64;
                    if st.received >= MIN_BYTES_PER_WINDOW {
                        st.waited = Duration::ZERO;
                        st.received = 0;
                    }
                    Some((Ok(chunk), st))
                }
                Ok(Some(Err(e))) => Some((Err(e), st)),
                Ok(None) => None,
                Err(_) => {
                    st.failed = true;
                    let stalled = Error::Stalled {
                        what: what.clone(),
                        received: st.received,
                        window_secs: window.as_secs(),
                        floor_kib: MIN_BYTES_PER_WINDOW >> 10,
                    };
                    Some((Err(stalled), st))
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn trickle(bytes: usize, every: Duration) -> BoxStream<'static, Result<Bytes>> {
        futures::stream::iter(0..bytes)
            .then(move |_| async move {
                tokio::time::sleep(every).await;
                Ok(Bytes::from_static(b"x"))
            })
            .boxed()
    }

    /// 32 KiB a second, `chunks` times: well above the floor.
    fn steady(chunks: usize) -> BoxStream<'static, Result<Bytes>> {
        futures::stream::iter(0..chunks)
            .then(|_| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(Bytes::from(vec![0u8; 32 << 10]))
            })
            .boxed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_fails_within_one_window() {
        let started = Instant::now();
        let out: Result<Vec<Bytes>> = guard(
            trickle(1000, Duration::from_secs(3)),
            Duration::from_secs(10),
            "x".into(),
        )
        .try_collect()
        .await;
        let Err(e @ Error::Stalled { .. }) = out else {
            panic!("a trickle passed: {out:?}");
        };
        let message = e.to_string();
        assert!(
            message.contains("stalled (3 bytes in 10 s of waiting"),
            "{message}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_pauses_is_not_a_stall() {
        let mut body = guard(steady(20), Duration::from_secs(5), "x".into());
        // More than a window's worth of time away from the stream, twice, between chunks.
        for _ in 0..2 {
            body.next().await.unwrap().unwrap();
            tokio::time::sleep(Duration::from_secs(6)).await;
        }
        let rest: Vec<Bytes> = body.try_collect().await.unwrap();
        assert_eq!(rest.len(), 20 - 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_download_passes_and_a_small_one_ends_in_time() {
        let all: Vec<Bytes> = guard(steady(40), Duration::from_secs(5), "x".into())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(all.len(), 40);
        let small: Vec<Bytes> = guard(
            trickle(3, Duration::from_secs(1)),
            Duration::from_secs(5),
            "x".into(),
        )
        .try_collect()
        .await
        .unwrap();
        assert_eq!(small.len(), 3);
    }
}
