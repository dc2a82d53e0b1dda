//! Pulling from registries that speak the Distribution API (Docker Hub included).
//!
//! `oci-client` gives us reference normalization and the token handshake (`WWW-Authenticate:
//! Bearer realm=…,service=…,scope=…`); the requests themselves go through one function
//! that adds credentials, retries 429/5xx with backoff honouring `Retry-After`, records
//! Docker Hub's rate-limit headers, and bounds every body it reads.

use base64::Engine;
use futures_util::StreamExt;
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use reqwest::{Method, Response, StatusCode, header};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::{ManifestStore, Parts, resolve_parts, verify_doc};
use crate::cache::BlobCache;
use crate::image::{
    BlobOpener, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Layer, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES,
    OCI_INDEX, OCI_MANIFEST, Platform, ResolvedImage, Verify, check_digest,
};
use crate::report::{FetchStats, RateLimit};
use crate::{Error, Result};

/// Longest a manifest may take to arrive once the server answered.
const MANIFEST_DEADLINE: Duration = Duration::from_secs(120);

/// A digest-pinned reference must use sha256, the only algorithm we verify.
fn check_pin(r: &Reference) -> Result<()> {
    match r.digest() {
        Some(d) => check_digest(d, &r.whole()),
        None => Ok(()),
    }
}

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Username and password for a registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ********)", self.username)
    }
}

/// How to talk to registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host` or `host:port`) allowed over plain HTTP besides loopback.
    pub insecure_hosts: Vec<String>,
    /// Credentials given on the command line or in the environment; they win over the
    /// Docker config file.
    pub credentials: Option<Credentials>,
    /// The one registry host `credentials` belong to; `None`: every registry this client
    /// talks to (`canary scan` talks to one). Jobs that follow references from
    /// untrusted input (a chart's images and dependencies) pin it.
    pub credentials_for: Option<String>,
    /// `config.json` in Docker's format; `None` = `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Retries of one request on 429, 5xx and broken connections.
    pub max_retries: u32,
    /// First backoff; doubles each retry.
    pub retry_base: Duration,
    /// Longest wait a `Retry-After` may ask for before we give up instead.
    pub max_retry_wait: Duration,
    /// Blob downloads in flight.
    pub concurrency: usize,
    /// Largest blob accepted.
    pub max_blob_bytes: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_hosts: vec![],
            credentials: None,
            credentials_for: None,
            docker_config: None,
            max_retries: 4,
            retry_base: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(60),
            concurrency: 4,
            max_blob_bytes: 32 << 30,
        }
    }
}

/// Docker's `config.json`: `auths.<registry>.auth` is base64 `user:password`.
fn docker_config_credentials(
    path: &std::path::Path,
    registry: &str,
) -> Result<Option<Credentials>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::bad(path.display().to_string(), format!("not valid JSON: {e}")))?;
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    let want_hub = hub.contains(&registry);
    for (key, entry) in auths {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        if !(host == registry || (want_hub && hub.contains(&host))) {
            continue;
        }
        if let Some(a) = entry
            .get("auth")
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| {
                    Error::bad(
                        path.display().to_string(),
                        format!("auths.{key}.auth is not base64"),
                    )
                })?;
            let s = String::from_utf8_lossy(&decoded);
            let (u, p) = s.split_once(':').ok_or_else(|| {
                Error::bad(
                    path.display().to_string(),
                    format!("auths.{key}.auth is not user:password"),
                )
            })?;
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        let u = entry.get("username").and_then(|u| u.as_str());
        let p = entry.get("password").and_then(|p| p.as_str());
        if let (Some(u), Some(p)) = (u, p) {
            return Ok(Some(Credentials {
                username: u.into(),
                password: p.into(),
            }));
        }
    }
    Ok(None)
}

/// The host part of `host[:port]` / `[v6]:port`.
fn host_part(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Loopback by address, or exactly `localhost`: `127.0.0.1.example.com` is not.
fn is_loopback(host: &str) -> bool {
    let h = host_part(host);
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The target of `Link: <…>; rel="next"`.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .to_ascii_lowercase()
            .contains("rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// The `realm` parameter of a `WWW-Authenticate: Bearer …` challenge.
fn challenge_realm(challenge: &str) -> Option<String> {
    let i = challenge.to_ascii_lowercase().find("realm=")?;
    let rest = &challenge[i + 6..];
    let v = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next()?,
        None => rest.split(',').next()?.trim(),
    };
    Some(v.to_string())
}

#[derive(Clone)]
enum Mode {
    Basic,
    Bearer(String),
}

/// What a HEAD on a manifest says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeadInfo {
    pub reference: String,
    pub digest: String,
    pub media_type: Option<String>,
    pub size: Option<u64>,
    pub rate_limit: Option<RateLimit>,
}

/// A registry client with credentials, retries and a blob cache.
pub struct RegistryClient {
    http: reqwest::Client,
    /// One `oci-client` per registry host, so its token handshake uses our HTTP/HTTPS choice.
    oci: Mutex<HashMap<String, oci_client::Client>>,
    opts: RegistryOptions,
    cache: BlobCache,
    stats: Mutex<FetchStats>,
    /// `registry/repository` → how to authenticate.
    modes: Mutex<HashMap<String, Mode>>,
}

impl RegistryClient {
    pub fn new(opts: RegistryOptions, cache: BlobCache) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("canary/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Other(format!("cannot build HTTP client: {e}")))?;
        Ok(RegistryClient {
            http,
            oci: Mutex::new(HashMap::new()),
            opts,
            cache,
            stats: Mutex::new(FetchStats::default()),
            modes: Mutex::new(HashMap::new()),
        })
    }

    /// Figures so far.
    pub fn stats(&self) -> FetchStats {
        self.stats.lock().expect("stats lock").clone()
    }

    fn stat(&self, f: impl FnOnce(&mut FetchStats)) {
        f(&mut self.stats.lock().expect("stats lock"))
    }

    /// Whether this client talks plain HTTP to `host` (loopback, or an insecure host).
    pub fn allows_plain_http(&self, host: &str) -> bool {
        self.scheme(host) == "http"
    }

    fn scheme(&self, host: &str) -> &'static str {
        if is_loopback(host)
            || self
                .opts
                .insecure_hosts
                .iter()
                .any(|h| h == host || h == host_part(host))
        {
            "http"
        } else {
            "https"
        }
    }

    fn oci_for(&self, host: &str) -> oci_client::Client {
        let mut m = self.oci.lock().expect("oci lock");
        m.entry(host.to_string())
            .or_insert_with(|| {
                let protocol = if self.scheme(host) == "http" {
                    oci_client::client::ClientProtocol::Http
                } else {
                    oci_client::client::ClientProtocol::Https
                };
                oci_client::Client::new(oci_client::client::ClientConfig {
                    protocol,
                    connect_timeout: Some(Duration::from_secs(15)),
                    read_timeout: Some(Duration::from_secs(60)),
                    ..Default::default()
                })
            })
            .clone()
    }

    fn base(&self, r: &Reference) -> String {
        let host = r.resolve_registry();
        format!("{}://{}/v2/{}", self.scheme(host), host, r.repository())
    }

    fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(c) = &self.opts.credentials
            && self
                .opts
                .credentials_for
                .as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case(registry))
        {
            return Ok(Some(c.clone()));
        }
        let path = match &self.opts.docker_config {
            Some(p) => p.clone(),
            None => match std::env::var_os("DOCKER_CONFIG") {
                Some(d) => PathBuf::from(d).join("config.json"),
                None => match std::env::var_os("HOME") {
                    Some(h) => PathBuf::from(h).join(".docker").join("config.json"),
                    None => return Ok(None),
                },
            },
        };
        docker_config_credentials(&path, registry)
    }

    /// Handle a 401: find out what the registry wants and get it.
    async fn authenticate(&self, r: &Reference, resp: &Response, url: &str) -> Result<Mode> {
        let registry = r.registry();
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let creds = self.credentials(registry)?;
        if challenge.to_ascii_lowercase().starts_with("bearer") {
            // Credentials go to the token service in the challenge: never in clear text
            // to a host we would not talk plain HTTP to ourselves.
            if creds.is_some() {
                let realm = challenge_realm(&challenge).unwrap_or_default();
                if let Some(rest) = realm.strip_prefix("http://") {
                    let realm_host = rest.split('/').next().unwrap_or("");
                    if self.scheme(realm_host) != "http" {
                        return Err(Error::Auth {
                            registry: registry.to_string(),
                            message: format!(
                                "the token service {realm:?} is plain HTTP; refusing to send credentials to it (use --insecure-registry {realm_host} if that is really intended)"
                            ),
                        });
                    }
                }
            }
            let auth = match &creds {
                Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
                None => RegistryAuth::Anonymous,
            };
            self.stat(|s| s.requests += 2);
            let token = self
                .oci_for(r.resolve_registry())
                .auth(r, &auth, oci_client::RegistryOperation::Pull)
                .await
                .map_err(|e| Error::Auth {
                    registry: registry.to_string(),
                    message: format!(
                        "token request failed{}: {e}",
                        if creds.is_none() {
                            " (no credentials configured)"
                        } else {
                            ""
                        }
                    ),
                })?;
            match token {
                Some(t) => Ok(Mode::Bearer(t)),
                None => Err(Error::Auth {
                    registry: registry.to_string(),
                    message: "registry sent a Bearer challenge but its token service gave no token"
                        .into(),
                }),
            }
        } else if creds.is_some() {
            Ok(Mode::Basic)
        } else {
            Err(Error::Auth {
                registry: registry.to_string(),
                message: format!(
                    "{url} requires credentials (use --username/--password-stdin, CANARY_REGISTRY_USERNAME/CANARY_REGISTRY_PASSWORD, or docker login)"
                ),
            })
        }
    }

    /// Send a request with auth and retries; returns a 2xx response.
    async fn send(
        &self,
        method: Method,
        url: &str,
        r: &Reference,
        accept: Option<&str>,
    ) -> Result<Response> {
        let key = format!("{}/{}", r.registry(), r.repository());
        let mut authed_once = false;
        let mut attempt = 0u32;
        loop {
            let mut req = self.http.request(method.clone(), url);
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            let mode = self.modes.lock().expect("modes lock").get(&key).cloned();
            match mode {
                Some(Mode::Bearer(t)) => req = req.bearer_auth(t),
                Some(Mode::Basic) => {
                    if let Some(c) = self.credentials(r.registry())? {
                        req = req.basic_auth(c.username, Some(c.password));
                    }
                }
                None => {}
            }
            self.stat(|s| s.requests += 1);
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) => {
                    if attempt < self.opts.max_retries {
                        attempt += 1;
                        self.stat(|s| s.retries += 1);
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(Error::Transport {
                        url: url.to_string(),
                        message: format!("{e} (after {attempt} retries)"),
                    });
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            if status == StatusCode::UNAUTHORIZED && !authed_once {
                authed_once = true;
                let m = self.authenticate(r, &resp, url).await?;
                self.modes
                    .lock()
                    .expect("modes lock")
                    .insert(key.clone(), m);
                continue;
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if retryable && attempt < self.opts.max_retries {
                let wait = match retry_after(&resp) {
                    Some(w) if w > self.opts.max_retry_wait => {
                        return Err(Error::Registry {
                            url: url.to_string(),
                            status: status.as_u16(),
                            detail: Some(format!(
                                "asks to retry after {}s, longer than the {}s we wait{}",
                                w.as_secs(),
                                self.opts.max_retry_wait.as_secs(),
                                rate_limit_note(&resp)
                            )),
                        });
                    }
                    Some(w) => w,
                    None => self.backoff(attempt + 1),
                };
                attempt += 1;
                self.stat(|s| s.retries += 1);
                tokio::time::sleep(wait).await;
                continue;
            }
            let note = rate_limit_note(&resp);
            let mut detail = error_detail(resp).await;
            if status == StatusCode::UNAUTHORIZED {
                return Err(Error::Auth {
                    registry: r.registry().to_string(),
                    message: format!(
                        "credentials rejected at {url}{}",
                        detail.map(|d| format!(": {d}")).unwrap_or_default()
                    ),
                });
            }
            if !note.is_empty() {
                detail = Some(format!("{}{note}", detail.unwrap_or_default()));
            }
            if retryable {
                detail = Some(format!(
                    "{} (gave up after {attempt} retries)",
                    detail.unwrap_or_default()
                ));
            }
            return Err(Error::Registry {
                url: url.to_string(),
                status: status.as_u16(),
                detail,
            });
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.opts.retry_base.saturating_mul(1u32 << attempt.min(10));
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() % 1000)
            .unwrap_or(0);
        (base + Duration::from_micros(jitter as u64 * base.as_millis().min(1000) as u64 / 4))
            .min(self.opts.max_retry_wait)
    }

    fn record_rate_limit(&self, resp: &Response) {
        if let Some(rl) = parse_rate_limit(resp.headers()) {
            self.stat(|s| s.rate_limit = Some(rl));
        }
    }

    /// HEAD the manifest: digest, media type and rate-limit figures without pulling
    /// (a HEAD does not count against Docker Hub's pull limit).
    pub async fn head(&self, r: &Reference) -> Result<HeadInfo> {
        check_pin(r)?;
        let reference = r.digest().or(r.tag()).unwrap_or("latest").to_string();
        let url = format!("{}/manifests/{reference}", self.base(r));
        let resp = self
            .send(Method::HEAD, &url, r, Some(ACCEPT_MANIFESTS))
            .await?;
        self.record_rate_limit(&resp);
        let h = resp.headers();
        let media_type = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let size = h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let digest = match h.get("docker-content-digest").and_then(|v| v.to_str().ok()) {
            Some(d) => d.to_string(),
            None => {
                let (body, _) = self.get_manifest(r, &reference).await?;
                super::sha256_digest(&body)
            }
        };
        check_digest(&digest, &url)?;
        if let Some(pin) = r.digest()
            && pin != digest
        {
            return Err(Error::DigestMismatch {
                origin: url,
                digest: pin.to_string(),
                actual: digest,
            });
        }
        Ok(HeadInfo {
            reference: r.whole(),
            digest,
            media_type,
            size,
            rate_limit: self.stats().rate_limit,
        })
    }

    /// Tags of a repository (`/v2/<repo>/tags/list`, following `Link: rel="next"`
    /// pages), at most `max`, in the order the registry lists them.
    pub async fn list_tags(&self, r: &Reference, max: usize) -> Result<Vec<String>> {
        let first = format!("{}/tags/list?n={}", self.base(r), max.clamp(1, 1000));
        let names = self.paged(r, first, "tags", max).await?;
        Ok(names)
    }

    /// Repositories of a registry (`/v2/_catalog`, paged), at most `max`. Registries
    /// with token auth need a token with the `registry:catalog:*` scope, which the
    /// pull credentials may not give.
    pub async fn catalog(&self, registry: &str, max: usize) -> Result<Vec<String>> {
        let probe: Reference =
            format!("{registry}/catalog-probe")
                .parse()
                .map_err(|e: oci_client::ParseError| Error::Reference {
                    input: registry.to_string(),
                    reason: e.to_string(),
                })?;
        let host = probe.resolve_registry();
        let first = format!(
            "{}://{host}/v2/_catalog?n={}",
            self.scheme(host),
            max.clamp(1, 1000)
        );
        self.paged(&probe, first, "repositories", max).await
    }

    /// Follow a Distribution list's pages, collecting the strings of `field`.
    async fn paged(
        &self,
        r: &Reference,
        mut url: String,
        field: &str,
        max: usize,
    ) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for _page in 0..10_000 {
            let resp = self
                .send(Method::GET, &url, r, Some("application/json"))
                .await?;
            let next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = read_bounded(resp, 16 << 20, &url, field).await?;
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| Error::bad(&url, format!("not JSON: {e}")))?;
            for name in v
                .get(field)
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
            {
                if let Some(n) = name.as_str() {
                    out.push(n.to_string());
                    if out.len() >= max {
                        return Ok(out);
                    }
                }
            }
            match next {
                // A relative link (`/v2/...?last=x`) is resolved against the same origin.
                Some(n) if n.starts_with('/') => {
                    let origin: String = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                    url = format!("{origin}{n}");
                }
                Some(n)
                    if n.starts_with(&url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")) =>
                {
                    url = n
                }
                // A next page on another host is not followed.
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    async fn get_manifest(
        &self,
        r: &Reference,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>)> {
        let url = format!("{}/manifests/{reference}", self.base(r));
        let resp = self
            .send(Method::GET, &url, r, Some(ACCEPT_MANIFESTS))
            .await?;
        self.record_rate_limit(&resp);
        let mt = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A manifest is small: a server dribbling it out byte by byte is cut off.
        let body = tokio::time::timeout(
            MANIFEST_DEADLINE,
            read_bounded(resp, MAX_MANIFEST_BYTES, &url, "manifest"),
        )
        .await
        .map_err(|_| Error::Transport {
            url: url.clone(),
            message: format!(
                "manifest not received within {}s",
                MANIFEST_DEADLINE.as_secs()
            ),
        })??;
        if reference.starts_with("sha256:") {
            verify_doc(&body, reference, &url)?;
        }
        Ok((body, mt))
    }

    /// Download one blob into the cache unless it is there already. `size` is the size
    /// the manifest declares; when known, the blob must be exactly that long.
    pub async fn fetch_blob(
        &self,
        r: &Reference,
        digest: &str,
        size: Option<u64>,
        limit: u64,
    ) -> Result<()> {
        check_digest(digest, &r.whole())?;
        let limit = match size {
            Some(n) if n > limit => {
                return Err(Error::TooLarge {
                    origin: r.whole(),
                    what: format!("blob {digest} (declared {n} bytes)"),
                    limit,
                });
            }
            Some(n) => n,
            None => limit,
        };
        if self.cache.contains(digest) {
            self.stat(|s| s.blobs_cached += 1);
            return Ok(());
        }
        let url = format!("{}/blobs/{digest}", self.base(r));
        let mut attempt = 0;
        loop {
            let resp = self.send(Method::GET, &url, r, None).await?;
            if let Some(len) = resp.content_length()
                && len > limit
            {
                return Err(Error::TooLarge {
                    origin: url,
                    what: format!("blob {digest}"),
                    limit,
                });
            }
            let expected_len = resp.content_length();
            let mut w = self.cache.writer(digest, &url, limit)?;
            let mut stream = resp.bytes_stream();
            let mut broken = None;
            // At least ~64 KiB/s on average, after a minute's grace: slow-drip servers
            // cannot hold a scan forever.
            let deadline = tokio::time::Instant::now()
                + Duration::from_secs(60 + expected_len.unwrap_or(limit).min(limit) / (64 << 10));
            loop {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(Ok(c))) => w.write(&c)?,
                    Ok(Some(Err(e))) => {
                        broken = Some(e.to_string());
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        broken = Some(format!("too slow: {} bytes by the deadline", w.written()));
                        break;
                    }
                }
            }
            if broken.is_none()
                && let Some(n) = expected_len.or(size)
                && w.written() < n
            {
                broken = Some(format!(
                    "connection closed after {} of {n} bytes",
                    w.written()
                ));
            }
            if let Some(why) = broken {
                if attempt < self.opts.max_retries {
                    attempt += 1;
                    self.stat(|s| s.retries += 1);
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
                return Err(Error::Transport {
                    url,
                    message: format!(
                        "blob download broke off: {why} (after {attempt} retries); nothing was cached"
                    ),
                });
            }
            let n = w.written();
            w.finish()?;
            self.stat(|s| {
                s.blobs_downloaded += 1;
                s.bytes_downloaded += n;
            });
            return Ok(());
        }
    }

    /// The manifest a reference names, for artifacts that are not images (Helm charts):
    /// its bytes, media type and digest. A digest-pinned reference is verified.
    pub async fn artifact_manifest(
        &self,
        r: &Reference,
    ) -> Result<(Vec<u8>, Option<String>, String)> {
        check_pin(r)?;
        let reference = r.digest().or(r.tag()).unwrap_or("latest").to_string();
        let (body, media_type) = self.get_manifest(r, &reference).await?;
        let digest = super::sha256_digest(&body);
        Ok((body, media_type, digest))
    }

    /// A blob of `r`'s repository, downloaded into the cache (its digest checked while
    /// it streams in) and read back whole: at most `limit` bytes.
    pub async fn read_blob(
        &self,
        r: &Reference,
        digest: &str,
        size: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>> {
        self.fetch_blob(r, digest, size, limit).await?;
        self.cache.read_small(digest, limit)
    }

    /// Resolve a reference to platform images and download their layers into the cache.
    /// Layers that fail to download are reported by the opener when the walk asks for them.
    pub async fn open(
        &self,
        r: &Reference,
        platform: &Platform,
        all: bool,
    ) -> Result<Vec<ResolvedImage>> {
        let mut images = self.resolve(r, platform, all).await?;
        self.fetch_layers(r, &mut images, &HashSet::new()).await;
        Ok(images)
    }

    /// Resolve a reference to platform images (manifests and configs, verified) without
    /// downloading any layer: see [`RegistryClient::fetch_layers`].
    pub async fn resolve(
        &self,
        r: &Reference,
        platform: &Platform,
        all: bool,
    ) -> Result<Vec<ResolvedImage>> {
        check_pin(r)?;
        let reference = r.digest().or(r.tag()).unwrap_or("latest").to_string();
        let top = self.get_manifest(r, &reference).await?;
        let top_digest = Some(super::sha256_digest(&top.0));
        let store = RegistryStore {
            client: self,
            reference: r,
        };
        let parts: Vec<Parts> = resolve_parts(&store, top, top_digest, platform, all).await?;
        Ok(parts
            .into_iter()
            .map(|p| {
                let name = match &p.manifest_digest {
                    Some(d) if r.digest().is_none() => format!("{}@{d}", r.whole()),
                    _ => r.whole(),
                };
                ResolvedImage {
                    name,
                    manifest_digest: p.manifest_digest,
                    index_digest: p.index_digest,
                    platform: p.platform,
                    config_digest: Some(p.config_digest),
                    config: p.config,
                    layers: p.layers,
                    opener: Box::new(CacheOpener {
                        cache: self.cache.clone(),
                        failures: HashMap::new(),
                    }),
                }
            })
            .collect())
    }

    /// Download the layers of resolved images into the cache, all but those in `skip`
    /// (layers whose results are already known), several at once. A layer that fails is
    /// reported by the image's opener when the walk asks for it.
    pub async fn fetch_layers(
        &self,
        r: &Reference,
        images: &mut [ResolvedImage],
        skip: &HashSet<String>,
    ) {
        let mut wanted: Vec<(String, Option<u64>)> = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| (l.digest.clone(), l.size)))
            .filter(|(d, _)| !skip.contains(d))
            .collect();
        wanted.sort();
        wanted.dedup();
        let failures: Vec<(String, String)> = futures_util::stream::iter(wanted)
            .map(|(d, size)| async move {
                let res = self.fetch_blob(r, &d, size, self.opts.max_blob_bytes).await;
                (d, res)
            })
            .buffer_unordered(self.opts.concurrency.max(1))
            .filter_map(|(d, res)| async move { res.err().map(|e| (d, e.to_string())) })
            .collect()
            .await;
        let failures: HashMap<String, String> = failures.into_iter().collect();
        for img in images {
            img.opener = Box::new(CacheOpener {
                cache: self.cache.clone(),
                failures: failures.clone(),
            });
        }
    }
}

struct RegistryStore<'a> {
    client: &'a RegistryClient,
    reference: &'a Reference,
}

impl ManifestStore for RegistryStore<'_> {
    async fn manifest(
        &self,
        reference: &str,
        _media_type: Option<&str>,
    ) -> Result<(Vec<u8>, Option<String>)> {
        self.client.get_manifest(self.reference, reference).await
    }

    async fn config(&self, digest: &str) -> Result<Vec<u8>> {
        self.client
            .fetch_blob(self.reference, digest, None, MAX_CONFIG_BYTES)
            .await?;
        self.client.cache.read_small(digest, MAX_CONFIG_BYTES)
    }

    fn layer_verify(&self, _digest: &str) -> Verify {
        Verify::Done
    }

    fn origin(&self) -> String {
        self.reference.whole()
    }
}

/// Opens layers from the blob cache.
pub struct CacheOpener {
    cache: BlobCache,
    failures: HashMap<String, String>,
}

impl BlobOpener for CacheOpener {
    fn open(&self, layer: &Layer) -> Result<Box<dyn Read + Send>> {
        if let Some(e) = self.failures.get(&layer.digest) {
            return Err(Error::Other(e.clone()));
        }
        let p = self.cache.path_of(&layer.digest);
        let f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
        Ok(Box::new(f))
    }
}

async fn read_bounded(resp: Response, limit: u64, url: &str, what: &str) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(Error::TooLarge {
            origin: url.to_string(),
            what: what.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(c) = stream.next().await {
        let c = c.map_err(|e| Error::Transport {
            url: url.to_string(),
            message: format!("reading {what}: {e}"),
        })?;
        if (out.len() + c.len()) as u64 > limit {
            return Err(Error::TooLarge {
                origin: url.to_string(),
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// The registry's error envelope (`{"errors":[{"code","message"}]}`), read bounded.
async fn error_detail(resp: Response) -> Option<String> {
    let body = read_bounded(resp, 64 << 10, "", "error body").await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    let parts: Vec<String> = errs
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.get("code").and_then(|c| c.as_str()).unwrap_or("ERROR"),
                e.get("message").and_then(|c| c.as_str()).unwrap_or("")
            )
        })
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("; "))
    }
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(&v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn parse_rate_limit(h: &header::HeaderMap) -> Option<RateLimit> {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let limit = get("ratelimit-limit");
    let remaining = get("ratelimit-remaining");
    if limit.is_none() && remaining.is_none() {
        return None;
    }
    let num = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| s.split(';').next())
            .and_then(|n| n.trim().parse().ok())
    };
    let window = limit
        .as_deref()
        .or(remaining.as_deref())
        .and_then(|s| s.split(';').find_map(|p| p.trim().strip_prefix("w=")))
        .and_then(|w| w.parse().ok());
    Some(RateLimit {
        limit: num(&limit),
        remaining: num(&remaining),
        window_seconds: window,
        source: get("docker-ratelimit-source"),
    })
}

fn rate_limit_note(resp: &Response) -> String {
    match parse_rate_limit(resp.headers()) {
        Some(RateLimit {
            remaining: Some(r),
            limit,
            window_seconds,
            ..
        }) => format!(
            " [rate limit: {r} of {} pulls left per {}s]",
            limit.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
            window_seconds
                .map(|w| w.to_string())
                .unwrap_or_else(|| "?".into())
        ),
        _ => String::new(),
    }
}

#[doc(hidden)]
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        std::fs::write(
            &p,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example:5000":{{"username":"u","password":"p"}}}}}}"#),
        )
        .unwrap();
        let hub = docker_config_credentials(&p, "docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("bob", "s3cret")
        );
        let other = docker_config_credentials(&p, "reg.example:5000")
            .unwrap()
            .unwrap();
        assert_eq!(other.username, "u");
        assert!(docker_config_credentials(&p, "ghcr.io").unwrap().is_none());
        assert!(!format!("{hub:?}").contains("s3cret"));
    }

    #[test]
    fn rate_limit_headers() {
        let mut h = header::HeaderMap::new();
        h.insert("ratelimit-limit", "100;w=21600".parse().unwrap());
        h.insert("ratelimit-remaining", "76;w=21600".parse().unwrap());
        h.insert("docker-ratelimit-source", "203.0.113.9".parse().unwrap());
        let rl = parse_rate_limit(&h).unwrap();
        assert_eq!(
            (rl.limit, rl.remaining, rl.window_seconds),
            (Some(100), Some(76), Some(21600))
        );
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(is_loopback("127.0.0.2:80"));
        assert!(!is_loopback("registry.example:5000"));
        assert!(!is_loopback("127.0.0.1.nip.io"));
        assert!(!is_loopback("127.evil.example:5000"));
        assert!(!is_loopback("localhost.evil.example"));
    }

    #[test]
    fn realm_of_a_challenge() {
        assert_eq!(
            challenge_realm(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#
            )
            .as_deref(),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(
            challenge_realm("Bearer realm=http://x/t,service=s").as_deref(),
            Some("http://x/t")
        );
    }
}
