//! Runtime rules: from what a run did to `runtime/*` findings. Each rule's metadata and
//! examples are data (`rules/data/runtime-rules.toml`); its logic is here, under the
//! same id.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use canary_analyzer::finding::{Category, Confidence, Finding, Location, Severity};

use crate::run::{Outcome, RunSpec};
use crate::sinkhole::NetEvent;
use crate::trace::Call;

/// One thing a run did, as the rules see it (and as the rules' examples are written).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Observation {
    Exec {
        path: String,
        argv: Vec<String>,
        /// What an executed file descriptor pointed to (`/memfd:x (deleted)`).
        #[serde(default)]
        fd_target: Option<String>,
        /// The static miner rule the executed file matches.
        #[serde(default)]
        miner: Option<String>,
    },
    /// The process renamed itself (`prctl(PR_SET_NAME)`).
    SetName(String),
    Connect {
        addr: String,
        port: u16,
    },
    Dns(String),
    Tcp {
        ip: String,
        port: u16,
        #[serde(default)]
        name: Option<String>,
        protocol: String,
        #[serde(default)]
        first: String,
        /// The server name a TLS ClientHello asked for.
        #[serde(default)]
        sni: Option<String>,
    },
    /// CPU time over (wall time × the CPU limit), and the wall time; the process that
    /// used most of it, when known.
    Cpu {
        ratio: f64,
        wall_s: f64,
        #[serde(default)]
        top: Option<String>,
    },
    /// How widely the run's connections spread: distinct addresses it connected to by
    /// number (not through a name our resolver gave), and the most distinct ports it
    /// tried on one address.
    Fanout {
        addresses: usize,
        max_ports: usize,
    },
    /// A canary credential planted in the run (a value to look for, not an action).
    Bait(String),
    /// A planted canary credential file the run read.
    BaitRead(String),
    /// A file of the image the run deleted.
    Delete(String),
    /// A file of the image the run emptied (it was not empty in the image).
    Truncate(String),
    /// A file the run left behind; `miner` names the static miner rule its bytes match.
    Write {
        path: String,
        #[serde(default)]
        miner: Option<String>,
    },
    /// A file opened for writing (the tracer's view: who, even if nothing is left).
    OpenWrite(String),
    /// A file unlinked (the tracer's view).
    Unlink(String),
    /// A sensitive file opened (fanotify's view).
    Read(String),
    /// An escape route the sandbox refused: the call's name and what its arguments say.
    Denied {
        syscall: String,
        #[serde(default)]
        detail: String,
    },
}

/// Most executed files hashed and scanned per run, and the largest.
const MAX_EXEC_SCANNED: usize = 64;
const MAX_EXEC_BYTES: u64 = 32 << 20;

/// Give each exec event of `o` the SHA-256 of the file it ran and the static miner rule
/// that file matches: the file as the run wrote it (its copy) or as the image has it
/// (read inside `rootfs`). At most 64 distinct files of at most 32 MiB; a program run
/// from a descriptor, or one the run wrote and did not keep, is not hashed.
pub fn enrich_execs(o: &mut Outcome, rootfs: &std::path::Path) {
    let mut done: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    for e in &mut o.events {
        let Call::Exec {
            path,
            fd_target: None,
            sha256,
            miner,
            ..
        } = &mut e.call
        else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        if !done.contains_key(path.as_str()) {
            if done.len() >= MAX_EXEC_SCANNED {
                continue;
            }
            let written = o.written.iter().find(|w| w.path == *path);
            let bytes = match written {
                Some(w) => w.copy.as_ref().and_then(|c| std::fs::read(c).ok()),
                None => crate::rootfs::read_in_root(rootfs, path, MAX_EXEC_BYTES + 1),
            }
            .filter(|b| b.len() as u64 <= MAX_EXEC_BYTES);
            let found = bytes.map_or((None, None), |b| {
                // The listing of written files hashed them already.
                let digest = written.and_then(|w| w.sha256.clone()).unwrap_or_else(|| {
                    use sha2::Digest;
                    format!("sha256:{}", canary_analyzer::hex(&sha2::Sha256::digest(&b)))
                });
                (Some(digest), miner_of(path, &b))
            });
            done.insert(path.clone(), found);
        }
        if let Some((h, m)) = done.get(path.as_str()) {
            *sha256 = h.clone();
            *miner = m.clone();
        }
    }
}

/// The first static miner rule `bytes` (the file at `path`) match, as `rule (title)`.
fn miner_of(path: &str, bytes: &[u8]) -> Option<String> {
    canary_analyzer::detect::content::ContentEngine::builtin()
        .scan(path, bytes)
        .ok()?
        .miners
        .into_iter()
        .next()
        .map(|m| format!("{} ({})", m.rule_id, m.title))
}

/// The observations of a run of `spec`, each with the pid it came from when known.
pub fn observations(o: &Outcome, spec: &RunSpec) -> Vec<(Option<u32>, Observation)> {
    let limits = &spec.limits;
    let mut out: Vec<(Option<u32>, Observation)> = spec
        .bait
        .iter()
        .flat_map(|b| b.needles())
        .map(|n| (None, Observation::Bait(n)))
        .collect();
    for e in &o.events {
        let obs = match &e.call {
            Call::Exec {
                path,
                argv,
                fd_target,
                miner,
                ..
            } => Observation::Exec {
                path: path.clone(),
                argv: argv.clone(),
                fd_target: fd_target.clone(),
                miner: miner.clone(),
            },
            Call::SetName { name } => Observation::SetName(name.clone()),
            // Seen in the timeline; what matters is whether the memfd is executed.
            Call::MemfdCreate { .. } => continue,
            Call::Open { path, .. } => Observation::OpenWrite(path.clone()),
            Call::Unlink { path } => {
                // A file of the image the run did delete (the overlay's whiteout says
                // so, and says it again below without a pid): the tampering rules'
                // business, now with the process that did it.
                if o.deleted.contains(path) {
                    out.push((Some(e.pid), Observation::Delete(path.clone())));
                }
                Observation::Unlink(path.clone())
            }
            Call::Read { path } => Observation::Read(path.clone()),
            Call::Denied { syscall, detail } => Observation::Denied {
                syscall: syscall.clone(),
                detail: detail.clone(),
            },
            Call::Rename { .. } | Call::Chmod { .. } | Call::Kill { .. } => continue,
            Call::Connect {
                addr,
                port: Some(port),
                ..
            } => Observation::Connect {
                addr: addr.clone(),
                port: *port,
            },
            Call::Connect { .. } => continue,
            // In the timeline, and in the fan-out below.
            Call::SendTo { .. } => continue,
        };
        out.push((Some(e.pid), obs));
    }
    for e in &o.net_events {
        let obs = match e {
            NetEvent::Dns { name, .. } => Observation::Dns(name.clone()),
            NetEvent::Tcp {
                dst_ip,
                dst_port,
                dst_name,
                protocol,
                first_bytes,
                sni,
                ..
            } => Observation::Tcp {
                ip: dst_ip.clone(),
                port: *dst_port,
                name: dst_name.clone(),
                protocol: protocol.clone(),
                first: String::from_utf8_lossy(first_bytes).into_owned(),
                sni: sni.clone(),
            },
        };
        out.push((None, obs));
    }
    // A deleted directory (`rm -rf /var/log`) leaves one whiteout: its files in the
    // image are deleted too (at most 10,000 of them looked at).
    let mut budget = 10_000usize;
    for d in &o.deleted {
        out.push((None, Observation::Delete(d.clone())));
        let mut stack = vec![d.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(spec.rootfs.join(dir.trim_start_matches('/'))) else {
                continue;
            };
            for e in rd.flatten() {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let path = format!("{dir}/{}", e.file_name().to_string_lossy());
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(path),
                    Ok(t) if t.is_file() => out.push((None, Observation::Delete(path))),
                    _ => {}
                }
            }
        }
    }
    // A program run from memory, whatever path or descriptor started it (the tracer's
    // view can be dodged; the kernel's `/proc/PID/exe` cannot).
    for p in &o.processes {
        if p.exe.starts_with("/memfd:") {
            out.push((
                Some(p.pid),
                Observation::Exec {
                    path: p.exe.clone(),
                    argv: vec![p.comm.clone()],
                    fd_target: Some(p.exe.clone()),
                    miner: None,
                },
            ));
        }
    }
    let planted = crate::bait::Bait::planted_paths();
    for w in &o.written {
        // Emptied: nothing, or a line's worth, left of a file that had more
        // (`> file`, `echo > file`).
        if std::fs::symlink_metadata(spec.rootfs.join(w.path.trim_start_matches('/')))
            .is_ok_and(|m| m.is_file() && m.len() > w.size && w.size <= 1)
        {
            out.push((None, Observation::Truncate(w.path.clone())));
        }
        if spec.bait.is_some() && planted.contains(&w.path.as_str()) {
            if w.read {
                out.push((None, Observation::BaitRead(w.path.clone())));
            }
            continue;
        }
        // Executables written at run time get the static scan the image's layers got (an
        // executed one had it already, from enrich_execs).
        let scanned = o.events.iter().find_map(|e| match &e.call {
            Call::Exec {
                path,
                sha256: Some(_),
                miner,
                ..
            } if *path == w.path => Some(miner.clone()),
            _ => None,
        });
        let miner = match scanned {
            Some(m) => m,
            None => w
                .copy
                .as_ref()
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|bytes| miner_of(&w.path, &bytes)),
        };
        out.push((
            None,
            Observation::Write {
                path: w.path.clone(),
                miner,
            },
        ));
    }
    // Fan-out: every connect() the tracer saw, except to loopback and to the addresses
    // our resolver handed out (those are names, however many a crawler looks up).
    let mut ports: HashMap<&str, HashSet<u16>> = HashMap::new();
    for e in &o.events {
        if let Call::Connect {
            addr,
            port: Some(port),
            ..
        }
        | Call::SendTo {
            addr,
            port: Some(port),
            ..
        } = &e.call
            // Dual-stack sockets write IPv4 as ::ffff:a.b.c.d.
            && let addr = addr.strip_prefix("::ffff:").unwrap_or(addr)
            && !addr.starts_with("127.")
            && !addr.starts_with("198.18.1.")
            && addr != "::1"
        {
            ports.entry(addr).or_default().insert(*port);
        }
    }
    if !ports.is_empty() {
        out.push((
            None,
            Observation::Fanout {
                addresses: ports.len(),
                max_ports: ports.values().map(HashSet::len).max().unwrap_or(0),
            },
        ));
    }
    if let Some(cg) = &o.cgroup {
        let wall = o.wall.as_secs_f64();
        let budget = wall * limits.cgroup.cpus.max(0.01) * 1e9;
        if budget > 0.0 {
            out.push((
                None,
                Observation::Cpu {
                    ratio: cg.cpu_ns as f64 / budget,
                    wall_s: wall,
                    top: o
                        .processes
                        .first()
                        .map(|p| format!("pid {} ({}), {} ms of CPU", p.pid, p.comm, p.cpu_ms)),
                },
            ));
        }
    }
    out
}

/// The hit of a tampering rule on a deletion or a truncation of `path`; `note` ends
/// the evidence.
fn tamper_hit(obs: &Observation, path: &str, note: &str) -> Hit {
    let (verb, what) = match obs {
        Observation::Delete(_) => ("delete", "deleted"),
        _ => ("truncate", "emptied"),
    };
    Hit {
        event: format!("{verb} {path}"),
        evidence: format!("{what} {path}{note}"),
        key: path.to_string(),
    }
}

/// Shell histories, login records and logs: what an intruder erases behind itself.
fn is_trace_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    [
        ".bash_history",
        ".zsh_history",
        ".ash_history",
        ".sh_history",
        ".python_history",
        ".mysql_history",
        ".psql_history",
        ".viminfo",
    ]
    .contains(&name)
        || path.starts_with("/var/log/")
        || path == "/var/log"
        || ["/var/run/utmp", "/run/utmp"].contains(&path)
}

/// Files of the security and monitoring agents miners' scripts remove first (cloud
/// vendors' host agents, audit, EDR, intrusion detection).
fn is_security_tool(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "/usr/local/aegis/",
        "/usr/local/qcloud/",
        "/usr/local/cloudmonitor/",
        "/usr/local/share/aliyun-assist/",
        "/usr/local/share/assist-daemon/",
        "/opt/aliyun",
        "/usr/sbin/aliyun",
        "/etc/init.d/aegis",
        "/etc/init.d/cloudmonitor",
        "/opt/bcm-agent/",
        "/usr/local/bcm-agent/",
        "/etc/audit/",
        "/sbin/auditd",
        "/usr/sbin/auditd",
        "/etc/apparmor",
        "/etc/selinux/",
        "/etc/falco/",
        "/usr/bin/falco",
        "/opt/CrowdStrike/",
        "/opt/microsoft/mdatp/",
        "/opt/sentinelone/",
        "/var/ossec/",
        "/usr/bin/osqueryd",
        "/opt/osquery/",
        "/opt/datadog-agent/",
    ];
    PREFIXES
        .iter()
        .any(|p| path.starts_with(p) || path == p.trim_end_matches('/'))
}

/// Distinct addresses, or ports on one address, that make a run look like a scanner:
/// a service talks to a handful of backends, masscan/zmap-style spreaders to thousands.
const FANOUT_ADDRESSES: usize = 32;
const FANOUT_PORTS: usize = 32;

/// What a rule says about one observation: the event as shown, the evidence (redacted),
/// and the value the fingerprint hashes.
struct Hit {
    event: String,
    evidence: String,
    key: String,
}

const MINER_NAMES: &[&str] = &[
    "xmrig",
    "xmrig-notls",
    "xmrig-proxy",
    "xmr-stak",
    "xmr-stak-rx",
    "minerd",
    "cpuminer",
    "cpuminer-opt",
    "cpuminer-multi",
    "ccminer",
    "cgminer",
    "bfgminer",
    "ethminer",
    "t-rex",
    "nbminer",
    "lolminer",
    "miner", // GMiner ships as `miner`
    "phoenixminer",
    "teamredminer",
    "srbminer-multi",
    "nanominer",
    "bzminer",
];

const METADATA_ADDRS: &[&str] = &[
    "169.254.169.254",
    "169.254.170.2",
    "100.100.100.200",
    "fd00:ec2::254",
];
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata.goog"];

const KERNEL_THREADS: &[&str] = &[
    "kworker",
    "kthreadd",
    "ksoftirqd",
    "kswapd",
    "migration",
    "rcu_sched",
    "rcu_bh",
    "watchdog",
    "kdevtmpfsi",
];

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn is_pool(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    canary_rules::mining_pools().any(|p| {
        name == p
            || (name.len() > p.len()
                && name.ends_with(p)
                && name.as_bytes()[name.len() - p.len() - 1] == b'.')
    })
}

fn is_mining_port(port: u16) -> bool {
    canary_rules::pool_ports().any(|(p, ambiguous)| p == port && !ambiguous)
}

/// `text` with every secret the secret catalog confirms in it, and every one of
/// `needles` (a run's canary values, an image's env values), redacted.
pub fn scrub(text: &str, needles: &[&str]) -> String {
    let mut out =
        canary_analyzer::detect::content::ContentEngine::builtin().redact_text(text.as_bytes());
    for n in needles {
        if n.len() >= 8 && out.contains(n) {
            out = out.replace(n, &canary_analyzer::finding::redact(n));
        }
    }
    out
}

/// The shown form of captured bytes: secrets redacted, cut short.
fn shown(first: &str) -> String {
    let red = scrub(first, &[]);
    let one_line: String = red
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.chars().take(4096).collect()
}

fn tcp_event(ip: &str, port: u16, name: &Option<String>) -> String {
    match name {
        Some(n) => format!("tcp {ip}:{port} ({n})"),
        None => format!("tcp {ip}:{port}"),
    }
}

fn pipe_to_shell() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(/\S*/)?(ba|da|z|a)?sh\b")
            .expect("a valid regex")
    })
}

/// Paths where something written persists or runs at every start or login.
fn persistence_path(p: &str) -> bool {
    const EXACT: &[&str] = &[
        "/etc/crontab",
        "/etc/rc.local",
        "/etc/ld.so.preload",
        "/etc/profile",
        "/etc/bash.bashrc",
        "/etc/environment",
        "/etc/sudoers",
        "/etc/passwd",
        "/etc/shadow",
    ];
    const UNDER: &[&str] = &[
        "/etc/cron.",
        "/etc/cron/",
        "/var/spool/cron/",
        "/etc/systemd/system/",
        "/lib/systemd/system/",
        "/usr/lib/systemd/system/",
        "/etc/init.d/",
        "/etc/profile.d/",
        "/etc/supervisor/",
        "/etc/sudoers.d/",
    ];
    const HOME_FILES: &[&str] = &[
        "/.ssh/authorized_keys",
        "/.ssh/authorized_keys2",
        "/.bashrc",
        "/.bash_profile",
        "/.profile",
        "/.zshrc",
    ];
    EXACT.contains(&p)
        || UNDER.iter().any(|u| p.starts_with(u))
        || ((p.starts_with("/root/") || p.starts_with("/home/"))
            && HOME_FILES.iter().any(|h| p.ends_with(h)))
}

/// What the rules know of the whole run while they look at one observation.
struct Ctx<'a> {
    /// The run's canary values.
    baits: Vec<&'a str>,
    /// Paths of the files the run left behind.
    written: HashSet<&'a str>,
    /// Paths the run executed.
    executed: HashSet<&'a str>,
}

/// The escape routes that make `runtime/escape-attempt`. Left out: new namespaces
/// (Chromium's and bubblewrap's own sandboxes ask for a user namespace) and `chroot`
/// (vsftpd, Postfix and HAProxy chroot themselves at start, and container runtimes
/// allow it).
fn is_escape(syscall: &str) -> bool {
    !matches!(syscall, "unshare" | "setns" | "chroot")
}

/// Rule `id` over one observation.
fn check(id: &str, obs: &Observation, ctx: &Ctx) -> Option<Hit> {
    use Observation as O;
    let (baits, written) = (&ctx.baits, &ctx.written);
    match (id, obs) {
        (
            "runtime/dropped-miner",
            O::Write {
                path,
                miner: Some(m),
            },
        ) => Some(Hit {
            event: format!("write {path}"),
            evidence: format!("written at run time, matches {m}"),
            key: path.clone(),
        }),
        ("runtime/dropped-exec", O::Exec { path, .. }) if written.contains(path.as_str()) => {
            Some(Hit {
                event: format!("exec {path}"),
                evidence: format!("{path} was written during the run, then executed"),
                key: path.clone(),
            })
        }
        ("runtime/persistence-write", O::Write { path, .. }) if persistence_path(path) => {
            Some(Hit {
                event: format!("write {path}"),
                evidence: format!("wrote {path}"),
                key: path.clone(),
            })
        }
        // The tracer sees the open, not whether anything was written or the open worked.
        ("runtime/persistence-write", O::OpenWrite(path)) if persistence_path(path) => Some(Hit {
            event: format!("write {path}"),
            evidence: format!("opened {path} for writing"),
            key: path.clone(),
        }),
        ("runtime/escape-attempt", O::Denied { syscall, detail }) if is_escape(syscall) => {
            Some(Hit {
                event: format!("{syscall} (refused)"),
                evidence: if detail.is_empty() {
                    format!("tried {syscall}(), refused by the sandbox")
                } else {
                    format!("tried {syscall}({}), refused by the sandbox", shown(detail))
                },
                key: syscall.clone(),
            })
        }
        ("runtime/self-delete", O::Unlink(path)) if ctx.executed.contains(path.as_str()) => {
            Some(Hit {
                event: format!("unlink {path}"),
                evidence: format!("deleted {path}, a program the run had executed"),
                key: path.clone(),
            })
        }
        (
            "runtime/bait-exfiltrated",
            O::Tcp {
                ip,
                port,
                name,
                first,
                ..
            },
        ) => {
            baits.iter().find(|b| first.contains(*b))?;
            Some(Hit {
                event: tcp_event(ip, *port, name),
                evidence: format!("sent a canary credential: {}", shown(first)),
                key: format!("{}:{port}", name.as_deref().unwrap_or(ip)),
            })
        }
        ("runtime/bait-exfiltrated", O::Dns(name)) => {
            let lower = name.to_ascii_lowercase();
            baits
                .iter()
                .find(|b| b.len() >= 16 && lower.contains(&b.to_ascii_lowercase()))?;
            Some(Hit {
                event: format!("dns {name}"),
                evidence: "a canary credential inside a DNS name".into(),
                key: lower,
            })
        }
        (
            "runtime/stratum-protocol",
            O::Tcp {
                ip,
                port,
                name,
                protocol,
                first,
                ..
            },
        ) if protocol == "stratum" => Some(Hit {
            event: tcp_event(ip, *port, name),
            evidence: shown(first),
            key: format!("{}:{port}", name.as_deref().unwrap_or(ip)),
        }),
        ("runtime/pool-dns", O::Dns(name)) if is_pool(name) => Some(Hit {
            event: format!("dns {name}"),
            evidence: format!("looked up {name}"),
            key: name.to_ascii_lowercase(),
        }),
        (
            "runtime/pool-connection",
            O::Tcp {
                ip,
                port,
                name,
                sni,
                ..
            },
        ) if name.as_deref().is_some_and(is_pool)
            || sni.as_deref().is_some_and(is_pool)
            || is_mining_port(*port) =>
        {
            // The name resolved through the sinkhole, else the one TLS asked for (a
            // program that connects to an address it carries).
            let shown = name.as_deref().or(sni.as_deref()).unwrap_or(ip);
            let via = match (name, sni) {
                (None, Some(s)) => format!(" (TLS server name {s})"),
                _ => String::new(),
            };
            Some(Hit {
                event: tcp_event(ip, *port, name),
                evidence: format!("connected to {shown}:{port}{via}"),
                key: format!("{shown}:{port}"),
            })
        }
        ("runtime/pool-connection", O::Connect { addr, port }) if is_mining_port(*port) => {
            Some(Hit {
                event: format!("connect {addr}:{port}"),
                evidence: format!("connect() to {addr}:{port}, a port only mining pools use"),
                key: format!("{addr}:{port}"),
            })
        }
        ("runtime/metadata-endpoint", O::Connect { addr, port })
            if METADATA_ADDRS.contains(&addr.as_str()) =>
        {
            Some(Hit {
                event: format!("connect {addr}:{port}"),
                evidence: format!("connect() to {addr}:{port}"),
                key: addr.clone(),
            })
        }
        (
            "runtime/metadata-endpoint",
            O::Tcp {
                ip,
                port,
                name,
                first,
                ..
            },
        ) if METADATA_ADDRS.contains(&ip.as_str()) => Some(Hit {
            event: tcp_event(ip, *port, name),
            evidence: shown(first),
            key: ip.clone(),
        }),
        ("runtime/metadata-endpoint", O::Dns(name))
            if METADATA_NAMES
                .contains(&name.trim_end_matches('.').to_ascii_lowercase().as_str()) =>
        {
            Some(Hit {
                event: format!("dns {name}"),
                evidence: format!("looked up {name}"),
                key: name.to_ascii_lowercase(),
            })
        }
        (
            "runtime/miner-exec",
            O::Exec {
                path,
                miner: Some(m),
                ..
            },
        ) => Some(Hit {
            event: format!("exec {path}"),
            evidence: format!("executed {path}, which matches {m}"),
            key: path.clone(),
        }),
        ("runtime/miner-exec", O::Exec { path, argv, .. }) => {
            let named = [basename(path), argv.first().map_or("", |a| basename(a))]
                .iter()
                .any(|n| MINER_NAMES.contains(&n.to_ascii_lowercase().as_str()));
            let stratum = argv.iter().find(|a| {
                let a = a.to_ascii_lowercase();
                a.contains("stratum+tcp://")
                    || a.contains("stratum+ssl://")
                    || a.contains("stratum+tls://")
                    || a.contains("stratum2+tcp://")
            });
            (named || stratum.is_some()).then(|| Hit {
                event: format!("exec {path}"),
                evidence: match stratum {
                    Some(s) => format!("argv holds {}", shown(s)),
                    None => format!("executed {path}"),
                },
                key: path.clone(),
            })
        }
        ("runtime/pipe-to-shell", O::Exec { path, argv, .. }) => {
            let shell = matches!(
                basename(path),
                "sh" | "bash" | "dash" | "ash" | "zsh" | "busybox"
            );
            let cmd = argv.iter().find(|a| pipe_to_shell().is_match(a))?;
            shell.then(|| Hit {
                event: format!("exec {path}"),
                evidence: shown(cmd),
                key: cmd.clone(),
            })
        }
        ("runtime/history-tampering", O::Delete(path) | O::Truncate(path))
            if is_trace_file(path) =>
        {
            Some(tamper_hit(obs, path, ""))
        }
        ("runtime/security-tool-tampering", O::Delete(path) | O::Truncate(path))
            if is_security_tool(path) =>
        {
            Some(tamper_hit(
                obs,
                path,
                ", part of a security or monitoring agent",
            ))
        }
        ("runtime/bait-read", O::Read(path))
            if crate::bait::Bait::planted_paths().contains(&path.as_str()) && !baits.is_empty() =>
        {
            Some(Hit {
                event: format!("read {path}"),
                evidence: format!("opened the planted canary credentials in {path}"),
                key: path.clone(),
            })
        }
        // The image's own file at a bait path, when no bait was planted, is sensitive too.
        ("runtime/sensitive-read", O::Read(path))
            if !crate::bait::Bait::planted_paths().contains(&path.as_str()) || baits.is_empty() =>
        {
            Some(Hit {
                event: format!("read {path}"),
                evidence: format!("opened {path}"),
                key: path.clone(),
            })
        }
        ("runtime/bait-read", O::BaitRead(path)) => Some(Hit {
            event: format!("read {path}"),
            evidence: format!("read the planted canary credentials in {path}"),
            key: path.clone(),
        }),
        ("runtime/masquerade", O::SetName(name)) => {
            // Only names no program gives its own threads (`watchdog`, `migration`
            // are ordinary thread names): kernel workers, or any `[bracketed]` name.
            let bare = name.trim_start_matches('[').to_ascii_lowercase();
            (name.starts_with('[')
                || [
                    "kworker",
                    "kthreadd",
                    "ksoftirqd",
                    "kswapd",
                    "kdevtmpfs",
                    "rcu_",
                ]
                .iter()
                .any(|k| bare.starts_with(k)))
            .then(|| Hit {
                event: "prctl PR_SET_NAME".into(),
                evidence: format!("renamed itself to {name:?}"),
                key: format!("set_name {name}"),
            })
        }
        (
            "runtime/fileless-exec",
            O::Exec {
                path, fd_target, ..
            },
        ) => {
            let target = fd_target.as_deref().unwrap_or(path);
            let memfd = target.starts_with("/memfd:");
            let deleted = fd_target.is_some() && target.ends_with(" (deleted)");
            (memfd || deleted).then(|| Hit {
                event: format!("exec {path}"),
                evidence: if memfd {
                    format!("executed {target}: a program in memory, never on disk")
                } else {
                    format!(
                        "executed {target} through its descriptor: a file deleted before it ran"
                    )
                },
                key: target.to_string(),
            })
        }
        ("runtime/masquerade", O::Exec { path, argv, .. }) => {
            let arg0 = argv.first()?;
            let bare = arg0.trim_start_matches('[').to_ascii_lowercase();
            let imitates = KERNEL_THREADS.iter().any(|k| bare.starts_with(k));
            (imitates
                && !basename(path)
                    .to_ascii_lowercase()
                    .starts_with(&bare[..bare.len().min(4)]))
            .then(|| Hit {
                event: format!("exec {path}"),
                evidence: format!("started as {arg0:?}"),
                key: format!("{path} {arg0}"),
            })
        }
        (
            "runtime/scanner-fanout",
            O::Fanout {
                addresses,
                max_ports,
            },
        ) if *addresses >= FANOUT_ADDRESSES || *max_ports >= FANOUT_PORTS => Some(Hit {
            event: "connect fan-out".into(),
            evidence: format!(
                "connect() to {addresses} distinct addresses, up to {max_ports} ports on one"
            ),
            key: "fanout".into(),
        }),
        ("runtime/cpu-saturation", O::Cpu { ratio, wall_s, top })
            if *ratio >= 0.8 && *wall_s >= 10.0 =>
        {
            Some(Hit {
                event: "cpu".into(),
                evidence: format!(
                    "{:.0} % of the CPU limit for {wall_s:.0} s{}",
                    ratio.min(9.99) * 100.0,
                    top.as_deref()
                        .map(|t| format!("; most of it {t}"))
                        .unwrap_or_default()
                ),
                key: "cpu".into(),
            })
        }
        _ => None,
    }
}

/// Every runtime rule over every observation; one finding per rule and event.
pub fn findings(observed: &[(Option<u32>, Observation)]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut ctx = Ctx {
        baits: Vec::new(),
        written: HashSet::new(),
        executed: HashSet::new(),
    };
    for (_, o) in observed {
        match o {
            Observation::Bait(b) => ctx.baits.push(b),
            // A file opened for writing counts as written even if the overlay never saw
            // it (`/dev/shm` is a tmpfs of its own) or the run removed it again.
            Observation::Write { path, .. } | Observation::OpenWrite(path) => {
                ctx.written.insert(path);
            }
            Observation::Exec { path, .. } => {
                ctx.executed.insert(path);
            }
            _ => {}
        }
    }
    let baits = &ctx.baits;
    for rule in canary_rules::runtime_rules() {
        let severity: Severity = rule.severity.parse().unwrap_or(Severity::Medium);
        for (pid, obs) in observed {
            let Some(hit) = check(&rule.id, obs, &ctx) else {
                continue;
            };
            if !seen.insert((rule.id.clone(), hit.event.clone())) {
                continue;
            }
            out.push(Finding {
                rule_id: rule.id.clone(),
                category: Category::Runtime,
                severity,
                confidence: Confidence::High,
                title: rule.title.clone(),
                fingerprint: Finding::fingerprint_of(&rule.id, "runtime", hit.key.as_bytes()),
                location: Location::Runtime {
                    event: scrub(&hit.event, baits),
                    pid: *pid,
                },
                // Cut after the redaction, so no part of a secret is left at the cut.
                evidence: scrub(&hit.evidence, baits).chars().take(240).collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An example: one observation, or a list of them.
    fn parse(example: &str) -> Vec<(Option<u32>, Observation)> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(Observation),
            Many(Vec<Observation>),
        }
        let v: OneOrMany =
            serde_json::from_str(example).unwrap_or_else(|e| panic!("{example}: {e}"));
        match v {
            OneOrMany::One(o) => vec![(None, o)],
            OneOrMany::Many(v) => v.into_iter().map(|o| (None, o)).collect(),
        }
    }

    #[test]
    fn every_rule_has_logic_and_its_examples_hold() {
        for rule in canary_rules::runtime_rules() {
            assert!(
                !rule.positive.is_empty(),
                "{} has no positive example",
                rule.id
            );
            for ex in &rule.positive {
                let f = findings(&parse(ex));
                assert!(
                    f.iter().any(|f| f.rule_id == rule.id),
                    "{}: positive example did not fire: {ex}",
                    rule.id
                );
            }
            for ex in &rule.negative {
                let f = findings(&parse(ex));
                assert!(
                    !f.iter().any(|f| f.rule_id == rule.id),
                    "{}: negative example fired: {ex}",
                    rule.id
                );
            }
        }
    }

    #[test]
    fn ids_are_unique_and_severities_valid() {
        let mut ids = HashSet::new();
        for r in canary_rules::runtime_rules() {
            assert!(ids.insert(r.id.clone()), "duplicate {}", r.id);
            assert!(r.id.starts_with("runtime/"), "{}", r.id);
            r.severity.parse::<Severity>().unwrap();
        }
    }

    #[test]
    fn captured_secrets_stay_redacted_in_evidence() {
        let token = "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";
        let obs = Observation::Tcp {
            ip: "169.254.169.254".into(),
            port: 80,
            name: None,
            protocol: "http".into(),
            first: format!("POST / HTTP/1.1\r\n\r\ntoken={token}"),
            sni: None,
        };
        let f = findings(&[(Some(3), obs)]);
        assert_eq!(f.len(), 1);
        assert!(!f[0].evidence.contains(token), "{}", f[0].evidence);
        assert_eq!(
            f[0].location,
            Location::Runtime {
                event: "tcp 169.254.169.254:80".into(),
                pid: Some(3)
            }
        );
    }
}
