//! `canary run-sandbox TARGET`: unpack the image, run its entrypoint in the sandbox, and
//! print the run as a timeline of JSON lines (docs/sandbox.md).

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use canary_analyzer::image::Platform;
use canary_analyzer::report::printable;
use canary_analyzer::source::Target;
use canary_sandbox::{Exit, Limits};

use super::RegistryArgs;

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// The image to run, as for `canary scan`.
    pub target: String,
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Platform,
    /// Wall-clock budget of the run, in seconds; the whole process tree is killed then.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub timeout: u64,
    /// Size of the tmpfs that takes everything the run writes, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub disk_mb: u64,
    /// Memory limit of the run, in MiB (where control groups can be made).
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub memory_mb: u64,
    /// CPU limit of the run, in cores.
    #[arg(long, default_value_t = 1.0, value_name = "CORES")]
    pub cpus: f64,
    /// Process limit of the run.
    #[arg(long, default_value_t = 512)]
    pub pids: u64,
    /// What the sinkhole answers every HTTP request with (other than the cloud metadata
    /// service's), instead of a 404: a second stage for a dropper to fetch; at most 1 MiB.
    #[arg(long, value_name = "FILE")]
    pub http_body: Option<PathBuf>,
    /// The Content-Type of `--http-body`.
    #[arg(
        long,
        default_value = "application/octet-stream",
        value_name = "TYPE",
        requires = "http_body"
    )]
    pub http_content_type: String,
    /// Write the timeline to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Bytes of each output stream shown in the timeline.
const SHOWN: usize = 4096;

pub fn run(a: SandboxArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| p.display().to_string())?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut emit = |event: &str, mut v: Value| -> anyhow::Result<()> {
        v["t_ms"] = json!(started.elapsed().as_millis() as u64);
        v["event"] = json!(event);
        writeln!(out, "{v}")?;
        Ok(())
    };
    let target = Target::parse(&a.target)?;
    let http = http_reply(a.http_body.as_deref(), &a.http_content_type, "--http-body")?;
    let client = a.registry.client()?;
    let images = super::runtime()?
        .block_on(canary_analyzer::open_target(
            &target,
            &client,
            &a.platform,
            false,
        ))
        .with_context(|| format!("cannot open {}", target.display()))?;
    let image = images
        .first()
        .with_context(|| format!("{} holds no image", target.display()))?;
    let cache = a.registry.sandbox_cache();
    let limits = limits_of(a.timeout, a.disk_mb, a.memory_mb, a.cpus, a.pids);
    let init = std::env::current_exe().context("the canary binary's own path")?;
    let run = canary_sandbox::run_image(image, &cache, limits.clone(), http.as_ref(), &init)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (rootfs, spec, o) = (&run.rootfs, &run.spec, &run.outcome);
    emit(
        "rootfs",
        json!({
            "image": image.name,
            "manifest_digest": image.manifest_digest,
            "layers": image.layers.len(),
            "cached": rootfs.cached,
            "bytes": rootfs.bytes,
            "entries": rootfs.entries,
            "skipped": rootfs.skipped,
        }),
    )?;
    // Everything the timeline shows goes through this: the secret catalog, the run's
    // canary values, and the image's env values.
    let needles: Vec<String> = spec
        .bait
        .iter()
        .flat_map(|b| b.needles())
        .chain(
            spec.env
                .iter()
                .filter_map(|e| e.split_once('=').map(|(_, v)| v.to_string())),
        )
        .collect();
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    let scrub = |s: &str| printable(&canary_sandbox::runtime::scrub(s, &needles)).into_owned();
    // Env values may hold secrets: the timeline names the variables only.
    let env_names: Vec<&str> = spec
        .env
        .iter()
        .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k))
        .collect();
    emit(
        "start",
        json!({
            "argv": spec.argv.iter().map(|s| scrub(s)).collect::<Vec<_>>(),
            "env": env_names,
            "workdir": spec.workdir,
            "user": format!("{}:{}", spec.uid, spec.gid),
            "timeout_s": a.timeout,
        }),
    )?;
    if let Some(imports) = &run.wasm_imports {
        // A WASI module, run under wasmtime: what it asks of its host.
        emit(
            "wasm",
            json!({ "imports": imports.iter().map(|i| scrub(i)).collect::<Vec<_>>() }),
        )?;
    }
    for n in &run.notes {
        emit("note", json!({ "message": n }))?;
    }
    if let Some(d) = o.start_to_exec {
        emit("exec", json!({ "after_ms": d.as_secs_f64() * 1e3 }))?;
    }
    for e in &o.events {
        let mut v = serde_json::to_value(e)?;
        // `t_ms` of the timeline is since the command started; the call's own clock
        // starts with the sandbox.
        if let Some(t) = v.as_object_mut().and_then(|m| m.remove("t_ms")) {
            v["run_ms"] = t;
        }
        for key in ["path", "addr", "name", "fd_target", "from", "to", "detail"] {
            if let Some(s) = v[key].as_str() {
                v[key] = json!(scrub(s));
            }
        }
        if let Some(argv) = v["argv"].as_array_mut() {
            for a in argv.iter_mut() {
                if let Some(s) = a.as_str() {
                    *a = json!(scrub(s));
                }
            }
        }
        emit("syscall", v)?;
    }
    for e in &o.net_events {
        use canary_sandbox::sinkhole::NetEvent;
        let v = match e {
            NetEvent::Dns {
                t_ms,
                name,
                qtype,
                answer,
            } => json!({
                "run_ms": t_ms,
                "kind": "dns",
                "name": scrub(name),
                "qtype": qtype,
                "answer": answer,
            }),
            NetEvent::Tcp {
                t_ms,
                dst_ip,
                dst_port,
                dst_name,
                protocol,
                first_bytes,
                tls,
                sni,
                http,
            } => json!({
                "run_ms": t_ms,
                "kind": "tcp",
                "dst_ip": dst_ip,
                "dst_port": dst_port,
                "dst_name": dst_name.as_deref().map(scrub),
                "protocol": protocol,
                "tls": tls,
                "sni": sni.as_deref().map(scrub),
                // Paths and agents can carry tokens: scrubbed like the bytes.
                "http": http.as_ref().map(|h| json!({
                    "method": scrub(&h.method),
                    "path": scrub(&h.path),
                    "host": h.host.as_deref().map(scrub),
                    "user_agent": h.user_agent.as_deref().map(scrub),
                })),
                // What a program sends may be stolen credentials: shown redacted.
                "first_bytes": scrub(&String::from_utf8_lossy(first_bytes)),
            }),
        };
        emit("network", v)?;
    }
    for p in &o.processes {
        emit(
            "cpu",
            json!({ "pid": p.pid, "comm": scrub(&p.comm), "cpu_ms": p.cpu_ms }),
        )?;
    }
    if o.events_dropped > 0 {
        emit(
            "note",
            json!({ "message": format!("{} more calls traced and not kept", o.events_dropped) }),
        )?;
    }
    for (stream, bytes, dropped) in [
        ("stdout", &o.stdout, o.stdout_dropped),
        ("stderr", &o.stderr, o.stderr_dropped),
    ] {
        if bytes.is_empty() {
            continue;
        }
        let shown = &bytes[..bytes.len().min(SHOWN)];
        emit(
            "output",
            json!({
                "stream": stream,
                "bytes": bytes.len() as u64 + dropped,
                "text": scrub(&String::from_utf8_lossy(shown)),
                "truncated": bytes.len() > SHOWN || dropped > 0,
            }),
        )?;
    }
    if let Some(cg) = &o.cgroup {
        emit(
            "resources",
            json!({
                "cpu_ms": cg.cpu_ns / 1_000_000,
                "memory_peak_bytes": cg.memory_peak_bytes,
                "oom_kills": cg.oom_kills,
            }),
        )?;
    }
    for f in canary_sandbox::runtime::findings(&run.observed) {
        emit("finding", serde_json::to_value(&f)?)?;
    }
    let exit = serde_json::to_value(&o.exit)?;
    emit(
        "exit",
        json!({ "exit": exit, "wall_ms": o.wall.as_millis() as u64 }),
    )?;
    Ok(match o.exit {
        Exit::SetupFailed { .. } => 2,
        _ => 0,
    })
}

/// The sinkhole's HTTP reply from the body file the option `flag` named, if any.
pub(super) fn http_reply(
    body: Option<&std::path::Path>,
    content_type: &str,
    flag: &str,
) -> anyhow::Result<Option<canary_sandbox::HttpReply>> {
    body.map(|p| canary_sandbox::HttpReply::from_file(p, content_type))
        .transpose()
        .map_err(|e| anyhow::anyhow!("{flag} {e}"))
}

/// The sandbox limits from the command-line values.
pub fn limits_of(timeout: u64, disk_mb: u64, memory_mb: u64, cpus: f64, pids: u64) -> Limits {
    Limits {
        wall: Duration::from_secs(timeout.max(1)),
        disk_bytes: disk_mb.max(1) << 20,
        cgroup: canary_sandbox::CgroupLimits {
            memory_bytes: memory_mb.max(4) << 20,
            pids: pids.max(1),
            cpus: cpus.clamp(0.01, 1024.0),
        },
        ..Limits::default()
    }
}
