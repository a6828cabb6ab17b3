//! Local files that appear whole or not at all.
//!
//! PostgreSQL reads what `restore_command` leaves at `%p` as soon as the command exits 0, and a
//! prefetched WAL in the spool is served to a later call. Both are written to a temporary name
//! in the same directory, fsynced, renamed into place, and the directory fsynced, so a crash or
//! a concurrent reader never sees a half-written file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The temporary sibling of `dest`: hidden, clearly ours, and unique to this call, so that
/// processes sharing a directory (two standbys' wal-restore on one spool) and tasks of one
/// process writing the same name never write one temporary file together.
fn temp_path(dest: &Path) -> PathBuf {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    dest.with_file_name(format!(
        ".{name}.barman-cloud-{}-{call}.tmp",
        std::process::id()
    ))
}

/// Writes `dest` through `fill`, atomically and durably. On any error the temporary file is
/// removed and `dest` is untouched.
///
/// # Errors
/// Whatever `fill` or the file system returns.
pub fn write_atomically(
    dest: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let temp = temp_path(dest);
    let result = (|| {
        let mut file = File::create(&temp)?;
        fill(&mut file)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, dest)?;
        sync_dir(dest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Why [`copy_into`] stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// The source failed (a download, a decoder).
    Read(io::Error),
    /// The file could not be written.
    Write(io::Error),
}

/// How much a file grows between two requests to start writing it to disk.
const WRITEBACK_STEP: u64 = 16 << 20;

/// Copies `from` to the end of `file` through `buf`, and asks the kernel to start writing
/// what was copied to disk as it goes (every [`WRITEBACK_STEP`] and at the end), so that the
/// fsync that makes it durable finds little left to do. Returns the bytes copied.
///
/// # Errors
/// [`CopyError`], telling the source's failures from the file's.
pub(crate) fn copy_into(
    from: &mut (impl Read + ?Sized),
    mut file: &File,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    let (mut written, mut queued) = (0u64, 0u64);
    loop {
        let n = match from.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        file.write_all(&buf[..n]).map_err(CopyError::Write)?;
        written += n as u64;
        if written - queued >= WRITEBACK_STEP {
            start_writeback(file, queued, written);
            queued = written;
        }
    }
    start_writeback(file, queued, written);
    Ok(written)
}

/// Asks the kernel to start writing `start..end` of `file` to disk now, without waiting.
/// (The advice also drops pages of the range that are already clean; just written, hardly
/// any are.) Only a hint: an error changes nothing, since an fsync follows and is checked.
fn start_writeback(file: &File, start: u64, end: u64) {
    let (Ok(offset), Ok(len)) = (
        i64::try_from(start),
        i64::try_from(end.saturating_sub(start)),
    ) else {
        return;
    };
    if len > 0 {
        let _ = nix::fcntl::posix_fadvise(
            file,
            offset,
            len,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }
}

/// Moves `from` to `dest` durably: a rename when both are on one file system, otherwise a
/// copy written atomically, then the source removed.
///
/// # Errors
/// File-system errors; [`io::ErrorKind::NotFound`] when `from` is not there (or another
/// process moved it first), with `dest` untouched.
pub fn move_file(from: &Path, dest: &Path) -> io::Result<()> {
    match fs::rename(from, dest) {
        Ok(()) => sync_dir(dest),
        Err(e) if e.raw_os_error() == Some(18) => {
            // EXDEV: the spool and pg_wal are on different file systems. The file is opened
            // first, so one that another process takes now is still copied whole.
            let mut source = File::open(from)?;
            write_atomically(dest, |out| io::copy(&mut source, out).map(drop))?;
            match fs::remove_file(from) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}

/// Flushes a whole restored tree to stable storage: the filesystem holding `root`, then the
/// directory holding `root`.
///
/// # Errors
/// A failed flush (including an earlier write-back error the kernel reports then).
pub fn sync_tree(root: &Path) -> io::Result<()> {
    // One syncfs flushes every file and directory of the tree's filesystem: the same
    // durability as an fsync per file, at a fraction of the cost on a data directory of
    // thousands of files. The tree's own entry may live on another filesystem.
    let dir = File::open(root)?;
    nix::unistd::syncfs(&dir).map_err(io::Error::from)?;
    sync_dir(root)
}

/// Makes the entry of `path` in its directory durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    sync_directory(parent_dir(path))
}

/// Flushes the directory `dir` itself (its entries), not the files in it.
pub(crate) fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory holding `path`: `.` for a bare name.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fill_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("RECOVERYXLOG");
        let err = write_atomically(&dest, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("network gone"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn syncs_a_tree_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pgdata");
        fs::create_dir_all(root.join("base/1")).unwrap();
        fs::write(root.join("base/1/1259"), b"page").unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("pg_wal")).unwrap();
        sync_tree(&root).unwrap();
    }

    #[test]
    fn temporary_names_differ_between_calls() {
        let dest = Path::new("/spool/000000010000000000000001");
        assert_ne!(temp_path(dest), temp_path(dest));
    }

    #[test]
    fn moving_a_file_already_taken_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("RECOVERYXLOG");
        let err = move_file(&dir.path().join("gone"), &dest).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!dest.exists());
    }

    #[test]
    fn writes_and_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        write_atomically(&dest, |f| f.write_all(b"one")).unwrap();
        write_atomically(&dest, |f| f.write_all(b"two")).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
