//! The six compressions Barman's cloud tools use for WAL files (and four of them for tarballs).
//!
//! Objects carry no metadata saying how they are compressed: the key's suffix is the only
//! marker, so suffix and stream format must agree with what Python's stock libraries read and
//! write (gzip, bz2, lzma, python-snappy's framing format, zstandard, lz4.frame).

mod parallel;

use std::io::{self, Read, Write};

pub use parallel::ParallelGzip;
use std::str::FromStr;

/// A compression algorithm, named after its key suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `.gz`, gzip.
    Gzip,
    /// `.bz2`, bzip2.
    Bzip2,
    /// `.xz`, xz (LZMA2).
    Xz,
    /// `.snappy`, the Snappy framing format.
    Snappy,
    /// `.zst`, Zstandard.
    Zstd,
    /// `.lz4`, the LZ4 frame format.
    Lz4,
}

/// A `--compression-level` value: a word resolved per algorithm, or a number clamped to the
/// algorithm's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `low`: the algorithm's fastest level.
    Low,
    /// `medium`: the algorithm's default.
    Medium,
    /// `high`: the algorithm's best compression.
    High,
    /// A number, clamped to the algorithm's range.
    Value(i32),
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            v => v.parse().map(Self::Value).map_err(|_| {
                format!("invalid compression level {v:?}: use low, medium, high or an integer")
            }),
        }
    }
}

/// Per algorithm: (low, medium = default, high, min, max), as Barman resolves them.
struct Levels {
    low: i32,
    medium: i32,
    high: i32,
    min: i32,
    max: i32,
}

impl Compression {
    /// Every algorithm, in the order the restore side tries suffixes.
    pub const ALL: [Compression; 6] = [
        Self::Gzip,
        Self::Bzip2,
        Self::Xz,
        Self::Snappy,
        Self::Zstd,
        Self::Lz4,
    ];

    /// The key suffix, with its dot.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Gzip => ".gz",
            Self::Bzip2 => ".bz2",
            Self::Xz => ".xz",
            Self::Snappy => ".snappy",
            Self::Zstd => ".zst",
            Self::Lz4 => ".lz4",
        }
    }

    /// The name Barman uses in `backup.info` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
            Self::Snappy => "snappy",
            Self::Zstd => "zstd",
            Self::Lz4 => "lz4",
        }
    }

    /// The algorithm named `name` (as in `backup.info`'s `compression`).
    pub fn from_name(name: &str) -> Option<Compression> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Splits a known suffix off `name`: `("X", Some(Gzip))` for `"X.gz"`, `(name, None)` else.
    pub fn split_suffix(name: &str) -> (&str, Option<Compression>) {
        Self::ALL
            .into_iter()
            .find_map(|c| name.strip_suffix(c.suffix()).map(|s| (s, Some(c))))
            .unwrap_or((name, None))
    }

    fn levels(self) -> Option<Levels> {
        let l = |low, medium, high, min, max| {
            Some(Levels {
                low,
                medium,
                high,
                min,
                max,
            })
        };
        match self {
            Self::Gzip => l(1, 6, 9, 1, 9),
            Self::Bzip2 => l(1, 5, 9, 1, 9),
            Self::Xz => l(1, 3, 5, 1, 9),
            Self::Snappy => None,
            Self::Zstd => l(1, 4, 9, -22, 22),
            Self::Lz4 => l(0, 6, 10, 0, 16),
        }
    }

    /// The effective level for a requested one: words map per algorithm, numbers are clamped
    /// (with a debug line, as Barman does), and no request means the medium level.
    pub fn level(self, requested: Option<Level>) -> i32 {
        let Some(levels) = self.levels() else {
            return 0;
        };
        match requested {
            None | Some(Level::Medium) => levels.medium,
            Some(Level::Low) => levels.low,
            Some(Level::High) => levels.high,
            Some(Level::Value(v)) => {
                let clamped = v.clamp(levels.min, levels.max);
                if clamped != v {
                    tracing::debug!(
                        "compression level {v} out of range for {}, using {clamped}",
                        self.name()
                    );
                }
                clamped
            }
        }
    }
}

/// A streaming compressor writing into `W`; call [`Encoder::finish`] to write the trailer and
/// get `W` back (dropping it loses the end of the stream).
pub struct Encoder<W: Write>(Inner<W>);

enum Inner<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    ParallelGzip(ParallelGzip<W>),
    Parallel(parallel::Blocks<W>),
    ParallelLz4(parallel::Summed<W, parallel::Lz4Content>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Xz(xz2::write::XzEncoder<W>),
    // Boxed: its inline buffers are ten times the size of the other encoders.
    Snappy(Box<snap::write::FrameEncoder<W>>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Lz4(lz4_flex::frame::FrameEncoder<W>),
}

/// Tuning an encoder beyond the level, for formats that differ between WAL and tarballs.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncoderOptions {
    /// The uncompressed size when known in advance; stored in LZ4 frames as the Python tool does.
    pub content_size: Option<u64>,
    /// Set the gzip FNAME flag with an empty name, as Python's `tarfile` stream mode writes.
    pub gzip_empty_name: bool,
    /// Threads (1: the plain single-threaded encoders). Every codec but zstd then joins
    /// independently compressed blocks; see `parallel.rs`.
    pub threads: usize,
    /// The reader takes concatenated streams, as Barman's WAL readers do (`bz2.BZ2File`)
    /// and `tarfile`'s stream mode does not: lets bzip2 use several threads.
    pub concatenated_streams: bool,
}

/// A compressor for `compression` at the effective level for `level`.
pub fn encoder<W: Write>(
    compression: Compression,
    level: Option<Level>,
    options: EncoderOptions,
    w: W,
) -> io::Result<Encoder<W>> {
    let n = compression.level(level);
    let inner = match compression {
        Compression::Gzip if options.threads > 1 => Inner::ParallelGzip(ParallelGzip::new(
            w,
            n as u32,
            options.threads,
            options.gzip_empty_name,
            now_unix_seconds(),
        )?),
        Compression::Gzip => {
            let mut builder = flate2::GzBuilder::new()
                .mtime(now_unix_seconds())
                .operating_system(255);
            if options.gzip_empty_name {
                builder = builder.filename(Vec::new());
            }
            Inner::Gzip(builder.write(w, flate2::Compression::new(n as u32)))
        }
        Compression::Bzip2 if options.threads > 1 && options.concatenated_streams => {
            Inner::Parallel(parallel::bzip2(w, options.threads, n as u32)?)
        }
        Compression::Bzip2 => Inner::Bzip2(bzip2::write::BzEncoder::new(
            w,
            bzip2::Compression::new(n as u32),
        )),
        Compression::Xz if options.threads > 1 => {
            // liblzma's own threads: independent blocks in one .xz stream, which every xz
            // reader (Python's lzma included) decodes.
            let stream = xz2::stream::MtStreamBuilder::new()
                .threads(options.threads as u32)
                .block_size(4 << 20)
                .preset(n as u32)
                .check(xz2::stream::Check::Crc64)
                .encoder()
                .map_err(io::Error::other)?;
            Inner::Xz(xz2::write::XzEncoder::new_stream(w, stream))
        }
        Compression::Xz => Inner::Xz(xz2::write::XzEncoder::new(w, n as u32)),
        Compression::Snappy if options.threads > 1 => {
            Inner::Parallel(parallel::snappy(w, options.threads)?)
        }
        Compression::Snappy => Inner::Snappy(Box::new(snap::write::FrameEncoder::new(w))),
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(w, n)?;
            // Without the checksum a flipped byte can decode to other bytes with no error;
            // zstandard (Barman's reader) checks it too.
            e.include_checksum(true)?;
            if options.threads > 1 {
                // libzstd's own workers: still one frame, which zstandard's stream_reader
                // (Barman's reader, one frame only) decodes.
                e.multithread(options.threads as u32)?;
                // libzstd's default job is four windows (8 MiB at level 3), several of them
                // buffered per worker: 60 MB of a backup's memory. 512 KiB jobs (libzstd's
                // minimum) keep it near the other codecs' (11 MiB with 1 MiB jobs) and lose
                // well under 1% of size (issue #19 item 4).
                e.set_parameter(zstd::stream::raw::CParameter::JobSize(512 << 10))?;
            }
            Inner::Zstd(e)
        }
        Compression::Lz4 if options.threads > 1 => {
            Inner::ParallelLz4(parallel::lz4(w, options.threads, options.content_size)?)
        }
        Compression::Lz4 => {
            // lz4_flex has no high-compression mode, so the level only sets the format;
            // any LZ4 frame decodes the same in Python. Both checksums, for the reason
            // given at `parallel::lz4`.
            let mut info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Linked)
                .block_checksums(true)
                .content_checksum(true);
            info.content_size = options.content_size;
            Inner::Lz4(lz4_flex::frame::FrameEncoder::with_frame_info(info, w))
        }
    };
    Ok(Encoder(inner))
}

/// The cores this process may use.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A pass-through "encoder", so uncompressed and compressed streams share one type.
pub fn plain<W: Write>(w: W) -> Encoder<W> {
    Encoder(Inner::Plain(w))
}

fn now_unix_seconds() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl<W: Write> Encoder<W> {
    /// Ends the stream and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        match self.0 {
            Inner::Plain(w) => Ok(w),
            Inner::Gzip(e) => e.finish(),
            Inner::ParallelGzip(e) => e.finish(),
            Inner::Parallel(e) => e.finish(),
            Inner::ParallelLz4(e) => e.finish(),
            Inner::Bzip2(e) => e.finish(),
            Inner::Xz(e) => e.finish(),
            Inner::Snappy(e) => (*e).into_inner().map_err(|e| e.into_error()),
            Inner::Zstd(e) => e.finish(),
            Inner::Lz4(e) => e.finish().map_err(io::Error::other),
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match &mut self.0 {
            Inner::Plain(w) => w,
            Inner::Gzip(e) => e,
            Inner::ParallelGzip(e) => e,
            Inner::Parallel(e) => e,
            Inner::ParallelLz4(e) => e,
            Inner::Bzip2(e) => e,
            Inner::Xz(e) => e,
            Inner::Snappy(e) => e,
            Inner::Zstd(e) => e,
            Inner::Lz4(e) => e,
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

/// Compresses a whole buffer (a WAL file) in the format the Python tool writes for WAL.
pub fn compress(
    compression: Compression,
    level: Option<Level>,
    data: &[u8],
) -> io::Result<Vec<u8>> {
    compress_reader(compression, level, data, data.len() as u64)
}

/// Compresses a file as it is read, so only the compressed result is held in memory.
pub fn compress_file(
    compression: Compression,
    level: Option<Level>,
    path: &std::path::Path,
) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    compress_reader(compression, level, file, size)
}

fn compress_reader(
    compression: Compression,
    level: Option<Level>,
    mut input: impl Read,
    size: u64,
) -> io::Result<Vec<u8>> {
    let options = EncoderOptions {
        content_size: Some(size),
        gzip_empty_name: false,
        concatenated_streams: true,
        // A 16 MiB segment is sixteen blocks: worth every core.
        threads: if size >= 4 << 20 {
            available_threads()
        } else {
            1
        },
    };
    // Most WAL compresses well; start from a quarter to avoid regrowing from zero.
    let mut e = encoder(
        compression,
        level,
        options,
        Vec::with_capacity(size as usize / 4),
    )?;
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        e.write_all(&buf[..n])?;
        copied += n as u64;
    }
    if copied != size {
        // The LZ4 frame states the size: a file that changed length would make it lie.
        return Err(io::Error::other(format!(
            "the file changed size while being read ({size} then {copied} bytes)"
        )));
    }
    e.finish()
}

/// A decompressing reader. Every decoder accepts concatenated streams (several gzip members,
/// bzip2 streams, xz streams, zstd or LZ4 frames), as the Python readers do, checks every
/// checksum its format carries, and fails on input that ends inside a stream (or holds no
/// stream at all).
///
/// Two cuts still read as a whole, shorter, stream: bzip2 between two concatenated streams
/// and snappy's framing format (which has no end marker) between two chunks; only the length
/// of what they decode to can tell.
pub fn decoder<'a, R: Read + 'a>(compression: Compression, r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
        Compression::Snappy => Box::new(snap::read::FrameDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Compression::Lz4 => Box::new(Lz4Frames(lz4_flex::frame::FrameDecoder::new(
            Lz4Framing::new(io::BufReader::new(r)),
        ))),
    })
}

/// lz4_flex's decoder reports the end of each frame as end of stream, and also (with no
/// error) input that stops between two blocks of a frame: go on while input is left, and
/// at its end require that the last frame was closed by its end mark.
struct Lz4Frames<R: Read>(lz4_flex::frame::FrameDecoder<Lz4Framing<io::BufReader<R>>>);

impl<R: Read> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.0.read(buf).map_err(lz4_error)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let framing = self.0.get_mut();
            if io::BufRead::fill_buf(&mut framing.inner)?.is_empty() {
                return framing.check_end().map(|()| 0);
            }
        }
    }
}

/// lz4_flex's errors display as their variant names: say what they mean.
fn lz4_error(e: io::Error) -> io::Error {
    use lz4_flex::frame::Error as E;
    let meaning = match e.get_ref().and_then(|inner| inner.downcast_ref::<E>()) {
        Some(E::BlockChecksumError) => "an LZ4 block does not match its checksum".to_string(),
        Some(E::ContentChecksumError) => "the LZ4 content does not match its checksum".into(),
        Some(E::HeaderChecksumError) => "the LZ4 frame header does not match its checksum".into(),
        Some(E::ContentLengthError { expected, actual }) => {
            format!("the LZ4 frame holds {actual} bytes where its header states {expected}")
        }
        Some(other) => format!("invalid LZ4 data ({other})"),
        None => return e,
    };
    io::Error::new(e.kind(), meaning)
}

/// Follows the frame structure (header, block sizes, end mark, checksums) in the bytes the
/// decoder takes, only to know where the input ended: lz4_flex checks everything else.
struct Lz4Framing<R> {
    inner: R,
    /// The field being collected, and how much of it has arrived.
    field: Lz4Field,
    bytes: [u8; 4],
    have: usize,
    /// Bytes to pass over before the next field.
    skip: u64,
    flags: u8,
    frames: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lz4Field {
    Magic,
    Descriptor,
    BlockSize,
}

impl<R> Lz4Framing<R> {
    fn new(inner: R) -> Self {
        Lz4Framing {
            inner,
            field: Lz4Field::Magic,
            bytes: [0; 4],
            have: 0,
            skip: 0,
            flags: 0,
            frames: 0,
        }
    }

    fn follow(&mut self, mut data: &[u8]) -> io::Result<()> {
        const MAGIC: u32 = 0x184D_2204;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64);
                self.skip -= n;
                data = &data[n as usize..];
                continue;
            }
            let want = if self.field == Lz4Field::Descriptor {
                2
            } else {
                4
            };
            let n = (want - self.have).min(data.len());
            self.bytes[self.have..self.have + n].copy_from_slice(&data[..n]);
            (self.have, data) = (self.have + n, &data[n..]);
            if self.have < want {
                break;
            }
            self.have = 0;
            let word = u32::from_le_bytes(self.bytes);
            match self.field {
                Lz4Field::Magic if word != MAGIC => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "not an LZ4 frame (wrong magic number)",
                    ));
                }
                Lz4Field::Magic => self.field = Lz4Field::Descriptor,
                Lz4Field::Descriptor => {
                    self.flags = self.bytes[0];
                    // Content size, dictionary ID, then the header checksum byte.
                    self.skip = self.flag(0x08, 8) + self.flag(0x01, 4) + 1;
                    self.field = Lz4Field::BlockSize;
                }
                Lz4Field::BlockSize if word == 0 => {
                    self.skip = self.flag(0x04, 4);
                    self.field = Lz4Field::Magic;
                    self.frames += 1;
                }
                Lz4Field::BlockSize => {
                    self.skip = u64::from(word & 0x7FFF_FFFF) + self.flag(0x10, 4);
                }
            }
        }
        Ok(())
    }

    fn flag(&self, bit: u8, len: u64) -> u64 {
        if self.flags & bit != 0 { len } else { 0 }
    }

    /// At the end of the input: it must be the end of a frame, after at least one.
    fn check_end(&self) -> io::Result<()> {
        let between_frames = self.field == Lz4Field::Magic && self.have == 0 && self.skip == 0;
        if between_frames && self.frames > 0 {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the LZ4 stream ends before the end mark of its frame (truncated)",
        ))
    }
}

impl<R: Read> Read for Lz4Framing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.follow(&buf[..n])?;
        Ok(n)
    }
}

/// Decompresses a whole buffer.
pub fn decompress(compression: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4));
    decoder(compression, data)?.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
