//! WASI images: an entrypoint that is a WebAssembly module runs under wasmtime (the
//! engine yara-x already brings, with the same features) instead of in the namespace
//! sandbox. The module gets WASI preview 1, written here as a subset: arguments and
//! environment from the image config, stdout and stderr captured, stdin empty, clocks,
//! random bytes, and the image's root filesystem preopened as `/`, read-only (every
//! open is resolved inside it by the kernel, `openat2(RESOLVE_IN_ROOT)`). No sockets:
//! the socket calls, like every call not written here, answer `ENOSYS`. Fuel is
//! metered (the fuel burned is the run's instruction count, its CPU evidence), the wall
//! budget is an epoch deadline, and memories and tables are capped by the run's memory
//! limit. Imports from anywhere but WASI refuse the module.
//!
//! The module's imports are listed in the timeline, and its bytes get the static
//! content scan (cryptonight-in-wasm miners carry their algorithm's constants and their
//! pool strings).
//!
//! Isolation is wasmtime's own: the module runs in the caller's process, with no
//! access to anything but the memory it was given and the calls below.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::Mode;
use wasmtime::{
    Caller, Config, Engine, Extern, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Val,
    ValType,
};

use crate::run::{Exit, Limits, Outcome, ProcessCpu};
use crate::trace::{Call, Event};

/// The module name of WASI preview 1's imports.
const WASI: &str = "wasi_snapshot_preview1";
/// Largest module compiled (compiling is not interruptible).
pub const MAX_MODULE: u64 = 32 << 20;
/// Fuel handed to a run: far more than any wall budget lets it burn (wasmtime burns
/// about one unit per instruction).
const FUEL: u64 = 1 << 60;
/// Most bytes one host call reads or makes (files, random bytes): host time that the
/// wall budget's epoch cannot interrupt.
const MAX_IO: u64 = 64 << 20;
/// How often the wall-clock deadline is looked at.
const TICK: Duration = Duration::from_millis(10);

// WASI errno values.
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const EIO: i32 = 29;
const ENOSYS: i32 = 52;
const ENOENT: i32 = 44;
const ENOTDIR: i32 = 54;
const EROFS: i32 = 69;
const ESPIPE: i32 = 70;

/// Every right preview 1 defines (bits 0 to 29).
const ALL_RIGHTS: u64 = (1 << 30) - 1;

// File types of fdstat and filestat.
const CHAR_DEVICE: u8 = 2;
const DIRECTORY: u8 = 3;
const REGULAR_FILE: u8 = 4;

/// Whether an image is a WASI one: its platform says so, or its entrypoint is a
/// WebAssembly binary (by its magic bytes, read inside `rootfs`: a name ending in
/// `.wasm` proves nothing, and an ELF so named runs natively, as Docker would run it).
pub fn is_wasi(config: &canary_analyzer::image::ImageConfig, rootfs: &Path) -> bool {
    let os = config.os.as_deref().unwrap_or("");
    let arch = config.architecture.as_deref().unwrap_or("");
    if matches!(os, "wasi" | "wasip1" | "wasip2") || arch == "wasm" || arch == "wasm32" {
        return true;
    }
    let first = config
        .config
        .entrypoint
        .iter()
        .flatten()
        .chain(config.config.cmd.iter().flatten())
        .next();
    first.is_some_and(|p| {
        p.starts_with('/')
            && crate::rootfs::read_in_root(rootfs, p, 4).is_some_and(|b| b == b"\0asm")
    })
}

/// What a compiled module imports, as `module.name (kind)`.
fn imports(module: &Module) -> Vec<String> {
    module
        .imports()
        .map(|i| {
            let kind = match i.ty() {
                wasmtime::ExternType::Func(_) => "func",
                wasmtime::ExternType::Memory(_) => "memory",
                wasmtime::ExternType::Table(_) => "table",
                wasmtime::ExternType::Global(_) => "global",
                wasmtime::ExternType::Tag(_) => "tag",
            };
            format!("{}.{} ({kind})", i.module(), i.name())
        })
        .collect()
}

enum Handle {
    Stdin,
    Stdout,
    Stderr,
    /// A directory; `path` is its path in the image, `/` for the preopen.
    Dir {
        path: String,
    },
    File {
        file: std::fs::File,
    },
}

struct State {
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    root: OwnedFd,
    fds: Vec<Option<Handle>>,
    out: [Vec<u8>; 2],
    dropped: [u64; 2],
    output_cap: usize,
    events: Vec<Event>,
    events_dropped: u64,
    started: Instant,
    deadline: Instant,
    limits: StoreLimits,
    /// The least fuel left seen at a tick.
    fuel_left: u64,
}

/// How a run of the module stopped early.
#[derive(Debug)]
struct ProcExit(i32);

impl std::fmt::Display for ProcExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proc_exit({})", self.0)
    }
}

impl std::error::Error for ProcExit {}

impl State {
    fn record(&mut self, call: Call) {
        if self.events.len() < 1024 {
            let t_ms = self.started.elapsed().as_millis() as u64;
            self.events.push(Event { t_ms, pid: 1, call });
        } else {
            self.events_dropped += 1;
        }
    }

    fn write_out(&mut self, which: usize, data: &[u8]) {
        let room = self.output_cap.saturating_sub(self.out[which].len());
        let keep = data.len().min(room);
        self.out[which].extend_from_slice(&data[..keep]);
        self.dropped[which] += (data.len() - keep) as u64;
    }

    /// `path` relative to directory `dirfd` as a path of the image (`/a/b`), lexically:
    /// `..` cannot climb above `/` (the kernel enforces the same again on open).
    fn image_path(&self, dirfd: i32, path: &str) -> Result<String, i32> {
        let base = match self.fds.get(dirfd as usize).and_then(Option::as_ref) {
            Some(Handle::Dir { path }) => path.clone(),
            Some(_) => return Err(ENOTDIR),
            None => return Err(EBADF),
        };
        let joined = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{base}/{path}")
        };
        let mut parts: Vec<&str> = Vec::new();
        for p in joined.split('/') {
            match p {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        Ok(format!("/{}", parts.join("/")))
    }

    fn open_in_root(&self, path: &str, dir: bool) -> Result<OwnedFd, i32> {
        let mut flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        if dir {
            flags |= OFlag::O_DIRECTORY;
        }
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        openat2(self.root.as_fd(), rel, how).map_err(errno)
    }

    fn add_fd(&mut self, h: Handle) -> Result<i32, i32> {
        if let Some(i) = self.fds.iter().skip(4).position(Option::is_none) {
            self.fds[i + 4] = Some(h);
            return Ok((i + 4) as i32);
        }
        if self.fds.len() >= 1024 {
            return Err(24); // EMFILE
        }
        self.fds.push(Some(h));
        Ok((self.fds.len() - 1) as i32)
    }
}

fn errno(e: nix::Error) -> i32 {
    use nix::errno::Errno as E;
    match e {
        E::ENOENT => ENOENT,
        E::ENOTDIR => ENOTDIR,
        E::EACCES | E::EPERM => 2,
        E::ELOOP => 32,
        E::EISDIR => 31,
        E::EXDEV => 76, // escaped the root: not capable
        E::ENAMETOOLONG => 37,
        _ => EIO,
    }
}

/// The module's memory and the run's state, both borrowed.
fn mem<'a>(caller: &'a mut Caller<'_, State>) -> Result<(&'a mut [u8], &'a mut State), i32> {
    let Some(Extern::Memory(m)) = caller.get_export("memory") else {
        return Err(EFAULT);
    };
    Ok(m.data_and_store_mut(caller))
}

fn slice(mem: &[u8], ptr: i32, len: u32) -> Result<&[u8], i32> {
    let start = ptr as u32 as usize;
    mem.get(start..start.checked_add(len as usize).ok_or(EFAULT)?)
        .ok_or(EFAULT)
}

fn slice_mut(mem: &mut [u8], ptr: i32, len: u32) -> Result<&mut [u8], i32> {
    let start = ptr as u32 as usize;
    mem.get_mut(start..start.checked_add(len as usize).ok_or(EFAULT)?)
        .ok_or(EFAULT)
}

fn put(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    slice_mut(mem, ptr, bytes.len() as u32)?.copy_from_slice(bytes);
    Ok(())
}

fn get_u32(mem: &[u8], ptr: i32) -> Result<u32, i32> {
    let b = slice(mem, ptr, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn get_u64(mem: &[u8], ptr: i32) -> Result<u64, i32> {
    let b = slice(mem, ptr, 8)?;
    Ok(u64::from_le_bytes(b.try_into().map_err(|_| EFAULT)?))
}

/// The (pointer, length) pairs of an iovec array.
fn iovecs(mem: &[u8], iovs: i32, n: i32) -> Result<Vec<(i32, u32)>, i32> {
    if !(0..=1024).contains(&n) {
        return Err(EINVAL);
    }
    (0..n)
        .map(|i| {
            let at = iovs.wrapping_add(8 * i);
            Ok((get_u32(mem, at)? as i32, get_u32(mem, at.wrapping_add(4))?))
        })
        .collect()
}

/// A call's errno from its body's result.
fn done(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => SUCCESS,
        Err(e) => e,
    }
}

/// Write a list of NUL-terminated strings and the pointers to them.
fn put_strings(mem: &mut [u8], list: &[Vec<u8>], ptrs: i32, buf: i32) -> Result<(), i32> {
    let mut at = buf;
    for (i, s) in list.iter().enumerate() {
        put(
            mem,
            ptrs.wrapping_add(4 * i as i32),
            &(at as u32).to_le_bytes(),
        )?;
        put(mem, at, s)?;
        put(mem, at.wrapping_add(s.len() as i32), &[0])?;
        at = at.wrapping_add(s.len() as i32 + 1);
    }
    Ok(())
}

fn sizes(mem: &mut [u8], list: &[Vec<u8>], count: i32, size: i32) -> Result<(), i32> {
    put(mem, count, &(list.len() as u32).to_le_bytes())?;
    let total: usize = list.iter().map(|s| s.len() + 1).sum();
    put(mem, size, &(total as u32).to_le_bytes())
}

fn filestat_of(meta: &std::fs::Metadata) -> [u8; 64] {
    use std::os::unix::fs::MetadataExt;
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&meta.dev().to_le_bytes());
    b[8..16].copy_from_slice(&meta.ino().to_le_bytes());
    b[16] = if meta.is_dir() {
        DIRECTORY
    } else if meta.is_file() {
        REGULAR_FILE
    } else {
        0
    };
    b[24..32].copy_from_slice(&meta.nlink().to_le_bytes());
    b[32..40].copy_from_slice(&meta.size().to_le_bytes());
    // Times come from the image: an absurd one saturates.
    let ns = |s: i64, n: i64| {
        (s.max(0) as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(n.max(0) as u64)
    };
    b[40..48].copy_from_slice(&ns(meta.atime(), meta.atime_nsec()).to_le_bytes());
    b[48..56].copy_from_slice(&ns(meta.mtime(), meta.mtime_nsec()).to_le_bytes());
    b[56..64].copy_from_slice(&ns(meta.ctime(), meta.ctime_nsec()).to_le_bytes());
    b
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, ours for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn define(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        WASI,
        "args_sizes_get",
        |mut c: Caller<'_, State>, count: i32, size: i32| {
            done(mem(&mut c).and_then(|(m, s)| sizes(m, &s.args, count, size)))
        },
    )?;
    linker.func_wrap(
        WASI,
        "args_get",
        |mut c: Caller<'_, State>, ptrs: i32, buf: i32| {
            done(mem(&mut c).and_then(|(m, s)| put_strings(m, &s.args, ptrs, buf)))
        },
    )?;
    linker.func_wrap(
        WASI,
        "environ_sizes_get",
        |mut c: Caller<'_, State>, count: i32, size: i32| {
            done(mem(&mut c).and_then(|(m, s)| sizes(m, &s.env, count, size)))
        },
    )?;
    linker.func_wrap(
        WASI,
        "environ_get",
        |mut c: Caller<'_, State>, ptrs: i32, buf: i32| {
            done(mem(&mut c).and_then(|(m, s)| put_strings(m, &s.env, ptrs, buf)))
        },
    )?;
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut c: Caller<'_, State>, id: i32, _precision: i64, out: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                let ns = match id {
                    0 => std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64),
                    1 => s.started.elapsed().as_nanos() as u64,
                    2 | 3 => thread_cpu().as_nanos() as u64,
                    _ => return Err(EINVAL),
                };
                put(m, out, &ns.to_le_bytes())
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "clock_res_get",
        |mut c: Caller<'_, State>, _id: i32, out: i32| {
            done(mem(&mut c).and_then(|(m, _)| put(m, out, &1000u64.to_le_bytes())))
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut c: Caller<'_, State>, buf: i32, len: i32| {
            done(mem(&mut c).and_then(|(m, _)| {
                if len as u32 as u64 > MAX_IO {
                    return Err(EINVAL);
                }
                let out = slice_mut(m, buf, len as u32)?;
                let mut f = std::fs::File::open("/dev/urandom").map_err(|_| EIO)?;
                f.read_exact(out).map_err(|_| EIO)
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_c: Caller<'_, State>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(ProcExit(code)))
        },
    )?;
    linker.func_wrap(WASI, "sched_yield", |_c: Caller<'_, State>| SUCCESS)?;
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut c: Caller<'_, State>, fd: i32, iovs: i32, n: i32, written: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                let which = match s.fds.get(fd as usize).and_then(Option::as_ref) {
                    Some(Handle::Stdout) => 0,
                    Some(Handle::Stderr) => 1,
                    Some(Handle::File { .. }) | Some(Handle::Dir { .. }) => return Err(EROFS),
                    _ => return Err(EBADF),
                };
                let mut total = 0u32;
                for (p, len) in iovecs(m, iovs, n)? {
                    let data = slice(m, p, len)?;
                    s.write_out(which, data);
                    total = total.saturating_add(len);
                }
                put(m, written, &total.to_le_bytes())
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_read",
        |mut c: Caller<'_, State>, fd: i32, iovs: i32, n: i32, read: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                let list = iovecs(m, iovs, n)?;
                // One call reads at most MAX_IO (host time the epoch cannot stop).
                if list.iter().map(|(_, l)| *l as u64).sum::<u64>() > MAX_IO {
                    return Err(EINVAL);
                }
                let mut total = 0u32;
                match s.fds.get_mut(fd as usize).and_then(Option::as_mut) {
                    Some(Handle::Stdin) => {}
                    Some(Handle::File { file }) => {
                        for (p, len) in list {
                            let buf = slice_mut(m, p, len)?;
                            let k = file.read(buf).map_err(|_| EIO)?;
                            total = total.saturating_add(k as u32);
                            if k < buf.len() {
                                break;
                            }
                        }
                    }
                    Some(_) => return Err(EBADF),
                    None => return Err(EBADF),
                }
                put(m, read, &total.to_le_bytes())
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_seek",
        |mut c: Caller<'_, State>, fd: i32, offset: i64, whence: i32, out: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                let file = match s.fds.get_mut(fd as usize).and_then(Option::as_mut) {
                    Some(Handle::File { file }) => file,
                    Some(_) => return Err(ESPIPE),
                    None => return Err(EBADF),
                };
                let pos = match whence {
                    0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| EINVAL)?),
                    1 => SeekFrom::Current(offset),
                    2 => SeekFrom::End(offset),
                    _ => return Err(EINVAL),
                };
                let at = file.seek(pos).map_err(|_| EINVAL)?;
                put(m, out, &at.to_le_bytes())
            }))
        },
    )?;
    linker.func_wrap(WASI, "fd_close", |mut c: Caller<'_, State>, fd: i32| {
        let s = c.data_mut();
        match s.fds.get_mut(fd as usize) {
            Some(slot @ Some(_)) => {
                *slot = None;
                SUCCESS
            }
            _ => EBADF,
        }
    })?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut c: Caller<'_, State>, fd: i32, out: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                // Every right is advertised, writing ones included: a module's libc
                // masks what it asks for with them, and an open to write must reach
                // path_open to be refused (EROFS) and recorded.
                let (kind, rights) = match s.fds.get(fd as usize).and_then(Option::as_ref) {
                    Some(Handle::Stdin) => (CHAR_DEVICE, 1u64 << 1),
                    Some(Handle::Stdout | Handle::Stderr) => (CHAR_DEVICE, 1u64 << 6),
                    Some(Handle::Dir { .. }) => (DIRECTORY, ALL_RIGHTS),
                    Some(Handle::File { .. }) => (REGULAR_FILE, ALL_RIGHTS),
                    None => return Err(EBADF),
                };
                let mut b = [0u8; 24];
                b[0] = kind;
                b[8..16].copy_from_slice(&rights.to_le_bytes());
                b[16..24].copy_from_slice(&rights.to_le_bytes());
                put(m, out, &b)
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_set_flags",
        |c: Caller<'_, State>, fd: i32, _flags: i32| match c.data().fds.get(fd as usize) {
            Some(Some(_)) => SUCCESS,
            _ => EBADF,
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_prestat_get",
        |mut c: Caller<'_, State>, fd: i32, out: i32| {
            // One preopen: fd 3, the image's root (until the module closes it).
            if fd != 3 || c.data().fds.get(3).is_none_or(Option::is_none) {
                return EBADF;
            }
            done(mem(&mut c).and_then(|(m, _)| {
                let mut b = [0u8; 8];
                b[4..8].copy_from_slice(&1u32.to_le_bytes());
                put(m, out, &b)
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_prestat_dir_name",
        |mut c: Caller<'_, State>, fd: i32, out: i32, len: i32| {
            if fd != 3 || c.data().fds.get(3).is_none_or(Option::is_none) {
                return EBADF;
            }
            if len < 1 {
                return EINVAL;
            }
            done(mem(&mut c).and_then(|(m, _)| put(m, out, b"/")))
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_filestat_get",
        |mut c: Caller<'_, State>, fd: i32, out: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                let meta = match s.fds.get(fd as usize).and_then(Option::as_ref) {
                    Some(Handle::File { file }) => file.metadata().map_err(|_| EIO)?,
                    Some(Handle::Dir { path }) => std::fs::File::from(s.open_in_root(path, true)?)
                        .metadata()
                        .map_err(|_| EIO)?,
                    Some(_) => {
                        let mut b = [0u8; 64];
                        b[16] = CHAR_DEVICE;
                        return put(m, out, &b);
                    }
                    None => return Err(EBADF),
                };
                put(m, out, &filestat_of(&meta))
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "path_filestat_get",
        |mut c: Caller<'_, State>, dirfd: i32, _flags: i32, ptr: i32, len: i32, out: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                let path = String::from_utf8_lossy(slice(m, ptr, len as u32)?).into_owned();
                let full = s.image_path(dirfd, &path)?;
                let meta = std::fs::File::from(s.open_in_root(&full, false)?)
                    .metadata()
                    .map_err(|_| EIO)?;
                put(m, out, &filestat_of(&meta))
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "path_open",
        |mut c: Caller<'_, State>,
         dirfd: i32,
         _dirflags: i32,
         ptr: i32,
         len: i32,
         oflags: i32,
         rights: i64,
         _inheriting: i64,
         fdflags: i32,
         out: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                let path = String::from_utf8_lossy(slice(m, ptr, len as u32)?).into_owned();
                let full = s.image_path(dirfd, &path)?;
                // oflags: creat 1, directory 2, excl 4, trunc 8; the FD_WRITE right is
                // bit 6; fdflags: append 1.
                let wants_write = oflags & (1 | 4 | 8) != 0 || rights & (1 << 6) != 0;
                if wants_write {
                    let mut flags = vec!["wronly"];
                    for (bit, name) in [(1, "creat"), (8, "trunc"), (4, "excl")] {
                        if oflags & bit != 0 {
                            flags.push(name);
                        }
                    }
                    if fdflags & 1 != 0 {
                        flags.push("append");
                    }
                    s.record(Call::Open {
                        path: full,
                        flags: flags.join(","),
                    });
                    return Err(EROFS);
                }
                let dir = oflags & 2 != 0;
                let fd = s.open_in_root(&full, dir)?;
                let file = std::fs::File::from(fd);
                let is_dir = file.metadata().map_err(|_| EIO)?.is_dir();
                let handle = if is_dir {
                    Handle::Dir { path: full }
                } else {
                    Handle::File { file }
                };
                let n = s.add_fd(handle)?;
                put(m, out, &(n as u32).to_le_bytes())
            }))
        },
    )?;
    linker.func_wrap(
        WASI,
        "poll_oneoff",
        |mut c: Caller<'_, State>, subs: i32, events: i32, n: i32, out: i32| {
            done(mem(&mut c).and_then(|(m, s)| {
                if !(1..=64).contains(&n) {
                    return Err(EINVAL);
                }
                // Clock subscriptions sleep (up to the wall budget); others are
                // answered at once with ENOSYS.
                let mut sleep = Duration::MAX;
                for i in 0..n {
                    let sub = subs.wrapping_add(48 * i);
                    let userdata = get_u64(m, sub)?;
                    let tag = slice(m, sub.wrapping_add(8), 1)?[0];
                    let mut ev = [0u8; 32];
                    ev[0..8].copy_from_slice(&userdata.to_le_bytes());
                    ev[10] = tag;
                    if tag == 0 {
                        let clock = get_u32(m, sub.wrapping_add(16))?;
                        let timeout = get_u64(m, sub.wrapping_add(24))?;
                        let abstime = slice(m, sub.wrapping_add(40), 1)?[0] & 1 != 0;
                        let rel = if abstime {
                            // The same clocks clock_time_get reads.
                            let now = match clock {
                                0 => std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0, |d| d.as_nanos() as u64),
                                1 => s.started.elapsed().as_nanos() as u64,
                                _ => thread_cpu().as_nanos() as u64,
                            };
                            timeout.saturating_sub(now)
                        } else {
                            timeout
                        };
                        sleep = sleep.min(Duration::from_nanos(rel));
                    } else {
                        ev[8..10].copy_from_slice(&(ENOSYS as u16).to_le_bytes());
                    }
                    put(m, events.wrapping_add(32 * i), &ev)?;
                }
                if sleep != Duration::MAX {
                    let left = s.deadline.saturating_duration_since(Instant::now());
                    std::thread::sleep(sleep.min(left));
                }
                put(m, out, &(n as u32).to_le_bytes())
            }))
        },
    )?;
    Ok(())
}

/// What a WASI run gives back beside its outcome: the module's imports.
pub struct WasiRun {
    pub outcome: Outcome,
    pub imports: Vec<String>,
}

/// Run the WASI module `argv[0]` (a path in `rootfs`) with `argv` and `env`.
pub fn run(
    rootfs: &Path,
    argv: &[String],
    env: &[String],
    limits: &Limits,
) -> Result<WasiRun, String> {
    let started = Instant::now();
    let program = argv.first().ok_or("the image has no entrypoint")?;
    if !program.starts_with('/') {
        return Err(format!(
            "{program}: a WASI entrypoint must be an absolute path"
        ));
    }
    let bytes = crate::rootfs::read_in_root(rootfs, program, MAX_MODULE + 1)
        .ok_or_else(|| format!("{program}: not in the image"))?;
    if bytes.len() as u64 > MAX_MODULE {
        return Err(format!(
            "{program}: a module over {} MiB is not compiled",
            MAX_MODULE >> 20
        ));
    }
    // A component (WASI preview 2) has layer 1 in its header; a core module layer 0.
    if bytes.get(..8) == Some(b"\0asm\x0d\0\x01\0") {
        return Err(format!(
            "{program}: a WebAssembly component (WASI preview 2): only preview 1 modules are run"
        ));
    }
    let mut config = Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    // One memory, capped by the limiter: a second would double what the cap allows.
    config.wasm_multi_memory(false);
    // Compiling is the one step no budget interrupts: compile fast rather than well
    // (the module runs to be watched, not to be quick).
    config.cranelift_opt_level(wasmtime::OptLevel::None);
    let engine = Engine::new(&config).map_err(|e| format!("wasmtime: {e}"))?;
    let module =
        Module::new(&engine, &bytes).map_err(|e| format!("{program}: not a wasm module: {e}"))?;
    let imports = imports(&module);

    let root = openat(
        nix::fcntl::AT_FDCWD,
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", rootfs.display()))?;
    let memory = usize::try_from(limits.cgroup.memory_bytes).unwrap_or(usize::MAX);
    let state = State {
        args: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: env.iter().map(|e| e.as_bytes().to_vec()).collect(),
        root,
        fds: vec![
            Some(Handle::Stdin),
            Some(Handle::Stdout),
            Some(Handle::Stderr),
            Some(Handle::Dir { path: "/".into() }),
        ],
        out: [Vec::new(), Vec::new()],
        dropped: [0, 0],
        output_cap: limits.output_bytes,
        events: vec![Event {
            t_ms: 0,
            pid: 1,
            call: Call::Exec {
                path: program.clone(),
                argv: argv.to_vec(),
                fd_target: None,
                sha256: None,
                miner: None,
            },
        }],
        events_dropped: 0,
        started,
        deadline: started + limits.wall,
        limits: StoreLimitsBuilder::new()
            .memory_size(memory)
            .memories(1)
            .tables(4)
            .table_elements(1 << 20)
            .instances(1)
            .build(),
        fuel_left: FUEL,
    };
    let mut store = Store::new(&engine, state);
    store.limiter(|s| &mut s.limits);
    store
        .set_fuel(FUEL)
        .map_err(|e| format!("wasmtime fuel: {e}"))?;
    // Every tick: note the fuel left (wasmtime keeps the count in a register inside a
    // loop and writes it back at calls: this callback is one, a trap is not), and stop
    // the module once the wall budget is spent.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut cx| {
        let left = cx.get_fuel().unwrap_or(FUEL);
        let s = cx.data_mut();
        s.fuel_left = s.fuel_left.min(left);
        if Instant::now() >= s.deadline {
            Ok(wasmtime::UpdateDeadline::Interrupt)
        } else {
            Ok(wasmtime::UpdateDeadline::Continue(1))
        }
    });

    let mut linker: Linker<State> = Linker::new(&engine);
    define(&mut linker).map_err(|e| format!("wasmtime: {e}"))?;
    for import in module.imports() {
        if linker
            .get(&mut store, import.module(), import.name())
            .is_ok()
        {
            continue;
        }
        let wasmtime::ExternType::Func(ty) = import.ty() else {
            return Err(format!(
                "{program}: imports {}.{}, which is not a WASI function",
                import.module(),
                import.name()
            ));
        };
        if import.module() != WASI {
            return Err(format!(
                "{program}: imports {}.{} from outside WASI preview 1: not run",
                import.module(),
                import.name()
            ));
        }
        // A WASI call not written here: ENOSYS, the answer the module's libc expects
        // of a host without it (the socket calls among them).
        let results: Vec<ValType> = ty.results().collect();
        if !matches!(results.as_slice(), [ValType::I32]) {
            return Err(format!(
                "{program}: imports {}.{} with a signature WASI does not have",
                import.module(),
                import.name()
            ));
        }
        linker
            .func_new(
                import.module(),
                import.name(),
                ty.clone(),
                |_c, _args, out: &mut [Val]| {
                    out[0] = Val::I32(ENOSYS);
                    Ok(())
                },
            )
            .map_err(|e| format!("wasmtime: {e}"))?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        })
    };
    let cpu_before = thread_cpu();
    let result = linker
        .instantiate(&mut store, &module)
        .and_then(|instance| {
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call(&mut store, ())
        });
    let cpu = thread_cpu().saturating_sub(cpu_before);
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    let left = store.get_fuel().unwrap_or(FUEL).min(store.data().fuel_left);
    let fuel = FUEL.saturating_sub(left);
    let wall = started.elapsed();
    let exit = match result {
        Ok(()) => Exit::Exited { code: 0 },
        Err(e) => {
            if let Some(ProcExit(code)) = e.downcast_ref::<ProcExit>() {
                Exit::Exited { code: *code }
            } else if matches!(
                e.downcast_ref::<wasmtime::Trap>(),
                Some(wasmtime::Trap::Interrupt)
            ) {
                Exit::TimedOut
            } else {
                Exit::Trapped {
                    message: format!("{e:#}").chars().take(1024).collect(),
                }
            }
        }
    };
    let s = store.into_data();
    let [stdout, stderr] = s.out;
    let name = program.rsplit('/').next().unwrap_or(program).to_string();
    Ok(WasiRun {
        outcome: Outcome {
            exit,
            stdout,
            stderr,
            stdout_dropped: s.dropped[0],
            stderr_dropped: s.dropped[1],
            start_to_exec: None,
            wall,
            events: s.events,
            events_dropped: s.events_dropped,
            written: Vec::new(),
            deleted: Vec::new(),
            processes: vec![ProcessCpu {
                pid: 1,
                comm: name,
                cpu_ms: cpu.as_millis() as u64,
                exe: program.clone(),
            }],
            net_events: Vec::new(),
            cgroup: Some(crate::cgroup::CgroupStats {
                cpu_ns: cpu.as_nanos() as u64,
                memory_peak_bytes: 0,
                oom_kills: 0,
            }),
            notes: vec![format!(
                "WASI module run under wasmtime: {fuel} units of fuel burned (about one per \
                 instruction; a module stopped by the budget is counted up to its last call)"
            )],
        },
        imports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(wall_ms: u64) -> Limits {
        let mut l = Limits {
            wall: Duration::from_millis(wall_ms),
            ..Limits::default()
        };
        l.cgroup.memory_bytes = 64 << 20;
        l
    }

    /// A rootfs holding `module` at /app.wasm and /etc/motd, beside a file outside it.
    fn rootfs(module: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/motd"), "hello from the image\n").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "host secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("abs-link")).unwrap();
        std::os::unix::fs::symlink("../../../outside.txt", root.join("etc/up-link")).unwrap();
        std::fs::write(root.join("app.wasm"), wat::parse_str(module).unwrap()).unwrap();
        (dir, root)
    }

    const IMPORTS: &str = r#"
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
      (import "wasi_snapshot_preview1" "sock_send" (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func $print (param $p i32) (param $n i32)
        (i32.store (i32.const 0) (local.get $p))
        (i32.store (i32.const 4) (local.get $n))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
    "#;

    fn run_module(body: &str, wall_ms: u64) -> (tempfile::TempDir, Result<WasiRun, String>) {
        let (dir, root) = rootfs(&format!("(module {IMPORTS} {body})"));
        let argv = vec!["/app.wasm".to_string(), "--pool".to_string()];
        let r = run(&root, &argv, &["A=1".into()], &limits(wall_ms));
        (dir, r)
    }

    #[test]
    fn a_module_gets_its_args_the_image_files_and_no_sockets() {
        let (_d, r) = run_module(
            r#"
            (data (i32.const 100) "etc/motd")
            (func (export "_start")
              (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
              (drop (call $args_get (i32.const 200) (i32.const 300)))
              (call $print (i32.const 300) (i32.load (i32.const 20)))
              (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 8)
                (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 24)))
              (i32.store (i32.const 32) (i32.const 1000))
              (i32.store (i32.const 36) (i32.const 100))
              (drop (call $fd_read (i32.load (i32.const 24)) (i32.const 32) (i32.const 1) (i32.const 40)))
              (call $print (i32.const 1000) (i32.load (i32.const 40)))
              (call $proc_exit (call $sock_send (i32.const 0) (i32.const 0) (i32.const 0)
                (i32.const 0) (i32.const 0))))"#,
            5_000,
        );
        let r = r.unwrap();
        let o = &r.outcome;
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "/app.wasm\0--pool\0hello from the image\n"
        );
        // sock_send is not provided: ENOSYS, which the module made its exit code.
        assert_eq!(o.exit, Exit::Exited { code: ENOSYS });
        assert!(
            r.imports
                .contains(&"wasi_snapshot_preview1.sock_send (func)".to_string())
        );
        assert!(matches!(&o.events[0].call, Call::Exec { path, .. } if path == "/app.wasm"));
    }

    /// Open `path` with `oflags` and `rights`; the exit code is path_open's errno.
    fn open_errno(path: &str, oflags: i32, rights: i64) -> (i32, Vec<Event>) {
        let (_d, r) = run_module(
            &format!(
                r#"(data (i32.const 100) "{path}")
                (func (export "_start")
                  (call $proc_exit (call $path_open (i32.const 3) (i32.const 0) (i32.const 100)
                    (i32.const {}) (i32.const {oflags}) (i64.const {rights}) (i64.const 0)
                    (i32.const 0) (i32.const 24))))"#,
                path.len()
            ),
            5_000,
        );
        let o = r.unwrap().outcome;
        match o.exit {
            Exit::Exited { code } => (code, o.events),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn opens_stay_inside_the_image_and_never_write() {
        assert_eq!(open_errno("etc/motd", 0, 2).0, SUCCESS);
        assert_eq!(open_errno("/etc/../etc/motd", 0, 2).0, SUCCESS);
        // `..` past the root, and symlinks out of it (absolute or relative), resolve
        // inside the image, where the host's file is not.
        assert_eq!(open_errno("../outside.txt", 0, 2).0, ENOENT);
        assert_eq!(open_errno("abs-link", 0, 2).0, ENOENT);
        assert_eq!(open_errno("etc/up-link", 0, 2).0, ENOENT);
        // Writing is refused and recorded.
        let (code, events) = open_errno("etc/crontab", 1 | 8, 1 << 6);
        assert_eq!(code, EROFS);
        assert!(events.iter().any(|e| e.call
            == Call::Open {
                path: "/etc/crontab".into(),
                flags: "wronly,creat,trunc".into()
            }));
    }

    #[test]
    fn a_spinning_module_is_stopped_at_the_wall_budget_and_its_cpu_counted() {
        // A miner's shape: a loop that calls its hash function.
        let (_d, r) = run_module(
            r#"(func $hash (param i32) (result i32) (i32.mul (local.get 0) (i32.const 31)))
               (func (export "_start") (local $x i32)
                 (loop $l (local.set $x (call $hash (local.get $x))) (br $l)))"#,
            400,
        );
        let o = r.unwrap().outcome;
        assert_eq!(o.exit, Exit::TimedOut);
        assert!(o.wall < Duration::from_secs(3), "{:?}", o.wall);
        let cpu = o.cgroup.unwrap().cpu_ns;
        assert!(cpu > 200_000_000, "{cpu}");
        assert!(o.notes[0].contains("fuel burned"), "{:?}", o.notes);
        let burned: u64 = o.notes[0]
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap();
        assert!(burned > 1_000_000, "{burned}");
    }

    #[test]
    fn memory_stops_at_the_limit_and_foreign_imports_are_refused() {
        let (_d, r) = run_module(
            r#"(func (export "_start") (call $proc_exit (memory.grow (i32.const 16384))))"#,
            5_000,
        );
        // 1 GiB asked, 64 MiB allowed: memory.grow fails with -1.
        assert_eq!(r.unwrap().outcome.exit, Exit::Exited { code: -1 });

        let (dir, root) =
            rootfs(r#"(module (import "env" "spawn" (func)) (func (export "_start")))"#);
        let e = run(&root, &["/app.wasm".into()], &[], &limits(1000))
            .err()
            .unwrap();
        assert!(e.contains("env.spawn"), "{e}");
        drop(dir);

        let (_d, r) = run_module(r#"(func (export "_start") unreachable)"#, 5_000);
        assert!(matches!(r.unwrap().outcome.exit, Exit::Trapped { .. }));
    }

    #[test]
    fn wasi_images_are_told_by_platform_or_by_the_entrypoint_s_bytes() {
        let (_d, root) = rootfs(r#"(module (func (export "_start")))"#);
        std::fs::write(root.join("elf.wasm"), b"\x7fELF\x02\x01\x01").unwrap();
        let mut c = canary_analyzer::image::ImageConfig::default();
        c.config.entrypoint = Some(vec!["/bin/sh".into()]);
        assert!(!is_wasi(&c, &root));
        c.os = Some("wasip1".into());
        assert!(is_wasi(&c, &root));
        c.os = Some("linux".into());
        c.config.entrypoint = Some(vec!["/app.wasm".into()]);
        assert!(is_wasi(&c, &root));
        // Named .wasm, an ELF inside: the native sandbox runs it.
        c.config.entrypoint = Some(vec!["/elf.wasm".into()]);
        assert!(!is_wasi(&c, &root));
        // A component is refused with a clear error.
        std::fs::write(root.join("app.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
        let e = run(&root, &["/app.wasm".into()], &[], &limits(1000))
            .err()
            .unwrap();
        assert!(e.contains("component"), "{e}");
    }
}
