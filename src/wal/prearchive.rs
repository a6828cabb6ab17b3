//! Parallel pre-archiving (our addition, `wal-archive --max-parallel N`): while PostgreSQL
//! asks for one WAL file, also upload the next files it has marked `.ready`, and remember each
//! in a spool directory. PostgreSQL's later calls for them find the spool entry, check it
//! against the file, and return at once.
//!
//! Safety rests on three rules. `archive_status` belongs to PostgreSQL: it is only read. A
//! spool entry is written (atomically) only after its upload has completed, so a crash loses
//! nothing and at worst uploads a file twice, which the duplicate check turns into a no-op.
//! An entry counts only if the file's size and CRC-32 still match what was uploaded, and only
//! for the destination it was uploaded to (a changed `archive_command` must not take another
//! bucket's entry as proof).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use futures::future::join_all;

use super::archive::{ArchiveOptions, Archived, archive, wal_name_of};
use crate::durable;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::postgres::WalName;
use crate::storage::Storage;
use crate::task;

/// What one spool entry records of the file it stands for, and where it was uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    size: u64,
    crc32: u32,
    destination: String,
}

impl Fingerprint {
    /// The fingerprint of what `data` yields, read in pieces (a 16 MiB segment is never
    /// held whole).
    fn of_reader(data: impl Read, destination: &str) -> io::Result<Fingerprint> {
        // io::copy reads straight into a BufReader's buffer: 1 MiB reads, no second copy.
        let mut crc = flate2::CrcWriter::new(io::sink());
        let size = io::copy(&mut io::BufReader::with_capacity(1 << 20, data), &mut crc)?;
        Ok(Fingerprint {
            size,
            crc32: crc.crc().sum(),
            destination: destination.to_string(),
        })
    }

    /// The fingerprint of a file, read on a blocking thread.
    async fn of_file(path: &Path, destination: &str) -> Result<Fingerprint> {
        let (path, destination) = (path.to_path_buf(), destination.to_string());
        task::blocking("reading the WAL file", move || {
            std::fs::File::open(&path)
                .and_then(|file| Fingerprint::of_reader(file, &destination))
                .map_err(Error::io("read WAL file", &path))
        })
        .await?
    }

    fn render(&self, key: &str) -> String {
        format!(
            "size={}\ncrc32={:08x}\ndestination={}\nkey={key}\n",
            self.size, self.crc32, self.destination
        )
    }

    fn parse(text: &str) -> Option<Fingerprint> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        };
        Some(Fingerprint {
            size: field("size")?.parse().ok()?,
            crc32: u32::from_str_radix(field("crc32")?, 16).ok()?,
            destination: field("destination")?.to_string(),
        })
    }
}

/// The outcome of one call with pre-archiving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prearchived {
    /// An earlier call had uploaded this file already; nothing was sent now.
    FromSpool,
    /// This call archived it (and maybe others ahead).
    Archived {
        /// How the requested file was stored.
        archived: Archived,
        /// How many files ready after it went up too.
        ahead: usize,
    },
}

/// Archives `wal_path`, answering from the spool when an earlier call uploaded it, and
/// uploads up to `max_parallel - 1` further `.ready` files at the same time.
///
/// # Errors
/// What [`archive`] returns for `wal_path` itself; failures ahead are only logged (PostgreSQL
/// will ask for those files again).
pub async fn archive_with_prefetch(
    storage: &Storage,
    layout: &Layout,
    wal_path: &Path,
    options: &ArchiveOptions,
    max_parallel: usize,
    spool_dir: &Path,
) -> Result<Prearchived> {
    let wal = wal_name_of(wal_path)?;
    std::fs::create_dir_all(spool_dir).map_err(|source| Error::Spool {
        path: spool_dir.to_path_buf(),
        source,
    })?;
    let entry = spool_dir.join(wal.as_str());
    if let Ok(recorded) = std::fs::read_to_string(&entry) {
        let current = Fingerprint::of_file(wal_path, storage.destination()).await?;
        let matches = Fingerprint::parse(&recorded) == Some(current);
        remove_entry(&entry);
        if matches {
            return Ok(Prearchived::FromSpool);
        }
        tracing::warn!(
            "spool entry for {wal} does not match the file or the destination; archiving it again"
        );
    }

    let ahead = next_ready(wal_path, &wal, spool_dir, max_parallel.saturating_sub(1));
    let current = archive(storage, layout, wal_path, options);
    let others = join_all(
        ahead
            .iter()
            .map(|path| prearchive_one(storage, layout, path, options, spool_dir)),
    );
    let (archived, done) = tokio::join!(current, others);
    Ok(Prearchived::Archived {
        archived: archived?,
        ahead: done.into_iter().filter(|ok| *ok).count(),
    })
}

async fn prearchive_one(
    storage: &Storage,
    layout: &Layout,
    path: &Path,
    options: &ArchiveOptions,
    spool_dir: &Path,
) -> bool {
    let outcome = async {
        let fingerprint = Fingerprint::of_file(path, storage.destination()).await?;
        let archived = archive(storage, layout, path, options).await?;
        let key = match &archived {
            Archived::Uploaded(k) | Archived::AlreadyStored(k) => k.clone(),
        };
        let name = wal_name_of(path)?;
        let text = fingerprint.render(&key);
        durable::write_atomically(&spool_dir.join(name.as_str()), |f| {
            std::io::Write::write_all(f, text.as_bytes())
        })
        .map_err(|source| Error::Spool {
            path: spool_dir.to_path_buf(),
            source,
        })
    }
    .await;
    match outcome {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("pre-archiving {} failed: {e}", path.display());
            false
        }
    }
}

fn remove_entry(entry: &Path) {
    if let Err(e) = std::fs::remove_file(entry) {
        tracing::warn!("cannot remove spool entry {}: {e}", entry.display());
    }
}

/// The next `count` files PostgreSQL has marked ready, in the order its archiver takes them
/// (history files first, then by name), not yet spooled. Spool entries whose `.ready` marker
/// is gone are stale (PostgreSQL archived those files some other way) and are removed.
fn next_ready(wal_path: &Path, current: &WalName, spool_dir: &Path, count: usize) -> Vec<PathBuf> {
    let wal_dir = wal_path.parent().unwrap_or(Path::new("."));
    let status_dir = wal_dir.join("archive_status");
    let Ok(entries) = std::fs::read_dir(&status_dir) else {
        return Vec::new();
    };
    let mut ready: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".ready"))
                .map(str::to_string)
        })
        .filter(|n| WalName::parse(n).is_ok())
        .collect();
    if let Ok(spooled) = std::fs::read_dir(spool_dir) {
        for entry in spooled.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if WalName::parse(&name).is_ok() && !ready.contains(&name) {
                remove_entry(&entry.path());
            }
        }
    }
    ready.sort_by_key(|n| (!n.ends_with(".history"), n.clone()));
    ready
        .into_iter()
        .filter(|n| n != current.as_str() && !spool_dir.join(n).exists())
        .take(count)
        .map(|n| wal_dir.join(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_and_tell_files_apart() {
        let a = Fingerprint::of_reader(&b"segment one"[..], "s3://a/p http://minio:9000").unwrap();
        let text = a.render("pg/wals/0000000100000000/000000010000000000000001.gz");
        assert_eq!(Fingerprint::parse(&text), Some(a.clone()));
        assert_ne!(
            Fingerprint::of_reader(&b"segment two"[..], "s3://a/p http://minio:9000").unwrap(),
            a
        );
        assert_ne!(
            Fingerprint::of_reader(&b"segment one"[..], "s3://b/p http://minio:9000").unwrap(),
            a
        );
        assert_eq!(Fingerprint::parse("size=1\n"), None);
        // Entries written before the destination was recorded never count.
        assert_eq!(Fingerprint::parse("size=11\ncrc32=00000000\nkey=k\n"), None);
    }

    #[test]
    fn ready_files_are_taken_in_archiver_order_and_stale_entries_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("pg_wal");
        let status = wal_dir.join("archive_status");
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&status).unwrap();
        std::fs::create_dir_all(&spool).unwrap();
        for n in [
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004",
            "00000002.history",
        ] {
            std::fs::write(status.join(format!("{n}.ready")), "").unwrap();
        }
        std::fs::write(status.join("000000010000000000000000.done"), "").unwrap();
        std::fs::write(spool.join("000000010000000000000003"), "size=1\ncrc32=0\n").unwrap();
        std::fs::write(spool.join("000000010000000000000000"), "stale").unwrap();
        let current = WalName::parse("000000010000000000000001").unwrap();
        let next = next_ready(&wal_dir.join(current.as_str()), &current, &spool, 3);
        let names: Vec<String> = next
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "00000002.history",
                "000000010000000000000002",
                "000000010000000000000004"
            ]
        );
        assert!(!spool.join("000000010000000000000000").exists());
        assert!(spool.join("000000010000000000000003").exists());
    }
}
