//! `canary rules list|explain ID`: what the detectors look for.

use clap::{Args, Subcommand};
use std::io::Write;

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// One line per rule: id, severity, title.
    List {
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Everything about one rule: what it means, what to do, and (for secret rules) the
    /// pattern and checks.
    Explain { id: String },
}

pub fn run(a: RulesArgs) -> anyhow::Result<i32> {
    match print(a, &mut std::io::stdout().lock()) {
        // `canary rules list | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
        Ok(code) => Ok(code),
    }
}

fn print(a: RulesArgs, out: &mut dyn Write) -> std::io::Result<i32> {
    let all = canary_rules::rules();
    match a.command {
        RulesCommand::List { json } => {
            if json {
                let v: Vec<_> = all
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id, "severity": r.severity, "category": r.category, "title": r.title
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for r in all {
                    writeln!(out, "{:<40} {:<9} {}", r.id, r.severity, r.title)?;
                }
                eprintln!(
                    "{} rules, rules digest {}",
                    all.len(),
                    canary_rules::rules_digest()
                );
            }
            Ok(0)
        }
        RulesCommand::Explain { id } => {
            let Some(r) = canary_rules::rule(&id) else {
                eprintln!("error: no rule {id:?}; `canary rules list` shows them all");
                return Ok(2);
            };
            writeln!(out, "{}\n  {}\n", r.id, r.title)?;
            writeln!(out, "severity: {}\ncategory: {}\n", r.severity, r.category)?;
            writeln!(out, "{}\n", r.description)?;
            writeln!(out, "What to do: {}", r.help)?;
            if let Some(s) = canary_rules::secret_rules().iter().find(|s| s.id == id) {
                writeln!(
                    out,
                    "\npattern: {}{}",
                    s.regex,
                    if s.nocase { "  (case-insensitive)" } else { "" }
                )?;
                if s.group != 0 {
                    writeln!(out, "secret: capture group {}", s.group)?;
                }
                if let Some(e) = s.entropy {
                    writeln!(out, "minimum entropy: {e} bits per character")?;
                }
                if let Some(c) = &s.check {
                    writeln!(out, "check: {c}")?;
                }
                if !s.paths.is_empty() {
                    writeln!(out, "only in: {}", s.paths.join(", "))?;
                }
                writeln!(
                    out,
                    "examples: {} positive, {} negative (run as tests)",
                    s.positive.len(),
                    s.negative.len()
                )?;
            }
            Ok(0)
        }
    }
}
