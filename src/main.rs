//! The relctl binary: parses arguments, sets up logging, runs a command and
//! maps its outcome to an exit code (0 done, 1 runtime failure, 2 bad input).

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_tracing(global: &cli::Global) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "relctl=debug,info",
        _ => "relctl=trace,debug",
    };
    let filter = std::env::var("RELCTL_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| cli::progress::LogWriter)
        .with_ansi(color)
        .with_target(false)
        .with_timer(Seconds)
        .init();
}

/// Log times to the second, UTC (`2026-12-02 09:41:07`): a log line is read
/// by a person, and a controller's log spans days.
struct Seconds;

impl tracing_subscriber::fmt::time::FormatTime for Seconds {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = time::OffsetDateTime::now_utc();
        let (d, t) = (now.date(), now.time());
        write!(
            w,
            "{}-{:02}-{:02} {:02}:{:02}:{:02}",
            d.year(),
            d.month() as u8,
            d.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(&cli.global);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime starts");
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (code, hint) = cli::classify(&err);
            let mut chain = err.chain();
            eprintln!("error: {}", chain.next().expect("an error has a message"));
            for cause in chain {
                eprintln!("  caused by: {cause}");
            }
            if let Some(hint) = &hint {
                eprintln!("hint: {hint}");
            }
            if relctl::forge::actions::active() {
                let message = match &hint {
                    Some(h) => format!("{err:#}\nhint: {h}"),
                    None => format!("{err:#}"),
                };
                eprintln!("{}", relctl::forge::actions::error_command("relctl", &message));
            }
            ExitCode::from(code)
        }
    }
}
