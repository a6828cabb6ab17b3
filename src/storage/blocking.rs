//! A blocking [`Read`] over an object as it downloads, for the decoders, unpackers and file
//! writers that run on blocking threads while the download runs on the async runtime.

use std::io::{self, Read};

use bytes::{Buf, Bytes};
use futures::{Stream, TryStreamExt};
use tokio::sync::mpsc;

use crate::error::Result;

enum Message {
    Data(Bytes),
    /// Every byte of the object was sent.
    End,
}

/// The async end: [`Feeder::feed`] passes a download's chunks to the [`BlockingReader`].
pub struct Feeder {
    tx: mpsc::Sender<Message>,
}

/// The blocking end: reads the chunks as they arrive. The download ending without every
/// byte sent (the feeder dropped early) is an error, never a short object.
pub struct BlockingReader {
    rx: mpsc::Receiver<Message>,
    chunk: Bytes,
    ended: bool,
}

/// A feeder and its reader, with at most `depth` chunks between them.
pub fn channel(depth: usize) -> (Feeder, BlockingReader) {
    let (tx, rx) = mpsc::channel(depth);
    (
        Feeder { tx },
        BlockingReader {
            rx,
            chunk: Bytes::new(),
            ended: false,
        },
    )
}

impl Feeder {
    /// Sends every chunk of `body` (calling `on_chunk` with each one's size), then the end.
    /// Stops early, without error, when the reader has gone: its own error says why.
    ///
    /// # Errors
    /// The download's.
    pub async fn feed(
        self,
        body: impl Stream<Item = Result<Bytes>>,
        mut on_chunk: impl FnMut(usize),
    ) -> Result<()> {
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.try_next().await? {
            on_chunk(chunk.len());
            if self.tx.send(Message::Data(chunk)).await.is_err() {
                return Ok(());
            }
        }
        let _ = self.tx.send(Message::End).await;
        Ok(())
    }
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.chunk.is_empty() {
                let n = buf.len().min(self.chunk.len());
                buf[..n].copy_from_slice(&self.chunk[..n]);
                self.chunk.advance(n);
                return Ok(n);
            }
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Message::Data(chunk)) => self.chunk = chunk,
                Some(Message::End) => self.ended = true,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the download stopped before the end of the object",
                    ));
                }
            }
        }
    }
}
