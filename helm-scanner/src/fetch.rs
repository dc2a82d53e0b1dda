//! Charts fetched from where Helm fetches them: a Helm repository (`index.yaml` over
//! HTTP(S)), an OCI registry (`oci://`, Helm's chart media types, through the analyzer's
//! registry client and its credentials), and the dependencies a chart declares but does
//! not carry in `charts/` (`helm dependency build`: the versions `Chart.lock` pins, else
//! the newest the constraint allows).
//!
//! Everything fetched is bounded (index 32 MiB, archive 64 MiB, `.prov` 1 MiB) and
//! checked: a repository archive against the index's digest, an OCI blob against its
//! descriptor while it streams in. Credentials given for a repository are sent to that
//! repository's origin only, never to the other hosts its index or a dependency names.

use std::sync::Arc;

use canary_analyzer::source::registry::{Credentials, RegistryClient};
use serde_json::Value;
use sha2::Digest;

use crate::chart::{Chart, ChartLimits, load_tgz_bytes};
use crate::deps::{Dependency, compatible, dependencies, pick_version};
use crate::history::shown_url;
use crate::template::yaml::from_yaml;

/// Helm's media types for a chart pushed to an OCI registry.
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// What Helm 3.0–3.7 pushed before the chart media type was settled.
const HELM_CHART_LAYER_OLD: &str = "application/tar+gzip";
pub const HELM_PROV_LAYER: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";

const MAX_INDEX: usize = 32 << 20;
const MAX_ARCHIVE: usize = 64 << 20;
const MAX_PROV: usize = 1 << 20;
/// Dependencies one chart may have fetched (tries, failed ones included), and their
/// archives' bytes together.
const MAX_FETCHED: usize = 200;
const MAX_FETCHED_BYTES: u64 = 512 << 20;

/// A fetch that failed, naming what was asked for and from where.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct FetchError {
    pub origin: String,
    pub message: String,
}

fn err(origin: impl Into<String>, message: impl Into<String>) -> FetchError {
    FetchError {
        origin: origin.into(),
        message: message.into(),
    }
}

/// A packaged chart as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub archive: Vec<u8>,
    /// The `.prov` published beside it, if any.
    pub prov: Option<Vec<u8>>,
    /// A file name for the archive (`shop-1.1.0.tgz`), safe to join to a directory.
    pub file_name: String,
    pub version: String,
    /// How to name the source in reports: `URL CHART VERSION` or `oci://…:VERSION`.
    pub shown: String,
    /// Plain-HTTP fetches, for a warning.
    pub plain_http: bool,
}

/// Fetches charts from repositories and registries.
pub struct Fetcher {
    http: reqwest::Client,
    registry: Arc<RegistryClient>,
    /// Sent to URLs on this origin (`scheme://host:port`) only.
    credentials: Option<(String, Credentials)>,
    /// Repository indexes read so far (a chart's dependencies often share one).
    indexes: std::sync::Mutex<std::collections::HashMap<String, Arc<Value>>>,
}

/// `scheme://host:port` of a URL as the HTTP client will read it (so `https://evil\\@good/`
/// is evil's), or `None` when it does not parse.
fn origin_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?
    ))
}

/// A file name made of the last URL segment, safe to join to a directory.
fn safe_file_name(url: &str, fallback: &str) -> String {
    let last = url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        fallback.to_string()
    } else {
        name
    }
}

fn version_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Fetcher {
    /// `credentials`: for the repository at `credentials_for` (a URL; its origin).
    pub fn new(
        registry: Arc<RegistryClient>,
        credentials: Option<(String, Credentials)>,
    ) -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("canary/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(120))
            .connect_timeout(std::time::Duration::from_secs(15))
            // Redirects could carry credentials elsewhere: followed by hand.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| err("HTTP client", e.to_string()))?;
        let credentials = match credentials {
            Some((url, c)) => Some((
                origin_of(&url).ok_or_else(|| err(shown_url(&url), "not a URL"))?,
                c,
            )),
            None => None,
        };
        Ok(Fetcher {
            http,
            registry,
            credentials,
            indexes: Default::default(),
        })
    }

    /// The body of a GET (following up to 5 redirects), or `None` on 404 (on any 4xx
    /// when `optional`); refused past `cap` bytes or on any other status.
    async fn get(
        &self,
        url: &str,
        cap: usize,
        optional: bool,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        let mut url = url.to_string();
        for _ in 0..6 {
            let shown = format!("GET {}", shown_url(&url));
            let mut req = self.http.get(&url);
            if let Some((origin, c)) = &self.credentials
                && origin_of(&url).as_deref() == Some(origin.as_str())
            {
                req = req.basic_auth(&c.username, Some(&c.password));
            }
            // The client's errors carry the URL, credentials included: shown without.
            let mut resp = req
                .send()
                .await
                .map_err(|e| err(&shown, e.without_url().to_string()))?;
            let status = resp.status();
            if status.is_redirection() {
                let to = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| err(&shown, format!("HTTP {status} without a Location")))?;
                url = resp
                    .url()
                    .join(to)
                    .map_err(|e| err(&shown, format!("bad redirect {to:?}: {e}")))?
                    .to_string();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(err(&shown, "redirected to a URL that is not http(s)"));
                }
                continue;
            }
            if status == reqwest::StatusCode::NOT_FOUND || (optional && status.is_client_error()) {
                return Ok(None);
            }
            if status != reqwest::StatusCode::OK {
                return Err(err(&shown, format!("HTTP {status}")));
            }
            if resp.content_length().is_some_and(|n| n > cap as u64) {
                return Err(err(&shown, format!("larger than {cap} bytes")));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| err(&shown, e.without_url().to_string()))?
            {
                if body.len() + chunk.len() > cap {
                    return Err(err(&shown, format!("larger than {cap} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(Some(body));
        }
        Err(err(
            format!("GET {}", shown_url(&url)),
            "more than 5 redirects",
        ))
    }

    /// A repository's `index.yaml`, read once per fetcher.
    async fn index(&self, base: &str, shown_repo: &str) -> Result<Arc<Value>, FetchError> {
        if let Some(i) = self.indexes.lock().expect("index cache").get(base) {
            return Ok(i.clone());
        }
        let index = self
            .get(&format!("{base}/index.yaml"), MAX_INDEX, false)
            .await?
            .ok_or_else(|| err(shown_repo, "no index.yaml (HTTP 404)"))?;
        let index = String::from_utf8(index)
            .map_err(|_| err(format!("{shown_repo}/index.yaml"), "not UTF-8"))?;
        let index =
            Arc::new(from_yaml(&index).map_err(|e| err(format!("{shown_repo}/index.yaml"), e))?);
        self.indexes
            .lock()
            .expect("index cache")
            .insert(base.to_string(), index.clone());
        Ok(index)
    }

    /// A chart from a Helm repository, as `helm pull --repo URL NAME --version V` takes
    /// it: the entry of `index.yaml` the version asks for (exact, else the newest the
    /// constraint allows, else the newest release), its archive checked against the
    /// index's digest, and its `.prov` if the repository has one.
    pub async fn from_repo(
        &self,
        repo: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        let shown_repo = shown_url(repo);
        let base = repo.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(err(shown_repo, "not an http(s) URL"));
        }
        let index = self.index(base, &shown_repo).await?;
        let entries = index
            .get("entries")
            .and_then(|e| e.get(name))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                err(
                    &shown_repo,
                    format!("no chart named {name:?} in index.yaml"),
                )
            })?;
        let versions: Vec<String> = entries
            .iter()
            .map(|e| version_text(&e["version"]))
            .collect();
        let i = pick_version(&versions, version).ok_or_else(|| {
            err(
                &shown_repo,
                format!(
                    "no version of {name} matches {}",
                    version.unwrap_or("(newest release)")
                ),
            )
        })?;
        let entry = &entries[i];
        let url = entry["urls"]
            .as_array()
            .and_then(|u| u.first())
            .and_then(Value::as_str)
            .ok_or_else(|| err(&shown_repo, format!("{name} {} has no URL", versions[i])))?;
        let url = if url.contains("://") {
            url.to_string()
        } else {
            format!("{base}/{}", url.trim_start_matches('/'))
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(err(
                &shown_repo,
                format!("{name} {}: not an http(s) URL", versions[i]),
            ));
        }
        let shown = shown_url(&url);
        let archive = self
            .get(&url, MAX_ARCHIVE, false)
            .await?
            .ok_or_else(|| err(format!("GET {shown}"), "HTTP 404"))?;
        if let Some(want) = entry["digest"].as_str().filter(|d| !d.is_empty()) {
            let got = canary_analyzer::hex(&sha2::Sha256::digest(&archive));
            if !want
                .trim_start_matches("sha256:")
                .eq_ignore_ascii_case(&got)
            {
                return Err(err(
                    shown,
                    format!("archive digest sha256:{got} is not the index's {want}: refusing it"),
                ));
            }
        }
        // A repository without a `.prov` may answer 403 (object stores) as well as 404.
        let prov = self.get(&format!("{url}.prov"), MAX_PROV, true).await?;
        Ok(Fetched {
            archive,
            prov,
            file_name: safe_file_name(&url, &format!("{name}.tgz")),
            version: versions[i].clone(),
            shown: format!("{shown_repo} {name} {}", versions[i]),
            plain_http: url.starts_with("http://") || base.starts_with("http://"),
        })
    }

    /// A chart from an OCI registry, as `helm pull oci://HOST/PATH/NAME --version V`
    /// takes it. The version may also be in the reference (`NAME:1.2.3`,
    /// `NAME@sha256:…`); a constraint, or none, is resolved against the repository's tags
    /// (Helm writes a version's `+` as `_` in a tag). The manifest must be a Helm chart's
    /// (config `application/vnd.cncf.helm.config.v1+json`), and the chart inside must
    /// carry the name the reference gives.
    pub async fn from_oci(&self, url: &str, version: Option<&str>) -> Result<Fetched, FetchError> {
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| err(url, "not an oci:// reference"))?;
        if rest.is_empty() || rest.contains("://") || rest.contains('#') || rest.contains('?') {
            return Err(err(url, "not an oci:// reference"));
        }
        let origin = format!("oci://{rest}");
        // The path's last component (without a tag or digest) is the chart's name.
        let (repo_part, pinned) = match rest.rsplit_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (rest, None),
        };
        let (repo_part, tag) = match repo_part.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') && r.contains('/') => (r, Some(t.to_string())),
            _ => (repo_part, None),
        };
        let name = repo_part.rsplit('/').next().unwrap_or("").to_string();
        if name.is_empty() || !repo_part.contains('/') {
            return Err(err(
                &origin,
                "no chart name in the reference (oci://HOST/PATH/CHART)",
            ));
        }
        let want = version.map(str::to_string).or(tag.clone());
        let reference_text = match (&pinned, &want) {
            (Some(d), _) => format!("{repo_part}@{d}"),
            (None, Some(v)) if crate::template::funcs::parse_semver(v).is_some() => {
                format!("{repo_part}:{}", v.replace('+', "_"))
            }
            (None, _) => {
                // A constraint or nothing: the newest tag it allows.
                let probe: oci_client::Reference = format!("{repo_part}:latest")
                    .parse()
                    .map_err(|e: oci_client::ParseError| err(&origin, e.to_string()))?;
                let tags = self
                    .registry
                    .list_tags(&probe, 10_000)
                    .await
                    .map_err(|e| err(&origin, format!("listing tags: {e}")))?;
                let versions: Vec<String> = tags.iter().map(|t| t.replace('_', "+")).collect();
                let i = pick_version(&versions, want.as_deref()).ok_or_else(|| {
                    err(
                        &origin,
                        format!(
                            "no version of {name} matches {}",
                            want.as_deref().unwrap_or("(newest release)")
                        ),
                    )
                })?;
                format!("{repo_part}:{}", tags[i])
            }
        };
        let r: oci_client::Reference = reference_text
            .parse()
            .map_err(|e: oci_client::ParseError| err(&origin, e.to_string()))?;
        let shown = format!("oci://{reference_text}");
        let (body, _, digest) = self
            .registry
            .artifact_manifest(&r)
            .await
            .map_err(|e| err(&shown, e.to_string()))?;
        let manifest: Value = serde_json::from_slice(&body)
            .map_err(|e| err(&shown, format!("manifest is not JSON: {e}")))?;
        let config_type = manifest
            .pointer("/config/mediaType")
            .and_then(Value::as_str)
            .unwrap_or("");
        if config_type != HELM_CONFIG {
            return Err(err(
                &shown,
                format!(
                    "not a Helm chart: its config's media type is {config_type:?}, not {HELM_CONFIG}"
                ),
            ));
        }
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let find = |types: &[&str]| {
            layers.iter().find(|l| {
                l.get("mediaType")
                    .and_then(Value::as_str)
                    .is_some_and(|m| types.contains(&m))
            })
        };
        let blob = |l: &Value, cap: usize| {
            let d = l
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let size = l.get("size").and_then(Value::as_u64);
            let r = &r;
            let shown = &shown;
            async move {
                self.registry
                    .read_blob(r, &d, size, cap as u64)
                    .await
                    .map_err(|e| err(shown, format!("blob {d}: {e}")))
            }
        };
        let chart_layer = find(&[HELM_CHART_LAYER, HELM_CHART_LAYER_OLD])
            .ok_or_else(|| err(&shown, format!("no layer of media type {HELM_CHART_LAYER}")))?;
        let archive = blob(chart_layer, MAX_ARCHIVE).await?;
        let prov = match find(&[HELM_PROV_LAYER]) {
            Some(l) => Some(blob(l, MAX_PROV).await?),
            None => None,
        };
        // The chart's own name and version, from the config Helm pushed.
        let config_digest = manifest
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let config_size = manifest.pointer("/config/size").and_then(Value::as_u64);
        let config = self
            .registry
            .read_blob(&r, &config_digest, config_size, 1 << 20)
            .await
            .map_err(|e| err(&shown, format!("config {config_digest}: {e}")))?;
        let config: Value = serde_json::from_slice(&config)
            .map_err(|e| err(&shown, format!("config is not JSON: {e}")))?;
        let chart_name = config.get("name").and_then(Value::as_str).unwrap_or("");
        if chart_name != name {
            return Err(err(
                &shown,
                format!("the chart inside is named {chart_name:?}, not {name:?}"),
            ));
        }
        let v = version_text(config.get("version").unwrap_or(&Value::Null));
        let shown = match &pinned {
            Some(_) => format!("oci://{repo_part}:{v}@{digest}"),
            None => format!("oci://{repo_part}:{v} ({digest})"),
        };
        let host = r.resolve_registry().to_string();
        Ok(Fetched {
            archive,
            prov,
            file_name: safe_file_name(&format!("{name}-{v}.tgz"), &format!("{name}.tgz")),
            version: v,
            shown,
            plain_http: self.registry.allows_plain_http(&host),
        })
    }

    /// A dependency's chart from its repository (`https://`, `http://` or `oci://`).
    pub async fn dependency(&self, d: &Dependency, version: &str) -> Result<Fetched, FetchError> {
        let repo = d.repository.trim();
        if repo.starts_with("oci://") {
            self.from_oci(
                &format!("{}/{}", repo.trim_end_matches('/'), d.name),
                Some(version),
            )
            .await
        } else if repo.starts_with("https://") || repo.starts_with("http://") {
            self.from_repo(repo, &d.name, Some(version)).await
        } else if repo.starts_with('@') || (!repo.is_empty() && !repo.contains("://")) {
            Err(err(
                format!("dependency {}", d.name),
                format!(
                    "repository {repo:?} is a name from Helm's local repository list, which a scanner does not have: use its URL"
                ),
            ))
        } else if repo.is_empty() {
            Err(err(
                format!("dependency {}", d.name),
                "no repository to fetch it from",
            ))
        } else {
            Err(err(
                format!("dependency {}", d.name),
                format!("repository {} is not http(s) or oci://", shown_url(repo)),
            ))
        }
    }
}

/// What fetching a chart's dependencies did.
#[derive(Debug, Default)]
pub struct DependencyFetch {
    /// `name version from source`, one a fetched chart.
    pub fetched: Vec<String>,
    /// Dependencies that could not be had, each naming the chart and the dependency.
    pub errors: Vec<String>,
    /// Fetched over plain HTTP.
    pub plain_http: Vec<String>,
}

/// Where a `file://` dependency is read from, for a chart: `Some(chart)` when the path
/// (relative to the chart) names a chart the source can give, `None` when the source
/// has no local files (a packaged chart).
pub type LocalCharts<'a> = dyn Fn(&str) -> Option<Result<Chart, String>> + 'a;

/// `helm dependency build` for a loaded chart: every dependency it declares that its
/// `charts/` lacks is fetched (the version `Chart.lock` or `requirements.lock` pins, else
/// the newest the constraint allows) and added as a sub-chart, so the render and the
/// scan see it. Dependencies with `file://` repositories come from `local`. A chart
/// carried in `charts/` that a dependency allows is kept; one of the same name at a
/// version it does not allow is outdated and replaced, as `helm dependency build` does.
pub async fn fetch_dependencies(
    chart: &mut Chart,
    fetcher: &Fetcher,
    local: &LocalCharts<'_>,
    shown: &str,
) -> DependencyFetch {
    let mut out = DependencyFetch::default();
    let locked = lock_versions(chart);
    let deps = dependencies(chart);
    let mut seen = std::collections::BTreeSet::new();
    let mut attempts = 0;
    let mut bytes = 0u64;
    for d in deps {
        if d.name.is_empty() || !seen.insert((d.name.clone(), d.repository.clone())) {
            continue;
        }
        let present = chart
            .subcharts
            .iter()
            .any(|s| s.name() == d.name && compatible(&d.version, &s.version()));
        if present {
            continue;
        }
        attempts += 1;
        if attempts > MAX_FETCHED || bytes > MAX_FETCHED_BYTES {
            out.errors.push(format!(
                "{shown}: more than {MAX_FETCHED} dependencies or {MAX_FETCHED_BYTES} bytes to fetch; {} not fetched",
                d.name
            ));
            continue;
        }
        let origin = format!("{shown}: dependency {} {}", d.name, d.version);
        if let Some(rel) = d.repository.trim().strip_prefix("file://") {
            match local(rel) {
                Some(Ok(c)) => {
                    out.fetched
                        .push(format!("{} {} from file://{rel}", c.name(), c.version()));
                    chart.subcharts.push(c);
                }
                Some(Err(e)) => out.errors.push(format!("{origin}: {e}")),
                None => out.errors.push(format!(
                    "{origin}: file://{rel} cannot be read from this source (a packaged chart carries its dependencies in charts/)"
                )),
            }
            continue;
        }
        let version = locked
            .iter()
            .find(|(n, r, _)| *n == d.name && (r.is_empty() || *r == d.repository))
            .map(|(_, _, v)| v.clone())
            .unwrap_or_else(|| d.version.clone());
        let fetched = match fetcher.dependency(&d, &version).await {
            Ok(f) => f,
            Err(e) => {
                out.errors.push(format!("{origin}: {e}"));
                continue;
            }
        };
        let origin_archive = format!("{origin} ({})", fetched.shown);
        bytes += fetched.archive.len() as u64;
        match load_tgz_bytes(&origin_archive, &fetched.archive, &ChartLimits::default()) {
            Ok(mut c) if c.name() == d.name => {
                // A carried chart of that name at another version is outdated, as `helm
                // dependency build` treats it.
                chart.subcharts.retain(|s| s.name() != d.name);
                c.dir_name = fetched.file_name.trim_end_matches(".tgz").to_string();
                if fetched.plain_http {
                    out.plain_http.push(fetched.shown.clone());
                }
                out.fetched
                    .push(format!("{} {} from {}", d.name, c.version(), fetched.shown));
                chart.subcharts.push(c);
            }
            Ok(c) => out.errors.push(format!(
                "{origin_archive}: the archive holds chart {:?}, not {:?}",
                c.name(),
                d.name
            )),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    out
}

/// `(name, repository, version)` of each entry of `Chart.lock` (or `requirements.lock`).
fn lock_versions(chart: &Chart) -> Vec<(String, String, String)> {
    let text = chart
        .raw
        .get("Chart.lock")
        .or_else(|| chart.raw.get("requirements.lock"))
        .and_then(|b| std::str::from_utf8(b).ok());
    let Some(lock) = text.and_then(|t| from_yaml(t).ok()) else {
        return Vec::new();
    };
    lock.get("dependencies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d.get("name")?.as_str()?.to_string(),
                d.get("repository")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                version_text(d.get("version")?),
            ))
        })
        .filter(|(_, _, v)| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_on_their_origin() {
        let o = |u: &str| origin_of(u).unwrap_or_default();
        assert_eq!(
            o("https://u:p@Charts.Example:8443/x/index.yaml"),
            "https://charts.example:8443"
        );
        assert_eq!(
            o("https://charts.example/x"),
            o("https://charts.example:443/y")
        );
        assert_ne!(o("http://charts.example/x"), o("https://charts.example/x"));
        assert_ne!(
            o("https://charts.example.evil/x"),
            o("https://charts.example/x")
        );
        // What the HTTP client reads as the host decides, not the last `@`.
        assert_ne!(
            o("https://evil.example\\@charts.example/x"),
            o("https://charts.example/x")
        );
        assert_eq!(origin_of("not a url"), None);
    }

    #[test]
    fn archive_names_are_safe_file_names() {
        assert_eq!(
            safe_file_name("https://h/a/shop-1.0.0.tgz?x=1", "f"),
            "shop-1.0.0.tgz"
        );
        assert_eq!(safe_file_name("https://h/a/..", "f.tgz"), "f.tgz");
        assert_eq!(
            safe_file_name("https://h/a/b%2F..%2Fc.tgz", "f"),
            "b_2F.._2Fc.tgz"
        );
        assert_eq!(safe_file_name("https://h/", "f.tgz"), "f.tgz");
    }
}
