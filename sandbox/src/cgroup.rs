//! A control group per run: CPU quota, memory and pids limits, and the run's CPU time,
//! memory peak and OOM kills. cgroup v1 (what these machines have: one hierarchy per
//! controller) and v2 (unified), found at run time from `/proc/self/cgroup` and
//! `/proc/self/mountinfo`; the run's group is made below our own, never above it.
//! Without the right to make groups (no root, no delegation) the run goes on without
//! them and says so.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What the run's control group measured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// CPU time of every process of the run, user and system.
    pub cpu_ns: u64,
    /// Highest memory use.
    pub memory_peak_bytes: u64,
    /// Processes the kernel killed for going over the memory limit.
    pub oom_kills: u64,
}

/// The cgroup limits of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupLimits {
    pub memory_bytes: u64,
    pub pids: u64,
    /// CPUs' worth of time per period (1.0 = one core).
    pub cpus: f64,
}

impl Default for CgroupLimits {
    fn default() -> Self {
        CgroupLimits {
            memory_bytes: 1 << 30,
            pids: 512,
            cpus: 1.0,
        }
    }
}

#[derive(Debug)]
enum Layout {
    /// Directories of the memory, pids, cpu and cpuacct hierarchies (a hierarchy may
    /// carry several of them).
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
        cpuacct: PathBuf,
    },
    V2(PathBuf),
}

/// A run's control group(s), removed on [`Cgroup::remove`].
#[derive(Debug)]
pub(crate) struct Cgroup {
    layout: Layout,
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    std::fs::write(dir.join(file), value).map_err(|e| format!("{}/{file}: {e}", dir.display()))
}

fn read_u64(path: PathBuf) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key value` lines (memory.events, cpu.stat, memory.oom_control).
fn keyed(path: PathBuf, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Mount points of the cgroup hierarchies: (v1 controllers or empty for v2, mount point).
fn mounts() -> Vec<(Vec<String>, PathBuf)> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mount_point = pre.split(' ').nth(4)?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let opts = post.nth(1)?;
            match fstype {
                "cgroup" => Some((
                    opts.split(',').map(str::to_string).collect(),
                    PathBuf::from(mount_point),
                )),
                "cgroup2" => Some((Vec::new(), PathBuf::from(mount_point))),
                _ => None,
            }
        })
        .collect()
}

/// Our own group in each hierarchy: (controllers or empty for v2, path).
fn own_groups() -> Vec<(Vec<String>, String)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            let ctls = f.next()?;
            let path = f.next()?;
            let ctls = if ctls.is_empty() {
                Vec::new()
            } else {
                ctls.split(',').map(str::to_string).collect()
            };
            Some((ctls, path.to_string()))
        })
        .collect()
}

impl Cgroup {
    /// Make the run's group with `limits`; `Err` says why there is none.
    pub(crate) fn create(name: &str, limits: &CgroupLimits) -> Result<Cgroup, String> {
        let mounts = mounts();
        let own = own_groups();
        let v1_dir = |ctl: &str| -> Option<PathBuf> {
            let (_, mount) = mounts.iter().find(|(c, _)| c.iter().any(|x| x == ctl))?;
            let (_, path) = own.iter().find(|(c, _)| c.iter().any(|x| x == ctl))?;
            Some(mount.join(path.trim_start_matches('/')).join(name))
        };
        let quota = ((limits.cpus.max(0.01)) * 100_000.0) as u64;
        if let (Some(memory), Some(pids), Some(cpu), Some(cpuacct)) = (
            v1_dir("memory"),
            v1_dir("pids"),
            v1_dir("cpu"),
            v1_dir("cpuacct"),
        ) {
            let cg = Cgroup {
                layout: Layout::V1 {
                    memory,
                    pids,
                    cpu,
                    cpuacct,
                },
            };
            let made = cg.make_dirs().and_then(|_| {
                let Layout::V1 {
                    memory, pids, cpu, ..
                } = &cg.layout
                else {
                    unreachable!()
                };
                write(
                    memory,
                    "memory.limit_in_bytes",
                    &limits.memory_bytes.to_string(),
                )?;
                write(pids, "pids.max", &limits.pids.to_string())?;
                write(cpu, "cpu.cfs_period_us", "100000")?;
                write(cpu, "cpu.cfs_quota_us", &quota.to_string())
            });
            return match made {
                Ok(()) => Ok(cg),
                Err(e) => {
                    cg.remove();
                    Err(e)
                }
            };
        }
        let (_, mount) = mounts
            .iter()
            .find(|(c, _)| c.is_empty())
            .ok_or("no cgroup v1 memory/pids/cpu hierarchies and no cgroup v2 mount")?;
        let (_, path) = own
            .iter()
            .find(|(c, _)| c.is_empty())
            .ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
        let parent = mount.join(path.trim_start_matches('/'));
        // Controllers must be on for children; this fails where our own group holds
        // processes and is not the root (v2's no-internal-processes rule).
        let enabled =
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        for ctl in ["memory", "pids", "cpu"] {
            if !enabled.split_whitespace().any(|c| c == ctl) {
                write(&parent, "cgroup.subtree_control", &format!("+{ctl}"))?;
            }
        }
        let cg = Cgroup {
            layout: Layout::V2(parent.join(name)),
        };
        let made = cg.make_dirs().and_then(|_| {
            let Layout::V2(dir) = &cg.layout else {
                unreachable!()
            };
            write(dir, "memory.max", &limits.memory_bytes.to_string())?;
            write(dir, "memory.swap.max", "0").or(Ok::<(), String>(()))?;
            write(dir, "pids.max", &limits.pids.to_string())?;
            write(dir, "cpu.max", &format!("{quota} 100000"))
        });
        match made {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove();
                Err(e)
            }
        }
    }

    fn dirs(&self) -> Vec<&Path> {
        match &self.layout {
            Layout::V1 {
                memory,
                pids,
                cpu,
                cpuacct,
            } => {
                let mut v: Vec<&Path> = vec![memory, pids, cpu, cpuacct];
                // cpu and cpuacct may share a hierarchy.
                v.dedup();
                v
            }
            Layout::V2(d) => vec![d],
        }
    }

    fn make_dirs(&self) -> Result<(), String> {
        for d in self.dirs() {
            // A group left by a killed earlier process of the same pid is taken over
            // only if empty (rmdir fails otherwise), so runs never share one.
            let _ = std::fs::remove_dir(d);
            std::fs::create_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process writes its pid to, to join the run's group.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    pub(crate) fn stats(&self) -> CgroupStats {
        match &self.layout {
            Layout::V1 {
                memory, cpuacct, ..
            } => CgroupStats {
                cpu_ns: read_u64(cpuacct.join("cpuacct.usage")).unwrap_or(0),
                memory_peak_bytes: read_u64(memory.join("memory.max_usage_in_bytes")).unwrap_or(0),
                oom_kills: keyed(memory.join("memory.oom_control"), "oom_kill").unwrap_or(0),
            },
            Layout::V2(d) => CgroupStats {
                cpu_ns: keyed(d.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
                memory_peak_bytes: read_u64(d.join("memory.peak")).unwrap_or(0),
                oom_kills: keyed(d.join("memory.events"), "oom_kill").unwrap_or(0),
            },
        }
    }

    /// Remove the group once its last process is gone (a pid namespace's teardown
    /// takes a moment after its init died).
    pub(crate) fn remove(self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for d in self.dirs() {
            loop {
                let empty = std::fs::read_to_string(d.join("cgroup.procs"))
                    .map(|s| s.trim().is_empty())
                    .unwrap_or(true);
                if empty || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = std::fs::remove_dir(d);
        }
    }
}
