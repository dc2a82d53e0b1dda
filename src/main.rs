//! The `canary` binary: parses arguments, wires sources to the analyzer, prints, and owns
//! exit codes (0 clean, 1 policy failed, 2 error or incomplete scan) and progress bars.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() {
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
