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

/// The most bytes of one message: a download's chunks are cut to it (without copying), so
/// the channel's depth bounds the bytes it holds whatever size the network or the disk
/// delivers (hyper hands on up to ~400 KiB at once, which made a restore's 32-deep channels
/// hold 12 MiB per part; issue #19 item 4).
const PIECE: usize = 64 << 10;

/// A feeder and its reader, with at most `depth` pieces of at most `PIECE` bytes between
/// them (and the chunk those pieces are cut from).
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
        while let Some(mut chunk) = body.try_next().await? {
            on_chunk(chunk.len());
            while !chunk.is_empty() {
                let piece = chunk.split_to(chunk.len().min(PIECE));
                if self.tx.send(Message::Data(piece)).await.is_err() {
                    return Ok(());
                }
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
