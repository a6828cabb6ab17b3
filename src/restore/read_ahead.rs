//! Decompression on a thread of its own, a few chunks ahead of the unpacking.
//!
//! Unpacking a compressed part is two kinds of work: the decoder's (user time) and the
//! kernel's, creating files, copying into the page cache and starting their writeback
//! (system time). On one thread they add up; with the decoder on another they overlap.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::Scope;

/// The size of the chunks handed from the decoder to the reader.
const CHUNK: usize = 256 << 10;
/// How many decoded chunks may wait for the reader: a megabyte ahead. With 1 MiB chunks
/// (4 MiB ahead) seven megabytes circulated per part (issue #19 item 4).
const DEPTH: usize = 4;
/// The most bytes of decoded chunks that exist at once: those waiting, the one being filled,
/// the one being read and the one on its way back.
#[cfg(test)]
const MAX_BYTES: usize = 7 << 18;

/// The reading end of [`spawn`].
pub(crate) struct ReadAhead {
    /// Chunks of [`CHUNK`] bytes with the length that was filled; 0 is the end.
    full: Receiver<io::Result<(Vec<u8>, usize)>>,
    /// Read chunks go back to the decoder thread, so that it does not allocate (and fault
    /// in) a fresh one for every chunk.
    empty: SyncSender<Vec<u8>>,
    /// How many chunks the decoder thread allocated.
    #[cfg(test)]
    allocated: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    chunk: Vec<u8>,
    len: usize,
    pos: usize,
    ended: bool,
}

/// Runs the reader that `open` makes on a new thread of `scope`, at most [`DEPTH`] chunks
/// ahead of the returned [`ReadAhead`]. The thread ends at the end of the stream, at its
/// first error (handed on to the reader), or once the reader is dropped.
pub(crate) fn spawn<'scope, R: Read>(
    scope: &'scope Scope<'scope, '_>,
    open: impl FnOnce() -> io::Result<R> + Send + 'scope,
) -> ReadAhead {
    let (full_tx, full) = sync_channel(DEPTH);
    let (empty, empty_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    #[cfg(test)]
    let allocated = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    #[cfg(test)]
    let counter = allocated.clone();
    scope.spawn(move || {
        let mut source = match open() {
            Ok(source) => source,
            Err(e) => {
                let _ = full_tx.send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = match empty_rx.try_recv() {
                Ok(buf) if buf.len() == CHUNK => buf,
                Ok(_) | Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                    #[cfg(test)]
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    vec![0; CHUNK]
                }
            };
            let result = fill(&mut source, &mut buf).map(|n| (buf, n));
            let last = !matches!(&result, Ok((_, n)) if *n > 0);
            if full_tx.send(result).is_err() || last {
                return;
            }
        }
    });
    ReadAhead {
        full,
        empty,
        #[cfg(test)]
        allocated,
        chunk: Vec::new(),
        len: 0,
        pos: 0,
        ended: false,
    }
}

/// Reads into `buf` until it is full or the stream ends; the bytes read.
fn fill(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            let (next, len) = match self.full.recv() {
                Ok(next) => next?,
                Err(_) => {
                    return Err(io::Error::other(
                        "the decompression thread stopped before the end of the stream",
                    ));
                }
            };
            self.ended = len == 0;
            let done = std::mem::replace(&mut self.chunk, next);
            (self.len, self.pos) = (len, 0);
            let _ = self.empty.try_send(done);
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn hands_on_every_byte_across_chunks() {
        for len in [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 17] {
            let input = data(len);
            let out = std::thread::scope(|s| {
                let mut r = spawn(s, || Ok(&input[..]));
                let mut out = Vec::new();
                r.read_to_end(&mut out).unwrap();
                out
            });
            assert_eq!(out, input, "length {len}");
        }
    }

    #[test]
    fn decoded_bytes_ahead_are_bounded() {
        let input = data(64 << 20);
        std::thread::scope(|s| {
            let mut r = spawn(s, || Ok(&input[..]));
            let mut out = vec![0; 100_000];
            while r.read(&mut out).unwrap() > 0 {}
            let chunks = r.allocated.load(std::sync::atomic::Ordering::Relaxed);
            assert!(
                chunks * CHUNK <= MAX_BYTES,
                "{chunks} chunks of {CHUNK} bytes for 64 MiB"
            );
        });
    }

    #[test]
    fn errors_reach_the_reader() {
        let input = data(2 * CHUNK);
        let failing = input.chain(FailingReader);
        let err = std::thread::scope(|s| {
            let mut r = spawn(s, move || Ok(failing));
            r.read_to_end(&mut Vec::new()).unwrap_err()
        });
        assert_eq!(err.to_string(), "corrupt stream");
        let err = std::thread::scope(|s| {
            let mut r = spawn(s, || Err::<&[u8], _>(io::Error::other("no decoder")));
            r.read(&mut [0; 8]).unwrap_err()
        });
        assert_eq!(err.to_string(), "no decoder");
    }

    #[test]
    fn a_reader_that_stops_early_does_not_hang_the_thread() {
        let input = data(20 * CHUNK);
        std::thread::scope(|s| {
            let mut r = spawn(s, || Ok(&input[..]));
            let mut first = [0u8; 10];
            r.read_exact(&mut first).unwrap();
            assert_eq!(first[..], input[..10]);
        });
    }

    struct FailingReader;

    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt stream"))
        }
    }
}
