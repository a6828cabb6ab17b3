//! Log sequence numbers: positions in the WAL stream, written `X/X` by PostgreSQL, and the
//! segment that holds one.

use std::fmt;
use std::str::FromStr;

use super::WalName;

/// A WAL position. Ordered numerically, which is how Barman compares them (never as text:
/// `0/A000000` comes after `0/9000000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;

    /// Reads `HI/LO` with each half in hex, as `pg_lsn` prints it.
    fn from_str(s: &str) -> Result<Lsn, String> {
        let invalid = || format!("Invalid LSN: '{s}': expected two hex numbers such as 3/64000028");
        let (hi, lo) = s.trim().split_once('/').ok_or_else(invalid)?;
        let half = |h: &str| {
            (!h.is_empty() && h.len() <= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(h, 16).ok())
                .flatten()
                .ok_or_else(invalid)
        };
        Ok(Lsn((half(hi)? << 32) | half(lo)?))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl Lsn {
    /// The segment Barman records for this LSN on `timeline`. On an exact segment boundary
    /// this is the segment that starts there (`pg_walfile_name` would give the previous one).
    pub fn segment(self, timeline: u32, segment_size: u64) -> WalName {
        let per_log = 0xFFFF_FFFF / segment_size;
        let log = (self.0 >> 32) as u32;
        let seg = ((self.0 & (segment_size * per_log)) / segment_size) as u32;
        WalName::segment(timeline, log, seg)
    }

    /// The offset of this LSN inside its segment.
    pub fn offset(self, segment_size: u64) -> u64 {
        self.0 & (segment_size - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_numerically() {
        let a: Lsn = "0/9000000".parse().unwrap();
        let b: Lsn = "0/A000000".parse().unwrap();
        let c: Lsn = "1/0".parse().unwrap();
        assert!(a < b && b < c);
        assert_eq!(c.0, 1 << 32);
        assert_eq!(
            "3/64000028".parse::<Lsn>().unwrap().to_string(),
            "3/64000028"
        );
        assert_eq!("0/a0".parse::<Lsn>().unwrap().to_string(), "0/A0");
        for bad in ["", "0", "0/", "/1", "x/1", "1/2/3", "123456789/0"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn segments_and_offsets_are_computed_as_barman() {
        let size = 16 * 1024 * 1024;
        let lsn: Lsn = "0/4000028".parse().unwrap();
        assert_eq!(lsn.segment(1, size).as_str(), "000000010000000000000004");
        assert_eq!(lsn.offset(size), 40);
        let boundary: Lsn = "1/A000000".parse().unwrap();
        assert_eq!(
            boundary.segment(2, size).as_str(),
            "00000002000000010000000A"
        );
        assert_eq!(boundary.offset(size), 0);
    }
}
