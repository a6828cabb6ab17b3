//! TEMPORARY stub until the compress branch lands.
use std::io::{self, Read};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Snappy,
    Zstd,
    Lz4,
}
impl Compression {
    pub const ALL: [Compression; 6] = [
        Self::Gzip,
        Self::Bzip2,
        Self::Xz,
        Self::Snappy,
        Self::Zstd,
        Self::Lz4,
    ];
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Gzip => ".gz",
            Self::Bzip2 => ".bz2",
            Self::Xz => ".xz",
            Self::Snappy => ".snappy",
            Self::Zstd => ".zst",
            Self::Lz4 => ".lz4",
        }
    }
    pub fn split_suffix(name: &str) -> (&str, Option<Compression>) {
        for c in Self::ALL {
            if let Some(s) = name.strip_suffix(c.suffix()) {
                return (s, Some(c));
            }
        }
        (name, None)
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Low,
    Medium,
    High,
    Value(i32),
}
impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            v => v
                .parse()
                .map(Self::Value)
                .map_err(|_| format!("bad level {v}")),
        }
    }
}
pub fn compress(_c: Compression, _l: Option<Level>, data: &[u8]) -> io::Result<Vec<u8>> {
    Ok(data.to_vec())
}
pub fn decoder<'a, R: Read + 'a>(_c: Compression, r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(Box::new(r))
}
