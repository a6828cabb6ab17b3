use super::*;

/// WAL-like input: compressible runs with some noise, a few blocks long.
fn sample() -> Vec<u8> {
    sample_of(300_000)
}

/// `len` bytes of compressible runs with some noise.
pub(super) fn sample_of(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|i| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            if i % 7 == 0 {
                (x >> 24) as u8
            } else {
                (i / 1000) as u8
            }
        })
        .collect()
}

#[test]
fn every_compression_round_trips() {
    let data = sample();
    for c in Compression::ALL {
        for level in [
            None,
            Some(Level::Low),
            Some(Level::High),
            Some(Level::Value(99)),
        ] {
            let packed = compress(c, level, &data).unwrap();
            assert!(packed.len() < data.len(), "{c:?} did not compress");
            assert_eq!(decompress(c, &packed).unwrap(), data, "{c:?} {level:?}");
        }
    }
}

#[test]
fn empty_input_round_trips() {
    for c in Compression::ALL {
        let packed = compress(c, None, b"").unwrap();
        assert_eq!(decompress(c, &packed).unwrap(), b"", "{c:?}");
    }
}

#[test]
fn concatenated_streams_decode_as_one() {
    for c in Compression::ALL {
        let mut packed = compress(c, None, b"first ").unwrap();
        packed.extend(compress(c, None, b"second").unwrap());
        assert_eq!(decompress(c, &packed).unwrap(), b"first second", "{c:?}");
    }
}

#[test]
fn corrupt_input_is_an_error() {
    let data = sample();
    for c in Compression::ALL {
        let mut packed = compress(c, None, &data).unwrap();
        let middle = packed.len() / 2;
        packed.truncate(middle);
        assert!(
            decompress(c, &packed).is_err(),
            "{c:?} accepted a truncated stream"
        );
    }
}

#[test]
fn stream_headers_match_what_python_writes() {
    let data = sample();
    let gz = compress(Compression::Gzip, None, &data).unwrap();
    assert_eq!(&gz[..4], b"\x1f\x8b\x08\x00", "gzip: deflate, no FNAME");
    assert_eq!(gz[9], 0xff, "gzip OS byte");
    let bz = compress(Compression::Bzip2, None, &data).unwrap();
    assert_eq!(&bz[..4], b"BZh5");
    let xz = compress(Compression::Xz, None, &data).unwrap();
    assert_eq!(&xz[..6], b"\xfd7zXZ\x00");
    assert_eq!(xz[7], 0x04, "xz check CRC64");
    let sn = compress(Compression::Snappy, None, &data).unwrap();
    assert_eq!(&sn[..10], b"\xff\x06\x00\x00sNaPpY");
    let zs = compress(Compression::Zstd, None, &data).unwrap();
    assert_eq!(&zs[..4], b"\x28\xb5\x2f\xfd");
    assert_eq!(zs[4] & 0x04, 0x04, "zstd: content checksum");
    let lz = compress(Compression::Lz4, None, &data).unwrap();
    assert_eq!(&lz[..4], b"\x04\x22\x4d\x18");
    assert_eq!(lz[4] & 0x08, 0x08, "lz4: content size stored");
    assert_eq!(lz[4] & 0x20, 0, "lz4: linked blocks");
    assert_eq!(lz[4] & 0x14, 0x14, "lz4: block and content checksums");
    assert_eq!(lz[5] >> 4, 4, "lz4: 64 KiB blocks");
}

#[test]
fn tarball_gzip_has_an_empty_file_name() {
    let options = EncoderOptions {
        gzip_empty_name: true,
        threads: 1,
        ..Default::default()
    };
    let mut e = encoder(
        Compression::Gzip,
        Some(Level::Value(9)),
        options,
        Vec::new(),
    )
    .unwrap();
    e.write_all(b"tar").unwrap();
    let gz = e.finish().unwrap();
    assert_eq!(&gz[..4], b"\x1f\x8b\x08\x08");
    assert_eq!(gz[10], 0, "empty, NUL-terminated name");
    assert_eq!(decompress(Compression::Gzip, &gz).unwrap(), b"tar");
}

#[test]
fn levels_resolve_and_clamp_as_barman_does() {
    use Compression::*;
    assert_eq!(Gzip.level(None), 6);
    assert_eq!(Gzip.level(Some(Level::Low)), 1);
    assert_eq!(Gzip.level(Some(Level::High)), 9);
    assert_eq!(Gzip.level(Some(Level::Value(0))), 1);
    assert_eq!(Bzip2.level(None), 5);
    assert_eq!(Xz.level(Some(Level::High)), 5);
    assert_eq!(Xz.level(Some(Level::Value(42))), 9);
    assert_eq!(Zstd.level(None), 4);
    assert_eq!(Zstd.level(Some(Level::Value(-100))), -22);
    assert_eq!(Lz4.level(Some(Level::Value(17))), 16);
    assert_eq!(Snappy.level(Some(Level::High)), 0);
}

#[test]
fn level_words_and_numbers_parse() {
    assert_eq!("low".parse(), Ok(Level::Low));
    assert_eq!("-5".parse(), Ok(Level::Value(-5)));
    assert!("fast".parse::<Level>().is_err());
}

#[test]
fn suffixes_split_and_names_round_trip() {
    assert_eq!(
        Compression::split_suffix("000000010000000000000001.zst"),
        ("000000010000000000000001", Some(Compression::Zstd))
    );
    assert_eq!(
        Compression::split_suffix("00000002.history"),
        ("00000002.history", None)
    );
    for c in Compression::ALL {
        assert_eq!(Compression::from_name(c.name()), Some(c));
    }
}

/// Streams written by Python's stock libraries (as Barman 3.19.1 calls them), committed under
/// `tests/fixtures/compress/`; regenerate with `tests/fixtures/compress/make.py`.
#[test]
fn python_written_streams_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compress");
    let expected = std::fs::read(dir.join("input")).unwrap();
    for c in Compression::ALL {
        let path = dir.join(format!("input{}", c.suffix()));
        let packed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(decompress(c, &packed).unwrap(), expected, "{c:?}");
    }
}

/// Compresses `data` written in `chunk`-sized pieces, as the WAL and tarball paths write.
fn encode(c: Compression, options: EncoderOptions, data: &[u8], chunk: usize) -> Vec<u8> {
    let mut e = encoder(c, None, options, Vec::new()).unwrap();
    for piece in data.chunks(chunk.max(1)) {
        e.write_all(piece).unwrap();
    }
    e.finish().unwrap()
}

#[test]
fn threaded_encoders_round_trip() {
    let block = 1 << 20;
    for len in [0, 10, block - 1, block, 6_000_000] {
        let data = sample_of(len);
        for c in Compression::ALL {
            for concatenated_streams in [false, true] {
                let options = EncoderOptions {
                    threads: 3,
                    content_size: Some(len as u64),
                    concatenated_streams,
                    ..Default::default()
                };
                let packed = encode(c, options, &data, 100_000);
                let out = decompress(c, &packed)
                    .unwrap_or_else(|e| panic!("{c:?} len {len} cs {concatenated_streams}: {e}"));
                assert_eq!(out, data, "{c:?} len {len}");
            }
        }
    }
}

#[test]
fn threaded_snappy_is_byte_for_byte_the_single_threaded_stream() {
    let data = sample_of(3_500_000);
    let threaded = EncoderOptions {
        threads: 2,
        ..Default::default()
    };
    for chunk in [1 << 20, 1 << 16] {
        assert_eq!(
            encode(Compression::Snappy, threaded, &data, chunk),
            encode(Compression::Snappy, EncoderOptions::default(), &data, chunk),
            "written {chunk} bytes at a time"
        );
    }
}

#[test]
fn threaded_lz4_is_one_frame_with_lz4_flex_header() {
    let data = sample_of(2_500_000);
    let options = EncoderOptions {
        threads: 2,
        content_size: Some(data.len() as u64),
        ..Default::default()
    };
    let packed = encode(Compression::Lz4, options, &data, 1 << 20);
    // The same descriptor as lz4_flex writes (header checksum included).
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max256KB)
        .block_mode(lz4_flex::frame::BlockMode::Linked)
        .block_checksums(true)
        .content_checksum(true)
        .content_size(Some(data.len() as u64));
    let mut reference = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    reference.write_all(&data).unwrap();
    let reference = reference.finish().unwrap();
    assert_eq!(packed[..15], reference[..15]);
    // One frame: lz4_flex's decoder (which stops at the end of a frame) reads it all.
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(&packed[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, data);
}

/// A linked frame: a block's matches reach into the block before it, so a pattern repeated
/// across the cuts is stored once, not once per block as independent blocks would.
#[test]
fn threaded_lz4_blocks_match_across_the_cuts() {
    const PATTERN: usize = 40 << 10;
    let mut x: u32 = 7;
    let pattern: Vec<u8> = (0..PATTERN)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 24) as u8
        })
        .collect();
    let data = pattern.repeat(40);
    let options = EncoderOptions {
        threads: 2,
        ..Default::default()
    };
    let packed = encode(Compression::Lz4, options, &data, 1 << 20);
    assert!(packed.len() < 2 * PATTERN, "{} bytes", packed.len());
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(&packed[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, data);
}

#[test]
fn threaded_bzip2_is_one_stream_unless_the_reader_takes_several() {
    let data = sample_of(5_000_000);
    let options = |concatenated_streams| EncoderOptions {
        threads: 2,
        concatenated_streams,
        ..Default::default()
    };
    let streams = |packed: &[u8]| {
        packed
            .windows(10)
            .filter(|w| w[..3] == *b"BZh" && w[4..] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59])
            .count()
    };
    assert_eq!(
        streams(&encode(Compression::Bzip2, options(false), &data, 1 << 20)),
        1
    );
    assert!(streams(&encode(Compression::Bzip2, options(true), &data, 1 << 20)) > 1);
}

/// Every way the WAL path writes: one thread (small files) and several (16 MiB segments).
fn wal_streams(data: &[u8]) -> Vec<(Compression, usize, Vec<u8>)> {
    let mut out = Vec::new();
    for c in Compression::ALL {
        for threads in [1, 3] {
            let options = EncoderOptions {
                threads,
                content_size: Some(data.len() as u64),
                concatenated_streams: true,
                ..Default::default()
            };
            out.push((c, threads, encode(c, options, data, 1 << 20)));
        }
    }
    out
}

/// A flipped byte anywhere fails the decoding, or (in a field no check covers, such as the
/// gzip header's time) changes nothing: it never decodes to other bytes.
#[test]
fn a_flipped_byte_never_decodes_to_other_bytes() {
    let data = sample_of(1_200_000);
    for (c, threads, packed) in wal_streams(&data) {
        for i in 0..33 {
            let mut bad = packed.clone();
            let at = i * (bad.len() - 1) / 32;
            bad[at] ^= 0x10;
            if let Ok(out) = decompress(c, &bad) {
                assert_eq!(out, data, "{c:?} x{threads}: byte {at} of {}", bad.len());
            }
        }
    }
}

/// A cut anywhere fails the decoding, except where a format cannot tell (bzip2 between
/// concatenated streams, snappy between chunks), and then what decodes is a prefix.
#[test]
fn a_cut_stream_is_an_error_or_a_visible_prefix() {
    let data = sample_of(1_200_000);
    for (c, threads, packed) in wal_streams(&data) {
        let mut cuts: Vec<usize> = (0..33).map(|i| i * (packed.len() - 1) / 32).collect();
        if c == Compression::Lz4 {
            cuts.extend(lz4_block_ends(&packed));
        }
        for at in cuts {
            match decompress(c, &packed[..at]) {
                Err(_) => {}
                Ok(out) if matches!(c, Compression::Bzip2 | Compression::Snappy) => {
                    assert!(out.len() < data.len() && data.starts_with(&out), "{c:?}");
                }
                Ok(out) => panic!(
                    "{c:?} x{threads} cut at {at} of {} decoded {} bytes",
                    packed.len(),
                    out.len()
                ),
            }
        }
    }
}

/// Where each block of a (single) LZ4 frame ends, end mark excluded.
fn lz4_block_ends(frame: &[u8]) -> Vec<usize> {
    let flags = frame[4];
    let mut at = 7 + if flags & 0x08 != 0 { 8 } else { 0 };
    let mut ends = Vec::new();
    loop {
        let size = u32::from_le_bytes(frame[at..at + 4].try_into().unwrap());
        if size == 0 {
            return ends;
        }
        at += 4 + (size & 0x7FFF_FFFF) as usize + if flags & 0x10 != 0 { 4 } else { 0 };
        ends.push(at);
    }
}

/// Python's `lz4.frame` writes no checksums: a cut between its blocks is caught by the end
/// mark alone.
#[test]
fn python_lz4_cut_between_blocks_is_an_error() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compress");
    let packed = std::fs::read(dir.join("input.lz4")).unwrap();
    let ends = lz4_block_ends(&packed);
    assert!(ends.len() > 1, "the fixture has one block");
    for at in ends {
        assert!(
            decompress(Compression::Lz4, &packed[..at]).is_err(),
            "cut at {at}"
        );
    }
}

#[test]
fn lz4_errors_say_what_failed() {
    let mut packed = compress(Compression::Lz4, None, &sample()).unwrap();
    let middle = packed.len() / 2;
    packed[middle] ^= 1;
    let e = decompress(Compression::Lz4, &packed).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
}

#[test]
fn an_empty_object_is_not_a_stream() {
    for c in Compression::ALL {
        if c != Compression::Snappy {
            assert!(decompress(c, b"").is_err(), "{c:?}");
        }
    }
}
