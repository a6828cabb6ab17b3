//! Walking a directory tree into tar members in Barman's order: each directory's entry, then
//! its files, then its subdirectories (os.walk, top-down, unsorted). Symbolic links to
//! directories are neither stored nor followed; files that vanish mid-walk are skipped, as
//! PostgreSQL drops relations while a hot backup runs and WAL replay recreates them.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use super::rules::Rules;
use super::tarball::TarParts;

/// What a walk stored.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct WalkStats {
    pub files: u64,
    pub bytes: u64,
}

/// Adds the tree at `root` to `parts`, filtered by `rules`.
///
/// # Errors
/// I/O errors other than a vanished entry, and upload-side failures.
pub(super) fn walk(root: &Path, rules: &Rules, parts: &mut TarParts) -> io::Result<WalkStats> {
    let mut stats = WalkStats::default();
    walk_dir(root, ".", rules, parts, &mut stats)?;
    Ok(stats)
}

fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

fn walk_dir(
    dir: &Path,
    name: &str,
    rules: &Rules,
    parts: &mut TarParts,
    stats: &mut WalkStats,
) -> io::Result<()> {
    if rules.allows(name, true) {
        match fs::symlink_metadata(dir) {
            Ok(meta) => parts.add_dir(name, &meta)?,
            Err(e) if vanished(&e) => return Ok(()),
            Err(e) => return Err(with_path(e, dir)),
        }
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if vanished(&e) => return Ok(()),
        Err(e) => return Err(with_path(e, dir)),
    };
    // Files are added as the listing reaches them, as PostgreSQL's own base backup sends
    // them: a database's directory can hold millions, whose names need not all be held.
    // Only the subdirectories (a few) wait for the listing's end, to come after the files.
    let mut subdirs = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(with_path(e, dir)),
        };
        let file_name = entry.file_name().to_string_lossy().into_owned();
        // os.walk sorts by `is_dir()`, which follows links: a link to a directory is a
        // directory it will not descend into.
        let is_dir = fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        match (is_dir, is_link) {
            (true, true) => {}
            (true, false) => subdirs.push(file_name),
            (false, _) => {
                let member = format!("{name}/{file_name}");
                if rules.allows(&member, false) {
                    add_file(&entry.path(), &member, parts, stats)?;
                }
            }
        }
    }
    for sub in subdirs {
        let member = if name == "." {
            sub.clone()
        } else {
            format!("{name}/{sub}")
        };
        walk_dir(&dir.join(&sub), &member, rules, parts, stats)?;
    }
    Ok(())
}

/// Adds one non-directory entry as what it is: a link as a link, a file with its content.
pub(super) fn add_file(
    path: &Path,
    member: &str,
    parts: &mut TarParts,
    stats: &mut WalkStats,
) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if vanished(&e) => return Ok(()),
        Err(e) => return Err(with_path(e, path)),
    };
    if meta.file_type().is_symlink() {
        let target = match fs::read_link(path) {
            Ok(target) => target,
            Err(e) if vanished(&e) => return Ok(()),
            Err(e) => return Err(with_path(e, path)),
        };
        return parts.add_symlink(member, &meta, &target);
    }
    if !meta.is_file() {
        tracing::debug!("skipping {}: not a regular file", path.display());
        return Ok(());
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if vanished(&e) => return Ok(()),
        Err(e) => return Err(with_path(e, path)),
    };
    tracing::debug!("adding {member}");
    stats.bytes += parts.add_file(member, file)?;
    stats.files += 1;
    Ok(())
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use tokio::sync::mpsc;

    use super::*;
    use crate::backup::tarball::tests::{collect, names};
    use crate::progress::ProgressHandle;

    /// Barman's order (os.walk, top-down): a directory's entry, then its files, then its
    /// subdirectories, each with its own entry first; a link to a directory is skipped.
    #[test]
    fn a_directory_comes_before_its_files_and_its_files_before_its_subdirectories() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for dir in ["base/1", "base/2", "global"] {
            fs::create_dir_all(r.join(dir)).unwrap();
        }
        for file in [
            "PG_VERSION",
            "base/1/1259",
            "base/1/1249",
            "base/2/1259",
            "global/x",
        ] {
            fs::write(r.join(file), file).unwrap();
        }
        for i in 0..50 {
            fs::write(r.join(format!("base/f{i}")), "f").unwrap();
        }
        symlink(r.join("base"), r.join("dir_link")).unwrap();
        symlink(r.join("PG_VERSION"), r.join("file_link")).unwrap();

        let (tx, rx) = mpsc::channel(64);
        let reader = std::thread::spawn(move || collect(rx));
        let mut parts = TarParts::new("data", None, u64::MAX, tx, ProgressHandle::silent());
        let stats = walk(r, &Rules::pgdata(Vec::new()), &mut parts).unwrap();
        parts.finish().unwrap();
        let got = reader.join().unwrap();
        let members: Vec<String> = got
            .iter()
            .flat_map(|(t, bytes)| names(bytes, t.compression))
            .map(|m| m.trim_end_matches('/').to_string())
            .collect();

        assert_eq!(stats.files, 55, "{members:?}");
        assert!(
            !members.iter().any(|m| m.starts_with("dir_link")),
            "{members:?}"
        );
        assert!(members.contains(&"file_link".to_string()), "{members:?}");
        let at = |name: &str| {
            members
                .iter()
                .position(|m| m == name)
                .unwrap_or_else(|| panic!("{name} missing from {members:?}"))
        };
        for (dir, entries) in [
            ("base", &["base/f0", "base/f49", "base/1", "base/2"][..]),
            ("base/1", &["base/1/1259", "base/1/1249"][..]),
            ("global", &["global/x"][..]),
        ] {
            for entry in entries {
                assert!(at(dir) < at(entry), "{dir} after {entry}: {members:?}");
            }
        }
        // Every file of base/ before the first of its subdirectories.
        let last_file = (0..50).map(|i| at(&format!("base/f{i}"))).max().unwrap();
        assert!(last_file < at("base/1").min(at("base/2")), "{members:?}");
        assert!(
            at("PG_VERSION") < at("base").min(at("global")),
            "{members:?}"
        );
    }
}
