//! `canary serve` under load, as the admission gate meets it:
//!
//! 1. cold scan of an image whose base layers are already in the store: how many layers
//!    and blobs are fetched and walked, and how long it takes;
//! 2. cached verdicts at a fixed 1,000 requests/s (`hey -q`), latency percentiles;
//! 3. the same with the registry down;
//! 4. the most the server answers (`wrk`, 32 connections), with latency percentiles.
//!
//! Needs Debian's docker-registry, hey and wrk (`apt-get install docker-registry hey
//! wrk`). Everything runs on loopback; the load generator shares the machine's cores
//! with the server. Run: `cargo bench --bench serve`.

#[path = "../tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use canary_analyzer::fixtures::{Compression, Image, ImageBuilder, LayerBuilder, push_image};

const TOKEN: &str = "bench-token-0123456789abcdef";

fn layer(name: &str, kib: usize) -> canary_analyzer::fixtures::Layer {
    let mut b = LayerBuilder::new();
    for i in 0..kib / 16 {
        b = b.file(
            &format!("usr/share/{name}/f{i}.txt"),
            format!("{name} line {i}\n").repeat(16 << 10 >> 5),
        );
    }
    b.build(Compression::Gzip)
}

fn images() -> (Image, Image) {
    let base = [
        layer("base", 8 << 10),
        layer("libs", 4 << 10),
        layer("tools", 2 << 10),
    ];
    let img = |extra: Option<canary_analyzer::fixtures::Layer>| {
        let mut b = ImageBuilder::new();
        for l in &base {
            b = b.layer(l.clone());
        }
        if let Some(e) = extra {
            b = b.layer(e);
        }
        b.user("1000").build()
    };
    (img(None), img(Some(layer("app", 1 << 10))))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn http(method: &str, url: &str, body: Option<String>) -> (u16, serde_json::Value) {
    rt().block_on(async {
        let c = reqwest::Client::new();
        let mut r = c.request(method.parse().unwrap(), url).bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        let resp = r.send().await.unwrap();
        let s = resp.status().as_u16();
        (s, resp.json().await.unwrap_or_default())
    })
}

fn scan(base: &str, image: &str) -> (serde_json::Value, Duration) {
    let t = Instant::now();
    let (s, j) = http(
        "POST",
        &format!("{base}/v1/scans"),
        Some(format!(r#"{{"image":"{image}"}}"#)),
    );
    assert_eq!(s, 202, "{j}");
    let id = j["id"].as_str().unwrap().to_string();
    loop {
        let (_, j) = http("GET", &format!("{base}/v1/scans/{id}"), None);
        if j["state"] == "done" || j["state"] == "failed" {
            return (j, t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `hey` at a fixed rate: (p50, p90, p99 in ms, requests/s, non-200 answers).
fn hey_fixed_rate(url: &str, secs: u32) -> (f64, f64, f64, f64, String) {
    let out = Command::new("hey")
        .args(["-z", &format!("{secs}s"), "-c", "20", "-q", "50", "-H"])
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .arg(url)
        .output()
        .expect("hey (apt-get install hey)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pct = |p: &str| -> f64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{p}% in")))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|s| s * 1000.0)
            .unwrap_or(f64::NAN)
    };
    let rps = text
        .lines()
        .find(|l| l.contains("Requests/sec"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let codes: Vec<String> = text
        .lines()
        .skip_while(|l| !l.contains("Status code distribution"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    (pct("50"), pct("90"), pct("99"), rps, codes.join(", "))
}

/// `wrk` flat out: (requests/s, p50, p99 in ms).
fn wrk_max(url: &str) -> (String, String, String) {
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", "32", "-d", "10s", "--latency", "-H"])
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .arg(url)
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    (field("Requests/sec:"), field("50%"), field("99%"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo test --benches asks for the list of benchmarks
    }
    let mut reg = registry::Registry::open();
    let (base, app) = images();
    rt().block_on(push_image(&reg.url, "bench/base", "1", &base, None))
        .unwrap();
    rt().block_on(push_image(&reg.url, "bench/app", "1", &app, None))
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(format!("sqlite://{}", home.path().join("c.db").display()))
        .env("CANARY_API_TOKENS", TOKEN)
        .env("CANARY_CACHE_DIR", home.path().join("cache"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(u) = l.split("listening on ").nth(1) {
                let _ = tx.send(u.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve started");

    let (b, tb) = scan(&url, &format!("{}/bench/base:1", reg.host));
    let blobs = |reg: &registry::Registry| {
        reg.access_log()
            .iter()
            .filter(|l| l.method == "GET" && l.path.contains("/blobs/"))
            .count()
    };
    let before = blobs(&reg);
    let (a, ta) = scan(&url, &format!("{}/bench/app:1", reg.host));
    let app_blobs = blobs(&reg) - before;
    println!("## canary serve benchmark\n");
    println!(
        "| scan | layers | walked | reused from the store | blobs downloaded (registry log) | wall |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| base image, empty store | {} | {} | {} | {} | {:.0} ms |",
        base.layers.len(),
        b["result"]["layers_walked"],
        b["result"]["layers_reused"],
        before,
        tb.as_secs_f64() * 1e3
    );
    println!(
        "| app image = base + 1 layer | {} | {} | {} | {} (config + new layer) | {:.0} ms |",
        app.layers.len(),
        a["result"]["layers_walked"],
        a["result"]["layers_reused"],
        app_blobs,
        ta.as_secs_f64() * 1e3
    );
    let digest = a["manifest_digest"].as_str().unwrap();
    let verdict = format!("{url}/v1/images/{digest}/verdict");
    // Warm-up, then the fixed-rate run.
    let _ = hey_fixed_rate(&verdict, 2);
    let (p50, p90, p99, rps, codes) = hey_fixed_rate(&verdict, 20);
    println!(
        "\n| cached verdict, hey -c 20 -q 50 (1,000 req/s offered), 20 s | p50 | p90 | p99 | req/s | answers |"
    );
    println!("|---|---|---|---|---|---|");
    println!("| registry up | {p50:.2} ms | {p90:.2} ms | {p99:.2} ms | {rps:.0} | {codes} |");
    reg.stop();
    let (p50, p90, p99, rps, codes) = hey_fixed_rate(&verdict, 20);
    println!("| registry down | {p50:.2} ms | {p90:.2} ms | {p99:.2} ms | {rps:.0} | {codes} |");
    let (rps, p50, p99) = wrk_max(&verdict);
    println!("\nwrk -t2 -c32 -d10s (flat out, registry down): {rps} req/s, p50 {p50}, p99 {p99}");
    let _ = child.kill();
    let _ = child.wait();
}
