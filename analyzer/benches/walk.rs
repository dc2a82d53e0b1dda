//! Walk throughput of a large multi-file layer against plain decompression of the same
//! blob, gzip and zstd, in the same run. `docs/performance.md` has the figures.
//!
//! Run: `cargo bench -p canary-analyzer --features fixtures --bench walk`
//! (`CANARY_BENCH_MB` sets the uncompressed layer size, default 512.)

use std::io::Read;
use std::sync::OnceLock;

use canary_analyzer::detect::default_detectors;
use canary_analyzer::fixtures::{Compression, LayerBuilder};
use canary_analyzer::image::{Layer, Verify};
use canary_analyzer::walk::{WalkLimits, walk_layer};

fn main() {
    divan::main();
}

/// A layer of many files of mixed, moderately compressible content (text-like lines
/// and pseudo-random binary), built once.
fn layer_tar() -> &'static Vec<u8> {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        let mb: usize = std::env::var("CANARY_BENCH_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512);
        let target = mb << 20;
        let mut b = LayerBuilder::new();
        let mut total = 0usize;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut i = 0usize;
        while total < target {
            // Sizes from 1 KiB to 4 MiB, like a real rootfs: many small, a few large.
            let size = match i % 10 {
                0 => 4 << 20,
                1 | 2 => 256 << 10,
                _ => 16 << 10,
            };
            let mut content = Vec::with_capacity(size);
            while content.len() < size {
                if (i / 3).is_multiple_of(2) {
                    content.extend_from_slice(
                        format!("line {i} key_{} = value {}\n", seed % 9973, seed % 7919)
                            .as_bytes(),
                    );
                } else {
                    content.extend_from_slice(&seed.to_le_bytes());
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
            }
            content.truncate(size);
            b = b.file(&format!("usr/share/bench/d{}/f{i}.dat", i % 97), content);
            total += size;
            i += 1;
        }
        b.tar()
    })
}

fn blob(c: Compression) -> &'static Vec<u8> {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    static ZST: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = match c {
        Compression::Gzip => &GZ,
        Compression::Zstd => &ZST,
        Compression::None => unreachable!(),
    };
    cell.get_or_init(|| {
        let tar = layer_tar();
        match c {
            Compression::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut e, tar).expect("in-memory write");
                e.finish().expect("in-memory write")
            }
            _ => zstd::encode_all(&tar[..], 3).expect("in-memory write"),
        }
    })
}

fn codec_of(name: &str) -> Compression {
    if name == "gzip" {
        Compression::Gzip
    } else {
        Compression::Zstd
    }
}

fn decompress(c: Compression) -> u64 {
    let data = &blob(c)[..];
    // The same decoders over the same 256 KiB input buffer the walk uses, so the ratio
    // measures the walk's own cost (tar parsing, detectors, hashing of nothing else).
    let input = std::io::BufReader::with_capacity(256 << 10, data);
    let mut r: Box<dyn Read> = match c {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        _ => Box::new(zstd::Decoder::with_buffer(input).expect("zstd")),
    };
    std::io::copy(&mut r, &mut std::io::sink()).expect("decompress")
}

fn walk(c: Compression, detectors: &[Box<dyn canary_analyzer::detect::Detector>]) -> u64 {
    let data: &'static [u8] = &blob(c)[..];
    let layer = Layer {
        index: 0,
        digest: "sha256:bench".into(),
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
    r.uncompressed_bytes
}

#[divan::bench(args = ["gzip", "zstd"], sample_count = 5, sample_size = 1)]
fn plain_decompression(bencher: divan::Bencher, codec: &str) {
    let c = codec_of(codec);
    let n = layer_tar().len() as u64;
    blob(c);
    bencher
        .counter(divan::counter::BytesCount::new(n))
        .bench(|| decompress(c));
}

/// The walk with every detector of `canary scan`, the secret engine (YARA-X over every
/// file's bytes) included. One layer, so one thread.
#[divan::bench(args = ["gzip", "zstd"], sample_count = 5, sample_size = 1)]
fn layer_walk(bencher: divan::Bencher, codec: &str) {
    let c = codec_of(codec);
    let n = layer_tar().len() as u64;
    blob(c);
    let detectors = default_detectors();
    bencher
        .counter(divan::counter::BytesCount::new(n))
        .bench(|| walk(c, &detectors));
}

/// The walk itself: decompression, tar parsing, whiteouts, and the detectors that need
/// no file contents beyond the files they name (image config, credential files).
#[divan::bench(args = ["gzip", "zstd"], sample_count = 5, sample_size = 1)]
fn layer_walk_without_content_scan(bencher: divan::Bencher, codec: &str) {
    let c = codec_of(codec);
    let n = layer_tar().len() as u64;
    blob(c);
    let detectors: Vec<Box<dyn canary_analyzer::detect::Detector>> = vec![
        Box::new(canary_analyzer::detect::config::ConfigDetector::new()),
        Box::new(canary_analyzer::detect::files::CredentialFileDetector),
    ];
    bencher
        .counter(divan::counter::BytesCount::new(n))
        .bench(|| walk(c, &detectors));
}
