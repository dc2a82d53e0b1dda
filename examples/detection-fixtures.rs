//! Writes the detection fixture images for `scripts/compare-detection.py`: the planted
//! image (every rule's example in a realistic place, miner scenarios, deleted files,
//! archives inside layers) and the clean control (Debian package files from this machine
//! plus bait files), each as a `docker save` tarball and as extracted layers (one
//! directory per layer, so other tools see deleted files too), and the list of findings
//! the planted image must produce.
//!
//! ```sh
//! cargo run --release --example detection-fixtures -- OUT [--clean-mb N]
//! ```

use canary_analyzer::corpus;
use canary_analyzer::fixtures::{Compression, Image, ImageBuilder};
use std::path::Path;

fn extract(image: &Image, dir: &Path) -> std::io::Result<()> {
    for (i, tar) in image.layer_tars()?.iter().enumerate() {
        let d = dir.join(format!("layer-{i}"));
        std::fs::create_dir_all(&d)?;
        tar::Archive::new(&tar[..]).unpack(&d)?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut out = None;
    let mut clean_mb = 200u64;
    while let Some(a) = args.next() {
        if a == "--clean-mb" {
            clean_mb = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--clean-mb takes a number");
        } else {
            out = Some(a);
        }
    }
    let out = std::path::PathBuf::from(out.expect("usage: detection-fixtures OUT [--clean-mb N]"));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;

    let (planted, want) = corpus::planted_image(Compression::Gzip);
    planted.write_docker_archive(&out.join("planted.tar"), "planted:1", true)?;
    extract(&planted, &out.join("planted"))?;
    let expected: Vec<serde_json::Value> = want
        .iter()
        .map(|e| {
            serde_json::json!({
                "rule": e.rule, "path": e.path, "visibility": e.visibility, "chain": e.chain
            })
        })
        .collect();
    std::fs::write(
        out.join("planted-expected.json"),
        serde_json::to_string_pretty(&expected)?,
    )?;

    let bait = corpus::bait_layer(&out)?;
    let (mut layers, packages, bytes) =
        corpus::debian_layers(&[], clean_mb << 20, 24 << 20, false, Compression::Gzip);
    layers.push(bait.build(Compression::Gzip));
    let mut b = ImageBuilder::new();
    for l in layers {
        b = b.layer(l);
    }
    let clean = b.env("PATH=/usr/bin:/bin").cmd(&["/bin/bash"]).build();
    clean.write_docker_archive(&out.join("clean.tar"), "clean:1", true)?;
    extract(&clean, &out.join("clean"))?;
    eprintln!(
        "planted: {} expected findings; clean: {} packages ({} MiB) + bait files; in {}",
        want.len(),
        packages.len(),
        bytes >> 20,
        out.display()
    );
    Ok(())
}
