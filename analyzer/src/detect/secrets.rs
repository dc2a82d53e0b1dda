//! The secret engine, in the shape of yara-x: the catalog of `canary-rules` is compiled
//! once into one YARA-X rule set (one pass over each file finds every candidate), then
//! each hit is checked in Rust: the capture group that is the secret, entropy, a
//! structural check (checksum, PEM body, JSON), the allowlist of documented examples, and
//! placeholders. Files under test/fixture/example paths are reported with low confidence.

use regex::bytes::Regex;
use std::collections::HashSet;

use base64::Engine;
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::finding::{Confidence, Severity};

/// Most confirmed secrets reported for one file.
pub const MAX_HITS_PER_FILE: usize = 200;

/// A `paths` glob set against a path of the image, with or without its leading `/`.
fn path_matches(g: &GlobSet, path: &str) -> bool {
    g.is_match(path) || g.is_match(path.trim_start_matches('/'))
}

/// One catalog rule, compiled.
pub struct CompiledRule {
    pub meta: canary_rules::SecretRule,
    regex: Regex,
    paths: Option<GlobSet>,
    pub severity: Severity,
    confidence: Confidence,
}

impl CompiledRule {
    /// Catch-all rules (`secret/generic-*`) that yield to a specific rule on the same value.
    fn is_generic(&self) -> bool {
        self.meta.id.starts_with("secret/generic-")
    }
}

/// The secret catalog's Rust half: regexes, checks and the allowlist. Its YARA-X half (rule
/// `r<N>` in namespace [`NAMESPACE`] is catalog rule N) is compiled into the content
/// engine's one rule set, so one pass over a file finds miners and secrets alike.
pub struct SecretCatalog {
    rules: Vec<CompiledRule>,
    allowlist: HashSet<String>,
    /// The rules with an `anchor`, found by `memmem` rather than by YARA-X: (rule index,
    /// finder of its anchor).
    anchors: Vec<(usize, memchr::memmem::Finder<'static>)>,
}

/// Most anchor hits of one rule in one file that are checked. Each costs a regex run over
/// a window of at most `2 × MAX_ANCHOR_CONTEXT` bytes; this many stray anchors before a
/// secret (YARA-X's cap of 1,000 counts confirmed pattern matches, not atoms) do not hide it.
const MAX_ANCHOR_HITS: usize = 100_000;
/// Largest `context_before`/`context_after` of an anchored rule.
const MAX_ANCHOR_CONTEXT: usize = 4096;

/// The YARA-X namespace of the secret rules.
pub const NAMESPACE: &str = "secrets";

/// Why a catalog cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("secret rule {id}: {message}")]
pub struct CatalogError {
    pub id: String,
    pub message: String,
}

fn yara_regex(r: &canary_rules::SecretRule) -> String {
    let src = r.yara.as_deref().unwrap_or(&r.regex);
    let mut body = String::with_capacity(src.len() + 8);
    let mut escaped = false;
    for c in src.chars() {
        if c == '/' && !escaped {
            body.push('\\');
        }
        escaped = c == '\\' && !escaped;
        body.push(c);
    }
    format!("/{body}/{}", if r.nocase { "i" } else { "" })
}

/// The match of an anchored rule's regex that holds the anchor at `anchor`, as (window
/// start, captures in the window). The window reaches `context_before` bytes before the
/// anchor and `context_after` after it, plus one byte each side so that `\b` sees the
/// real neighbours of a match that fits. A match touching a cut edge of the window is
/// not one the regex would make on the whole file (`\b` is true at a slice's edge), so
/// it is skipped, and the search goes on from the next start rather than past it: a
/// skipped candidate cannot hide a real match that overlaps it.
fn anchored_match<'d>(
    rule: &CompiledRule,
    data: &'d [u8],
    anchor: std::ops::Range<usize>,
) -> Option<(usize, regex::bytes::Captures<'d>)> {
    let from = anchor.start.saturating_sub(rule.meta.context_before + 1);
    let to = data.len().min(anchor.end + rule.meta.context_after + 1);
    let window = &data[from..to];
    let (a, b) = (anchor.start - from, anchor.end - from);
    let mut start = 0;
    while start <= a {
        let caps = rule.regex.captures_at(window, start)?;
        let m = caps.get(0)?;
        if m.start() > a {
            return None;
        }
        let cut_start = m.start() == 0 && from > 0;
        let cut_end = m.end() == window.len() && to < data.len();
        if b <= m.end() && !cut_start && !cut_end {
            return Some((from, caps));
        }
        start = m.start() + 1;
    }
    None
}

impl SecretCatalog {
    /// Compile a catalog, adding its YARA-X rules to each of `compilers` (which should have slow
    /// patterns as errors: a weak atom is a silent 4× slowdown otherwise), and those of
    /// rules limited to some paths (`paths`) to `gated`, scanned only over files whose
    /// path matches one of them: in the one pass over every file they would cost as much
    /// as any rule (`http` is the atom of `.git-credentials` lines) and could never
    /// report. Returns the catalog and how many rules went to `gated`.
    pub fn compile<'c>(
        catalog: &[canary_rules::SecretRule],
        allowlist: impl IntoIterator<Item = String>,
        compilers: &mut [&mut yara_x::Compiler<'c>],
        gated: &mut yara_x::Compiler<'c>,
    ) -> Result<(Self, usize), CatalogError> {
        for c in compilers.iter_mut() {
            c.new_namespace(NAMESPACE);
        }
        gated.new_namespace(NAMESPACE);
        let mut in_gated = 0;
        let mut rules = Vec::with_capacity(catalog.len());
        let mut anchors = Vec::new();
        for (i, r) in catalog.iter().enumerate() {
            let err = |message: String| CatalogError {
                id: r.id.clone(),
                message,
            };
            let src = format!(
                "rule r{i} {{ strings: $a = {} condition: $a }}",
                yara_regex(r)
            );
            if let Some(anchor) = &r.anchor {
                // Found in Rust; its regex confirms each hit as usual.
                if anchor.len() < 2 || r.nocase || r.yara.is_some() {
                    return Err(err(
                        "`anchor` must be a literal of 2 or more bytes, in a rule without `nocase` or `yara`".into(),
                    ));
                }
                if r.context_before.max(r.context_after) > MAX_ANCHOR_CONTEXT {
                    return Err(err(format!(
                        "`context_before` and `context_after` of an anchored rule are at most {MAX_ANCHOR_CONTEXT} bytes"
                    )));
                }
                anchors.push((
                    i,
                    memchr::memmem::Finder::new(anchor.as_bytes()).into_owned(),
                ));
            } else if r.paths.is_empty() {
                for c in compilers.iter_mut() {
                    c.add_source(src.as_str()).map_err(|e| err(e.to_string()))?;
                }
            } else {
                in_gated += 1;
                gated
                    .add_source(src.as_str())
                    .map_err(|e| err(e.to_string()))?;
            }
            let pattern = if r.nocase {
                format!("(?i){}", r.regex)
            } else {
                r.regex.clone()
            };
            // Bytes and ASCII classes, as YARA-X sees them (a Latin-1 password is a secret too).
            let regex = regex::bytes::RegexBuilder::new(&pattern)
                .unicode(false)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| err(e.to_string()))?;
            if r.group >= regex.captures_len() {
                return Err(err(format!(
                    "group {} does not exist in the regex",
                    r.group
                )));
            }
            let paths = if r.paths.is_empty() {
                None
            } else {
                let mut b = GlobSetBuilder::new();
                for p in &r.paths {
                    b.add(Glob::new(p).map_err(|e| err(e.to_string()))?);
                }
                Some(b.build().map_err(|e| err(e.to_string()))?)
            };
            let severity = r.severity.parse().map_err(err)?;
            let confidence = match r.confidence.as_deref() {
                None | Some("high") => Confidence::High,
                Some("medium") => Confidence::Medium,
                Some("low") => Confidence::Low,
                Some(other) => return Err(err(format!("unknown confidence {other:?}"))),
            };
            if let Some(c) = &r.check
                && !CHECKS.contains(&c.as_str())
            {
                return Err(err(format!(
                    "unknown check {c:?} (known: {})",
                    CHECKS.join(", ")
                )));
            }
            rules.push(CompiledRule {
                meta: r.clone(),
                regex,
                paths,
                severity,
                confidence,
            });
        }
        Ok((
            SecretCatalog {
                rules,
                allowlist: allowlist.into_iter().collect(),
                anchors,
            },
            in_gated,
        ))
    }

    /// Whether some rule limited to paths applies to `path` (then the gated rule set is
    /// scanned over the file too).
    pub fn gated_path(&self, path: &str) -> bool {
        self.rules
            .iter()
            .filter(|r| r.meta.anchor.is_none())
            .filter_map(|r| r.paths.as_ref())
            .any(|g| path_matches(g, path))
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// The candidates of the anchored rules that apply to `path`: (rule index, the
    /// anchor's range), for [`SecretCatalog::confirm_all`].
    pub fn anchor_candidates(
        &self,
        path: &str,
        data: &[u8],
        out: &mut Vec<(usize, std::ops::Range<usize>)>,
    ) {
        for (i, finder) in &self.anchors {
            if let Some(g) = &self.rules[*i].paths
                && !path_matches(g, path)
            {
                continue;
            }
            let n = finder.needle().len();
            out.extend(
                finder
                    .find_iter(data)
                    .take(MAX_ANCHOR_HITS)
                    .map(|at| (*i, at..at + n)),
            );
        }
    }

    /// Confirm the YARA-X candidates of one file: `(rule index, byte range)` pairs. `path` is
    /// the file's path in the image (for `paths` filters and test-fixture confidence).
    /// Returns every confirmed hit, deduplicated by rule and secret, in file order.
    pub fn confirm_all(
        &self,
        path: &str,
        data: &[u8],
        mut candidates: Vec<(usize, std::ops::Range<usize>)>,
    ) -> Vec<Hit> {
        let fixture = is_fixture_path(path);
        let mut seen = HashSet::new();
        let mut hits = Vec::new();
        // Lines are counted once, front to back, however many hits there are.
        candidates.sort_by_key(|(i, r)| (r.start, *i));
        let (mut counted_to, mut line) = (0usize, 1u64);
        let mut memo = Memo::default();
        for (i, range) in candidates {
            let rule = &self.rules[i];
            if let Some(g) = &rule.paths
                && !path_matches(g, path)
            {
                continue;
            }
            let caps = if rule.meta.anchor.is_some() {
                anchored_match(rule, data, range.clone())
            } else {
                let from = range.start.saturating_sub(rule.meta.context_before);
                // One byte past the hit, so a trailing `\b` sees what follows.
                let to = data.len().min(range.end + 1);
                rule.regex.captures(&data[from..to]).map(|c| (from, c))
            };
            let Some((from, caps)) = caps else {
                continue;
            };
            let Some(m) = caps.get(rule.meta.group) else {
                continue;
            };
            let secret = &data[from + m.start()..from + m.end()];
            let (start, end) = caps
                .get(0)
                .map_or((m.start(), m.end()), |w| (w.start(), w.end()));
            let whole = &data[from + start..from + end];
            // The checks read from the match's start (an anchor can sit inside it).
            let at = if rule.meta.anchor.is_some() {
                from + start
            } else {
                range.start
            };
            let Some(confirmed) = self.confirm(rule, secret, whole, data, at, &mut memo) else {
                continue;
            };
            if !seen.insert((i, confirmed.fingerprint_value.clone())) {
                continue;
            }
            line += data[counted_to..range.start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            counted_to = range.start;
            if hits.len() == MAX_HITS_PER_FILE {
                // The detector reports that the list was cut.
                break;
            }
            hits.push(Hit {
                rule: i,
                line,
                fingerprint_value: confirmed.fingerprint_value,
                evidence: confirmed.evidence,
                confidence: if fixture {
                    Confidence::Low
                } else {
                    confirmed.confidence.min(rule.confidence)
                },
            });
        }
        // A value a specific rule named is not also a generic password.
        let specific: HashSet<Vec<u8>> = hits
            .iter()
            .filter(|h| !self.rules[h.rule].is_generic())
            .map(|h| h.fingerprint_value.clone())
            .collect();
        hits.retain(|h| {
            !self.rules[h.rule].is_generic() || !specific.contains(&h.fingerprint_value)
        });
        hits
    }

    /// Entropy, allowlist, placeholder and structural checks of one candidate.
    fn confirm(
        &self,
        rule: &CompiledRule,
        secret: &[u8],
        whole: &[u8],
        data: &[u8],
        at: usize,
        memo: &mut Memo,
    ) -> Option<Confirmed> {
        let text = String::from_utf8_lossy(secret);
        if self.allowlist.contains(text.as_ref()) || text.contains("EXAMPLE") {
            return None;
        }
        if let Some(min) = rule.meta.entropy
            && shannon_entropy(secret) < min
        {
            return None;
        }
        let reveal = rule.meta.reveal;
        let plain = || Confirmed {
            fingerprint_value: secret.to_vec(),
            evidence: reveal_prefix(&text, reveal),
            confidence: Confidence::High,
        };
        match rule.meta.check.as_deref() {
            None => Some(plain()),
            Some("not-placeholder") => (!is_placeholder(&text)).then(plain),
            Some("url-password") => {
                let (user, pass, host) = url_parts(&String::from_utf8_lossy(whole))?;
                if pass == user || is_placeholder(&pass) || is_default_credential(&user, &pass) {
                    return None;
                }
                let local =
                    host == "localhost" || host.starts_with("127.") || host.contains("example");
                Some(Confirmed {
                    confidence: if local {
                        Confidence::Low
                    } else {
                        Confidence::High
                    },
                    ..plain()
                })
            }
            Some("netrc") => {
                // Documentation writes its examples for RFC 2606's reserved names; man
                // pages as `example\&.org` (troff's zero-width escape).
                let whole = String::from_utf8_lossy(whole);
                let host = whole
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .replace("\\&", "")
                    .to_ascii_lowercase();
                (!is_placeholder(&text) && !is_documentation_host(&host)).then(plain)
            }
            Some("github-crc32") => github_checksum_ok(&text).then(plain),
            Some("pem-private-key") => pem_block(data, at),
            Some("putty-private-key") => {
                let window = &data[at..data.len().min(at + 8192)];
                contains(window, b"Private-Lines:").then(|| Confirmed {
                    fingerprint_value: window.to_vec(),
                    evidence: "PuTTY private key file".into(),
                    confidence: if contains(window, b"Encryption: none") {
                        Confidence::High
                    } else {
                        Confidence::Medium
                    },
                })
            }
            Some("gcp-service-account") => memo
                .gcp
                .get_or_insert_with(|| gcp_service_account(data))
                .clone(),
            Some("docker-auth") => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(secret)
                    .ok()?;
                let decoded = String::from_utf8(decoded).ok()?;
                let (user, pass) = decoded.split_once(':')?;
                (!user.is_empty() && pass.len() >= 3 && !is_placeholder(pass)).then(|| Confirmed {
                    fingerprint_value: decoded.as_bytes().to_vec(),
                    evidence: format!("auth for user {:?}: ********", short(user, 24)),
                    confidence: Confidence::High,
                })
            }
            Some("base64-private-key") => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(secret)
                    .ok()?;
                contains(&decoded, b"PRIVATE KEY").then(|| Confirmed {
                    fingerprint_value: decoded,
                    evidence: "base64 PEM private key".into(),
                    confidence: Confidence::High,
                })
            }
            Some("kubernetes-jwt") => {
                let payload = text.split('.').nth(1)?;
                let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload.trim_end_matches('='))
                    .ok()?;
                let json = String::from_utf8_lossy(&json);
                (json.contains("kubernetes.io") || json.contains("\"iss\":\"kubernetes"))
                    .then(plain)
            }
            Some(_) => None,
        }
    }
}

/// Hosts reserved for documentation (RFC 2606, RFC 6761), and any host with an
/// `example` label (`example.orga` in apt's own man page). Takes `[scheme://]host[:port][/path]`.
fn is_documentation_host(host: &str) -> bool {
    let h = host.split_once("://").map_or(host, |(_, rest)| rest);
    let h = h
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .trim_end_matches('.');
    h.split('.').any(|label| label == "example")
        || [".test", ".invalid"].iter().any(|t| h.ends_with(t))
}

/// Checks a rule may name.
pub const CHECKS: &[&str] = &[
    "not-placeholder",
    "netrc",
    "url-password",
    "github-crc32",
    "pem-private-key",
    "putty-private-key",
    "gcp-service-account",
    "docker-auth",
    "base64-private-key",
    "kubernetes-jwt",
];

/// A confirmed secret in a file.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Index into [`SecretCatalog::rules`].
    pub rule: usize,
    pub line: u64,
    /// What the fingerprint hashes (never shown).
    pub fingerprint_value: Vec<u8>,
    /// Redacted.
    pub evidence: String,
    pub confidence: Confidence,
}

/// Work done once per file, however many candidates need it.
#[derive(Default)]
struct Memo {
    gcp: Option<Option<Confirmed>>,
}

#[derive(Clone)]
struct Confirmed {
    fingerprint_value: Vec<u8>,
    evidence: String,
    confidence: Confidence,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(b: &[u8]) -> f64 {
    if b.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &x in b {
        counts[x as usize] += 1;
    }
    let n = b.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Evidence for a secret: only the first `n` characters (a rule's fixed, public prefix
/// such as `AKIA` or `ghp_`), then a fixed mask.
fn reveal_prefix(secret: &str, n: usize) -> String {
    let head: String = secret
        .chars()
        .take(n.min(secret.chars().count() / 2))
        .collect();
    format!("{head}********")
}

/// At most `n` characters, marked when cut.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// `scheme://user:password@host…` → (user, password, host).
fn url_parts(url: &str) -> Option<(String, String, String)> {
    let rest = url.split_once("://")?.1;
    let (userinfo, host) = rest.rsplit_once('@')?;
    let (user, pass) = userinfo.split_once(':')?;
    let host = host
        .split([':', '/', '?'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    Some((user.to_string(), pass.to_string(), host))
}

/// Stock credentials of popular images and docs (RabbitMQ's guest, SQLAlchemy's scott).
fn is_default_credential(user: &str, pass: &str) -> bool {
    let p = pass.to_ascii_lowercase();
    matches!(
        p.as_str(),
        "guest" | "postgres" | "mysql" | "tiger" | "user" | "pwd" | "pass"
    ) || (user == "scott" && p == "tiger")
}

/// Values people put where a secret goes when they do not have one.
pub fn is_placeholder(v: &str) -> bool {
    let l = v.to_ascii_lowercase();
    let l = l.trim_matches(['"', '\'']);
    // Whole values that are words, not secrets.
    const EXACT: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "test",
        "testing",
        "default",
        "none",
        "null",
        "admin",
        "root",
        "letmein",
        "qwerty",
        "123456",
        "12345678",
        "password1",
        "password123",
        "pass",
        "changeit",
    ];
    // Pieces that mark a value as a stand-in wherever they appear.
    const PARTS: &[&str] = &[
        "changeme",
        "change_me",
        "change-me",
        "example",
        "sample",
        "dummy",
        "placeholder",
        "redacted",
        "your_",
        "your-",
        "yourpass",
        "xxxx",
        "****",
        "todo",
        "fixme",
        "insert",
        "replace",
    ];
    let first = l.chars().next().unwrap_or('x');
    l.is_empty()
        || l.starts_with('$')
        || l.starts_with('<')
        || l.starts_with("{{")
        || l.starts_with("%s")
        || l.starts_with("%(")
        || l.starts_with('{')
        || l.chars().all(|c| c == first)
        || EXACT.contains(&l)
        || PARTS.iter().any(|w| l.contains(w))
}

/// GitHub's token format: 30 random characters then their CRC32 in 6 base62 digits.
pub fn github_checksum_ok(token: &str) -> bool {
    let Some((_, body)) = token.split_once('_') else {
        return false;
    };
    if body.len() != 36 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (payload, check) = body.split_at(30);
    let mut v: u64 = 0;
    for b in check.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return false,
        };
        v = v * 62 + d as u64;
    }
    v == crc32fast::hash(payload.as_bytes()) as u64
}

/// A PEM block from `at`: its END line must follow and its body must be base64 of a
/// plausible key. Encrypted keys are reported with medium confidence.
fn pem_block(data: &[u8], at: usize) -> Option<Confirmed> {
    let window = &data[at..data.len().min(at + 64 * 1024)];
    pem_text(window).or_else(|| {
        // A key inside a JSON, .env or code string: newlines written as `\n`.
        let unescaped = String::from_utf8_lossy(window).replace("\\n", "\n");
        pem_text(unescaped.as_bytes())
    })
}

fn pem_text(window: &[u8]) -> Option<Confirmed> {
    let text = std::str::from_utf8(window).ok().or_else(|| {
        // Binary around the key: cut at the first invalid byte.
        let valid = match std::str::from_utf8(window) {
            Ok(_) => window.len(),
            Err(e) => e.valid_up_to(),
        };
        std::str::from_utf8(&window[..valid]).ok()
    })?;
    let first_nl = text.find('\n')?;
    let header = text[..first_nl].trim_end_matches('\r');
    let end = text.find("-----END ")?;
    if end < first_nl {
        return None;
    }
    let mut body = String::new();
    let mut encrypted = header.contains("ENCRYPTED");
    for line in text[first_nl + 1..end].lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('=') {
            continue;
        }
        if line.contains(':') {
            if line.contains("ENCRYPTED") || line.starts_with("DEK-Info") {
                encrypted = true;
            }
            continue;
        }
        body.push_str(line);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .ok()?;
    if decoded.len() < 32 {
        return None;
    }
    Some(Confirmed {
        fingerprint_value: decoded.clone(),
        evidence: format!(
            "{} ({} bytes of key material{})",
            short(header.trim(), 64),
            decoded.len(),
            if encrypted { ", encrypted" } else { "" }
        ),
        confidence: if encrypted {
            Confidence::Medium
        } else {
            Confidence::High
        },
    })
}

/// A service-account key file: JSON with type service_account and a private key.
fn gcp_service_account(data: &[u8]) -> Option<Confirmed> {
    if data.len() > 1 << 20 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let key = v.get("private_key")?.as_str()?;
    if v.get("type")?.as_str()? != "service_account" || !key.contains("PRIVATE KEY") {
        return None;
    }
    let email = v
        .get("client_email")
        .and_then(|e| e.as_str())
        .unwrap_or("?");
    Some(Confirmed {
        fingerprint_value: key.as_bytes().to_vec(),
        evidence: format!("service account {email:?} with its private key"),
        confidence: Confidence::High,
    })
}

fn is_fixture_path(path: &str) -> bool {
    let l = path.to_ascii_lowercase();
    let name = l.rsplit('/').next().unwrap_or("");
    if name.contains("_test.")
        || name.starts_with("test_")
        || name.contains(".spec.")
        || name.contains(".test.")
    {
        return true;
    }
    [
        "/test/",
        "/tests/",
        "/testdata/",
        "/fixtures/",
        "/__tests__/",
        "/spec/",
        "/examples/",
        "/example/",
        "/docs/",
        "/doc/",
    ]
    .iter()
    .any(|p| l.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::content::ContentEngine;

    fn scan(path: &str, data: &[u8]) -> Result<Vec<Hit>, String> {
        ContentEngine::builtin().scan(path, data).map(|h| h.secrets)
    }

    /// Every rule finds all its positive examples and none of its negative ones, and no
    /// pattern is slow (compile fails on slow patterns).
    #[test]
    fn every_rule_passes_its_own_examples() {
        let engine = ContentEngine::builtin();
        let ids: HashSet<String> = engine
            .secrets()
            .rules()
            .iter()
            .map(|r| r.meta.id.clone())
            .collect();
        let failures = engine.example_failures(Some(&ids));
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn evidence_never_holds_the_secret() {
        let engine = ContentEngine::builtin().secrets();
        for r in engine.rules() {
            for p in &r.meta.positive {
                for h in scan("/app/x", p.as_bytes()).unwrap_or_default() {
                    let secret = String::from_utf8_lossy(&h.fingerprint_value).into_owned();
                    if secret.len() >= 8 {
                        assert!(
                            !h.evidence.contains(&secret),
                            "{}: evidence {:?} shows the secret",
                            r.meta.id,
                            h.evidence
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn escaped_pem_in_json_and_npmrc_only_in_npm_config() {
        let engine = ContentEngine::builtin().secrets();
        let tfstate = br#"{"resources":[{"attributes":{"private_key_pem":"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----\n"}}]}"#;
        let hits = scan("/srv/terraform.tfstate", tfstate).unwrap();
        assert!(
            hits.iter()
                .any(|h| engine.rules()[h.rule].meta.id == "secret/private-key"),
            "{hits:?}"
        );
        let code = b"class S:\n    def __init__(self, u, p):\n        self._auth = requests.auth.HTTPBasicAuth(u, p)\n";
        assert!(
            scan("/usr/lib/python3/site-packages/s.py", code)
                .unwrap()
                .is_empty()
        );
        let npmrc = b"//npm.pkg.github.com/:_authToken=9f8e7d6c5b4a39281706f5e4d3c2b1a0\n";
        assert_eq!(scan("/root/.npmrc", npmrc).unwrap().len(), 1);
    }

    #[test]
    fn a_specific_rule_wins_over_the_generic_one() {
        let jaas = b"sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"svc\" password=\"Tq8vZ3mKx7Lp2Wn9Rb4Yc6\";\n";
        let hits = scan("/etc/kafka/client.properties", jaas).unwrap();
        let engine = ContentEngine::builtin().secrets();
        let ids: Vec<&str> = hits
            .iter()
            .map(|h| engine.rules()[h.rule].meta.id.as_str())
            .collect();
        assert!(ids.contains(&"secret/kafka-jaas-password"), "{ids:?}");
        assert!(!ids.contains(&"secret/generic-password"), "{ids:?}");
    }

    #[test]
    fn github_checksum() {
        assert!(github_checksum_ok(
            "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"
        ));
        assert!(!github_checksum_ok(
            "ghp_Ky9Pf34qY6Nb3wWD25RQ4F5ZR3qa7y3gm1IM"
        ));
        assert!(!github_checksum_ok("ghp_short"));
    }

    #[test]
    fn line_numbers_and_fixture_paths() {
        let data = b"# config\n\nexport GITHUB_TOKEN=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\n";
        let hits = scan("/etc/profile.d/ci.sh", data).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line, 3);
        assert_eq!(hits[0].confidence, Confidence::High);
        let hits = scan(
            "/usr/lib/python3/site-packages/pkg/tests/test_auth.py",
            data,
        )
        .unwrap();
        assert_eq!(
            hits[0].confidence,
            Confidence::Low,
            "still reported, with lower confidence"
        );
    }

    #[test]
    fn binary_content_is_scanned() {
        let mut data = vec![0u8, 0x7f, b'E', b'L', b'F', 2, 1, 1];
        data.extend(std::iter::repeat_n(0xffu8, 5000));
        data.extend_from_slice(b"\0AKIAZ7QWERTYUIOPASDF\0");
        data.extend(std::iter::repeat_n(0u8, 5000));
        let hits = scan("/usr/local/bin/tool", &data).unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
    }
}

#[cfg(test)]
mod throughput {
    /// Per-rule YARA-X throughput on mixed text and binary data, to find rules whose
    /// atoms are weak. Run: cargo test --release -p canary-analyzer --lib rule_throughput -- --ignored --nocapture
    #[test]
    #[ignore]
    fn rule_throughput() {
        let mut data = Vec::with_capacity(64 << 20);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut i = 0u64;
        if let Ok(path) = std::env::var("CANARY_THROUGHPUT_FILE") {
            data = std::fs::read(path).unwrap();
            data.truncate(64 << 20);
        }
        while data.len() < 64 << 20 {
            if (i / 64).is_multiple_of(2) {
                data.extend_from_slice(
                    format!("line {i} key_{} = value {}\n", seed % 9973, seed % 7919).as_bytes(),
                );
            } else {
                data.extend_from_slice(&seed.to_le_bytes());
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            i += 1;
        }
        let extra: Vec<(String, String)> = std::env::var("CANARY_TRY_REGEX")
            .map(|v| {
                v.split("||")
                    .map(|r| (format!("try {r}"), r.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let catalog = canary_rules::secret_rules()
            .iter()
            .map(|r| (r.id.clone(), super::yara_regex(r)));
        for (id, regex) in catalog.chain(extra) {
            let src = format!("rule r {{ strings: $a = {regex} condition: $a }}");
            let rules = yara_x::compile(src.as_str()).unwrap();
            let mut s = yara_x::Scanner::new(&rules);
            let t = std::time::Instant::now();
            for chunk in data.chunks(1 << 20) {
                s.scan(chunk).unwrap();
            }
            let mbs = data.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
            println!("{mbs:>10.0} MB/s  {id}");
        }
        let engine = crate::detect::content::ContentEngine::builtin();
        let t = std::time::Instant::now();
        for chunk in data.chunks(1 << 20) {
            engine.scan("/bench", chunk).unwrap();
        }
        let mbs = data.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
        println!("{mbs:>10.0} MB/s  (the whole catalog, with Rust checks on hits)");
    }
}
