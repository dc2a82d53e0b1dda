//! Command-line definitions, one file per subcommand.

mod cache;
mod crawl;
mod helm;
mod resolve;
mod rules;
mod sandbox;
mod scan;
mod serve;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "canary",
    version,
    about = "Container image and supply-chain analyzer: crypto-miners, secrets, risky image configs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan an image: a registry reference, docker-archive:PATH, oci:DIR[:REF] or oci-archive:PATH[:REF].
    Scan(scan::ScanArgs),
    /// Resolve a registry reference to its manifest digest with a HEAD request (does not
    /// count against Docker Hub's pull limit).
    Resolve(resolve::ResolveArgs),
    /// Manage the blob cache.
    Cache(cache::CacheArgs),
    /// List the detection rules, or explain one.
    Rules(rules::RulesArgs),
    /// Run an image's entrypoint in the sandbox (isolated namespaces, no network, a
    /// wall-clock budget) and print what happened as JSON lines.
    RunSandbox(sandbox::SandboxArgs),
    /// Run the admission gate service: scan API, Harbor scanner adapter, Kubernetes
    /// admission webhook, registry push events, with a persistent store and job queue.
    Serve(serve::ServeArgs),
    /// Crawl many images (a list, a registry's catalog, Docker Hub namespaces or
    /// searches) into a store, each unique layer walked once; resumable, and several
    /// processes can share one PostgreSQL.
    Crawl(crawl::CrawlArgs),
    /// Figures over a crawl's store: Markdown, HTML with charts, CSV of findings, JSON.
    Report(crawl::ReportArgs),
    /// Helm charts: `canary helm SOURCE` (or `helm scan SOURCE`) scans a chart, package or Git repository; `canary helm template CHART` renders one as `helm template` does.
    Helm(helm::HelmArgs),
}

/// How to reach registries; shared by the subcommands that talk to one.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP to this registry host (loopback is always allowed). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Registry username (also CANARY_REGISTRY_USERNAME).
    #[arg(long, env = "CANARY_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Docker config file with `auths` (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Retries of a request on HTTP 429/5xx or a broken connection.
    #[arg(long, default_value_t = 4)]
    pub max_retries: u32,
    /// First retry backoff in milliseconds; doubles on each retry (a `Retry-After` wins).
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub retry_base_ms: u64,
    /// Blob cache directory (default: $XDG_CACHE_HOME/canary).
    #[arg(long, value_name = "DIR", env = "CANARY_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn cache(&self) -> canary_analyzer::cache::BlobCache {
        canary_analyzer::cache::BlobCache::new(
            self.cache_dir
                .clone()
                .unwrap_or_else(canary_analyzer::cache::BlobCache::default_dir),
        )
    }

    /// Where the sandbox keeps unpacked rootfs and its runs' scratch directories.
    pub fn sandbox_cache(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(canary_analyzer::cache::BlobCache::default_dir)
            .join("sandbox")
    }

    pub fn client(&self) -> anyhow::Result<canary_analyzer::source::registry::RegistryClient> {
        Ok(canary_analyzer::source::registry::RegistryClient::new(
            self.options()?,
            self.cache(),
        )?)
    }

    /// Registry options from the flags, the environment and (for a password) stdin.
    pub fn options(&self) -> anyhow::Result<canary_analyzer::source::registry::RegistryOptions> {
        use canary_analyzer::source::registry::{Credentials, RegistryOptions};
        let password = if self.password_stdin {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            Some(s.trim_end_matches(['\n', '\r']).to_string())
        } else {
            std::env::var("CANARY_REGISTRY_PASSWORD").ok()
        };
        let credentials = match (&self.username, password) {
            (Some(u), Some(p)) => Some(Credentials {
                username: u.clone(),
                password: p,
            }),
            (Some(_), None) => anyhow::bail!(
                "--username needs a password: --password-stdin or CANARY_REGISTRY_PASSWORD"
            ),
            (None, Some(_)) if self.password_stdin => {
                anyhow::bail!("--password-stdin needs --username")
            }
            _ => None,
        };
        let opts = RegistryOptions {
            insecure_hosts: self.insecure_registry.clone(),
            credentials,
            docker_config: self.docker_config.clone(),
            max_retries: self.max_retries,
            retry_base: std::time::Duration::from_millis(self.retry_base_ms),
            ..Default::default()
        };
        Ok(opts)
    }
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Scan(a) => scan::run(a),
        Command::Resolve(a) => resolve::run(a),
        Command::Cache(a) => cache::run(a),
        Command::Rules(a) => rules::run(a),
        Command::RunSandbox(a) => sandbox::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Crawl(a) => crawl::run(a),
        Command::Report(a) => crawl::report(a),
        Command::Helm(a) => helm::run(a),
    }
}

/// A tokio runtime for the network part.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
