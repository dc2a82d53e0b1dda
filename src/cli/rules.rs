//! `canary rules list|explain ID|check DIR`: what the detectors look for.

use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;

use canary_analyzer::detect::content::ContentEngine;

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
        /// Include the user rules in DIR.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Everything about one rule: what it means, what to do, and (for secret rules) the
    /// pattern and checks.
    Explain {
        id: String,
        /// Include the user rules in DIR.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Compile a user rule directory with the built-in rules and run its rules' own
    /// positive and negative examples. Exit 0 when all pass, 1 when an example fails, 2
    /// when the rules do not load or compile.
    Check { dir: PathBuf },
}

/// The digest a scan with user rules reports: built-in and user rules together.
pub fn combined_digest(user: &str) -> String {
    let mut h = Sha256::new();
    h.update(canary_rules::rules_digest().as_bytes());
    h.update(b"\n");
    h.update(user.as_bytes());
    format!("sha256:{}", canary_analyzer::hex(&h.finalize()))
}

/// Load user rules for `list`/`explain`, so their metadata is known.
fn load_user(dir: &Option<PathBuf>) -> Result<(), String> {
    if let Some(d) = dir {
        ContentEngine::with_user_rules(d)?;
    }
    Ok(())
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
    let loaded = match &a.command {
        RulesCommand::List { rules, .. } | RulesCommand::Explain { rules, .. } => load_user(rules),
        RulesCommand::Check { .. } => Ok(()),
    };
    if let Err(e) = loaded {
        eprintln!("error: --rules: {e}");
        return Ok(2);
    }
    let all: Vec<&canary_rules::RuleMeta> = canary_rules::rules()
        .iter()
        .chain(canary_rules::user_rules())
        .collect();
    match a.command {
        RulesCommand::Check { dir } => check(&dir, out),
        RulesCommand::List { json, .. } => {
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
                for r in &all {
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
        RulesCommand::Explain { id, .. } => {
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

fn check(dir: &std::path::Path, out: &mut dyn Write) -> std::io::Result<i32> {
    let (engine, user) = match ContentEngine::with_user_rules(dir) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(2);
        }
    };
    let ids: std::collections::HashSet<String> = canary_rules::user_rules()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let failures = engine.example_failures(Some(&ids));
    for f in &failures {
        writeln!(out, "FAIL {}", canary_analyzer::report::printable(f))?;
    }
    writeln!(
        out,
        "{}: {} YARA rules, {} secret rules, {} pool names, {} IOC hashes; {} example failures; digest {}",
        dir.display(),
        canary_rules::user_rules().len() - user.secrets.len(),
        user.secrets.len(),
        user.pools.len(),
        user.iocs.len(),
        failures.len(),
        user.digest
    )?;
    Ok(if failures.is_empty() { 0 } else { 1 })
}
