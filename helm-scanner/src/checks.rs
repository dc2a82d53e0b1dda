//! The misconfiguration checks of `rules/data/k8s-checks.toml` on one Kubernetes object:
//! each hit names the rule and where in the object (container, field).

use serde_json::Value;

use crate::k8s::{containers, pod_spec};

/// One check that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckHit {
    pub rule_id: &'static str,
    /// Where and what: `container app: securityContext.privileged is true`.
    pub detail: String,
}

const DANGEROUS_CAPS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "NET_RAW",
    "DAC_READ_SEARCH",
    "SYS_RAWIO",
    "BPF",
    "PERFMON",
    "SYS_BOOT",
    "SYS_TIME",
];

const SENSITIVE_PATHS: &[&str] = &[
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/var/run",
    "/run",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/run/docker.sock",
    "/run/containerd",
    "/var/run/crio",
    "/etc/kubernetes",
];

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

fn sensitive(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    p.is_empty()
        || SENSITIVE_PATHS
            .iter()
            .any(|s| p == *s || p.starts_with(&format!("{s}/")))
}

fn pipe_to_shell() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?i)\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da|k)?sh\b")
            .expect("static pattern")
    })
}

fn miner() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"(?i)stratum2?\+(tcp|ssl|tls)://|\b(xmrig|xmr-stak|cpuminer|minerd|ccminer|t-rex|nbminer|lolminer|gminer|phoenixminer|teamredminer|srbminer|nanominer|bzminer|ethminer)\b",
        )
        .expect("static pattern")
    })
}

/// The dependency checks of `data/chart-checks.toml` on one chart's metadata (its
/// `Chart.yaml`, or a v1 chart's `requirements.yaml` merged in): plain-HTTP
/// repositories, and version ranges when no lock file pins them (`locked`).
pub fn dependency_checks(deps: &[crate::deps::Dependency], locked: bool) -> Vec<CheckHit> {
    let mut out = Vec::new();
    for d in deps {
        if d.repository
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        {
            out.push(CheckHit {
                rule_id: "helm/dependency-plain-http",
                detail: format!("dependency {} from {}", d.name, d.repository),
            });
        }
        let exact = crate::template::funcs::is_exact_version(&d.version);
        if !locked && !exact && !d.repository.starts_with("file://") {
            out.push(CheckHit {
                rule_id: "helm/dependency-unpinned",
                detail: format!("dependency {} version {:?}", d.name, d.version),
            });
        }
    }
    out
}

/// The provenance checks of `data/chart-checks.toml` on a packaged chart: `prov` is the
/// `.prov` file beside the archive, if any. Its signature is not verified (no OpenPGP
/// here); the archive's SHA-256 must be the one it records.
pub fn provenance_checks(archive_name: &str, archive: &[u8], prov: Option<&str>) -> Vec<CheckHit> {
    use sha2::Digest;
    let Some(prov) = prov.filter(|p| !p.trim().is_empty()) else {
        return vec![CheckHit {
            rule_id: "helm/no-provenance",
            detail: format!("no {archive_name}.prov"),
        }];
    };
    let want = format!(
        "sha256:{}",
        canary_analyzer::hex(&sha2::Sha256::digest(archive))
    );
    // `files:` then `  NAME: sha256:HEX` lines, inside the signed message.
    let recorded = prov
        .lines()
        .skip_while(|l| l.trim_end() != "files:")
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .find_map(|l| {
            let (name, sum) = l.trim().split_once(':')?;
            (name.trim() == archive_name).then(|| sum.trim().to_string())
        });
    match recorded {
        Some(sum) if sum.eq_ignore_ascii_case(&want) => vec![],
        Some(sum) => vec![CheckHit {
            rule_id: "helm/provenance-mismatch",
            detail: format!("{archive_name} is {want}; its .prov records {sum}"),
        }],
        None => vec![CheckHit {
            rule_id: "helm/provenance-mismatch",
            detail: format!("its .prov records no digest for {archive_name}"),
        }],
    }
}

/// Registries trusted by default (`--trusted-registry` replaces the list): the public
/// registries of the big vendors and clouds. `*.` matches any subdomain.
pub const DEFAULT_TRUSTED_REGISTRIES: &[&str] = &[
    "docker.io",
    "registry.k8s.io",
    "k8s.gcr.io",
    "gcr.io",
    "*.gcr.io",
    "*.pkg.dev",
    "ghcr.io",
    "quay.io",
    "mcr.microsoft.com",
    "public.ecr.aws",
    "*.amazonaws.com",
    "registry.gitlab.com",
    "docker.elastic.co",
    "nvcr.io",
    "registry.redhat.io",
    "registry.access.redhat.com",
    "icr.io",
    "*.azurecr.io",
];

/// What the checks are told by the user.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Registry hosts (`host`, `host:port`, `*.domain`) whose images are trusted.
    pub trusted_registries: Vec<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            trusted_registries: DEFAULT_TRUSTED_REGISTRIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl CheckOptions {
    fn trusts(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let bare = host.split(':').next().unwrap_or(&host);
        self.trusted_registries.iter().any(|t| {
            let t = t.to_ascii_lowercase();
            match t.strip_prefix("*.") {
                Some(domain) => bare.ends_with(&format!(".{domain}")),
                None => t == host || t == bare,
            }
        })
    }
}

/// Whether a setting's name says it holds a credential (`DB_PASSWORD`, `apiKey`,
/// `client-secret`), and not only its name, file, id or length (`SECRET_NAME`,
/// `TOKEN_FILE`, `PASSWORD_MIN_LENGTH`).
fn credential_name(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "accesskey",
        "privatekey",
        "credential",
    ];
    const NOT: &[&str] = &[
        "name", "file", "path", "dir", "ref", "id", "url", "ttl", "expiry", "length", "size",
        "enabled", "type", "mode", "required", "policy", "key_id", "keyid", "header", "count",
    ];
    let flat: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let lower = name.to_ascii_lowercase();
    WORDS.iter().any(|w| flat.contains(w))
        && !NOT
            .iter()
            .any(|n| lower.ends_with(n) && !WORDS.iter().any(|w| lower.ends_with(w)))
}

/// Whether a literal value looks like a credential rather than a reference to one.
fn literal_secret(value: &str) -> bool {
    let v = value.trim();
    v.len() >= 4
        && !matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "none"
        )
        && !v.starts_with("$(")
        && !v.starts_with("${")
        && !v.starts_with('/')
}

/// Every check on one object of kind `kind`, with the default options.
pub fn check(kind: &str, obj: &Value) -> Vec<CheckHit> {
    check_with(kind, obj, &CheckOptions::default())
}

/// Every check on one object of kind `kind`.
pub fn check_with(kind: &str, obj: &Value, opts: &CheckOptions) -> Vec<CheckHit> {
    let mut out = Vec::new();
    let mut hit = |rule_id: &'static str, detail: String| out.push(CheckHit { rule_id, detail });
    match kind {
        "Role" | "ClusterRole" => {
            for (i, r) in obj
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let star = |k: &str| {
                    r.get(k)
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some("*")))
                };
                if star("verbs") && star("resources") {
                    hit(
                        "k8s/rbac-wildcard",
                        format!("rules[{i}] allows every verb on every resource"),
                    );
                }
            }
        }
        "RoleBinding" | "ClusterRoleBinding"
            if obj.pointer("/roleRef/name").and_then(Value::as_str) == Some("cluster-admin") =>
        {
            hit("k8s/rbac-wildcard", "binds cluster-admin".into());
        }
        "ConfigMap" => {
            for (key, v) in obj
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if credential_name(key) && v.as_str().is_some_and(literal_secret) {
                    // The value itself is never part of the finding.
                    hit(
                        "k8s/plaintext-secret",
                        format!(
                            "data.{key} holds a literal value ({} characters)",
                            v.as_str().map_or(0, |t| t.chars().count())
                        ),
                    );
                }
            }
        }
        _ => {}
    }
    let Some(spec) = pod_spec(kind, obj) else {
        return out;
    };
    for ns in ["hostPID", "hostIPC", "hostNetwork"] {
        if is_true(spec.get(ns)) {
            hit("k8s/host-namespace", format!("{ns} is true"));
        }
    }
    for v in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(p) = v.pointer("/hostPath/path").and_then(Value::as_str)
            && sensitive(p)
        {
            let name = v.get("name").and_then(Value::as_str).unwrap_or("?");
            hit(
                "k8s/sensitive-host-path",
                format!("volume {name} mounts the host's {p}"),
            );
        }
    }
    if spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        != Some(false)
    {
        hit(
            "k8s/service-account-token",
            "automountServiceAccountToken is not false".into(),
        );
    }
    let pod_sc = spec.get("securityContext");
    for (list, _, c) in containers(spec) {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        let at = format!("{list} {name}");
        let sc = c.get("securityContext");
        let get = |k: &str| sc.and_then(|s| s.get(k));
        if is_true(get("privileged")) {
            hit(
                "k8s/privileged",
                format!("{at}: securityContext.privileged is true"),
            );
        }
        if get("allowPrivilegeEscalation").and_then(Value::as_bool) != Some(false) {
            hit(
                "k8s/privilege-escalation",
                format!("{at}: allowPrivilegeEscalation is not false"),
            );
        }
        for cap in sc
            .and_then(|s| s.pointer("/capabilities/add"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let bare = cap.trim_start_matches("CAP_").to_ascii_uppercase();
            if DANGEROUS_CAPS.contains(&bare.as_str()) {
                hit("k8s/dangerous-capability", format!("{at}: adds {cap}"));
            }
        }
        // The container's settings win over the pod's.
        let eff = |k: &str| get(k).or_else(|| pod_sc.and_then(|p| p.get(k)));
        let non_root = eff("runAsNonRoot").and_then(Value::as_bool) == Some(true);
        let user = eff("runAsUser").and_then(Value::as_f64);
        if !non_root && !user.is_some_and(|u| u > 0.0) {
            hit(
                "k8s/run-as-root",
                match user {
                    Some(_) => format!("{at}: runAsUser is 0"),
                    None => format!("{at}: neither runAsNonRoot nor a non-zero runAsUser is set"),
                },
            );
        }
        if list != "ephemeralContainers" && !is_true(get("readOnlyRootFilesystem")) {
            hit(
                "k8s/writable-root-fs",
                format!("{at}: readOnlyRootFilesystem is not true"),
            );
        }
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        if !image.is_empty() && !image.contains("@sha256:") {
            hit("k8s/image-not-pinned", format!("{at}: {image}"));
        }
        if let Ok(r) = image.parse::<oci_client::Reference>()
            && !opts.trusts(r.registry())
        {
            hit(
                "k8s/untrusted-registry",
                format!("{at}: {image} comes from {}", r.registry()),
            );
        }
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            let name = e.get("name").and_then(Value::as_str).unwrap_or("");
            if credential_name(name)
                && e.get("valueFrom").is_none()
                && e.get("value")
                    .and_then(Value::as_str)
                    .is_some_and(literal_secret)
            {
                let n = e
                    .get("value")
                    .and_then(Value::as_str)
                    .map_or(0, |t| t.chars().count());
                hit(
                    "k8s/plaintext-secret",
                    format!("{at}: env {name} holds a literal value ({n} characters)"),
                );
            }
        }
        let words: Vec<&str> = ["command", "args"]
            .iter()
            .flat_map(|k| c.get(*k).and_then(Value::as_array).into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        let line = words.join(" ");
        if pipe_to_shell().is_match(&line) {
            hit("k8s/init-pipe-to-shell", format!("{at}: {line}"));
        }
        if miner().is_match(&line) || miner().is_match(image) {
            hit("k8s/miner-args", format!("{at}: {image} {line}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule's examples, from the data file.
    #[test]
    fn chart_rules_fire_on_their_examples_only() {
        assert_eq!(canary_rules::chart_checks().len(), 4);
        let archive = b"canary example chart archive\n";
        for r in canary_rules::chart_checks() {
            assert!(!r.positive.is_empty(), "{} has no positive example", r.id);
            for (which, examples, want) in [
                ("positive", &r.positive, true),
                ("negative", &r.negative, false),
            ] {
                for (i, ex) in examples.iter().enumerate() {
                    let hits = if r.id.contains("provenance") {
                        provenance_checks("example-1.0.0.tgz", archive, Some(ex))
                    } else {
                        let mut metadata = serde_json::Map::new();
                        if let Value::Object(m) = crate::template::yaml::from_yaml(ex).unwrap() {
                            metadata = m;
                        }
                        let chart = crate::chart::Chart {
                            metadata,
                            values: Value::Null,
                            templates: Default::default(),
                            files: Default::default(),
                            subcharts: vec![],
                            raw: Default::default(),
                            dir_name: String::new(),
                        };
                        dependency_checks(&crate::deps::dependencies(&chart), false)
                    };
                    let fired = hits.iter().any(|h| h.rule_id == r.id);
                    assert_eq!(fired, want, "{} {which} example {i}: {hits:?}", r.id);
                }
            }
        }
    }

    #[test]
    fn credential_names_and_trusted_registries() {
        for yes in [
            "DB_PASSWORD",
            "apiKey",
            "client-secret",
            "GITHUB_TOKEN",
            "aws.secretAccessKey",
        ] {
            assert!(credential_name(yes), "{yes}");
        }
        for no in [
            "SECRET_NAME",
            "TOKEN_FILE",
            "PASSWORD_MIN_LENGTH",
            "tokenTTL",
            "LOG_LEVEL",
            "AWS_ACCESS_KEY_ID",
        ] {
            assert!(!credential_name(no), "{no}");
        }
        let o = CheckOptions::default();
        assert!(o.trusts("docker.io"));
        assert!(o.trusts("europe-docker.pkg.dev"));
        assert!(o.trusts("123456789012.dkr.ecr.eu-west-1.amazonaws.com"));
        assert!(!o.trusts("evil-amazonaws.com"));
        assert!(!o.trusts("203.0.113.9:5000"));
        let mine = CheckOptions {
            trusted_registries: vec!["reg.lan:5000".into(), "harbor.corp".into()],
        };
        assert!(mine.trusts("reg.lan:5000") && mine.trusts("harbor.corp:443"));
        assert!(!mine.trusts("docker.io"));
    }

    #[test]
    fn rules_fire_on_their_examples_only() {
        let ids: Vec<&str> = canary_rules::k8s_checks()
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert!(ids.len() >= 14);
        for r in canary_rules::k8s_checks() {
            assert!(!r.positive.is_empty(), "{} has no positive example", r.id);
            for (which, examples, want) in [
                ("positive", &r.positive, true),
                ("negative", &r.negative, false),
            ] {
                for (i, ex) in examples.iter().enumerate() {
                    let obj = crate::template::yaml::from_yaml(ex).unwrap();
                    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
                    let fired = check(kind, &obj).iter().any(|h| h.rule_id == r.id);
                    assert_eq!(fired, want, "{} {which} example {i}", r.id);
                }
            }
        }
    }
}
