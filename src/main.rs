//! The `canary` binary: parses arguments, wires sources to the analyzer, prints, and owns
//! exit codes (0 clean, 1 policy failed, 2 error or incomplete scan) and progress bars.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() {
    // The sandbox's init: a fresh process of ours, started by the sandbox itself.
    let mut raw = std::env::args_os().skip(1);
    if raw.next().as_deref() == Some(std::ffi::OsStr::new(canary_sandbox::INIT_SUBCOMMAND)) {
        let config = raw.next().unwrap_or_default();
        std::process::exit(canary_sandbox::init_main(std::path::Path::new(&config)));
    }
    let args = cli::Cli::parse();
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("error: {}", canary_analyzer::report::printable(&msg));
            2
        }
    };
    std::process::exit(code);
}
