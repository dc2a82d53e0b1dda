//! Bad and hostile input: each gets a clear error naming the image, layer and path, exit
//! 2, no panic, bounded memory. Inputs are built here, never committed.

mod common;

use std::io::Write;
use std::path::Path;

use canary_analyzer::fixtures::{Blob, Compression, Image, ImageBuilder, Layer, LayerBuilder};
use common::cli::{Canary, path_str};
use common::faulty::{Fault, FaultyRegistry};
use sha2::{Digest, Sha256};

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", canary_analyzer::hex(&Sha256::digest(b)))
}

/// The same layer with other bytes (and the digest of those bytes).
fn with_bytes(l: &Layer, bytes: Vec<u8>) -> Layer {
    Layer {
        digest: digest(&bytes),
        size: bytes.len() as u64,
        blob: bytes,
        diff_id: l.diff_id.clone(),
        media_type: l.media_type.clone(),
        compression: l.compression,
    }
}

fn image_of(layer: Layer) -> Image {
    ImageBuilder::new().layer(layer).user("1000").build()
}

/// Write a layout and scan it.
fn scan_layout(c: &Canary, img: &Image) -> common::cli::Run {
    let dir = tempfile::tempdir_in(c.home.path()).unwrap().keep();
    img.write_oci_layout(&dir, "t").unwrap();
    c.scan_json(&format!("oci:{}", path_str(&dir)), &[])
}

fn assert_error(r: &common::cli::Run, needles: &[&str]) {
    assert_eq!(r.code, 2, "{r}");
    assert!(!r.stderr.contains("panicked"), "{r}");
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}\n{r}");
    }
}

#[test]
fn truncated_gzip_layer() {
    let c = Canary::new();
    let l = LayerBuilder::new()
        .file("a/big", vec![7u8; 300_000])
        .file("b", "x")
        .build(Compression::Gzip);
    let cut = with_bytes(&l, l.blob[..l.blob.len() / 2].to_vec());
    let img = image_of(cut.clone());
    let r = scan_layout(&c, &img);
    assert_error(&r, &[&cut.digest, "oci:"]);
    assert_eq!(r.json()["coverage"]["complete"], false);
}

#[test]
fn corrupt_zstd_layer() {
    let c = Canary::new();
    let l = LayerBuilder::new()
        .file("a", "hello world ".repeat(5000))
        .file("b", "x")
        .build(Compression::Zstd);
    let mut bytes = l.blob.clone();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xff;
    }
    let bad = with_bytes(&l, bytes);
    let r = scan_layout(&c, &image_of(bad.clone()));
    assert_error(&r, &[&bad.digest]);
}

#[test]
fn blob_digest_mismatch_in_layout() {
    let c = Canary::new();
    let l = LayerBuilder::new()
        .file("etc/x", "original content")
        .build(Compression::Gzip);
    let img = image_of(l.clone());
    let dir = c.home.path().join("layout");
    img.write_oci_layout(&dir, "t").unwrap();
    let blob = dir
        .join("blobs/sha256")
        .join(l.digest.trim_start_matches("sha256:"));
    let other = LayerBuilder::new()
        .file("etc/x", "tampered content")
        .build(Compression::Gzip);
    std::fs::write(&blob, &other.blob).unwrap();
    let r = c.scan_json(&format!("oci:{}", path_str(&dir)), &[]);
    assert_error(&r, &["digest mismatch", &l.digest]);
}

#[test]
fn tar_entries_escaping_the_root() {
    let c = Canary::new();
    for (raw, needle) in [
        (&b"../../etc/cron.d/evil"[..], "escapes the image root"),
        (&b"/etc/shadow"[..], "absolute path"),
    ] {
        let l = LayerBuilder::new()
            .file("ok", "fine")
            .raw_entry(raw, "payload")
            .build(Compression::Gzip);
        let r = scan_layout(&c, &image_of(l.clone()));
        assert_error(&r, &[needle, &l.digest, std::str::from_utf8(raw).unwrap()]);
    }
}

#[test]
fn symlink_loop_is_reported_and_not_followed() {
    let c = Canary::new();
    let l = LayerBuilder::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .symlink("self", "self")
        .file("etc/ok", "x")
        .build(Compression::Gzip);
    let r = scan_layout(&c, &image_of(l));
    // A loop is legal in a filesystem and extracts fine; the static walk never follows
    // links, so the scan completes and the loop is a warning, not an error.
    assert_eq!(r.code, 0, "{r}");
    let warnings = r.json()["coverage"]["warnings"].clone();
    let text = warnings.to_string();
    assert!(
        text.contains("symlink loop") && text.contains("/self") && text.contains("/a"),
        "{text}"
    );
}

#[test]
fn entry_claiming_100_gb() {
    let c = Canary::new();
    let l = LayerBuilder::new()
        .file("ok", "fine")
        .lying_size_entry("huge.bin", 100 << 30)
        .build(Compression::Gzip);
    let r = scan_layout(&c, &image_of(l.clone()));
    assert_error(&r, &["/huge.bin", "claims 107374182400 bytes", &l.digest]);
}

/// A gzip bomb: 300 MiB of zeros in ~300 KiB. Stopped by the ratio limit, not by memory.
#[test]
fn gzip_bomb_hits_the_ratio_limit() {
    let c = Canary::new();
    let size: u64 = 300 << 20;
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(header.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let blob = gz.finish().unwrap();
    let template = LayerBuilder::new().file("x", "x").build(Compression::Gzip);
    let bomb = with_bytes(&template, blob);
    let r = scan_layout(&c, &image_of(bomb.clone()));
    assert_error(&r, &["decompression bomb", &bomb.digest]);
}

fn write_raw_layout(dir: &Path, manifest: &[u8], media_type: &str, blobs: &[&Blob]) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let md = digest(manifest);
    std::fs::write(
        dir.join("blobs/sha256")
            .join(md.trim_start_matches("sha256:")),
        manifest,
    )
    .unwrap();
    for b in blobs {
        std::fs::write(
            dir.join("blobs/sha256")
                .join(b.digest.trim_start_matches("sha256:")),
            &b.bytes,
        )
        .unwrap();
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": media_type, "digest": md, "size": manifest.len()}]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    format!("oci:{}", path_str(dir))
}

#[test]
fn manifest_with_10000_layers() {
    let c = Canary::new();
    let img = image_of(LayerBuilder::new().file("a", "b").build(Compression::Gzip));
    let layer = &img.layers[0];
    let layers: Vec<_> = (0..10_000)
        .map(|_| serde_json::json!({"mediaType": layer.media_type, "digest": layer.digest, "size": layer.bytes.len()}))
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": img.config.media_type, "digest": img.config.digest, "size": img.config.bytes.len()},
        "layers": layers,
    }))
    .unwrap();
    let t = write_raw_layout(
        &c.home.path().join("l"),
        &manifest,
        "application/vnd.oci.image.manifest.v1+json",
        &[&img.config, layer],
    );
    let r = c.scan_json(&t, &[]);
    assert_error(&r, &["10000 layers", "limit is 1000"]);
}

#[test]
fn fifty_megabytes_of_json_as_a_manifest() {
    let c = Canary::new();
    let mut big = Vec::with_capacity(50 << 20);
    big.extend_from_slice(br#"{"schemaVersion":2,"annotations":{"x":""#);
    big.resize(50 << 20, b'a');
    big.extend_from_slice(br#""}}"#);
    let t = write_raw_layout(
        &c.home.path().join("l"),
        &big,
        "application/vnd.oci.image.manifest.v1+json",
        &[],
    );
    let r = c.scan_json(&t, &[]);
    assert_error(&r, &["larger than the limit"]);

    // The same from a registry.
    let reg = FaultyRegistry::start();
    reg.add_raw(
        "/v2/big/manifests/latest",
        "application/vnd.oci.image.manifest.v1+json",
        big,
    );
    let r = c.scan_json(&format!("{}/big:latest", reg.host), &[]);
    assert_error(&r, &["larger than the limit", "manifest"]);
}

#[test]
fn wrong_media_types() {
    let c = Canary::new();
    let img = image_of(LayerBuilder::new().file("a", "b").build(Compression::Gzip));
    let mut m: serde_json::Value = serde_json::from_slice(&img.manifest.bytes).unwrap();
    m["layers"][0]["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let bytes = serde_json::to_vec(&m).unwrap();
    let t = write_raw_layout(
        &c.home.path().join("a"),
        &bytes,
        "application/vnd.oci.image.manifest.v1+json",
        &[&img.config, &img.layers[0]],
    );
    assert_error(&c.scan_json(&t, &[]), &["not a container layer"]);

    let mut m: serde_json::Value = serde_json::from_slice(&img.manifest.bytes).unwrap();
    m["mediaType"] = "text/html".into();
    let bytes = serde_json::to_vec(&m).unwrap();
    let t = write_raw_layout(
        &c.home.path().join("b"),
        &bytes,
        "text/html",
        &[&img.config, &img.layers[0]],
    );
    assert_error(
        &c.scan_json(&t, &[]),
        &["unsupported manifest media type \"text/html\""],
    );

    // A Helm chart (not an image) pushed to a registry.
    let mut m: serde_json::Value = serde_json::from_slice(&img.manifest.bytes).unwrap();
    m["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json".into();
    let bytes = serde_json::to_vec(&m).unwrap();
    let t = write_raw_layout(
        &c.home.path().join("c"),
        &bytes,
        "application/vnd.oci.image.manifest.v1+json",
        &[&img.config, &img.layers[0]],
    );
    assert_error(&c.scan_json(&t, &[]), &["not an image config"]);
}

fn served_image() -> Image {
    ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("etc/a", "a".repeat(100_000))
                .build(Compression::Gzip),
        )
        .user("1000")
        .build()
}

#[test]
fn registry_answers_403_404_and_500() {
    let c = Canary::new();
    let reg = FaultyRegistry::start();
    let img = served_image();
    reg.add_image("app", "v1", &img);

    let r = c.scan_json(
        &format!("{}/missing:v1", reg.host),
        &["--retry-base-ms", "10"],
    );
    assert_error(
        &r,
        &["HTTP 404", "MANIFEST_UNKNOWN", "/v2/missing/manifests/v1"],
    );

    reg.fault(
        "/manifests/v1",
        Fault::Status {
            status: 403,
            headers: vec![],
            times: 1,
        },
    );
    let r = c.scan_json(&format!("{}/app:v1", reg.host), &["--retry-base-ms", "10"]);
    assert_error(&r, &["HTTP 403", "/v2/app/manifests/v1"]);

    reg.fault(
        "/manifests/v1",
        Fault::Status {
            status: 500,
            headers: vec![],
            times: 100,
        },
    );
    let r = c.scan_json(
        &format!("{}/app:v1", reg.host),
        &["--retry-base-ms", "10", "--max-retries", "2"],
    );
    assert_error(&r, &["HTTP 500", "gave up after 2 retries"]);
}

#[test]
fn registry_429_with_retry_after_is_retried() {
    let c = Canary::new();
    let reg = FaultyRegistry::start();
    let img = served_image();
    reg.add_image("app", "v1", &img);
    reg.fault(
        "/manifests/v1",
        Fault::Status {
            status: 429,
            headers: vec![
                ("Retry-After".into(), "1".into()),
                ("RateLimit-Remaining".into(), "0;w=21600".into()),
            ],
            times: 1,
        },
    );
    reg.fault(
        &format!("/blobs/{}", img.layers[0].digest),
        Fault::Status {
            status: 503,
            headers: vec![],
            times: 2,
        },
    );
    let started = std::time::Instant::now();
    let r = c.scan_json(&format!("{}/app:v1", reg.host), &["--retry-base-ms", "10"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let j = r.json();
    assert_eq!(j["fetch"]["retries"], 3, "{r}");
    assert_eq!(
        j["fetch"]["rate_limit"]["remaining"], 99,
        "rate-limit headers are reported"
    );

    // A Retry-After longer than we are willing to wait fails at once, saying why.
    reg.fault(
        "/manifests/v1",
        Fault::Status {
            status: 429,
            headers: vec![("Retry-After".into(), "3600".into())],
            times: 1,
        },
    );
    let r = c.scan_json(&format!("{}/app:v1", reg.host), &[]);
    assert_error(&r, &["HTTP 429", "retry after 3600s"]);
}

#[test]
fn registry_closing_mid_blob() {
    let c = Canary::new();
    let reg = FaultyRegistry::start();
    let img = served_image();
    reg.add_image("app", "v1", &img);
    let blob = format!("/blobs/{}", img.layers[0].digest);

    // Once: retried, and the scan completes.
    reg.fault(
        &blob,
        Fault::CloseMidBody {
            bytes: 100,
            times: 1,
        },
    );
    let r = c.scan_json(&format!("{}/app:v1", reg.host), &["--retry-base-ms", "10"]);
    assert_eq!(r.code, 0, "{r}");

    // Always: an error naming the blob URL, and nothing half-written left in the cache.
    let c = Canary::new();
    reg.fault(
        &blob,
        Fault::CloseMidBody {
            bytes: 100,
            times: 100,
        },
    );
    let r = c.scan_json(
        &format!("{}/app:v1", reg.host),
        &["--retry-base-ms", "10", "--max-retries", "2"],
    );
    assert_error(&r, &[&blob, "broke off"]);
    let cached: Vec<_> = std::fs::read_dir(c.cache_dir().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !cached
            .iter()
            .any(|n| n.starts_with(".partial") || img.layers[0].digest.ends_with(n.as_str())),
        "{cached:?}"
    );
}

#[test]
fn registry_blob_digest_mismatch() {
    let c = Canary::new();
    let reg = FaultyRegistry::start();
    let img = served_image();
    reg.add_image("app", "v1", &img);
    let other = LayerBuilder::new()
        .file("evil", "x")
        .build(Compression::Gzip);
    reg.add_raw(
        &format!("/v2/app/blobs/{}", img.layers[0].digest),
        "application/octet-stream",
        other.blob,
    );
    let r = c.scan_json(&format!("{}/app:v1", reg.host), &[]);
    assert_error(&r, &["digest mismatch", &img.layers[0].digest, "discarded"]);
    assert!(
        !c.cache_dir()
            .join("blobs/sha256")
            .join(img.layers[0].digest.trim_start_matches("sha256:"))
            .exists()
    );
}

fn tar_block(path: &str, size: u64, kind: tar::EntryType) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn pad(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(512) {
        v.push(0);
    }
}

/// A tar parser differential is a scanner bypass: a PAX `size` record overrides the
/// header's size field, as in Go's archive/tar (containerd). Here the ustar header claims
/// 1024 bytes of data but the PAX record says 0, so containerd reads the next 512-byte
/// block as a header and extracts the file hidden there; we must see it too.
#[test]
fn pax_size_override_cannot_hide_a_file() {
    let c = Canary::new();
    let secret = b"https://bob:pax-hidden-secret@git.example\n";
    let record = "10 size=0\n";
    assert_eq!(record.len(), 10);
    let mut t = Vec::new();
    t.extend(tar_block(
        "PaxHeaders/cover",
        record.len() as u64,
        tar::EntryType::XHeader,
    ));
    t.extend(record.as_bytes());
    pad(&mut t);
    t.extend(tar_block("cover.bin", 1024, tar::EntryType::Regular));
    // What containerd sees next, and a parser trusting the ustar size would skip:
    t.extend(tar_block(
        "root/.git-credentials",
        secret.len() as u64,
        tar::EntryType::Regular,
    ));
    t.extend(secret);
    pad(&mut t);
    t.extend([0u8; 1024]);
    let template = LayerBuilder::new().file("x", "x").build(Compression::None);
    let layer = with_bytes(&template, t);
    let r = scan_layout(&c, &image_of(layer));
    let j = r.json();
    let paths: Vec<String> = j["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["location"]["path"].as_str().map(str::to_string))
        .collect();
    assert!(
        paths.contains(&"/root/.git-credentials".to_string()),
        "hidden file missed\n{r}"
    );
}

fn pax_block(records: &str) -> Vec<u8> {
    let mut t = tar_block(
        "PaxHeaders/x",
        records.len() as u64,
        tar::EntryType::XHeader,
    );
    t.extend(records.as_bytes());
    pad(&mut t);
    t
}

fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut n = body.len() + 1;
    while format!("{n}{body}").len() != n {
        n += 1;
    }
    format!("{n}{body}")
}

fn scan_raw_tar(c: &Canary, mut t: Vec<u8>) -> common::cli::Run {
    t.extend([0u8; 1024]);
    let template = LayerBuilder::new().file("x", "x").build(Compression::None);
    scan_layout(c, &image_of(with_bytes(&template, t)))
}

/// Go's archive/tar reads no data for a directory entry whatever its size field says;
/// a reader that skipped 1024 bytes would never see the file containerd extracts there.
#[test]
fn header_only_entry_with_data_is_refused() {
    let c = Canary::new();
    let mut t = tar_block("usr/", 1024, tar::EntryType::Directory);
    t.extend(tar_block("usr/bin/xmrig", 5, tar::EntryType::Regular));
    t.extend(b"miner");
    pad(&mut t);
    let r = scan_raw_tar(&c, t);
    assert_error(
        &r,
        &[
            "usr/",
            "parsed differently by containerd",
            "containerd reads none",
        ],
    );
}

#[test]
fn repeated_pax_size_record_is_refused() {
    let c = Canary::new();
    let mut t = pax_block(&(pax_record("size", "1024") + &pax_record("size", "0")));
    t.extend(tar_block("cover.bin", 0, tar::EntryType::Regular));
    t.extend(vec![0u8; 1024]);
    let r = scan_raw_tar(&c, t);
    assert_error(&r, &["cover.bin", "appears twice"]);
}

#[test]
fn name_with_embedded_nul_is_refused() {
    let c = Canary::new();
    let mut name = b"root/.aws/credentials\0".to_vec();
    name.extend(std::iter::repeat_n(b'x', 120));
    let l = LayerBuilder::new()
        .raw_entry(&name, "[default]\n")
        .build(Compression::Gzip);
    let r = scan_layout(&c, &image_of(l));
    assert_error(&r, &["embedded NUL"]);
}

/// tar readers hold GNU long names and PAX bodies in memory: an 8 MiB "name" is refused
/// at 1 MiB instead of being read.
#[test]
fn huge_long_name_is_refused_with_bounded_memory() {
    let c = Canary::new();
    let size = 8u64 << 20;
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_size(size);
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_cksum();
    let mut t = h.as_bytes().to_vec();
    t.extend(std::iter::repeat_n(b'a', size as usize));
    t.extend(tar_block("placeholder", 0, tar::EntryType::Regular));
    let r = scan_raw_tar(&c, t);
    assert_error(&r, &["tar metadata", "larger than"]);
}

/// A layer that breaks off part-way still reports what was found before the break.
#[test]
fn findings_before_a_truncation_are_kept() {
    let c = Canary::new();
    let mut noise = Vec::new();
    let mut x = 12345u64;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    let l = LayerBuilder::new()
        .file(
            "root/.git-credentials",
            "https://u:tr4ncated-secret@git.example\n",
        )
        .file("big.bin", noise)
        .build(Compression::Gzip);
    let cut = with_bytes(&l, l.blob[..l.blob.len() / 2].to_vec());
    let r = scan_layout(&c, &image_of(cut));
    assert_eq!(r.code, 2, "{r}");
    let j = r.json();
    assert_eq!(j["images"][0]["layers"][0]["complete"], false);
    assert_eq!(
        j["images"][0]["findings"][0]["location"]["path"], "/root/.git-credentials",
        "{r}"
    );
}

/// Names from an image cannot drive the terminal: control characters are printed escaped.
#[test]
fn terminal_escapes_in_paths_are_neutralised() {
    let c = Canary::new();
    let l = LayerBuilder::new()
        .file(
            "home/\x1b[2J\x1b]52;c;Zm9v\x07\nPASSED/.git-credentials",
            "https://u:esc-secret-1@h\n",
        )
        .build(Compression::Gzip);
    let dir = c.home.path().join("esc");
    image_of(l).write_oci_layout(&dir, "t").unwrap();
    let r = c.run(&[
        "scan",
        "--format",
        "table",
        &format!("oci:{}", path_str(&dir)),
    ]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        !r.stdout.contains('\x1b') && !r.stdout.contains('\x07'),
        "{r}"
    );
    assert!(r.stdout.contains("\\u{1b}[2J"), "{r}");
    assert!(!r.stdout.lines().any(|l| l.starts_with("PASSED")), "{r}");
}

/// Thousands of corrupted variants of a real layer (bit flips, truncations, spliced
/// garbage) through the walk: errors are fine, panics and hangs are not.
#[test]
fn mutated_layers_never_panic_and_walk_alike_with_helper_threads() {
    use canary_analyzer::detect::default_detectors;
    use canary_analyzer::image::{Layer as ImageLayer, Verify};
    use canary_analyzer::walk::{WalkLimits, walk_layer, walk_layer_parallel};

    let detectors = default_detectors();
    let limits = WalkLimits::default();
    let mut seed = 0x853c_49e6_748f_ea9bu64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut walked = 0;
    for comp in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let base = LayerBuilder::new()
            .dir("etc")
            .file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
            .file("root/.git-credentials", "https://u:p@h\n")
            .symlink("etc/alias", "passwd")
            .hardlink("etc/hard", "etc/passwd")
            .whiteout("var/old")
            .file(&format!("long/{}", "n".repeat(150)), "x".repeat(3000))
            .build(comp)
            .blob;
        for _ in 0..400 {
            let mut b = base.clone();
            match rand() % 3 {
                0 => {
                    for _ in 0..1 + rand() % 8 {
                        let i = (rand() as usize) % b.len();
                        b[i] ^= 1 << (rand() % 8);
                    }
                }
                1 => b.truncate((rand() as usize) % b.len()),
                _ => {
                    let i = (rand() as usize) % b.len();
                    let junk: Vec<u8> = (0..(rand() % 600)).map(|_| rand() as u8).collect();
                    b.splice(i..i, junk);
                }
            }
            let layer = ImageLayer {
                index: 0,
                digest: digest(&b),
                media_type: None,
                size: Some(b.len() as u64),
                verify: Verify::Done,
            };
            let inline = walk_layer(
                "fuzz",
                &layer,
                Box::new(std::io::Cursor::new(b.clone())),
                &detectors,
                &limits,
            );
            // Helper threads change nothing a user sees.
            let parallel = walk_layer_parallel(
                "fuzz",
                &layer,
                Box::new(std::io::Cursor::new(b)),
                &detectors,
                &limits,
                1 + walked % 3,
            );
            let seen = |r: &canary_analyzer::walk::LayerResult| {
                let fps: Vec<String> = r.findings.iter().map(|f| f.fingerprint.clone()).collect();
                let error = r.error.as_ref().map(|e| e.to_string());
                let issues: Vec<String> = r.issues.iter().map(|i| i.message.clone()).collect();
                (fps, error, issues, r.entries, r.uncompressed_bytes)
            };
            assert_eq!(seen(&inline), seen(&parallel), "{comp:?} mutation {walked}");
            walked += 1;
        }
    }
    assert_eq!(walked, 1200);
}
