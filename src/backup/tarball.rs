//! One tar stream per base (`data` or a tablespace oid), cut into independent, separately
//! compressed parts when the compressed size passes `--max-archive-size`, as Barman does.
//!
//! Each regular file's checksum is taken as its bytes go into the tar, for the backup
//! manifest (PGDATA is read once).
//!
//! This side is synchronous (it reads files and compresses on a blocking thread); finished
//! chunks go through a bounded channel to the async uploader, so reading, compressing and
//! uploading overlap and memory stays bounded.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::compress::{self, Compression, EncoderOptions, Level};
use crate::layout::Tarball;
use crate::postgres::backup_manifest::{self, Checksummer, Spool};
use crate::progress::ProgressHandle;

/// What the tar side tells the uploader.
#[derive(Debug)]
pub(super) enum Message {
    /// A new part begins.
    Start(Tarball),
    /// The next bytes of the current part.
    Data(Bytes),
    /// The current part is complete.
    End,
}

/// A backup's manifest, spooled (to a temporary file) as the files are added.
pub(super) type Manifest = backup_manifest::Writer<Spool>;

/// Bytes per message: small enough to keep memory low (one is being filled, one is in the
/// uploader's hands, waiting for a part slot), large enough to be cheap (4 messages per MiB).
const SEND_SIZE: usize = 256 << 10;

/// The most bytes waiting between the tar side and the uploader. The uploader holds its own
/// parts (`jobs` in flight and the one it fills), so this only has to keep the tar side busy
/// while the uploader takes a message; it was 4 messages of 1 MiB per job (8 MiB at `-J 2`),
/// whatever the parts' size (issue #19 item 4).
pub(super) const QUEUE_BYTES: usize = 4 * SEND_SIZE;

/// The channel from the tar side to the uploader: messages are at most [`SEND_SIZE`] bytes,
/// so it never holds more than [`QUEUE_BYTES`].
pub(super) fn queue() -> (mpsc::Sender<Message>, mpsc::Receiver<Message>) {
    mpsc::channel(QUEUE_BYTES / SEND_SIZE)
}

/// A `Write` that batches bytes into [`Message::Data`] and counts them.
struct ChunkSender {
    tx: mpsc::Sender<Message>,
    buffer: BytesMut,
    written: Arc<AtomicU64>,
}

impl ChunkSender {
    fn send(&mut self, message: Message) -> io::Result<()> {
        self.tx
            .blocking_send(message)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the uploader has stopped"))
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            let data = std::mem::replace(&mut self.buffer, BytesMut::with_capacity(SEND_SIZE));
            self.send(Message::Data(data.freeze()))?;
        }
        Ok(())
    }
}

impl Write for ChunkSender {
    // Takes at most what fills the message: each message is one allocation of exactly
    // SEND_SIZE, never a buffer grown by doubling past it (which held up to twice its bytes).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = buf.len().min(SEND_SIZE - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..taken]);
        self.written.fetch_add(taken as u64, Ordering::Relaxed);
        if self.buffer.len() == SEND_SIZE {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Owner and group names (through NSS, as Python's tarfile asks `pwd` and `grp`), looked up
/// once per id.
#[derive(Default)]
struct Names {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl Names {
    fn user(&mut self, uid: u32) -> Option<&str> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                let user = nix::unistd::User::from_uid(uid.into()).ok().flatten();
                user.map(|u| u.name)
            })
            .as_deref()
    }

    fn group(&mut self, gid: u32) -> Option<&str> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                let group = nix::unistd::Group::from_gid(gid.into()).ok().flatten();
                group.map(|g| g.name)
            })
            .as_deref()
    }
}

/// The parts of one base, written one after the other.
pub(super) struct TarParts {
    base: String,
    compression: Option<Compression>,
    /// `--compression-level`; `None` for our defaults.
    level: Option<Level>,
    max_size: u64,
    next_index: u32,
    tx: mpsc::Sender<Message>,
    written: Arc<AtomicU64>,
    builder: Option<tar::Builder<compress::Encoder<ChunkSender>>>,
    names: Names,
    progress: ProgressHandle,
    /// The manifest each regular file is listed in, and the prefix that makes a member
    /// name a path relative to PGDATA (`pg_tblspc/<oid>/` for a tablespace).
    manifest: Option<(Manifest, String)>,
    /// What each file is read through, [`READ_SIZE`] bytes at a time: one buffer for every
    /// file, as a fresh one per file costs page faults, most of a small file's cost.
    read_buffer: Vec<u8>,
    /// Members in the part being written, for logs.
    pub members: u64,
}

impl TarParts {
    /// Parts for `base` sent to `tx`; none is started until the first member.
    pub(super) fn new(
        base: &str,
        compression: Option<Compression>,
        max_size: u64,
        tx: mpsc::Sender<Message>,
        progress: ProgressHandle,
    ) -> TarParts {
        TarParts {
            base: base.to_string(),
            compression,
            level: None,
            max_size,
            next_index: 0,
            tx,
            written: Arc::new(AtomicU64::new(0)),
            builder: None,
            names: Names::default(),
            progress,
            manifest: None,
            read_buffer: Vec::new(),
            members: 0,
        }
    }

    /// Lists every regular file added from now on in `manifest`, under `prefix` + its
    /// member name (without a leading `./`).
    pub(super) fn with_manifest(mut self, manifest: Option<Manifest>, prefix: &str) -> TarParts {
        self.manifest = manifest.map(|m| (m, prefix.to_string()));
        self
    }

    /// Takes the manifest back (to pass it on to the next base, or to finish it).
    pub(super) fn take_manifest(&mut self) -> Option<Manifest> {
        self.manifest.take().map(|(m, _)| m)
    }

    /// The checksummer for the next file's content, when there is a manifest.
    fn checksummer(&self) -> Option<Checksummer> {
        self.manifest
            .as_ref()
            .map(|(m, _)| Checksummer::new(&[m.algorithm()]))
    }

    fn list(
        &mut self,
        name: &str,
        size: u64,
        mtime: u64,
        sum: Option<Checksummer>,
    ) -> io::Result<()> {
        let Some((manifest, prefix)) = &mut self.manifest else {
            return Ok(());
        };
        let path = format!("{prefix}{}", name.strip_prefix("./").unwrap_or(name));
        let checksum = sum.and_then(|s| s.finish().pop());
        let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
        manifest
            .add_file(path.as_bytes(), size, mtime, checksum.as_ref())
            .map_err(|e| io::Error::new(e.kind(), format!("writing the backup manifest: {e}")))
    }

    /// Compresses at `level` instead of our defaults.
    pub(super) fn with_level(mut self, level: Option<Level>) -> TarParts {
        self.level = level;
        self
    }

    /// The builder for the next member: a new part when none is open or the open one has
    /// passed the size limit (members are never split, so a part may exceed it by one file).
    fn part(&mut self) -> io::Result<&mut tar::Builder<compress::Encoder<ChunkSender>>> {
        let full = self.written.load(Ordering::Relaxed) > self.max_size;
        if self.builder.is_some() && full {
            self.close_part()?;
        }
        if self.builder.is_none() {
            let tarball = Tarball {
                base: self.base.clone(),
                index: self.next_index,
                compression: self.compression,
            };
            self.next_index += 1;
            self.written.store(0, Ordering::Relaxed);
            let mut sink = ChunkSender {
                tx: self.tx.clone(),
                buffer: BytesMut::with_capacity(SEND_SIZE),
                written: self.written.clone(),
            };
            sink.send(Message::Start(tarball))?;
            let encoder = match self.compression {
                None => compress::plain(sink),
                // Python's tarfile stream mode writes an empty gzip name, and level 9 for both
                // gzip and bzip2. Our gzip defaults to 6: on a pgbench -s 70 database it
                // stored 5% more than at 9 (65.2 against 62.0 MB) in 60% of the time (3.1-3.5
                // against 5.2-5.3 s, 2026-12-03); bzip2 keeps 9. zstd (ours alone) takes
                // zstd's own default, 3, as pgBackRest does.
                Some(c) => compress::encoder(
                    c,
                    Some(self.level.unwrap_or(Level::Value(match c {
                        Compression::Gzip => 6,
                        Compression::Zstd => 3,
                        _ => 9,
                    }))),
                    EncoderOptions {
                        content_size: None,
                        gzip_empty_name: true,
                        threads: compress::available_threads(),
                        // tarfile's stream mode reads one bzip2 stream only.
                        concatenated_streams: false,
                    },
                    sink,
                )?,
            };
            let mut builder = tar::Builder::new(encoder);
            builder.mode(tar::HeaderMode::Complete);
            builder.follow_symlinks(false);
            self.builder = Some(builder);
        }
        Ok(self.builder.as_mut().expect("a part is open"))
    }

    fn close_part(&mut self) -> io::Result<()> {
        if let Some(builder) = self.builder.take() {
            let mut sink = builder.into_inner()?.finish()?;
            sink.send_buffer()?;
            sink.send(Message::End)?;
            self.members = 0;
        }
        Ok(())
    }

    fn header(&mut self, meta: &Metadata) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        if let Some(user) = self.names.user(meta.uid()) {
            let _ = header.set_username(user);
        }
        if let Some(group) = self.names.group(meta.gid()) {
            let _ = header.set_groupname(group);
        }
        header
    }

    /// Adds a directory entry.
    pub(super) fn add_dir(&mut self, name: &str, meta: &Metadata) -> io::Result<()> {
        let mut header = self.header(meta);
        header.set_size(0);
        self.members += 1;
        self.part()?.append_data(&mut header, name, io::empty())
    }

    /// Adds a symbolic link as a link.
    pub(super) fn add_symlink(
        &mut self,
        name: &str,
        meta: &Metadata,
        target: &Path,
    ) -> io::Result<()> {
        let mut header = self.header(meta);
        header.set_size(0);
        self.members += 1;
        self.part()?.append_link(&mut header, name, target)
    }

    /// Adds a regular file read from `file`. The size is taken when the file is opened: a
    /// file that shrinks while PostgreSQL runs is padded with zeros and one that grows is cut,
    /// as WAL replay from the backup start rewrites those pages anyway.
    pub(super) fn add_file(&mut self, name: &str, file: File) -> io::Result<u64> {
        let meta = file.metadata()?;
        let size = meta.len();
        let mut header = self.header(&meta);
        header.set_size(size);
        let mut buffer = std::mem::take(&mut self.read_buffer);
        buffer.resize(READ_SIZE, 0);
        let mut reader = Checksumming {
            inner: ExactSize {
                inner: ReadAhead::new(file.take(size), &mut buffer),
                missing: size,
            },
            sum: self.checksummer(),
        };
        self.members += 1;
        let added = self
            .part()
            .and_then(|tar| tar.append_data(&mut header, name, &mut reader));
        let sum = reader.sum.take();
        self.read_buffer = buffer;
        added?;
        self.progress.advance(size);
        self.list(name, size, meta.mtime().max(0) as u64, sum)?;
        Ok(size)
    }

    /// Adds a file made from bytes with the given header fields (the `backup_label` member,
    /// time 0), listed in the manifest.
    pub(super) fn add_bytes(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> io::Result<()> {
        let mut sum = self.checksummer();
        if let Some(sum) = &mut sum {
            sum.update(data);
        }
        self.add_unlisted(name, data, data.len() as u64, (mode, uid, gid, 0))?;
        self.list(name, data.len() as u64, 0, sum)
    }

    /// Adds a file of `size` bytes read from `data` with the header's mode, uid, gid and
    /// time, and does not list it in the manifest (the manifest itself).
    pub(super) fn add_unlisted(
        &mut self,
        name: &str,
        data: impl Read,
        size: u64,
        (mode, uid, gid, mtime): (u32, u64, u64, u64),
    ) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(mtime);
        self.members += 1;
        self.part()?.append_data(&mut header, name, data)
    }

    /// Closes the last part. A base with no member still gets one (empty) part, so restore
    /// always finds an archive for it.
    pub(super) fn finish(mut self) -> io::Result<()> {
        if self.builder.is_none() {
            self.part()?;
        }
        self.close_part()
    }
}

/// Reads exactly the announced size: pads with zeros if the source ends early.
struct ExactSize<R> {
    inner: R,
    missing: u64,
}

impl<R: Read> Read for ExactSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.missing == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        let n = if n == 0 {
            let pad = buf.len().min(self.missing as usize);
            buf[..pad].fill(0);
            pad
        } else {
            n
        };
        self.missing -= n as u64;
        Ok(n)
    }
}

/// How much of a file one read takes.
const READ_SIZE: usize = 256 << 10;

/// A buffered reader over a borrowed buffer (std's `BufReader` owns a new one each time).
struct ReadAhead<'a, R> {
    inner: R,
    buffer: &'a mut [u8],
    start: usize,
    end: usize,
}

impl<'a, R: Read> ReadAhead<'a, R> {
    fn new(inner: R, buffer: &'a mut [u8]) -> Self {
        ReadAhead {
            inner,
            buffer,
            start: 0,
            end: 0,
        }
    }
}

impl<R: Read> Read for ReadAhead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            self.end = self.inner.read(self.buffer)?;
            self.start = 0;
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.buffer[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// Checksums what it reads, for the manifest.
struct Checksumming<R> {
    inner: R,
    sum: Option<Checksummer>,
}

impl<R: Read> Read for Checksumming<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(sum) = &mut self.sum {
            sum.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Every part sent to `rx`, with its bytes.
    pub(in crate::backup) fn collect(mut rx: mpsc::Receiver<Message>) -> Vec<(Tarball, Vec<u8>)> {
        let mut parts = Vec::new();
        while let Some(m) = rx.blocking_recv() {
            match m {
                Message::Start(t) => parts.push((t, Vec::new())),
                Message::Data(d) => parts.last_mut().unwrap().1.extend_from_slice(&d),
                Message::End => {}
            }
        }
        parts
    }

    /// The member names of one part.
    pub(in crate::backup) fn names(
        tar_bytes: &[u8],
        compression: Option<Compression>,
    ) -> Vec<String> {
        let data = match compression {
            Some(c) => compress::decompress(c, tar_bytes).unwrap(),
            None => tar_bytes.to_vec(),
        };
        let mut archive = tar::Archive::new(&data[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn the_queue_holds_at_most_its_bytes() {
        let (tx, mut rx) = queue();
        assert!(rx.max_capacity() * SEND_SIZE <= QUEUE_BYTES);
        let writer = std::thread::spawn(move || {
            let mut sink = ChunkSender {
                tx,
                buffer: BytesMut::with_capacity(SEND_SIZE),
                written: Arc::new(AtomicU64::new(0)),
            };
            for _ in 0..20 {
                sink.write_all(&[7; 300_001]).unwrap();
            }
            sink.send_buffer().unwrap();
        });
        let mut total = 0;
        while let Some(message) = rx.blocking_recv() {
            let Message::Data(data) = message else {
                panic!("only data was sent")
            };
            assert!(data.len() <= SEND_SIZE, "a message of {} bytes", data.len());
            total += data.len();
        }
        writer.join().unwrap();
        assert_eq!(total, 20 * 300_001);
    }

    #[test]
    fn parts_split_after_the_limit_and_each_is_a_whole_archive() {
        let dir = tempfile::tempdir().unwrap();
        // Incompressible, so the compressed count grows as the members go in.
        let mut x: u32 = 7;
        for i in 0..5 {
            let noise: Vec<u8> = (0..3_000_000)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 24) as u8
                })
                .collect();
            std::fs::write(dir.path().join(format!("f{i}")), noise).unwrap();
        }
        let (tx, rx) = mpsc::channel(64);
        let reader = std::thread::spawn(move || collect(rx));
        let mut parts = TarParts::new(
            "data",
            Some(Compression::Gzip),
            4_000_000,
            tx,
            ProgressHandle::silent(),
        );
        for i in 0..5 {
            let f = File::open(dir.path().join(format!("f{i}"))).unwrap();
            parts.add_file(&format!("./f{i}"), f).unwrap();
        }
        parts
            .add_bytes("backup_label", b"START WAL LOCATION", 0o644, 0, 5)
            .unwrap();
        parts.finish().unwrap();
        let got = reader.join().unwrap();
        let files: Vec<String> = got.iter().map(|(t, _)| t.file_name()).collect();
        assert!(files.len() > 1, "{files:?}");
        assert_eq!(files[0], "data.tar.gz");
        assert_eq!(files[1], "data_0001.tar.gz");
        let all: Vec<String> = got
            .iter()
            .flat_map(|(t, bytes)| names(bytes, t.compression))
            .collect();
        // The tar crate drops a leading `./` that Python's tarfile keeps; readers see the same.
        assert_eq!(all, ["f0", "f1", "f2", "f3", "f4", "backup_label"]);
        assert_eq!(&got[0].1[..4], b"\x1f\x8b\x08\x08", "tarfile's gzip header");
    }

    #[test]
    fn a_shrinking_file_is_padded_to_its_announced_size() {
        let mut r = ExactSize {
            inner: &b"abc"[..],
            missing: 5,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
    }
}
