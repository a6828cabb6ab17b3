//! Python literals as Barman stores them in `backup.info`: read as `ast.literal_eval` does for
//! the shapes Barman writes, written as Python's `repr()` writes them, so a file read and written
//! again is unchanged.

use std::fmt::{self, Write};

/// A Python literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// `[...]`.
    List(Vec<PyValue>),
    /// `(...)`.
    Tuple(Vec<PyValue>),
    /// `{...}`, its pairs in the order written.
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    /// Parses one Python literal; the whole input must be consumed.
    pub fn parse(text: &str) -> Result<PyValue, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            text,
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected text at offset {}", p.i));
        }
        Ok(v)
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            PyValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// A float or an int as a float (Python mixes them in `copy_stats`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyValue::Float(f) => Some(*f),
            PyValue::Int(n) => Some(*n as f64),
            _ => None,
        }
    }

    /// The items of a list or a tuple.
    pub fn as_seq(&self) -> Option<&[PyValue]> {
        match self {
            PyValue::List(v) | PyValue::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// Python's truth test is false: `None`, `False`, zero, or an empty str, list, tuple, dict.
    pub fn is_falsy(&self) -> bool {
        match self {
            PyValue::None => true,
            PyValue::Bool(b) => !b,
            PyValue::Int(n) => *n == 0,
            PyValue::Float(x) => *x == 0.0,
            PyValue::Str(s) => s.is_empty(),
            PyValue::List(v) | PyValue::Tuple(v) => v.is_empty(),
            PyValue::Dict(d) => d.is_empty(),
        }
    }

    /// The value under a string key of a dict.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(items) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl fmt::Display for PyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PyValue::None => f.write_str("None"),
            PyValue::Bool(true) => f.write_str("True"),
            PyValue::Bool(false) => f.write_str("False"),
            PyValue::Int(n) => write!(f, "{n}"),
            PyValue::Float(x) => f.write_str(&float_repr(*x)),
            PyValue::Str(s) => f.write_str(&str_repr(s)),
            PyValue::List(items) => {
                f.write_char('[')?;
                write_items(f, items)?;
                f.write_char(']')
            }
            PyValue::Tuple(items) => {
                f.write_char('(')?;
                write_items(f, items)?;
                if items.len() == 1 {
                    f.write_char(',')?;
                }
                f.write_char(')')
            }
            PyValue::Dict(items) => {
                f.write_char('{')?;
                for (n, (k, v)) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

fn write_items(f: &mut fmt::Formatter<'_>, items: &[PyValue]) -> fmt::Result {
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// Python's `repr(str)`: single quotes unless the text holds a single quote and no double
/// quote; backslash escapes for quotes, `\\`, `\t\n\r` and non-printable characters.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(float)`: the shortest text that reads back to the same value, in
/// positional form for exponents -4..16 (always with a fraction), scientific otherwise.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde±N".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at offset {}", self.i))
    }

    fn value(&mut self) -> Result<PyValue, String> {
        self.ws();
        match self.peek() {
            None => self.err("unexpected end"),
            Some(b'\'' | b'"') => self.string().map(PyValue::Str),
            Some(b'[') => self.seq(b']').map(|(v, _)| PyValue::List(v)),
            Some(b'(') => self.seq(b')').map(|(v, trailing_comma)| {
                if v.len() == 1 && !trailing_comma {
                    v.into_iter().next().expect("one item")
                } else {
                    PyValue::Tuple(v)
                }
            }),
            Some(b'{') => self.dict(),
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                match &self.text[start..self.i] {
                    "None" => Ok(PyValue::None),
                    "True" => Ok(PyValue::Bool(true)),
                    "False" => Ok(PyValue::Bool(false)),
                    "inf" => Ok(PyValue::Float(f64::INFINITY)),
                    "nan" => Ok(PyValue::Float(f64::NAN)),
                    word => Err(format!("unsupported name '{word}' at offset {start}")),
                }
            }
            Some(_) => self.err("unexpected character"),
        }
    }

    fn seq(&mut self, close: u8) -> Result<(Vec<PyValue>, bool), String> {
        self.i += 1;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok((items, trailing_comma));
            }
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => trailing_comma = false,
                _ => return self.err("expected ',' or a closing bracket"),
            }
        }
    }

    fn dict(&mut self) -> Result<PyValue, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(PyValue::Dict(items));
            }
            let k = self.value()?;
            self.ws();
            if self.peek() != Some(b':') {
                return self.err("expected ':'");
            }
            self.i += 1;
            let v = self.value()?;
            items.push((k, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }

    fn number(&mut self) -> Result<PyValue, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.' | b'_'))
        {
            // A sign is only part of the number at the start or after an exponent marker.
            let c = self.s[self.i];
            if matches!(c, b'-' | b'+')
                && self.i != start
                && !matches!(self.s[self.i - 1], b'e' | b'E')
            {
                break;
            }
            self.i += 1;
        }
        let text = self.text[start..self.i].replace('_', "");
        if let Ok(n) = text.parse::<i64>() {
            return Ok(PyValue::Int(n));
        }
        match text.trim_start_matches(['-', '+']) {
            "inf" => {
                return Ok(PyValue::Float(if text.starts_with('-') {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }));
            }
            "nan" => return Ok(PyValue::Float(f64::NAN)),
            _ => {}
        }
        text.parse::<f64>()
            .map(PyValue::Float)
            .map_err(|_| format!("bad number '{text}' at offset {start}"))
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.i..];
            let Some(c) = rest.chars().next() else {
                return Err(format!("unterminated string starting at offset {start}"));
            };
            self.i += c.len_utf8();
            match c {
                c if c as u32 == quote as u32 => return Ok(out),
                '\n' => return Err(format!("newline in string starting at offset {start}")),
                '\\' => {
                    let Some(e) = self.text[self.i..].chars().next() else {
                        return Err(format!("unterminated string starting at offset {start}"));
                    };
                    self.i += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '0' => out.push('\0'),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'v' => out.push('\x0b'),
                        '\\' | '\'' | '"' => out.push(e),
                        '\n' => {}
                        'x' => out.push(self.hex_escape(2)?),
                        'u' => out.push(self.hex_escape(4)?),
                        'U' => out.push(self.hex_escape(8)?),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex_escape(&mut self, len: usize) -> Result<char, String> {
        let hex = self
            .text
            .get(self.i..self.i + len)
            .ok_or_else(|| format!("truncated escape at offset {}", self.i))?;
        let code =
            u32::from_str_radix(hex, 16).map_err(|_| format!("bad escape at offset {}", self.i))?;
        self.i += len;
        char::from_u32(code).ok_or_else(|| format!("bad character escape at offset {}", self.i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_does() {
        for (x, py) in [
            (2.086515, "2.086515"),
            (0.1, "0.1"),
            (2.0, "2.0"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1.5e300, "1.5e+300"),
            (-0.000123, "-0.000123"),
            (123.456, "123.456"),
        ] {
            assert_eq!(float_repr(x), py);
        }
    }

    #[test]
    fn strings_print_as_python_does() {
        assert_eq!(str_repr("a\nb"), r"'a\nb'");
        assert_eq!(str_repr("it's"), r#""it's""#);
        assert_eq!(str_repr("'\""), r#"'\'"'"#);
        assert_eq!(str_repr("tab\there\\"), r"'tab\there\\'");
        assert_eq!(str_repr("\x01é"), r"'\x01é'");
    }

    #[test]
    fn barman_values_round_trip() {
        for text in [
            "{'total_time': 2.086515, 'number_of_workers': 2, 'analysis_time': 0, \
             'analysis_time_per_item': {'16384': 0, 'data': 0}, 'copy_time': 1.639165}",
            "[('tbs1', 16384, '/tmp/pgt/tbs1'), ('t2', 16385, '/x')]",
            "['/tmp/pgt/data/postgresql.auto.conf']",
            r"'START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nSTART TIMELINE: 1\n'",
            "(1,)",
            "{'a': None, 'b': True, 'c': [], 'd': ()}",
        ] {
            let v = PyValue::parse(text).unwrap();
            assert_eq!(v.to_string(), text);
        }
    }

    #[test]
    fn literal_eval_forms_are_read() {
        assert_eq!(PyValue::parse("\"x\"").unwrap(), PyValue::Str("x".into()));
        assert_eq!(PyValue::parse("(5)").unwrap(), PyValue::Int(5));
        assert_eq!(PyValue::parse("-3.5").unwrap(), PyValue::Float(-3.5));
        assert_eq!(PyValue::parse("1e-05").unwrap(), PyValue::Float(1e-05));
        assert_eq!(
            PyValue::parse("'\\u00e9\\x41'").unwrap(),
            PyValue::Str("éA".into())
        );
        assert_eq!(PyValue::parse("[1, 2,]").unwrap().to_string(), "[1, 2]");
    }

    #[test]
    fn malformed_literals_are_errors() {
        for bad in [
            "",
            "[1, 2",
            "'abc",
            "{'a' 1}",
            "__import__('os')",
            "1 2",
            "[1 2]",
        ] {
            assert!(PyValue::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
