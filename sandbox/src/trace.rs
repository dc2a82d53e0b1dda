//! The syscall tracer: seccomp user notification. Pid 1 installs a filter that hands
//! these calls of every process of the run to a listener: `execve`, `execveat`,
//! `connect`, `memfd_create`, `prctl(PR_SET_NAME)`, opens *for writing* (the filter
//! tests the flags: reads, most of any program's opens, never stop), `unlink`,
//! `rename`, `chmod` and their `*at` forms, `kill`, and the escape
//! routes of [`crate::filter::OBSERVED`] (`mount`, `ptrace`, modules, `bpf`, new
//! namespaces…). The sandbox init reads each call's arguments from the caller's memory,
//! records an event, and lets the call go on (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
//! Observation only: the arguments can change between our read and the kernel's
//! (another thread of the caller), so nothing is decided on them. The escape routes are
//! refused by their number alone, which the kernel wrote: they fail with `EPERM`, and
//! with `ENOSYS` should the listener be gone; untraced runs refuse them in the deny-list
//! filter instead.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

/// One observed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "call")]
pub enum Call {
    Exec {
        path: String,
        argv: Vec<String>,
        /// What the file descriptor executed points to, for `execveat(fd, "",
        /// AT_EMPTY_PATH)` (`fexecve`) and `/proc/self/fd/N`: `/memfd:x (deleted)` is
        /// a program that never touched the disk.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fd_target: Option<String>,
        /// `sha256:<hex>` of the file executed, from the image or from what the run
        /// wrote (filled in after the run, by [`crate::runtime::enrich_execs`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// The static miner rule the executed file matches (`rule (title)`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        miner: Option<String>,
    },
    /// `memfd_create(name)`: an anonymous file in memory, the usual first step of a
    /// fileless execution.
    MemfdCreate {
        name: String,
    },
    /// `prctl(PR_SET_NAME, name)`: the process renamed itself (as `ps` and `top` show).
    SetName {
        name: String,
    },
    Connect {
        /// `inet`, `inet6`, `unix` or the family number.
        family: String,
        /// IP address or socket path.
        addr: String,
        port: Option<u16>,
    },
    /// `sendto` with a destination: a datagram (UDP, or a Unix datagram socket's path).
    SendTo {
        family: String,
        addr: String,
        port: Option<u16>,
    },
    /// A file opened to be written (`open`, `openat`, `creat`, `openat2`); `flags` as
    /// `O_` names without the prefix (`wronly,creat,trunc`).
    Open {
        path: String,
        flags: String,
    },
    /// `unlink`/`unlinkat` of a file (directories removed are not recorded).
    Unlink {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    /// `chmod` and its kin; the mode in octal.
    Chmod {
        path: String,
        mode: String,
    },
    /// `kill`: the target as the caller named it (a pid in the run's pid namespace, 0 or
    /// negative for groups). Thread-directed signals (`tkill`, `tgkill`) are runtime
    /// machinery (Go preempts goroutines with one every 10 ms) and are not traced.
    Kill {
        target: i64,
        signal: i64,
    },
    /// A sensitive file (password hashes, SSH private keys, stored credentials, the
    /// planted bait) opened, for reading or not: seen by fanotify, not by the filter.
    Read {
        path: String,
    },
    /// An escape route the sandbox refused (`mount`, `ptrace`, a kernel module, a new
    /// namespace…): the call failed with `EPERM`; `detail` holds its arguments where they
    /// say something (what a mount mounts, whom a ptrace targets).
    Denied {
        syscall: String,
        detail: String,
    },
}

/// The calls a program can make by the thousand at no cost (renames, memfds, file
/// operations, signals, refused calls), by call number: each kind has its own cap per
/// run, so a flood of them cannot push the execs and connects out, and a call beyond its
/// kind's cap is let go without reading its arguments. `None` for execs and connects.
pub(crate) fn kind_of(nr: libc::c_long) -> Option<(usize, usize)> {
    #[cfg(target_arch = "x86_64")]
    match nr {
        libc::SYS_open | libc::SYS_creat => return Some((2, 2048)),
        libc::SYS_unlink => return Some((3, 2048)),
        libc::SYS_rename => return Some((4, 1024)),
        libc::SYS_chmod => return Some((5, 1024)),
        _ => {}
    }
    match nr {
        libc::SYS_prctl => Some((0, 256)),
        libc::SYS_memfd_create => Some((1, 256)),
        libc::SYS_openat | libc::SYS_openat2 => Some((2, 2048)),
        libc::SYS_unlinkat => Some((3, 2048)),
        libc::SYS_renameat | libc::SYS_renameat2 => Some((4, 1024)),
        libc::SYS_fchmod | libc::SYS_fchmodat | SYS_FCHMODAT2 => Some((5, 1024)),
        libc::SYS_kill => Some((6, 256)),
        libc::SYS_sendto => Some((9, 1024)),
        _ if crate::filter::observed(nr) => Some((7, 256)),
        _ => None,
    }
}

/// How many kinds [`kind_of`] counts, sensitive reads (fanotify's) among them.
pub(crate) const CAPPED_KINDS: usize = 10;
/// The kind index and cap of [`Call::Read`].
pub(crate) const READ_KIND: (usize, usize) = (8, 256);

/// `fchmodat2`, the same number on every architecture (the libc crate does not name it
/// on all of them).
const SYS_FCHMODAT2: libc::c_long = 452;

/// A call, when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the sandbox init started.
    pub t_ms: u64,
    /// Process id inside the run's pid namespace (0 if it could not be read).
    pub pid: u32,
    #[serde(flatten)]
    pub call: Call,
}

/// Most events kept per run; the rest are counted. With a path of at most 4 KiB and
/// 32 arguments of at most 512 bytes each, that bounds the events' memory to ~200 MB at
/// worst, and far less for real programs.
pub const MAX_EVENTS: usize = 10_000;

/// Calls that stop whatever their arguments: execs, connects, memfds, deletions, renames,
/// mode changes and signals (rare next to reads and writes), and the escape routes
/// [`crate::filter::OBSERVED`] lists, which the tracer answers with `EPERM` itself.
fn traced() -> Vec<libc::c_long> {
    let mut v = vec![
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_connect,
        libc::SYS_memfd_create,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        SYS_FCHMODAT2,
        libc::SYS_kill,
        // Its flags sit in memory, out of the filter's reach; rarely used.
        libc::SYS_openat2,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_chmod,
        libc::SYS_creat,
    ]);
    v.extend(crate::filter::OBSERVED.iter().map(|(n, _)| *n));
    v
}

/// Open flags that make an open worth a stop: the file is opened to be written. Opens
/// for reading (most of any program's opens) never stop.
const WRITE_FLAGS: u32 = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u32;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// A check's "code" meaning: the argument, all 64 bits of it, is not zero.
const NONZERO: u16 = u16::MAX;

/// Where a BPF instruction jumps when its test holds or fails.
#[derive(Clone, Copy)]
enum To {
    Next,
    Allow,
    Notify,
    /// The argument check of the call at this index of the checks.
    Check(usize),
}

enum Insn {
    Load(u32),
    Ret(u32),
    /// `code` (a JEQ or a JSET against `k`), then where to go.
    Jump(u16, u32, To, To),
}

/// The notifying filter: arch check, the always-traced calls, the calls whose argument
/// decides (prctl's option, open's flags), each with its check after the list.
fn program() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let jeq = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
    let jset = (BPF_JMP | BPF_JSET | BPF_K) as u16;
    // seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (their low 32 bits: both
    // architectures are little-endian).
    let arg = |i: u32| 16 + 8 * i;
    // (call, argument, jump code, value): notify when the test on the argument holds.
    let mut checks: Vec<(libc::c_long, u32, u16, u32)> = vec![
        (libc::SYS_prctl, 0, jeq, libc::PR_SET_NAME as u32),
        (libc::SYS_openat, 2, jset, WRITE_FLAGS),
        // sendto with a destination (a datagram's); a connected socket's sends pass NULL
        // and never stop.
        (libc::SYS_sendto, 4, NONZERO, 0),
    ];
    #[cfg(target_arch = "x86_64")]
    checks.push((libc::SYS_open, 1, jset, WRITE_FLAGS));

    let mut insns = vec![
        Insn::Load(4),
        Insn::Jump(jeq, AUDIT_ARCH, To::Next, To::Allow),
        Insn::Load(0),
    ];
    for nr in traced() {
        insns.push(Insn::Jump(jeq, nr as u32, To::Notify, To::Next));
    }
    for (i, (nr, ..)) in checks.iter().enumerate() {
        insns.push(Insn::Jump(jeq, *nr as u32, To::Check(i), To::Next));
    }
    insns.push(Insn::Ret(libc::SECCOMP_RET_ALLOW));
    let mut check_at = Vec::new();
    for (_, a, code, k) in &checks {
        check_at.push(insns.len());
        insns.push(Insn::Load(arg(*a)));
        if *code == NONZERO {
            // A 64-bit argument that is not NULL: its low half, then its high half (a
            // pointer 4 GiB-aligned has a zero low half).
            insns.push(Insn::Jump(jeq, 0, To::Next, To::Notify));
            insns.push(Insn::Load(arg(*a) + 4));
            insns.push(Insn::Jump(jeq, 0, To::Allow, To::Notify));
        } else {
            insns.push(Insn::Jump(*code, *k, To::Notify, To::Allow));
        }
    }
    let allow_at = insns.len();
    insns.push(Insn::Ret(libc::SECCOMP_RET_ALLOW));
    let notify_at = insns.len();
    insns.push(Insn::Ret(libc::SECCOMP_RET_USER_NOTIF));

    let ld = (BPF_LD | BPF_W | BPF_ABS) as u16;
    let ret = (BPF_RET | BPF_K) as u16;
    let offset = |at: usize, to: To| -> u8 {
        let target = match to {
            To::Next => at + 1,
            To::Allow => allow_at,
            To::Notify => notify_at,
            To::Check(i) => check_at[i],
        };
        // Jumps go forward only, at most 255 instructions: the program is far shorter.
        u8::try_from(target - at - 1).expect("a short filter")
    };
    insns
        .iter()
        .enumerate()
        .map(|(at, insn)| match *insn {
            Insn::Load(k) => libc::sock_filter {
                code: ld,
                jt: 0,
                jf: 0,
                k,
            },
            Insn::Ret(k) => libc::sock_filter {
                code: ret,
                jt: 0,
                jf: 0,
                k,
            },
            Insn::Jump(code, k, t, f) => libc::sock_filter {
                code,
                jt: offset(at, t),
                jf: offset(at, f),
                k,
            },
        })
        .collect()
}

/// Install the notifying filter on the calling thread (`no_new_privs` must be set) and
/// return the listener.
pub(crate) fn install_listener() -> std::io::Result<OwnedFd> {
    let mut prog = program();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: seccomp(SET_MODE_FILTER, NEW_LISTENER, &fprog) reads `fprog` and the
    // program it points to, both alive for the call; it returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The answer to a stopped call: an escape route fails with `EPERM` (decided by the
/// call's number, which the kernel wrote, never by what memory held); anything else goes
/// on as if never stopped.
fn response(id: u64, nr: libc::c_long) -> libc::seccomp_notif_resp {
    if crate::filter::observed(nr) {
        libc::seccomp_notif_resp {
            id,
            val: 0,
            error: -libc::EPERM,
            flags: 0,
        }
    } else {
        libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        }
    }
}

/// Ask the kernel to hand each notification over on the caller's own CPU (Linux 6.6+,
/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`): the stopped caller and the listener take
/// turns, and a cross-CPU wake-up each way is what a stop costs on a VM. Older kernels
/// refuse the flag; the tracer works the same, only slower.
pub(crate) fn sync_wake_up(listener: &OwnedFd) -> bool {
    // _IOW('!', 4, __u64)
    const SECCOMP_IOCTL_NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
    const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
    // SAFETY: SET_FLAGS takes the flags by value; it reads no memory of ours.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SET_FLAGS as _,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        ) == 0
    }
}

/// What [`serve_one`] did with a notification.
pub(crate) enum Served {
    Event(Event),
    /// Answered without reading its arguments: `wanted` said no.
    Skipped,
    /// Nothing to record (the listener had nothing, the caller died meanwhile, or the
    /// call is not one that is recorded, such as a read-only `openat2`).
    Nothing,
}

/// Receive one notification, record it (if `wanted` says so for its call number), and
/// answer it: let the call continue, or refuse an escape route.
pub(crate) fn serve_one(
    listener: &OwnedFd,
    t_ms: u64,
    mut wanted: impl FnMut(libc::c_long) -> bool,
) -> Served {
    // SAFETY: seccomp_notif is plain integers; all-zero is the state RECV requires.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one seccomp_notif into `req`, which is that size and ours.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req as *mut libc::seccomp_notif,
        )
    };
    if r < 0 {
        return Served::Nothing;
    }
    let nr = req.data.nr as libc::c_long;
    let keep = wanted(nr);
    let call = if keep {
        read_call(req.pid, &req.data)
    } else {
        None
    };
    let pid = if call.is_some() { ns_pid(req.pid) } else { 0 };
    // What was read belongs to the caller only if the notification is still pending:
    // had the caller died and its pid been reused, /proc/PID was another process's.
    // SAFETY: ID_VALID reads one u64 (the notification id) from the pointer given.
    let valid = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &req.id as *const u64,
        )
    } == 0;
    let call = call.filter(|_| valid);
    let resp = response(req.id, nr);
    // SAFETY: SEND reads one seccomp_notif_resp from `resp`, alive for the call. An
    // error means the caller is gone; there is nothing to answer then.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &resp as *const libc::seccomp_notif_resp,
        );
    }
    match call {
        Some(call) => Served::Event(Event { t_ms, pid, call }),
        None if !keep => Served::Skipped,
        None => Served::Nothing,
    }
}

/// The pid of host process `pid` inside the run, or `None` when it is not in a nested
/// pid namespace (the sandbox's own processes are not).
pub(crate) fn run_pid(pid: u32) -> Option<u32> {
    let levels = ns_pids(pid)?;
    if levels.len() < 2 {
        return None;
    }
    levels.last().copied()
}

/// The pid of host process `pid` inside its own (innermost) pid namespace.
fn ns_pid(pid: u32) -> u32 {
    ns_pids(pid).and_then(|l| l.last().copied()).unwrap_or(0)
}

/// The pids of host process `pid` in each pid namespace it is in, outermost first
/// (`NSpid` of its status).
fn ns_pids(pid: u32) -> Option<Vec<u32>> {
    // Read as bytes: a process name that is not UTF-8 must not hide the pid.
    let status = std::fs::read(format!("/proc/{pid}/status")).ok()?;
    String::from_utf8_lossy(&status)
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .map(|p| p.parse().ok())
        .collect()
}

struct Mem(std::fs::File);

impl Mem {
    /// A NUL-terminated string at `addr`, at most `max` bytes.
    fn string(&self, addr: u64, max: usize) -> Option<String> {
        if addr == 0 {
            return None;
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while out.len() < max {
            let n = self.0.read_at(&mut buf, addr + out.len() as u64).ok()?;
            if n == 0 {
                break;
            }
            if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..end]);
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            out.extend_from_slice(&buf[..n]);
        }
        out.truncate(max);
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn bytes(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let n = self.0.read_at(&mut buf, addr).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// A NULL-terminated array of string pointers (argv), at most `max` of them.
    fn strings(&self, addr: u64, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..max as u64 {
            let Some(p) = self.bytes(addr + 8 * i, 8) else {
                break;
            };
            let Ok(p) = <[u8; 8]>::try_from(p.as_slice()) else {
                break;
            };
            let p = u64::from_ne_bytes(p);
            if p == 0 {
                break;
            }
            out.push(self.string(p, 512).unwrap_or_default());
        }
        out
    }
}

fn read_call(pid: u32, data: &libc::seccomp_data) -> Option<Call> {
    let mem = Mem(std::fs::File::open(format!("/proc/{pid}/mem")).ok()?);
    let a = data.args;
    let nr = data.nr as libc::c_long;
    if nr == libc::SYS_execve || nr == libc::SYS_execveat {
        let (path_at, argv) = if nr == libc::SYS_execve {
            (a[0], a[1])
        } else {
            (a[1], a[2])
        };
        let path = mem.string(path_at, 4096).unwrap_or_default();
        // The descriptor executed, when the program names one rather than a file.
        let fd = if nr == libc::SYS_execveat
            && path.is_empty()
            && a[4] & libc::AT_EMPTY_PATH as u64 != 0
        {
            Some(a[0] as i32)
        } else {
            // `//proc/./self/fd/3` is the same file: the path is normalized first.
            let norm: Vec<&str> = path
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            match norm.as_slice() {
                ["proc", _, "fd", n] | ["dev", "fd", n] => n.parse::<i32>().ok(),
                ["proc", _, "task", _, "fd", n] => n.parse::<i32>().ok(),
                _ => None,
            }
        };
        let fd_target = fd
            .filter(|fd| *fd >= 0)
            .and_then(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
            .map(|t| t.to_string_lossy().into_owned());
        // `./x` and a name found through PATH's relative entries, made absolute as the
        // unlinks and writes are.
        let path = if path.is_empty() || path.starts_with('/') {
            path
        } else {
            let dirfd = if nr == libc::SYS_execveat {
                a[0] as i32
            } else {
                libc::AT_FDCWD
            };
            at_path(pid, dirfd, &path).unwrap_or(path)
        };
        return Some(Call::Exec {
            path,
            argv: mem.strings(argv, 32),
            fd_target,
            sha256: None,
            miner: None,
        });
    }
    if nr == libc::SYS_memfd_create {
        return Some(Call::MemfdCreate {
            name: mem.string(a[0], 249).unwrap_or_default(),
        });
    }
    if nr == libc::SYS_prctl {
        // The kernel keeps 15 bytes of it.
        return Some(Call::SetName {
            name: mem.string(a[1], 15).unwrap_or_default(),
        });
    }
    if nr == libc::SYS_connect {
        let len = (a[2] as usize).min(128);
        let sa = mem.bytes(a[1], len)?;
        return Some(sockaddr(&sa));
    }
    if nr == libc::SYS_sendto {
        let len = (a[5] as usize).min(128);
        let sa = mem.bytes(a[4], len)?;
        let Call::Connect { family, addr, port } = sockaddr(&sa) else {
            return None;
        };
        return Some(Call::SendTo { family, addr, port });
    }
    let at = |dirfd: u64, addr: u64| at_path(pid, dirfd as i32, &mem.string(addr, 4096)?);
    // The *at calls' descriptor; AT_FDCWD for the older calls without one.
    const CWD: u64 = libc::AT_FDCWD as u32 as u64;
    #[cfg(target_arch = "x86_64")]
    match nr {
        libc::SYS_open => return open_call(at(CWD, a[0])?, a[1]),
        libc::SYS_creat => {
            return open_call(
                at(CWD, a[0])?,
                (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
            );
        }
        libc::SYS_unlink => {
            return Some(Call::Unlink {
                path: at(CWD, a[0])?,
            });
        }
        libc::SYS_rename => {
            return Some(Call::Rename {
                from: at(CWD, a[0])?,
                to: at(CWD, a[1])?,
            });
        }
        libc::SYS_chmod => return Some(chmod(at(CWD, a[0])?, a[1])),
        _ => {}
    }
    match nr {
        libc::SYS_openat => open_call(at(a[0], a[1])?, a[2]),
        libc::SYS_openat2 => {
            // struct open_how: flags (u64) first.
            let how = mem.bytes(a[2], 8)?;
            let flags = u64::from_ne_bytes(how.as_slice().try_into().ok()?);
            open_call(at(a[0], a[1])?, flags)
        }
        libc::SYS_unlinkat if a[2] & libc::AT_REMOVEDIR as u64 == 0 => Some(Call::Unlink {
            path: at(a[0], a[1])?,
        }),
        libc::SYS_renameat | libc::SYS_renameat2 => Some(Call::Rename {
            from: at(a[0], a[1])?,
            to: at(a[2], a[3])?,
        }),
        libc::SYS_fchmod => Some(chmod(fd_path(pid, a[0] as i32)?, a[1])),
        libc::SYS_fchmodat | SYS_FCHMODAT2 => Some(chmod(at(a[0], a[1])?, a[2])),
        libc::SYS_kill => Some(Call::Kill {
            target: a[0] as i32 as i64,
            signal: a[1] as i32 as i64,
        }),
        _ if crate::filter::observed(nr) => Some(Call::Denied {
            syscall: crate::filter::name(nr).to_string(),
            detail: denied_detail(&mem, nr, &a),
        }),
        _ => None,
    }
}

/// What a refused call's arguments say: a mount's source, target and type, a ptrace's
/// request and target, a module's parameters.
fn denied_detail(mem: &Mem, nr: libc::c_long, a: &[u64; 6]) -> String {
    let s = |addr: u64| mem.string(addr, 256).unwrap_or_default();
    match nr {
        libc::SYS_mount => format!("{} on {} type {}", s(a[0]), s(a[1]), s(a[2])),
        libc::SYS_umount2 | libc::SYS_chroot => s(a[0]),
        libc::SYS_pivot_root => format!("{} {}", s(a[0]), s(a[1])),
        libc::SYS_ptrace => format!("request {} pid {}", a[0] as i64, a[1] as i32),
        libc::SYS_process_vm_writev => format!("pid {}", a[0] as i32),
        libc::SYS_unshare => format!("flags {:#x}", a[0]),
        libc::SYS_setns => format!("fd {} type {:#x}", a[0] as i32, a[1]),
        libc::SYS_finit_module => s(a[1]),
        libc::SYS_init_module => s(a[2]),
        _ => String::new(),
    }
}

fn open_call(path: String, flags: u64) -> Option<Call> {
    let flags = flags as i32;
    let mut names = vec![match flags & libc::O_ACCMODE {
        libc::O_WRONLY => "wronly",
        libc::O_RDWR => "rdwr",
        _ => "rdonly",
    }];
    for (bit, name) in [
        (libc::O_CREAT, "creat"),
        (libc::O_TRUNC, "trunc"),
        (libc::O_APPEND, "append"),
        (libc::O_EXCL, "excl"),
    ] {
        if flags & bit != 0 {
            names.push(name);
        }
    }
    // openat2 always stops: a read-only open of it is not recorded.
    if names.len() == 1 && names[0] == "rdonly" {
        return None;
    }
    Some(Call::Open {
        path,
        flags: names.join(","),
    })
}

fn chmod(path: String, mode: u64) -> Call {
    Call::Chmod {
        path,
        mode: format!("{:04o}", mode & 0o7777),
    }
}

/// What descriptor `fd` of `pid` points to.
fn fd_path(pid: u32, fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// `path` as the caller meant it: absolute, or relative to its working directory
/// (`AT_FDCWD`) or to directory descriptor `dirfd`. Paths are as the run sees them (its
/// root is the image's). Unresolved (`?/name`) when the directory cannot be read.
fn at_path(pid: u32, dirfd: i32, path: &str) -> Option<String> {
    if path.starts_with('/') {
        return Some(path.to_string());
    }
    let dir = if dirfd == libc::AT_FDCWD {
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .ok()
            .map(|t| t.to_string_lossy().into_owned())
    } else {
        fd_path(pid, dirfd)
    };
    let dir = dir.unwrap_or_else(|| "?".into());
    Some(if path.is_empty() {
        dir
    } else if dir.ends_with('/') {
        format!("{dir}{path}")
    } else {
        format!("{dir}/{path}")
    })
}

fn sockaddr(sa: &[u8]) -> Call {
    let family = sa
        .get(..2)
        .map(|f| u16::from_ne_bytes([f[0], f[1]]))
        .unwrap_or(0);
    let port = || sa.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match family as i32 {
        libc::AF_INET if sa.len() >= 8 => Call::Connect {
            family: "inet".into(),
            addr: std::net::Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]).to_string(),
            port: port(),
        },
        libc::AF_INET6 if sa.len() >= 24 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&sa[8..24]);
            Call::Connect {
                family: "inet6".into(),
                addr: std::net::Ipv6Addr::from(ip).to_string(),
                port: port(),
            }
        }
        libc::AF_UNIX => {
            let path = &sa[2.min(sa.len())..];
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            Call::Connect {
                family: "unix".into(),
                addr: String::from_utf8_lossy(&path[..end]).into_owned(),
                port: None,
            }
        }
        f => Call::Connect {
            family: f.to_string(),
            addr: String::new(),
            port: None,
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sockaddrs_are_decoded() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&3333u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[198, 18, 1, 4]);
        assert_eq!(
            super::sockaddr(&v4),
            super::Call::Connect {
                family: "inet".into(),
                addr: "198.18.1.4".into(),
                port: Some(3333)
            }
        );
        let mut un = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        un.extend_from_slice(b"/run/x.sock\0");
        assert!(
            matches!(super::sockaddr(&un), super::Call::Connect { addr, .. } if addr == "/run/x.sock")
        );
    }
}
