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

/// `body`, failing with [`Error::Connection`] as soon as a window of `window` ends with less
/// than [`MIN_BYTES_PER_WINDOW`] received; `what` names the download in that message.
pub(super) fn guard(
    body: BoxStream<'static, Result<Bytes>>,
    window: Duration,
    what: String,
) -> BoxStream<'static, Result<Bytes>> {
    struct State {
        body: BoxStream<'static, Result<Bytes>>,
        deadline: Instant,
        received: u64,
        failed: bool,
    }
    let state = State {
        body,
        deadline: Instant::now() + window,
        received: 0,
        failed: false,
    };
    futures::stream::unfold(state, move |mut st| {
        let what = what.clone();
        async move {
            if st.failed {
                return None;
            }
            match tokio::time::timeout_at(st.deadline, st.body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    st.received += chunk.len() as u64;
                    if st.received >= MIN_BYTES_PER_WINDOW {
                        st.deadline = Instant::now() + window;
                        st.received = 0;
                    }
                    Some((Ok(chunk), st))
                }
                Ok(Some(Err(e))) => Some((Err(e), st)),
                Ok(None) => None,
                Err(_) => {
                    st.failed = true;
                    let message = format!(
                        "{what}: the download stalled ({} bytes in the last {} s, under \
                         {} KiB): check the network, or raise --read-timeout",
                        st.received,
                        window.as_secs(),
                        MIN_BYTES_PER_WINDOW >> 10
                    );
                    Some((Err(Error::Connection { message }), st))
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
        let Err(Error::Connection { message }) = out else {
            panic!("a trickle passed: {out:?}");
        };
        assert!(
            message.contains("stalled (3 bytes in the last 10 s"),
            "{message}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_download_passes_and_a_small_one_ends_in_time() {
        let steady = futures::stream::iter(0..40)
            .then(|_| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(Bytes::from(vec![0u8; 32 << 10]))
            })
            .boxed();
        let all: Vec<Bytes> = guard(steady, Duration::from_secs(5), "x".into())
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
