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

/// Every rule's metadata, checked once (ids unique and namespaced, severities known).
pub fn rules() -> &'static [RuleMeta] {
    static RULES: OnceLock<Vec<RuleMeta>> = OnceLock::new();
    RULES.get_or_init(|| {
        let cat: Catalog = toml::from_str(CONFIG_RULES)
            .expect("data/config-rules.toml is valid (checked by tests)");
        cat.rule
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
    for part in [CONFIG_RULES, PASTE_SITES] {
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
        assert!(rules().len() >= 10);
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
