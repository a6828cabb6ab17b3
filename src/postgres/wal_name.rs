//! WAL file names, as PostgreSQL writes them and Barman accepts them.
//!
//! Four kinds share one grammar: a segment `TTTTTTTTLLLLLLLLSSSSSSSS` (timeline, log, segment
//! in hex), a backup history file `<segment>.XXXXXXXX.backup`, a `<segment>.partial` left by a
//! promotion, and a timeline history file `TTTTTTTT.history`. Hex digits may be either case;
//! the name keeps the case it was given, as Barman does.

use std::fmt;

/// What kind of WAL file a name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalKind {
    /// A 24-hex-digit segment.
    Segment,
    /// `<segment>.XXXXXXXX.backup`, written by `pg_backup_stop`.
    Backup,
    /// `<segment>.partial`, the last segment of a timeline left by promotion.
    Partial,
    /// `TTTTTTTT.history`, a timeline history file.
    History,
}

/// A validated WAL file name. Names order as their text does, which is how Barman compares
/// them (`begin_wal <= name`), so mixed-case names sort as Barman sorts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalName {
    name: String,
    kind: WalKind,
    timeline: u32,
    /// Log and segment numbers; zero for history files.
    log: u32,
    seg: u32,
}

/// A string that is not a WAL file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name} is an invalid name for a WAL file: expected a 24-hex-digit segment, \
     <segment>.partial, <segment>.XXXXXXXX.backup or XXXXXXXX.history"
)]
pub struct InvalidWalName {
    /// The rejected name.
    pub name: String,
}

fn hex8(s: &str) -> Option<u32> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(s, 16).ok())
        .flatten()
}

impl WalName {
    /// Parses a bare file name (no directory).
    ///
    /// # Errors
    /// [`InvalidWalName`] when the name matches none of the four forms.
    pub fn parse(name: &str) -> Result<Self, InvalidWalName> {
        Self::try_parse(name).ok_or_else(|| InvalidWalName {
            name: name.to_string(),
        })
    }

    fn try_parse(name: &str) -> Option<Self> {
        if let Some(tli) = name.strip_suffix(".history") {
            return Some(Self::new(name, WalKind::History, hex8(tli)?, 0, 0));
        }
        let segment = name.get(..24)?;
        let (kind, rest_ok) = match &name[24..] {
            "" => (WalKind::Segment, true),
            ".partial" => (WalKind::Partial, true),
            rest => {
                let off = rest.strip_prefix('.')?.strip_suffix(".backup")?;
                (WalKind::Backup, hex8(off).is_some())
            }
        };
        if !rest_ok {
            return None;
        }
        let (tli, log, seg) = (
            hex8(&segment[..8])?,
            hex8(&segment[8..16])?,
            hex8(&segment[16..])?,
        );
        Some(Self::new(name, kind, tli, log, seg))
    }

    fn new(name: &str, kind: WalKind, timeline: u32, log: u32, seg: u32) -> Self {
        Self {
            name: name.to_string(),
            kind,
            timeline,
            log,
            seg,
        }
    }

    /// A segment name from its parts, upper-case as PostgreSQL writes it.
    pub fn segment(timeline: u32, log: u32, seg: u32) -> Self {
        let name = format!("{timeline:08X}{log:08X}{seg:08X}");
        Self::new(&name, WalKind::Segment, timeline, log, seg)
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The kind of file.
    pub fn kind(&self) -> WalKind {
        self.kind
    }

    /// The timeline (the first eight hex digits).
    pub fn timeline(&self) -> u32 {
        self.timeline
    }

    /// The log number (the second eight hex digits); zero for history files.
    pub fn log(&self) -> u32 {
        self.log
    }

    /// The directory a WAL lives in under `wals/`: the timeline and log in upper-case hex,
    /// or `None` for history files, which sit directly under `wals/`.
    pub fn hash_dir(&self) -> Option<String> {
        (self.kind != WalKind::History).then(|| format!("{:08X}{:08X}", self.timeline, self.log))
    }

    /// The 24-character segment this file belongs to (`None` for history files).
    pub fn segment_name(&self) -> Option<&str> {
        (self.kind != WalKind::History).then(|| &self.name[..24])
    }

    /// The next segment name, for prefetching; `None` unless this is a segment.
    ///
    /// `segments_per_log` is `0x1_0000_0000 / wal_segment_size`; with the default 16 MiB
    /// segments it is 256.
    pub fn next_segment(&self, segments_per_log: u32) -> Option<WalName> {
        if self.kind != WalKind::Segment {
            return None;
        }
        let (log, seg) = if self.seg + 1 >= segments_per_log {
            (self.log.checked_add(1)?, 0)
        } else {
            (self.log, self.seg + 1)
        };
        Some(Self::segment(self.timeline, log, seg))
    }
}

impl Ord for WalName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

impl PartialOrd for WalName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The timeline and log of a WAL hash directory name (`TTTTTTTTLLLLLLLL`), as
/// [`WalName::hash_dir`] writes it; `None` for anything else.
pub fn parse_hash_dir(dir: &str) -> Option<(u32, u32)> {
    if dir.len() != 16 || !dir.is_char_boundary(8) {
        return None;
    }
    Some((hex8(&dir[..8])?, hex8(&dir[8..])?))
}

impl fmt::Display for WalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_kinds() {
        let seg = WalName::parse("000000010000000000000004").unwrap();
        assert_eq!(seg.kind(), WalKind::Segment);
        assert_eq!(seg.hash_dir().as_deref(), Some("0000000100000000"));
        let b = WalName::parse("000000010000000000000004.00000028.backup").unwrap();
        assert_eq!(b.kind(), WalKind::Backup);
        assert_eq!(b.segment_name(), Some("000000010000000000000004"));
        let p = WalName::parse("00000001000000000000000C.partial").unwrap();
        assert_eq!(p.kind(), WalKind::Partial);
        let h = WalName::parse("00000002.history").unwrap();
        assert_eq!(
            (h.kind(), h.timeline(), h.hash_dir()),
            (WalKind::History, 2, None)
        );
    }

    #[test]
    fn hash_dir_is_upper_case_but_the_name_keeps_its_case() {
        let w = WalName::parse("0000000a0000000b0000000c").unwrap();
        assert_eq!(w.hash_dir().as_deref(), Some("0000000A0000000B"));
        assert_eq!(w.as_str(), "0000000a0000000b0000000c");
    }

    #[test]
    fn rejects_what_is_not_a_wal_name() {
        for bad in [
            "",
            "00000001000000000000000",
            "0000000100000000000000044",
            "00000001000000000000000G",
            "000000010000000000000004.backup",
            "000000010000000000000004.0000028.backup",
            "000000010000000000000004.gz",
            "0000002.history",
            "../000000010000000000000004",
            "RECOVERYHISTORY",
        ] {
            assert!(WalName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn next_segment_wraps_into_the_next_log() {
        let w = WalName::parse("0000000100000000000000FF").unwrap();
        assert_eq!(
            w.next_segment(256).unwrap().as_str(),
            "000000010000000100000000"
        );
        let w = WalName::parse("000000010000000000000004").unwrap();
        assert_eq!(
            w.next_segment(256).unwrap().as_str(),
            "000000010000000000000005"
        );
    }
}
