//! Detection quality, end to end through `canary scan`: recall on a planted image (every
//! secret and miner rule's example in a realistic place, hand-written miner scenarios,
//! files deleted by later layers, archives inside layers) and no alarms at medium or
//! above on clean controls (a real package tree from this machine's Debian packages, and
//! bait files: certificates, public keys, lockfiles, minified JS, documentation example
//! keys, base64 blobs).

mod common;

use canary_analyzer::corpus::{self, Expect};
use canary_analyzer::fixtures::{Compression, ImageBuilder};
use common::cli::{Canary, path_str};

/// `(rule, path, visibility, chain)` of every finding in a JSON report.
fn found(report: &serde_json::Value) -> Vec<(String, String, String, Vec<String>)> {
    let mut out = Vec::new();
    for img in report["images"].as_array().unwrap() {
        for f in img["findings"].as_array().unwrap() {
            let loc = &f["location"];
            let path = loc["path"].as_str().unwrap_or("(config)").to_string();
            out.push((
                f["rule_id"].as_str().unwrap().to_string(),
                path,
                loc["visibility"].as_str().unwrap_or("visible").to_string(),
                loc["archive_chain"]
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            ));
        }
    }
    out
}

fn missing<'a>(
    want: &'a [Expect],
    got: &[(String, String, String, Vec<String>)],
) -> Vec<&'a Expect> {
    want.iter()
        .filter(|w| {
            !got.iter().any(|(rule, path, vis, chain)| {
                *rule == w.rule
                    && (w.path == "(config)" || *path == w.path)
                    && (w.path == "(config)" || vis == w.visibility)
                    && *chain == w.chain
            })
        })
        .collect()
}

#[test]
fn planted_image_full_recall() {
    let c = Canary::new();
    let (image, want) = corpus::planted_image(Compression::Gzip);
    let archive = c.home.path().join("planted.tar");
    image
        .write_docker_archive(&archive, "planted:1", true)
        .unwrap();
    let r = c.scan_json(&format!("docker-archive:{}", path_str(&archive)), &[]);
    assert_eq!(r.code, 1, "findings fail the policy: {r}");
    let report = r.json();
    let got = found(&report);
    let miss = missing(&want, &got);
    assert!(
        miss.is_empty(),
        "recall {}/{}; missed:\n{:#?}\nfound:\n{:#?}",
        want.len() - miss.len(),
        want.len(),
        miss,
        got
    );
    assert!(
        report["images"][0]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["archive_members"].as_u64() >= Some(4)),
        "archive members counted"
    );
    // Never the secret itself.
    assert!(
        !r.stdout
            .contains("q8Jd/2kLw9Xz+3VbN7mRt5YpHs1GcE4uAo6WfZiT")
    );
    assert!(
        !r.stdout
            .contains("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")
    );
}

#[test]
fn clean_controls_raise_nothing_at_medium_or_above() {
    let c = Canary::new();
    let work = c.home.path().join("bait");
    std::fs::create_dir_all(&work).unwrap();
    let bait = corpus::bait_layer(&work).expect("bait files (openssl, ssh-keygen)");
    let (mut layers, packages, bytes) =
        corpus::debian_layers(&[], 96 << 20, 4 << 20, false, Compression::Gzip);
    assert!(
        packages.len() >= 10 && bytes >= 24 << 20,
        "a real package tree: {packages:?}, {bytes} bytes"
    );
    layers.push(bait.build(Compression::Gzip));
    let mut b = ImageBuilder::new();
    for l in layers {
        b = b.layer(l);
    }
    let archive = c.home.path().join("clean.tar");
    b.env("PATH=/usr/bin:/bin")
        .env("LANG=C.UTF-8")
        .cmd(&["/bin/bash"])
        .user("1000")
        .build()
        .write_docker_archive(&archive, "clean:1", true)
        .unwrap();
    let r = c.scan_json(
        &format!("docker-archive:{}", path_str(&archive)),
        &["--fail-on", "medium"],
    );
    let report = r.json();
    let loud: Vec<String> = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| ["medium", "high", "critical"].contains(&f["severity"].as_str().unwrap()))
        .map(|f| {
            format!(
                "{} {} {}",
                f["rule_id"], f["location"]["path"], f["evidence"]
            )
        })
        .collect();
    assert!(
        loud.is_empty(),
        "false alarms on clean controls ({packages:?}):\n{}",
        loud.join("\n")
    );
    assert_eq!(r.code, 0, "{r}");
}

/// Spare cores (what `canary scan` gives the last layers of a scan) change nothing in a
/// layer's results, in their order, archives inside layers included, and the blob's
/// digest is still checked.
#[test]
fn parallel_walk_finds_what_the_one_thread_walk_finds() {
    use canary_analyzer::detect::default_detectors;
    use canary_analyzer::image::{Layer, Verify};
    use canary_analyzer::walk::{LayerResult, WalkLimits, walk_layer_parallel};

    let detectors = default_detectors();
    let limits = WalkLimits::default();
    let seen = |r: &LayerResult| {
        let f: Vec<String> = r
            .findings
            .iter()
            .map(|f| format!("{} {} {}", f.rule_id, f.fingerprint, f.location.display()))
            .collect();
        let issues: Vec<String> = r.issues.iter().map(|i| format!("{i:?}")).collect();
        let error = r.error.as_ref().map(|e| e.to_string());
        let counts = (r.entries, r.uncompressed_bytes, r.nested_members);
        (f, issues, error, counts, r.skipped.clone())
    };
    for c in [Compression::Gzip, Compression::Zstd] {
        let (image, _) = corpus::planted_image(c);
        let mut findings = 0;
        for (i, blob) in image.layers.iter().enumerate() {
            for tamper in [false, true] {
                let mut bytes = blob.bytes.clone();
                if tamper {
                    // A byte after the compressed stream: only the digest can tell.
                    bytes.push(0);
                }
                let layer = Layer {
                    index: i,
                    digest: blob.digest.clone(),
                    media_type: None,
                    size: Some(bytes.len() as u64),
                    verify: Verify::Blob(blob.digest.clone()),
                };
                let walk = |spare: usize| {
                    let blob = Box::new(std::io::Cursor::new(bytes.clone()));
                    walk_layer_parallel("planted", &layer, blob, &detectors, &limits, spare)
                };
                let one = walk(0);
                assert_eq!(
                    one.error.is_some(),
                    tamper,
                    "{c:?} layer {i}: {:?}",
                    one.error
                );
                for spare in [1, 3] {
                    let more = walk(spare);
                    assert_eq!(
                        seen(&one),
                        seen(&more),
                        "{c:?} layer {i}, tampered: {tamper}, {spare} spare"
                    );
                }
                findings += one.findings.len();
            }
        }
        assert!(findings > 100, "{c:?}: {findings} findings");
    }
}
