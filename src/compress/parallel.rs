//! gzip on every core, as one ordinary gzip member (pigz's method).
//!
//! The input is cut into blocks that worker threads deflate independently, each ending with a
//! sync flush (so it stops on a byte boundary) and only the last one marked final. Their
//! concatenation is one valid deflate stream; with one header and the CRC-32 and size of the
//! whole input it is one gzip member, which Python's `tarfile` stream mode and `gzip` read
//! like any other (several members would not do: `tarfile`'s stream mode stops after the
//! first). Blocks lose the history of the previous block, which costs well under 1% of size
//! at 1 MiB per block.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress, Status};

const BLOCK: usize = 1 << 20;

struct Job {
    data: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Vec<u8>>>,
}

/// A gzip writer that compresses on `threads` threads; call [`ParallelGzip::finish`].
pub struct ParallelGzip<W: Write> {
    inner: W,
    block: Vec<u8>,
    crc: flate2::Crc,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> ParallelGzip<W> {
    /// Writes the gzip header now; `empty_name` sets FNAME with an empty name, as Python's
    /// `tarfile` does.
    pub fn new(
        mut inner: W,
        level: u32,
        threads: usize,
        empty_name: bool,
        mtime: u32,
    ) -> io::Result<Self> {
        let threads = threads.max(1);
        let xfl = match level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        let mut header = vec![0x1f, 0x8b, 8, if empty_name { 8 } else { 0 }];
        header.extend_from_slice(&mtime.to_le_bytes());
        header.extend_from_slice(&[xfl, 0xff]);
        if empty_name {
            header.push(0);
        }
        inner.write_all(&header)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let out = deflate_block(&job.data, level, job.last);
                        let _ = job.reply.send(out);
                    }
                })
            })
            .collect();
        Ok(ParallelGzip {
            inner,
            block: Vec::with_capacity(BLOCK),
            crc: flate2::Crc::new(),
            pending: VecDeque::new(),
            max_pending: threads * 2,
            jobs: Some(tx),
            workers,
        })
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(
            &mut self.block,
            Vec::with_capacity(if last { 0 } else { BLOCK }),
        );
        self.crc.update(&data);
        let (reply, result) = mpsc::sync_channel(1);
        let job = Job { data, last, reply };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(io::Error::other("the compression threads have stopped"));
        }
        self.pending.push_back(result);
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        // Pass on what is already compressed, so the writer's byte count (which decides
        // where tarballs are split) lags as little as possible.
        while let Some(ready) = self.pending.front().and_then(|r| r.try_recv().ok()) {
            self.pending.pop_front();
            self.inner.write_all(&ready?)?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(result) = self.pending.pop_front() {
            let block = result
                .recv()
                .map_err(|_| io::Error::other("a compression thread stopped"))??;
            self.inner.write_all(&block)?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let (crc, size) = (self.crc.sum(), self.crc.amount());
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&size.to_le_bytes())?;
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK - self.block.len();
        let n = buf.len().min(room);
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw deflate of one block: sync-flushed, or finished when it is the last one.
fn deflate_block(data: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        if out.capacity() - out.len() < 64 * 1024 {
            out.reserve(64 * 1024);
        }
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        // A flush is complete when the compressor stops short of the end of the buffer.
        let done = if last {
            status == Status::StreamEnd
        } else {
            all_in && out.len() < out.capacity()
        };
        if done {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn output_is_one_member_that_any_gzip_reader_decodes() {
        for len in [0, 10, BLOCK - 1, BLOCK, 3 * BLOCK + 12345] {
            let data = crate::compress::tests::sample_of(len);
            let mut gz = ParallelGzip::new(Vec::new(), 6, 3, true, 0).unwrap();
            for chunk in data.chunks(100_000) {
                gz.write_all(chunk).unwrap();
            }
            let packed = gz.finish().unwrap();
            let mut single = flate2::read::GzDecoder::new(&packed[..]);
            let mut out = Vec::new();
            single.read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "len {len}");
            // Nothing after the one member.
            assert_eq!(single.into_inner().len(), 0, "len {len}");
        }
    }
}
