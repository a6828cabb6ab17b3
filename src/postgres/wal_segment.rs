//! The size a restored WAL segment must have.
//!
//! PostgreSQL refuses a segment of the wrong size only after `restore_command` has exited 0,
//! and then stops recovery ("has wrong size") or, on a standby, retries the same short file
//! for ever. So wal-restore checks the size itself, before the file is put in place: a cut
//! that every stream format would hide (snappy between chunks, bzip2 between streams, an
//! uncompressed object) is caught here.
//!
//! Every segment starts with a long page header (`XLogLongPageHeaderData`): `xlp_info` at
//! offset 2 has `XLP_LONG_HEADER`, and `xlp_seg_size` (offset 32) and `xlp_xlog_blcksz`
//! (offset 36) give the segment and page sizes, in the server's byte order.

/// How many leading bytes [`check_size`] reads.
pub(crate) const HEADER_LEN: usize = 40;

const XLP_LONG_HEADER: u16 = 0x0002;

/// Whether a segment of `size` bytes, starting with `head`, is whole: the size its header
/// states, or without a readable header at least a size PostgreSQL can be built with.
///
/// # Errors
/// Why it is not, as a phrase ("it decodes to ... bytes ...").
pub(crate) fn check_size(head: &[u8], size: u64) -> Result<(), String> {
    match declared_size(head) {
        Some(declared) if declared == size => Ok(()),
        Some(declared) => Err(format!(
            "it decodes to {size} bytes where its page header states a {declared}-byte segment"
        )),
        None if is_segment_size(size) => Ok(()),
        None => Err(format!(
            "it decodes to {size} bytes, not a WAL segment size (a power of two from 1 MiB to \
             1 GiB)"
        )),
    }
}

/// The segment size a valid long page header states, in either byte order.
fn declared_size(head: &[u8]) -> Option<u64> {
    let head = head.get(..HEADER_LEN)?;
    [false, true].into_iter().find_map(|big_endian| {
        let u32_at = |at: usize| {
            let bytes = head[at..at + 4].try_into().unwrap();
            if big_endian {
                u32::from_be_bytes(bytes)
            } else {
                u32::from_le_bytes(bytes)
            }
        };
        let info = if big_endian {
            u16::from_be_bytes([head[2], head[3]])
        } else {
            u16::from_le_bytes([head[2], head[3]])
        };
        let (seg_size, block_size) = (u64::from(u32_at(32)), u32_at(36));
        let valid = info & XLP_LONG_HEADER != 0
            && is_segment_size(seg_size)
            && block_size.is_power_of_two()
            && (1024..=32768).contains(&block_size);
        valid.then_some(seg_size)
    })
}

/// `wal_segment_size`'s range: a power of two from 1 MiB to 1 GiB.
fn is_segment_size(size: u64) -> bool {
    size.is_power_of_two() && (1 << 20..=1 << 30).contains(&size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long page header as a little- or big-endian server writes it.
    fn header(seg_size: u32, big_endian: bool) -> Vec<u8> {
        // (value, width) of each field: magic, info, tli, pageaddr, rem_len, padding,
        // sysid, seg_size, blcksz.
        let fields = [
            (0xD110, 2),
            (u64::from(XLP_LONG_HEADER), 2),
            (1, 4),
            (0, 8),
            (0, 4),
            (0, 4),
            (7, 8),
            (u64::from(seg_size), 4),
            (8192, 4),
        ];
        fields
            .iter()
            .flat_map(|&(value, width): &(u64, usize)| {
                let mut bytes = value.to_le_bytes()[..width].to_vec();
                if big_endian {
                    bytes.reverse();
                }
                bytes
            })
            .collect()
    }

    #[test]
    fn the_header_decides_when_there_is_one() {
        for big_endian in [false, true] {
            let h = header(16 << 20, big_endian);
            assert_eq!(check_size(&h, 16 << 20), Ok(()));
            // Shorter, but still a size PostgreSQL could use: only the header tells.
            assert!(check_size(&h, 8 << 20).is_err());
            assert!(check_size(&h, (16 << 20) - 8192).is_err());
        }
    }

    #[test]
    fn without_a_header_the_size_must_be_a_segment_size() {
        assert_eq!(check_size(b"", 1 << 20), Ok(()));
        assert_eq!(check_size(&[0; 40], 1 << 30), Ok(()));
        for size in [0, 4096, 65536, (16 << 20) - 1, 3 << 20, 2 << 30] {
            assert!(check_size(&[0; 40], size).is_err(), "{size}");
        }
        // A header stating an impossible segment size is no header.
        assert!(check_size(&header(65536, false), 65536).is_err());
        assert_eq!(check_size(&header(65536, false), 1 << 20), Ok(()));
    }
}
