//! The sandbox on real namespaces: a static probe (tests/sandbox/probe.c, built here with
//! gcc) runs in a rootfs made for the test, and every way out it tries must fail.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::probe::probe;

use canary_sandbox::sinkhole::NetEvent;
use canary_sandbox::{Exit, Limits, Outcome, RunSpec, run};

struct Dirs {
    _dir: tempfile::TempDir,
    rootfs: PathBuf,
    work: PathBuf,
    outside: PathBuf,
}

/// A rootfs holding the probe, plus a work dir and a host file that must stay unseen.
fn sandbox_dirs() -> Dirs {
    let dir = scratch("canary-sbx-");
    let rootfs = dir.path().join("rootfs");
    for d in ["bin", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(probe(), rootfs.join("bin/probe")).unwrap();
    let outside = dir.path().join("host-secret");
    std::fs::write(&outside, "host only").unwrap();
    Dirs {
        work: dir.path().join("work"),
        rootfs,
        outside,
        _dir: dir,
    }
}

fn spec(b: &Dirs, args: &[&str]) -> RunSpec {
    RunSpec {
        rootfs: b.rootfs.clone(),
        argv: std::iter::once("probe")
            .chain(args.iter().copied())
            .map(String::from)
            .collect(),
        env: vec![
            "PATH=/bin".into(),
            "CANARY_PROBE=from-the-image-config".into(),
        ],
        workdir: "/srv/app".into(),
        uid: 0,
        gid: 0,
        hostname: "sandbox-test".into(),
        limits: Limits {
            wall: Duration::from_secs(20),
            ..Limits::default()
        },
        trace: true,
        bait: None,
        work_dir: b.work.clone(),
        http_reply: None,
    }
}

fn go(spec: &RunSpec) -> Outcome {
    run(spec, Path::new(env!("CARGO_BIN_EXE_canary"))).expect("the sandbox starts")
}

fn value<'a>(o: &'a Outcome, key: &str) -> &'a str {
    let out = std::str::from_utf8(&o.stdout).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the probe's output: {out:?} {o:?}"))
}

#[test]
fn the_entrypoint_runs_as_pid_1_in_its_own_world() {
    let b = sandbox_dirs();
    let outside = b.outside.to_string_lossy().into_owned();
    let o = go(&spec(&b, &["id", &outside]));
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    assert_eq!(value(&o, "pid"), "1");
    assert_eq!(value(&o, "procs"), "1", "only the probe in its /proc");
    assert_eq!(value(&o, "uid"), "0");
    assert_eq!(value(&o, "hostname"), "sandbox-test");
    assert_eq!(value(&o, "cwd"), "/srv/app");
    assert_eq!(value(&o, "env"), "from-the-image-config");
    assert_eq!(value(&o, "nnp"), "1");
    assert_eq!(value(&o, "host_marker"), "absent", "a host path is visible");
    assert!(o.start_to_exec.is_some());
    // The workdir was made in the overlay, not in the image's rootfs.
    assert!(!b.rootfs.join("srv").exists());
}

#[test]
fn an_image_user_is_honoured_as_root_and_noted_otherwise() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["id"]);
    (s.uid, s.gid) = (1000, 1000);
    let o = go(&s);
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    if nix_is_root() {
        assert_eq!(value(&o, "uid"), "1000");
        assert_eq!(value(&o, "gid"), "1000");
        assert!(o.notes.is_empty(), "{:?}", o.notes);
    } else {
        assert_eq!(value(&o, "uid"), "0");
        assert!(o.notes.iter().any(|n| n.contains("1000")), "{:?}", o.notes);
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

#[test]
fn escape_routes_are_closed() {
    // PostgreSQL listens on the host's loopback: reachable here, not from the sandbox.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", 5432)).is_ok(),
        "the host's PostgreSQL should be up for this test"
    );
    let b = sandbox_dirs();
    let o = go(&spec(&b, &["escape", "5432"]));
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    let eperm = "Operation not permitted";
    for call in [
        "mount",
        "unshare_user",
        "unshare_net",
        "chroot",
        "ptrace_attach",
        "init_module",
        "bpf",
        "keyctl",
        "kexec_load",
        "reboot",
    ] {
        assert_eq!(value(&o, call), eperm, "{call}");
    }
    for call in ["sysrq", "core_pattern", "tiocsti", "x32", "io_uring"] {
        assert_ne!(value(&o, call), "ok", "{call}");
    }
    // A container runtime's default capabilities, no more (CAP_SYS_ADMIN, NET_ADMIN, …).
    assert_eq!(value(&o, "capbnd").trim(), "00000000a80425fb");
    if nix_is_root() {
        // Our own device nodes: a chmod inside changes nothing of the host's.
        assert_eq!(value(&o, "chmod_dev_null"), "ok");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata("/dev/null").unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666, "the host's /dev/null was changed");
    } else {
        assert_ne!(value(&o, "chmod_dev_null"), "ok");
    }
    assert_ne!(value(&o, "connect_loopback"), "ok");
    // Anything else lands in the sinkhole, inside the run's own network namespace (it
    // has no other interface, so nothing else could have answered).
    assert_eq!(value(&o, "connect_outside"), "ok");
    assert!(
        o.events.iter().any(|e| matches!(&e.call,
            canary_sandbox::trace::Call::Connect { addr, port: Some(5432), .. } if addr == "10.0.0.1")),
        "{:?}",
        o.events
    );
    assert_eq!(value(&o, "fork"), "ok");
    // The escape routes are refused by the tracer, which records them.
    let denied: Vec<(&str, &str)> = o
        .events
        .iter()
        .filter_map(|e| match &e.call {
            canary_sandbox::trace::Call::Denied { syscall, detail } => {
                Some((syscall.as_str(), detail.as_str()))
            }
            _ => None,
        })
        .collect();
    assert!(
        denied.contains(&("mount", "tmpfs on /mnt type tmpfs")),
        "{denied:?}"
    );
    for call in [
        "unshare",
        "chroot",
        "ptrace",
        "init_module",
        "bpf",
        "kexec_load",
    ] {
        assert!(denied.iter().any(|(c, _)| *c == call), "{call}: {denied:?}");
    }
    assert!(
        denied.contains(&("ptrace", "request 16 pid 1")),
        "{denied:?}"
    );
    // Untraced, the deny-list refuses the same calls.
    let mut untraced = spec(&b, &["escape", "5432"]);
    untraced.trace = false;
    let o = go(&untraced);
    for call in ["mount", "unshare_user", "chroot", "ptrace_attach", "bpf"] {
        assert_eq!(value(&o, call), eperm, "untraced {call}");
    }
    assert!(o.events.is_empty());
}

/// Opens of sensitive files are seen by fanotify (as root), with the process, however
/// they hide from access times; the sandbox's own opens are not reported.
#[test]
fn sensitive_reads_are_seen_as_root() {
    use canary_sandbox::trace::Call;
    let b = sandbox_dirs();
    std::fs::write(
        b.rootfs.join("etc/shadow"),
        "root:$6$salt$hash:19000:0:99999:7:::\n",
    )
    .unwrap();
    let o = go(&spec(&b, &["snoop"]));
    assert_eq!(value(&o, "/etc/shadow"), "read", "{o:?}");
    let reads: Vec<(u32, &str)> = o
        .events
        .iter()
        .filter_map(|e| match &e.call {
            Call::Read { path } => Some((e.pid, path.as_str())),
            _ => None,
        })
        .collect();
    if !nix_is_root() {
        assert!(reads.is_empty());
        assert!(
            o.notes.iter().any(|n| n.contains("fanotify")),
            "{:?}",
            o.notes
        );
        return;
    }
    assert_eq!(reads, vec![(1, "/etc/shadow")], "{:?}", o.events);

    // Through `canary scan --runtime`: the planted bait read with O_NOATIME is still
    // a bait read, with its pid; /etc/shadow a low sensitive read.
    use canary_analyzer::fixtures::{Compression, ImageBuilder, LayerBuilder};
    let dir = scratch("canary-sbx-snoop-");
    let archive = dir.path().join("snoop.tar");
    ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file_mode("bin/probe", std::fs::read(probe()).unwrap(), 0o755)
                .file("etc/shadow", "root:*:19000:0:99999:7:::\n")
                .dir("tmp")
                .build(Compression::Gzip),
        )
        .entrypoint(&["/bin/probe"])
        .cmd(&["snoop"])
        .build()
        .write_docker_archive(&archive, "snoop:1", true)
        .unwrap();
    let (_, report) = scan_runtime(dir.path(), &archive);
    let f = finding(&report, "runtime/bait-read");
    assert_eq!(f["location"]["event"], "read /root/.aws/credentials");
    assert_eq!(f["location"]["pid"], 1, "{f}");
    let f = finding(&report, "runtime/sensitive-read");
    assert_eq!(f["severity"], "low");
    assert_eq!(f["location"]["event"], "read /etc/shadow");
}

/// The sinkhole answers HTTP with the body the caller configured, else a 404.
#[test]
fn the_sinkhole_serves_a_configured_http_body() {
    let b = sandbox_dirs();
    let o = go(&spec(&b, &["stage2"]));
    assert_eq!(value(&o, "stage2"), "none");
    let mut s = spec(&b, &["stage2"]);
    s.http_reply = Some(canary_sandbox::HttpReply {
        content_type: "text/x-shellscript".into(),
        body: b"echo second stage\nexit 0\n".to_vec(),
    });
    let o = go(&s);
    assert_eq!(value(&o, "stage2"), "echo second stage");
    let big = b.work.with_extension("big");
    std::fs::write(
        &big,
        vec![b'x'; (canary_sandbox::HttpReply::MAX_BODY + 1) as usize],
    )
    .unwrap();
    let e = canary_sandbox::HttpReply::from_file(&big, "text/plain").unwrap_err();
    assert!(e.contains("larger than the 1024 KiB"), "{e}");
}

/// Opens for writing, unlinks, renames, chmods and signals are traced, with paths made
/// absolute from the caller's working directory; the rules that read them fire.
#[test]
fn file_operations_and_signals_are_traced() {
    use canary_sandbox::trace::Call;
    let b = sandbox_dirs();
    let o = go(&spec(&b, &["hide"]));
    assert_eq!(value(&o, "worker"), "0", "{o:?}");
    let calls: Vec<&Call> = o.events.iter().map(|e| &e.call).collect();
    for want in [
        Call::Open {
            path: "/var/spool/cron/crontabs/root".into(),
            flags: "wronly,creat,append".into(),
        },
        Call::Chmod {
            path: "/tmp/.h/worker".into(),
            mode: "0755".into(),
        },
        Call::Unlink {
            path: "/tmp/.h/worker".into(),
        },
        Call::Rename {
            from: "/tmp/.h/notes".into(),
            to: "/tmp/.h/.notes".into(),
        },
    ] {
        assert!(calls.contains(&&want), "{want:?} in {calls:#?}");
    }
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, Call::Kill { signal: 0, target } if *target > 0)),
        "{calls:#?}"
    );
    // Reads never stop: the probe opened /proc/self/exe to copy it.
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Open { path, .. } if path.contains("proc"))),
        "{calls:#?}"
    );

    // A payload written to /dev/shm (outside the overlay) and run; a datagram with a
    // destination is traced, a send on a connected socket is not.
    let o = go(&spec(&b, &["shm"]));
    assert_eq!(value(&o, "shm_payload"), "0", "{o:?}");
    let sends: Vec<&Call> = o
        .events
        .iter()
        .map(|e| &e.call)
        .filter(|c| matches!(c, Call::SendTo { .. }))
        .collect();
    assert_eq!(
        sends,
        vec![&Call::SendTo {
            family: "inet".into(),
            addr: "10.9.8.7".into(),
            port: Some(3333)
        }]
    );
    let dir = scratch("canary-sbx-shm-");
    let (_, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["shm"]));
    assert_eq!(
        finding(&report, "runtime/dropped-exec")["location"]["event"],
        "exec /dev/shm/.x"
    );

    let dir = scratch("canary-sbx-hide-");
    let (_, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["hide"]));
    let f = finding(&report, "runtime/self-delete");
    assert_eq!(f["location"]["event"], "unlink /tmp/.h/worker");
    assert!(f["location"]["pid"].as_u64().is_some(), "{f}");
    let f = finding(&report, "runtime/persistence-write");
    assert_eq!(
        f["location"]["event"],
        "write /var/spool/cron/crontabs/root"
    );
    // The tracer saw which process wrote it.
    assert_eq!(f["location"]["pid"], 1, "{f}");

    let (_, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["escape"]));
    let f = finding(&report, "runtime/escape-attempt");
    assert_eq!(f["severity"], "high");
    let events: Vec<&str> = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "runtime/escape-attempt")
        .filter_map(|f| f["location"]["event"].as_str())
        .collect();
    for want in ["mount (refused)", "ptrace (refused)", "bpf (refused)"] {
        assert!(events.contains(&want), "{events:?}");
    }
    assert!(
        !events.iter().any(|e| e.starts_with("unshare")),
        "{events:?}"
    );
}

#[test]
fn the_budget_kills_a_process_that_ignores_sigterm() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["spin"]);
    s.limits.wall = Duration::from_millis(1500);
    let o = go(&s);
    assert_eq!(o.exit, Exit::TimedOut, "{o:?}");
    assert_eq!(o.stdout, b"spinning\n");
    assert!(o.wall < Duration::from_secs(10), "{:?}", o.wall);
}

/// Processes whose name is `name`, on the whole host.
fn host_processes_named(name: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}

#[test]
fn no_process_outlives_the_run() {
    let b = sandbox_dirs();
    let name = format!("ling{}", std::process::id() % 100_000);
    let o = go(&spec(&b, &["daemon", &name]));
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    // The pid namespace dies with its pid 1; its teardown takes a moment at most.
    let mut left = host_processes_named(&name);
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        left = host_processes_named(&name);
    }
    assert_eq!(left, 0, "a process of the run is still alive");
}

#[test]
fn writes_stop_at_the_disk_limit_and_never_reach_the_rootfs() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["fill"]);
    s.limits.disk_bytes = 8 << 20;
    let o = go(&s);
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    let written: u64 = value(&o, "written").parse().unwrap();
    assert!(written <= 8 << 20 && written > 1 << 20, "{written}");
    assert_eq!(value(&o, "error"), "No space left on device");
    assert!(!b.rootfs.join("tmp/fill").exists());
    let scratch: Vec<_> = std::fs::read_dir(b.work.join("scratch")).unwrap().collect();
    assert!(
        scratch.is_empty(),
        "the tmpfs went with the run: {scratch:?}"
    );
}

#[test]
fn exits_signals_and_setup_failures_are_told_apart() {
    let b = sandbox_dirs();
    assert_eq!(go(&spec(&b, &["exit", "3"])).exit, Exit::Exited { code: 3 });
    assert_eq!(
        go(&spec(&b, &["crash"])).exit,
        Exit::Signaled { signal: 11 }
    );
    let mut s = spec(&b, &[]);
    s.argv = vec!["no-such-program".into()];
    match go(&s).exit {
        Exit::SetupFailed { message } => assert!(message.contains("no-such-program"), "{message}"),
        other => panic!("{other:?}"),
    }
    let mut s = spec(&b, &[]);
    s.rootfs = b.rootfs.join("missing");
    match go(&s).exit {
        Exit::SetupFailed { message } => assert!(message.contains("rootfs"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn output_is_kept_up_to_the_limit_and_counted_beyond() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["loud"]);
    s.limits.output_bytes = 4096;
    let o = go(&s);
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    assert_eq!(o.stdout.len(), 4096);
    assert!(o.stdout_dropped > 1_000_000, "{}", o.stdout_dropped);
}

/// `canary run-sandbox` on an image built here: layers unpacked as containerd would
/// (whiteouts, opaque directories, hard links, a symlink that points out of the image
/// caught inside it), the config's entrypoint, user and workdir, the timeline printed.
#[test]
fn run_sandbox_unpacks_an_image_and_runs_its_entrypoint() {
    use canary_analyzer::fixtures::{Compression, ImageBuilder, LayerBuilder};
    let dir = scratch("canary-sbx-img-");
    let pwned = format!("canary-pwned-{}", std::process::id());
    let probe_bytes = std::fs::read(probe()).unwrap();
    let base = LayerBuilder::new()
        .file_mode("bin/probe", &probe_bytes, 0o755)
        .file(
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .file("etc/secret-old", "deleted later")
        .dir("tmp")
        .file("data/a", "a")
        .file("data/b", "b")
        .dir_mode("readonly", 0o555)
        .file("readonly/kept", "k");
    let top = LayerBuilder::new()
        .whiteout("etc/secret-old")
        .opaque("data")
        .file("data/c", "c")
        .file("readonly/added", "r")
        .hardlink("bin/probe2", "bin/probe")
        .symlink("escape", "../../../../../../tmp")
        .file(&format!("escape/{pwned}"), "must stay in the image")
        // Through a dangling symlink: not unpacked, and counted.
        .symlink("nowhere", "/no/such/dir")
        .file("nowhere/file", "x");
    let checked = [
        "/etc/secret-old",
        "/data/a",
        "/data/b",
        "/data/c",
        "/readonly/kept",
        "/readonly/added",
        "/bin/probe2",
    ];
    let in_image_tmp = format!("/tmp/{pwned}");
    let mut cmd = vec!["ls"];
    cmd.extend(checked);
    cmd.push(&in_image_tmp);
    let image = ImageBuilder::new()
        .layer(base.build(Compression::Gzip))
        .layer(top.build(Compression::Zstd))
        .entrypoint(&["/bin/probe"])
        .cmd(&cmd)
        .user("app")
        .workdir("/srv")
        .env("CANARY_PROBE=1")
        .build();
    let archive = dir.path().join("img.tar");
    image.write_docker_archive(&archive, "sbx:1", true).unwrap();
    let cache = dir.path().join("cache");
    let events = run_sandbox(&archive, &cache, 20);
    let by = |events: &[serde_json::Value], kind: &str| event_of(events, kind).clone();
    let rootfs = by(&events, "rootfs");
    assert_eq!(rootfs["cached"], false);
    assert_eq!(rootfs["layers"], 2);
    assert_eq!(rootfs["skipped"]["dangling_parent"], 1, "{rootfs}");
    let start = by(&events, "start");
    assert_eq!(start["workdir"], "/srv");
    assert_eq!(start["env"].as_array().unwrap()[0], "CANARY_PROBE");
    // The timeline shows output with control characters escaped.
    let text = by(&events, "output")["text"]
        .as_str()
        .unwrap()
        .replace("\\n", "\n");
    for (path, want) in [
        ("/etc/secret-old", "absent"),
        ("/data/a", "absent"),
        ("/data/b", "absent"),
        ("/data/c", "present"),
        ("/readonly/kept", "present"),
        ("/readonly/added", "present"),
        ("/bin/probe2", "present"),
        (in_image_tmp.as_str(), "present"),
    ] {
        assert!(
            text.contains(&format!("{path}={want}\n")),
            "{path} {want}:\n{text}"
        );
    }
    if nix_is_root() {
        assert_eq!(start["user"], "1000:1000");
        assert!(text.contains("uid=1000\n"), "{text}");
    }
    assert_eq!(by(&events, "exit")["exit"]["kind"], "exited");
    let call = by(&events, "syscall");
    assert_eq!(call["call"], "exec");
    assert_eq!(call["path"], "/bin/probe");
    assert_eq!(call["pid"], 1);
    assert!(
        !Path::new("/tmp").join(&pwned).exists(),
        "a layer's symlink wrote outside the rootfs"
    );
    // The second run reuses the unpacked rootfs.
    assert_eq!(
        by(&run_sandbox(&archive, &cache, 20), "rootfs")["cached"],
        true
    );
}

/// Whether this machine lets us make control groups (root with v1, or delegated v2).
fn with_cgroups(o: &Outcome) -> bool {
    if o.cgroup.is_some() {
        return true;
    }
    // As root (CI) the groups must be there.
    assert!(!nix_is_root(), "no control group as root: {:?}", o.notes);
    assert!(
        o.notes
            .iter()
            .any(|n| n.contains("no CPU, memory or pids limits")),
        "{:?}",
        o.notes
    );
    false
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["forkbomb"]);
    s.limits.cgroup.pids = 32;
    let o = go(&s);
    if !with_cgroups(&o) {
        return;
    }
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    let forked: u32 = value(&o, "forked").parse().unwrap();
    assert!(forked < 32, "{forked}");
    assert_eq!(value(&o, "error"), "Resource temporarily unavailable");
}

#[test]
fn memory_over_the_limit_is_oom_killed_and_counted() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["eat", "512"]);
    s.limits.cgroup.memory_bytes = 64 << 20;
    let o = go(&s);
    if !with_cgroups(&o) {
        return;
    }
    assert_eq!(o.exit, Exit::Signaled { signal: 9 }, "{o:?}");
    let cg = o.cgroup.unwrap();
    assert!(cg.oom_kills >= 1, "{cg:?}");
    assert!(cg.memory_peak_bytes >= 32 << 20, "{cg:?}");
}

#[test]
fn cpu_time_is_accounted() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["spin"]);
    s.limits.wall = Duration::from_millis(800);
    s.limits.cgroup.cpus = 0.5;
    let o = go(&s);
    if !with_cgroups(&o) {
        return;
    }
    assert_eq!(o.exit, Exit::TimedOut);
    let cg = o.cgroup.unwrap();
    // Some CPU time was spent and measured; how much depends on the machine's load.
    assert!(cg.cpu_ns > 10_000_000, "{cg:?}");
    // And per process: the spinner, pid 1 of the run, used it.
    let top = o.processes.first().expect("a process with CPU time");
    assert_eq!(
        (top.pid, top.comm.as_str()),
        (1, "probe"),
        "{:?}",
        o.processes
    );
    assert!(top.cpu_ms >= 10, "{:?}", o.processes);
}

#[test]
fn the_tracer_sees_execs_and_connects_of_every_process() {
    use canary_sandbox::trace::Call;
    let b = sandbox_dirs();
    let o = go(&spec(&b, &["activity"]));
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    assert_eq!(value(&o, "child"), "0");
    let calls: Vec<(u32, &Call)> = o.events.iter().map(|e| (e.pid, &e.call)).collect();
    let exec = |argv: &[&str]| Call::Exec {
        path: "/bin/probe".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        fd_target: None,
        sha256: None,
        miner: None,
    };
    assert_eq!(
        calls,
        vec![
            (1, &exec(&["probe", "activity"])),
            (
                1,
                &Call::Connect {
                    family: "inet".into(),
                    addr: "10.1.2.3".into(),
                    port: Some(3333)
                }
            ),
            (2, &exec(&["probe", "exit", "0"])),
        ],
        "{o:?}"
    );
    assert!(o.events.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
}

#[test]
fn a_timed_out_run_keeps_its_events() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["spin"]);
    s.limits.wall = Duration::from_millis(700);
    let o = go(&s);
    assert_eq!(o.exit, Exit::TimedOut, "{o:?}");
    assert_eq!(o.events.len(), 1, "the entrypoint's exec: {:?}", o.events);
    assert!(o.notes.is_empty() || !o.notes.iter().any(|n| n.contains("did not end")));
}

#[test]
fn without_tracing_no_calls_are_recorded() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["activity"]);
    s.trace = false;
    let o = go(&s);
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    assert!(o.events.is_empty(), "{:?}", o.events);
}

#[test]
fn the_sinkhole_answers_dns_stratum_and_http_and_records_them() {
    let b = sandbox_dirs();
    let mut s = spec(&b, &["net"]);
    s.limits.wall = Duration::from_secs(6);
    let o = go(&s);
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    let ip = value(&o, "dns").to_string();
    assert!(ip.starts_with("198.18.1."), "{ip}");
    assert_eq!(value(&o, "connect_pool"), "ok");
    assert!(value(&o, "pool_reply").starts_with("{\"id\":1"), "{o:?}");
    assert_eq!(value(&o, "imds_reply").trim(), "HTTP/1.1 404 Not Found");
    let dns = o.net_events.iter().find_map(|e| match e {
        NetEvent::Dns { name, answer, .. } => Some((name.as_str(), answer.as_deref())),
        _ => None,
    });
    assert_eq!(
        dns,
        Some(("pool.example.org", Some(ip.as_str()))),
        "{:?}",
        o.net_events
    );
    let tcp: Vec<_> = o
        .net_events
        .iter()
        .filter_map(|e| match e {
            NetEvent::Tcp {
                dst_ip,
                dst_port,
                dst_name,
                protocol,
                first_bytes,
                ..
            } => Some((
                dst_ip.as_str(),
                *dst_port,
                dst_name.as_deref(),
                protocol.as_str(),
                String::from_utf8_lossy(first_bytes).into_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(tcp.len(), 2, "{tcp:?}");
    // The two connections are served by their own threads: their records can land in
    // either order (seen once in CI), so each is found by its protocol.
    let by_protocol = |p: &str| {
        tcp.iter()
            .find(|t| t.3 == p)
            .unwrap_or_else(|| panic!("no {p} connection in {tcp:?}"))
    };
    let (ip0, port0, name0, proto0, bytes0) = by_protocol("stratum");
    assert_eq!(
        (*ip0, *port0, *name0, *proto0),
        (ip.as_str(), 3333, Some("pool.example.org"), "stratum")
    );
    assert!(
        bytes0.contains("\"login\":\"WALLET\"") && bytes0.contains("XMRig/6.21.0"),
        "{bytes0}"
    );
    let (ip1, port1, _, proto1, bytes1) = by_protocol("http");
    assert_eq!((*ip1, *port1, *proto1), ("169.254.169.254", 80, "http"));
    assert!(bytes1.starts_with("GET /latest/meta-data/iam/"), "{bytes1}");
}

/// A scratch directory under /var/tmp (the sandbox's caches want a real disk).
fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// A docker-archive of an image whose entrypoint is the probe with `cmd`.
fn probe_image(dir: &Path, cmd: &[&str]) -> PathBuf {
    use canary_analyzer::fixtures::{Compression, ImageBuilder, LayerBuilder};
    let probe_bytes = std::fs::read(probe()).unwrap();
    let image = ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file_mode("bin/probe", &probe_bytes, 0o755)
                .dir("tmp")
                .build(Compression::Gzip),
        )
        .entrypoint(&["/bin/probe"])
        .cmd(cmd)
        .build();
    let archive = dir.join(format!("{}.tar", cmd.join("-")));
    image
        .write_docker_archive(&archive, "probe:1", true)
        .unwrap();
    archive
}

/// `canary run-sandbox` of a docker-archive with a budget of `timeout` seconds: the
/// timeline's events (the command must succeed).
fn run_sandbox(archive: &Path, cache: &Path, timeout: u32) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["run-sandbox", "--timeout", &timeout.to_string()])
        .arg(format!("docker-archive:{}", archive.display()))
        .env("CANARY_CACHE_DIR", cache)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The first event of `kind` in a timeline.
fn event_of<'a>(events: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    events
        .iter()
        .find(|e| e["event"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events:#?}"))
}

fn scan_runtime(dir: &Path, archive: &Path) -> (i32, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .args([
            "scan",
            "--format",
            "json",
            "--runtime",
            "--runtime-timeout",
            "15",
        ])
        .arg(format!("docker-archive:{}", archive.display()))
        .env("CANARY_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The finding of rule `id` in a report's first image.
fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    let findings = report["images"][0]["findings"].as_array().unwrap();
    findings
        .iter()
        .find(|f| f["rule_id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {findings:#?}"))
}

/// `canary scan --runtime`: a miner that only shows itself when run is caught, with its
/// pool and the cloud metadata request it made; a benign image raises nothing.
#[test]
fn scan_runtime_catches_what_only_shows_at_run_time() {
    let dir = scratch("canary-sbx-scan-");
    let (code, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["net"]));
    let by_rule = |id: &str| finding(&report, id);
    let stratum = by_rule("runtime/stratum-protocol");
    assert_eq!(stratum["severity"], "critical");
    assert_eq!(stratum["location"]["kind"], "runtime");
    assert!(
        stratum["location"]["event"]
            .as_str()
            .unwrap()
            .ends_with(":3333 (pool.example.org)"),
        "{stratum}"
    );
    assert!(
        stratum["evidence"]
            .as_str()
            .unwrap()
            .contains("XMRig/6.21.0")
    );
    assert_eq!(by_rule("runtime/metadata-endpoint")["severity"], "high");
    assert_eq!(code, 1, "a critical finding fails the default policy");
    assert_eq!(
        report["coverage"]["complete"], true,
        "{}",
        report["coverage"]
    );

    let (code, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["id"]));
    let findings = report["images"][0]["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| !f["rule_id"].as_str().unwrap().starts_with("runtime/")),
        "{findings:#?}"
    );
    // (The probe itself holds Stratum strings, which the static scan rightly reports.)
    assert_eq!(
        report["coverage"]["complete"], true,
        "{}",
        report["coverage"]
    );
    assert_ne!(code, 2);

    // A web server that listens until the budget ends: nothing at run time either.
    let archive = probe_image(dir.path(), &["serve"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .args([
            "scan",
            "--format",
            "json",
            "--runtime",
            "--runtime-timeout",
            "2",
        ])
        .arg(format!("docker-archive:{}", archive.display()))
        .env("CANARY_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runtime: Vec<_> = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"].as_str().unwrap().starts_with("runtime/"))
        .collect();
    assert!(runtime.is_empty(), "{runtime:#?}");
    assert_eq!(
        report["coverage"]["complete"], true,
        "{}",
        report["coverage"]
    );
}

/// Planted canary credentials: a stealer reads the AWS file and posts it; the run is
/// judged `runtime/bait-exfiltrated`, and the report never shows the value whole.
#[test]
fn stolen_bait_credentials_are_caught_in_the_sinkhole() {
    let dir = scratch("canary-sbx-bait-");
    let (code, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["steal"]));
    let f = finding(&report, "runtime/bait-exfiltrated");
    assert_eq!(f["severity"], "critical");
    // The credentials file it opened is seen read, by its access time.
    let read = finding(&report, "runtime/bait-read");
    assert_eq!(read["location"]["event"], "read /root/.aws/credentials");
    let reads = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "runtime/bait-read")
        .count();
    assert_eq!(reads, 1, "only the file it read");
    assert!(
        f["location"]["event"]
            .as_str()
            .unwrap()
            .starts_with("tcp 203.0.113.5:80"),
        "{f}"
    );
    // The canary secret key is never in the report whole.
    let text = report.to_string();
    let evidence = f["evidence"].as_str().unwrap();
    assert!(evidence.contains("aws_secret_access_key"), "{evidence}");
    let after = evidence
        .split("aws_secret_access_key = ")
        .nth(1)
        .unwrap_or("");
    assert!(after.len() < 40 || after.contains('*'), "{evidence}");
    assert!(
        !text.contains("AKIA") || text.contains("AKIA****"),
        "{text}"
    );
    assert_eq!(code, 1);

    // What the probe saw inside: the files and the env var.
    let b = sandbox_dirs();
    let mut s = spec(&b, &["steal"]);
    s.bait = Some(canary_sandbox::bait::Bait::new().unwrap());
    s.env.extend(s.bait.as_ref().unwrap().env());
    let o = go(&s);
    assert_eq!(value(&o, "aws_file"), "present");
    assert_eq!(value(&o, "aws_env"), "AKIA");
    assert_eq!(value(&o, "sa_token"), "present");
    assert_eq!(value(&o, "exfil_reply"), "yes");
    // The image's own rootfs got none of it.
    assert!(!b.rootfs.join("root").exists());
}

/// A cloud-credential thief: the sinkhole's metadata service hands it the run's canary
/// AWS keys, and sending them away is caught as theft; a miner that carries its pool's
/// address is named by the server name of its TLS ClientHello.
#[test]
fn metadata_credentials_handed_out_are_caught_leaving_and_tls_names_its_pool() {
    let dir = scratch("canary-sbx-imds-");
    let (code, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["imds"]));
    let f = finding(&report, "runtime/bait-exfiltrated");
    assert!(
        f["location"]["event"]
            .as_str()
            .unwrap()
            .starts_with("tcp 203.0.113.7:80"),
        "{f}"
    );
    assert_eq!(
        finding(&report, "runtime/metadata-endpoint")["severity"],
        "high"
    );
    assert_eq!(code, 1);
    // What the probe got: the role, then credentials.
    let b = sandbox_dirs();
    let mut s = spec(&b, &["imds"]);
    s.bait = Some(canary_sandbox::bait::Bait::new().unwrap());
    let o = go(&s);
    assert_eq!(value(&o, "imds_role"), "canary-instance-role");
    assert_eq!(value(&o, "imds_creds"), "yes");
    assert_eq!(value(&o, "exfil_reply"), "yes");

    let (_, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["tlspool"]));
    let f = finding(&report, "runtime/pool-connection");
    let evidence = f["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("TLS server name pool.supportxmr.com"),
        "{f}"
    );
    assert!(
        f["location"]["event"]
            .as_str()
            .unwrap()
            .starts_with("tcp 192.0.2.44:443"),
        "{f}"
    );
}

/// A worm's fan-out (connect() to 40 addresses in a row) is a scanner; the probe's other
/// modes, which talk to a few hosts, are not.
#[test]
fn connection_fan_out_is_a_scanner() {
    let dir = scratch("canary-sbx-scan-out-");
    let (_, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["portscan"]));
    let f = finding(&report, "runtime/scanner-fanout");
    assert_eq!(f["severity"], "high");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("40 distinct addresses"),
        "{f}"
    );
    let (_, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["steal"]));
    let findings = report["images"][0]["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f["rule_id"] != "runtime/scanner-fanout"),
        "{findings:#?}"
    );
}

/// A payload run from memory (memfd_create + fexecve) and a process that renames itself
/// after a kernel thread are caught by what the tracer sees.
#[test]
fn fileless_execution_and_renaming_are_caught() {
    let dir = scratch("canary-sbx-fileless-");
    let (code, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["fileless"]));
    let f = finding(&report, "runtime/fileless-exec");
    assert_eq!(f["severity"], "critical");
    assert!(
        f["evidence"].as_str().unwrap().contains("/memfd:payload"),
        "{f}"
    );
    assert_eq!(code, 1);
    let b = sandbox_dirs();
    let o = go(&spec(&b, &["fileless"]));
    assert_eq!(value(&o, "payload"), "0");
    assert!(
        o.events.iter().any(|e| matches!(&e.call, canary_sandbox::trace::Call::MemfdCreate { name } if name == "payload")),
        "{:?}",
        o.events
    );

    let (_, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["rename"]));
    let f = finding(&report, "runtime/masquerade");
    assert_eq!(f["location"]["event"], "prctl PR_SET_NAME");
    assert!(
        f["evidence"].as_str().unwrap().contains("kworker/0:1"),
        "{f}"
    );
}

/// A miner's clean-up on the image's own files: history deleted and a log emptied
/// (history tampering), a cloud security agent removed (security-tool tampering).
#[test]
fn erased_traces_and_removed_security_agents_are_caught() {
    use canary_analyzer::fixtures::{Compression, ImageBuilder, LayerBuilder};
    let dir = scratch("canary-sbx-tamper-");
    let probe_bytes = std::fs::read(probe()).unwrap();
    let image = ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file_mode("bin/probe", &probe_bytes, 0o755)
                .dir("tmp")
                .file("root/.bash_history", "ssh admin@10.0.0.5\n")
                .file("var/log/auth.log", "Dec  6 sshd[1]: Accepted publickey\n")
                .file("usr/local/aegis/aegis_client/AliYunDun", "agent\n")
                .build(Compression::Gzip),
        )
        .entrypoint(&["/bin/probe"])
        .cmd(&["tamper"])
        .build();
    let archive = dir.path().join("tamper.tar");
    image
        .write_docker_archive(&archive, "probe:1", true)
        .unwrap();
    let (_, report) = scan_runtime(dir.path(), &archive);
    let events = |id: &str| -> Vec<String> {
        report["images"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"] == id)
            .map(|f| f["location"]["event"].as_str().unwrap().to_string())
            .collect()
    };
    let mut history = events("runtime/history-tampering");
    history.sort();
    assert_eq!(
        history,
        ["delete /root/.bash_history", "truncate /var/log/auth.log"],
        "{report}"
    );
    assert_eq!(
        events("runtime/security-tool-tampering"),
        ["delete /usr/local/aegis/aegis_client/AliYunDun"]
    );
}

/// A dropper: the payload written and run at start is judged by its bytes (the static
/// miner rules) and by what it did, and the cron entry it left is a persistence write.
#[test]
fn files_written_at_run_time_are_judged() {
    let dir = scratch("canary-sbx-drop-");
    let (_, report) = scan_runtime(dir.path(), &probe_image(dir.path(), &["drop"]));
    let findings = report["images"][0]["findings"].as_array().unwrap();
    let event = |id: &str| {
        finding(&report, id)["location"]["event"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(event("runtime/dropped-exec"), "exec /tmp/.x/payload");
    assert_eq!(event("runtime/dropped-miner"), "write /tmp/.x/payload");
    // The executed file itself is hashed and scanned after the run: whatever its name,
    // running a file that matches a miner rule is starting a miner.
    let f = finding(&report, "runtime/miner-exec");
    assert_eq!(f["location"]["event"], "exec /tmp/.x/payload");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("matches miner/stratum-client-binary"),
        "{f}"
    );
    assert_eq!(
        event("runtime/persistence-write"),
        "write /etc/cron.d/sysupdate"
    );
    // The planted bait files are ours, not the image's writes.
    assert!(
        !findings.iter().any(|f| f["location"]["event"]
            .as_str()
            .is_some_and(|e| e.contains(".aws"))),
        "{findings:#?}"
    );
    // The copies of written executables went with the run.
    let left: Vec<_> = walk_names(&dir.path().join("cache"));
    assert!(!left.iter().any(|n| n == "dropped"), "{left:?}");
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().is_ok_and(|t| t.is_dir())
                && !e.file_name().to_string_lossy().starts_with("rootfs-")
            {
                stack.push(e.path());
            }
        }
    }
    out
}

/// A layer whose bytes do not match its digest is refused, and nothing is cached.
#[test]
fn a_layer_that_does_not_match_its_digest_is_not_unpacked() {
    use canary_analyzer::fixtures::{Compression, LayerBuilder};
    use canary_analyzer::image::Verify;
    let blob = LayerBuilder::new()
        .file("etc/x", "x")
        .build(Compression::Gzip)
        .blob;
    let blobs: &'static [Vec<u8>] = Box::leak(vec![blob].into_boxed_slice());
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut image = canary_analyzer::corpus::in_memory_image("forged", blobs);
    image.layers[0].verify = Verify::Blob(format!("sha256:{}", "0".repeat(64)));
    let err = canary_sandbox::rootfs::prepare(&image, dir.path(), &Default::default())
        .expect_err("a forged digest");
    assert!(err.to_string().contains("sha256:0000"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
    // The true digest unpacks.
    image.layers[0].verify = Verify::Blob(canary_analyzer::fixtures::sha256_digest(&blobs[0]));
    let r = canary_sandbox::rootfs::prepare(&image, dir.path(), &Default::default()).unwrap();
    assert!(r.path.join("etc/x").is_file());
}

/// A run that writes more files than are listed says so.
#[test]
fn a_listing_cut_short_is_reported() {
    let b = sandbox_dirs();
    let o = go(&spec(&b, &["spray", "10050"]));
    assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
    assert_eq!(o.written.len(), 10_000);
    assert!(
        o.notes.iter().any(|n| n.contains("not all were listed")),
        "{:?}",
        o.notes
    );
}

/// A deleted directory of the image (one whiteout) stands for its files: each is read
/// as deleted. (Inside this machine's overlay an `rmdir` of an image directory fails
/// with EIO, so the whiteout is given here rather than made by a probe.)
#[test]
fn a_deleted_directory_stands_for_its_files() {
    let b = sandbox_dirs();
    let agent = b.rootfs.join("usr/local/aegis/aegis_client");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::write(agent.join("AliYunDun"), "agent").unwrap();
    let s = spec(&b, &["id"]);
    let mut o = go(&s);
    o.deleted = vec!["/usr/local/aegis".into()];
    let obs = canary_sandbox::runtime::observations(&o, &s);
    let f = canary_sandbox::runtime::findings(&obs);
    let mut events: Vec<String> = f
        .iter()
        .filter(|f| f.rule_id == "runtime/security-tool-tampering")
        .map(|f| match &f.location {
            canary_analyzer::finding::Location::Runtime { event, .. } => event.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "delete /usr/local/aegis",
            "delete /usr/local/aegis/aegis_client/AliYunDun"
        ]
    );
}

/// A WASI image: a module as entrypoint, platform wasip1/wasm. It runs under wasmtime:
/// `run-sandbox` shows its imports, output and exit, and for a module that spins as a
/// miner does, the CPU time and fuel it burned before the budget stopped it.
#[test]
fn wasi_images_run_under_wasmtime() {
    use canary_analyzer::fixtures::{Compression, ImageBuilder, LayerBuilder};
    let dir = scratch("canary-sbx-wasi-");
    let image = |name: &str, body: &str| {
        let module = wat::parse_str(format!(
            r#"(module
              (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (memory (export "memory") 1)
              (data (i32.const 64) "hashing for stratum+tcp://198.51.100.7:3333\n")
              {body})"#
        ))
        .unwrap();
        let archive = dir.path().join(format!("{name}.tar"));
        ImageBuilder::new()
            .platform("wasip1", "wasm", None)
            .layer(
                LayerBuilder::new()
                    .file("app.wasm", &module)
                    .build(Compression::Gzip),
            )
            .entrypoint(&["/app.wasm"])
            .build()
            .write_docker_archive(&archive, &format!("{name}:1"), true)
            .unwrap();
        archive
    };
    // Shaped like a CoinHive-style core: its exports name the CryptoNight hash.
    let hello = image(
        "hello",
        r#"(func (export "_start")
             (i32.store (i32.const 0) (i32.const 64))
             (i32.store (i32.const 4) (i32.const 44))
             (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
             (call $exit (i32.const 7)))
           (func (export "cryptonight_hash"))
           (func (export "cryptonight_create"))"#,
    );
    let cache = dir.path().join("cache");
    let events = run_sandbox(&hello, &cache, 10);
    let of = |kind: &str| event_of(&events, kind);
    assert_eq!(
        of("wasm")["imports"],
        serde_json::json!([
            "wasi_snapshot_preview1.fd_write (func)",
            "wasi_snapshot_preview1.proc_exit (func)"
        ])
    );
    // Control characters are shown escaped.
    assert_eq!(
        of("output")["text"],
        "hashing for stratum+tcp://198.51.100.7:3333\\n"
    );
    assert_eq!(
        of("exit")["exit"],
        serde_json::json!({"kind": "exited", "code": 7})
    );
    // The module was hashed and scanned: running it is starting a miner.
    let exec = events
        .iter()
        .find(|e| e["event"] == "syscall" && e["call"] == "exec")
        .unwrap_or_else(|| panic!("no exec in {events:#?}"));
    assert!(
        exec["sha256"].as_str().unwrap().starts_with("sha256:"),
        "{exec}"
    );
    let f = of("finding");
    assert_eq!(f["rule_id"], "runtime/miner-exec", "{f}");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("miner/browser-wasm"),
        "{f}"
    );

    // A module that spins as a miner does: stopped at the budget, its CPU time and the
    // fuel it burned counted (the CPU figure is what runtime/cpu-saturation judges).
    let spin = image(
        "spin",
        r#"(func $hash (param i32) (result i32) (i32.mul (local.get 0) (i32.const 31)))
           (func (export "_start") (local $x i32)
             (loop $l (local.set $x (call $hash (local.get $x))) (br $l)))"#,
    );
    let events = run_sandbox(&spin, &cache, 2);
    let of = |kind: &str| event_of(&events, kind);
    assert_eq!(of("exit")["exit"], serde_json::json!({"kind": "timed_out"}));
    // Two seconds of wall time, most of it on a CPU even with the tests around it.
    let cpu_ms = of("resources")["cpu_ms"].as_u64().unwrap();
    assert!(cpu_ms > 500, "{events:#?}");
    let fuel = events
        .iter()
        .filter(|e| e["event"] == "note")
        .find_map(|e| {
            e["message"]
                .as_str()?
                .strip_prefix("WASI module run under wasmtime: ")
        })
        .and_then(|m| m.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no fuel note in {events:#?}"));
    assert!(fuel > 1_000_000, "{fuel}");
}
