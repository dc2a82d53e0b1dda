//! Opens of sensitive files (password hashes, SSH private keys, stored credentials, the
//! planted bait), seen by fanotify. A seccomp filter cannot read an open's path, and
//! stopping every open costs too much (docs/sandbox.md, "Measured"); an inode mark on
//! each sensitive file costs nothing until one is opened.
//!
//! Pid 1 opens the files its filesystem has (read-only, before it drops privileges,
//! before its `execve`) and hands the descriptors to the sandbox init with the tracer's
//! listener; the init marks each inode (`FAN_OPEN`) and closes them. Every open of one
//! by a process of the run is then an event with its pid. fanotify needs
//! `CAP_SYS_ADMIN` of the host: as root only; without it the run says so, and bait
//! reads are still seen by their access times.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sensitive paths of any image (beside [`crate::bait::Bait::planted_paths`]), and the
/// ones under each home directory.
const SENSITIVE: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_dsa_key",
];
const IN_HOME: &[&str] = &[
    ".ssh/id_rsa",
    ".ssh/id_ecdsa",
    ".ssh/id_ed25519",
    ".ssh/id_dsa",
    ".git-credentials",
    ".netrc",
    ".pgpass",
    ".aws/credentials",
    ".docker/config.json",
    ".kube/config",
];
/// Most files watched per run (one descriptor each in the hand-over).
const MAX_WATCHED: usize = 64;

/// In pid 1, inside the run's filesystem: descriptors of the sensitive files it has
/// (opening does not change a file's access time; symlinks are not followed).
pub(crate) fn open_sensitive() -> Vec<OwnedFd> {
    let mut paths: Vec<String> = SENSITIVE.iter().map(|p| p.to_string()).collect();
    paths.extend(
        crate::bait::Bait::planted_paths()
            .iter()
            .map(|p| p.to_string()),
    );
    let mut homes = vec!["/root".to_string()];
    if let Ok(rd) = std::fs::read_dir("/home") {
        homes.extend(
            rd.flatten()
                .take(16)
                .map(|e| format!("/home/{}", e.file_name().to_string_lossy())),
        );
    }
    for h in &homes {
        paths.extend(IN_HOME.iter().map(|f| format!("{h}/{f}")));
    }
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    for p in paths {
        if out.len() >= MAX_WATCHED {
            break;
        }
        let Ok(c) = std::ffi::CString::new(p) else {
            continue;
        };
        // SAFETY: open reads the NUL-terminated path; a new fd or -1 comes back.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY
                    | libc::O_NOFOLLOW
                    | libc::O_NONBLOCK
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
            )
        };
        if fd >= 0 {
            // SAFETY: the fd was just opened and is ours alone.
            out.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    out
}

/// In the sandbox init: a fanotify group with an open mark on each file of `fds`.
pub(crate) fn watch(fds: Vec<OwnedFd>) -> Result<OwnedFd, String> {
    // SAFETY: fanotify_init takes flags only; a new fd or -1 comes back.
    let fan = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK,
            (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE) as u32,
        )
    };
    if fan < 0 {
        return Err(format!(
            "reads of sensitive files are not watched (fanotify: {}; it needs root)",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the fd was just made and is ours alone.
    let fan = unsafe { OwnedFd::from_raw_fd(fan) };
    for fd in &fds {
        // SAFETY: a NULL path marks the object `fd` refers to; nothing else is read.
        unsafe {
            libc::fanotify_mark(
                fan.as_raw_fd(),
                libc::FAN_MARK_ADD,
                libc::FAN_OPEN,
                fd.as_raw_fd(),
                std::ptr::null(),
            )
        };
    }
    Ok(fan)
}

/// The opens waiting on `fan`: (host pid, path as the run sees it).
pub(crate) fn events(fan: &OwnedFd) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // A bounded batch: a program that opens in a loop must not hold the init here.
    for _ in 0..16 {
        // SAFETY: read writes at most buf.len() bytes into buf, which is ours.
        let n = unsafe { libc::read(fan.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        let mut at = 0usize;
        let size = std::mem::size_of::<libc::fanotify_event_metadata>();
        while at + size <= n as usize {
            // SAFETY: `size` bytes at `at` are inside what read returned; the struct is
            // plain integers and read unaligned.
            let m: libc::fanotify_event_metadata =
                unsafe { std::ptr::read_unaligned(buf.as_ptr().add(at).cast()) };
            if m.fd >= 0 {
                // SAFETY: the kernel opened this fd for us with the event.
                let fd = unsafe { OwnedFd::from_raw_fd(m.fd) };
                let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((m.pid, path));
            }
            if (m.event_len as usize) < size {
                break;
            }
            at += m.event_len as usize;
        }
    }
    out
}
