//! SARIF 2.1.0 (`--format sarif`), shaped for GitHub code scanning: every result has a
//! rule, a level, a message, a physical location with a start line, and a partial
//! fingerprint; every rule carries `security-severity`.

use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::Report;
use super::json::json_io_error;
use crate::finding::{Finding, Location, Severity};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's bands: > 9.0 critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn rule_descriptor(f: &Finding) -> Value {
    let meta = canary_rules::rule(&f.rule_id);
    let short = meta
        .map(|m| m.title.clone())
        .unwrap_or_else(|| f.title.clone());
    let full = meta
        .map(|m| m.description.clone())
        .unwrap_or_else(|| f.title.clone());
    let help = meta.map(|m| m.help.clone()).unwrap_or_default();
    json!({
        "id": f.rule_id,
        "name": f.rule_id.replace(['/', '-'], "_"),
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "help": { "text": if help.is_empty() { full.clone() } else { help.clone() }, "markdown": if help.is_empty() { full } else { help } },
        "defaultConfiguration": { "level": level(f.severity) },
        "properties": {
            "tags": ["security", f.category.as_str()],
            "security-severity": security_severity(f.severity),
            "precision": "high"
        }
    })
}

/// URI of where a finding is: the file path inside the image (relative), or the image
/// name for config and runtime findings.
fn artifact_uri(image_name: &str, loc: &Location) -> String {
    let raw = match loc {
        Location::ImageFile { path, .. } | Location::ChartFile { path, .. } => {
            path.trim_start_matches('/').to_string()
        }
        Location::ImageConfig { .. } | Location::Runtime { .. } => {
            let n = image_name.split(['@', ' ']).next().unwrap_or(image_name);
            n.replace(':', "/").trim_start_matches('/').to_string()
        }
    };
    percent_encode_path(&raw)
}

/// A relative URI reference from a path: everything but unreserved characters and `/`
/// is percent-encoded (spaces, `#`, `?`, `%`, non-ASCII, control bytes).
fn percent_encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Build the SARIF document.
pub fn to_value(report: &Report) -> Value {
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    for (_, f) in report.all_findings() {
        rules
            .entry(f.rule_id.clone())
            .or_insert_with(|| rule_descriptor(f));
    }
    let index: BTreeMap<&str, usize> = rules
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut results = Vec::new();
    for (img, f) in report.all_findings() {
        let line = match &f.location {
            Location::ImageFile { line: Some(l), .. }
            | Location::ChartFile { line: Some(l), .. } => *l,
            _ => 1,
        };
        let mut text = format!("{}: {} at {}", f.title, f.evidence, f.location.display());
        text.push_str(&format!(" in {}", img.name));
        results.push(json!({
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id.as_str()],
            "level": level(f.severity),
            "message": { "text": text },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": artifact_uri(&img.name, &f.location) },
                    "region": { "startLine": line }
                },
                "message": { "text": f.location.display() }
            }],
            "partialFingerprints": { "canaryFingerprint/v1": f.fingerprint },
            "properties": {
                "category": f.category.as_str(),
                "severity": f.severity.as_str(),
                "confidence": f.confidence,
                "image": img.name,
                "platform": img.platform,
                "manifestDigest": img.manifest_digest,
            }
        }));
    }
    let notifications: Vec<Value> = report
        .coverage
        .errors
        .iter()
        .map(|e| json!({ "level": "error", "message": { "text": e.to_string() } }))
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "canary",
                "version": report.tool.version,
                "semanticVersion": report.tool.version,
                "rules": rules.into_values().collect::<Vec<_>>()
            }},
            "automationDetails": { "id": format!("canary/{}/", report.target) },
            "results": results,
            "invocations": [{
                "executionSuccessful": report.coverage.complete,
                "toolExecutionNotifications": notifications
            }],
            "properties": { "rulesDigest": report.rules_digest, "policyDigest": report.policy.policy_digest }
        }]
    })
}

/// Write SARIF followed by a newline.
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(report)).map_err(json_io_error)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(
            super::percent_encode_path("etc/my file#1?.txt"),
            "etc/my%20file%231%3F.txt"
        );
        assert_eq!(super::percent_encode_path("usr/bin/ü"), "usr/bin/%C3%BC");
    }
}
