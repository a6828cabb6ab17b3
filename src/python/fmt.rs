//! Values printed the way Barman's Python prints them: `str()` of a value and of an optional
//! one, and Barman's own `pretty_size` and `human_readable_timedelta`.

use super::repr::PyValue;

/// Python's `str()` of a value, as Barman's `format` calls print them.
pub fn py_str(value: &PyValue) -> String {
    match value {
        PyValue::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Python's `str()` of an optional field: `None` when null.
pub fn or_none<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "None".to_string(), T::to_string)
}

/// Barman's `pretty_size`: base 1024, bytes as a whole number, larger units with one decimal.
pub fn pretty_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    for (n, unit) in UNITS.iter().enumerate() {
        if size.abs() < 1024.0 || n == UNITS.len() - 1 {
            return if n == 0 {
                format!("{} {unit}", size.trunc())
            } else {
                format!("{size:.1} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("the last unit always returns")
}

/// Barman's `human_readable_timedelta` of a number of seconds: `1 day, 2 hours, 1 second`,
/// `less than one second`, with ` ago` when negative.
pub fn human_timedelta(seconds: f64) -> String {
    let micros = (seconds * 1e6).round_ties_even();
    let abs = micros.abs() as u64;
    let total = abs / 1_000_000;
    let parts: Vec<String> = [
        (total / 86_400, "day"),
        (total % 86_400 / 3600, "hour"),
        (total % 3600 / 60, "minute"),
        (total % 60, "second"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
    .collect();
    let mut human = if abs < 1_000_000 {
        "less than one second".to_string()
    } else {
        parts.join(", ")
    };
    if micros < 0.0 {
        human.push_str(" ago");
    }
    human
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_barman_writes_them() {
        assert_eq!(pretty_size(26832585.0), "25.6 MiB");
        assert_eq!(pretty_size(1023.0), "1023 B");
        assert_eq!(pretty_size(1024.0), "1.0 KiB");
        assert_eq!(pretty_size(5.0 * 1024f64.powi(4)), "5.0 TiB");
        assert_eq!(human_timedelta(1.639165), "1 second");
        assert_eq!(human_timedelta(0.4), "less than one second");
        assert_eq!(
            human_timedelta(90061.0),
            "1 day, 1 hour, 1 minute, 1 second"
        );
        assert_eq!(human_timedelta(7322.5), "2 hours, 2 minutes, 2 seconds");
        assert_eq!(human_timedelta(-3.0), "3 seconds ago");
    }
}
