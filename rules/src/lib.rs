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
const MINERS: &str = include_str!("../data/miners.yar");
const MINING_POOLS: &str = include_str!("../data/mining-pools.txt");
const POOL_PORTS: &str = include_str!("../data/pool-ports.txt");
const IOC_SHA256: &str = include_str!("../data/ioc-sha256.txt");
const RUNTIME_RULES: &str = include_str!("../data/runtime-rules.toml");
const K8S_CHECKS: &str = include_str!("../data/k8s-checks.toml");
const CHART_CHECKS: &str = include_str!("../data/chart-checks.toml");

/// Every embedded data file, in digest order.
const ALL_DATA: &[&str] = &[
    CONFIG_RULES,
    PASTE_SITES,
    SECRETS,
    SECRET_ALLOWLIST,
    MINERS,
    MINING_POOLS,
    POOL_PORTS,
    IOC_SHA256,
    RUNTIME_RULES,
    K8S_CHECKS,
    CHART_CHECKS,
];

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
    /// A literal every match of `regex` contains, found in Rust (SIMD `memmem`) instead of
    /// by YARA-X: for a rule whose only literal is short and stands next to character
    /// classes (`Q~` in an Azure client secret), whose thousands of class-expanded atoms
    /// would weaken YARA-X's prefilter for every other rule. `regex` then confirms on the
    /// anchor with `context_before` bytes before it and `context_after` after it.
    #[serde(default)]
    pub anchor: Option<String>,
    /// With `anchor`: how many bytes after the anchor a match that holds it can reach
    /// (and `context_before`, before it; at most 4,096 each). A match's own anchor need
    /// not be the one found: every match is also found from its own.
    #[serde(default)]
    pub context_after: usize,
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

/// A rule whose logic is in code, by id, with its metadata and examples as data: the
/// runtime rules (`data/runtime-rules.toml`, examples are observations as JSON) and the
/// Kubernetes checks (`data/k8s-checks.toml`, examples are manifests).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodedRule {
    pub id: String,
    pub severity: String,
    pub title: String,
    pub description: String,
    pub help: String,
    /// Examples that must make the rule fire.
    pub positive: Vec<String>,
    /// Examples that must not.
    pub negative: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeCatalog {
    rule: Vec<RuntimeRule>,
}

/// One rule of `data/runtime-rules.toml` (see the header of that file).
pub type RuntimeRule = CodedRule;

/// One rule of `data/k8s-checks.toml` (see the header of that file).
pub type K8sCheck = CodedRule;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct K8sCatalog {
    rule: Vec<K8sCheck>,
}

/// The Kubernetes misconfiguration checks (their logic is in the Helm scanner, by id).
pub fn k8s_checks() -> &'static [K8sCheck] {
    static RULES: OnceLock<Vec<K8sCheck>> = OnceLock::new();
    RULES.get_or_init(|| {
        toml::from_str::<K8sCatalog>(K8S_CHECKS)
            .expect("data/k8s-checks.toml is valid (checked by tests)")
            .rule
    })
}

/// The supply-chain checks on charts (`data/chart-checks.toml`: dependencies, provenance;
/// their logic is in the Helm scanner, by id).
pub fn chart_checks() -> &'static [CodedRule] {
    static RULES: OnceLock<Vec<CodedRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        toml::from_str::<K8sCatalog>(CHART_CHECKS)
            .expect("data/chart-checks.toml is valid (checked by tests)")
            .rule
    })
}

/// The runtime rules (their logic is in the sandbox crate, by id).
pub fn runtime_rules() -> &'static [RuntimeRule] {
    static RULES: OnceLock<Vec<RuntimeRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        toml::from_str::<RuntimeCatalog>(RUNTIME_RULES)
            .expect("data/runtime-rules.toml is valid (checked by tests)")
            .rule
    })
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
        all.extend(miner_rules().iter().map(YaraRuleMeta::rule_meta));
        all.extend(runtime_rules().iter().map(|r| RuleMeta {
            id: r.id.clone(),
            severity: r.severity.clone(),
            category: "runtime".into(),
            title: r.title.clone(),
            description: r.description.clone(),
            help: r.help.clone(),
        }));
        all.extend(k8s_checks().iter().chain(chart_checks()).map(|r| RuleMeta {
            id: r.id.clone(),
            severity: r.severity.clone(),
            category: "misconfig".into(),
            title: r.title.clone(),
            description: r.description.clone(),
            help: r.help.clone(),
        }));
        all
    })
}

static USER_RULES: OnceLock<Vec<RuleMeta>> = OnceLock::new();

/// Make the metadata of user rules (`--rules DIR`) known to [`rule`], once per process.
/// Returns false if user rules were registered already.
pub fn register_user_rules(rules: Vec<RuleMeta>) -> bool {
    USER_RULES.set(rules).is_ok()
}

/// User rules registered with [`register_user_rules`].
pub fn user_rules() -> &'static [RuleMeta] {
    USER_RULES.get().map_or(&[], Vec::as_slice)
}

/// Built-in YARA rules (miner families, packers), in YARA syntax both YARA-X and classic
/// YARA compile.
pub fn miner_yara() -> &'static str {
    MINERS
}

/// Metadata of the built-in YARA rules, read from their `meta:` blocks (the analyzer checks
/// that YARA-X reads the same).
pub fn miner_rules() -> &'static [YaraRuleMeta] {
    static RULES: OnceLock<Vec<YaraRuleMeta>> = OnceLock::new();
    RULES.get_or_init(|| {
        parse_yara_meta(MINERS).expect("data/miners.yar has complete metadata (checked by tests)")
    })
}

/// What a YARA rule of ours declares in its `meta:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct YaraRuleMeta {
    /// The YARA rule identifier.
    pub name: String,
    pub id: String,
    pub family: String,
    pub severity: String,
    pub description: String,
    pub references: Vec<String>,
    /// Examples that must match (`positive`, `positive2`, …) and must not (`negative…`),
    /// with YARA's escapes decoded.
    pub positive: Vec<Vec<u8>>,
    pub negative: Vec<Vec<u8>>,
}

impl YaraRuleMeta {
    /// Build from `(key, value)` pairs as a YARA engine reports them.
    pub fn from_pairs<'a>(
        name: &str,
        pairs: impl IntoIterator<Item = (&'a str, Vec<u8>)>,
    ) -> Result<Self, String> {
        let mut m = YaraRuleMeta {
            name: name.to_string(),
            id: String::new(),
            family: String::new(),
            severity: String::new(),
            description: String::new(),
            references: Vec::new(),
            positive: Vec::new(),
            negative: Vec::new(),
        };
        for (k, v) in pairs {
            let text = || String::from_utf8_lossy(&v).into_owned();
            match k {
                "id" => m.id = text(),
                "family" => m.family = text(),
                "severity" => m.severity = text(),
                "description" => m.description = text(),
                "references" | "reference" => {
                    m.references
                        .extend(text().split_whitespace().map(str::to_string));
                }
                k if k.starts_with("positive") => m.positive.push(v),
                k if k.starts_with("negative") => m.negative.push(v),
                _ => {}
            }
        }
        if m.id.is_empty() {
            return Err(format!("rule {name}: meta `id` is missing"));
        }
        if !m.id.contains('/') {
            return Err(format!(
                "rule {name}: id {:?} needs a prefix such as miner/",
                m.id
            ));
        }
        if !SEVERITIES.contains(&m.severity.as_str()) {
            return Err(format!(
                "rule {name}: severity {:?} is not one of {}",
                m.severity,
                SEVERITIES.join(", ")
            ));
        }
        if m.description.is_empty() {
            return Err(format!("rule {name}: meta `description` is missing"));
        }
        if m.family.is_empty() {
            m.family = m.id.rsplit('/').next().unwrap_or("").to_string();
        }
        Ok(m)
    }

    /// The rule's catalog entry.
    pub fn rule_meta(&self) -> RuleMeta {
        let packer = self.id.starts_with("packer/");
        let mut description = self.description.clone();
        if !self.references.is_empty() {
            description.push_str(" References: ");
            description.push_str(&self.references.join(" "));
        }
        RuleMeta {
            id: self.id.clone(),
            severity: self.severity.clone(),
            category: if packer { "malware" } else { "miner" }.into(),
            title: if packer {
                format!("Packed executable ({})", self.family)
            } else {
                format!("Crypto-miner: {}", self.family)
            },
            description,
            help: if packer {
                "Find out where the packed binary came from; packing hides what a program is from static scanners. Rebuild from sources you trust.".into()
            } else {
                "Remove the miner and whatever starts it (entrypoint, cron, unit file), rebuild from a trusted base, and treat every credential the image could reach as stolen.".into()
            },
        }
    }
}

/// Severities a rule may have, lowest first.
pub const SEVERITIES: &[&str] = &["info", "low", "medium", "high", "critical"];

/// A rule being read: its name and `(key, value)` metadata.
type Pending = Option<(String, Vec<(String, Vec<u8>)>)>;

/// Read the `meta:` blocks of YARA source written in our house style: `rule NAME` opens a
/// rule, `key = "value"` lines follow `meta:` until `strings:` or `condition:`.
pub fn parse_yara_meta(src: &str) -> Result<Vec<YaraRuleMeta>, String> {
    let mut out = Vec::new();
    let mut current: Pending = None;
    let mut in_meta = false;
    // Private rules are helpers of other rules: they report nothing, so need no metadata.
    let mut private = false;
    let finish = |cur: Pending, out: &mut Vec<YaraRuleMeta>| -> Result<(), String> {
        if let Some((name, pairs)) = cur {
            out.push(YaraRuleMeta::from_pairs(
                &name,
                pairs.iter().map(|(k, v)| (k.as_str(), v.clone())),
            )?);
        }
        Ok(())
    };
    for (n, line) in src.lines().enumerate() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        let rule_at = words.iter().position(|w| *w == "rule");
        if let Some(i) = rule_at
            && words[..i]
                .iter()
                .all(|w| matches!(*w, "private" | "global"))
            && let Some(name) = words.get(i + 1)
        {
            let cur = current.take();
            if !private {
                finish(cur, &mut out)?;
            }
            private = words[..i].contains(&"private");
            let name = name.split([':', '{']).next().unwrap_or("").to_string();
            current = Some((name, Vec::new()));
            in_meta = false;
            continue;
        }
        match t {
            "meta:" => in_meta = true,
            "strings:" | "condition:" => in_meta = false,
            _ if in_meta => {
                let Some((k, v)) = t.split_once('=') else {
                    continue;
                };
                let v = v.trim();
                let Some(v) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
                    // Numbers and booleans are not ours to read.
                    continue;
                };
                let value = unescape(v).map_err(|e| format!("line {}: {e}", n + 1))?;
                if let Some((_, pairs)) = current.as_mut() {
                    pairs.push((k.trim().to_string(), value));
                }
            }
            _ => {}
        }
    }
    if !private {
        finish(current.take(), &mut out)?;
    }
    Ok(out)
}

/// YARA string escapes: `\\`, `\"`, `\n`, `\r`, `\t`, `\xNN`.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b
            .get(i + 1)
            .ok_or("a lone backslash at the end of a string")?;
        i += 2;
        out.push(match c {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'\\' => b'\\',
            b'"' => b'"',
            b'x' => {
                let hex = s.get(i..i + 2).ok_or("\\x needs two hex digits")?;
                i += 2;
                u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape \\x{hex}"))?
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        });
    }
    Ok(out)
}

/// Mining-pool hostnames (a listed name matches itself and its subdomains).
pub fn mining_pools() -> impl Iterator<Item = &'static str> {
    data_lines(MINING_POOLS)
}

/// Ports mining pools listen on, and whether a port is also an ordinary service port.
pub fn pool_ports() -> impl Iterator<Item = (u16, bool)> {
    POOL_PORTS.lines().filter_map(parse_port_line)
}

fn parse_port_line(l: &str) -> Option<(u16, bool)> {
    let (port, comment) = l.split_once('#').unwrap_or((l, ""));
    let port = port.trim().parse().ok()?;
    Some((port, comment.contains("ambiguous")))
}

/// One known-bad file hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ioc {
    pub sha256: [u8; 32],
    pub family: String,
    pub source: String,
}

/// Parse an IOC list: `<sha256 hex> <family> <source…>` per line, `#` comments.
pub fn parse_iocs(text: &str) -> Result<Vec<Ioc>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let hex = parts.next().unwrap_or("");
        let bad = || {
            format!(
                "line {}: expected a 64-digit hex SHA-256, got {hex:?}",
                n + 1
            )
        };
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut sha256 = [0u8; 32];
        for (i, byte) in sha256.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        out.push(Ioc {
            sha256,
            family: parts.next().unwrap_or("unknown").trim().to_string(),
            source: parts.next().unwrap_or("").trim().to_string(),
        });
    }
    Ok(out)
}

/// The built-in IOC list.
pub fn iocs() -> &'static [Ioc] {
    static IOCS: OnceLock<Vec<Ioc>> = OnceLock::new();
    IOCS.get_or_init(|| {
        parse_iocs(IOC_SHA256).expect("data/ioc-sha256.txt is valid (checked by tests)")
    })
}

/// Rules a user adds with `--rules DIR`: `*.yar`/`*.yara` YARA rules (with the same `meta:`
/// keys as ours), `*.toml` secret rules (the format of `data/secrets.toml`),
/// `mining-pools.txt` and `ioc-sha256.txt` (the formats of ours). Other files are refused,
/// so a typo does not silently drop rules (`README*`, `*.md` and dot files are skipped).
#[derive(Debug, Clone, Default)]
pub struct UserRules {
    pub dir: std::path::PathBuf,
    /// `(file, source)`.
    pub yara: Vec<(String, String)>,
    pub secrets: Vec<SecretRule>,
    pub pools: Vec<String>,
    pub iocs: Vec<Ioc>,
    /// `sha256:` over everything read.
    pub digest: String,
}

/// Largest rule file read from a user directory.
pub const MAX_USER_RULE_FILE: u64 = 16 << 20;

/// Why a user rule directory cannot be used: always names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct UserRulesError {
    pub path: String,
    pub message: String,
}

impl UserRules {
    /// Read a rule directory (not recursive).
    pub fn load(dir: &std::path::Path) -> Result<UserRules, UserRulesError> {
        let err = |p: &std::path::Path, message: String| UserRulesError {
            path: p.display().to_string(),
            message,
        };
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| err(dir, format!("cannot read the rule directory: {e}")))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| err(dir, format!("cannot read the rule directory: {e}")))?;
        names.sort();
        let mut out = UserRules {
            dir: dir.to_path_buf(),
            ..Default::default()
        };
        let mut h = Sha256::new();
        for path in names {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') || name.starts_with("README") || name.ends_with(".md") {
                continue;
            }
            let meta = std::fs::metadata(&path).map_err(|e| err(&path, e.to_string()))?;
            if meta.is_dir() {
                continue;
            }
            if meta.len() > MAX_USER_RULE_FILE {
                return Err(err(
                    &path,
                    format!(
                        "{} bytes; rule files are limited to {MAX_USER_RULE_FILE}",
                        meta.len()
                    ),
                ));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(&path, format!("cannot read as UTF-8 text: {e}")))?;
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
            if name.ends_with(".yar") || name.ends_with(".yara") {
                out.yara.push((path.display().to_string(), text));
            } else if name.ends_with(".toml") {
                let cat: SecretCatalog =
                    toml::from_str(&text).map_err(|e| err(&path, e.to_string()))?;
                out.secrets.extend(cat.rule);
            } else if name == "mining-pools.txt" {
                out.pools
                    .extend(data_lines(&text).map(|l| l.to_ascii_lowercase()));
            } else if name == "ioc-sha256.txt" {
                out.iocs
                    .extend(parse_iocs(&text).map_err(|e| err(&path, e))?);
            } else {
                return Err(err(
                    &path,
                    "not a rule file: expected *.yar, *.yara, *.toml (secret rules), mining-pools.txt or ioc-sha256.txt".into(),
                ));
            }
        }
        let builtin: std::collections::HashSet<&str> =
            rules().iter().map(|r| r.id.as_str()).collect();
        let mut seen = std::collections::HashSet::new();
        for r in &out.secrets {
            if builtin.contains(r.id.as_str()) || !seen.insert(r.id.clone()) {
                return Err(err(dir, format!("secret rule id {:?} is used twice", r.id)));
            }
            if !r.id.contains('/') {
                return Err(err(
                    dir,
                    format!("secret rule id {:?} needs a prefix such as secret/", r.id),
                ));
            }
        }
        out.digest = hex_digest(h);
        Ok(out)
    }
}

fn hex_digest(h: Sha256) -> String {
    let out = h.finalize();
    let mut s = String::from("sha256:");
    for b in out.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Metadata of one rule by id.
pub fn rule(id: &str) -> Option<&'static RuleMeta> {
    rules().iter().chain(user_rules()).find(|r| r.id == id)
}

/// Paste sites and anonymous file hosts.
pub fn paste_sites() -> impl Iterator<Item = &'static str> {
    data_lines(PASTE_SITES)
}

fn data_lines(s: &str) -> impl Iterator<Item = &str> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// `sha256:` over all rule content: changes whenever any rule or list changes.
pub fn rules_digest() -> String {
    let mut h = Sha256::new();
    for part in ALL_DATA {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex_digest(h)
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
    fn miner_lists_and_iocs_are_well_formed() {
        assert!(!miner_rules().is_empty());
        let mut names = HashSet::new();
        for m in miner_rules() {
            assert!(
                names.insert(m.name.clone()),
                "duplicate YARA rule {}",
                m.name
            );
            assert!(
                m.id.starts_with("miner/") || m.id.starts_with("packer/"),
                "{}",
                m.id
            );
        }
        for p in mining_pools() {
            assert!(
                p.contains('.') && p == p.to_ascii_lowercase() && !p.contains(['/', ' ', ':']),
                "{p:?} is not a lowercase hostname"
            );
        }
        assert!(pool_ports().any(|(p, _)| p == 3333));
        let _ = iocs();
        assert!(parse_iocs("abc family src").is_err());
        let ok = parse_iocs(&format!(
            "# c\n{} xmrig a source with spaces\n",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(ok[0].sha256, [0xab; 32]);
        assert_eq!(ok[0].source, "a source with spaces");
    }

    #[test]
    fn yara_meta_is_read_with_escapes_and_checked() {
        let src = r#"
private rule helper { condition: true }
rule a : tag {
  meta:
    id = "miner/a"
    severity = "high"
    description = "says \"hi\""
    references = "https://a.example/x https://b.example/y"
    positive = "\x7fELF\n\\"
    negative = "no"
  strings:
    $a = "x"
  condition:
    $a
}
"#;
        let m = parse_yara_meta(src).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].description, "says \"hi\"");
        assert_eq!(m[0].family, "a");
        assert_eq!(m[0].references.len(), 2);
        assert_eq!(m[0].positive, vec![b"\x7fELF\n\\".to_vec()]);
        let err = parse_yara_meta("rule b {\n meta:\n id = \"x/b\"\n}").unwrap_err();
        assert!(err.contains("rule b"), "{err}");
    }

    #[test]
    fn user_rule_directories() {
        let dir = tempdir();
        std::fs::write(dir.join("README.md"), "notes").unwrap();
        std::fs::write(dir.join("mining-pools.txt"), "# mine\nPool.Example.net\n").unwrap();
        std::fs::write(
            dir.join("extra.toml"),
            "[[rule]]\nid = \"secret/acme\"\ntitle = \"t\"\nseverity = \"high\"\ndescription = \"d\"\nhelp = \"h\"\nregex = 'acme_[a-z0-9]{20}'\npositive = []\nnegative = []\n",
        )
        .unwrap();
        let u = UserRules::load(&dir).unwrap();
        assert_eq!(u.pools, ["pool.example.net"]);
        assert_eq!(u.secrets.len(), 1);
        assert!(u.digest.starts_with("sha256:"));

        std::fs::write(dir.join("typo.yml"), "x").unwrap();
        let e = UserRules::load(&dir).unwrap_err().to_string();
        assert!(
            e.contains("typo.yml") && e.contains("not a rule file"),
            "{e}"
        );
        std::fs::remove_file(dir.join("typo.yml")).unwrap();

        std::fs::write(
            dir.join("dup.toml"),
            "[[rule]]\nid = \"secret/aws-access-key-id\"\ntitle = \"t\"\nseverity = \"high\"\ndescription = \"d\"\nhelp = \"h\"\nregex = 'x'\npositive = []\nnegative = []\n",
        )
        .unwrap();
        let e = UserRules::load(&dir).unwrap_err().to_string();
        assert!(e.contains("used twice"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(UserRules::load(&dir).is_err());
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "canary-rules-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
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
