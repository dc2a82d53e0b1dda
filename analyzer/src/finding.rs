//! The vocabulary every detector, policy and report writer shares: [`Finding`],
//! [`Severity`], [`Category`], [`Location`]. No I/O here.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity {s:?} (expected info, low, medium, high or critical)")
            })
    }
}

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Secret,
    Miner,
    Malware,
    Config,
    Runtime,
    Misconfig,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Secret => "secret",
            Category::Miner => "miner",
            Category::Malware => "malware",
            Category::Config => "config",
            Category::Runtime => "runtime",
            Category::Misconfig => "misconfig",
        }
    }
}

/// How sure the detector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

/// Whether a file is still there in the image's final filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Present in the final filesystem.
    Visible,
    /// Removed by a whiteout or an opaque directory in a later layer.
    Deleted,
    /// Overwritten by a file at the same path in a later layer.
    Replaced,
}

/// Where a finding was seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// A file inside a layer.
    ImageFile {
        layer_index: usize,
        layer_digest: String,
        path: String,
        /// 1-based line, when the detector knows it.
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
        /// Outer archive paths when the file sits inside nested archives, outermost first.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        archive_chain: Vec<String>,
        visibility: Visibility,
    },
    /// A field of the image config, e.g. `config.Env[3]` or `history[5].created_by`.
    ImageConfig { field: String },
    /// Something the image did when run in the sandbox, e.g. `connect 198.18.1.2:3333
    /// (pool.example.org)`; `pid` is the process inside the run.
    Runtime {
        event: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// A file of a Helm chart (`path` relative to the chart, sub-charts under
    /// `charts/<name>/`), or a manifest rendered from it (`rendered`: the template's path
    /// as `helm template` names it).
    ChartFile {
        path: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
        rendered: bool,
        /// The object a rendered-manifest finding is about (`Deployment/web`).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        object: Option<String>,
        /// For a finding in a chart repository's history: the commit that added the
        /// file's content.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        commit: Option<CommitRef>,
    },
}

/// A commit of a Git history.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommitRef {
    pub id: String,
    /// When the commit was made (committer time, RFC 3339).
    pub date: String,
    /// Whether the same content is still in the tree at HEAD.
    pub at_head: bool,
}

impl Location {
    /// A short human form: `layer 2 /etc/x:4 (deleted)` or `config.Env[0]`.
    pub fn display(&self) -> String {
        match self {
            Location::ImageFile {
                layer_index,
                path,
                line,
                archive_chain,
                visibility,
                ..
            } => {
                let mut s = String::new();
                for a in archive_chain {
                    s.push_str(a);
                    s.push_str(" > ");
                }
                s.push_str(path);
                if let Some(l) = line {
                    s.push_str(&format!(":{l}"));
                }
                s.push_str(&format!(" [layer {layer_index}]"));
                match visibility {
                    Visibility::Visible => {}
                    Visibility::Deleted => s.push_str(" (deleted in a later layer)"),
                    Visibility::Replaced => s.push_str(" (replaced in a later layer)"),
                }
                s
            }
            Location::ImageConfig { field } => field.clone(),
            Location::Runtime { event, pid } => match pid {
                Some(p) => format!("at run time, pid {p}: {event}"),
                None => format!("at run time: {event}"),
            },
            Location::ChartFile {
                path,
                line,
                rendered,
                object,
                commit,
            } => {
                let mut s = path.clone();
                if let Some(l) = line {
                    s.push_str(&format!(":{l}"));
                }
                if let Some(o) = object {
                    s.push_str(&format!(" {o}"));
                }
                if *rendered {
                    s.push_str(" (rendered)");
                }
                if let Some(c) = commit {
                    s.push_str(&format!(
                        " [commit {} {}{}]",
                        c.id.get(..12).unwrap_or(&c.id),
                        c.date,
                        if c.at_head { "" } else { ", not at HEAD" }
                    ));
                }
                s
            }
        }
    }
}

/// One thing a detector found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable, namespaced id, e.g. `config/env-credential`.
    pub rule_id: String,
    pub category: Category,
    pub severity: Severity,
    pub confidence: Confidence,
    /// One line saying what was found.
    pub title: String,
    pub location: Location,
    /// Evidence with every secret value redacted.
    pub evidence: String,
    /// `sha256:` of rule id, location key and the *unredacted* matched value: stable across
    /// runs and layers, usable in ignore files. One-way, but unsalted: a guess of a weak
    /// value can be confirmed against it.
    pub fingerprint: String,
}

impl Finding {
    /// Fingerprint from the rule, a location key that does not depend on layer order
    /// (a path or a config field), and the raw matched value.
    pub fn fingerprint_of(rule_id: &str, location_key: &str, raw_value: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(rule_id.as_bytes());
        h.update([0]);
        h.update(location_key.as_bytes());
        h.update([0]);
        h.update(raw_value);
        format!("sha256:{}", crate::hex(&h.finalize()))
    }

    /// The path of an image-file finding.
    pub fn path(&self) -> Option<&str> {
        match &self.location {
            Location::ImageFile { path, .. } | Location::ChartFile { path, .. } => Some(path),
            Location::ImageConfig { .. } | Location::Runtime { .. } => None,
        }
    }
}

/// Redact a secret value: keep at most the first 4 characters of values of 12 or more
/// characters, never more than a quarter of the value, and replace the rest by `*`s of a
/// fixed count, so the length is not revealed either.
pub fn redact(value: &str) -> String {
    let n = value.chars().count();
    let keep = if n >= 12 { (n / 4).min(4) } else { 0 };
    let head: String = value.chars().take(keep).collect();
    format!("{head}********")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_never_shows_short_values_and_at_most_four_chars() {
        assert_eq!(redact("hunter2"), "********");
        assert_eq!(redact("AKIAABCDEFGHIJKLMNOP"), "AKIA********");
        assert_eq!(redact("abcdefghijkl"), "abc********");
    }

    #[test]
    fn severity_parses_and_orders() {
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!(Severity::Critical > Severity::High);
        assert!("urgent".parse::<Severity>().is_err());
    }

    #[test]
    fn fingerprint_depends_on_value_but_does_not_contain_it() {
        let a = Finding::fingerprint_of("r", "/p", b"secret-one");
        let b = Finding::fingerprint_of("r", "/p", b"secret-two");
        assert_ne!(a, b);
        assert!(!a.contains("secret"));
        assert!(a.starts_with("sha256:"));
    }
}
