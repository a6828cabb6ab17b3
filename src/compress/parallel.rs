//! Compression on every core: the input is cut into blocks that worker threads compress
//! independently, and the results are written out in input order.
//!
//! Each format joins its blocks into one stream that its usual reader takes:
//! - gzip as one ordinary member (pigz's method): every block is deflated with a sync flush
//!   (so it stops on a byte boundary) and only the last one is marked final; the header and
//!   the CRC-32 and size of the whole input make one gzip member, which Python's `tarfile`
//!   stream mode and `gzip` read like any other (several members would not do: `tarfile`'s
//!   stream mode stops after the first). Each block is primed with the 32 KiB of input
//!   before it, so its matches reach back across the cut as a single deflate's would.
//! - snappy's framing format is already a series of independent 64 KiB chunks: blocks that
//!   are whole multiples of it give byte for byte the single-threaded output.
//! - LZ4 as one frame of linked 256 KiB blocks, each with its checksum, and the whole input's
//!   checksum after the end mark. Each block is compressed with the 64 KiB of input before it
//!   as its dictionary, which is what a linked frame's reader keeps of the output before it.
//! - bzip2 as concatenated streams, only where the reader takes them (see
//!   [`super::EncoderOptions::concatenated_streams`]).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress, Status};

const BLOCK: usize = 1 << 20;

/// LZ4's blocks: its matches reach back 64 KiB at most, so cutting at 256 KiB instead of
/// 1 MiB loses little, and the `threads + 2` input buffers (and a reader's decoding buffers)
/// take a quarter of the memory: the lz4 backup was the one over pgBackRest's peak RSS
/// (issue #19 item 4).
const LZ4_BLOCK: usize = 256 << 10;

/// How far back an LZ4 match reaches (its offsets are 16 bits): the dictionary each block
/// of a linked frame is compressed with.
const LZ4_WINDOW: usize = 64 << 10;

/// Compresses one block (`data`), after the input that precedes it (`history`, empty unless
/// [`Blocks::with_history`]); the flag marks the last block of the stream.
type BlockFn = Arc<dyn Fn(&[u8], &[u8], bool) -> io::Result<Vec<u8>> + Send + Sync>;

/// A block's compressed bytes, and its input buffer handed back for the next block.
type Done = (io::Result<Vec<u8>>, Vec<u8>);

struct Job {
    history: Vec<u8>,
    data: Vec<u8>,
    last: bool,
    reply: SyncSender<Done>,
}

/// A writer that compresses fixed-size blocks on `threads` threads after a header; call
/// [`Blocks::finish`].
///
/// Memory is bounded by blocks, not by the input's size: at most `threads + 1` blocks are
/// dispatched and not yet written out (every worker busy and one waiting, so none idles while
/// the oldest is written out), plus the one being filled. Input buffers come back with their
/// results and are reused, so at most `threads + 2` are ever allocated.
pub(super) struct Blocks<W: Write> {
    inner: W,
    block: Vec<u8>,
    block_size: usize,
    pending: VecDeque<Receiver<Done>>,
    max_pending: usize,
    /// Input buffers back from the workers, for the next blocks.
    spare: Vec<Vec<u8>>,
    /// How many input buffers were allocated.
    buffers: usize,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    /// How many bytes of each block's end the next block is given as history.
    history: usize,
    /// The end of the block dispatched last.
    tail: Vec<u8>,
}

impl<W: Write> Blocks<W> {
    fn new(
        mut inner: W,
        header: &[u8],
        threads: usize,
        block_size: usize,
        compress: BlockFn,
    ) -> io::Result<Self> {
        let threads = threads.max(1);
        inner.write_all(header)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let (rx, compress) = (rx.clone(), compress.clone());
                std::thread::spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(mut job) = job else { return };
                        let result = compress(&job.history, &job.data, job.last);
                        job.data.clear();
                        let _ = job.reply.send((result, job.data));
                    }
                })
            })
            .collect();
        Ok(Blocks {
            inner,
            block: Vec::with_capacity(block_size),
            block_size,
            pending: VecDeque::new(),
            max_pending: threads + 1,
            spare: Vec::new(),
            buffers: 1,
            jobs: Some(tx),
            workers,
            history: 0,
            tail: Vec::new(),
        })
    }

    /// Gives each block the last `bytes` of the input before it.
    fn with_history(mut self, bytes: usize) -> Self {
        self.history = bytes;
        self
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        while self.pending.len() >= self.max_pending {
            self.write_oldest()?;
        }
        let next = if last {
            Vec::new()
        } else {
            self.spare.pop().unwrap_or_else(|| {
                self.buffers += 1;
                Vec::with_capacity(self.block_size)
            })
        };
        let data = std::mem::replace(&mut self.block, next);
        // Every block but the last is whole, and longer than the history: the tail of the
        // one before is all the history a block needs.
        let tail = data[data.len().saturating_sub(self.history)..].to_vec();
        let history = std::mem::replace(&mut self.tail, tail);
        let (reply, result) = mpsc::sync_channel(1);
        let job = Job {
            history,
            data,
            last,
            reply,
        };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(io::Error::other("the compression threads have stopped"));
        }
        self.pending.push_back(result);
        // Pass on what is already compressed, so the writer's byte count (which decides
        // where tarballs are split) lags as little as possible.
        while let Some(ready) = self.pending.front().and_then(|r| r.try_recv().ok()) {
            self.pending.pop_front();
            self.write_out(ready)?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(result) = self.pending.pop_front() {
            let done = result
                .recv()
                .map_err(|_| io::Error::other("a compression thread stopped"))?;
            self.write_out(done)?;
        }
        Ok(())
    }

    fn write_out(&mut self, (block, buffer): Done) -> io::Result<()> {
        if buffer.capacity() == self.block_size {
            self.spare.push(buffer);
        }
        self.inner.write_all(&block?)
    }

    /// Compresses what is left and returns the writer.
    pub(super) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for Blocks<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.block_size - self.block.len();
        let n = buf.len().min(room);
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == self.block_size {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a format's trailer says of the whole input, summed on the writing thread as the
/// input goes by (the blocks themselves are compressed on the workers).
pub trait InputSum {
    fn update(&mut self, data: &[u8]);
    /// The bytes that end the stream, after the last block.
    fn trailer(&self) -> Vec<u8>;
}

/// A block writer whose trailer checks the whole input; call [`Summed::finish`].
pub struct Summed<W: Write, S: InputSum> {
    blocks: Blocks<W>,
    sum: S,
}

impl<W: Write, S: InputSum> Summed<W, S> {
    /// Compresses what is left, writes the trailer and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        let mut inner = self.blocks.finish()?;
        inner.write_all(&self.sum.trailer())?;
        Ok(inner)
    }
}

impl<W: Write, S: InputSum> Write for Summed<W, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.blocks.write(buf)?;
        self.sum.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A gzip writer that compresses on `threads` threads; call `finish`.
pub type ParallelGzip<W> = Summed<W, flate2::Crc>;

impl InputSum for flate2::Crc {
    fn update(&mut self, data: &[u8]) {
        flate2::Crc::update(self, data);
    }

    fn trailer(&self) -> Vec<u8> {
        [self.sum().to_le_bytes(), self.amount().to_le_bytes()].concat()
    }
}

impl<W: Write> ParallelGzip<W> {
    /// Writes the gzip header now; `empty_name` sets FNAME with an empty name, as Python's
    /// `tarfile` does.
    pub fn new(
        inner: W,
        level: u32,
        threads: usize,
        empty_name: bool,
        mtime: u32,
    ) -> io::Result<Self> {
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
        let deflate = Arc::new(move |history: &[u8], data: &[u8], last| {
            deflate_block(history, data, level, last)
        });
        Ok(Summed {
            // pigz's priming: each block may refer back into the window the one before left,
            // as a single-threaded deflate would (0.7% of a `pgbench -s 70` backup's size).
            blocks: Blocks::new(inner, &header, threads, BLOCK, deflate)?.with_history(WINDOW),
            sum: flate2::Crc::new(),
        })
    }
}

/// snappy's framing format on `threads` threads: the same bytes as one
/// `snap::write::FrameEncoder`.
pub(super) fn snappy<W: Write>(inner: W, threads: usize) -> io::Result<Blocks<W>> {
    const STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";
    let chunks = Arc::new(|_history: &[u8], data: &[u8], _last| {
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let mut e = snap::write::FrameEncoder::new(Vec::with_capacity(data.len() / 2 + 64));
        e.write_all(data)?;
        let framed = e.into_inner().map_err(|e| e.into_error())?;
        // Each encoder starts its output with the stream identifier: keep only the first.
        Ok(framed[STREAM_IDENTIFIER.len()..].to_vec())
    });
    Blocks::new(inner, STREAM_IDENTIFIER, threads, BLOCK, chunks)
}

/// LZ4's content checksum: the xxHash32 of the whole input.
pub(super) struct Lz4Content(twox_hash::XxHash32);

impl InputSum for Lz4Content {
    fn update(&mut self, data: &[u8]) {
        std::hash::Hasher::write(&mut self.0, data);
    }

    fn trailer(&self) -> Vec<u8> {
        // The end mark (an empty block), then the checksum.
        [[0; 4], self.0.finish_32().to_le_bytes()].concat()
    }
}

/// One LZ4 frame of linked [`LZ4_BLOCK`] blocks on `threads` threads, with the content
/// size in its header when known (as Python's `lz4.frame` writes it).
///
/// LZ4 blocks carry no check of their own: without the frame's checksums a flipped byte
/// decodes, with no error, to other bytes. So every block carries its xxHash32 (computed on
/// the workers) and the frame the xxHash32 of the whole input; `lz4.frame` checks both.
pub(super) fn lz4<W: Write>(
    inner: W,
    threads: usize,
    content_size: Option<u64>,
) -> io::Result<Summed<W, Lz4Content>> {
    let blocks = Blocks::new(
        inner,
        &lz4_frame_header(content_size),
        threads,
        LZ4_BLOCK,
        Arc::new(|history: &[u8], data: &[u8], _last| {
            if data.is_empty() {
                return Ok(Vec::new());
            }
            let packed = lz4_flex::block::compress_with_dict(data, history);
            let (size, stored) = if packed.len() < data.len() {
                (packed.len() as u32, &packed[..])
            } else {
                // Stored as is: the high bit of the size says "uncompressed".
                (data.len() as u32 | 1 << 31, data)
            };
            let mut out = Vec::with_capacity(stored.len() + 8);
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(stored);
            out.extend_from_slice(&twox_hash::XxHash32::oneshot(0, stored).to_le_bytes());
            Ok(out)
        }),
    )?
    .with_history(LZ4_WINDOW);
    Ok(Summed {
        blocks,
        sum: Lz4Content(twox_hash::XxHash32::with_seed(0)),
    })
}

/// The LZ4 frame descriptor: version 1, linked blocks of at most 256 KiB, block and
/// content checksums, optional content size, and the header checksum (second byte of its
/// xxHash32).
fn lz4_frame_header(content_size: Option<u64>) -> Vec<u8> {
    const MAGIC: u32 = 0x184D_2204;
    let mut header = MAGIC.to_le_bytes().to_vec();
    // Version 1 (0x40), block checksums (0x10), content checksum (0x04); no 0x20: linked.
    let flags = 0x40 | 0x10 | 0x04 | if content_size.is_some() { 0x08 } else { 0 };
    // Block maximum size code 5: 256 KiB (LZ4_BLOCK).
    header.extend_from_slice(&[flags, 5 << 4]);
    if let Some(size) = content_size {
        header.extend_from_slice(&size.to_le_bytes());
    }
    let checksum = twox_hash::XxHash32::oneshot(0, &header[4..]);
    header.push((checksum >> 8) as u8);
    header
}

/// bzip2 on `threads` threads, as concatenated streams of 2 MiB of input each.
pub(super) fn bzip2<W: Write>(inner: W, threads: usize, level: u32) -> io::Result<Blocks<W>> {
    let streams = Arc::new(move |_history: &[u8], data: &[u8], last: bool| {
        // An empty input still needs one (empty) stream.
        if data.is_empty() && !last {
            return Ok(Vec::new());
        }
        let mut e = bzip2::write::BzEncoder::new(
            Vec::with_capacity(data.len() / 3),
            bzip2::Compression::new(level),
        );
        e.write_all(data)?;
        e.finish()
    });
    Blocks::new(inner, &[], threads, 2 * BLOCK, streams)
}

/// Deflate's window: how far back a match may refer.
const WINDOW: usize = 32 << 10;

/// Raw deflate of one block, primed with the input before it (`history`, at most [`WINDOW`]):
/// sync-flushed, or finished when it is the last one. The inflater has `history` in its
/// window already, as the output of the blocks before, so no reader needs to know.
fn deflate_block(history: &[u8], data: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !history.is_empty() {
        c.set_dictionary(history).map_err(io::Error::other)?;
    }
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
    fn input_buffers_are_bounded_by_the_threads_not_the_input() {
        let copy = Arc::new(|_history: &[u8], data: &[u8], _last| Ok(data.to_vec()));
        for threads in [1, 2, 4] {
            let mut blocks = Blocks::new(Vec::new(), &[], threads, 1024, copy.clone()).unwrap();
            let data = crate::compress::tests::sample_of(100 * 1024 + 17);
            blocks.write_all(&data).unwrap();
            assert!(
                blocks.buffers <= threads + 2,
                "{threads} threads: {} input buffers for 101 blocks",
                blocks.buffers
            );
            assert!(blocks.pending.len() <= threads + 1);
            assert_eq!(blocks.finish().unwrap(), data);
        }
    }

    #[test]
    fn each_block_is_given_the_input_just_before_it() {
        // The "compressed" output is each block's history, so the whole output is the
        // histories in order.
        let history = Arc::new(|history: &[u8], _data: &[u8], _last| Ok(history.to_vec()));
        let data = crate::compress::tests::sample_of(10 * 1024 + 17);
        let mut blocks = Blocks::new(Vec::new(), &[], 2, 1024, history)
            .unwrap()
            .with_history(100);
        blocks.write_all(&data).unwrap();
        let expected: Vec<u8> = (1..=10)
            .flat_map(|i| data[i * 1024 - 100..i * 1024].to_vec())
            .collect();
        assert_eq!(blocks.finish().unwrap(), expected);
    }

    #[test]
    fn priming_with_the_window_before_shrinks_gzip() {
        // Blocks that repeat what came before: only a primed block can refer back to it.
        let unit = crate::compress::tests::sample_of(20_000);
        let data: Vec<u8> = unit.iter().copied().cycle().take(3 * BLOCK).collect();
        let mut gz = ParallelGzip::new(Vec::new(), 6, 2, false, 0).unwrap();
        gz.write_all(&data).unwrap();
        let primed = gz.finish().unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&primed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        let unprimed: usize = data
            .chunks(BLOCK)
            .map(|block| deflate_block(&[], block, 6, false).unwrap().len())
            .sum();
        assert!(
            primed.len() < unprimed,
            "primed {} bytes, unprimed {unprimed}",
            primed.len()
        );
    }

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
