//! `$SPOOL_DIRECTORY`: what one WAL call leaves for the next ones, as the plugin keeps it.
//!
//! - Archive: an empty file `<walname>` says the segment was uploaded ahead ("pre-archived")
//!   by an earlier call; PostgreSQL's own call for it deletes the marker and succeeds.
//! - Restore: `<walname>` is a segment fetched ahead; it is written as `<walname>.tmp` and
//!   renamed once complete, so a later call never takes a partial download.
//! - Restore: `end-of-wal-stream` says a prefetch found the end of the archive.
//!
//! Names are checked by the flows to be plain file names before they reach these functions.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The restore flag's file name.
pub const END_OF_WAL_STREAM: &str = "end-of-wal-stream";

/// The suffix of a prefetch in progress.
const TEMP_SUFFIX: &str = ".tmp";

/// The spool directory of one call.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The spool at `dir`, created (with its parents) when missing, as the plugin does on
    /// every call.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// `<spool>/<name>`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `<spool>/<name>.tmp`: where a prefetch downloads to.
    pub fn temp_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{TEMP_SUFFIX}"))
    }

    /// Whether `<spool>/<name>` exists.
    ///
    /// # Errors
    /// When it cannot be told (permissions).
    pub fn contains(&self, name: &str) -> io::Result<bool> {
        self.path(name).try_exists()
    }

    /// Removes `<spool>/<name>`; false when it was not there.
    ///
    /// # Errors
    /// Any other failure to remove it.
    pub fn remove(&self, name: &str) -> io::Result<bool> {
        match fs::remove_file(self.path(name)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Creates the empty file `<spool>/<name>` (truncating one that is there).
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn touch(&self, name: &str) -> io::Result<()> {
        File::create(self.path(name)).map(drop)
    }

    /// Makes a finished prefetch visible: renames `<name>.tmp` to `<name>`. On failure the
    /// temporary file is removed.
    ///
    /// # Errors
    /// When the rename fails.
    pub fn commit(&self, name: &str) -> io::Result<()> {
        let temp = self.temp_path(name);
        fs::rename(&temp, self.path(name)).inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })
    }

    /// Removes a failed prefetch's temporary file, if any.
    pub fn discard_temp(&self, name: &str) {
        let _ = fs::remove_file(self.temp_path(name));
    }

    /// Moves `<spool>/<name>` to `destination`; false when the spool does not hold it.
    ///
    /// The spool and PGDATA are different volumes, so this is a copy. PostgreSQL must never
    /// find a partial file under the name it asked for, so the copy goes to a hidden
    /// temporary name beside `destination`, is synced, and is renamed over `destination`
    /// (then the directory is synced); only then is the spool's copy removed.
    ///
    /// # Errors
    /// When reading, writing, syncing or renaming fails; the temporary file is removed.
    pub fn move_out(&self, name: &str, destination: &Path) -> io::Result<bool> {
        let source = self.path(name);
        let mut input = match File::open(&source) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        };
        let temp = temp_beside(destination);
        let copied = (|| {
            let mut output = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)?;
            io::copy(&mut input, &mut output)?;
            output.sync_all()?;
            drop(output);
            fs::rename(&temp, destination)?;
            if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(parent)?.sync_all()?;
            }
            Ok(())
        })();
        if let Err(error) = copied {
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
        fs::remove_file(&source)?;
        Ok(true)
    }
}

/// `<dir>/.<file name>.spool-copy`: hidden, in the destination's directory so the rename
/// stays on one file system.
fn temp_beside(destination: &Path) -> PathBuf {
    let name = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    destination.with_file_name(format!(".{name}.spool-copy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("spool")).unwrap();
        assert!(!spool.contains("000000010000000000000001").unwrap());
        spool.touch("000000010000000000000001").unwrap();
        assert!(spool.contains("000000010000000000000001").unwrap());
        assert!(spool.remove("000000010000000000000001").unwrap());
        assert!(!spool.remove("000000010000000000000001").unwrap());
    }

    #[test]
    fn a_prefetch_is_visible_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let name = "000000010000000000000002";
        fs::write(spool.temp_path(name), b"wal").unwrap();
        assert!(!spool.contains(name).unwrap());
        spool.commit(name).unwrap();
        assert!(spool.contains(name).unwrap());
        assert!(!spool.temp_path(name).exists());
        fs::write(spool.temp_path("x"), b"partial").unwrap();
        spool.discard_temp("x");
        assert!(!spool.temp_path("x").exists());
    }

    #[test]
    fn move_out_replaces_the_destination_and_empties_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("spool")).unwrap();
        let pg_wal = dir.path().join("pg_wal");
        fs::create_dir(&pg_wal).unwrap();
        let destination = pg_wal.join("RECOVERYXLOG");
        fs::write(&destination, b"old").unwrap();
        let name = "000000010000000000000003";
        assert!(!spool.move_out(name, &destination).unwrap());
        assert_eq!(fs::read(&destination).unwrap(), b"old");
        fs::write(spool.path(name), b"segment bytes").unwrap();
        assert!(spool.move_out(name, &destination).unwrap());
        assert_eq!(fs::read(&destination).unwrap(), b"segment bytes");
        assert!(!spool.contains(name).unwrap());
        let left: Vec<_> = fs::read_dir(&pg_wal).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left beside the WAL");
    }

    #[test]
    fn a_failed_move_leaves_no_partial_file_and_keeps_the_spools_copy() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let name = "000000010000000000000004";
        fs::write(spool.path(name), b"segment").unwrap();
        let destination = dir.path().join("missing-dir").join("RECOVERYXLOG");
        assert!(spool.move_out(name, &destination).is_err());
        assert!(!destination.exists());
        assert!(spool.contains(name).unwrap());
    }
}
