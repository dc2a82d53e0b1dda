//! The `canary` binary: parses arguments, wires sources to the analyzer, prints, and owns
//! exit codes (0 clean, 1 policy failed, 2 error or incomplete scan) and progress bars.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

/// `canary helm SOURCE` is short for `canary helm scan SOURCE`.
fn helm_shorthand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let sub = |s: &str| matches!(s, "scan" | "template" | "help") || s.starts_with('-');
    if args.get(1).is_some_and(|a| a == "helm")
        && args
            .get(2)
            .and_then(|a| a.to_str())
            .is_some_and(|a| !sub(a))
    {
        args.insert(2, "scan".into());
    }
    args
}

fn main() {
    // The sandbox's init: a fresh process of ours, started by the sandbox itself.
    let mut raw = std::env::args_os().skip(1);
    if raw.next().as_deref() == Some(std::ffi::OsStr::new(canary_sandbox::INIT_SUBCOMMAND)) {
        let config = raw.next().unwrap_or_default();
        std::process::exit(canary_sandbox::init_main(std::path::Path::new(&config)));
    }
    let args = cli::Cli::parse_from(helm_shorthand(std::env::args_os().collect()));
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
