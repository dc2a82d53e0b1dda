//! The bulk research crawl: turn sources (a file of references, a registry's catalog,
//! Docker Hub namespaces or searches) into queued scan jobs, then work the queue until
//! it is empty. Everything lives in the store, so several `canary crawl` processes on
//! several machines can share one PostgreSQL, and a killed crawl resumes where it was:
//! finished images are not pulled again (their tags are HEADed and found known) and
//! finished layers are never walked again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::scanner::Scanner;
use crate::store::NewJob;
use crate::worker::QueueConfig;

/// A Docker Hub API client (`/v2/namespaces/…`, `/v2/search/repositories`), paged and
/// bounded. Only reads public listings; pulls go through the registry client.
pub struct HubClient {
    http: reqwest::Client,
    /// `https://hub.docker.com`, or a local server speaking the same API in tests.
    base: String,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default)]
    next: Option<String>,
    #[serde(default = "Vec::new")]
    results: Vec<T>,
}

#[derive(Deserialize)]
struct HubRepo {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct HubSearchHit {
    repo_name: String,
}

#[derive(Deserialize)]
struct HubTag {
    name: String,
    #[serde(default)]
    last_updated: Option<String>,
}

const HUB_PAGE_BYTES: u64 = 8 << 20;
const HUB_MAX_PAGES: usize = 100_000;

impl HubClient {
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        let loopback = base
            .strip_prefix("http://")
            .and_then(|r| r.split('/').next())
            .map(|h| h.rsplit_once(':').map(|x| x.0).unwrap_or(h))
            .is_some_and(|h| {
                h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|i| i.is_loopback())
            });
        if !base.starts_with("https://") && !loopback {
            bail!("--hub-url {base}: only https:// (or http:// to loopback)");
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("canary/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(HubClient { http, base })
    }

    /// Every page of a listing, up to `max` items. A `next` link to another host is not
    /// followed.
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
        max: usize,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut url = Some(first);
        let mut pages = 0;
        while let Some(u) = url.take() {
            pages += 1;
            if pages > HUB_MAX_PAGES || out.len() >= max {
                break;
            }
            let mut attempt = 0;
            let resp = loop {
                let r = self
                    .http
                    .get(&u)
                    .send()
                    .await
                    .with_context(|| format!("GET {u}"))?;
                if (r.status().as_u16() == 429 || r.status().is_server_error()) && attempt < 4 {
                    attempt += 1;
                    let wait = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(1 << attempt)
                        .min(60);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    continue;
                }
                break r;
            };
            if !resp.status().is_success() {
                bail!("GET {u}: Docker Hub answered HTTP {}", resp.status());
            }
            if resp.content_length().is_some_and(|n| n > HUB_PAGE_BYTES) {
                bail!("GET {u}: page larger than {HUB_PAGE_BYTES} bytes");
            }
            let body = resp.bytes().await.with_context(|| format!("GET {u}"))?;
            if body.len() as u64 > HUB_PAGE_BYTES {
                bail!("GET {u}: page larger than {HUB_PAGE_BYTES} bytes");
            }
            let page: Page<T> = serde_json::from_slice(&body)
                .with_context(|| format!("GET {u}: not a Docker Hub page"))?;
            out.extend(page.results);
            // A next page is followed only on the same origin (`base/…`, not `base.evil/…`).
            url = page
                .next
                .filter(|n| n.starts_with(&format!("{}/", self.base)));
        }
        out.truncate(max);
        Ok(out)
    }

    /// `ns/name` of a namespace's repositories.
    pub async fn namespace_repositories(&self, ns: &str, max: usize) -> Result<Vec<String>> {
        check_name(ns)?;
        let first = format!(
            "{}/v2/namespaces/{ns}/repositories?page_size=100",
            self.base
        );
        let repos: Vec<HubRepo> = self.pages(first, max).await?;
        Ok(repos
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.as_deref().unwrap_or(ns), r.name))
            .collect())
    }

    /// `ns/name` of the repositories a search finds (`library` for official images).
    pub async fn search(&self, query: &str, max: usize) -> Result<Vec<String>> {
        let q: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let first = format!(
            "{}/v2/search/repositories/?query={q}&page_size=100",
            self.base
        );
        let hits: Vec<HubSearchHit> = self.pages(first, max).await?;
        Ok(hits
            .into_iter()
            .map(|h| {
                if h.repo_name.contains('/') {
                    h.repo_name
                } else {
                    format!("library/{}", h.repo_name)
                }
            })
            .collect())
    }

    /// The `n` most recently updated tags of `ns/name`.
    pub async fn tags(&self, repo: &str, n: usize) -> Result<Vec<String>> {
        let (ns, name) = repo
            .split_once('/')
            .with_context(|| format!("{repo}: expected namespace/name"))?;
        check_name(ns)?;
        check_name(name)?;
        // Docker Hub orders by `last_updated`, newest first; up to 100 tags are read and
        // sorted here too, so a server that ignores the ordering still gives the newest.
        let first = format!(
            "{}/v2/namespaces/{ns}/repositories/{name}/tags?page_size=100&ordering=last_updated",
            self.base
        );
        let mut tags: Vec<HubTag> = self.pages(first, n.clamp(100, 10_000)).await?;
        // Newest first, whatever order the server used (RFC 3339 sorts as text).
        tags.sort_by(|a, b| b.last_updated.cmp(&a.last_updated));
        tags.truncate(n);
        Ok(tags.into_iter().map(|t| t.name).collect())
    }
}

/// Namespace and repository names as Docker Hub allows them (nothing to inject into a URL).
fn check_name(s: &str) -> Result<()> {
    if s.is_empty()
        || s.starts_with('.')
        || s.len() > 255
        || !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        bail!("{s:?} is not a Docker Hub namespace or repository name");
    }
    Ok(())
}

/// Where the crawl's images come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// One reference a line; `#` comments and blank lines skipped.
    File(std::path::PathBuf),
    /// `host[:port]`: its `/v2/_catalog`, then each repository's tags.
    Registry(String),
    HubNamespace(String),
    HubSearch(String),
}

/// Limits of source expansion.
#[derive(Debug, Clone)]
pub struct Expand {
    /// Tags per repository (Docker Hub: newest first; a plain registry: as listed).
    pub max_tags: usize,
    /// Repositories per source.
    pub max_repos: usize,
    /// Registry that Docker Hub's repositories are pulled from.
    pub hub_registry: String,
}

/// Image references from a source.
pub async fn expand(
    source: &Source,
    registry: &canary_analyzer::source::registry::RegistryClient,
    hub: Option<&HubClient>,
    limits: &Expand,
) -> Result<Vec<String>> {
    match source {
        Source::File(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                crate::server::parse_image(l)
                    .map_err(|e| anyhow::anyhow!("{}:{}: {e}", p.display(), i + 1))?;
                out.push(l.to_string());
            }
            Ok(out)
        }
        Source::Registry(host) => {
            let repos = registry
                .catalog(host, limits.max_repos)
                .await
                .with_context(|| format!("{host}: catalog"))?;
            let mut out = Vec::new();
            // One repository the registry will not list (or names oddly) is skipped, said
            // out loud; the others are crawled.
            for repo in repos {
                let r: oci_client::Reference = match format!("{host}/{repo}").parse() {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("canary crawl: {host}: repository {repo:?} skipped: {e}");
                        continue;
                    }
                };
                match registry.list_tags(&r, limits.max_tags).await {
                    Ok(tags) => out.extend(tags.into_iter().map(|t| format!("{host}/{repo}:{t}"))),
                    Err(e) => {
                        eprintln!("canary crawl: {host}/{repo}: tags not listed, skipped: {e}")
                    }
                }
            }
            Ok(out)
        }
        Source::HubNamespace(_) | Source::HubSearch(_) => {
            let hub = hub.context("no Docker Hub client")?;
            let repos = match source {
                Source::HubNamespace(ns) => {
                    hub.namespace_repositories(ns, limits.max_repos).await?
                }
                Source::HubSearch(q) => hub.search(q, limits.max_repos).await?,
                _ => unreachable!(),
            };
            let mut out = Vec::new();
            for repo in repos {
                match hub.tags(&repo, limits.max_tags).await {
                    Ok(tags) => out.extend(
                        tags.into_iter()
                            .map(|t| format!("{}/{repo}:{t}", limits.hub_registry)),
                    ),
                    Err(e) => eprintln!("canary crawl: {repo}: tags not listed, skipped: {e:#}"),
                }
            }
            Ok(out)
        }
    }
}

/// Queue every reference (an image already queued or running is one job).
pub async fn enqueue_all(
    scanner: &Scanner,
    refs: &[String],
    platform: &str,
    max_attempts: i64,
) -> Result<(usize, usize)> {
    let (mut new, mut existing) = (0, 0);
    for r in refs {
        let image = crate::server::parse_image(r).map_err(|e| anyhow::anyhow!(e))?;
        let (_, created) = scanner
            .store
            .enqueue(&NewJob {
                image: image.whole(),
                platform: platform.to_string(),
                source: "crawl".into(),
                dedup_key: format!("{}|{platform}", image.whole()),
                auth: None,
                max_attempts,
            })
            .await?;
        if created { new += 1 } else { existing += 1 }
    }
    Ok((new, existing))
}

/// Figures while the queue is worked.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub done: i64,
    pub failed: i64,
    pub queued: i64,
    pub running: i64,
    pub elapsed: Duration,
}

/// Work the queue with `workers` loops until nothing is queued or running (other
/// processes' jobs included: a crashed one's jobs are taken over when their leases end).
pub async fn drain(
    scanner: Arc<Scanner>,
    cfg: QueueConfig,
    linger: Duration,
    mut report: impl FnMut(&Progress),
) -> Result<Progress> {
    let started = Instant::now();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let mut tasks = Vec::new();
    for n in 0..cfg.workers.max(1) {
        let scanner = scanner.clone();
        let cfg = cfg.clone();
        let worker = format!(
            "{host}/{}/crawl{n}/{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        );
        tasks.push(tokio::spawn(async move {
            loop {
                match crate::worker::work_one(&scanner, &worker, &cfg).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => eprintln!("canary crawl: queue: {e:#}"),
                }
                let counts = scanner.store.job_counts().await.unwrap_or_default();
                let open = counts.get("queued").copied().unwrap_or(0)
                    + counts.get("running").copied().unwrap_or(0);
                // An empty queue ends the work, once `linger` has passed (workers started
                // before the queue is filled wait for it).
                if open == 0 && started.elapsed() >= linger {
                    return;
                }
                tokio::time::sleep(cfg.poll).await;
            }
        }));
    }
    let progress = |counts: &std::collections::HashMap<String, i64>| Progress {
        done: counts.get("done").copied().unwrap_or(0),
        failed: counts.get("failed").copied().unwrap_or(0),
        queued: counts.get("queued").copied().unwrap_or(0),
        running: counts.get("running").copied().unwrap_or(0),
        elapsed: started.elapsed(),
    };
    while !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(c) = scanner.store.job_counts().await {
            report(&progress(&c));
        }
    }
    for t in tasks {
        t.await?;
    }
    let c = scanner.store.job_counts().await?;
    Ok(progress(&c))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hub_names_are_checked() {
        assert!(super::check_name("library").is_ok());
        assert!(super::check_name("my-org.x_1").is_ok());
        for bad in ["", "a/b", "A", "x?y=1", "..%2f", ".."] {
            assert!(super::check_name(bad).is_err(), "{bad}");
        }
    }
}
