//! Kubernetes validating admission webhook (`admission.k8s.io/v1` AdmissionReview) at
//! `POST /admission/validate`, for Pods and the controllers that make them.
//!
//! Every container image (init and ephemeral ones too) is resolved to a digest (pinned
//! references as they are; tags by a HEAD to the registry, or the last digest the tag
//! had when the registry cannot be reached, said in a warning) and answered from stored
//! verdicts. On a miss a scan is queued and the namespace's setting decides: deny, allow,
//! or wait for the verdict up to a budget that must stay under the webhook's
//! `timeoutSeconds`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::scanner::Lookup;
use crate::server::{Shared, enqueue, error, parse_image};

/// What to do when an image has no verdict yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMiss {
    Deny,
    Allow,
    Wait,
}

impl std::str::FromStr for OnMiss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "deny" => Ok(OnMiss::Deny),
            "allow" => Ok(OnMiss::Allow),
            "wait" => Ok(OnMiss::Wait),
            _ => Err(format!("{s:?}: expected deny, allow or wait")),
        }
    }
}

/// One namespace's setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissPolicy {
    pub on_miss: OnMiss,
    /// With `wait`: how long to wait for the scan, in milliseconds.
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
    /// With `wait`: what to answer when the budget runs out (`deny` or `allow`).
    #[serde(default = "default_after_wait")]
    pub after_wait: OnMiss,
    /// Admit only images pinned by digest: a tag can be moved between admission and the
    /// kubelet's pull, a digest cannot.
    #[serde(default)]
    pub require_digest: bool,
}

fn default_wait_ms() -> u64 {
    8_000
}
fn default_after_wait() -> OnMiss {
    OnMiss::Deny
}

/// The webhook's settings: a default and per-namespace overrides.
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    pub default: MissPolicy,
    pub namespaces: HashMap<String, MissPolicy>,
    /// Longest a tag's HEAD may take before the stored digest is used.
    pub resolve_timeout: Duration,
    /// Oldest tag → digest resolution that may stand in for an unreachable registry.
    pub stale_tag_max_age: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            default: MissPolicy {
                on_miss: OnMiss::Wait,
                wait_ms: default_wait_ms(),
                after_wait: OnMiss::Deny,
                require_digest: false,
            },
            namespaces: HashMap::new(),
            resolve_timeout: Duration::from_secs(2),
            stale_tag_max_age: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(flatten)]
    default: Option<MissPolicy>,
    #[serde(default)]
    namespaces: HashMap<String, MissPolicy>,
}

impl AdmissionConfig {
    /// Read a TOML file: top-level `on_miss`/`wait_ms`/`after_wait`, and
    /// `[namespaces.NAME]` tables with the same keys.
    pub fn from_file(path: &std::path::Path, base: AdmissionConfig) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let f: ConfigFile =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut c = base;
        if let Some(d) = f.default {
            c.default = d;
        }
        c.namespaces = f.namespaces;
        for (name, p) in std::iter::once(("(default)", &c.default))
            .chain(c.namespaces.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if p.wait_ms > 29_000 {
                anyhow::bail!(
                    "{}: {name}: wait_ms {} is over 29000; Kubernetes gives a webhook at most 30 s",
                    path.display(),
                    p.wait_ms
                );
            }
            if p.after_wait == OnMiss::Wait {
                anyhow::bail!(
                    "{}: {name}: after_wait must be deny or allow",
                    path.display()
                );
            }
        }
        Ok(c)
    }

    fn for_namespace(&self, ns: &str) -> &MissPolicy {
        self.namespaces.get(ns).unwrap_or(&self.default)
    }
}

/// `(where, image)` for every container, init container and ephemeral container.
fn images_of(spec: &Value) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for list in canary_helm_scanner::k8s::CONTAINER_LISTS {
        let Some(cs) = spec.get(list) else { continue };
        let cs = cs
            .as_array()
            .ok_or_else(|| format!("spec.{list} is not a list"))?;
        for (i, c) in cs.iter().enumerate() {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
            match c.get("image") {
                Some(Value::String(img)) => {
                    out.push((format!("{list}[{i}] {name}"), img.clone()));
                }
                None | Some(Value::Null) => {
                    return Err(format!("spec.{list}[{i}] ({name}) has no image"));
                }
                Some(_) => return Err(format!("spec.{list}[{i}].image is not a string")),
            }
        }
    }
    Ok(out)
}

/// What was decided for one image.
struct Decision {
    allowed: bool,
    message: Option<String>,
    warning: Option<String>,
}

fn short(d: &str) -> &str {
    d.get(..19).unwrap_or(d)
}

fn denial_reason(v: &crate::store::Verdict) -> String {
    let failing = v.summary.get("failing").and_then(Value::as_array);
    let ids: Vec<String> = failing
        .map(|fs| {
            fs.iter()
                .take(5)
                .map(|f| {
                    format!(
                        "{} at {}",
                        f.get("rule_id").and_then(Value::as_str).unwrap_or("?"),
                        f.get("location").and_then(Value::as_str).unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        if v.summary.get("complete") == Some(&Value::Bool(false)) {
            return "the image could not be scanned completely".into();
        }
        return "denied by policy".into();
    }
    let n = failing.map(Vec::len).unwrap_or(0);
    format!(
        "{n} finding(s) at or above the policy threshold: {}",
        ids.join("; ")
    )
}

/// The digest a tag had the last time, when it was learned recently enough to stand in
/// for a registry that cannot be reached.
async fn stored_digest(app: &Shared, reference: &oci_client::Reference) -> Option<String> {
    let (d, at) = app
        .scanner
        .store
        .image_digest(&reference.whole())
        .await
        .ok()??;
    let age = crate::store::now_ms().saturating_sub(at);
    (age <= app.config.admission.stale_tag_max_age.as_millis() as i64).then_some(d)
}

async fn decide(
    app: &Shared,
    namespace: &str,
    image: &str,
    deadline: Instant,
    dry_run: bool,
) -> Decision {
    let deny = |message: String| Decision {
        allowed: false,
        message: Some(message),
        warning: None,
    };
    let reference = match parse_image(image).and_then(|r| app.check_registry(&r).map(|_| r)) {
        Ok(r) => r,
        Err(e) => return deny(e),
    };
    let policy = app.config.admission.for_namespace(namespace).clone();
    if policy.require_digest && reference.digest().is_none() {
        return deny(format!(
            "{image}: namespace {namespace:?} admits only images pinned by digest (image@sha256:…)"
        ));
    }
    let platform = app.config.platform.clone();
    let mut warning = None;
    let digest = match reference.digest() {
        Some(d) => Some(d.to_string()),
        None => {
            let head = tokio::time::timeout(
                app.config.admission.resolve_timeout,
                app.resolver.head(&reference),
            )
            .await;
            // Only an unreachable or failing registry lets the stored digest stand in: a
            // registry that says "no such tag" or "not allowed" is believed.
            let why = match head {
                Ok(Ok(h)) => {
                    let store = app.scanner.store.clone();
                    let (r, d) = (reference.whole(), h.digest.clone());
                    tokio::spawn(async move {
                        let _ = store.record_image(&r, &d).await;
                    });
                    Err(h.digest)
                }
                Ok(Err(e)) if crate::scanner::transient(&e) => {
                    Ok(format!("registry not reachable ({e})"))
                }
                Ok(Err(e)) => return deny(format!("{image}: cannot resolve the tag: {e}")),
                Err(_) => Ok("registry too slow to answer".to_string()),
            };
            match why {
                Err(resolved) => Some(resolved),
                Ok(why) => match stored_digest(app, &reference).await {
                    Some(d) => {
                        warning = Some(format!(
                            "{image}: {why}; used the digest the tag last had, {}",
                            short(&d)
                        ));
                        Some(d)
                    }
                    None => {
                        warning = Some(format!("{image}: {why}; the tag has no recent digest"));
                        None
                    }
                },
            }
        }
    };
    let Some(digest) = digest else {
        // Not even a digest: nothing can be scanned; the namespace's setting decides.
        let allowed = policy.on_miss == OnMiss::Allow;
        return Decision {
            allowed,
            message: (!allowed)
                .then(|| format!("{image}: not resolvable to a digest, so not scanned")),
            warning,
        };
    };
    let mut rx = app.scanner.verdict_stored.subscribe();
    match app.scanner.lookup(&digest, &platform).await {
        Ok(Lookup::Hit(v)) => {
            return Decision {
                allowed: v.allowed,
                message: (!v.allowed)
                    .then(|| format!("{image} ({}): {}", short(&digest), denial_reason(&v))),
                warning,
            };
        }
        Ok(_) => {}
        Err(e) => {
            return Decision {
                allowed: false,
                message: Some(format!("{image}: verdict store unavailable: {e:#}")),
                warning,
            };
        }
    }
    // A miss: scan exactly the digest that was resolved (not for a dry run, which must
    // have no side effects: it is answered as if the wait ran out).
    let p = policy;
    if dry_run {
        let allowed = match p.on_miss {
            OnMiss::Wait => p.after_wait == OnMiss::Allow,
            other => other == OnMiss::Allow,
        };
        return Decision {
            allowed,
            message: (!allowed).then(|| {
                format!(
                    "{image} ({}): not scanned yet (dry run: no scan queued)",
                    short(&digest)
                )
            }),
            warning,
        };
    }
    let pinned = oci_client::Reference::with_digest(
        reference.registry().to_string(),
        reference.repository().to_string(),
        digest.clone(),
    );
    let queued = enqueue(app, &pinned, &platform, "admission", None).await;
    let job = match &queued {
        Ok((id, _)) => format!("scan {id} queued"),
        Err(e) => format!("the scan could not be queued: {e:#}"),
    };
    let miss = |allowed: bool, why: &str| Decision {
        allowed,
        message: (!allowed).then(|| format!("{image} ({}): {why}; {job}", short(&digest))),
        warning: if allowed {
            Some(format!("{image}: {why}; allowed without a verdict, {job}"))
        } else {
            warning.clone()
        },
    };
    match p.on_miss {
        OnMiss::Deny => miss(false, "not scanned yet"),
        OnMiss::Allow => miss(true, "not scanned yet"),
        OnMiss::Wait => {
            let until = deadline.min(Instant::now() + Duration::from_millis(p.wait_ms));
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return miss(
                        p.after_wait == OnMiss::Allow,
                        "scan not finished within the wait budget",
                    );
                }
                // Woken by a verdict stored here, or polling for one stored by a replica.
                let _ = tokio::time::timeout(left.min(Duration::from_millis(250)), rx.recv()).await;
                if let Ok(Lookup::Hit(v)) = app.scanner.lookup(&digest, &platform).await {
                    return Decision {
                        allowed: v.allowed,
                        message: (!v.allowed).then(|| {
                            format!("{image} ({}): {}", short(&digest), denial_reason(&v))
                        }),
                        warning,
                    };
                }
                if let Ok((id, _)) = &queued
                    && let Ok(Some(j)) = app.scanner.store.job(id).await
                    && j.state == "failed"
                {
                    return miss(
                        p.after_wait == OnMiss::Allow,
                        &format!("scan failed: {}", j.error.unwrap_or_default()),
                    );
                }
            }
        }
    }
}

/// `POST /admission/validate`.
pub async fn validate(State(app): State<Shared>, body: Bytes) -> Response {
    let started = Instant::now();
    let review: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("not an AdmissionReview: {e}"),
            );
        }
    };
    if review.get("apiVersion").and_then(Value::as_str) != Some("admission.k8s.io/v1")
        || review.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        return error(
            StatusCode::BAD_REQUEST,
            "expected apiVersion admission.k8s.io/v1, kind AdmissionReview",
        );
    }
    let Some(req) = review.get("request").filter(|r| r.is_object()) else {
        return error(StatusCode::BAD_REQUEST, "AdmissionReview without a request");
    };
    let Some(uid) = req.get("uid").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "AdmissionReview request without a uid",
        );
    };
    let namespace = req.get("namespace").and_then(Value::as_str).unwrap_or("");
    let dry_run = req.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    let kind = req
        .pointer("/kind/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let answer = |allowed: bool, message: Option<String>, warnings: Vec<String>| {
        app.scanner.metrics.admission(allowed);
        let mut response = json!({ "uid": uid, "allowed": allowed });
        if let Some(m) = message {
            response["status"] = json!({ "code": 403, "reason": "Forbidden", "message": m });
        }
        if !warnings.is_empty() {
            response["warnings"] = json!(warnings);
        }
        axum::Json(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }))
        .into_response()
    };
    let object = match req.get("object") {
        None | Some(Value::Null) => return answer(true, None, vec![]), // e.g. DELETE
        Some(o) => o,
    };
    let Some(spec) = canary_helm_scanner::k8s::pod_spec(kind, object) else {
        return answer(
            true,
            None,
            vec![format!(
                "canary: kind {kind:?} holds no pod template; not inspected"
            )],
        );
    };
    let images = match images_of(spec) {
        Ok(i) => i,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("{kind}: {e}")),
    };
    if images.len() > 256 {
        return answer(false, Some("more than 256 containers".into()), vec![]);
    }
    // Keep below the webhook's own timeout whatever the namespace asks.
    let deadline = started
        + app
            .config
            .request_timeout
            .saturating_sub(Duration::from_millis(500));
    let mut distinct: Vec<&str> = images.iter().map(|(_, i)| i.as_str()).collect();
    distinct.sort();
    distinct.dedup();
    let decisions = futures_util::future::join_all(
        distinct
            .iter()
            .map(|img| decide(&app, namespace, img, deadline, dry_run)),
    )
    .await;
    let mut denied = Vec::new();
    let mut warnings = Vec::new();
    for d in decisions {
        if !d.allowed {
            denied.push(d.message.unwrap_or_else(|| "denied".into()));
        }
        if let Some(w) = d.warning {
            warnings.push(format!("canary: {w}"));
        }
    }
    if denied.is_empty() {
        answer(true, None, warnings)
    } else {
        answer(
            false,
            Some(format!("canary: {}", denied.join(" | "))),
            warnings,
        )
    }
}
