//! What to download and where to put it: the tarball parts of a backup found in its
//! directory listing, and the directory each set of parts is unpacked into.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path as FsPath, PathBuf};

use object_store::path::Path;

use crate::catalog::BackupInfo;
use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::layout::Tarball;
use crate::postgres::Tablespace;

/// One tarball part to download and unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub key: Path,
    pub compression: Option<Compression>,
}

/// The parts of a backup: PGDATA's, then each tablespace's, each list in extraction order
/// (the part without a counter first, then `_0001`, `_0002` ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub data: Vec<Part>,
    pub tablespaces: Vec<(Tablespace, Vec<Part>)>,
}

/// Matches the objects of `backup_dir` (in listing order) to the tarballs the backup needs.
///
/// Like Barman, an object whose name starts with a wanted base (`data`, a tablespace oid) but
/// has an extension the restore side cannot read is skipped with a warning, and when two
/// objects name the same part the one listed last wins.
///
/// Every base's parts must be numbered 0, 1, 2 ... without a gap: Barman and we number them
/// so, and a part missing in between would restore with files missing, so it is refused
/// here, before anything is downloaded (a missing last part is caught later, see
/// `check_complete`).
///
/// # Errors
/// [`Error::MissingBackupFile`] naming the first part missing from PGDATA or a tablespace.
pub(crate) fn find_parts(
    backup_id: &str,
    backup_dir: &Path,
    objects: &[Path],
    info: &BackupInfo,
    server: &str,
) -> Result<Plan> {
    let (plan, mut missing) = collect_parts(backup_id, backup_dir, objects, info, server);
    match missing.is_empty() {
        true => Ok(plan),
        false => Err(missing.swap_remove(0)),
    }
}

/// The parts [`find_parts`] finds, and an [`Error::MissingBackupFile`] for every part
/// missing below the last one of each base (in PGDATA's, then each tablespace's order), so
/// that a verification can name every one and still read the others.
pub(crate) fn collect_parts(
    backup_id: &str,
    backup_dir: &Path,
    objects: &[Path],
    info: &BackupInfo,
    server: &str,
) -> (Plan, Vec<Error>) {
    let tablespaces = info.tablespaces.clone().unwrap_or_default();
    let mut bases: BTreeMap<String, BTreeMap<u32, Part>> = BTreeMap::new();
    bases.insert("data".into(), BTreeMap::new());
    for t in &tablespaces {
        bases.insert(t.oid.to_string(), BTreeMap::new());
    }
    for key in objects {
        let Some(name) = key.filename() else { continue };
        match Tarball::parse(name) {
            Some(t) if bases.contains_key(&t.base) => {
                tracing::info!("Found file from backup '{backup_id}' of server '{server}': {key}");
                let part = Part {
                    key: key.clone(),
                    compression: t.compression,
                };
                if let Some(previous) = bases.get_mut(&t.base).and_then(|p| p.insert(t.index, part))
                {
                    tracing::warn!(
                        "'{key}' replaces '{}', which names the same part",
                        previous.key
                    );
                }
            }
            _ => {
                // Barman's rule for "one of ours, but unreadable": a wanted base followed by
                // '.' or '_'.
                let ours = bases.keys().find_map(|base| {
                    name.strip_prefix(base.as_str())
                        .filter(|rest| rest.starts_with(['.', '_']))
                });
                if let Some(rest) = ours {
                    let ext = match rest.strip_prefix('.') {
                        Some(ext) => ext,
                        None => rest.split_once('.').map_or(rest, |(_, ext)| ext),
                    };
                    tracing::warn!("Skipping unknown extension: {ext}");
                }
            }
        }
    }
    let mut missing = Vec::new();
    let mut take = |base: &str| -> Vec<Part> {
        let parts = bases.remove(base).unwrap_or_default();
        // Keys are in order: every index below the last that is not a key is missing.
        let last = parts.keys().next_back().map_or(0, |&i| i);
        for index in (0..=last).filter(|i| !parts.contains_key(i)) {
            let name = Tarball {
                base: base.to_string(),
                index,
                compression: None,
            }
            .file_name();
            // The message adds `.*`: any extension would have done.
            let stem = name.strip_suffix(".tar").unwrap_or(&name);
            missing.push(Error::MissingBackupFile {
                base: backup_dir.clone().join(stem).to_string(),
                server: server.to_string(),
            });
        }
        parts.into_values().collect()
    };
    let data = take("data");
    let mut with_parts = Vec::new();
    for t in tablespaces {
        let parts = take(&t.oid.to_string());
        with_parts.push((t, parts));
    }
    (
        Plan {
            data,
            tablespaces: with_parts,
        },
        missing,
    )
}

/// Where each tablespace goes: its recorded location, or the `--tablespace` rule for its
/// name made absolute with symbolic links resolved (Python's `os.path.realpath`).
///
/// # Errors
/// When the current directory is needed and unknown.
pub(crate) fn tablespace_target(
    tablespace: &Tablespace,
    rules: &BTreeMap<String, PathBuf>,
) -> io::Result<PathBuf> {
    match rules.get(&tablespace.name) {
        Some(location) => realpath(location),
        None => Ok(PathBuf::from(&tablespace.location)),
    }
}

/// `os.path.realpath` for a path that may not exist yet: absolute, `.` and `..` applied, and
/// every symbolic link that exists along the way resolved.
pub(crate) fn realpath(path: &FsPath) -> io::Result<PathBuf> {
    let absolute = std::env::current_dir()?.join(path);
    let mut out = PathBuf::from("/");
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => {
                out.push(part);
                let is_link = fs::symlink_metadata(&out).is_ok_and(|m| m.file_type().is_symlink());
                if is_link {
                    if let Ok(resolved) = fs::canonicalize(&out) {
                        out = resolved;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Refuses a destination that exists and holds anything (Barman's rule for PGDATA and each
/// tablespace).
///
/// # Errors
/// [`Error::DestinationNotEmpty`], or an I/O error when it cannot be read (or is a file).
pub(crate) fn check_empty(dir: &FsPath) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(Error::DestinationNotEmpty {
                path: dir.to_path_buf(),
            }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("read directory", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(tablespaces: &[(&str, u32, &str)]) -> BackupInfo {
        BackupInfo {
            tablespaces: Some(
                tablespaces
                    .iter()
                    .map(|(n, o, l)| Tablespace {
                        name: n.to_string(),
                        oid: *o,
                        location: l.to_string(),
                    })
                    .collect(),
            ),
            ..BackupInfo::default()
        }
    }

    fn listing(names: &[&str]) -> (Path, Vec<Path>) {
        let dir = Path::from("p/pg/base/20261125T035049");
        let keys = names.iter().map(|n| dir.clone().join(*n)).collect();
        (dir, keys)
    }

    fn names(parts: &[Part]) -> Vec<&str> {
        parts.iter().map(|p| p.key.filename().unwrap()).collect()
    }

    #[test]
    fn parts_in_extraction_order_per_base() {
        let (dir, keys) = listing(&[
            "16384.tar.gz",
            "16384_0001.tar.gz",
            "1.tar",
            "backup.info",
            "data.tar.gz",
            "data_0001.tar.gz",
            "data_0002.tar.gz",
        ]);
        let i = info(&[("tbs", 16384, "/t/tbs"), ("small", 1, "/t/small")]);
        let plan = find_parts("20261125T035049", &dir, &keys, &i, "pg").unwrap();
        assert_eq!(
            names(&plan.data),
            ["data.tar.gz", "data_0001.tar.gz", "data_0002.tar.gz"]
        );
        assert_eq!(plan.data[0].compression, Some(Compression::Gzip));
        assert_eq!(plan.tablespaces[0].0.name, "tbs");
        assert_eq!(
            names(&plan.tablespaces[0].1),
            ["16384.tar.gz", "16384_0001.tar.gz"]
        );
        assert_eq!(names(&plan.tablespaces[1].1), ["1.tar"]);
    }

    #[test]
    fn unknown_extensions_are_skipped_then_missing() {
        let (dir, keys) = listing(&["backup.info", "data.tar.xz", "data_0001.tar"]);
        let err = find_parts("20261125T035049", &dir, &keys, &info(&[]), "pg").unwrap_err();
        assert_eq!(
            err.to_string().split(':').next().unwrap(),
            "Missing file p/pg/base/20261125T035049/data.* for server pg"
        );
        assert_eq!(err.class(), crate::error::ExitClass::Operation);
    }

    #[test]
    fn a_missing_tablespace_archive_is_an_error() {
        let (dir, keys) = listing(&["data.tar", "backup.info"]);
        let err = find_parts("x", &dir, &keys, &info(&[("tbs", 16384, "/t")]), "pg").unwrap_err();
        assert!(
            err.to_string().contains("base/20261125T035049/16384.*"),
            "{err}"
        );
    }

    #[test]
    fn a_gap_in_the_parts_is_a_missing_file() {
        let i = info(&[("tbs", 16384, "/t")]);
        for (names, missing) in [
            (
                &["data.tar", "data_0002.tar", "16384.tar"][..],
                "base/20261125T035049/data_0001.*",
            ),
            (
                &[
                    "data.tar",
                    "16384.tar.gz",
                    "16384_0002.tar.gz",
                    "16384_0003.tar.gz",
                ],
                "base/20261125T035049/16384_0001.*",
            ),
            (
                &["data_0001.tar", "16384.tar"],
                "base/20261125T035049/data.*",
            ),
        ] {
            let (dir, keys) = listing(names);
            let err = find_parts("x", &dir, &keys, &i, "pg").unwrap_err();
            assert!(matches!(err, Error::MissingBackupFile { .. }), "{err}");
            assert!(err.to_string().contains(missing), "{names:?}: {err}");
        }
    }

    #[test]
    fn the_last_listed_duplicate_wins() {
        let (dir, keys) = listing(&["data.tar", "data.tar.gz"]);
        let plan = find_parts("x", &dir, &keys, &info(&[]), "pg").unwrap();
        assert_eq!(names(&plan.data), ["data.tar.gz"]);
    }

    #[test]
    fn realpath_resolves_links_and_dots_of_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(real.join("a")).unwrap();
        std::os::unix::fs::symlink(real.join("a"), real.join("link")).unwrap();
        assert_eq!(
            realpath(&real.join("link/./new/../x")).unwrap(),
            real.join("a/x")
        );
        let rules = BTreeMap::from([("tbs".to_string(), real.join("link"))]);
        let t = Tablespace {
            name: "tbs".into(),
            oid: 1,
            location: "/orig".into(),
        };
        assert_eq!(tablespace_target(&t, &rules).unwrap(), real.join("a"));
        assert_eq!(
            tablespace_target(&t, &BTreeMap::new()).unwrap(),
            PathBuf::from("/orig")
        );
    }

    #[test]
    fn destinations_must_be_missing_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_empty(&dir.path().join("missing")).is_ok());
        assert!(check_empty(dir.path()).is_ok());
        fs::write(dir.path().join("f"), "x").unwrap();
        let err = check_empty(dir.path()).unwrap_err();
        assert!(matches!(err, Error::DestinationNotEmpty { .. }));
        assert!(err.to_string().starts_with(&format!(
            "Destination {} already exists and it is not empty",
            dir.path().display()
        )));
        assert_eq!(
            check_empty(&dir.path().join("f")).unwrap_err().class(),
            crate::error::ExitClass::General
        );
    }
}
