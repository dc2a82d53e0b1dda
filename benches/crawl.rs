//! The crawl at scale on one machine: images per hour (and per core) over a corpus of
//! 200 images sharing base layers, pushed to the real Distribution registry on loopback,
//! with 1, 2 and 4 worker processes sharing the machine's PostgreSQL (each process one
//! scan at a time), and the layer dedup ratio.
//!
//! Needs Debian's docker-registry and the PostgreSQL server at 127.0.0.1:5432 (trust
//! auth). Run: `cargo bench --bench crawl` (`CANARY_BENCH_IMAGES` changes the count).

#[path = "../tests/common/pg.rs"]
mod pg;
#[path = "../tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::process::{Command, Stdio};
use std::time::Instant;

use canary_analyzer::fixtures::{
    Compression, Image, ImageBuilder, Layer, LayerBuilder, push_image,
};

/// Deterministic bytes that do not compress (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn text(seed: u64, n: usize) -> String {
    let words = [
        "lib", "usr", "config", "service", "version", "=", "true", "path", "/opt/app", "#",
    ];
    let mut s = String::with_capacity(n);
    let mut x = seed | 1;
    while s.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % words.len() as u64) as usize]);
        s.push(if x.is_multiple_of(7) { '\n' } else { ' ' });
    }
    s
}

/// 4 distributions of 3 layers (≈ 6 MiB each), shared by the images.
fn bases() -> Vec<Vec<Layer>> {
    (0..4u64)
        .map(|d| {
            (0..3u64)
                .map(|l| {
                    let mut b = LayerBuilder::new();
                    for f in 0..16u64 {
                        let seed = d * 1000 + l * 100 + f;
                        b = b
                            .file(&format!("usr/lib/d{d}/l{l}/f{f}.so"), noise(seed, 64 << 10))
                            .file(
                                &format!("usr/share/d{d}/l{l}/f{f}.txt"),
                                text(seed, 64 << 10),
                            );
                    }
                    b.build(Compression::Gzip)
                })
                .collect()
        })
        .collect()
}

fn image(i: u64, bases: &[Vec<Layer>]) -> Image {
    let mut b = ImageBuilder::new();
    for l in &bases[(i % 4) as usize] {
        b = b.layer(l.clone());
    }
    let mut own = LayerBuilder::new()
        .file(&format!("app/{i}/bin"), noise(i + 77, 256 << 10))
        .file(&format!("app/{i}/README"), text(i + 99, 256 << 10));
    if i.is_multiple_of(10) {
        own = own.file(
            "opt/start.sh",
            "#!/bin/sh\nexec /opt/xmrig -o stratum+tcp://pool.supportxmr.com:3333 -u w\n",
        );
    }
    b.layer(own.build(Compression::Gzip)).user("1000").build()
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
fn cpu_stat() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Share of all cores busy (crawl, registry, PostgreSQL, everything) since `from`.
fn load_since(from: &(u64, u64)) -> f64 {
    let now = cpu_stat();
    let total = now.1.saturating_sub(from.1).max(1);
    now.0.saturating_sub(from.0) as f64 / total as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("CANARY_BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let reg = registry::Registry::open();
    let bases = bases();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let mut refs = Vec::new();
    for i in 0..n {
        // 20 repositories of tags: blobs already in a repository are not uploaded again.
        let repo = format!("bench/app{}", i % 20);
        let tag = format!("t{i}");
        rt.block_on(push_image(&reg.url, &repo, &tag, &image(i, &bases), None))
            .unwrap();
        refs.push(format!("{}/{repo}:{tag}", reg.host));
    }
    eprintln!("pushed {n} images in {:.1}s", t.elapsed().as_secs_f64());
    let home = tempfile::tempdir().unwrap();
    let list = home.path().join("images.txt");
    std::fs::write(&list, refs.join("\n")).unwrap();
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    println!(
        "## canary crawl benchmark: {n} images ({} layer references), {cores} cores\n",
        n * 4
    );
    println!(
        "| worker processes | wall | images/hour | images/hour/core | crawl CPU (user+sys) | CPU per image | machine busy | layers walked | dedup ratio | speed-up |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut first = None;
    for procs in [1usize, 2, 4] {
        let name = "canary_bench_crawl";
        let db = pg::fresh_database(name);
        let cache = home.path().join(format!("cache-{procs}"));
        let canary = |args: &[&str]| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_canary"));
            c.args(args)
                .env("CANARY_CACHE_DIR", &cache)
                .env("HOME", home.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c
        };
        let s = canary(&[
            "crawl",
            "--db",
            &db,
            "--enqueue-only",
            "--from-file",
            list.to_str().unwrap(),
        ])
        .status()
        .unwrap();
        assert!(s.success());
        let t0_stat = cpu_stat();
        let t = Instant::now();
        // Each worker process under GNU time, for its CPU seconds.
        let times: Vec<std::path::PathBuf> = (0..procs)
            .map(|p| home.path().join(format!("time-{procs}-{p}")))
            .collect();
        let children: Vec<_> = times
            .iter()
            .map(|tf| {
                let mut c = Command::new("/usr/bin/time");
                c.arg("-f")
                    .arg("%U %S")
                    .arg("-o")
                    .arg(tf)
                    .arg(env!("CARGO_BIN_EXE_canary"))
                    .args(["crawl", "--db", &db, "--workers", "1"])
                    .env("CANARY_CACHE_DIR", &cache)
                    .env("HOME", home.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                c.spawn().unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let wall = t.elapsed().as_secs_f64();
        let busy = load_since(&t0_stat) * 100.0;
        let cpu: f64 = times
            .iter()
            .map(|tf| {
                std::fs::read_to_string(tf)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|x| x.parse::<f64>().ok())
                    .sum::<f64>()
            })
            .sum();
        let verdicts: u64 = pg::psql(name, "SELECT count(*) FROM verdicts")
            .parse()
            .unwrap();
        assert_eq!(verdicts, n, "every image scanned");
        let walked: u64 = pg::psql(name, "SELECT count(*) FROM layer_results")
            .parse()
            .unwrap();
        let per_hour = n as f64 / wall * 3600.0;
        let base = *first.get_or_insert(per_hour);
        println!(
            "| {procs} | {wall:.1} s | {per_hour:.0} | {:.0} | {cpu:.1} s | {:.0} ms | {busy:.0} % | {walked} | {:.2} | {:.2}× |",
            per_hour / cores as f64,
            cpu * 1000.0 / n as f64,
            (n * 4) as f64 / walked as f64,
            per_hour / base
        );
        let _ = std::fs::remove_dir_all(&cache);
    }
}
