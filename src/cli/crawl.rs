//! `canary crawl` and `canary report`: the bulk research crawl over the service's store.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use canary_analyzer::finding::Severity;
use canary_analyzer::policy::Policy;
use canary_service::crawl::{Expand, HubClient, Source};
use canary_service::scanner::{Scanner, ScannerParts};
use canary_service::store::Store;
use canary_service::worker::QueueConfig;
use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// A file of image references, one a line (repeatable).
    #[arg(long, value_name = "FILE")]
    pub from_file: Vec<PathBuf>,
    /// A registry (`host[:port]`): every repository of its `/v2/_catalog` (repeatable).
    #[arg(long, value_name = "HOST")]
    pub registry: Vec<String>,
    /// Every repository of a Docker Hub namespace (repeatable).
    #[arg(long, value_name = "NS")]
    pub hub_namespace: Vec<String>,
    /// The repositories a Docker Hub search finds (repeatable).
    #[arg(long, value_name = "QUERY")]
    pub hub_search: Vec<String>,
    /// Store shared by every crawl worker: `sqlite://PATH` or `postgres://…`. Without a
    /// source, this process only works the queue already there (another machine's crawl).
    #[arg(long, env = "CANARY_DB", value_name = "URL")]
    pub db: String,
    /// Scans at once in this process.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// With an empty queue, wait this long for work before stopping (workers started
    /// alongside the process that fills the queue).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub linger_secs: u64,
    /// Queue the sources' images and stop (workers elsewhere, e.g. the Kubernetes
    /// Deployment of deploy/, do the scanning).
    #[arg(long)]
    pub enqueue_only: bool,
    /// Also run each image in the sandbox and add its runtime findings.
    #[arg(long)]
    pub runtime: bool,
    /// Wall-clock budget of each sandboxed run.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub runtime_timeout: u64,
    /// Tags per repository (Docker Hub: the newest first).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_tags: usize,
    /// Repositories per source.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_repos: usize,
    /// Docker Hub's API.
    #[arg(long, default_value = "https://hub.docker.com", value_name = "URL")]
    pub hub_url: String,
    /// Registry that Docker Hub's repositories are pulled from.
    #[arg(long, default_value = "docker.io", value_name = "HOST")]
    pub hub_registry: String,
    /// Delete each image's blobs from the cache once scanned (keeps disk bounded; layer
    /// results stay in the store).
    #[arg(long)]
    pub delete_blobs: bool,
    /// Platform scanned.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    pub platform: String,
    /// Policy threshold recorded in verdicts.
    #[arg(long, default_value = "high", value_name = "SEVERITY")]
    pub fail_on: Severity,
    /// Registry credentials to rotate, `HOST USER:PASSWORD` a line; a host may appear
    /// several times (pulls go out under a credential with pulls left).
    #[arg(long, value_name = "FILE")]
    pub registry_credentials: Option<PathBuf>,
    /// Attempts of an image before it fails for good.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i64,
    /// A job not heard from for this long is taken over by another worker.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub job_lease_secs: u64,
    #[command(flatten)]
    pub registry_args: super::RegistryArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Csv,
    Json,
    /// Every finding, as a Parquet file (needs --output).
    Parquet,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The crawl's store.
    #[arg(long, env = "CANARY_DB", value_name = "URL")]
    pub db: String,
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(a: CrawlArgs) -> anyhow::Result<i32> {
    if a.registry_args.username.is_some() || a.registry_args.password_stdin {
        anyhow::bail!(
            "canary crawl takes registry credentials per registry, from a Docker config file's auths (--docker-config)"
        );
    }
    a.platform
        .parse::<canary_analyzer::image::Platform>()
        .map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
    let mut sources: Vec<Source> = Vec::new();
    sources.extend(a.from_file.iter().cloned().map(Source::File));
    sources.extend(a.registry.iter().cloned().map(Source::Registry));
    sources.extend(a.hub_namespace.iter().cloned().map(Source::HubNamespace));
    sources.extend(a.hub_search.iter().cloned().map(Source::HubSearch));
    let hub = if a.hub_namespace.is_empty() && a.hub_search.is_empty() {
        None
    } else {
        Some(HubClient::new(&a.hub_url)?)
    };
    let registry = a.registry_args.options()?;
    let cache = a.registry_args.cache();
    let sandbox_cache = a.registry_args.sandbox_cache();
    let client = a.registry_args.client()?;
    let tty = std::io::stderr().is_terminal();
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        let store = Store::open(&a.db).await?;
        if store.is_sqlite() {
            store.requeue_running().await?;
        }
        let mut scanner = Scanner::new(ScannerParts {
            store: store.clone(),
            policy: Policy::new(a.fail_on),
            rules_digest: canary_rules::rules_digest(),
            detectors: canary_analyzer::detect::default_detectors(),
            registry,
            cache,
            workers: a.workers,
        });
        scanner.delete_blobs = a.delete_blobs;
        if let Some(f) = &a.registry_credentials {
            scanner.rates = canary_service::ratelimit::RateGate::from_file(f)
                .with_context(|| "--registry-credentials")?;
        }
        if a.runtime {
            let init = std::env::current_exe().context("the canary binary's own path")?;
            let limits =
                super::sandbox::limits_of(a.runtime_timeout, 256, 1024, 1.0, 512);
            scanner.runtime = Some(Arc::new(move |img: &canary_analyzer::image::ResolvedImage| {
                super::scan::runtime_findings(img, &sandbox_cache, &limits, None, &init)
            }));
        }
        let scanner = Arc::new(scanner);
        let limits = Expand {
            max_tags: a.max_tags.max(1),
            max_repos: a.max_repos.max(1),
            hub_registry: a.hub_registry.clone(),
        };
        for s in &sources {
            let refs = canary_service::crawl::expand(s, &client, hub.as_ref(), &limits).await?;
            let (new, existing) =
                canary_service::crawl::enqueue_all(&scanner, &refs, &a.platform, a.max_attempts)
                    .await?;
            eprintln!(
                "{}",
                serde_json::json!({"event": "source", "source": format!("{s:?}"), "images": refs.len(), "queued": new, "already_queued": existing})
            );
        }
        if a.enqueue_only {
            return anyhow::Ok(0);
        }
        let started = Instant::now();
        let mut last_log = Instant::now() - Duration::from_secs(60);
        let done_at_start = store.job_counts().await?.get("done").copied().unwrap_or(0);
        let m = scanner.metrics.clone();
        let end = canary_service::crawl::drain(
            scanner.clone(),
            QueueConfig {
                workers: a.workers.max(1),
                lease: Duration::from_secs(a.job_lease_secs.max(3)),
                poll: Duration::from_millis(500),
            },
            Duration::from_secs(a.linger_secs),
            |p| {
                let done = (p.done - done_at_start).max(0);
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let rate = done as f64 / secs;
                let eta = if rate > 0.0 {
                    format!("{:.0}s", (p.queued + p.running) as f64 / rate)
                } else {
                    "?".into()
                };
                let reused = m.layers_reused();
                if tty {
                    eprint!(
                        "\r\x1b[2K{done} images done ({:.2}/s), {} failed, {} queued, {} running, {reused} layers deduped, ETA {eta}",
                        rate, p.failed, p.queued, p.running
                    );
                } else if last_log.elapsed() >= Duration::from_secs(10) {
                    last_log = Instant::now();
                    eprintln!(
                        "{}",
                        serde_json::json!({"event": "progress", "done": done, "failed": p.failed, "queued": p.queued, "running": p.running, "images_per_s": rate, "layers_deduped": reused, "eta": eta})
                    );
                }
            },
        )
        .await?;
        if tty {
            eprintln!();
        }
        eprintln!(
            "{}",
            serde_json::json!({
                "event": "end", "done": end.done, "failed": end.failed,
                "seconds": started.elapsed().as_secs_f64(),
                "layers_walked": m.layers_walked(), "layers_deduped": m.layers_reused(),
            })
        );
        anyhow::Ok(if end.failed > 0 { 2 } else { 0 })
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

pub fn report(a: ReportArgs) -> anyhow::Result<i32> {
    let format = match (&a.output, a.format) {
        (Some(p), ReportFormat::Md) => match p.extension().and_then(|e| e.to_str()) {
            Some("html") => ReportFormat::Html,
            Some("csv") => ReportFormat::Csv,
            Some("json") => ReportFormat::Json,
            Some("parquet") => ReportFormat::Parquet,
            _ => ReportFormat::Md,
        },
        (_, f) => f,
    };
    if matches!(format, ReportFormat::Parquet) && a.output.is_none() {
        anyhow::bail!("--format parquet writes a binary file: name it with --output FILE");
    }
    let figures = super::runtime()?.block_on(async {
        // Read-only: a report may run while a crawl holds the store.
        let store = Store::open_for_reading(&a.db).await?;
        canary_service::report::figures(&store).await
    })?;
    let bytes = match format {
        ReportFormat::Md => canary_service::report::markdown(&figures).into_bytes(),
        ReportFormat::Html => canary_service::report::html(&figures).into_bytes(),
        ReportFormat::Csv => canary_service::report::csv(&figures).into_bytes(),
        ReportFormat::Json => serde_json::to_string_pretty(&figures)?.into_bytes(),
        ReportFormat::Parquet => canary_service::report::parquet(&figures)?,
    };
    match &a.output {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?,
    }
    Ok(0)
}
