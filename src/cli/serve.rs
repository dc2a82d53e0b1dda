//! `canary serve`: wire the flags to the service library and run it until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use canary_analyzer::finding::Severity;
use canary_analyzer::policy::Policy;
use canary_service::admission::{AdmissionConfig, OnMiss};
use canary_service::scanner::{Scanner, ScannerParts};
use canary_service::server::{App, ServeConfig};
use canary_service::store::Store;
use canary_service::worker::QueueConfig;
use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Store: `sqlite://PATH` (default: canary.db under $XDG_DATA_HOME/canary) or
    /// `postgres://user@host:5432/db` (several replicas may share one).
    #[arg(long, env = "CANARY_DB", value_name = "URL")]
    pub db: Option<String>,
    /// Scans at once in this process.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// File of accepted API tokens, one per line (also CANARY_API_TOKENS, comma-separated).
    /// Clients send `Authorization: Bearer TOKEN`; Harbor sends `X-ScannerAdapter-API-Key`.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Serve without authentication on a non-loopback address.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Deny images with findings at or above this severity.
    #[arg(long, default_value = "high", value_name = "SEVERITY")]
    pub fail_on: Severity,
    /// Ignore file (TOML, as `canary scan --ignore-file`); part of the policy digest.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// Only pull from this registry (`host[:port]`; repeatable). Without it any registry a
    /// request names is contacted.
    #[arg(long = "allow-registry", value_name = "HOST")]
    pub allow_registry: Vec<String>,
    /// Add the rules in DIR (as `canary scan --rules`); they change the rules digest, so
    /// verdicts made without them are stale and images are scanned again.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Platform scanned when a request names none.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    pub platform: String,
    /// Admission webhook, image without a verdict: deny, allow (and scan), or wait for
    /// the scan up to --admission-wait-ms.
    #[arg(long, default_value = "wait", value_name = "deny|allow|wait")]
    pub admission_on_miss: OnMiss,
    /// Admission webhook: how long to wait for a scan (keep it under the webhook's
    /// timeoutSeconds).
    #[arg(long, default_value_t = 8000, value_name = "MS")]
    pub admission_wait_ms: u64,
    /// Admission webhook: TOML with per-namespace settings (`[namespaces.NAME]` with
    /// on_miss, wait_ms, after_wait).
    #[arg(long, value_name = "FILE")]
    pub admission_config: Option<PathBuf>,
    /// A job not heard from for this long is taken up again by another worker.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub job_lease_secs: u64,
    /// Attempts of a job before it fails for good.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i64,
    /// Largest request body accepted.
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Longest a request may take.
    #[arg(long, default_value_t = 25, value_name = "SECONDS")]
    pub request_timeout_secs: u64,
    #[command(flatten)]
    pub registry: super::RegistryArgs,
}

fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("canary");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".local/share/canary")
}

fn tokens(a: &ServeArgs) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = std::env::var("CANARY_API_TOKENS")
        .unwrap_or_default()
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(p) = &a.token_file {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("--token-file {}", p.display()))?;
        out.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if let Some(short) = out.iter().find(|t| t.len() < 16) {
        anyhow::bail!(
            "an API token of {} characters is too short to be safe (at least 16)",
            short.len()
        );
    }
    Ok(out)
}

pub fn run(a: ServeArgs) -> anyhow::Result<i32> {
    if a.registry.username.is_some() || a.registry.password_stdin {
        // The service pulls from registries that requests name: one password for every
        // registry would be sent to whichever host an image reference points at.
        anyhow::bail!(
            "canary serve takes registry credentials per registry, from a Docker config file's auths (--docker-config), not --username/--password-stdin/CANARY_REGISTRY_USERNAME"
        );
    }
    let tokens = tokens(&a)?;
    if tokens.is_empty() && !a.listen.ip().is_loopback() && !a.insecure_no_auth {
        anyhow::bail!(
            "refusing to serve {} without API tokens: set --token-file or CANARY_API_TOKENS (or --insecure-no-auth)",
            a.listen
        );
    }
    let mut policy = Policy::new(a.fail_on);
    if let Some(p) = &a.ignore_file {
        policy = policy.with_ignore_file(p)?;
    }
    a.platform
        .parse::<canary_analyzer::image::Platform>()
        .map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
    let mut admission = AdmissionConfig::default();
    admission.default.on_miss = a.admission_on_miss;
    admission.default.wait_ms = a.admission_wait_ms;
    if let Some(p) = &a.admission_config {
        admission = AdmissionConfig::from_file(p, admission)?;
    }
    let (detectors, rules_digest) = match &a.rules {
        None => (
            canary_analyzer::detect::default_detectors(),
            canary_rules::rules_digest(),
        ),
        Some(dir) => {
            let (engine, user) =
                canary_analyzer::detect::content::ContentEngine::with_user_rules(dir)
                    .map_err(|e| anyhow::anyhow!("--rules: {e}"))?;
            (
                canary_analyzer::detect::detectors_with(engine),
                super::rules::combined_digest(&user.digest),
            )
        }
    };
    let db =
        a.db.clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir().join("canary.db").display()));
    let registry = a.registry.options()?;
    let cache = a.registry.cache();
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        let store = Store::open(&db).await?;
        if store.is_sqlite() {
            let n = store.requeue_running().await?;
            if n > 0 {
                eprintln!("canary serve: {n} job(s) interrupted by the last stop are queued again");
            }
        }
        let scanner = Arc::new(Scanner::new(ScannerParts {
            store: store.clone(),
            policy,
            rules_digest,
            detectors,
            registry: registry.clone(),
            cache: cache.clone(),
            workers: a.workers,
        }));
        let resolver = canary_analyzer::source::registry::RegistryClient::new(
            canary_analyzer::source::registry::RegistryOptions {
                max_retries: 0,
                ..registry
            },
            cache,
        )?;
        let app = Arc::new(App {
            scanner: scanner.clone(),
            config: ServeConfig {
                listen: a.listen,
                tokens,
                allow_no_auth: a.insecure_no_auth,
                tls: a.tls_cert.clone().zip(a.tls_key.clone()),
                platform: a.platform.clone(),
                max_attempts: a.max_attempts.max(1),
                admission,
                max_body: a.max_body_bytes,
                request_timeout: Duration::from_secs(a.request_timeout_secs.max(1)),
                allowed_registries: a.allow_registry.clone(),
            },
            wake: Arc::new(tokio::sync::Notify::new()),
            resolver,
        });
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let workers = canary_service::worker::spawn(
            scanner,
            QueueConfig {
                workers: a.workers,
                lease: Duration::from_secs(a.job_lease_secs.max(3)),
                poll: Duration::from_secs(1),
            },
            app.wake.clone(),
            stop_rx.clone(),
        );
        eprintln!(
            "canary serve: listening on {}://{} (store {}, {} workers)",
            if app.config.tls.is_some() {
                "https"
            } else {
                "http"
            },
            listener.local_addr()?,
            store.describe(),
            a.workers.max(1)
        );
        let server = tokio::spawn(canary_service::server::serve(app, listener, stop_rx));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("canary serve: stopping; running jobs are taken up again at the next start");
        let _ = stop_tx.send(true);
        let _ = server.await;
        // Workers between jobs stop at once; one mid-scan is left to its lease.
        for w in workers {
            let _ = tokio::time::timeout(Duration::from_millis(200), w).await;
        }
        anyhow::Ok(0)
    });
    // A scan still running on a blocking thread is not waited for: its job is taken up
    // again (at the next start on SQLite, when its lease runs out on PostgreSQL).
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}
