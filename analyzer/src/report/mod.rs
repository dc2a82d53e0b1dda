//! The report: what was scanned, what was found, what policy made of it, and how complete
//! the scan was. Writers take a [`Report`], never CLI flags.

pub mod json;
pub mod sarif;
pub mod table;

use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::image::Layer;

/// Version of the JSON report format (`docs/json-report.md`).
pub const SCHEMA_VERSION: &str = "1.4";

/// How serious a scan issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueLevel {
    /// Part of the image was not scanned, or the image is hostile/broken: exit 2.
    Error,
    /// Scanned, with a caveat (e.g. a file only partly read).
    Warning,
}

/// Trouble met while scanning: recorded, never silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Issue {
    pub level: IssueLevel,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", printable(&self.image))?;
        if let Some(l) = &self.layer {
            write!(f, " layer {}", printable(l))?;
        }
        if let Some(p) = &self.path {
            write!(f, " {}", printable(p))?;
        }
        write!(f, ": {}", printable(&self.message))
    }
}

/// Text from an image or a registry, safe to print on a terminal: control characters
/// (ESC sequences, carriage returns, newlines) are shown escaped, never interpreted.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Per-layer figures.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    #[serde(flatten)]
    pub layer: Layer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<crate::walk::Compression>,
    pub entries: u64,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    /// Members of archives inside the layer that were scanned.
    pub archive_members: u64,
    /// False when the layer could not be walked to the end.
    pub complete: bool,
}

/// A finding the policy suppressed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Suppressed {
    #[serde(flatten)]
    pub finding: Finding,
    pub reason: String,
}

/// Results for one platform image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    pub layers: Vec<LayerSummary>,
    /// Findings that count, most severe first.
    pub findings: Vec<Finding>,
    /// Findings an ignore rule matched.
    pub suppressed: Vec<Suppressed>,
}

/// Counts by severity.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
    pub suppressed: usize,
}

/// What policy made of the findings.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyOutcome {
    pub fail_on: Severity,
    /// Findings at or above `fail_on`.
    pub failing: usize,
    pub passed: bool,
    /// `sha256:` of the effective policy (fail-on and ignore rules).
    pub policy_digest: String,
}

/// How complete the scan was.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    /// True when every layer of every image was walked to the end without an error.
    pub complete: bool,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
    /// How many files (or archive members) a limit kept from the detectors, by reason:
    /// `file_truncated` (only the first `max_file_read` bytes scanned), `nested_*` (archive
    /// members not opened: depth, size, count, ratio, encryption, method), `scan_error`.
    pub skipped: std::collections::BTreeMap<&'static str, u64>,
}

/// Registry traffic figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchStats {
    pub blobs_downloaded: usize,
    /// Layers not walked because a store held their result under the same rules.
    pub layers_reused: usize,
    pub blobs_cached: usize,
    pub bytes_downloaded: u64,
    pub requests: usize,
    pub retries: usize,
    /// Docker Hub style rate-limit headers from the last manifest response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// `ratelimit-limit` / `ratelimit-remaining` as Docker Hub sends them (`100;w=21600`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub window_seconds: Option<u64>,
    pub source: Option<String>,
}

/// Everything one `canary scan` produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: &'static str,
    pub tool: Tool,
    /// What the user asked to scan, as given.
    pub target: String,
    pub rules_digest: String,
    pub images: Vec<ImageReport>,
    /// Helm charts scanned (`canary helm scan`): what each deploys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartReport>,
    pub summary: Summary,
    pub policy: PolicyOutcome,
    pub coverage: Coverage,
    pub fetch: FetchStats,
    pub duration_ms: u64,
}

/// A chart scanned: its identity, how much it rendered to, and the images it deploys.
#[derive(Debug, Clone, Serialize)]
pub struct ChartReport {
    pub name: String,
    pub version: String,
    /// Rendered manifests.
    pub manifests: usize,
    pub images: Vec<ChartImage>,
}

/// An image a chart deploys, per workload and container.
#[derive(Debug, Clone, Serialize)]
pub struct ChartImage {
    /// `Deployment/web`.
    pub object: String,
    /// `containers app`.
    pub container: String,
    pub image: String,
    /// The template it was rendered from.
    pub source: String,
    /// With `--images`: the image as scanned (its platform manifest digest, or none if it
    /// could not be opened) and its findings after the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ChartImageScan>,
}

/// What scanning a chart's image found, shown with every workload that uses it.
#[derive(Debug, Clone, Serialize)]
pub struct ChartImageScan {
    pub manifest_digest: Option<String>,
    pub findings: usize,
    /// The highest severity among them.
    pub max_severity: Option<Severity>,
    /// Why it could not be scanned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Report {
    /// Exit code contract: 2 when the scan is incomplete, else 1 when policy failed, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.coverage.complete {
            2
        } else if !self.policy.passed {
            1
        } else {
            0
        }
    }

    pub fn all_findings(&self) -> impl Iterator<Item = (&ImageReport, &Finding)> {
        self.images
            .iter()
            .flat_map(|i| i.findings.iter().map(move |f| (i, f)))
    }
}

impl Summary {
    pub fn count(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Info => self.info += 1,
        }
    }
}
