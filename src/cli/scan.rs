//! `canary scan TARGET`.

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use canary_analyzer::finding::Severity;
use canary_analyzer::image::Platform;
use canary_analyzer::policy::Policy;
use canary_analyzer::report::{self, Report};
use canary_analyzer::scan::{Progress, ScanInput, ScanOptions, scan_images};
use canary_analyzer::source::Target;

use super::RegistryArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// What to scan: `nginx:1.27`, `registry:5000/app@sha256:…`, `docker-archive:img.tar`
    /// (or a bare `docker save` .tar), `oci:DIR[:REF]`, `oci-archive:PATH[:REF]`.
    pub target: String,
    /// Platform to pick from a multi-platform image.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Platform,
    /// Scan every platform of a multi-platform image.
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,
    /// Output format (default: table on a terminal, json otherwise; or from --output's
    /// extension: .json, .sarif).
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Fail (exit 1) on findings at or above this severity.
    #[arg(long, default_value = "high", value_name = "SEVERITY")]
    pub fail_on: Severity,
    /// Ignore file (TOML, `[[ignore]]` entries keyed by rule, path glob or fingerprint,
    /// each with a reason). Default: `.canaryignore.toml` if present.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// Add the rules in DIR: `*.yar` YARA rules, `*.toml` secret rules, `mining-pools.txt`,
    /// `ioc-sha256.txt` (`canary rules check DIR` tests them first).
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Layer workers (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// No progress bars even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Also run each image's entrypoint in the sandbox and judge what it does (runtime
    /// rules: Stratum, pools, cloud metadata, miners started, pipe-to-shell,
    /// masquerading, CPU saturation). Needs Linux user namespaces.
    #[arg(long)]
    pub runtime: bool,
    /// Wall-clock budget of each runtime run, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS", requires = "runtime")]
    pub runtime_timeout: u64,
    /// What the sandbox's sinkhole answers every HTTP request with (a second stage for
    /// a dropper to fetch), instead of a 404; at most 1 MiB.
    #[arg(long, value_name = "FILE", requires = "runtime")]
    pub runtime_http_body: Option<PathBuf>,
    /// The Content-Type of `--runtime-http-body`.
    #[arg(
        long,
        default_value = "application/octet-stream",
        value_name = "TYPE",
        requires = "runtime_http_body"
    )]
    pub runtime_http_content_type: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

struct Bars {
    bar: ProgressBar,
}

impl Progress for Bars {
    fn start(&self, layers: usize, _bytes: u64) {
        self.bar.set_length(layers as u64);
        self.bar.set_message("scanning layers");
    }
    fn layer_done(&self, _image: &str, _layer: usize, _bytes: u64) {
        self.bar.inc(1);
    }
}

pub(super) fn default_format(output: &Option<PathBuf>) -> Format {
    match output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
    {
        Some("json") => Format::Json,
        Some("sarif") => Format::Sarif,
        Some(_) => Format::Table,
        None if std::io::stdout().is_terminal() => Format::Table,
        None => Format::Json,
    }
}

pub fn run(a: ScanArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let mut policy = Policy::new(a.fail_on);
    let ignore = a.ignore_file.clone().or_else(|| {
        let p = PathBuf::from(".canaryignore.toml");
        p.is_file().then_some(p)
    });
    if let Some(p) = &ignore {
        policy = policy.with_ignore_file(p)?;
        // Said out loud: an ignore file in a checked-out tree can waive findings.
        eprintln!(
            "using ignore file {} ({} rules)",
            p.display(),
            policy.ignores.len()
        );
    }
    // Rules first: a broken rule directory fails before any download.
    let (detectors, rules_digest) = match &a.rules {
        None => (canary_analyzer::detect::default_detectors(), None),
        Some(dir) => {
            let (engine, user) =
                canary_analyzer::detect::content::ContentEngine::with_user_rules(dir)
                    .map_err(|e| anyhow::anyhow!("--rules: {e}"))?;
            (
                canary_analyzer::detect::detectors_with(engine),
                Some(super::rules::combined_digest(&user.digest)),
            )
        }
    };
    let target = Target::parse(&a.target)?;
    let client = a.registry.client()?;
    let show = !a.no_progress && std::io::stderr().is_terminal();
    let spinner = show.then(|| {
        let s = ProgressBar::new_spinner();
        s.set_message(format!("resolving {}", target.display()));
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        s
    });
    let images = super::runtime()?
        .block_on(canary_analyzer::open_target(
            &target,
            &client,
            &a.platform,
            a.all_platforms,
        ))
        .with_context(|| format!("cannot open {}", target.display()))?;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let fetch = client.stats();
    if let Some(rl) = &fetch.rate_limit
        && let Some(rem) = rl.remaining
    {
        eprintln!(
            "registry rate limit: {rem} of {} pulls left",
            rl.limit
                .map(|l| l.to_string())
                .unwrap_or_else(|| "?".into())
        );
    }
    let bars = Bars {
        bar: if show {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:30}] {pos}/{len} layers {elapsed}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            b
        } else {
            ProgressBar::hidden()
        },
    };
    let options = ScanOptions {
        threads: a.threads,
        rules_digest,
        ..Default::default()
    };
    let sandbox_cache = a.registry.sandbox_cache();
    let init = std::env::current_exe().context("the canary binary's own path")?;
    let limits = super::sandbox::limits_of(a.runtime_timeout, 256, 1024, 1.0, 512);
    let http = super::sandbox::http_reply(
        a.runtime_http_body.as_deref(),
        &a.runtime_http_content_type,
        "--runtime-http-body",
    )?;
    let run_it = |img: &canary_analyzer::image::ResolvedImage| {
        runtime_findings(img, &sandbox_cache, &limits, http.as_ref(), &init)
    };
    let report = scan_images(
        &images,
        ScanInput {
            target: &a.target,
            detectors: &detectors,
            policy: &policy,
            options: &options,
            progress: &bars,
            fetch,
            issues: vec![],
            started,
            runtime: if a.runtime { Some(&run_it) } else { None },
            known_layers: Default::default(),
            on_layer_walked: None,
        },
    );
    bars.bar.finish_and_clear();
    for e in &report.coverage.errors {
        eprintln!("error: {e}");
    }
    let written = write_report(
        &report,
        a.format.unwrap_or_else(|| default_format(&a.output)),
        a.output.as_ref(),
    );
    match written {
        // The reader went away (`| head`): the verdict still stands in the exit code.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {}
        other => other?,
    }
    Ok(report.exit_code())
}

pub(super) fn write_report(
    report: &Report,
    format: Format,
    output: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let color = output.is_none()
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    match format {
        Format::Table => report::table::write(report, &mut out, color)?,
        Format::Json => report::json::write(report, &mut out)?,
        Format::Sarif => report::sarif::write(report, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// `--runtime`: run the image in the sandbox and judge it. A run that could not happen
/// makes the scan incomplete; an image with nothing to run is a warning.
pub(super) fn runtime_findings(
    img: &canary_analyzer::image::ResolvedImage,
    cache: &std::path::Path,
    limits: &canary_sandbox::Limits,
    http: Option<&canary_sandbox::HttpReply>,
    init: &std::path::Path,
) -> (
    Vec<canary_analyzer::finding::Finding>,
    Vec<canary_analyzer::report::Issue>,
) {
    use canary_analyzer::report::{Issue, IssueLevel};
    let issue = |level, message: String| Issue {
        level,
        image: img.name.clone(),
        layer: None,
        path: None,
        message,
    };
    let c = &img.config.config;
    if c.entrypoint.as_ref().is_none_or(Vec::is_empty) && c.cmd.as_ref().is_none_or(Vec::is_empty) {
        return (
            Vec::new(),
            vec![issue(
                IssueLevel::Warning,
                "runtime: the image has neither Entrypoint nor Cmd; nothing was run".into(),
            )],
        );
    }
    let run = match canary_sandbox::run_image(img, cache, limits.clone(), http, init) {
        Ok(r) => r,
        Err(e) => {
            return (
                Vec::new(),
                vec![issue(IssueLevel::Error, format!("runtime: {e}"))],
            );
        }
    };
    let mut issues: Vec<Issue> = run
        .notes
        .iter()
        .map(|n| issue(IssueLevel::Warning, format!("runtime: {n}")))
        .collect();
    if let canary_sandbox::Exit::SetupFailed { message } = &run.outcome.exit {
        issues.push(issue(
            IssueLevel::Error,
            format!("runtime: the entrypoint could not be run: {message}"),
        ));
    }
    (canary_sandbox::runtime::findings(&run.observed), issues)
}
