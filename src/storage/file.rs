//! Whole-object writes to a `file://` store, done here rather than by object_store's
//! `LocalFileSystem` (which still does everything else: reads, listings, deletes, streamed
//! uploads).
//!
//! `LocalFileSystem` writes a 16 MiB WAL segment with one `write` of the whole buffer. On this
//! kind of VM the kernel then copies 16 MiB into the page cache in one go, and one archive in
//! two took twice as long as the other (issue #19 item 3). pgBackRest writes 1 MiB at a time
//! and does not have those slow runs; so do we. The rules are those of `LocalFileSystem` with
//! fsync on, which the rest of the store relies on: the object is staged as `<name>#<n>` (so a
//! writer killed mid-write leaves a file that listings skip and [`super::Storage::sweep_staging`]
//! removes), fsynced, published under its name by a hard link (create: fails when the name is
//! taken) or a rename (overwrite), and the directory fsynced before we report it stored. A
//! failure removes the staged file and leaves the name as it was.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::durable::{self, CopyError};

/// How much one `write` hands the kernel: pgBackRest's default buffer size.
pub(super) const PIECE: usize = 1 << 20;

/// Writes `data` at `dest`; `Ok(false)` when `create_only` found the name taken (the stored
/// file is untouched). Returns once the file and its name are on stable storage.
///
/// # Errors
/// File-system errors; `dest` is then as it was and no staged file is left.
pub(super) fn put(dest: &Path, data: &[u8], create_only: bool) -> io::Result<bool> {
    let written = stage_and_publish(dest, create_only, |mut file| {
        for piece in data.chunks(PIECE) {
            file.write_all(piece).map_err(CopyError::Write)?;
        }
        Ok(())
    });
    written.map_err(|(CopyError::Read(e) | CopyError::Write(e))| e)
}

/// [`put`] of the file at `source`, copied in [`PIECE`]s: no buffer the size of the file is
/// filled first (for a 16 MiB WAL segment, 4,096 fresh pages the kernel faults in and zeroes).
///
/// # Errors
/// [`CopyError::Read`] when `source` cannot be opened or read, [`CopyError::Write`] otherwise;
/// `dest` is then as it was and no staged file is left.
pub(super) fn copy(dest: &Path, source: &Path, create_only: bool) -> Result<bool, CopyError> {
    let mut from = File::open(source).map_err(CopyError::Read)?;
    let mut buf = vec![0; PIECE];
    stage_and_publish(dest, create_only, |file| {
        durable::copy_into(&mut from, file, &mut buf).map(drop)
    })
}

/// Stages `dest` through `fill`, fsyncs it and publishes it (see the module's comment).
fn stage_and_publish(
    dest: &Path,
    create_only: bool,
    fill: impl FnOnce(&File) -> Result<(), CopyError>,
) -> Result<bool, CopyError> {
    let (file, staged) = new_staged(dest).map_err(CopyError::Write)?;
    let published = (|| {
        fill(&file)?;
        file.sync_all().map_err(CopyError::Write)?;
        drop(file);
        publish(&staged, dest, create_only).map_err(CopyError::Write)
    })();
    match published {
        Ok(true) => Ok(true),
        outcome => {
            let _ = fs::remove_file(&staged);
            outcome
        }
    }
}

/// Gives `staged` the name `dest`, durably; `Ok(false)` when `create_only` and `dest` exists.
fn publish(staged: &Path, dest: &Path, create_only: bool) -> io::Result<bool> {
    if create_only {
        match fs::hard_link(staged, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        }
        // Removed before the directory's fsync, which then covers both entries. Should the
        // removal fail, the sweep takes the staged name later: the object is stored.
        let _ = fs::remove_file(staged);
    } else {
        fs::rename(staged, dest)?;
    }
    durable::sync_dir(dest)?;
    Ok(true)
}

/// Opens a new `<dest>#<n>` (the first free `n`, as `LocalFileSystem` numbers them), creating
/// the missing directories above it.
fn new_staged(dest: &Path) -> io::Result<(File, PathBuf)> {
    let mut n = 1u32;
    loop {
        let mut staged = dest.as_os_str().to_owned();
        staged.push(format!("#{n}"));
        let staged = PathBuf::from(staged);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged)
        {
            Ok(file) => return Ok((file, staged)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_dirs(durable::parent_dir(dest))?
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates `dir` and its missing ancestors, and fsyncs each new directory and the existing one
/// that received the first, so the new names survive a crash.
fn create_dirs(dir: &Path) -> io::Result<()> {
    let first_existing = dir.ancestors().find(|a| a.is_dir()).map(Path::to_path_buf);
    fs::create_dir_all(dir)?;
    for changed in dir.ancestors() {
        durable::sync_directory(changed)?;
        if Some(changed) == first_existing.as_deref() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_directories_and_refuses_a_taken_name() {
        let root = tempfile::tempdir().unwrap();
        let dest = root
            .path()
            .join("srv/wals/0000000100000000/000000010000000000000001");
        let data = vec![7u8; 3 * PIECE + 5];
        assert!(put(&dest, &data, true).unwrap());
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert!(!put(&dest, b"other", true).unwrap());
        assert_eq!(fs::read(&dest).unwrap(), data);
        assert!(put(&dest, b"other", false).unwrap());
        assert_eq!(fs::read(&dest).unwrap(), b"other");
        let source = root.path().join("source");
        fs::write(&source, &data).unwrap();
        assert!(copy(&dest, &source, false).unwrap());
        assert_eq!(fs::read(&dest).unwrap(), data);
        let missing = copy(&dest, &root.path().join("gone"), false);
        assert!(matches!(missing, Err(CopyError::Read(_))));
        let names: Vec<_> = fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [dest.file_name().unwrap()]);
    }
}
