//! Parsers of option values that clap has no type for, with Barman's rules.

use crate::compress::Level;
use crate::error::Error;

/// Parses `--compression-level`.
pub fn parse_level(s: &str) -> std::result::Result<Level, String> {
    s.parse::<Level>().map_err(|e| e.to_string())
}

/// Parses a size as Barman's `check_size` does: bytes, or a number with a unit where
/// `KB`/`MB`/`GB`... are powers of 1024 and `KiB`/`MiB`/`GiB`... powers of 1000 (sic: the
/// reverse of IEC, kept for compatibility).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let invalid =
        || format!("'{s}' is not a valid size: use bytes or a number with a unit such as 64MB");
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let (prefix, base) = match unit {
        "" => ("", 1024.0),
        u if u.ends_with("ib") => (&u[..u.len() - 2], 1000.0),
        u if u.ends_with('b') => (&u[..u.len() - 1], 1024.0),
        _ => return Err(invalid()),
    };
    let power = match prefix {
        "" => 0,
        p => {
            "kmgtpezy"
                .find(p)
                .filter(|_| p.len() == 1)
                .ok_or_else(invalid)? as i32
                + 1
        }
    };
    let bytes = number * f64::powi(base, power);
    if bytes < 1.0 {
        return Err(format!(
            "'{s}' is not a valid size: it must be at least 1 byte"
        ));
    }
    Ok(bytes as u64)
}

/// Rejects an option that needs a value which is out of range, as a usage error.
pub fn input(message: impl Into<String>) -> Error {
    Error::Input(message.into())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_follow_barman_units() {
        assert_eq!(parse_size("4MB"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_size("4MiB"), Ok(4_000_000));
        assert_eq!(parse_size("1.5gb"), Ok(1_610_612_736));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12XB").is_err());
    }
}
