//! A full static scan of a realistic image against plain decompression of the same
//! layers: one layer per Debian package installed on this machine (ELF libraries and
//! binaries, Python and Perl modules, docs, locale and timezone data, Java and Node
//! runtimes), ≥ 500 MiB of files, every detector on (YARA-X secrets and miners, nested
//! archives, IOC hashing, wallets).
//!
//! - `plain_decompression`: every layer decoded once, one after another, on one thread:
//!   what pulling and unpacking the image costs (containerd applies layers in order, and
//!   a gzip or zstd stream decodes on one core).
//! - `full_static_scan`: the same walk, one layer after another on one thread: the cost
//!   per byte.
//! - `canary_scan`: the scan as `canary scan` runs it: [`scan_images`], one layer worker
//!   per core; once fewer layers are left than cores, the idle cores scan files of the
//!   layers still being walked.
//! - `canary_scan_one_layer`: the same, with the whole image in one layer (one core
//!   decompresses and reads the layer and scans files, the others scan files).
//!
//! Run: `cargo bench -p canary-analyzer --features fixtures --bench realistic`
//! (`CANARY_BENCH_MB` sets the size, default 512; `CANARY_BENCH_PAIRS=N` measures the
//! ratio as N back-to-back pairs instead, with the scan's CPU time and page faults;
//! `CANARY_BENCH_CODEC=gzip|zstd` one codec only, `CANARY_BENCH_ONE_LAYER=1` the
//! one-layer image). `docs/performance.md` has the figures.
//!
//! The image (its layer digests) is made once, outside the timings: a scan of registry
//! layers takes the digests from the manifest, and the blob cache checked them when they
//! were downloaded.

use std::io::Read;
use std::sync::OnceLock;

use canary_analyzer::corpus;
use canary_analyzer::detect::{Detector, default_detectors};
use canary_analyzer::finding::Severity;
use canary_analyzer::fixtures::Compression;
use canary_analyzer::image::{Layer, ResolvedImage, Verify};
use canary_analyzer::policy::Policy;
use canary_analyzer::scan::{NoProgress, ScanInput, ScanOptions, scan_images};
use canary_analyzer::walk::{WalkLimits, walk_layer};

fn main() {
    if let Some(pairs) = std::env::var("CANARY_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        paired_ratios(pairs);
        return;
    }
    divan::main();
}

/// The ratio as pairs: plain decompression, then `canary scan`, back to back, `pairs`
/// times per codec, and the median of the pairs' ratios. On a shared VM whose speed
/// drifts by ±20 % between minutes, a ratio of two medians taken a minute apart moves
/// with the drift; the two halves of one pair see the same machine.
/// Run: `CANARY_BENCH_PAIRS=9 cargo bench -p canary-analyzer --features fixtures --bench realistic`
fn paired_ratios(pairs: usize) {
    let detectors = default_detectors();
    // `CANARY_BENCH_CODEC=gzip` or `zstd` measures one codec only.
    let only = std::env::var("CANARY_BENCH_CODEC").ok();
    assert!(
        only.as_deref().is_none_or(|o| o == "gzip" || o == "zstd"),
        "CANARY_BENCH_CODEC is gzip or zstd"
    );
    for c in [Compression::Gzip, Compression::Zstd] {
        if only
            .as_deref()
            .is_some_and(|o| o != format!("{c:?}").to_lowercase())
        {
            continue;
        }
        // `CANARY_BENCH_ONE_LAYER=1`: the image in one layer.
        let one_layer = std::env::var_os("CANARY_BENCH_ONE_LAYER").is_some();
        let n = layers_of(c, one_layer).1;
        let image = image_of(c, one_layer);
        let mut ratios = Vec::with_capacity(pairs);
        let (mut plain_all, mut scan_all_s) = (Vec::new(), Vec::new());
        let (mut cpu_all, mut faults_all) = (Vec::new(), Vec::<u64>::new());
        for _ in 0..pairs {
            let t = std::time::Instant::now();
            assert_eq!(decompress_all_of(c, one_layer), n);
            let plain = t.elapsed().as_secs_f64();
            let (cpu0, faults0) = process_usage();
            let t = std::time::Instant::now();
            scan_all(image, &detectors);
            let scan = t.elapsed().as_secs_f64();
            let (cpu1, faults1) = process_usage();
            cpu_all.push(cpu1 - cpu0);
            faults_all.push(faults1 - faults0);
            ratios.push(plain / scan);
            plain_all.push(plain);
            scan_all_s.push(scan);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        faults_all.sort_unstable();
        println!(
            "{c:?}: {pairs} pairs, median plain {:.3} s, median scan {:.3} s ({:.2} s of CPU, {} minor page faults), scan/plain per pair [{}], median {:.2}",
            median(&mut plain_all),
            median(&mut scan_all_s),
            median(&mut cpu_all),
            faults_all[faults_all.len() / 2],
            shown.join(" "),
            median(&mut ratios)
        );
    }
}

/// This process's CPU time (user and system, seconds) and minor page faults so far, from
/// `/proc/self/stat` (fields 10, 14 and 15; times in USER_HZ ticks, 1/100 s on Linux).
fn process_usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it do not.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| f.get(n - 3).copied().unwrap_or(0);
    ((field(14) + field(15)) as f64 / 100.0, field(10))
}

fn target_bytes() -> u64 {
    std::env::var("CANARY_BENCH_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(512)
        << 20
}

/// The layers' blobs for one codec, built once; `one_layer` puts every package in one.
fn layers_of(c: Compression, one_layer: bool) -> &'static (Vec<Vec<u8>>, u64) {
    static CELLS: [OnceLock<(Vec<Vec<u8>>, u64)>; 4] = [const { OnceLock::new() }; 4];
    let cell = &CELLS[usize::from(c == Compression::Gzip) * 2 + usize::from(one_layer)];
    cell.get_or_init(|| {
        let (layers, names, bytes) =
            corpus::debian_layers(corpus::BIG_PACKAGES, target_bytes(), 64 << 20, one_layer, c);
        let blobs: Vec<Vec<u8>> = layers.into_iter().map(|l| l.blob).collect();
        let packed: usize = blobs.iter().map(Vec::len).sum();
        eprintln!(
            "{} layers from {} packages: {} MiB of files, {} MiB as {c:?} blobs",
            blobs.len(),
            names.len(),
            bytes >> 20,
            packed >> 20
        );
        let tar_bytes = blobs.iter().map(|b| inflate(c, b)).sum();
        (blobs, tar_bytes)
    })
}

fn layers(c: Compression) -> &'static (Vec<Vec<u8>>, u64) {
    layers_of(c, false)
}

fn codec_of(name: &str) -> Compression {
    match name {
        "gzip" => Compression::Gzip,
        _ => Compression::Zstd,
    }
}

/// The same decoders over the same 256 KiB input buffer the walk uses.
fn inflate(c: Compression, data: &[u8]) -> u64 {
    let input = std::io::BufReader::with_capacity(256 << 10, data);
    let mut r: Box<dyn Read> = match c {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        _ => Box::new(zstd::Decoder::with_buffer(input).expect("zstd")),
    };
    std::io::copy(&mut r, &mut std::io::sink()).expect("decompress")
}

fn decompress_all(c: Compression) -> u64 {
    decompress_all_of(c, false)
}

fn decompress_all_of(c: Compression, one_layer: bool) -> u64 {
    layers_of(c, one_layer)
        .0
        .iter()
        .map(|b| inflate(c, b))
        .sum()
}

fn walk_all(c: Compression, detectors: &[Box<dyn canary_analyzer::detect::Detector>]) -> usize {
    let mut findings = 0;
    for (i, data) in layers(c).0.iter().enumerate() {
        let data: &'static [u8] = &data[..];
        let layer = Layer {
            index: i,
            digest: format!("sha256:bench{i}"),
            media_type: None,
            size: Some(data.len() as u64),
            verify: Verify::Done,
        };
        let r = walk_layer(
            "bench",
            &layer,
            Box::new(data),
            detectors,
            &WalkLimits::default(),
        );
        assert!(r.error.is_none(), "{:?}", r.error);
        findings += r.findings.len();
    }
    findings
}

#[divan::bench(args = ["gzip", "zstd"], sample_count = 5, sample_size = 1)]
fn plain_decompression(bencher: divan::Bencher, codec: &str) {
    let c = codec_of(codec);
    let n = layers(c).1;
    bencher
        .counter(divan::counter::BytesCount::new(n))
        .bench(|| decompress_all(c));
}

/// Every detector of `canary scan`.
#[divan::bench(args = ["gzip", "zstd"], sample_count = 5, sample_size = 1)]
fn full_static_scan(bencher: divan::Bencher, codec: &str) {
    let c = codec_of(codec);
    let n = layers(c).1;
    let detectors = default_detectors();
    bencher
        .counter(divan::counter::BytesCount::new(n))
        .bench(|| walk_all(c, &detectors));
}

/// The image of one codec's layers, made once: its layer digests are computed here, as a
/// scan of registry layers gets them from the manifest (the blob cache checked them on
/// download), so no scan below hashes the blobs again.
fn image_of(c: Compression, one_layer: bool) -> &'static ResolvedImage {
    static CELLS: [OnceLock<ResolvedImage>; 4] = [const { OnceLock::new() }; 4];
    let cell = &CELLS[usize::from(c == Compression::Gzip) * 2 + usize::from(one_layer)];
    cell.get_or_init(|| corpus::in_memory_image("bench", &layers_of(c, one_layer).0))
}

fn scan_all(image: &ResolvedImage, detectors: &[Box<dyn Detector>]) -> usize {
    let report = scan_images(
        std::slice::from_ref(image),
        ScanInput {
            target: "bench",
            detectors,
            policy: &Policy::new(Severity::Critical),
            options: &ScanOptions::default(),
            progress: &NoProgress,
            fetch: Default::default(),
            issues: Vec::new(),
            started: std::time::Instant::now(),
            runtime: None,
            known_layers: Default::default(),
            on_layer_walked: None,
        },
    );
    assert!(report.coverage.complete, "{:?}", report.coverage);
    report.images[0].findings.len()
}

/// `canary scan` on this machine: one worker per core (see the module doc).
#[divan::bench(args = ["gzip", "zstd"], sample_count = 5, sample_size = 1)]
fn canary_scan(bencher: divan::Bencher, codec: &str) {
    let c = codec_of(codec);
    let (image, n) = (image_of(c, false), layers(c).1);
    let detectors = default_detectors();
    bencher
        .counter(divan::counter::BytesCount::new(n))
        .bench(|| scan_all(image, &detectors));
}

/// The same image in one layer.
#[divan::bench(args = ["gzip", "zstd"], sample_count = 5, sample_size = 1)]
fn canary_scan_one_layer(bencher: divan::Bencher, codec: &str) {
    let c = codec_of(codec);
    let (image, n) = (image_of(c, true), layers_of(c, true).1);
    let detectors = default_detectors();
    bencher
        .counter(divan::counter::BytesCount::new(n))
        .bench(|| scan_all(image, &detectors));
}

/// Plain decompression of that one layer, for its ratio.
#[divan::bench(args = ["gzip", "zstd"], sample_count = 5, sample_size = 1)]
fn plain_decompression_one_layer(bencher: divan::Bencher, codec: &str) {
    let c = codec_of(codec);
    bencher
        .counter(divan::counter::BytesCount::new(layers_of(c, true).1))
        .bench(|| decompress_all_of(c, true));
}
