//! Policy: which findings fail the scan (`--fail-on`), and which are waived by an ignore
//! file. Every ignore rule carries a reason; unknown keys are rejected with their line.

use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

use crate::finding::{Finding, Severity};
use crate::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreFileToml {
    #[serde(default)]
    ignore: Vec<IgnoreRuleToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreRuleToml {
    rule: Option<String>,
    path: Option<String>,
    fingerprint: Option<String>,
    reason: String,
}

/// One ignore rule: every given key must match.
#[derive(Debug, Clone)]
pub struct IgnoreRule {
    pub rule: Option<String>,
    pub path: Option<(String, GlobMatcher)>,
    pub fingerprint: Option<String>,
    pub reason: String,
}

impl IgnoreRule {
    fn matches(&self, f: &Finding) -> bool {
        if let Some(r) = &self.rule
            && r != &f.rule_id
        {
            return false;
        }
        if let Some((_, g)) = &self.path {
            match f.path() {
                Some(p) if g.is_match(p) || g.is_match(p.trim_start_matches('/')) => {}
                _ => return false,
            }
        }
        if let Some(fp) = &self.fingerprint
            && fp != &f.fingerprint
        {
            return false;
        }
        true
    }
}

/// The effective policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub fail_on: Severity,
    pub ignores: Vec<IgnoreRule>,
    source_text: String,
}

impl Policy {
    pub fn new(fail_on: Severity) -> Self {
        Policy {
            fail_on,
            ignores: vec![],
            source_text: String::new(),
        }
    }

    /// Load ignore rules from a TOML file:
    ///
    /// ```toml
    /// [[ignore]]
    /// rule = "config/user-root"       # any of rule, path (glob), fingerprint
    /// path = "/opt/app/**"
    /// reason = "runs as root by design; tracked in OPS-12"   # required
    /// ```
    pub fn with_ignore_file(mut self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        self.ignores = parse_ignores(&text).map_err(|message| Error::IgnoreFile {
            path: path.to_path_buf(),
            message,
        })?;
        self.source_text = text;
        Ok(self)
    }

    /// Which ignore rule waives this finding, if any.
    pub fn suppression(&self, f: &Finding) -> Option<&IgnoreRule> {
        self.ignores.iter().find(|r| r.matches(f))
    }

    pub fn fails(&self, f: &Finding) -> bool {
        f.severity >= self.fail_on
    }

    /// `sha256:` of the policy, so a verdict says which policy made it.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.fail_on.as_str().as_bytes());
        h.update([0]);
        h.update(self.source_text.as_bytes());
        format!("sha256:{}", crate::hex(&h.finalize()))
    }
}

fn parse_ignores(text: &str) -> std::result::Result<Vec<IgnoreRule>, String> {
    let parsed: IgnoreFileToml = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, r) in parsed.ignore.into_iter().enumerate() {
        let n = i + 1;
        if r.rule.is_none() && r.path.is_none() && r.fingerprint.is_none() {
            problems.push(format!(
                "[[ignore]] #{n}: needs at least one of rule, path, fingerprint"
            ));
            continue;
        }
        if r.reason.trim().is_empty() {
            problems.push(format!("[[ignore]] #{n}: reason must not be empty"));
            continue;
        }
        let path = match r.path {
            Some(p) => match Glob::new(&p) {
                Ok(g) => Some((p, g.compile_matcher())),
                Err(e) => {
                    problems.push(format!("[[ignore]] #{n}: bad path glob: {e}"));
                    continue;
                }
            },
            None => None,
        };
        out.push(IgnoreRule {
            rule: r.rule,
            path,
            fingerprint: r.fingerprint,
            reason: r.reason,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Category, Confidence, Location, Visibility};

    fn finding(rule: &str, path: &str) -> Finding {
        Finding {
            rule_id: rule.into(),
            category: Category::Secret,
            severity: Severity::High,
            confidence: Confidence::High,
            title: "t".into(),
            location: Location::ImageFile {
                layer_index: 0,
                layer_digest: "sha256:x".into(),
                path: path.into(),
                line: None,
                archive_chain: vec![],
                visibility: Visibility::Visible,
            },
            evidence: String::new(),
            fingerprint: "sha256:abc".into(),
        }
    }

    #[test]
    fn rules_match_on_all_given_keys() {
        let rules = parse_ignores(
            r#"
[[ignore]]
rule = "a/b"
path = "/opt/**"
reason = "known"
[[ignore]]
fingerprint = "sha256:abc"
reason = "waived"
"#,
        )
        .unwrap();
        assert!(rules[0].matches(&finding("a/b", "/opt/x/y")));
        assert!(!rules[0].matches(&finding("a/b", "/etc/x")));
        assert!(!rules[0].matches(&finding("a/c", "/opt/x")));
        assert!(rules[1].matches(&finding("z/z", "/anything")));
    }

    #[test]
    fn unknown_keys_and_missing_reason_are_errors_with_a_line() {
        let e = parse_ignores("[[ignore]]\nrule = \"x\"\nreasn = \"typo\"\n").unwrap_err();
        assert!(e.contains("line 3") || e.contains("reasn"), "{e}");
        assert!(parse_ignores("[[ignore]]\nrule = \"x\"\n").is_err());
        assert!(parse_ignores("[[ignore]]\nreason = \"x\"\n").is_err());
    }
}
