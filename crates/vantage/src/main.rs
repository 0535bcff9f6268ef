//! The `vantage` binary: parses arguments, sets up logging and the runtime, and hands over to the
//! library. Everything testable lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vantage::Cli::parse();
    if !cli.command.is_service() {
        end_quietly_on_closed_output();
    }
    // Services log their informational lines by default; one-shot commands only warnings.
    let verbose = cli.verbose + u8::from(cli.command.is_service());
    vantage::init_tracing(verbose);
    let mut builder = if cli.command.single_threaded() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vantage: cannot start the async runtime: {e}");
            return ExitCode::from(vantage::EXIT_SETUP);
        }
    };
    ExitCode::from(runtime.block_on(vantage::run(cli)))
}

/// One-shot commands stop quietly when whoever reads their output goes away (`vantage ping … |
/// head`), as command-line tools do. The Rust runtime ignores SIGPIPE, which turns every later
/// write into an error and `println!` into a panic with a backtrace. Services keep ignoring it:
/// a client that hangs up must not stop the server or an agent.
#[allow(unsafe_code)]
fn end_quietly_on_closed_output() {
    // SAFETY: runs at the start of `main`, before the runtime starts any thread, and only sets
    // the default disposition of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
