//! The supervisor side of a run: write the init's configuration, start it, capture the
//! output within bounds, enforce the wall-clock budget, and read how the run ended.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cgroup::{Cgroup, CgroupLimits, CgroupStats};

/// Resource limits of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock budget; the whole process tree is killed when it runs out.
    pub wall: Duration,
    /// Size of the tmpfs that holds everything the run writes (the overlay's upper layer).
    pub disk_bytes: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// Bytes of stdout and of stderr kept; the rest is counted, not stored.
    pub output_bytes: usize,
    /// CPU, memory and pids, where control groups can be made.
    pub cgroup: CgroupLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(30),
            disk_bytes: 256 << 20,
            open_files: 1024,
            output_bytes: 1 << 20,
            cgroup: CgroupLimits::default(),
        }
    }
}

/// What to run and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// The image's root filesystem, read-only for the run (it is the overlay's lower
    /// layer; writes land in the tmpfs).
    pub rootfs: PathBuf,
    /// Entrypoint + cmd, as a container runtime joins them. `argv[0]` is looked up in
    /// `PATH` of `env` inside the rootfs when it has no `/`.
    pub argv: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Working directory inside the rootfs (created if missing, as runtimes do).
    pub workdir: String,
    /// User and group inside the sandbox. Without root on the host only 0 exists
    /// inside (one id is mapped), and the run says so in [`Outcome::notes`].
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub limits: Limits,
    /// Trace `execve`/`execveat`/`connect` of every process (see [`crate::trace`]).
    #[serde(default = "yes")]
    pub trace: bool,
    /// Canary credentials planted in the run (see [`crate::bait`]).
    #[serde(default)]
    pub bait: Option<crate::bait::Bait>,
    /// A directory of the caller's for this run's scratch files (created; emptied of
    /// what the run put there when it ends).
    pub work_dir: PathBuf,
    /// What the sinkhole answers HTTP requests with (other than the cloud metadata
    /// service's): this body, else a 404.
    #[serde(default)]
    pub http_reply: Option<HttpReply>,
}

/// A body the sinkhole serves to every HTTP request of a run: a second stage to hand a
/// dropper, to see what it does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpReply {
    pub content_type: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// Largest body served: a script or a small program, held in memory.
    pub const MAX_BODY: u64 = 1 << 20;

    /// The body read from `path` (at most [`HttpReply::MAX_BODY`] bytes).
    pub fn from_file(path: &Path, content_type: &str) -> Result<HttpReply, String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut body = Vec::new();
        f.take(Self::MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if body.len() as u64 > Self::MAX_BODY {
            return Err(format!(
                "{}: larger than the {} KiB an HTTP reply may be",
                path.display(),
                Self::MAX_BODY >> 10
            ));
        }
        if content_type.is_empty() || content_type.chars().any(|c| c.is_control()) {
            return Err(format!("content type {content_type:?}: not a header value"));
        }
        Ok(HttpReply {
            content_type: content_type.to_string(),
            body,
        })
    }
}

fn yes() -> bool {
    true
}

/// How the entrypoint ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Exit {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// The wall-clock budget ran out and the process tree was killed.
    TimedOut,
    /// A WASI module stopped on a trap (out-of-bounds access, `unreachable`, a memory
    /// limit, …); the message is wasmtime's.
    Trapped {
        message: String,
    },
    /// The sandbox could not be set up or the entrypoint not started; the message says
    /// which step failed and why.
    SetupFailed {
        message: String,
    },
}

/// One process of the run and the CPU time it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCpu {
    /// Its pid inside the run.
    pub pid: u32,
    /// Its name as `ps` shows it (what it renamed itself to, if it did).
    pub comm: String,
    /// User and system CPU time, in milliseconds.
    pub cpu_ms: u64,
    /// The file it runs, as `/proc/PID/exe` says (`/memfd:x (deleted)` for a program
    /// that is not on disk, however it was started).
    #[serde(default)]
    pub exe: String,
}

/// Samples CPU time per process of a control group.
struct CpuSampler {
    procs: Option<PathBuf>,
    ticks_per_s: u64,
    /// Our own pid namespace.
    own_ns: Option<PathBuf>,
    /// By host pid and start time (a reused pid is another process).
    seen: std::collections::HashMap<(u32, u64), ProcessCpu>,
    next: Instant,
}

impl CpuSampler {
    fn new(procs: Option<PathBuf>) -> CpuSampler {
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        CpuSampler {
            procs,
            ticks_per_s: if ticks > 0 { ticks as u64 } else { 100 },
            own_ns: std::fs::read_link("/proc/self/ns/pid").ok(),
            seen: Default::default(),
            next: Instant::now(),
        }
    }

    /// Read every process of the group, when the next sample is due.
    fn sample(&mut self) {
        let Some(procs) = &self.procs else { return };
        if Instant::now() < self.next {
            return;
        }
        self.next = Instant::now() + Duration::from_millis(200);
        let Ok(list) = std::fs::read_to_string(procs) else {
            return;
        };
        for pid in list
            .lines()
            .filter_map(|l| l.trim().parse::<u32>().ok())
            .take(4096)
        {
            // As bytes: a process name that is not UTF-8 must not hide the process.
            let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let stat = String::from_utf8_lossy(&stat);
            // `pid (comm) state ...`: comm may hold spaces and parentheses.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = stat[open + 1..close].to_string();
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            // utime and stime: fields 14 and 15 of the line, 12th and 13th after comm.
            let cpu_ms = (ticks(11) + ticks(12)) * 1000 / self.ticks_per_s;
            let start = ticks(19);
            // Only processes of the run's pid namespace: the sandbox's own helper in
            // the group lives in ours.
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
            if ns.is_none() || ns == self.own_ns {
                continue;
            }
            let status = std::fs::read(format!("/proc/{pid}/status"))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let ns_pid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last()?.parse().ok())
                .unwrap_or(0);
            let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let e = self.seen.entry((pid, start)).or_insert(ProcessCpu {
                pid: ns_pid,
                comm: comm.clone(),
                cpu_ms: 0,
                exe: exe.clone(),
            });
            e.comm = comm;
            e.cpu_ms = e.cpu_ms.max(cpu_ms);
            if !exe.is_empty() {
                e.exe = exe;
            }
        }
    }

    /// The processes that used CPU, most first, at most 64.
    fn finish(self) -> Vec<ProcessCpu> {
        // Those that used CPU, and any running a program that is not on disk.
        let mut v: Vec<ProcessCpu> = self
            .seen
            .into_values()
            .filter(|p| p.cpu_ms > 0 || p.exe.starts_with("/memfd:"))
            .collect();
        v.sort_by(|a, b| b.cpu_ms.cmp(&a.cpu_ms).then(a.pid.cmp(&b.pid)));
        v.truncate(64);
        v
    }
}

/// What one run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Output bytes beyond [`Limits::output_bytes`], counted and dropped.
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    /// From the start of the run to the entrypoint's `execve`, when it got that far.
    pub start_to_exec: Option<Duration>,
    pub wall: Duration,
    /// `execve`, `execveat` and `connect` calls of every process of the run, in order.
    pub events: Vec<crate::trace::Event>,
    /// Calls beyond [`crate::trace::MAX_EVENTS`], counted and dropped.
    pub events_dropped: u64,
    /// Files the run left in its filesystem (executables copied under
    /// `work_dir/dropped/`, which the caller removes with the work dir).
    pub written: Vec<crate::written::Written>,
    /// Files of the image the run deleted.
    pub deleted: Vec<String>,
    /// CPU time per process of the run, most first (sampled from its control group
    /// every 200 ms: a process that lived less than that may be missing).
    #[serde(default)]
    pub processes: Vec<ProcessCpu>,
    /// DNS queries and TCP connections the sinkhole caught.
    pub net_events: Vec<crate::sinkhole::NetEvent>,
    /// What the run's control group measured; `None` without one (see `notes`).
    pub cgroup: Option<CgroupStats>,
    /// What the run could not do as asked (e.g. a user id that cannot be mapped).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the sandbox init {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("the sandbox needs an argv")]
    NoArgv,
}

/// What the init reads: the spec plus what only the supervisor knows.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InitConfig {
    pub spec: RunSpec,
    /// Where the init writes how the run ended.
    pub status_path: PathBuf,
    /// A directory the init mounts the tmpfs on.
    pub scratch: PathBuf,
    /// `cgroup.procs` files the init joins before anything else.
    pub cgroup_procs: Vec<PathBuf>,
    /// Where the ns child lists what the run wrote ([`crate::written`]).
    pub written_path: PathBuf,
}

/// What the init wrote when the entrypoint ended (or could not start).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InitStatus {
    pub exit: Exit,
    /// Nanoseconds from the init's start to the entrypoint's `execve`.
    pub exec_after_ns: Option<u64>,
    pub notes: Vec<String>,
    #[serde(default)]
    pub events: Vec<crate::trace::Event>,
    #[serde(default)]
    pub events_dropped: u64,
    #[serde(default)]
    pub net_events: Vec<crate::sinkhole::NetEvent>,
}

/// Run `spec` in a sandbox. `init_exe` is the `canary` binary (or any binary whose
/// `main` hands `__sandbox-init CONFIG` to [`crate::init_main`]).
pub fn run(spec: &RunSpec, init_exe: &Path) -> Result<Outcome, SandboxError> {
    if spec.argv.is_empty() {
        return Err(SandboxError::NoArgv);
    }
    let started = Instant::now();
    let work = |source: std::io::Error| SandboxError::WorkDir {
        path: spec.work_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&spec.work_dir).map_err(work)?;
    let scratch = spec.work_dir.join("scratch");
    std::fs::create_dir_all(&scratch).map_err(work)?;
    let status_path = spec.work_dir.join("status.json");
    let _ = std::fs::remove_file(&status_path);
    let config_path = spec.work_dir.join("init.json");
    let mut notes = Vec::new();
    // Unique per run of this process: two runs must never share a group.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cgroup_name = format!("canary-{}-{n}", std::process::id());
    let cgroup = match Cgroup::create(&cgroup_name, &spec.limits.cgroup) {
        Ok(c) => Some(c),
        Err(why) => {
            notes.push(format!(
                "no CPU, memory or pids limits (no control group): {why}"
            ));
            None
        }
    };
    let config = InitConfig {
        spec: spec.clone(),
        status_path: status_path.clone(),
        scratch,
        cgroup_procs: cgroup.as_ref().map(Cgroup::procs_files).unwrap_or_default(),
        written_path: spec.work_dir.join("written.json"),
    };
    let json = serde_json::to_vec(&config).expect("the init config serializes");
    std::fs::write(&config_path, json).map_err(work)?;

    let spawned = Command::new(init_exe)
        .arg(crate::INIT_SUBCOMMAND)
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(source) => {
            if let Some(cg) = cgroup {
                cg.remove();
            }
            return Err(SandboxError::Spawn {
                exe: init_exe.to_path_buf(),
                source,
            });
        }
    };
    let cap = spec.limits.output_bytes;
    let out = child.stdout.take().map(|r| capture(r, cap));
    let err = child.stderr.take().map(|r| capture(r, cap));

    // The init enforces the budget itself and still reports what it saw; this is the
    // backstop should the init hang.
    let deadline = started + spec.limits.wall + Duration::from_secs(5);
    let mut timed_out = false;
    let mut sampler = CpuSampler::new(
        cgroup
            .as_ref()
            .and_then(|c| c.procs_files().into_iter().next()),
    );
    loop {
        sampler.sample();
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                // The init's death takes the namespaces' processes with it.
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let wall = started.elapsed();
    let processes = sampler.finish();
    let (stdout, stdout_dropped) = out.map(join_capture).unwrap_or_default();
    let (stderr, stderr_dropped) = err.map(join_capture).unwrap_or_default();
    let listing: crate::written::Listing = std::fs::read(spec.work_dir.join("written.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if listing.truncated {
        notes.push(
            "the run wrote more than 10,000 files or deeper than 64 directories: not all were listed"
                .into(),
        );
    }
    let written = listing.files;
    let deleted = listing.deleted;
    let _ = std::fs::remove_file(spec.work_dir.join("written.json"));
    let status: Option<InitStatus> = std::fs::read(&status_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let status = match (timed_out, status) {
        (false, Some(s)) => s,
        (true, _) => InitStatus {
            exit: Exit::TimedOut,
            exec_after_ns: None,
            notes: vec!["the sandbox init did not end at the deadline and was killed".into()],
            events: Vec::new(),
            events_dropped: 0,
            net_events: Vec::new(),
        },
        (false, None) => InitStatus {
            exit: Exit::SetupFailed {
                message: "the sandbox init ended without a status".into(),
            },
            exec_after_ns: None,
            notes: Vec::new(),
            events: Vec::new(),
            events_dropped: 0,
            net_events: Vec::new(),
        },
    };
    let InitStatus {
        exit,
        exec_after_ns,
        notes: init_notes,
        events,
        events_dropped,
        net_events,
    } = status;
    notes.extend(init_notes);
    let cgroup = cgroup.map(|cg| {
        let stats = cg.stats();
        cg.remove();
        stats
    });
    // The config and status are ours; the scratch tmpfs went with the mount namespace.
    let _ = std::fs::remove_file(&config_path);
    let _ = std::fs::remove_file(&status_path);
    Ok(Outcome {
        exit,
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
        start_to_exec: exec_after_ns.map(Duration::from_nanos),
        wall,
        events,
        events_dropped,
        written,
        deleted,
        processes,
        net_events,
        cgroup,
        notes,
    })
}

type Capture = std::thread::JoinHandle<(Vec<u8>, u64)>;

/// Read a pipe to its end, keeping the first `cap` bytes.
fn capture(mut r: impl Read + Send + 'static, cap: usize) -> Capture {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut dropped = 0u64;
        let mut buf = [0u8; 16 << 10];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let keep = n.min(cap - kept.len().min(cap));
                    kept.extend_from_slice(&buf[..keep]);
                    dropped += (n - keep) as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        (kept, dropped)
    })
}

/// The capture of a stream, once it ends; a stream still open 5 s after the run
/// (something of the run survived it, which the teardown should prevent) is given up.
fn join_capture(h: Capture) -> (Vec<u8>, u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if h.is_finished() {
        h.join().unwrap_or_default()
    } else {
        (
            b"[output still open after the run; not waited for]".to_vec(),
            0,
        )
    }
}
