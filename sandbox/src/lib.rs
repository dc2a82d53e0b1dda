//! Runtime analysis of an image's entrypoint in an isolated sandbox.
//!
//! What is here: running a command on a root filesystem unpacked from an image's layers
//! ([`rootfs`]), isolated the way the runtime-sandbox issue asks — new user, mount,
//! pid, net, uts, ipc and cgroup namespaces, `pivot_root` onto an overlay whose writable
//! upper layer is a size-limited tmpfs, a fresh `/proc`, a minimal `/dev`, no network but
//! loopback, `no_new_privs`, a seccomp deny-list, open-file and core limits, a control
//! group with CPU, memory and pids limits (v1 or v2), a wall-clock budget, and the whole
//! process tree killed at the end. Still to come: the syscall tracer, the sinkhole
//! network, bait credentials, runtime rules and the WASI backend.
//!
//! How a run is laid out (each arrow a `fork`, each box a process):
//!
//! ```text
//! supervisor (the caller)                              host namespaces
//!  └─ init: `canary __sandbox-init CONFIG` (exec'd)    host namespaces; writes the id maps
//!      └─ ns child: new user ns, then mount/pid/net/uts/ipc/cgroup ns
//!          └─ pid 1 of the new pid ns: mounts, pivot_root, limits, seccomp, execve
//! ```
//!
//! The init is a fresh process (the caller may have threads), so everything after a
//! `fork` is ordinary Rust. Each child dies with its parent (`PR_SET_PDEATHSIG`), and the
//! pid namespace dies with its pid 1: killing the init kills every process of the run.
//!
//! This is the only crate of the workspace allowed `unsafe`, each block with a
//! `// SAFETY:` line.

pub mod bait;
mod cgroup;
mod filter;
mod image;
mod init;
pub mod rootfs;
mod run;
pub mod runtime;
pub mod sinkhole;
pub mod trace;
pub mod written;

pub use cgroup::{CgroupLimits, CgroupStats};
pub use image::{ImageRun, run_image, spec_for};
pub use init::init_main;
pub use run::{Exit, Limits, Outcome, RunSpec, SandboxError, run};

/// The hidden subcommand of the `canary` binary that runs [`init_main`].
pub const INIT_SUBCOMMAND: &str = "__sandbox-init";
