//! Harbor's Pluggable Scanner Adapter API (v1.0–1.2) under `/api/v1`.
//!
//! Harbor's spec has no malware or secret report type (its malware spec is "TBD"), so a
//! report is offered in three MIME types: our own findings
//! (`application/vnd.canary.report+json; version=1.0`, the CLI's JSON report), and the
//! two vulnerability-report shapes Harbor's UI knows, with each finding as one entry
//! (rule id as the id, the file as the package, severity mapped onto Harbor's scale), so
//! severities show up in Harbor.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::{Shared, enqueue, header_str};

pub const METADATA_MIME: &str = "application/vnd.scanner.adapter.metadata+json; version=1.0";
pub const SCAN_RESPONSE_MIME: &str =
    "application/vnd.scanner.adapter.scan.response+json; version=1.0";
pub const ERROR_MIME: &str = "application/vnd.scanner.adapter.error+json; version=1.0";
pub const HARBOR_REPORT_MIME: &str =
    "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
pub const VULN_REPORT_MIME: &str = "application/vnd.security.vulnerability.report; version=1.1";
pub const CANARY_REPORT_MIME: &str = "application/vnd.canary.report+json; version=1.0";
const CONSUMES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

pub fn harbor_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, ERROR_MIME)],
        json!({"error": {"message": message.into()}}).to_string(),
    )
        .into_response()
}

/// `GET /api/v1/metadata`.
pub async fn metadata(State(app): State<Shared>) -> Response {
    let body = json!({
        "scanner": {
            "name": "Canary",
            "vendor": "Canary",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "capabilities": [{
            "type": "vulnerability",
            "consumes_mime_types": CONSUMES,
            "produces_mime_types": [HARBOR_REPORT_MIME, VULN_REPORT_MIME, CANARY_REPORT_MIME],
        }],
        "properties": {
            "harbor.scanner-adapter/scanner-type": "malware-and-secrets",
            "harbor.scanner-adapter/vulnerability-database-updated-at": "",
            "org.canary.rules-digest": app.scanner.rules_digest,
            "org.canary.policy-digest": app.scanner.policy_digest,
            "org.canary.findings": "crypto-miners, embedded secrets, risky image configuration",
        },
    });
    ([(header::CONTENT_TYPE, METADATA_MIME)], body.to_string()).into_response()
}

#[derive(Deserialize)]
struct ScanRequest {
    registry: RegistryPart,
    artifact: Artifact,
}

#[derive(Deserialize)]
struct RegistryPart {
    url: String,
    #[serde(default)]
    authorization: Option<String>,
}

#[derive(Deserialize)]
struct Artifact {
    repository: String,
    digest: String,
    #[serde(default)]
    mime_type: Option<String>,
}

/// `Basic base64(user:password)` → `user:password`.
fn basic_credentials(authorization: &str) -> Result<String, String> {
    let Some(b64) = authorization.strip_prefix("Basic ") else {
        let scheme = authorization.split(' ').next().unwrap_or("");
        return Err(format!(
            "registry.authorization scheme {scheme:?} is not supported (Harbor's robot accounts use Basic)"
        ));
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| "registry.authorization: Basic credentials are not base64".to_string())?;
    let s = String::from_utf8(raw)
        .map_err(|_| "registry.authorization: credentials are not UTF-8".to_string())?;
    if !s.contains(':') {
        return Err("registry.authorization: Basic credentials are not user:password".into());
    }
    Ok(s)
}

/// `POST /api/v1/scan`.
pub async fn scan(State(app): State<Shared>, body: Bytes) -> Response {
    let req: ScanRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return harbor_error(StatusCode::BAD_REQUEST, format!("not a scan request: {e}")),
    };
    if let Some(mt) = &req.artifact.mime_type
        && !mt.is_empty()
        && !CONSUMES.contains(&mt.as_str())
    {
        return harbor_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("artifact.mime_type {mt:?} is not one this scanner consumes"),
        );
    }
    let (scheme, host) = match req.registry.url.split_once("://") {
        Some((s, rest)) => (s, rest.trim_end_matches('/')),
        None => ("https", req.registry.url.trim_end_matches('/')),
    };
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return harbor_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "registry.url {:?} is not a registry base URL",
                req.registry.url
            ),
        );
    }
    if scheme == "http" && !app.resolver.allows_plain_http(host) {
        return harbor_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "registry.url {:?} is plain HTTP; start canary serve with --insecure-registry {host} to allow it",
                req.registry.url
            ),
        );
    }
    let image = match crate::server::parse_image(&format!(
        "{host}/{}@{}",
        req.artifact.repository, req.artifact.digest
    ))
    .and_then(|i| app.check_registry(&i).map(|_| i))
    {
        Ok(i) => i,
        Err(e) => return harbor_error(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let auth = match req
        .registry
        .authorization
        .as_deref()
        .filter(|a| !a.is_empty())
    {
        None => None,
        Some(a) => match basic_credentials(a) {
            Ok(c) => Some(c),
            Err(e) => return harbor_error(StatusCode::UNPROCESSABLE_ENTITY, e),
        },
    };
    let platform = app.config.platform.clone();
    match enqueue(&app, &image, &platform, "harbor", auth).await {
        Ok((id, _)) => (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, SCAN_RESPONSE_MIME)],
            json!({ "id": id }).to_string(),
        )
            .into_response(),
        Err(e) => harbor_error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e:#}")),
    }
}

/// Harbor's severity scale.
fn harbor_severity(s: &str) -> &'static str {
    match s {
        "critical" => "Critical",
        "high" => "High",
        "medium" => "Medium",
        "low" => "Low",
        "info" => "Negligible",
        _ => "Unknown",
    }
}

fn rank(s: &str) -> u8 {
    match s {
        "Critical" => 5,
        "High" => 4,
        "Medium" => 3,
        "Low" => 2,
        "Negligible" => 1,
        _ => 0,
    }
}

/// Our report as a Harbor vulnerability report.
fn vulnerability_report(report: &Value, artifact: Value, v11: bool, generated_at: String) -> Value {
    let mut worst = "None";
    let mut vulns = Vec::new();
    for img in report["images"].as_array().into_iter().flatten() {
        for f in img["findings"].as_array().into_iter().flatten() {
            let sev = harbor_severity(f["severity"].as_str().unwrap_or(""));
            if worst == "None" || rank(sev) > rank(worst) {
                worst = sev;
            }
            let loc = &f["location"];
            let package = match loc["kind"].as_str() {
                Some("image_file") => loc["path"].as_str().unwrap_or("").to_string(),
                Some(k) => format!("({k})"),
                None => String::new(),
            };
            let layer = loc["layer_digest"].as_str().unwrap_or("");
            let mut description = f["title"].as_str().unwrap_or("").to_string();
            if let Some(e) = f["evidence"].as_str().filter(|e| !e.is_empty()) {
                description.push_str(&format!(" (evidence, redacted: {e})"));
            }
            let mut v = json!({
                "id": f["rule_id"],
                "package": package,
                "version": if layer.is_empty() { "-".to_string() } else { layer.to_string() },
                "fix_version": "",
                "severity": sev,
                "description": description,
                "links": [],
            });
            if !layer.is_empty() {
                v["layer"] = json!({ "digest": layer });
            }
            if v11 {
                v["vendor_attributes"] = json!({
                    "category": f["category"],
                    "confidence": f["confidence"],
                    "fingerprint": f["fingerprint"],
                    "location": loc,
                });
            }
            vulns.push(v);
        }
    }
    json!({
        "generated_at": generated_at,
        "artifact": artifact,
        "scanner": { "name": "Canary", "vendor": "Canary", "version": env!("CARGO_PKG_VERSION") },
        "severity": if worst == "None" { "None" } else { worst },
        "vulnerabilities": vulns,
    })
}

/// `GET /api/v1/scan/{id}/report`: 302 with `Refresh-After` while the scan runs.
pub async fn report(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let accept = header_str(&headers, "accept");
    let want = if accept.is_empty()
        || accept.contains("*/*")
        || accept.contains(HARBOR_REPORT_MIME.split(';').next().unwrap_or(""))
    {
        HARBOR_REPORT_MIME
    } else if accept.contains("application/vnd.security.vulnerability.report") {
        VULN_REPORT_MIME
    } else if accept.contains("application/vnd.canary.report+json") {
        CANARY_REPORT_MIME
    } else {
        return harbor_error(
            StatusCode::BAD_REQUEST,
            format!(
                "unsupported report type {accept:?}; this scanner produces {HARBOR_REPORT_MIME}, {VULN_REPORT_MIME} and {CANARY_REPORT_MIME}"
            ),
        );
    };
    if id.len() > 64 {
        return harbor_error(StatusCode::NOT_FOUND, "no such scan request");
    }
    let job = match app.scanner.store.job(&id).await {
        Ok(Some(j)) => j,
        Ok(None) => return harbor_error(StatusCode::NOT_FOUND, "no such scan request"),
        Err(e) => return harbor_error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e:#}")),
    };
    match job.state.as_str() {
        "queued" | "running" => {
            let location = format!("/api/v1/scan/{id}/report");
            return (
                StatusCode::FOUND,
                [("Refresh-After", "5".to_string()), ("Location", location)],
            )
                .into_response();
        }
        "failed" => {
            return harbor_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("scan failed: {}", job.error.unwrap_or_default()),
            );
        }
        _ => {}
    }
    let Some(manifest) = job.manifest_digest.as_deref() else {
        return harbor_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "scan finished without a manifest",
        );
    };
    let report: Value = match app
        .scanner
        .store
        .verdict_report(manifest, &app.scanner.policy_digest)
        .await
    {
        Ok(Some(b)) => match crate::scanner::unpack(&b) {
            Ok(r) => r,
            Err(e) => {
                return harbor_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("stored report: {e}"),
                );
            }
        },
        Ok(None) => {
            return harbor_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the scan's report is gone",
            );
        }
        Err(e) => return harbor_error(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e:#}")),
    };
    let body = if want == CANARY_REPORT_MIME {
        report
    } else {
        let (repository, digest) = job
            .image
            .split_once('@')
            .map(|(r, d)| (r.split_once('/').map(|x| x.1).unwrap_or(r), d))
            .unwrap_or((job.image.as_str(), manifest));
        let generated = chrono::DateTime::from_timestamp_millis(job.updated_at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        vulnerability_report(
            &report,
            json!({ "repository": repository, "digest": digest, "mime_type": CONSUMES[1] }),
            want == VULN_REPORT_MIME,
            generated,
        )
    };
    ([(header::CONTENT_TYPE, want)], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded_and_other_schemes_refused() {
        let b = base64::engine::general_purpose::STANDARD.encode("robot$x:secret");
        assert_eq!(
            basic_credentials(&format!("Basic {b}")).unwrap(),
            "robot$x:secret"
        );
        assert!(
            basic_credentials("Bearer abc")
                .unwrap_err()
                .contains("Bearer")
        );
        assert!(basic_credentials("Basic !!!").is_err());
        let no_colon = base64::engine::general_purpose::STANDARD.encode("nocolon");
        assert!(basic_credentials(&format!("Basic {no_colon}")).is_err());
    }

    #[test]
    fn report_maps_findings_onto_harbor_severities() {
        let report = json!({"images": [{"findings": [
            {"rule_id": "miner/xmrig", "severity": "critical", "title": "XMRig", "evidence": "",
             "category": "miner", "confidence": "high", "fingerprint": "f",
             "location": {"kind": "image_file", "path": "/usr/bin/x", "layer_digest": "sha256:aa"}},
            {"rule_id": "config/root-user", "severity": "info", "title": "root", "evidence": "",
             "category": "config", "confidence": "high", "fingerprint": "g",
             "location": {"kind": "image_config", "field": "User"}}
        ]}]});
        let r = vulnerability_report(&report, json!({}), true, "t".into());
        assert_eq!(r["severity"], "Critical");
        let v = r["vulnerabilities"].as_array().unwrap();
        assert_eq!(v[0]["package"], "/usr/bin/x");
        assert_eq!(v[0]["layer"]["digest"], "sha256:aa");
        assert_eq!(v[1]["severity"], "Negligible");
        assert_eq!(v[1]["package"], "(image_config)");
        assert_eq!(v[1]["vendor_attributes"]["category"], "config");
    }
}
