//! WAL segment names and the names that follow one, for restore's prefetch.
//!
//! The sidecar does not know the server's `wal_segment_size`, so, as the plugin, it assumes
//! PostgreSQL's default of 16 MiB: 256 segments per log number (`Seg` 00 to FF), then the
//! log number goes up by one. A server built with other segment sizes only loses the
//! prefetch (the guessed names are not found), never a file. Timelines never change here:
//! a timeline switch makes PostgreSQL ask for a `.history` file first, which is fetched alone.

/// The three numbers of a segment name `TTTTTTTTLLLLLLLLSSSSSSSS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Timeline.
    pub tli: u32,
    /// Log number (the high 32 bits of the LSN).
    pub log: u32,
    /// Segment within the log number.
    pub seg: u32,
}

/// The last segment number of a log number with 16 MiB segments: `0xFFFFFFFF / 16 MiB`.
const LAST_SEGMENT: u32 = 0xFF;

/// True for a regular segment name: exactly 24 hexadecimal digits (either case, as the
/// plugin's pattern). `.history`, `.backup` and `.partial` names are not segments.
pub fn is_segment_name(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Segment {
    /// Parses a segment name. `None` for anything else, and, as the plugin (which parses
    /// each part as a signed 32-bit number), for a part above `7FFFFFFF`.
    pub fn parse(name: &str) -> Option<Self> {
        if !is_segment_name(name) {
            return None;
        }
        let part = |range: std::ops::Range<usize>| {
            u32::from_str_radix(&name[range], 16)
                .ok()
                .filter(|&n| n <= i32::MAX as u32)
        };
        Some(Self {
            tli: part(0..8)?,
            log: part(8..16)?,
            seg: part(16..24)?,
        })
    }

    /// The canonical (upper-case) name.
    pub fn name(&self) -> String {
        format!("{:08X}{:08X}{:08X}", self.tli, self.log, self.seg)
    }

    /// The segment after this one, or `None` past the last log number the plugin can name.
    pub fn next(&self) -> Option<Self> {
        let mut next = *self;
        next.seg += 1;
        if next.seg > LAST_SEGMENT {
            next.log = next.log.checked_add(1).filter(|&l| l <= i32::MAX as u32)?;
            next.seg = 0;
        }
        Some(next)
    }
}

/// The files one restore call fetches: `name` first, then, for a regular segment, the
/// segments after it, `count` names in all (at least `name` itself). Other names are
/// fetched alone.
pub fn files_to_fetch(name: &str, count: usize) -> Vec<String> {
    let mut names = vec![name.to_owned()];
    let Some(mut segment) = Segment::parse(name) else {
        return names;
    };
    while names.len() < count {
        let Some(next) = segment.next() else {
            break;
        };
        names.push(next.name());
        segment = next;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_names_within_a_log_number() {
        assert_eq!(
            files_to_fetch("000000010000000000000001", 4),
            [
                "000000010000000000000001",
                "000000010000000000000002",
                "000000010000000000000003",
                "000000010000000000000004"
            ]
        );
    }

    #[test]
    fn after_segment_ff_the_log_number_goes_up() {
        assert_eq!(
            files_to_fetch("0000000200000003000000FE", 4),
            [
                "0000000200000003000000FE",
                "0000000200000003000000FF",
                "000000020000000400000000",
                "000000020000000400000001"
            ]
        );
    }

    #[test]
    fn a_segment_number_past_ff_still_moves_to_the_next_log() {
        // Not a 16 MiB name; the plugin's arithmetic moves on at once.
        assert_eq!(
            files_to_fetch("000000010000000000000100", 2),
            ["000000010000000000000100", "000000010000000100000000"]
        );
    }

    #[test]
    fn one_or_zero_means_the_requested_file_only() {
        assert_eq!(files_to_fetch("000000010000000000000001", 1).len(), 1);
        assert_eq!(files_to_fetch("000000010000000000000001", 0).len(), 1);
    }

    #[test]
    fn other_names_are_fetched_alone() {
        for name in [
            "00000002.history",
            "000000010000000000000002.00000028.backup",
            "000000010000000000000003.partial",
            "RECOVERYXLOG",
            "00000001000000000000000",
            "00000001000000000000000G",
        ] {
            assert_eq!(files_to_fetch(name, 8), [name], "{name}");
        }
    }

    #[test]
    fn lower_case_is_a_segment_and_the_rest_is_upper_case() {
        assert!(is_segment_name("0000000100000000000000ab"));
        assert_eq!(
            files_to_fetch("0000000100000000000000ab", 2),
            ["0000000100000000000000ab", "0000000100000000000000AC"]
        );
    }

    #[test]
    fn parts_above_the_signed_range_are_not_prefetched() {
        assert_eq!(Segment::parse("80000000000000000000000A"), None);
        assert_eq!(files_to_fetch("00000001FFFFFFFF00000001", 3).len(), 1);
        // The last log number the plugin can name: no wrap to a negative one.
        assert_eq!(
            files_to_fetch("000000017FFFFFFF000000FF", 3),
            ["000000017FFFFFFF000000FF"]
        );
    }
}
