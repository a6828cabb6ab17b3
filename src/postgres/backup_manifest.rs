//! PostgreSQL's backup manifest, the `backup_manifest` file `pg_basebackup` writes next to a
//! backup and `pg_verifybackup` checks a restored data directory against: every file with
//! its size, modification time and checksum, the WAL ranges recovery must replay, and a
//! SHA-256 of the manifest itself.
//!
//! [`Writer`] writes version 1, byte for byte as PostgreSQL 15's server writes it (one line
//! per file, the keys in its order and spacing), because `pg_verifybackup` 15 accepts only
//! version 1 and a PostgreSQL tool should see no difference. [`Manifest::parse`] reads
//! versions 1 and 2 (PostgreSQL 17 adds the system identifier) and checks the manifest's
//! own checksum the way `pg_verifybackup` does.

use std::fmt;
use std::io::{self, Read, Seek, Write};

use serde::Deserialize;
use sha2::Digest as _;

use super::Lsn;

/// The manifest's file name, in PGDATA and as the data tarball's last member.
pub const FILE_NAME: &str = "backup_manifest";

/// How each file's content is checksummed (`--manifest-checksums`, as `pg_basebackup`
/// spells them). The manifest's own checksum is always SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ChecksumAlgorithm {
    /// No checksum: the manifest lists sizes only.
    #[cfg_attr(feature = "cli", value(name = "NONE"))]
    None,
    /// CRC-32C, PostgreSQL's default: hardware-assisted, so it costs next to nothing.
    #[default]
    #[cfg_attr(feature = "cli", value(name = "CRC32C"))]
    Crc32c,
    /// SHA-256, for a checksum no accident or tampering can match.
    #[cfg_attr(feature = "cli", value(name = "SHA256"))]
    Sha256,
}

impl ChecksumAlgorithm {
    /// The name the manifest's `Checksum-Algorithm` uses.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::None => "NONE",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The algorithm a manifest names (case-insensitive, as PostgreSQL reads it).
    pub fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        [Self::None, Self::Crc32c, Self::Sha256]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A file's checksum as the manifest writes it: the digest bytes in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The digest in lowercase hex.
    pub hex: String,
}

/// A running checksum of one file's content, for one algorithm or several at once (when
/// the verifier does not know yet which one the manifest uses).
pub struct Checksummer {
    crc32c: Option<crc_fast::Digest>,
    sha256: Option<sha2::Sha256>,
}

impl Checksummer {
    /// A checksummer computing each of `algorithms` (`None` entries compute nothing).
    pub fn new(algorithms: &[ChecksumAlgorithm]) -> Checksummer {
        let has = |a| algorithms.contains(&a);
        Checksummer {
            crc32c: has(ChecksumAlgorithm::Crc32c)
                .then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi)),
            sha256: has(ChecksumAlgorithm::Sha256).then(sha2::Sha256::new),
        }
    }

    /// Adds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        if let Some(crc) = &mut self.crc32c {
            crc.update(data);
        }
        if let Some(sha) = &mut self.sha256 {
            sha.update(data);
        }
    }

    /// The checksums of everything added.
    pub fn finish(self) -> Vec<Checksum> {
        let mut out = Vec::new();
        if let Some(crc) = self.crc32c {
            // PostgreSQL hex-encodes the CRC's bytes as they sit in memory (native order),
            // so a manifest matches the pg_verifybackup of the machine that wrote it.
            let value = crc.finalize() as u32;
            out.push(Checksum {
                algorithm: ChecksumAlgorithm::Crc32c,
                hex: hex(&value.to_ne_bytes()),
            });
        }
        if let Some(sha) = self.sha256 {
            out.push(Checksum {
                algorithm: ChecksumAlgorithm::Sha256,
                hex: hex(&sha.finalize()),
            });
        }
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The WAL one timeline contributes to the backup: recovery replays it from `start` to
/// `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalRange {
    /// The timeline.
    pub timeline: u32,
    /// Where replay starts on it.
    pub start: Lsn,
    /// Where it ends (the backup's end, or where the next timeline branched off).
    pub end: Lsn,
}

/// The WAL ranges of a backup from `start` on `start_timeline` to `end` on `end_timeline`,
/// as PostgreSQL derives them: the end timeline back to the start one, each from its
/// switch point (the backup's start on the first) to where its child branched off (the
/// backup's end on the last), newest first. `history` is the end timeline's history file
/// as `(timeline, switch point)` lines, oldest first; it is not read when both timelines
/// are the same.
///
/// # Errors
/// When the start timeline is not an ancestor of the end one in `history`.
pub fn wal_ranges(
    (start, start_timeline): (Lsn, u32),
    (end, end_timeline): (Lsn, u32),
    history: &[(u32, Lsn)],
) -> Result<Vec<WalRange>, String> {
    let mut ranges = Vec::new();
    let mut until = end;
    let mut timeline = end_timeline;
    // Each history line names a parent timeline and where its child began.
    let mut ancestors = history.iter().rev();
    loop {
        if timeline == start_timeline {
            ranges.push(WalRange {
                timeline,
                start,
                end: until,
            });
            return Ok(ranges);
        }
        let Some(&(parent, switch)) = ancestors.next() else {
            return Err(format!(
                "start timeline {start_timeline} not found in the history of timeline \
                 {end_timeline}"
            ));
        };
        if switch < start {
            return Err(format!(
                "timeline {timeline} began at {switch}, before the backup started at {start} \
                 on timeline {start_timeline}"
            ));
        }
        ranges.push(WalRange {
            timeline,
            start: switch,
            end: until,
        });
        until = switch;
        timeline = parent;
    }
}

/// Writes a manifest one file at a time, as the backup streams the files, into `out`.
///
/// A manifest takes about 130 bytes a file: a database of many relations has one of many
/// megabytes (17 MB for 133,000 files), so a backup writes it to a [`Spool`] on disk rather
/// than holding it in memory until its end.
pub struct Writer<W: Write> {
    algorithm: ChecksumAlgorithm,
    out: W,
    /// The manifest's own checksum, over everything written so far.
    digest: sha2::Sha256,
    len: u64,
    files: u64,
}

impl<W: Write> Writer<W> {
    /// A manifest written to `out`, whose files will carry `algorithm` checksums.
    ///
    /// # Errors
    /// Writing to `out`.
    pub fn new(algorithm: ChecksumAlgorithm, out: W) -> io::Result<Writer<W>> {
        let mut writer = Writer {
            algorithm,
            out,
            digest: sha2::Sha256::new(),
            len: 0,
            files: 0,
        };
        writer.put("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [")?;
        Ok(writer)
    }

    /// The algorithm each file's checksum uses.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// How many files were added.
    pub fn files(&self) -> u64 {
        self.files
    }

    fn put(&mut self, text: &str) -> io::Result<()> {
        self.digest.update(text.as_bytes());
        self.len += text.len() as u64;
        self.out.write_all(text.as_bytes())
    }

    /// Adds a file: `path` relative to PGDATA (a tablespace's under `pg_tblspc/<oid>/`),
    /// its size and modification time (seconds since the epoch), and its checksum in the
    /// manifest's algorithm when it has one.
    ///
    /// # Errors
    /// Writing to `out`.
    pub fn add_file(
        &mut self,
        path: &[u8],
        size: u64,
        mtime: i64,
        checksum: Option<&Checksum>,
    ) -> io::Result<()> {
        let mut line = String::with_capacity(160);
        line += if self.files == 0 { "\n" } else { ",\n" };
        self.files += 1;
        match std::str::from_utf8(path) {
            Ok(path) => {
                line += "{ \"Path\": ";
                // JSON's escapes, which are PostgreSQL's escape_json's.
                line += &serde_json::to_string(path).expect("a string serializes");
                line += ", ";
            }
            // The manifest is UTF-8: other names are hex-encoded, as PostgreSQL does.
            Err(_) => {
                line += &format!("{{ \"Encoded-Path\": \"{}\", ", hex(path));
            }
        }
        let modified = chrono::DateTime::from_timestamp(mtime, 0).unwrap_or_default();
        line += &format!(
            "\"Size\": {size}, \"Last-Modified\": \"{}\"",
            modified.format("%Y-%m-%d %H:%M:%S GMT")
        );
        if let Some(c) = checksum.filter(|c| c.algorithm != ChecksumAlgorithm::None) {
            line += &format!(
                ", \"Checksum-Algorithm\": \"{}\", \"Checksum\": \"{}\"",
                c.algorithm, c.hex
            );
        }
        line += " }";
        self.put(&line)
    }

    /// Ends the manifest: `ranges`, and the SHA-256 of all that precedes it. Returns `out`
    /// and how many bytes were written to it.
    ///
    /// # Errors
    /// Writing to `out`.
    pub fn finish(mut self, ranges: &[WalRange]) -> io::Result<(W, u64)> {
        let mut tail = "\n],\n\"WAL-Ranges\": [\n".to_string();
        for (i, r) in ranges.iter().enumerate() {
            if i > 0 {
                tail += ",\n";
            }
            tail += &format!(
                "{{ \"Timeline\": {}, \"Start-LSN\": \"{}\", \"End-LSN\": \"{}\" }}",
                r.timeline, r.start, r.end
            );
        }
        tail += "\n],\n";
        self.put(&tail)?;
        let digest = hex(&std::mem::take(&mut self.digest).finalize());
        self.put(&format!("\"Manifest-Checksum\": \"{digest}\"}}\n"))?;
        self.out.flush()?;
        Ok((self.out, self.len))
    }
}

/// Where a backup's manifest is written: an unnamed temporary file (gone with the process,
/// however it ends), or memory when no temporary file can be created.
pub enum Spool {
    /// In `std::env::temp_dir()` (`TMPDIR`).
    File(io::BufWriter<std::fs::File>),
    /// Memory, as before there was a spool.
    Memory(Vec<u8>),
}

impl Spool {
    /// A temporary file, else memory (the reason logged).
    pub fn open() -> Spool {
        match tempfile::tempfile() {
            Ok(file) => Spool::File(io::BufWriter::with_capacity(64 << 10, file)),
            Err(e) => {
                tracing::info!(
                    "keeping the backup manifest in memory: no temporary file in {}: {e}",
                    std::env::temp_dir().display()
                );
                Spool::Memory(Vec::new())
            }
        }
    }

    /// What was written, from its start.
    ///
    /// # Errors
    /// Flushing or rewinding the temporary file.
    pub fn into_reader(self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Spool::File(out) => {
                let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
                file.rewind()?;
                Box::new(file)
            }
            Spool::Memory(bytes) => Box::new(io::Cursor::new(bytes)),
        })
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Spool::File(out) => out.write(buf),
            Spool::Memory(bytes) => bytes.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Spool::File(out) => out.flush(),
            Spool::Memory(_) => Ok(()),
        }
    }
}

/// One file a manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its path relative to PGDATA, as bytes (`Encoded-Path` decoded).
    pub path: Vec<u8>,
    /// Its size in bytes.
    pub size: u64,
    /// Its checksum, when the manifest has one for it.
    pub checksum: Option<Checksum>,
}

/// A manifest as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Its format version (1, or 2 from PostgreSQL 17).
    pub version: u32,
    /// The files, in the manifest's order.
    pub files: Vec<File>,
    /// The WAL ranges, as listed.
    pub wal_ranges: Vec<WalRange>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "PostgreSQL-Backup-Manifest-Version")]
    version: u32,
    #[serde(rename = "Files")]
    files: Vec<RawFile>,
    #[serde(rename = "WAL-Ranges")]
    wal_ranges: Vec<RawRange>,
    #[serde(rename = "Manifest-Checksum")]
    checksum: String,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Encoded-Path")]
    encoded_path: Option<String>,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "Checksum-Algorithm")]
    algorithm: Option<String>,
    #[serde(rename = "Checksum")]
    checksum: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "Timeline")]
    timeline: u32,
    #[serde(rename = "Start-LSN")]
    start: String,
    #[serde(rename = "End-LSN")]
    end: String,
}

impl Manifest {
    /// Reads a manifest and checks its own checksum.
    ///
    /// # Errors
    /// A message (fit to follow a colon) when it is not a manifest this reader knows, or
    /// its checksum does not match its content.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| format!("it is not a manifest: {e}"))?;
        if !(1..=2).contains(&raw.version) {
            return Err(format!("it has unknown version {}", raw.version));
        }
        // Like pg_verifybackup: the checksum covers everything up to and including the
        // newline before the last line, the one holding the checksum.
        let covered = bytes
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, b)| **b == b'\n')
            .nth(1)
            .map_or(0, |(i, _)| i + 1);
        let actual = hex(&sha2::Sha256::digest(&bytes[..covered]));
        if !actual.eq_ignore_ascii_case(&raw.checksum) {
            return Err(format!(
                "its checksum is {actual} but it says {}, so it is damaged",
                raw.checksum
            ));
        }
        let files = raw
            .files
            .into_iter()
            .map(|f| {
                let path = match (f.path, f.encoded_path) {
                    (Some(p), None) => p.into_bytes(),
                    (None, Some(e)) => {
                        unhex(&e).ok_or_else(|| format!("'{e}' is not a hex-encoded path"))?
                    }
                    _ => return Err("a file has both or neither of Path and Encoded-Path".into()),
                };
                let checksum = match (f.algorithm, f.checksum) {
                    (None, None) => None,
                    (Some(a), Some(hex)) => {
                        let algorithm = ChecksumAlgorithm::from_name(&a)
                            .ok_or_else(|| format!("unknown checksum algorithm '{a}'"))?;
                        (algorithm != ChecksumAlgorithm::None).then(|| Checksum {
                            algorithm,
                            hex: hex.to_ascii_lowercase(),
                        })
                    }
                    _ => return Err("a file has a checksum without its algorithm".into()),
                };
                Ok(File {
                    path,
                    size: f.size,
                    checksum,
                })
            })
            .collect::<Result<_, String>>()?;
        let wal_ranges = raw
            .wal_ranges
            .into_iter()
            .map(|r| {
                Ok(WalRange {
                    timeline: r.timeline,
                    start: r.start.parse()?,
                    end: r.end.parse()?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Manifest {
            version: raw.version,
            files,
            wal_ranges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
    }

    fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> Checksum {
        let mut c = Checksummer::new(&[algorithm]);
        c.update(data);
        c.finish().remove(0)
    }

    #[test]
    fn checksums_are_postgresqls() {
        // CRC-32C of "123456789" is 0xE3069283, written in memory order on little-endian.
        #[cfg(target_endian = "little")]
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32c, b"123456789").hex,
            "839206e3"
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Sha256, b"abc").hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut both = Checksummer::new(&[ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Sha256]);
        both.update(b"12345");
        both.update(b"6789");
        let both = both.finish();
        assert_eq!(both[0], checksum(ChecksumAlgorithm::Crc32c, b"123456789"));
        assert_eq!(both[1], checksum(ChecksumAlgorithm::Sha256, b"123456789"));
        assert!(
            Checksummer::new(&[ChecksumAlgorithm::None])
                .finish()
                .is_empty()
        );
    }

    #[test]
    fn the_manifest_is_written_as_postgresql_15_writes_it() {
        let mut w = Writer::new(ChecksumAlgorithm::Crc32c, Spool::open()).unwrap();
        let c = checksum(ChecksumAlgorithm::Crc32c, b"15\n");
        w.add_file(b"PG_VERSION", 3, 1_764_633_600, Some(&c))
            .unwrap();
        w.add_file(b"a\"b\n", 0, 0, None).unwrap();
        w.add_file(b"pg_tblspc/16385/\xff", 7, 0, None).unwrap();
        let (spool, len) = w
            .finish(&[WalRange {
                timeline: 1,
                start: lsn("0/2000028"),
                end: lsn("0/2000100"),
            }])
            .unwrap();
        assert!(matches!(spool, Spool::File(_)));
        let mut text = String::new();
        spool
            .into_reader()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.len() as u64, len);
        let body = format!(
            "{{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n\
             {{ \"Path\": \"PG_VERSION\", \"Size\": 3, \"Last-Modified\": \"2025-12-02 00:00:00 \
             GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"{}\" }},\n\
             {{ \"Path\": \"a\\\"b\\n\", \"Size\": 0, \"Last-Modified\": \"1970-01-01 00:00:00 \
             GMT\" }},\n\
             {{ \"Encoded-Path\": \"7067...\", \"Size\": 7, \"Last-Modified\": \"1970-01-01 \
             00:00:00 GMT\" }}\n],\n\
             \"WAL-Ranges\": [\n\
             {{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }}\n\
             ],\n",
            c.hex
        )
        .replace("7067...", &hex(b"pg_tblspc/16385/\xff"));
        let sum = hex(&sha2::Sha256::digest(body.as_bytes()));
        assert_eq!(text, format!("{body}\"Manifest-Checksum\": \"{sum}\"}}\n"));

        let parsed = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.version, 1);
        assert_eq!(parsed.files.len(), 3);
        assert_eq!(parsed.files[0].checksum.as_ref(), Some(&c));
        assert_eq!(parsed.files[1].path, b"a\"b\n");
        assert_eq!(parsed.files[2].path, b"pg_tblspc/16385/\xff");
        assert_eq!(parsed.wal_ranges[0].end, lsn("0/2000100"));
    }

    #[test]
    fn a_damaged_manifest_fails_its_own_checksum() {
        let mut w = Writer::new(ChecksumAlgorithm::None, Vec::new()).unwrap();
        w.add_file(b"base/1/1259", 8192, 0, None).unwrap();
        let (good, _) = w.finish(&[]).unwrap();
        let bad = String::from_utf8(good).unwrap().replace("8192", "8193");
        let e = Manifest::parse(bad.as_bytes()).unwrap_err();
        assert!(e.contains("damaged"), "{e}");
        assert!(Manifest::parse(b"{}").is_err());
    }

    #[test]
    fn wal_ranges_follow_the_timeline_history() {
        let one = wal_ranges((lsn("0/2000028"), 1), (lsn("0/3000000"), 1), &[]).unwrap();
        assert_eq!(
            one,
            [WalRange {
                timeline: 1,
                start: lsn("0/2000028"),
                end: lsn("0/3000000")
            }]
        );
        // A standby promoted to timeline 2 at 0/2800000 while the backup ran.
        let history =
            crate::postgres::history_entries("1\t0/2800000\tno recovery target specified\n");
        assert_eq!(history, [(1, lsn("0/2800000"))]);
        let two = wal_ranges((lsn("0/2000028"), 1), (lsn("0/3000000"), 2), &history).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!((two[0].timeline, two[0].start), (2, lsn("0/2800000")));
        assert_eq!((two[1].timeline, two[1].end), (1, lsn("0/2800000")));
        assert!(wal_ranges((lsn("0/2000028"), 3), (lsn("0/3000000"), 2), &history).is_err());
    }
}
