//! The sandbox init: runs in a fresh process (`canary __sandbox-init CONFIG`), so that
//! every `fork` below happens in a single-threaded process and the children may run
//! ordinary Rust until `execve`.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::run::{Exit, InitConfig, InitStatus};

/// Entry point of `canary __sandbox-init CONFIG`. Returns the process exit code (the
/// supervisor reads the outcome from the status file, not from this code).
pub fn init_main(config_path: &Path) -> i32 {
    let started = Instant::now();
    // Whatever our caller left open without close-on-exec must not reach the run.
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on fds of ours.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    let config: InitConfig = match std::fs::read(config_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("canary sandbox init: {}: {e}", config_path.display());
            return 125;
        }
    };
    let status = supervise(&config, started);
    match serde_json::to_vec(&status) {
        Ok(json) if std::fs::write(&config.status_path, &json).is_ok() => 0,
        _ => 125,
    }
}

/// A pipe whose ends close on `execve`, so the entrypoint inherits neither.
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn setup_failed(message: String) -> InitStatus {
    InitStatus {
        exit: Exit::SetupFailed { message },
        exec_after_ns: None,
        notes: Vec::new(),
        events: Vec::new(),
        events_dropped: 0,
        net_events: Vec::new(),
    }
}

/// Start the namespaced child, map its ids, and wait for the entrypoint to end.
fn supervise(config: &InitConfig, started: Instant) -> InitStatus {
    // As root, device nodes of our own for the run's /dev: binding the host's would let
    // the run's root (host uid 0 in the identity map) chmod or chown the host's nodes.
    let devices = if nix::unistd::geteuid().is_root() {
        match make_devices(&config.spec.work_dir.join("dev")) {
            Ok(d) => Some(d),
            Err(e) => return setup_failed(e),
        }
    } else {
        None
    };
    let (ready_r, ready_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return setup_failed(e),
    };
    let (go_r, go_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return setup_failed(e),
    };
    // Setup errors come back through `err`; it closes without a byte at `execve`.
    let (err_r, err_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return setup_failed(e),
    };
    // How the entrypoint ended, from the ns child (which never execs).
    let (status_r, status_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return setup_failed(e),
    };
    // The ns child sends the sinkhole's sockets back over this, then pid 1 the tracer's
    // listener.
    let (trace_parent, trace_child) = match nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    ) {
        Ok(p) => p,
        Err(e) => return setup_failed(format!("socketpair: {e}")),
    };
    let host_uid = nix::unistd::geteuid();
    let host_gid = nix::unistd::getegid();
    let root = host_uid.is_root();
    let mut notes = Vec::new();
    if !root && (config.spec.uid != 0 || config.spec.gid != 0) {
        notes.push(format!(
            "ran as uid 0 instead of {}:{}: without root on the host only one id can be mapped",
            config.spec.uid, config.spec.gid
        ));
    }

    let init_pid = nix::unistd::getpid();
    // SAFETY: this process is single-threaded (a fresh exec of the init), so the child
    // may allocate and run ordinary code after the fork.
    let child = match unsafe { fork() } {
        Err(e) => return setup_failed(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            drop((ready_r, go_w, err_r, status_r, trace_parent));
            let fds = ChildFds {
                ready_w,
                go_r,
                err_w,
                status_w,
                trace: trace_child,
            };
            let code = ns_child(config, root, init_pid, devices.as_deref(), fds);
            std::process::exit(code);
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop((ready_w, go_r, err_w, status_w, trace_child));

    // The child has its user namespace: give it ids. As root the first 65,536 ids map
    // to themselves; otherwise the one id we have becomes root inside.
    let mut ready = [0u8; 1];
    let mut ready_r = std::fs::File::from(ready_r);
    if ready_r.read_exact(&mut ready).is_err() {
        let _ = waitpid(child, None);
        return setup_failed(read_all(err_r).unwrap_or_else(|| "the sandbox child died".into()));
    }
    let maps = if root {
        ("0 0 65536\n".to_string(), "0 0 65536\n".to_string(), None)
    } else {
        (
            format!("0 {host_uid} 1\n"),
            format!("0 {host_gid} 1\n"),
            Some("deny"),
        )
    };
    let proc_dir = format!("/proc/{child}");
    let written = (|| -> std::io::Result<()> {
        if let Some(d) = maps.2 {
            std::fs::write(format!("{proc_dir}/setgroups"), d)?;
        }
        std::fs::write(format!("{proc_dir}/uid_map"), &maps.0)?;
        std::fs::write(format!("{proc_dir}/gid_map"), &maps.1)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return setup_failed(format!("writing the user namespace's id maps: {e}"));
    }
    let mut go_w = std::fs::File::from(go_w);
    let _ = go_w.write_all(b"g");
    drop(go_w);

    // Pid 1 sends the tracer's listener just before its execve (nothing if it failed
    // before that). From then on every traced call waits for us, so the pipes are read
    // in the same loop that answers the listener.
    // The ns child's message comes first (the sinkhole's two sockets, tagged `s`, or why
    // there is none), then pid 1's (the listener, tagged `f`); told apart by their tags.
    let mut sinkhole = None;
    let mut listener = None;
    let mut fan = None;
    while listener.is_none() {
        let Some((data, fds)) = receive(&trace_parent) else {
            break;
        };
        match (data.first(), fds.len()) {
            (Some(b'f'), n) if n >= 1 => {
                let mut fds = fds.into_iter();
                listener = fds.next();
                if let Some(l) = &listener {
                    crate::trace::sync_wake_up(l);
                }
                // The sensitive files pid 1 found, to mark before its execve goes on.
                let watched: Vec<OwnedFd> = fds.collect();
                if !watched.is_empty() {
                    match crate::reads::watch(watched) {
                        Ok(f) => fan = Some(f),
                        Err(e) => notes.push(e),
                    }
                }
            }
            (Some(b's'), 2) => {
                let mut fds = fds.into_iter();
                sinkhole = fds.next().zip(fds.next()).map(|(tcp, udp)| {
                    crate::sinkhole::Sinkhole::start(
                        tcp,
                        udp,
                        started,
                        config.spec.bait.as_ref(),
                        config.spec.http_reply.clone(),
                    )
                });
            }
            _ => notes.push(format!(
                "no sinkhole: {}; the run had no network at all",
                String::from_utf8_lossy(data.strip_prefix(b"-").unwrap_or(&data))
            )),
        }
    }
    drop(trace_parent);
    let mut watch = Watch {
        started,
        // The ns child kills the run at the deadline; this is the backstop.
        deadline: started + config.spec.limits.wall + std::time::Duration::from_secs(3),
        child,
        timed_out: false,
        listener,
        fan,
        err: Some(err_r),
        status: Some(status_r),
        setup_error: Vec::new(),
        ended: Vec::new(),
        exec_after_ns: None,
        events: Vec::new(),
        events_dropped: 0,
        cheap: [0; crate::trace::CAPPED_KINDS],
    };
    watch.run();
    let Watch {
        setup_error,
        ended,
        exec_after_ns,
        events,
        events_dropped,
        timed_out,
        ..
    } = watch;
    let setup_error =
        (!setup_error.is_empty()).then(|| String::from_utf8_lossy(&setup_error).into_owned());
    let exec_after_ns = if setup_error.is_none() {
        exec_after_ns
    } else {
        None
    };
    let ended = (!ended.is_empty()).then(|| String::from_utf8_lossy(&ended).into_owned());
    let _ = waitpid(child, None);
    let exit = match (setup_error, ended) {
        _ if timed_out => Exit::TimedOut,
        (Some(message), _) => Exit::SetupFailed { message },
        (None, Some(s)) => parse_exit(&s).unwrap_or(Exit::SetupFailed {
            message: format!("unreadable exit status {s:?}"),
        }),
        (None, None) => Exit::SetupFailed {
            message: "the sandbox child died without an exit status".into(),
        },
    };
    let (net_events, net_dropped) = sinkhole.map(|s| s.finish()).unwrap_or_default();
    if net_dropped > 0 {
        notes.push(format!(
            "{net_dropped} more network events seen and not kept"
        ));
    }
    InitStatus {
        exit,
        exec_after_ns,
        notes,
        events,
        events_dropped,
        net_events,
    }
}

/// Receive one message and the fds sent with it (`SCM_RIGHTS`); `None` if the other
/// end closed first.
fn receive(sock: &OwnedFd) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut data = [0u8; 1024];
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    // Pid 1's message: the listener and the watched files (reads.rs caps them at 64).
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 72]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    if msg.bytes == 0 {
        return None;
    }
    let n = msg.bytes;
    let mut fds = Vec::new();
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(got) = c {
            // SAFETY: SCM_RIGHTS just installed these fds in our table; we own them.
            fds.extend(
                got.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Some((data[..n].to_vec(), fds))
}

/// Send `data` and `fds` (`SCM_RIGHTS`) as one message.
fn send(sock: &OwnedFd, data: &[u8], fds: &[std::os::fd::RawFd]) -> nix::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    use std::os::fd::AsRawFd;
    let iov = [std::io::IoSlice::new(data)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() {
        &[]
    } else {
        &[ControlMessage::ScmRights(fds)]
    };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).map(|_| ())
}

/// The init's loop while the entrypoint runs: answer the tracer, collect setup errors
/// and the exit status.
struct Watch {
    started: Instant,
    /// The wall-clock budget's end: then the ns child is killed, and with it the run.
    deadline: Instant,
    child: Pid,
    timed_out: bool,
    listener: Option<OwnedFd>,
    /// Opens of the sensitive files ([`crate::reads`]).
    fan: Option<OwnedFd>,
    err: Option<OwnedFd>,
    status: Option<OwnedFd>,
    setup_error: Vec<u8>,
    ended: Vec<u8>,
    exec_after_ns: Option<u64>,
    events: Vec<crate::trace::Event>,
    events_dropped: u64,
    /// Calls of each capped kind seen so far ([`crate::trace::Call::kind_cap`]).
    cheap: [usize; crate::trace::CAPPED_KINDS],
}

impl Watch {
    /// Record the opens of sensitive files fanotify has queued.
    fn sensitive_reads(&mut self) {
        let Some(fan) = &self.fan else {
            return;
        };
        let t_ms = self.started.elapsed().as_millis() as u64;
        let own = [std::process::id() as i32, self.child.as_raw()];
        for (pid, path) in crate::reads::events(fan) {
            // The marked inodes are the overlay's, seen only in pid 1's mount namespace:
            // the opens are the run's. The pid inside the run is read while the process
            // lives (0 for one gone before its event was read).
            if own.contains(&pid) {
                continue;
            }
            let pid = crate::trace::run_pid(pid as u32).unwrap_or(0);
            let (k, cap) = crate::trace::READ_KIND;
            self.cheap[k] += 1;
            if self.cheap[k] <= cap && self.events.len() < crate::trace::MAX_EVENTS {
                self.events.push(crate::trace::Event {
                    t_ms,
                    pid,
                    call: crate::trace::Call::Read { path },
                });
            } else {
                self.events_dropped += 1;
            }
        }
    }

    fn run(&mut self) {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        while self.status.is_some() {
            let (l, e, st, fa) = {
                let mut fds = Vec::with_capacity(4);
                let mut slots = [None; 4];
                for (i, fd) in [&self.listener, &self.err, &self.status, &self.fan]
                    .into_iter()
                    .enumerate()
                {
                    if let Some(fd) = fd {
                        slots[i] = Some(fds.len());
                        fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    }
                }
                let left = self.deadline.saturating_duration_since(Instant::now());
                let timeout = if self.timed_out {
                    PollTimeout::NONE
                } else {
                    PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
                        .unwrap_or(PollTimeout::MAX)
                };
                match poll(&mut fds, timeout) {
                    Ok(0) if !self.timed_out && Instant::now() >= self.deadline => {
                        // The whole tree goes: pid 1 dies with the ns child, and the pid
                        // namespace with pid 1. The status pipe then closes.
                        let _ = nix::sys::signal::kill(self.child, Signal::SIGKILL);
                        self.timed_out = true;
                        continue;
                    }
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
                let ev = |slot: Option<usize>| {
                    slot.and_then(|i| fds[i].revents())
                        .unwrap_or(PollFlags::empty())
                };
                (ev(slots[0]), ev(slots[1]), ev(slots[2]), ev(slots[3]))
            };
            if fa.contains(PollFlags::POLLIN) {
                self.sensitive_reads();
            }
            if l.contains(PollFlags::POLLIN) {
                if let Some(listener) = &self.listener {
                    let t_ms = self.started.elapsed().as_millis() as u64;
                    // Renames, memfds, file operations cost a program nothing: each
                    // kind has a cap of its own, so a flood of them cannot push the
                    // execs and connects out; past it, calls are let go unread.
                    let cheap = &mut self.cheap;
                    let served = crate::trace::serve_one(listener, t_ms, |nr| {
                        crate::trace::kind_of(nr).is_none_or(|(k, cap)| {
                            cheap[k] += 1;
                            cheap[k] <= cap
                        })
                    });
                    match served {
                        crate::trace::Served::Event(event)
                            if self.events.len() < crate::trace::MAX_EVENTS =>
                        {
                            self.events.push(event);
                        }
                        crate::trace::Served::Event(_) | crate::trace::Served::Skipped => {
                            self.events_dropped += 1;
                        }
                        crate::trace::Served::Nothing => {}
                    }
                }
            } else if l.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                // No process uses the filter any more.
                self.listener = None;
            }
            if !e.is_empty()
                && let Some(fd) = &self.err
                && !read_some(fd, &mut self.setup_error)
            {
                // Closed: by the entrypoint's execve if nothing came through.
                if self.setup_error.is_empty() {
                    self.exec_after_ns = Some(self.started.elapsed().as_nanos() as u64);
                }
                self.err = None;
            }
            if !st.is_empty()
                && let Some(fd) = &self.status
                && !read_some(fd, &mut self.ended)
            {
                self.status = None;
            }
        }
        // What fanotify queued after the last poll.
        self.sensitive_reads();
    }
}

/// Read what is there into `out`; `false` at end of file.
fn read_some(fd: &OwnedFd, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    match nix::unistd::read(fd, &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            if out.len() < 64 << 10 {
                out.extend_from_slice(&buf[..n]);
            }
            true
        }
        Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => true,
        Err(_) => false,
    }
}

/// Everything a pipe delivers until EOF, or `None` if it delivered nothing.
fn read_all(fd: OwnedFd) -> Option<String> {
    let mut s = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut s);
    (!s.is_empty()).then_some(s)
}

fn parse_exit(s: &str) -> Option<Exit> {
    let (kind, n) = s.trim().split_once(' ')?;
    let n: i32 = n.parse().ok()?;
    match kind {
        "exit" => Some(Exit::Exited { code: n }),
        "signal" => Some(Exit::Signaled { signal: n }),
        "timeout" => Some(Exit::TimedOut),
        _ => None,
    }
}

fn kill_me_when_parent_dies() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    }
}

/// Die when the parent dies; if it already has, die now.
fn die_with_parent(parent: Pid) {
    kill_me_when_parent_dies();
    if nix::unistd::getppid() != parent {
        std::process::exit(125);
    }
}

/// [`die_with_parent`] for pid 1, whose parent is out of sight: the parent holds the
/// only write end of `lifeline`, which reads as hung up once it is gone.
fn die_with(lifeline: &OwnedFd) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    kill_me_when_parent_dies();
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(lifeline),
        PollFlags::POLLIN,
    )];
    let gone = poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0);
    if gone {
        std::process::exit(125);
    }
}

/// In the child: the user namespace, then the others, then pid 1.
/// The ns child's ends of the pipes and socket it shares with the init.
struct ChildFds {
    ready_w: OwnedFd,
    go_r: OwnedFd,
    err_w: OwnedFd,
    status_w: OwnedFd,
    trace: OwnedFd,
}

fn ns_child(
    config: &InitConfig,
    root: bool,
    init_pid: Pid,
    devices: Option<&Path>,
    fds: ChildFds,
) -> i32 {
    let ChildFds {
        ready_w,
        go_r,
        err_w,
        status_w,
        trace,
    } = fds;
    let mut err_w = std::fs::File::from(err_w);
    die_with_parent(init_pid);
    let fail = |err_w: &mut std::fs::File, msg: String| {
        let _ = err_w.write_all(msg.as_bytes());
        125
    };
    // Into the run's control groups: every process of the run descends from here (and
    // the init, which serves the tracer and the sinkhole, stays outside the limits).
    let me = std::process::id().to_string();
    for procs in &config.cgroup_procs {
        if let Err(e) = std::fs::write(procs, &me) {
            return fail(&mut err_w, format!("joining {}: {e}", procs.display()));
        }
    }
    if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER) {
        return fail(&mut err_w, format!("new user namespace: {e}"));
    }
    let _ = std::fs::File::from(ready_w).write_all(b"r");
    let mut go = [0u8; 1];
    if std::fs::File::from(go_r).read_exact(&mut go).is_err() {
        return 125;
    }
    // Now root inside the user namespace, with every capability there (and none
    // outside it).
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if let Err(e) = unshare(flags) {
        return fail(
            &mut err_w,
            format!("new mount/net/uts/ipc/cgroup namespaces: {e}"),
        );
    }
    // The sinkhole in the new network namespace; its sockets go to the init, which
    // serves them. Without it the namespace has no network at all.
    match crate::sinkhole::prepare() {
        Ok((tcp, udp)) => {
            use std::os::fd::AsRawFd;
            let _ = send(&trace, b"s", &[tcp.as_raw_fd(), udp.as_raw_fd()]);
        }
        Err(why) => {
            let _ = send(&trace, format!("-{why}").as_bytes(), &[]);
        }
    }
    if let Err(e) = prepare_scratch(config) {
        return fail(&mut err_w, e);
    }
    // The pid namespace last: the next child made is its pid 1 (the sinkhole's `ip` and
    // `nft` above must not be).
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        return fail(&mut err_w, format!("new pid namespace: {e}"));
    }
    // Pid 1 cannot see its parent (it sits outside the new pid namespace), so it learns
    // of its parent's death from this pipe: the write end is only ours.
    let (lifeline_r, lifeline_w) = match pipe() {
        Ok(p) => p,
        Err(e) => return fail(&mut err_w, e),
    };
    // SAFETY: still single-threaded (the fork above copied one thread).
    let pid1 = match unsafe { fork() } {
        Err(e) => return fail(&mut err_w, format!("fork into the pid namespace: {e}")),
        Ok(ForkResult::Child) => {
            drop(lifeline_w);
            die_with(&lifeline_r);
            let msg = match pid1_main(config, root, trace, &lifeline_r, devices) {
                Ok(never) => match never {},
                Err(msg) => msg,
            };
            let _ = err_w.write_all(msg.as_bytes());
            std::process::exit(127);
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop((err_w, lifeline_r, trace));
    // The deadline is kept here, by killing pid 1 (and so its whole pid namespace), so
    // that what the run wrote can still be read below; the init's own deadline, a little
    // later, is the backstop.
    let deadline = std::time::Instant::now() + config.spec.limits.wall;
    let mut timed_out = false;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid1.as_raw(), 0) };
    let pidfd = (raw >= 0).then(|| {
        use std::os::fd::FromRawFd;
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(raw as i32) }
    });
    let line = loop {
        use nix::sys::wait::WaitPidFlag;
        match waitpid(pid1, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                let now = std::time::Instant::now();
                if !timed_out && now >= deadline {
                    let _ = nix::sys::signal::kill(pid1, Signal::SIGKILL);
                    timed_out = true;
                }
                // Wake when pid 1 ends (its pidfd turns readable) or at the deadline.
                let left = deadline
                    .saturating_duration_since(now)
                    .as_millis()
                    .min(1000) as i32;
                match &pidfd {
                    Some(fd) => {
                        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                        let mut fds =
                            [PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLIN)];
                        let wait = if timed_out { 100 } else { left.max(1) };
                        let _ = poll(
                            &mut fds,
                            PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX),
                        );
                    }
                    None => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
            Ok(_) if timed_out => break "timeout 0".to_string(),
            Ok(WaitStatus::Exited(_, code)) => break format!("exit {code}"),
            Ok(WaitStatus::Signaled(_, sig, _)) => break format!("signal {}", sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break format!("wait: {e}"),
        }
    };
    // Every process of the run is gone; the upper layer is still mounted here.
    let written = crate::written::collect(
        &config.scratch.join("upper"),
        &config.spec.work_dir.join("dropped"),
    );
    if let Ok(json) = serde_json::to_vec(&written) {
        let _ = std::fs::write(&config.written_path, json);
    }
    let _ = std::fs::File::from(status_w).write_all(line.as_bytes());
    0
}

/// In the ns child's mount namespace (private, so nothing reaches the host): the tmpfs
/// that takes everything the run writes, capped in size, its overlay directories, and
/// the bait in the upper one.
fn prepare_scratch(config: &InitConfig) -> Result<(), String> {
    let spec = &config.spec;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| format!("make mounts private: {e}"))?;
    let scratch = &config.scratch;
    let size = format!("size={},mode=0755", spec.limits.disk_bytes.max(4096));
    mount(
        Some("tmpfs"),
        scratch,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(size.as_str()),
    )
    .map_err(|e| mount_err("the scratch tmpfs", scratch, e))?;
    let upper = scratch.join("upper");
    for d in [&upper, &scratch.join("work"), &scratch.join("root")] {
        std::fs::create_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    if let Some(bait) = &spec.bait {
        let lower = spec
            .rootfs
            .canonicalize()
            .map_err(|e| format!("rootfs {}: {e}", spec.rootfs.display()))?;
        bait.plant(&upper, &lower)?;
    }
    Ok(())
}

fn mount_err(what: &str, target: &Path, e: nix::Error) -> String {
    format!("mount {what} on {}: {e}", target.display())
}

/// Pid 1 of the new pid namespace: build the filesystem view, apply the limits and
/// the seccomp filter, and exec the entrypoint. Returns only on failure.
fn pid1_main(
    config: &InitConfig,
    root: bool,
    trace: OwnedFd,
    lifeline: &OwnedFd,
    devices: Option<&Path>,
) -> Result<std::convert::Infallible, String> {
    let spec = &config.spec;
    let none: Option<&str> = None;
    // A mount namespace of its own: the pivot below must not move the ns child, which
    // reads the upper layer after the run, into the run's filesystem.
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("pid 1's mount namespace: {e}"))?;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| format!("make mounts private: {e}"))?;
    let scratch = &config.scratch;
    let upper = scratch.join("upper");
    let workdir = scratch.join("work");
    let new_root = scratch.join("root");
    let lower = spec
        .rootfs
        .canonicalize()
        .map_err(|e| format!("rootfs {}: {e}", spec.rootfs.display()))?;
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        overlay_escape(&lower),
        overlay_escape(&upper),
        overlay_escape(&workdir)
    );
    mount(
        Some("overlay"),
        &new_root,
        Some("overlay"),
        MsFlags::MS_NODEV,
        Some(opts.as_str()),
    )
    .map_err(|e| mount_err("the overlay rootfs", &new_root, e))?;

    // A fresh /proc of the new pid namespace.
    let proc_dir = real_dir(&new_root, "proc")?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(|e| mount_err("proc", &proc_dir, e))?;
    let dev = real_dir(&new_root, "dev")?;
    minimal_dev(&dev, devices)?;
    guard_proc(&proc_dir, &dev.join("null"))?;

    nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("hostname: {e}"))?;

    // Into the new root; the old one is detached, so no host path stays reachable.
    nix::unistd::chdir(&new_root).map_err(|e| format!("chdir to the new root: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach the old root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;

    let wd = Path::new(&spec.workdir);
    let wd = if wd.is_absolute() { wd } else { Path::new("/") };
    std::fs::create_dir_all(wd).map_err(|e| format!("workdir {}: {e}", wd.display()))?;
    nix::unistd::chdir(wd).map_err(|e| format!("workdir {}: {e}", wd.display()))?;

    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(
        Resource::RLIMIT_NOFILE,
        spec.limits.open_files,
        spec.limits.open_files,
    )
    .map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| format!("RLIMIT_CORE: {e}"))?;

    // The sensitive files to watch, opened while pid 1 can still read all of them.
    let watched = if spec.trace {
        crate::reads::open_sensitive()
    } else {
        Vec::new()
    };

    let (uid, gid) = if root { (spec.uid, spec.gid) } else { (0, 0) };
    if root {
        nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    }
    let (u, g) = (
        nix::unistd::Uid::from_raw(uid),
        nix::unistd::Gid::from_raw(gid),
    );
    // Only a container runtime's default capabilities stay possible (no CAP_NET_ADMIN
    // to undo the sinkhole, no CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_MODULE…).
    drop_bounding_caps()?;
    nix::unistd::setresgid(g, g, g).map_err(|e| format!("gid {gid}: {e}"))?;
    nix::unistd::setresuid(u, u, u).map_err(|e| format!("uid {uid}: {e}"))?;
    // Changing ids clears the parent-death signal: set it again.
    die_with(lifeline);
    // A session of its own: no controlling terminal of the caller's to type into.
    let _ = nix::unistd::setsid();

    let argv = cstrings(&spec.argv)?;
    let env = cstrings(&spec.env)?;
    let program = resolve_program(&spec.argv[0], &spec.env)?;

    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integers only.
    let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if nnp != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    crate::filter::install(spec.trace).map_err(|e| format!("seccomp filter: {e}"))?;
    // Last: from here on our own execve waits for the init to answer.
    if spec.trace {
        let listener =
            crate::trace::install_listener().map_err(|e| format!("seccomp listener: {e}"))?;
        use std::os::fd::AsRawFd;
        let fds: Vec<_> = std::iter::once(&listener)
            .chain(&watched)
            .map(|f| f.as_raw_fd())
            .collect();
        send(&trace, b"f", &fds).map_err(|e| format!("handing over the listener: {e}"))?;
    }
    drop(trace);
    drop(watched);
    let e = nix::unistd::execve(&program, &argv, &env).unwrap_err();
    Err(format!("execve {}: {e}", program.to_string_lossy()))
}

/// `root/name` as a real directory of the run's filesystem: an image may ship it as a
/// symlink (to a host path, as seen from here), which is replaced.
fn real_dir(root: &Path, name: &str) -> Result<PathBuf, String> {
    let p = root.join(name);
    if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
        std::fs::remove_file(&p).map_err(|e| format!("/{name}: {e}"))?;
    }
    match std::fs::create_dir(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("/{name}: {e}")),
    }
    Ok(p)
}

/// Device nodes of our own (made as root, before any namespace): null, zero, full,
/// random, urandom.
fn make_devices(dir: &Path) -> Result<PathBuf, String> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, minor) in [
        ("null", 3),
        ("zero", 5),
        ("full", 7),
        ("random", 8),
        ("urandom", 9),
    ] {
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, minor),
        )
        .map_err(|e| format!("mknod {}: {e}", p.display()))?;
        // The umask narrowed the mode.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &p,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| format!("chmod {}: {e}", p.display()))?;
    }
    Ok(dir.to_path_buf())
}

/// What a container runtime hides in `/proc`: the kernel's tunables and triggers
/// read-only (the run's root may be the host's uid 0), kernel memory and keys masked.
fn guard_proc(proc_dir: &Path, null: &Path) -> Result<(), String> {
    let none: Option<&str> = None;
    for ro in ["sys", "sysrq-trigger", "irq", "bus", "fs"] {
        let p = proc_dir.join(ro);
        if std::fs::symlink_metadata(&p).is_err() {
            continue;
        }
        mount(Some(&p), &p, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
            .map_err(|e| mount_err("a read-only bind", &p, e))?;
        mount(
            none,
            &p,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            none,
        )
        .map_err(|e| mount_err("read-only", &p, e))?;
    }
    for masked in [
        "kcore",
        "keys",
        "timer_list",
        "sched_debug",
        "latency_stats",
    ] {
        let p = proc_dir.join(masked);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
            mount(Some(null), &p, none, MsFlags::MS_BIND, none)
                .map_err(|e| mount_err("a mask", &p, e))?;
        }
    }
    Ok(())
}

/// Drop from the bounding set every capability but a container runtime's defaults.
fn drop_bounding_caps() -> Result<(), String> {
    const KEEP: &[libc::c_ulong] = &[
        0,  // CHOWN
        1,  // DAC_OVERRIDE
        3,  // FOWNER
        4,  // FSETID
        5,  // KILL
        6,  // SETGID
        7,  // SETUID
        8,  // SETPCAP
        10, // NET_BIND_SERVICE
        13, // NET_RAW
        18, // SYS_CHROOT
        27, // MKNOD
        29, // AUDIT_WRITE
        31, // SETFCAP
    ];
    for cap in 0..64 {
        if KEEP.contains(&cap) {
            continue;
        }
        // SAFETY: prctl(PR_CAPBSET_DROP) takes integers only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            // Numbers past the kernel's last capability.
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(format!("dropping capability {cap}: {e}"));
        }
    }
    Ok(())
}

/// Overlay options separate with `,` and `:`; escape them in paths.
fn overlay_escape(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(':', "\\:")
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, String> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| format!("{s:?} holds a NUL byte")))
        .collect()
}

/// `argv[0]` as a path in the new root: as given when it holds a `/`, else the first
/// executable file of that name in the run's `PATH` (a container runtime's lookup).
fn resolve_program(name: &str, env: &[String]) -> Result<CString, String> {
    let as_c = |s: &str| CString::new(s).map_err(|_| format!("{s:?} holds a NUL byte"));
    if name.contains('/') {
        return as_c(name);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{dir}/{name}");
        if let Ok(m) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return as_c(&candidate);
            }
        }
    }
    Err(format!("{name}: not found in PATH {path}"))
}

/// A tmpfs `/dev` with the few device nodes programs expect, bound from the host's
/// (a user namespace cannot create device nodes), and the usual links.
fn minimal_dev(dev: &Path, devices: Option<&Path>) -> Result<(), String> {
    let none: Option<&str> = None;
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("size=65536,mode=0755"),
    )
    .map_err(|e| mount_err("tmpfs", dev, e))?;
    // `tty` is a second null: the caller's terminal stays out of reach.
    for (name, from) in [
        ("null", "null"),
        ("zero", "zero"),
        ("full", "full"),
        ("random", "random"),
        ("urandom", "urandom"),
        ("tty", "null"),
    ] {
        let target = dev.join(name);
        std::fs::File::create(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        let source = match devices {
            Some(d) => d.join(from),
            None => Path::new("/dev").join(from),
        };
        mount(Some(&source), &target, none, MsFlags::MS_BIND, none)
            .map_err(|e| mount_err(&source.to_string_lossy(), &target, e))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).map_err(|e| format!("/dev/{link}: {e}"))?;
    }
    let shm = dev.join("shm");
    std::fs::create_dir(&shm).map_err(|e| format!("/dev/shm: {e}"))?;
    mount(
        Some("tmpfs"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=67108864,mode=1777"),
    )
    .map_err(|e| mount_err("tmpfs", &shm, e))?;
    Ok(())
}
