//! Log lines on stderr in Barman's shape, so existing log parsing and habits keep working:
//! `2026-11-25 03:51:40,720 [16872] ERROR: message`, local time with comma milliseconds.
//!
//! Verbosity follows Barman: WARNING by default, `-v` INFO, `-vv` DEBUG, `-q` ERROR, `-qq`
//! nothing but critical (we have no critical messages, so nothing).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log-format`: Barman's text lines, or one JSON object per line for log collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

struct BarmanFormat(LogFormat);

impl<S, N> FormatEvent<S, N> for BarmanFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG | Level::TRACE => "DEBUG",
        };
        let now = chrono::Local::now();
        let mut message = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut message), event)?;
        // Every line, at every level: messages may quote what a server or an SDK said.
        let message = crate::redact::redact(&message);
        if self.0 == LogFormat::Json {
            let line = serde_json::json!({
                "time": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
                "pid": std::process::id(),
                "level": level,
                "message": message,
            });
            return writeln!(writer, "{line}");
        }
        let now = now.format("%Y-%m-%d %H:%M:%S,%3f");
        writeln!(writer, "{now} [{}] {level}: {message}", std::process::id())
    }
}

/// Installs the stderr logger for `-v`/`-q` counts.
pub fn init(verbose: u8, quiet: u8, format: LogFormat) {
    let level = match i16::from(verbose) - i16::from(quiet) {
        v if v >= 2 => LevelFilter::DEBUG,
        1 => LevelFilter::INFO,
        0 => LevelFilter::WARN,
        -1 => LevelFilter::ERROR,
        _ => LevelFilter::OFF,
    };
    // Only our own crate logs: the HTTP stack's debug output would bury ours (and its request
    // lines are no place for a reviewer to hunt for leaked credentials).
    // The notices are INFO lines shown at the default verbosity too (see `NOTICE`).
    let notice = if level == LevelFilter::WARN {
        LevelFilter::INFO
    } else {
        level
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("barman_cloud", level)
        .with_target(crate::progress::NOTICE, notice);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(BarmanFormat(format))
                .with_filter(filter),
        )
        .try_init();
}

use tracing_subscriber::Layer as _;
