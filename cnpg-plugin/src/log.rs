//! Log lines as the plugin writes them: one JSON object per line with `level`, `ts` (RFC 3339
//! with nanoseconds, UTC), `logger` and `msg` first, then the call's own keys. Levels and
//! their names are CloudNativePG's (`error`, `warning`, `info`, `debug`, `trace`), and
//! `--log-field-level` / `--log-field-timestamp` rename the first two keys, as there. Lines
//! go to stderr, or to `--log-destination` (CloudNativePG points short-lived commands at
//! its log pipe).
//!
//! No credential may ever be passed as a field: callers log names and paths, never values
//! from Secrets.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::Error;

/// A log level, least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `trace`
    Trace,
    /// `debug`
    Debug,
    /// `info` (the default)
    Info,
    /// `warning`
    Warning,
    /// `error`
    Error,
}

impl Level {
    /// The name written in the `level` key and accepted by `--log-level`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    /// The level named `name`, if it is one of the five.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warning,
            Level::Error,
        ]
        .into_iter()
        .find(|level| level.name() == name)
    }
}

/// How to write log lines: the threshold, the key names and the destination.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Lines below this level are dropped.
    pub level: Level,
    /// The key of the level (default `level`).
    pub level_key: String,
    /// The key of the timestamp (default `ts`).
    pub time_key: String,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            level: Level::Info,
            level_key: "level".to_owned(),
            time_key: "ts".to_owned(),
        }
    }
}

type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// A named logger; clones share the destination, so lines from several tasks never mix.
#[derive(Clone)]
pub struct Logger {
    name: String,
    options: Arc<LogOptions>,
    sink: Sink,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger").field("name", &self.name).finish()
    }
}

impl Logger {
    /// A logger writing to `destination` (a file opened for appending, created if missing),
    /// or to stderr when there is none.
    ///
    /// # Errors
    /// [`Error::LogDestination`] when the file cannot be opened.
    pub fn open(options: LogOptions, destination: Option<&Path>) -> Result<Self, Error> {
        let sink: Box<dyn Write + Send> = match destination {
            Some(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| Error::LogDestination {
                        path: path.to_owned(),
                        source,
                    })?,
            ),
            None => Box::new(io::stderr()),
        };
        Ok(Self::to_writer(options, sink))
    }

    /// A logger writing to any writer (tests read the lines back).
    pub fn to_writer(options: LogOptions, writer: Box<dyn Write + Send>) -> Self {
        Self {
            name: String::new(),
            options: Arc::new(options),
            sink: Arc::new(Mutex::new(writer)),
        }
    }

    /// The same destination under another `logger` name.
    pub fn named(&self, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..self.clone()
        }
    }

    /// Writes one line at `level` when the threshold lets it through.
    pub fn log(&self, level: Level, msg: &str, fields: &[(&str, Value)]) {
        if level < self.options.level {
            return;
        }
        let line = self.line(level, msg, fields);
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A log line that cannot be written has nowhere else to go.
        let _ = writeln!(sink, "{line}").and_then(|()| sink.flush());
    }

    fn line(&self, level: Level, msg: &str, fields: &[(&str, Value)]) -> String {
        let mut object = Map::new();
        object.insert(self.options.level_key.clone(), level.name().into());
        object.insert(
            self.options.time_key.clone(),
            Utc::now()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
                .into(),
        );
        if !self.name.is_empty() {
            object.insert("logger".to_owned(), self.name.clone().into());
        }
        object.insert("msg".to_owned(), msg.into());
        for (key, value) in fields {
            object.insert((*key).to_owned(), value.clone());
        }
        Value::Object(object).to_string()
    }

    /// `error` line.
    pub fn error(&self, msg: &str, fields: &[(&str, Value)]) {
        self.log(Level::Error, msg, fields);
    }

    /// `warning` line.
    pub fn warning(&self, msg: &str, fields: &[(&str, Value)]) {
        self.log(Level::Warning, msg, fields);
    }

    /// `info` line.
    pub fn info(&self, msg: &str, fields: &[(&str, Value)]) {
        self.log(Level::Info, msg, fields);
    }

    /// `debug` line.
    pub fn debug(&self, msg: &str, fields: &[(&str, Value)]) {
        self.log(Level::Debug, msg, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(buffer: &Buffer) -> Vec<Value> {
        String::from_utf8(buffer.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn lines_carry_the_plugins_keys() {
        let buffer = Buffer::default();
        let log = Logger::to_writer(LogOptions::default(), Box::new(buffer.clone()));
        log.named("instance")
            .info("Starting", &[("path", "/plugins".into())]);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with(r#"{"level":"info","ts":""#), "{text}");
        assert!(
            text.contains(r#"Z","logger":"instance","msg":"Starting","path":"#),
            "{text}"
        );
        let line = &lines(&buffer)[0];
        assert_eq!(line["level"], "info");
        assert_eq!(line["logger"], "instance");
        assert_eq!(line["msg"], "Starting");
        assert_eq!(line["path"], "/plugins");
        let ts = line["ts"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert!(ts.ends_with('Z'), "{ts}");
    }

    #[test]
    fn the_threshold_and_the_renamed_keys_apply() {
        let buffer = Buffer::default();
        let options = LogOptions {
            level: Level::Warning,
            level_key: "severity".to_owned(),
            time_key: "time".to_owned(),
        };
        let log = Logger::to_writer(options, Box::new(buffer.clone()));
        log.info("dropped", &[]);
        log.error("kept", &[]);
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["severity"], "error");
        assert!(lines[0]["time"].is_string());
        assert!(lines[0].get("level").is_none());
    }

    #[test]
    fn level_names_round_trip() {
        for name in ["trace", "debug", "info", "warning", "error"] {
            assert_eq!(Level::parse(name).unwrap().name(), name);
        }
        assert_eq!(Level::parse("warn"), None);
    }
}
