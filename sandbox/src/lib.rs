//! Runtime analysis of an image's entrypoint in an isolated sandbox.
//!
//! What is here: running an image's entrypoint on a root filesystem unpacked from its
//! layers ([`rootfs`]), isolated the way the runtime-sandbox issue asks (new user,
//! mount, pid, net, uts, ipc and cgroup namespaces, `pivot_root` onto an overlay whose
//! writable layer is a size-limited tmpfs, a hardened `/proc`, a minimal `/dev`,
//! `no_new_privs`, a cut bounding set, a seccomp deny-list, a control group with CPU,
//! memory and pids limits, a wall-clock budget, the whole process tree killed at the
//! end), and watching it: a seccomp user-notification tracer of execs and connects
//! ([`trace`]), a sinkhole network that answers DNS, Stratum and HTTP ([`sinkhole`]),
//! canary credentials ([`bait`]), the files it wrote ([`written`]), and the runtime rules
//! that judge all of it ([`runtime`]). docs/sandbox.md has the design, the timeline
//! format and the figures; what is still to come is listed there.
//!
//! How a run is laid out (each arrow a `fork`, each box a process):
//!
//! ```text
//! supervisor (the caller)                              host namespaces
//!  └─ init: `canary __sandbox-init CONFIG` (exec'd)    host namespaces; writes the id
//!      │                                               maps, answers the tracer, serves
//!      │                                               the sinkhole's sockets
//!      └─ ns child: joins the cgroup, new user ns, then mount/net/uts/ipc/cgroup ns,
//!          │        the sinkhole's routes and rules, the scratch tmpfs, new pid ns;
//!          │        keeps the deadline and lists what the run wrote
//!          └─ pid 1 of the new pid ns: own mount ns, overlay, pivot_root, limits,
//!             seccomp, execve
//! ```
//!
//! The init is a fresh process (the caller may have threads), so everything after a
//! `fork` is ordinary Rust. Each child dies with its parent (`PR_SET_PDEATHSIG`, and a
//! lifeline pipe for pid 1), and the pid namespace dies with its pid 1: killing the
//! init kills every process of the run.
//!
//! This is the only crate of the workspace allowed `unsafe`, each block with a
//! `// SAFETY:` line.

pub mod bait;
mod cgroup;
mod filter;
mod image;
mod init;
mod reads;
pub mod rootfs;
mod run;
pub mod runtime;
pub mod sinkhole;
pub mod trace;
pub mod wasi;
pub mod written;

pub use cgroup::{CgroupLimits, CgroupStats};
pub use image::{ImageRun, run_image, spec_for};
pub use init::init_main;
pub use run::{Exit, HttpReply, Limits, Outcome, ProcessCpu, RunSpec, SandboxError, run};

/// The hidden subcommand of the `canary` binary that runs [`init_main`].
pub const INIT_SUBCOMMAND: &str = "__sandbox-init";
