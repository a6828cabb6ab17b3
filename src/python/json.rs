//! Python's `json.dumps` with its default arguments, as Barman prints its JSON documents
//! (which CloudNativePG parses).

use std::fmt::Write;

use super::repr::{PyValue, float_repr};

/// Python's `json.dumps(value)` with its defaults: `", "` and `": "` separators, everything
/// outside printable ASCII escaped, floats as `repr`, `NaN`/`Infinity` allowed, tuples as
/// arrays, non-string keys turned into strings.
pub fn json_dumps(value: &PyValue) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &PyValue) {
    match value {
        PyValue::None => out.push_str("null"),
        PyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PyValue::Int(n) => {
            let _ = write!(out, "{n}");
        }
        PyValue::Float(x) => out.push_str(&json_float(*x)),
        PyValue::Str(s) => write_json_str(out, s),
        PyValue::List(items) | PyValue::Tuple(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_json(out, item);
            }
            out.push(']');
        }
        PyValue::Dict(items) => {
            out.push('{');
            for (n, (key, item)) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                let key = match key {
                    PyValue::Str(s) => s.clone(),
                    PyValue::Float(x) => json_float(*x),
                    other => json_dumps(other),
                };
                write_json_str(out, &key);
                out.push_str(": ");
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

fn json_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        float_repr(x)
    }
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_numbers_follow_python() {
        // Python: json.dumps({"a": "é\x7f\u2028😀\n\t\"\\/\x01", "f": [1.5, 1e-05, 1e16,
        // float('nan'), float('inf'), -0.0], "k": {1: False, None: 2.0}})
        let value = PyValue::Dict(vec![
            (
                PyValue::Str("a".into()),
                PyValue::Str("é\u{7f}\u{2028}😀\n\t\"\\/\u{1}".into()),
            ),
            (
                PyValue::Str("f".into()),
                PyValue::List(
                    [1.5, 1e-05, 1e16, f64::NAN, f64::INFINITY, -0.0]
                        .into_iter()
                        .map(PyValue::Float)
                        .collect(),
                ),
            ),
            (
                PyValue::Str("k".into()),
                PyValue::Dict(vec![
                    (PyValue::Int(1), PyValue::Bool(false)),
                    (PyValue::None, PyValue::Float(2.0)),
                ]),
            ),
        ]);
        assert_eq!(
            json_dumps(&value),
            r#"{"a": "\u00e9\u007f\u2028\ud83d\ude00\n\t\"\\/\u0001", "f": [1.5, 1e-05, 1e+16, NaN, Infinity, -0.0], "k": {"1": false, "null": 2.0}}"#
        );
    }
}
