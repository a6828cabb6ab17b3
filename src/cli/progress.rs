//! A progress bar on stderr when it is a terminal; silence otherwise (log lines only), so
//! `archive_command` and cron output stay clean.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{
    BinaryBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};

use crate::progress::{Progress, ProgressHandle};

/// How long bytes must flow before a rate and an ETA mean anything: the first reads come
/// from the page cache, or follow a wait, and would promise seconds or hours.
const SETTLE: Duration = Duration::from_secs(2);

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total: Option<u64>) {
        // Drawn from here on only: a frame before the total is known would read `0 B/0 B`,
        // and the time spent before (a checkpoint) must not count in the rate.
        self.0.reset();
        self.0.set_length(total.unwrap_or(0));
        self.0.set_draw_target(ProgressDrawTarget::stderr());
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
        // The total given at the start is an estimate (a backup reads files outside the
        // tablespaces' size, or the files grow): never past 100%.
        let position = self.0.position();
        if self.0.length().is_some_and(|length| position > length) {
            self.0.set_length(position);
        }
    }

    fn finish(&self, complete: bool) {
        if complete {
            // What was read is the real total: the last frame shows it, at 100%, and stays.
            self.0.set_length(self.0.position());
            self.0.finish();
            // indicatif leaves the cursor at the end of the frame: what is logged next
            // starts on a line of its own.
            eprintln!();
        } else {
            self.0.finish_and_clear();
        }
    }
}

/// ` 12.00 MiB/s ETA 3m`, from the average since the start, once it has settled; nothing
/// before, and no ETA once done.
fn pace(state: &ProgressState, out: &mut dyn std::fmt::Write) {
    let elapsed = state.elapsed();
    let done = state.pos();
    if elapsed < SETTLE || done == 0 {
        return;
    }
    let rate = done as f64 / elapsed.as_secs_f64();
    let _ = write!(out, " {}/s", BinaryBytes(rate as u64));
    let left = state.len().unwrap_or(done).saturating_sub(done);
    if left > 0 && !state.is_finished() {
        let eta = Duration::from_secs_f64(left as f64 / rate);
        let _ = write!(out, " ETA {:#}", HumanDuration(eta));
    }
}

/// A bar labelled `what` when stderr is a terminal and the user did not ask for quiet. It
/// takes the terminal's width (at most; at 80 columns the bar keeps about 30), so that a
/// redraw overwrites the whole previous frame.
pub fn for_terminal(what: &str, quiet: u8) -> ProgressHandle {
    if quiet > 0 || !std::io::stderr().is_terminal() {
        return ProgressHandle::silent();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{wide_bar}] {bytes}/{total_bytes}{pace}")
            .expect("a valid template")
            .with_key("pace", pace)
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    ProgressHandle(Arc::new(Bar(bar)))
}
