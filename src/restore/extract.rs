//! Unpacking tar streams into a target directory without ever writing outside it.
//!
//! Barman unpacks with Python's `tarfile.extractall` and no filter, which trusts the archive
//! completely. A backup is only as trustworthy as the bucket it sits in, so we refuse:
//! - members with an absolute path or a `..` component;
//! - symbolic links whose target is absolute or climbs out of the target directory, and
//!   (checked once everything is unpacked) links that resolve outside it through other links;
//! - hard links to anything outside, or to a symbolic link (the copy would be re-read from
//!   another directory and could then point elsewhere);
//! - writing into or through a symbolic link unpacked earlier: every directory on a member's
//!   path must be a real directory, and files are opened with `O_NOFOLLOW`.
//!
//! Otherwise this does what `tarfile` does for the member types a Barman backup contains:
//! directories, regular files, symbolic and hard links, with the mode and the (sub-second,
//! from the pax header) modification time of the archive. Ownership is taken from the archive
//! only when running as root, by user and group name first and by number when the name is
//! unknown here. Directory attributes are applied at the very end, deepest first, so a
//! read-only or timestamped directory is not disturbed by what is unpacked into it later;
//! this also lets several parts of one backup be unpacked into the same target at once.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, DirBuilder, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::OFlag;
use tar::EntryType;

use crate::durable::CopyError;
use crate::postgres::backup_manifest::{self, ChecksumAlgorithm, Checksummer};

/// Why unpacking stopped.
#[derive(Debug)]
pub(crate) enum ExtractError {
    /// The archive stream could not be read (download, decompression or tar format).
    Read(io::Error),
    /// A local file operation failed.
    Write {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A member that would escape the target, or write through a link.
    Unsafe { entry: String, reason: String },
    /// The stream ended cleanly but the archive did not: it lacks its end-of-archive marker,
    /// or something other than zeros follows it (the reason completes "the archive ...").
    Truncated(&'static str),
}

type Result<T, E = ExtractError> = std::result::Result<T, E>;

fn write_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ExtractError {
    let path = path.to_path_buf();
    move |source| ExtractError::Write {
        action,
        path,
        source,
    }
}

/// What one archive (or a whole target) contained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Regular files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Directories created.
    pub directories: u64,
    /// Symbolic and hard links made.
    pub links: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.directories += o.directories;
        self.links += o.links;
    }
}

/// A uid/gid pair.
pub(crate) type Owner = (u32, u32);

/// Attributes applied to a member once its content is in place.
#[derive(Debug, Clone, Copy)]
struct Attrs {
    mode: u32,
    mtime: SystemTime,
    /// Set only when running as root.
    owner: Option<Owner>,
}

/// User and group names resolved to local ids, once each.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    users: Mutex<HashMap<String, Option<u32>>>,
    groups: Mutex<HashMap<String, Option<u32>>>,
}

impl Owners {
    /// Who owns a member: the local ids of its user and group names when they exist here,
    /// else the numbers in the archive (what `tarfile` does as root).
    fn resolve(&self, uname: &str, gname: &str, uid: u64, gid: u64) -> Owner {
        let user = lookup(&self.users, uname, |n| {
            nix::unistd::User::from_name(n)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
        });
        let group = lookup(&self.groups, gname, |n| {
            nix::unistd::Group::from_name(n)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
        });
        // An id beyond 32 bits cannot exist here; "nobody" is the safe owner for it.
        let numeric = |id: u64| u32::try_from(id).unwrap_or(65534);
        (
            user.unwrap_or_else(|| numeric(uid)),
            group.unwrap_or_else(|| numeric(gid)),
        )
    }
}

fn lookup(
    cache: &Mutex<HashMap<String, Option<u32>>>,
    name: &str,
    find: impl FnOnce(&str) -> Option<u32>,
) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    let mut cache = cache.lock().expect("owner cache poisoned");
    *cache.entry(name.to_string()).or_insert_with(|| find(name))
}

/// Whether this process may (and so, like `tarfile`, will) give files their archived owners.
pub(crate) fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Unpacks archives into one target directory. Shared by the threads unpacking the parts of
/// one backup into the same target; call [`Extractor::finish`] once they are all done.
pub(crate) struct Extractor {
    root: PathBuf,
    owners: Option<Owners>,
    /// Members written under a temporary name until [`Extractor::release`].
    held_back: Vec<PathBuf>,
    /// Regular files whose absence [`Extractor::missing`] reports.
    required: Vec<PathBuf>,
    state: Mutex<State>,
}

/// The temporary name of a held-back member.
fn held_name(rel: &Path) -> PathBuf {
    let mut name = rel.file_name().unwrap_or_default().to_os_string();
    name.push(".barman-cloud-partial");
    rel.with_file_name(name)
}

#[derive(Default)]
struct State {
    /// Every directory known to be real, relative to the root (empty for the root itself),
    /// with the attributes its archive member asked for; `None` when no member named it.
    dirs: BTreeMap<PathBuf, Option<Attrs>>,
    /// The symbolic links created, checked again by `finish`.
    symlinks: Vec<PathBuf>,
    /// Held-back members written so far.
    held: Vec<PathBuf>,
    /// Required members written so far.
    found: Vec<PathBuf>,
}

impl Extractor {
    /// An extractor for the existing directory `root`; `take_owners` when running as root.
    ///
    /// # Errors
    /// When `root` cannot be resolved.
    pub(crate) fn new(root: &Path, take_owners: bool) -> io::Result<Extractor> {
        let root = fs::canonicalize(root)?;
        let mut state = State::default();
        state.dirs.insert(PathBuf::new(), None);
        Ok(Extractor {
            root,
            owners: take_owners.then(Owners::default),
            held_back: Vec::new(),
            required: Vec::new(),
            state: Mutex::new(state),
        })
    }

    /// Writes the regular file `rel` under a temporary name until [`Extractor::release`], so
    /// that an interrupted restore cannot pass for a complete one.
    pub(crate) fn hold_back(mut self, rel: impl Into<PathBuf>) -> Extractor {
        self.held_back.push(rel.into());
        self
    }

    /// Notes whether an archive held the regular file `rel`; see [`Extractor::missing`].
    pub(crate) fn require(mut self, rel: impl Into<PathBuf>) -> Extractor {
        self.required.push(rel.into());
        self
    }

    /// The required files that no archive unpacked so far held.
    pub(crate) fn missing(&self) -> Vec<PathBuf> {
        let state = self.state();
        self.required
            .iter()
            .filter(|rel| !state.found.contains(rel))
            .cloned()
            .collect()
    }

    /// Moves the held-back files into place, durably. Call once everything else is on disk.
    ///
    /// # Errors
    /// When a rename or a flush fails.
    pub(crate) fn release(&self) -> Result<()> {
        let held = std::mem::take(&mut self.state().held);
        for rel in held {
            let (from, to) = (self.root.join(held_name(&rel)), self.root.join(&rel));
            let dir = to.parent().unwrap_or(&self.root);
            // The rename touches the directory; give it back the time the archive set.
            let times = fs::metadata(dir)
                .and_then(|m| {
                    Ok(FileTimes::new()
                        .set_accessed(m.accessed()?)
                        .set_modified(m.modified()?))
                })
                .map_err(write_error("inspect", dir))?;
            fs::rename(&from, &to).map_err(write_error("rename", &from))?;
            File::open(dir)
                .and_then(|d| {
                    d.set_times(times)?;
                    d.sync_all()
                })
                .map_err(write_error("flush", dir))?;
        }
        Ok(())
    }

    /// The target directory (resolved).
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("extractor state poisoned")
    }

    /// Unpacks one tar stream, reading it to its very end (so a truncated or corrupt
    /// compressed stream is noticed even after the last member).
    ///
    /// # Errors
    /// [`ExtractError`]; what was unpacked before the error stays in place.
    pub(crate) fn extract(&self, reader: impl Read) -> Result<Stats> {
        let mut archive = tar::Archive::new(reader);
        let mut stats = Stats::default();
        // One large buffer per stream: members are copied in big writes, not 8 KiB ones.
        let mut buf = vec![0u8; 1 << 20];
        for entry in archive.entries().map_err(ExtractError::Read)? {
            let mut entry = entry.map_err(ExtractError::Read)?;
            self.member(&mut entry, &mut buf, &mut stats)?;
        }
        check_end(archive.into_inner())?;
        Ok(stats)
    }

    fn member<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        buf: &mut [u8],
        stats: &mut Stats,
    ) -> Result<()> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let unsafe_entry = |reason: String| ExtractError::Unsafe {
            entry: name.clone(),
            reason,
        };
        let path = entry.path().map_err(ExtractError::Read)?.into_owned();
        let rel = relative(&path).map_err(unsafe_entry)?;
        let mut kind = entry.header().entry_type();
        // Old-style archives mark directories as regular files whose name ends in '/'.
        if kind == EntryType::Regular && name.ends_with('/') {
            kind = EntryType::Directory;
        }
        match kind {
            EntryType::Directory => {
                let attrs = self.attrs(entry)?;
                self.ensure_dir(&rel, &name)?;
                self.state().dirs.insert(rel, Some(attrs));
                stats.directories += 1;
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let attrs = self.attrs(entry)?;
                // A sparse member's stored size is not its length; others must be whole.
                let expected = (kind != EntryType::GNUSparse).then(|| entry.size());
                let written = if self.held_back.contains(&rel) {
                    let n = self.file(&held_name(&rel), &name, entry, attrs, buf)?;
                    self.state().held.push(rel.clone());
                    n
                } else {
                    self.file(&rel, &name, entry, attrs, buf)?
                };
                if expected.is_some_and(|e| e != written) {
                    return Err(ExtractError::Read(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the archive ends inside '{name}'"),
                    )));
                }
                if self.required.contains(&rel) {
                    self.state().found.push(rel);
                }
                stats.bytes += written;
                stats.files += 1;
            }
            EntryType::Symlink => {
                let attrs = self.attrs(entry)?;
                let target = link_name(entry)?;
                self.symlink(&rel, &name, &target, attrs.owner)?;
                stats.links += 1;
            }
            EntryType::Link => {
                let target = link_name(entry)?;
                self.hard_link(&rel, &name, &target)?;
                stats.links += 1;
            }
            EntryType::XGlobalHeader | EntryType::XHeader => {}
            other => tracing::warn!(
                "skipping '{name}': tar member type {:?} is not part of a PostgreSQL backup",
                other.as_byte() as char
            ),
        }
        Ok(())
    }

    fn attrs<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Attrs> {
        let header = entry.header();
        let mode = header.mode().map_err(ExtractError::Read)? & 0o7777;
        let seconds = header.mtime().map_err(ExtractError::Read)?;
        let (mut uname, mut gname) = (
            header.username().ok().flatten().unwrap_or("").to_string(),
            header.groupname().ok().flatten().unwrap_or("").to_string(),
        );
        // Ids are only read when they will be used, as tarfile does.
        let ids = match self.owners {
            Some(_) => Some((
                header.uid().map_err(ExtractError::Read)?,
                header.gid().map_err(ExtractError::Read)?,
            )),
            None => None,
        };
        let mut precise_mtime = None;
        if let Some(extensions) = entry.pax_extensions().map_err(ExtractError::Read)? {
            for ext in extensions.flatten() {
                match (ext.key(), ext.value()) {
                    (Ok("mtime"), Ok(v)) => precise_mtime = parse_pax_time(v),
                    (Ok("uname"), Ok(v)) => uname = v.to_string(),
                    (Ok("gname"), Ok(v)) => gname = v.to_string(),
                    _ => {}
                }
            }
        }
        let mtime = precise_mtime.unwrap_or(UNIX_EPOCH + Duration::from_secs(seconds));
        let owner = self
            .owners
            .as_ref()
            .zip(ids)
            .map(|(o, (uid, gid))| o.resolve(&uname, &gname, uid, gid));
        Ok(Attrs { mode, mtime, owner })
    }

    /// Makes sure every directory from the root down to `rel` exists and is a real directory.
    fn ensure_dir(&self, rel: &Path, name: &str) -> Result<()> {
        let mut prefix = PathBuf::new();
        for component in rel.components() {
            prefix.push(component);
            if self.state().dirs.contains_key(&prefix) {
                continue;
            }
            let full = self.root.join(&prefix);
            let is_real_dir = |meta: &fs::Metadata| {
                if meta.file_type().is_symlink() {
                    Err(ExtractError::Unsafe {
                        entry: name.to_string(),
                        reason: format!(
                            "it would be written through the symbolic link '{}'",
                            prefix.display()
                        ),
                    })
                } else if meta.is_dir() {
                    Ok(())
                } else {
                    Err(ExtractError::Write {
                        action: "create directory",
                        path: full.clone(),
                        source: io::Error::from(io::ErrorKind::NotADirectory),
                    })
                }
            };
            match fs::symlink_metadata(&full) {
                Ok(meta) => is_real_dir(&meta)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match DirBuilder::new().mode(0o700).create(&full) {
                        Ok(()) => {}
                        // Another part created it meanwhile: it must still be a directory.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            is_real_dir(
                                &fs::symlink_metadata(&full)
                                    .map_err(write_error("inspect", &full))?,
                            )?;
                        }
                        Err(e) => return Err(write_error("create directory", &full)(e)),
                    }
                }
                Err(e) => return Err(write_error("inspect", &full)(e)),
            }
            self.state().dirs.entry(prefix.clone()).or_insert(None);
        }
        Ok(())
    }

    /// Where a new non-directory member goes: its parent directories exist, and nothing but
    /// (for files) a regular file is in its place.
    fn prepare(&self, rel: &Path, name: &str, what: &str) -> Result<PathBuf> {
        let parent = rel.parent().ok_or_else(|| ExtractError::Unsafe {
            entry: name.to_string(),
            reason: format!("a {what} cannot replace the target directory itself"),
        })?;
        self.ensure_dir(parent, name)?;
        let full = self.root.join(rel);
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => Err(ExtractError::Unsafe {
                entry: name.to_string(),
                reason: "it would be written through a symbolic link unpacked earlier".into(),
            }),
            Ok(meta) if meta.is_file() && what == "file" => Ok(full),
            Ok(_) => Err(ExtractError::Write {
                action: "create",
                path: full,
                source: io::Error::from(io::ErrorKind::AlreadyExists),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(full),
            Err(e) => Err(write_error("inspect", &full)(e)),
        }
    }

    fn file(
        &self,
        rel: &Path,
        name: &str,
        content: &mut impl Read,
        attrs: Attrs,
        buf: &mut [u8],
    ) -> Result<u64> {
        let full = self.prepare(rel, name, "file")?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(OFlag::O_NOFOLLOW.bits())
            .open(&full)
            .map_err(|e| match e.raw_os_error() {
                Some(code) if code == nix::errno::Errno::ELOOP as i32 => ExtractError::Unsafe {
                    entry: name.to_string(),
                    reason: "it would be written through a symbolic link".into(),
                },
                _ => write_error("create", &full)(e),
            })?;
        let written = crate::durable::copy_into(content, &file, buf).map_err(|e| match e {
            CopyError::Read(e) => ExtractError::Read(e),
            CopyError::Write(e) => write_error("write", &full)(e),
        })?;
        apply(&file, &attrs, &full)?;
        Ok(written)
    }

    fn symlink(&self, rel: &Path, name: &str, target: &Path, owner: Option<Owner>) -> Result<()> {
        let outside = |why: &str| ExtractError::Unsafe {
            entry: name.to_string(),
            reason: format!(
                "it is a symbolic link to '{}', {why} the target directory",
                target.display()
            ),
        };
        if target.has_root() {
            return Err(outside("an absolute path outside"));
        }
        let mut depth = rel.components().count().saturating_sub(1);
        for component in target.components() {
            match component {
                Component::ParentDir if depth == 0 => return Err(outside("which climbs out of")),
                Component::ParentDir => depth -= 1,
                Component::Normal(_) => depth += 1,
                _ => {}
            }
        }
        let full = self.prepare(rel, name, "symbolic link")?;
        std::os::unix::fs::symlink(target, &full)
            .map_err(write_error("create symbolic link", &full))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&full, Some(uid), Some(gid))
                .map_err(write_error("change the owner of", &full))?;
        }
        self.state().symlinks.push(rel.to_path_buf());
        Ok(())
    }

    fn hard_link(&self, rel: &Path, name: &str, target: &Path) -> Result<()> {
        let refuse = |reason: String| ExtractError::Unsafe {
            entry: name.to_string(),
            reason,
        };
        let source_rel = relative(target).map_err(|why| {
            refuse(format!(
                "it is a hard link to '{}', whose {why}",
                target.display()
            ))
        })?;
        // The source must be reached through real directories only, and must not itself be a
        // symbolic link.
        let mut prefix = self.root.clone();
        for component in source_rel.components() {
            prefix.push(component);
            match fs::symlink_metadata(&prefix) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(refuse(format!(
                        "it is a hard link through or to the symbolic link '{}'",
                        target.display()
                    )));
                }
                Ok(_) => {}
                Err(e) => return Err(write_error("find the hard link source", &prefix)(e)),
            }
        }
        let full = self.prepare(rel, name, "hard link")?;
        fs::hard_link(&prefix, &full).map_err(write_error("create hard link", &full))
    }

    /// Applies the directory attributes, deepest first, and checks that no symbolic link
    /// unpacked here resolves outside the target. `implicit_owner` is given to directories no
    /// member described (created only to hold what is below them), when running as root;
    /// without one, the owner the archive gives the target directory itself.
    ///
    /// # Errors
    /// [`ExtractError`]; an offending link is removed before the error is returned.
    pub(crate) fn finish(&self, implicit_owner: Option<Owner>) -> Result<()> {
        let (dirs, symlinks) = {
            let mut state = self.state();
            (
                std::mem::take(&mut state.dirs),
                std::mem::take(&mut state.symlinks),
            )
        };
        // As root, directories no member described (pg_wal/archive_status, which Barman's
        // rules leave out but walk into) go to the owner the archive gives its root, else
        // they stay root's and PostgreSQL cannot write there (its archiver stops at once).
        let implicit_owner = implicit_owner.or_else(|| {
            dirs.get(Path::new(""))
                .and_then(Option::as_ref)
                .and_then(|attrs| attrs.owner)
        });
        for rel in &symlinks {
            let full = self.root.join(rel);
            if let Ok(resolved) = fs::canonicalize(&full) {
                if !resolved.starts_with(&self.root) {
                    let _ = fs::remove_file(&full);
                    return Err(ExtractError::Unsafe {
                        entry: rel.display().to_string(),
                        reason: format!(
                            "it is a symbolic link that resolves to '{}', outside the target \
                             directory, through other links",
                            resolved.display()
                        ),
                    });
                }
            }
        }
        for (rel, attrs) in dirs.iter().rev() {
            let full = self.root.join(rel);
            let dir = OpenOptions::new()
                .read(true)
                .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY).bits())
                .open(&full)
                .map_err(write_error("open directory", &full))?;
            match attrs {
                Some(attrs) => apply(&dir, attrs, &full)?,
                None => {
                    if let Some((uid, gid)) = implicit_owner {
                        std::os::unix::fs::fchown(&dir, Some(uid), Some(gid))
                            .map_err(write_error("change the owner of", &full))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reads what follows the last member: a whole archive has its end-of-archive marker there.
///
/// Reads one tar stream to its very end as [`Extractor::extract`] would, writing nothing:
/// every member's content is read in full and must be as long as its header says, and the
/// archive must end with its end-of-archive marker. Returns what it held, which of
/// `wanted` (member paths) were regular files in it, each file's checksums and the backup
/// manifest it held.
///
/// # Errors
/// [`ExtractError::Read`] or [`ExtractError::Truncated`].
pub(crate) fn scan(reader: impl Read, wanted: &[&str]) -> Result<Scanned> {
    let mut archive = tar::Archive::new(reader);
    let mut stats = Stats::default();
    let mut found = Vec::new();
    let mut files = Vec::new();
    let mut manifest = None;
    let mut buf = vec![0u8; 1 << 20];
    for entry in archive.entries().map_err(ExtractError::Read)? {
        let mut entry = entry.map_err(ExtractError::Read)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        match entry.header().entry_type() {
            EntryType::Directory => stats.directories += 1,
            EntryType::Symlink | EntryType::Link => stats.links += 1,
            kind @ (EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse) => {
                let expected = entry.size();
                let rel = entry.path().ok().and_then(|p| relative(&p).ok());
                let is_manifest = rel.as_deref() == Some(Path::new(backup_manifest::FILE_NAME));
                // The manifest's algorithm is known only once its member, the last of the
                // last data part, is read: until then both are taken (CRC-32C is nearly
                // free, SHA-256 runs on the CPU's SHA extensions).
                let mut sum =
                    Checksummer::new(&[ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Sha256]);
                let mut kept = Vec::new();
                let mut read = 0u64;
                loop {
                    let n = entry.read(&mut buf).map_err(ExtractError::Read)?;
                    if n == 0 {
                        break;
                    }
                    sum.update(&buf[..n]);
                    if is_manifest {
                        kept.extend_from_slice(&buf[..n]);
                    }
                    read += n as u64;
                }
                if kind != EntryType::GNUSparse && read != expected {
                    return Err(ExtractError::Read(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the archive ends inside '{name}'"),
                    )));
                }
                if let Some(w) = wanted.iter().find(|w| rel.as_deref() == Some(Path::new(w))) {
                    found.push(w.to_string());
                }
                if is_manifest {
                    manifest = Some(kept);
                } else {
                    files.push(ScannedFile {
                        path: rel.unwrap_or_default(),
                        size: read,
                        checksums: sum.finish(),
                    });
                }
                stats.files += 1;
                stats.bytes += read;
            }
            _ => {}
        }
    }
    check_end(archive.into_inner())?;
    Ok(Scanned {
        stats,
        found,
        files,
        manifest,
    })
}

/// A regular file [`scan`] read: its path relative to the archive's root, its size and its
/// checksums.
#[derive(Debug)]
pub(crate) struct ScannedFile {
    pub path: PathBuf,
    pub size: u64,
    pub checksums: Vec<backup_manifest::Checksum>,
}

/// What [`scan`] found in one archive.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub stats: Stats,
    /// Which of the wanted members were there.
    pub found: Vec<String>,
    /// Every regular file but the manifest.
    pub files: Vec<ScannedFile>,
    /// The `backup_manifest` member's content, when there was one.
    pub manifest: Option<Vec<u8>>,
}

/// The `tar` crate ends the entries both at the marker's first zero block and, silently, at a
/// clean end of the stream, and an uncompressed or snappy part cut at a member boundary ends
/// cleanly. So at least one more 512-byte block must follow (the marker's second; Python's
/// tarfile then pads to 10240 bytes), and nothing but zeros: a zero block followed by data is
/// a damaged header, whose members would otherwise be skipped in silence. Reading to the end
/// also lets a decoder check its own trailer.
fn check_end(mut rest: impl Read) -> Result<()> {
    let mut zeros = Zeros::default();
    match io::copy(&mut rest, &mut zeros) {
        Err(_) if zeros.other => Err(ExtractError::Truncated(
            "has data after a zero block, where only its end-of-archive marker may be",
        )),
        Err(e) => Err(ExtractError::Read(e)),
        Ok(n) if n < 512 => Err(ExtractError::Truncated(
            "ends without its end-of-archive marker",
        )),
        Ok(_) => Ok(()),
    }
}

/// A sink that takes only zeros: the first other byte fails the write, and says so.
#[derive(Default)]
struct Zeros {
    other: bool,
}

impl io::Write for Zeros {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.iter().any(|&b| b != 0) {
            self.other = true;
            return Err(io::Error::from(io::ErrorKind::InvalidData));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Owner, then mode (a change of owner clears set-id bits), then times, as `tarfile` orders
/// them; all through the open descriptor, so no path is looked up again.
fn apply(file: &File, attrs: &Attrs, path: &Path) -> Result<()> {
    if let Some((uid, gid)) = attrs.owner {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))
            .map_err(write_error("change the owner of", path))?;
    }
    file.set_permissions(Permissions::from_mode(attrs.mode))
        .map_err(write_error("change the mode of", path))?;
    file.set_times(
        FileTimes::new()
            .set_accessed(attrs.mtime)
            .set_modified(attrs.mtime),
    )
    .map_err(write_error("set the times of", path))
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<PathBuf> {
    entry
        .link_name()
        .map_err(ExtractError::Read)?
        .map(|p| p.into_owned())
        .ok_or_else(|| {
            ExtractError::Read(io::Error::new(
                io::ErrorKind::InvalidData,
                "a link member without a target",
            ))
        })
}

/// A member path made relative to the target: `.` components dropped, `..` and absolute
/// paths refused (the message completes "refusing to extract X: ...").
fn relative(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir => return Err("its path contains '..'".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("its path is absolute".into());
            }
        }
    }
    Ok(out)
}

/// A pax time: decimal seconds since the epoch, possibly negative, with up to nanoseconds.
fn parse_pax_time(value: &str) -> Option<SystemTime> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let secs: u64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{:0<9}", &frac[..frac.len().min(9)]);
    let offset = Duration::new(secs, nanos.parse().ok()?);
    if negative {
        UNIX_EPOCH.checked_sub(offset)
    } else {
        UNIX_EPOCH.checked_add(offset)
    }
}

#[cfg(test)]
mod tests;
