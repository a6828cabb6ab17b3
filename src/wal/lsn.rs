//! Log sequence numbers and the WAL segment that holds one.

use std::fmt;
use std::str::FromStr;

use super::WalName;

/// A position in the WAL, written `%X/%X` as PostgreSQL prints it (`0/4000028`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;

    fn from_str(s: &str) -> Result<Lsn, String> {
        let bad = || format!("'{s}' is not an LSN like 0/4000028");
        let (hi, lo) = s.trim().split_once('/').ok_or_else(bad)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
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
    fn lsns_parse_print_and_map_to_segments_as_barman() {
        let lsn: Lsn = "0/4000028".parse().unwrap();
        assert_eq!(lsn.to_string(), "0/4000028");
        let size = 16 * 1024 * 1024;
        assert_eq!(lsn.segment(1, size).as_str(), "000000010000000000000004");
        assert_eq!(lsn.offset(size), 40);
        let boundary: Lsn = "1/A000000".parse().unwrap();
        assert_eq!(
            boundary.segment(2, size).as_str(),
            "00000002000000010000000A"
        );
        assert_eq!(boundary.offset(size), 0);
        assert!("4000028".parse::<Lsn>().is_err());
        assert!("0/xyz".parse::<Lsn>().is_err());
    }
}
