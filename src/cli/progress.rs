//! How `relctl release` shows per-image progress: live lines drawn with
//! indicatif when stderr is a terminal, plain log lines otherwise, nothing
//! with `-q`. Log output is routed around the live lines so they never tear.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use relctl::progress::{ImageState, LogProgress, NoProgress, Progress, ProgressSink};

/// The live display, once `release` starts one; log lines are printed above it.
static LIVE: OnceLock<MultiProgress> = OnceLock::new();

/// The progress sink for a command run by a person (or a CI log).
pub fn for_release(quiet: bool) -> ProgressSink {
    if quiet {
        Arc::new(NoProgress)
    } else if std::io::stderr().is_terminal() {
        let multi = LIVE.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Arc::new(Live { multi: multi.clone(), bars: Mutex::default() })
    } else {
        Arc::new(LogProgress::default())
    }
}

/// One live line per image: `server    building step 3/7`.
struct Live {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Live {
    fn style(done: bool) -> ProgressStyle {
        let template = if done { "  {prefix:<12} {wide_msg}" } else { "{spinner} {prefix:<12} {wide_msg}" };
        ProgressStyle::with_template(template).expect("a valid template")
    }
}

impl Progress for Live {
    fn update(&self, image: &str, state: &ImageState) {
        let mut bars = self.bars.lock().expect("progress lock");
        let bar = bars.entry(image.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner().with_style(Self::style(false)));
            bar.set_prefix(image.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if state.is_final() {
            bar.set_style(Self::style(true));
            bar.finish_with_message(state.to_string());
        } else {
            bar.set_message(state.to_string());
        }
    }
}

/// The tracing writer: stderr, printed above the live lines while they are drawn.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LIVE.get() {
            Some(multi) if !multi.is_hidden() => multi.suspend(|| std::io::stderr().write_all(buf))?,
            _ => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
