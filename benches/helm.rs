//! The Helm scanner's costs, as a user meets them:
//! - history scan throughput (commits, distinct blobs/s, MB/s) of `canary helm scan` on a
//!   generated chart repository of 10,000+ commits (built with `git fast-import`; secrets
//!   added and later deleted along the way);
//! - render time per chart: the native engine in-process, and `canary helm template`
//!   beside `helm template` as whole commands (Helm from `CANARY_HELM_BINARY`, which
//!   `scripts/test.sh` installs);
//! - side by side with checkov (`--framework helm`) and detect-secrets on the same charts,
//!   when `CANARY_BENCH_PY` names a virtualenv's `bin/` holding them: findings and wall
//!   time.
//!
//! Run: `cargo bench --bench helm` (`CANARY_BENCH_COMMITS` changes the commit count).

#[path = "../tests/common/charts.rs"]
mod charts;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_chart(dir: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A `git fast-import` stream of `n` commits on `main`: a chart whose values change in
/// every commit, a config file added every 10th, and every 1,000th commit adding a cloud
/// key that the next commit deletes.
fn history_stream(n: usize) -> Vec<u8> {
    let mut s = Vec::new();
    let filler: String = (0..40)
        .map(|i| format!("  # tuning knob {i}: see docs/tuning.md for what it changes\n"))
        .collect();
    let data = |s: &mut Vec<u8>, path: &str, body: &str| {
        writeln!(s, "M 100644 inline {path}\ndata {}\n{body}", body.len()).unwrap();
    };
    for i in 0..n {
        let when = 1_700_000_000 + i as u64 * 600;
        writeln!(
            s,
            "commit refs/heads/main\ncommitter Dev <dev@example.org> {when} +0000\ndata <<EOT\nchange {i}\nEOT"
        )
        .unwrap();
        if i == 0 {
            data(
                &mut s,
                "charts/app/Chart.yaml",
                "apiVersion: v2\nname: app\nversion: 1.0.0\n",
            );
            data(
                &mut s,
                "charts/app/templates/deployment.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {{ .Values.image }}\n",
            );
        }
        let key = if i % 1000 == 1 {
            // A different, random-looking key id each time.
            let mut x = (i as u64 * 0x9E37_79B9_7F4A_7C15) | 1;
            let id: String = (0..16)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[(x % 32) as usize] as char
                })
                .collect();
            format!("awsKey: AKIA{id}\n")
        } else {
            String::new()
        };
        data(
            &mut s,
            "charts/app/values.yaml",
            &format!(
                "replicas: {}\nimage: registry.example.com/app:1.{i}\n{key}tuning:\n{filler}",
                i % 7 + 1
            ),
        );
        if i % 10 == 0 {
            let conf: String = (0..30)
                .map(|l| format!("setting_{l} = value-{i}-{l}\n"))
                .collect();
            data(&mut s, &format!("charts/app/files/conf-{i}.ini"), &conf);
        }
        s.push(b'\n');
    }
    s
}

fn run_timed(cmd: &mut Command) -> (Duration, std::process::Output) {
    let t = Instant::now();
    let out = cmd.output().expect("run");
    (t.elapsed(), out)
}

fn main() {
    let canary = PathBuf::from(env!("CARGO_BIN_EXE_canary"));
    let work = tempfile::tempdir().unwrap();
    let commits: usize = std::env::var("CANARY_BENCH_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);

    // --- History.
    let repo = work.path().join("charts.git");
    assert!(
        Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&repo)
            .status()
            .unwrap()
            .success()
    );
    let mut fi = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&repo)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    fi.stdin
        .take()
        .unwrap()
        .write_all(&history_stream(commits))
        .unwrap();
    assert!(fi.wait().unwrap().success());
    let cache = work.path().join("cache");
    let mut times = Vec::new();
    let mut line = String::new();
    let mut findings = 0;
    for _ in 0..3 {
        let (t, out) = run_timed(
            Command::new(&canary)
                .args(["helm", "scan"])
                .arg(&repo)
                .args(["--format", "json"])
                .env("CANARY_CACHE_DIR", &cache),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        line = err
            .lines()
            .find(|l| l.starts_with("history:"))
            .unwrap_or_else(|| panic!("no history line: {err}"))
            .to_string();
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        findings = j["images"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"] == "secret/aws-access-key-id")
            .count();
        times.push(t);
    }
    let t = median(times);
    // "history: N commits, M distinct blobs, B bytes scanned"
    let nums: Vec<f64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    let (n_commits, blobs, bytes) = (nums[0], nums[1], nums[2]);
    println!("## History scan (`canary helm scan REPO.git`, median of 3)\n");
    println!(
        "| commits | distinct blobs | MB scanned | wall | blobs/s | MB/s | deleted keys found |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {n_commits} | {blobs} | {:.1} | {:.2} s | {:.0} | {:.1} | {findings} of {} |\n",
        bytes / 1e6,
        t.as_secs_f64(),
        blobs / t.as_secs_f64(),
        bytes / 1e6 / t.as_secs_f64(),
        commits.div_ceil(1000)
    );

    // --- Render time per chart.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let charts: [Case; 3] = [
        (
            "helm create style",
            charts::HELPERS_CHART,
            &["--set", "x.y=1"],
        ),
        ("parent + sub-chart", charts::SUBCHART_CHART, &[]),
        ("common library + aliases", charts::DEPS_CHART, &[]),
    ];
    let helm = std::env::var("CANARY_HELM_BINARY").ok();
    println!("## Render time per chart\n");
    println!(
        "| chart | manifests | native engine, in-process | `canary helm template` | `helm template` (v4.1.4) |"
    );
    println!("|---|---|---|---|---|");
    let mut dirs = Vec::new();
    for (name, files, args) in charts {
        let dir = work.path().join(name.replace(' ', "-"));
        write_chart(&dir, files);
        dirs.push((name, dir.clone(), args));
        let mut opts = canary_helm_scanner::chart::RenderOptions::default();
        for a in args.chunks(2) {
            canary_helm_scanner::chart::apply_set(&mut opts.values, a[1], false).unwrap();
        }
        let limits = canary_helm_scanner::chart::ChartLimits::default();
        let rounds = 200;
        let t = Instant::now();
        let mut manifests = 0;
        for _ in 0..rounds {
            let c = canary_helm_scanner::chart::load_dir(&dir, &limits).unwrap();
            let r = canary_helm_scanner::chart::render(&c, &opts).unwrap();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            manifests = r.manifests.len();
        }
        let native = t.elapsed() / rounds;
        let whole = |bin: &Path, first: &[&str]| {
            let v: Vec<Duration> = (0..10)
                .map(|_| {
                    let (t, out) = run_timed(
                        Command::new(bin)
                            .args(first)
                            .arg(&dir)
                            .args(args)
                            .env("HOME", work.path()),
                    );
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    t
                })
                .collect();
            median(v)
        };
        let ours = whole(&canary, &["helm", "template"]);
        let theirs = helm
            .as_deref()
            .map(|h| {
                format!(
                    "{:.1} ms",
                    whole(Path::new(h), &["template", "rel"]).as_secs_f64() * 1e3
                )
            })
            .unwrap_or_else(|| "(CANARY_HELM_BINARY unset)".into());
        println!(
            "| {name} | {manifests} | {:.2} ms | {:.1} ms | {theirs} |",
            native.as_secs_f64() * 1e3,
            ours.as_secs_f64() * 1e3
        );
    }
    println!();

    // --- Side by side with checkov and detect-secrets.
    let Some(py) = std::env::var_os("CANARY_BENCH_PY") else {
        println!(
            "(set CANARY_BENCH_PY to a virtualenv's bin/ with checkov and detect-secrets to compare)"
        );
        return;
    };
    let py = PathBuf::from(py);
    // The same charts with three planted strings in their values: an AWS key id, a GitHub
    // token whose CRC32 checksum is valid (a real token's shape), and one whose checksum
    // is not (what a placeholder or a test string looks like).
    let planted = [
        ("AWS key id", "awsKey: AKIAZ7QWERTYUIOPASDF"),
        (
            "GitHub token (valid checksum)",
            "githubToken: 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",
        ),
        (
            "GitHub-like string (bad checksum)",
            "fakeToken: ghp_R7sT9uV1wX3yZ5aB7cD9eF1gH3iJ5kL7mN9o",
        ),
    ];
    println!(
        "## Side by side (same chart directories; values.yaml gains {})\n",
        planted.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
    );
    println!(
        "| chart | tool | findings | of them on the planted lines (key / token / bad-checksum string) | wall |"
    );
    println!("|---|---|---|---|---|");
    let path_with_helm = match &helm {
        Some(h) => format!(
            "{}:{}",
            Path::new(h).parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
        None => std::env::var("PATH").unwrap_or_default(),
    };
    for (name, dir, args) in &dirs {
        let mut values = std::fs::read_to_string(dir.join("values.yaml")).unwrap_or_default();
        if !values.is_empty() && !values.ends_with('\n') {
            values.push('\n');
        }
        let first = values.lines().count() as u64 + 2;
        values.push_str("planted:\n");
        for (_, line) in planted {
            values.push_str(&format!("  {line}\n"));
        }
        std::fs::write(dir.join("values.yaml"), values).unwrap();
        // Which planted lines (1-based in values.yaml) a tool flagged.
        let marks = |lines: &[u64]| -> String {
            (0..planted.len() as u64)
                .map(|k| {
                    if lines.contains(&(first + k)) {
                        "yes"
                    } else {
                        "no"
                    }
                })
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let (t, out) = run_timed(
            Command::new(&canary)
                .args(["helm", "scan"])
                .arg(dir)
                .args(*args)
                .args(["--format", "json"])
                .env("CANARY_CACHE_DIR", &cache),
        );
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let f = j["images"][0]["findings"].as_array().unwrap();
        let lines: Vec<u64> = f
            .iter()
            .filter(|x| x["location"]["path"] == "values.yaml")
            .filter_map(|x| x["location"]["line"].as_u64())
            .collect();
        println!(
            "| {name} | canary helm scan | {} ({} secret, {} misconfig) | {} | {:.2} s |",
            f.len(),
            f.iter().filter(|x| x["category"] == "secret").count(),
            f.iter().filter(|x| x["category"] == "misconfig").count(),
            marks(&lines),
            t.as_secs_f64()
        );
        let (t, out) = run_timed(
            Command::new(py.join("checkov"))
                .arg("-d")
                .arg(dir)
                .args(["--framework", "helm", "-o", "json", "--quiet", "--compact"])
                .env("PATH", &path_with_helm)
                .env("HOME", work.path()),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let failed = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .map(|v| {
                let one = |r: &serde_json::Value| {
                    r["results"]["failed_checks"].as_array().map_or(0, Vec::len)
                };
                match &v {
                    serde_json::Value::Array(a) => a.iter().map(one).sum(),
                    other => one(other),
                }
            })
            .unwrap_or(0);
        println!(
            "| {name} | checkov --framework helm | {failed} failed checks | (no secret checks in this framework) | {:.2} s |",
            t.as_secs_f64()
        );
        let (t, out) = run_timed(
            Command::new(py.join("detect-secrets"))
                .args(["scan", "--all-files"])
                .current_dir(dir),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let results: Vec<&serde_json::Value> = v["results"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
            .filter_map(|l| l.as_array())
            .flatten()
            .collect();
        let lines: Vec<u64> = v["results"]["values.yaml"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["line_number"].as_u64())
            .collect();
        println!(
            "| {name} | detect-secrets scan | {} | {} | {:.2} s |",
            results.len(),
            marks(&lines),
            t.as_secs_f64()
        );
    }
}
