//! A Cluster with `spec.walStorage` keeps `pg_wal` on its own volume: after the restore,
//! what `barman-cloud-restore` put in `$PGDATA/pg_wal` moves there and `pg_wal` becomes a
//! symlink to it, as the plugin does. The move copies first and deletes after (the volumes
//! are different file systems, so a rename would not do), and a failed copy removes what it
//! had copied, so a retried Job starts from the same state.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::log::Logger;

/// A file or directory of the move that cannot be read, copied, removed or linked.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path:?}: {source}")]
pub struct Error {
    /// What was being done.
    pub action: &'static str,
    /// The path.
    pub path: PathBuf,
    /// What the OS said.
    pub source: io::Error,
}

/// Moves `<pgdata>/pg_wal`'s content into `volume` and links `pg_wal` to it; false when the
/// link was already there.
///
/// # Errors
/// [`Error`] for the first file that cannot be copied, removed or linked.
pub fn move_pg_wal(log: &Logger, pgdata: &Path, volume: &Path) -> Result<bool, Error> {
    let pg_wal = pgdata.join("pg_wal");
    let file = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| Error {
            action,
            path,
            source,
        }
    };
    if fs::read_link(&pg_wal).is_ok_and(|target| target == volume) {
        log.info(
            "symlink to the WAL volume already present, skipping the custom wal dir restore",
            &[],
        );
        return Ok(false);
    }
    fs::create_dir_all(volume).map_err(file("create the WAL volume directory", volume))?;
    log.info(
        "restoring WAL volume symlink and transferring data",
        &[("from", json!(pg_wal)), ("to", json!(volume))],
    );
    fs::create_dir_all(&pg_wal).map_err(file("create", &pg_wal))?;
    if let Err(error) = copy_content(&pg_wal, volume) {
        let _ = remove_content(volume);
        return Err(error);
    }
    remove_content(&pg_wal).map_err(file("empty", &pg_wal))?;
    fs::remove_dir(&pg_wal).map_err(file("remove", &pg_wal))?;
    std::os::unix::fs::symlink(volume, &pg_wal).map_err(file("link to the WAL volume", &pg_wal))?;
    Ok(true)
}

/// Copies every entry of `from` into `to`, directories recursively.
fn copy_content(from: &Path, to: &Path) -> Result<(), Error> {
    let entries = fs::read_dir(from).map_err(|source| Error {
        action: "read",
        path: from.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error {
            action: "read",
            path: from.to_owned(),
            source,
        })?;
        let source_path = entry.path();
        let target = to.join(entry.file_name());
        let copy_error = |source| Error {
            action: "copy to the WAL volume",
            path: source_path.clone(),
            source,
        };
        if fs::metadata(&source_path).map_err(copy_error)?.is_dir() {
            fs::create_dir_all(&target).map_err(|source| Error {
                action: "create",
                path: target.clone(),
                source,
            })?;
            copy_content(&source_path, &target)?;
        } else {
            fs::copy(&source_path, &target).map_err(|source| Error {
                action: "copy to the WAL volume",
                path: source_path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Removes everything inside `directory`, keeping it.
fn remove_content(directory: &Path) -> io::Result<()> {
    for entry in fs::read_dir(directory)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogOptions;

    #[test]
    fn pg_wal_moves_to_the_volume_and_becomes_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let pgdata = dir.path().join("pgdata");
        let volume = dir.path().join("wal").join("pg_wal");
        fs::create_dir_all(pgdata.join("pg_wal/archive_status")).unwrap();
        fs::write(pgdata.join("pg_wal/000000010000000000000004"), b"segment").unwrap();
        fs::write(pgdata.join("pg_wal/archive_status/x.done"), b"").unwrap();
        let log = Logger::to_writer(LogOptions::default(), Box::new(io::sink()));

        assert!(move_pg_wal(&log, &pgdata, &volume).unwrap());
        assert_eq!(fs::read_link(pgdata.join("pg_wal")).unwrap(), volume);
        assert_eq!(
            fs::read(volume.join("000000010000000000000004")).unwrap(),
            b"segment"
        );
        assert!(volume.join("archive_status/x.done").is_file());
        // Read through the link, as PostgreSQL will.
        assert!(pgdata.join("pg_wal/000000010000000000000004").is_file());
        // A second run (a retried Job) finds the link and does nothing.
        assert!(!move_pg_wal(&log, &pgdata, &volume).unwrap());
        assert!(volume.join("000000010000000000000004").is_file());
    }

    #[test]
    fn a_missing_pg_wal_is_created_and_linked() {
        let dir = tempfile::tempdir().unwrap();
        let pgdata = dir.path().join("pgdata");
        fs::create_dir_all(&pgdata).unwrap();
        let volume = dir.path().join("wal");
        let log = Logger::to_writer(LogOptions::default(), Box::new(io::sink()));
        assert!(move_pg_wal(&log, &pgdata, &volume).unwrap());
        assert_eq!(fs::read_link(pgdata.join("pg_wal")).unwrap(), volume);
    }
}
