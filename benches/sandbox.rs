//! The sandbox's costs (runtime-sandbox issue, "Measure"):
//!
//! - `start_to_exit`: one whole run of a static program that exits at once: the init
//!   process, the namespaces, the overlay and mounts, the control group, the exec, the
//!   teardown. The run's own start-to-`execve` time is printed after the benchmark.
//! - `syscall_heavy`: the tracer's overhead on a syscall-heavy program, traced or not.
//! - `write_heavy`: the same for a program that creates and deletes files in a loop
//!   (1,000 and 20,000 rounds), every open and unlink a stop: the tracer's worst case.
//! - `rootfs_cold` / `rootfs_cached`: unpacking an image of Debian packages of this
//!   machine (`CANARY_BENCH_MB`, default 512 MiB of files, gzip layers) into a fresh
//!   cache (under `CANARY_BENCH_ROOTFS_DIR`, default the target dir), and finding it in
//!   the cache.
//!
//! Run: `cargo bench --bench sandbox` (as root for the control group; the figures are
//! in docs/sandbox.md).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use canary_analyzer::corpus;
use canary_analyzer::fixtures::Compression;
use canary_sandbox::{Exit, Limits, RunSpec};

fn main() {
    divan::main();
    let mut t = EXEC_TIMES.lock().unwrap();
    if !t.is_empty() {
        t.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "start to execve over {} runs: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            t.len(),
            ms(t[t.len() / 2]),
            ms(t[t.len() * 9 / 10]),
            ms(t[t.len() - 1])
        );
    }
}

static EXEC_TIMES: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

/// A run of `argv` on `rootfs` with the default limits, no bait.
fn spec_of(rootfs: &Path, argv: &[&str], trace: bool, work: &str) -> RunSpec {
    RunSpec {
        rootfs: rootfs.to_path_buf(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        workdir: "/".into(),
        uid: 0,
        gid: 0,
        hostname: "bench".into(),
        limits: Limits::default(),
        trace,
        bait: None,
        work_dir: scratch().join(work),
        http_reply: None,
    }
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-bench");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// The test probe (tests/sandbox/probe.c) in a rootfs of its own.
fn probe_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let root = scratch().join("probe");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let st = std::process::Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(root.join("bin/probe"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/probe.c"))
            .status()
            .unwrap();
        assert!(st.success());
        root
    })
}

/// The tracer's cost: 200,000 open/read/close/stat rounds and 200 fork+exec, traced
/// and not (`trace` = `true` / `false`).
#[divan::bench(args = [false, true], sample_count = 10)]
fn syscall_heavy(bencher: divan::Bencher, trace: bool) {
    let argv = ["/bin/probe", "churn", "200000"];
    let spec = spec_of(probe_rootfs(), &argv, trace, &format!("work-churn-{trace}"));
    let init = Path::new(env!("CARGO_BIN_EXE_canary"));
    bencher.bench(|| {
        let o = canary_sandbox::run(&spec, init).unwrap();
        assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
        assert_eq!(o.events.len(), if trace { 201 } else { 0 });
    });
}

/// The tracer's worst case: rounds of create, write, close and unlink, each open and
/// unlink a stop, traced and not. 1,000 rounds: every stop is read and kept (under the
/// per-kind caps of 2,048), so that is what a recorded call costs; 20,000: past the
/// caps, stops are answered unread.
#[divan::bench(consts = [1_000, 20_000], args = [false, true], sample_count = 10)]
fn write_heavy<const ROUNDS: usize>(bencher: divan::Bencher, trace: bool) {
    let rounds = ROUNDS.to_string();
    let argv = ["/bin/probe", "churnw", rounds.as_str()];
    let spec = spec_of(
        probe_rootfs(),
        &argv,
        trace,
        &format!("work-churnw-{ROUNDS}-{trace}"),
    );
    let init = Path::new(env!("CARGO_BIN_EXE_canary"));
    let kept = ROUNDS.min(2048);
    bencher.bench(|| {
        let o = canary_sandbox::run(&spec, init).unwrap();
        assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
        if trace {
            assert_eq!(o.events.len(), 1 + 2 * kept, "{:?}", o.events.last());
            assert_eq!(o.events_dropped, 2 * (ROUNDS - kept) as u64);
        }
    });
}

/// A rootfs holding one static program that exits 0.
fn tiny_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let root = scratch().join("tiny");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let src = scratch().join("true.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        let st = std::process::Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(root.join("bin/true"))
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success());
        root
    })
}

#[divan::bench(sample_count = 50)]
fn start_to_exit(bencher: divan::Bencher) {
    let spec = spec_of(tiny_rootfs(), &["/bin/true"], true, "work");
    let init = Path::new(env!("CARGO_BIN_EXE_canary"));
    bencher.bench(|| {
        let o = canary_sandbox::run(&spec, init).unwrap();
        assert_eq!(o.exit, Exit::Exited { code: 0 }, "{o:?}");
        if let Some(d) = o.start_to_exec {
            EXEC_TIMES.lock().unwrap().push(d);
        }
    });
}

fn debian_blobs() -> &'static [Vec<u8>] {
    static BLOBS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BLOBS.get_or_init(|| {
        let mb = std::env::var("CANARY_BENCH_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(512);
        let (layers, names, bytes) = corpus::debian_layers(
            corpus::BIG_PACKAGES,
            mb << 20,
            64 << 20,
            false,
            Compression::Gzip,
        );
        eprintln!(
            "{} layers from {} packages, {} MiB of files",
            layers.len(),
            names.len(),
            bytes >> 20
        );
        layers.into_iter().map(|l| l.blob).collect()
    })
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn rootfs_cold(bencher: divan::Bencher) {
    let image = corpus::in_memory_image("bench", debian_blobs());
    let cache = std::env::var_os("CANARY_BENCH_ROOTFS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch().to_path_buf())
        .join("cold");
    // ext4 allocates inodes slowly right after many were deleted (it avoids recently
    // freed ones); CANARY_BENCH_SETTLE_SECS=35 waits that out between samples.
    let settle = std::env::var("CANARY_BENCH_SETTLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    bencher
        .with_inputs(|| {
            let _ = std::fs::remove_dir_all(&cache);
            std::thread::sleep(Duration::from_secs(settle));
        })
        .bench_values(|()| {
            let r = canary_sandbox::rootfs::prepare(&image, &cache, &Default::default()).unwrap();
            assert!(!r.cached);
        });
    let _ = std::fs::remove_dir_all(&cache);
}

#[divan::bench(sample_count = 20)]
fn rootfs_cached(bencher: divan::Bencher) {
    let image = corpus::in_memory_image("bench", debian_blobs());
    let cache = scratch().join("warm");
    canary_sandbox::rootfs::prepare(&image, &cache, &Default::default()).unwrap();
    bencher.bench(|| {
        let r = canary_sandbox::rootfs::prepare(&image, &cache, &Default::default()).unwrap();
        assert!(r.cached);
    });
    let _ = std::fs::remove_dir_all(&cache);
}
