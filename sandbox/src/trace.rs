//! The syscall tracer: seccomp user notification. Pid 1 installs a filter that hands
//! `execve`, `execveat`, `connect`, `memfd_create` and `prctl(PR_SET_NAME)` of every
//! process of the run to a listener (the last two are rare calls: no cost to the
//! others); the
//! sandbox init reads each call's arguments from the caller's memory, records an event,
//! and lets the call go on (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). Observation only: the
//! arguments can change between our read and the kernel's (another thread of the
//! caller), so nothing is enforced here; the deny-list filter enforces.

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
    },
    /// `memfd_create(name)`: an anonymous file in memory, the usual first step of a
    /// fileless execution.
    MemfdCreate { name: String },
    /// `prctl(PR_SET_NAME, name)`: the process renamed itself (as `ps` and `top` show).
    SetName { name: String },
    Connect {
        /// `inet`, `inet6`, `unix` or the family number.
        family: String,
        /// IP address or socket path.
        addr: String,
        port: Option<u16>,
    },
}

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

const TRACED: &[libc::c_long] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_connect,
    libc::SYS_memfd_create,
];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Install the notifying filter on the calling thread (`no_new_privs` must be set) and
/// return the listener.
pub(crate) fn install_listener() -> std::io::Result<OwnedFd> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let ld = (BPF_LD | BPF_W | BPF_ABS) as u16;
    let jeq = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
    let ret = (BPF_RET | BPF_K) as u16;
    // seccomp_data: nr at 0, arch at 4.
    let mut prog = vec![
        stmt(ld, 4),
        jump(jeq, AUDIT_ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(ld, 0),
    ];
    // After the syscall checks: prctl → its option is checked; else ALLOW; then the
    // option check (PR_SET_NAME → notify, else ALLOW); the USER_NOTIF return last.
    let n = TRACED.len();
    for (i, &nr) in TRACED.iter().enumerate() {
        // Matched: jump over the remaining checks, the prctl check and its four
        // instructions, to the USER_NOTIF return.
        prog.push(jump(jeq, nr as u32, (n - i + 4) as u8, 0));
    }
    prog.push(jump(jeq, libc::SYS_prctl as u32, 1, 0));
    prog.push(stmt(ret, libc::SECCOMP_RET_ALLOW));
    // seccomp_data.args[0], its low 32 bits (both architectures are little-endian).
    prog.push(stmt(ld, 16));
    prog.push(jump(jeq, libc::PR_SET_NAME as u32, 1, 0));
    prog.push(stmt(ret, libc::SECCOMP_RET_ALLOW));
    prog.push(stmt(ret, libc::SECCOMP_RET_USER_NOTIF));
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

/// Receive one notification, record it, and let the call continue. `None` when the
/// listener has nothing (the caller died meanwhile, or no filter user is left).
pub(crate) fn serve_one(listener: &OwnedFd, t_ms: u64) -> Option<Event> {
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
        return None;
    }
    let call = read_call(req.pid, &req.data);
    let pid = ns_pid(req.pid);
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
    let resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    // SAFETY: SEND reads one seccomp_notif_resp from `resp`, alive for the call. An
    // error means the caller is gone; there is nothing to answer then.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &resp as *const libc::seccomp_notif_resp,
        );
    }
    call.map(|call| Event { t_ms, pid, call })
}

/// The pid of host process `pid` inside its own (innermost) pid namespace.
fn ns_pid(pid: u32) -> u32 {
    // Read as bytes: a process name that is not UTF-8 must not hide the pid.
    std::fs::read(format!("/proc/{pid}/status"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last()?.parse().ok())
        })
        .unwrap_or(0)
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
        return Some(Call::Exec {
            path,
            argv: mem.strings(argv, 32),
            fd_target,
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
    None
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
