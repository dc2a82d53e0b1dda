//! Canary's detection content, as data: rule metadata catalogs and indicator lists. What
//! goes in: the files under `data/`, embedded at build time. What comes out: parsed,
//! checked rule metadata and lists, and a digest of all of it, so a verdict names the
//! exact rules it was made with. No detection logic lives here.
#![forbid(unsafe_code)]

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const CONFIG_RULES: &str = include_str!("../data/config-rules.toml");
const PASTE_SITES: &str = include_str!("../data/paste-sites.txt");
const SECRETS: &str = include_str!("../data/secrets.toml");
const SECRET_ALLOWLIST: &str = include_str!("../data/secret-allowlist.txt");

/// Metadata of one rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMeta {
    pub id: String,
    pub severity: String,
    pub category: String,
    pub title: String,
    pub description: String,
    pub help: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalog {
    rule: Vec<RuleMeta>,
}

/// One secret rule of `data/secrets.toml` (see the header of that file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRule {
    pub id: String,
    pub title: String,
    pub severity: String,
    #[serde(default)]
    pub confidence: Option<String>,
    pub description: String,
    pub help: String,
    /// Regex in the subset YARA-X and Rust's `regex` share.
    pub regex: String,
    /// A different, faster pattern for YARA-X to find candidates with, when `regex` has no
    /// good atom; `regex` then confirms on the hit plus `context_before` bytes before it.
    #[serde(default)]
    pub yara: Option<String>,
    #[serde(default)]
    pub context_before: usize,
    /// Characters of the secret shown in evidence: its fixed, public prefix (`AKIA`,
    /// `ghp_`); 0 shows none.
    #[serde(default)]
    pub reveal: usize,
    #[serde(default)]
    pub nocase: bool,
    /// Capture group holding the secret (0 = the whole match).
    #[serde(default)]
    pub group: usize,
    /// Minimum Shannon entropy, bits per character, of the secret.
    #[serde(default)]
    pub entropy: Option<f64>,
    /// Structural check run on each hit.
    #[serde(default)]
    pub check: Option<String>,
    /// Only in files whose path matches one of these globs.
    #[serde(default)]
    pub paths: Vec<String>,
    pub positive: Vec<String>,
    pub negative: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretCatalog {
    rule: Vec<SecretRule>,
}

/// The secret rule catalog.
pub fn secret_rules() -> &'static [SecretRule] {
    static RULES: OnceLock<Vec<SecretRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let cat: SecretCatalog =
            toml::from_str(SECRETS).expect("data/secrets.toml is valid (checked by tests)");
        cat.rule
    })
}

/// Documented example secrets (vendor docs, emulators): never reported.
pub fn secret_allowlist() -> impl Iterator<Item = &'static str> {
    data_lines(SECRET_ALLOWLIST)
}

/// Every rule's metadata, checked once (ids unique and namespaced, severities known):
/// the image-config and file rules, then the secret catalog.
pub fn rules() -> &'static [RuleMeta] {
    static RULES: OnceLock<Vec<RuleMeta>> = OnceLock::new();
    RULES.get_or_init(|| {
        let cat: Catalog = toml::from_str(CONFIG_RULES)
            .expect("data/config-rules.toml is valid (checked by tests)");
        let mut all = cat.rule;
        all.extend(secret_rules().iter().map(|r| RuleMeta {
            id: r.id.clone(),
            severity: r.severity.clone(),
            category: "secret".into(),
            title: r.title.clone(),
            description: r.description.clone(),
            help: r.help.clone(),
        }));
        all
    })
}

/// Metadata of one rule by id.
pub fn rule(id: &str) -> Option<&'static RuleMeta> {
    rules().iter().find(|r| r.id == id)
}

/// Paste sites and anonymous file hosts.
pub fn paste_sites() -> impl Iterator<Item = &'static str> {
    data_lines(PASTE_SITES)
}

fn data_lines(s: &'static str) -> impl Iterator<Item = &'static str> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// `sha256:` over all rule content: changes whenever any rule or list changes.
pub fn rules_digest() -> String {
    let mut h = Sha256::new();
    for part in [CONFIG_RULES, PASTE_SITES, SECRETS, SECRET_ALLOWLIST] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let out = h.finalize();
    let mut s = String::from("sha256:");
    for b in out.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalog_is_well_formed() {
        let mut seen = HashSet::new();
        for r in rules() {
            assert!(seen.insert(r.id.clone()), "duplicate rule id {}", r.id);
            assert!(r.id.contains('/'), "rule id {} is not namespaced", r.id);
            assert!(
                ["info", "low", "medium", "high", "critical"].contains(&r.severity.as_str()),
                "{}: bad severity {}",
                r.id,
                r.severity
            );
            assert!(
                [
                    "secret",
                    "miner",
                    "malware",
                    "config",
                    "runtime",
                    "misconfig"
                ]
                .contains(&r.category.as_str()),
                "{}: bad category {}",
                r.id,
                r.category
            );
            assert!(!r.description.is_empty() && !r.help.is_empty() && !r.title.is_empty());
        }
        assert!(rules().len() >= 50);
        for r in secret_rules() {
            assert!(
                !r.positive.is_empty() && !r.negative.is_empty(),
                "{}: needs examples",
                r.id
            );
            assert!(r.id.starts_with("secret/"), "{}", r.id);
            assert!(
                !r.regex.contains("(?"),
                "{}: no inline flags or non-capturing groups",
                r.id
            );
        }
    }

    #[test]
    fn paste_sites_are_hostnames() {
        let n = paste_sites()
            .inspect(|h| {
                assert!(
                    h.contains('.') && !h.contains('/') && !h.contains(' '),
                    "{h}"
                )
            })
            .count();
        assert!(n > 20);
    }
}
