//! From an image's config to a [`RunSpec`]: entrypoint + cmd, env, working directory and
//! user, joined the way Docker and containerd join them.

use std::path::Path;

use canary_analyzer::image::ImageConfig;

use crate::rootfs::read_in_root;
use crate::run::{Limits, RunSpec};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The spec of running this image's entrypoint on `rootfs`, and what could not be taken
/// from the config as it is (e.g. a user the image does not define).
pub fn spec_for(
    config: &ImageConfig,
    rootfs: &Path,
    limits: Limits,
    work_dir: &Path,
) -> Result<(RunSpec, Vec<String>), String> {
    let c = &config.config;
    let mut argv: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    argv.extend(c.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err("the image config has neither Entrypoint nor Cmd: nothing to run".into());
    }
    let mut env: Vec<String> = c.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push("HOME=/root".into());
    }
    let workdir = c
        .working_dir
        .clone()
        .filter(|w| w.starts_with('/'))
        .unwrap_or_else(|| "/".into());
    let mut notes = Vec::new();
    let (uid, gid) = user_ids(c.user.as_deref().unwrap_or(""), rootfs, &mut notes);
    let bait = match crate::bait::Bait::new() {
        Ok(b) => Some(b),
        Err(e) => {
            notes.push(format!("no bait credentials: {e}"));
            None
        }
    };
    for kv in bait.iter().flat_map(|b| b.env()) {
        let key = kv.split('=').next().unwrap_or("");
        if !env.iter().any(|e| e.split('=').next() == Some(key)) {
            env.push(kv);
        }
    }
    Ok((
        RunSpec {
            rootfs: rootfs.to_path_buf(),
            argv,
            env,
            workdir,
            uid,
            gid,
            hostname: "sandbox".into(),
            limits,
            trace: true,
            bait,
            work_dir: work_dir.to_path_buf(),
            http_reply: None,
        },
        notes,
    ))
}

/// `User` as Docker reads it: `name`, `uid`, `name:group`, `uid:gid`, names looked up
/// in the image's own `/etc/passwd` and `/etc/group`.
fn user_ids(user: &str, rootfs: &Path, notes: &mut Vec<String>) -> (u32, u32) {
    if user.is_empty() {
        return (0, 0);
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_in_root(rootfs, "/etc/passwd", 4 << 20).unwrap_or_default();
    let passwd = String::from_utf8_lossy(&passwd);
    // name:x:uid:gid:…
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let uid = match (u.parse::<u32>(), &entry) {
        (Ok(n), _) => n,
        (Err(_), Some(f)) => f[2].parse().unwrap_or(0),
        (Err(_), None) => {
            notes.push(format!(
                "user {u:?} is not in the image's /etc/passwd: ran as root"
            ));
            return (0, 0);
        }
    };
    let gid = match g {
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read_in_root(rootfs, "/etc/group", 4 << 20).unwrap_or_default();
                let group = String::from_utf8_lossy(&group);
                match group
                    .lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() > 2 && f[0] == g)
                {
                    Some(f) => f[2].parse().unwrap_or(0),
                    None => {
                        notes.push(format!(
                            "group {g:?} is not in the image's /etc/group: gid 0"
                        ));
                        0
                    }
                }
            }
        },
    };
    (uid, gid)
}

/// A run of an image's entrypoint: everything `run-sandbox` prints and `scan --runtime`
/// judges.
pub struct ImageRun {
    pub rootfs: crate::rootfs::Rootfs,
    pub spec: RunSpec,
    pub outcome: crate::run::Outcome,
    /// What the runtime rules judge (read before the run's copies of written files go).
    pub observed: Vec<(Option<u32>, crate::runtime::Observation)>,
    /// What could not be taken from the config as it is, then what the run could not do.
    pub notes: Vec<String>,
    /// For a WASI image (run under wasmtime, [`crate::wasi`]): the module's imports.
    pub wasm_imports: Option<Vec<String>>,
}

/// Unpack `image` under `cache_dir` (reused across runs), run its entrypoint with
/// `limits`, and clean up after the run. `init_exe` is the `canary` binary.
pub fn run_image(
    image: &canary_analyzer::image::ResolvedImage,
    cache_dir: &Path,
    limits: Limits,
    http_reply: Option<&crate::run::HttpReply>,
    init_exe: &Path,
) -> Result<ImageRun, String> {
    let rootfs =
        crate::rootfs::prepare(image, cache_dir, &Default::default()).map_err(|e| e.to_string())?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let work = cache_dir.join(format!("run-{}-{nanos}", std::process::id()));
    let (mut spec, mut notes) = spec_for(&image.config, &rootfs.path, limits, &work)
        .map_err(|e| format!("{}: {e}", image.name))?;
    spec.http_reply = http_reply.cloned();
    if crate::wasi::is_wasi(&image.config, &rootfs.path) {
        let mut run = crate::wasi::run(&rootfs.path, &spec.argv, &spec.env, &spec.limits)
            .map_err(|e| format!("{}: {e}", image.name))?;
        // The module's hash and the static miner rule it matches (cryptonight in wasm).
        crate::runtime::enrich_execs(&mut run.outcome, &rootfs.path);
        // Nothing is written: the module's filesystem is read-only.
        let observed = crate::runtime::observations(&run.outcome, &spec);
        notes.extend(run.outcome.notes.iter().cloned());
        return Ok(ImageRun {
            rootfs,
            spec,
            outcome: run.outcome,
            observed,
            notes,
            wasm_imports: Some(run.imports),
        });
    }
    let mut outcome = crate::run::run(&spec, init_exe);
    if let Ok(o) = &mut outcome {
        crate::runtime::enrich_execs(o, &rootfs.path);
    }
    let observed = outcome
        .as_ref()
        .map(|o| crate::runtime::observations(o, &spec))
        .unwrap_or_default();
    // The copies of written executables and the emptied scratch mount point.
    let _ = std::fs::remove_dir_all(&work);
    let outcome = outcome.map_err(|e| e.to_string())?;
    notes.extend(outcome.notes.iter().cloned());
    Ok(ImageRun {
        rootfs,
        spec,
        outcome,
        observed,
        notes,
        wasm_imports: None,
    })
}
