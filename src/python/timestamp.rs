//! Python's `datetime` as Barman writes it to `backup.info` and prints it: `str()`,
//! `isoformat()` and `ctime()`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone};

/// A time as Python's `str(datetime)` writes it: `YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<FixedOffset>);

impl FromStr for Timestamp {
    type Err = String;

    /// Reads what `str(datetime)` writes, and (as dateutil does) a `T` separator or a time
    /// without an offset, which is then local time.
    fn from_str(s: &str) -> Result<Timestamp, String> {
        let s = s.trim();
        for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%:z"] {
            if let Ok(t) = DateTime::parse_from_str(s, format) {
                return Ok(Timestamp(t));
            }
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(Timestamp(t));
        }
        for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
                if let Some(t) = Local.from_local_datetime(&naive).earliest() {
                    return Ok(Timestamp(t.fixed_offset()));
                }
            }
        }
        Err(format!(
            "'{s}' is not a time like 2026-11-25 04:50:49.165843+01:00"
        ))
    }
}

impl Timestamp {
    /// Python's `isoformat(sep)`: microseconds only when not zero, the offset as `+HH:MM`
    /// (with `:SS` for the odd historical zone that has seconds).
    fn python_format(&self, sep: char) -> String {
        let mut out = self.0.format("%Y-%m-%d").to_string();
        out.push(sep);
        out.push_str(&self.0.format("%H:%M:%S").to_string());
        let micros = self.0.timestamp_subsec_micros();
        if micros != 0 {
            out.push_str(&format!(".{micros:06}"));
        }
        let offset = self.0.offset().local_minus_utc();
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60));
        if abs % 60 != 0 {
            out.push_str(&format!(":{:02}", abs % 60));
        }
        out
    }

    /// Python's `isoformat()`: `2026-11-25T04:50:49.165843+01:00`.
    pub fn isoformat(&self) -> String {
        self.python_format('T')
    }

    /// Python's `ctime()` of the time in its own offset: `Wed Nov 25 04:50:49 2026`, the
    /// day of the month padded with a space.
    pub fn ctime(&self) -> String {
        self.0.format("%a %b %e %H:%M:%S %Y").to_string()
    }
}

impl fmt::Display for Timestamp {
    /// Python's `str(datetime)`, as `backup.info` stores it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.python_format(' '))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_python_str_datetime() {
        for s in [
            "2026-11-25 04:50:49+01:00",
            "2026-11-25 04:50:49.000001-05:30",
        ] {
            assert_eq!(s.parse::<Timestamp>().unwrap().to_string(), s);
        }
        let utc: Timestamp = "2026-11-25T04:50:49Z".parse().unwrap();
        assert_eq!(utc.to_string(), "2026-11-25 04:50:49+00:00");
    }
}
