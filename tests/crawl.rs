//! `canary crawl` and `canary report` against the real Distribution registry (images
//! built in code, sharing base layers), a local stand-in for Docker Hub's API
//! (tests/common/hub.rs), SQLite and the machine's PostgreSQL.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use canary_analyzer::fixtures::{
    Compression, Image, ImageBuilder, Layer, LayerBuilder, push_image,
};
use common::cli::Canary;
use common::hub::FakeHub;
use common::registry::Registry;
use serde_json::Value;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn base() -> [Layer; 2] {
    [
        LayerBuilder::new()
            .file("etc/os-release", "ID=fixture\n")
            .file("usr/share/doc/base.txt", "base system\n".repeat(300))
            .build(Compression::Gzip),
        LayerBuilder::new()
            .file("usr/lib/libx.txt", "libraries\n".repeat(300))
            .build(Compression::Gzip),
    ]
}

const MINER: &str =
    "#!/bin/sh\nexec /opt/xmrig -o stratum+tcp://pool.supportxmr.com:3333 -u w --donate-level 1\n";
const AWS: &str = "[default]\naws_access_key_id = AKIAZ7QWERTYUIOPASDF\naws_secret_access_key = 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\n";

/// The newest tag of app`i`: 0 and 3 carry a miner, 1 a secret a later layer deleted,
/// 3 also a visible secret; the rest are clean.
fn app(i: usize, newest: bool) -> Image {
    let mut b = ImageBuilder::new();
    for l in base() {
        b = b.layer(l);
    }
    let own = LayerBuilder::new().file(
        &format!("app/{i}/VERSION"),
        if newest { "2\n" } else { "1\n" },
    );
    let own = match (newest, i) {
        (true, 0) => own.file("opt/start.sh", MINER),
        (true, 1) => own.file("root/.aws/credentials", AWS),
        (true, 3) => own
            .file("opt/start.sh", MINER)
            .file("srv/.aws/credentials", AWS),
        _ => own,
    };
    b = b.layer(own.build(Compression::Gzip));
    if newest && i == 1 {
        b = b.layer(
            LayerBuilder::new()
                .whiteout("root/.aws/credentials")
                .build(Compression::Gzip),
        );
    }
    b.user("1000").build()
}

fn push_all(reg: &Registry, n: usize) -> Vec<(String, Vec<(String, String)>)> {
    let mut table = Vec::new();
    for i in 0..n {
        let repo = format!("team/app{i}");
        rt().block_on(push_image(&reg.url, &repo, "v1", &app(i, false), None))
            .unwrap();
        rt().block_on(push_image(&reg.url, &repo, "v2", &app(i, true), None))
            .unwrap();
        // The Hub lists tags in its own order; v2 is the newest.
        table.push((
            repo,
            vec![
                ("v1".to_string(), "2026-10-01T00:00:00Z".to_string()),
                ("v2".to_string(), "2026-11-01T00:00:00Z".to_string()),
            ],
        ));
    }
    table
}

fn manifest_gets(reg: &Registry) -> usize {
    reg.access_log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/manifests/"))
        .count()
}

fn blob_gets(reg: &Registry) -> usize {
    reg.access_log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/blobs/"))
        .count()
}

fn report_json(c: &Canary, db: &str) -> Value {
    let r = c.run(&["report", "--db", db, "--format", "json"]);
    assert_eq!(r.code, 0, "{r}");
    r.json()
}

#[test]
fn crawl_hub_namespace_dedups_layers_resumes_cheaply_and_reports() {
    let reg = Registry::open();
    let hub = FakeHub::start(push_all(&reg, 6));
    let c = Canary::new();
    let db = format!("sqlite://{}", c.home.path().join("crawl.db").display());
    let crawl = |extra: &[&str]| {
        let mut args = vec![
            "crawl",
            "--db",
            &db,
            "--workers",
            "2",
            "--hub-url",
            &hub.url,
            "--hub-registry",
            &reg.host,
        ];
        args.extend_from_slice(extra);
        c.run(&args)
    };
    let r = crawl(&["--hub-namespace", "team", "--max-tags", "1"]);
    assert_eq!(r.code, 0, "{r}");
    // Paged listing: 6 repositories at 2 a page.
    assert!(
        hub.requests
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.contains("page=3"))
    );
    let f = report_json(&c, &db);
    assert_eq!(f["images"], 6, "{f}");
    assert_eq!(f["by_category"]["miner"], 2, "{f}");
    assert_eq!(f["miner_families"]["xmrig"], 2, "{f}");
    assert_eq!(f["pools"]["pool.supportxmr.com"], 2, "{f}");
    assert_eq!(f["secret_types"]["secret/aws-access-key-id"], 2, "{f}");
    assert_eq!(f["with_miner_or_secret"], 3, "{f}");
    assert_eq!(f["only_in_deleted_files"], 1, "{f}");
    // 2 shared base layers + 6 own layers + 1 whiteout layer, each walked once.
    assert_eq!(f["layer_results"], 9, "{f}");
    let end: Value = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "end")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(end["layers_walked"], 9, "{r}");
    assert_eq!(end["layers_deduped"], 10, "{r}"); // the base pair, in 5 of the 6 images

    // Again: every tag is HEADed and found known: no manifest GET, no blob.
    let (m, b) = (manifest_gets(&reg), blob_gets(&reg));
    let r = crawl(&["--hub-namespace", "team", "--max-tags", "1"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!((manifest_gets(&reg), blob_gets(&reg)), (m, b), "{r}");
    assert_eq!(report_json(&c, &db)["images"], 6);

    // The registry's own catalog as a source: the older tags are new images; only their
    // own layers are walked.
    let r = crawl(&["--registry", &reg.host, "--max-tags", "2"]);
    assert_eq!(r.code, 0, "{r}");
    let f = report_json(&c, &db);
    assert_eq!(f["images"], 12, "{f}");
    assert_eq!(f["layer_results"], 15, "{f}");

    // A report runs beside a crawl that holds the SQLite store.
    let mut holder = c
        .command()
        .args(["crawl", "--db", &db, "--linger-secs", "60"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once the holder has the store's lock file open (its /proc fds tell, without
    // touching the lock), another writer is refused and a reader is not.
    let fds = format!("/proc/{}/fd", holder.id());
    let until = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_dir(&fds)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy().ends_with("crawl.db.lock"))
        })
    {
        assert!(holder.try_wait().unwrap().is_none(), "the holder stopped");
        assert!(Instant::now() < until, "the holder never took the store");
        std::thread::sleep(Duration::from_millis(50));
    }
    // It locks right after opening.
    std::thread::sleep(Duration::from_millis(200));
    let r = c.run(&["crawl", "--db", &db]);
    assert!(r.stderr.contains("in use by another canary process"), "{r}");
    assert_eq!(report_json(&c, &db)["images"], 12);
    holder.kill().unwrap();
    holder.wait().unwrap();

    // Reports: Markdown, CSV (one row per finding, nothing whole of the secret), HTML.
    let md = c.run(&["report", "--db", &db]).stdout;
    assert!(
        md.contains("| images scanned (platform manifests) | 12 |"),
        "{md}"
    );
    let csv_path = c.home.path().join("f.csv");
    let r = c.run(&["report", "--db", &db, "-o", csv_path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.starts_with("image,manifest_digest,rule_id,"));
    assert!(csv.contains("\"miner/stratum-url\""));
    assert!(!csv.contains("q8Jd/2kLw9Xz"), "secret value in the CSV");
    check_parquet(&c, &db, &csv);
    let html_path = c.home.path().join("r.html");
    assert_eq!(
        c.run(&["report", "--db", &db, "-o", html_path.to_str().unwrap()])
            .code,
        0
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.contains("<td class=\"n\" id=\"images\">12</td>"),
        "{html}"
    );
    check_in_chromium(&html_path, &[("images", "12"), ("deleted-only", "1")]);
}

/// `report --format parquet` read back by pyarrow (installed by scripts/test.sh): the
/// same columns and rows as the CSV, nothing whole of the secret.
fn check_parquet(c: &Canary, db: &str, csv: &str) {
    let r = c.run(&["report", "--db", db, "--format", "parquet"]);
    assert_ne!(r.code, 0, "parquet to standard output: {r}");
    assert!(r.stderr.contains("--output"), "{r}");
    let path = c.home.path().join("f.parquet");
    let r = c.run(&["report", "--db", db, "-o", path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    let py = std::env::var("CANARY_PYARROW_PYTHON").expect(
        "CANARY_PYARROW_PYTHON is unset: run the README test command (bash scripts/test.sh), which installs pyarrow",
    );
    let out = Command::new(py)
        .arg("-c")
        .arg(
            "import json, sys, pyarrow.parquet as pq\n\
             t = pq.read_table(sys.argv[1])\n\
             print(json.dumps({'columns': t.column_names, 'rows': t.to_pylist()}))",
        )
        .arg(&path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyarrow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(v["columns"], serde_json::json!(header));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), csv.lines().count() - 1);
    assert!(rows.iter().any(|r| r["rule_id"] == "miner/stratum-url"));
    assert!(
        rows.iter()
            .filter(|r| r["location_kind"] == "image_file")
            .all(
                |r| r["layer_digest"].as_str().unwrap().starts_with("sha256:")
                    && !r["path"].as_str().unwrap().is_empty()
            )
    );
    assert!(
        !out.stdout.windows(12).any(|w| w == b"q8Jd/2kLw9Xz"),
        "secret value in the Parquet file"
    );
}

/// The page as headless Chromium renders it: the figures in the DOM it built are the
/// store's.
fn check_in_chromium(page: &std::path::Path, want: &[(&str, &str)]) {
    let bin = "/usr/bin/chromium";
    assert!(
        std::path::Path::new(bin).exists(),
        "{bin} is missing: run the README test command (bash scripts/test.sh), which installs Debian's chromium"
    );
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<svg"), "no chart rendered:\n{dom}");
    for (id, v) in want {
        assert!(
            dom.contains(&format!("id=\"{id}\">{v}</td>")),
            "{id} ≠ {v} in the rendered page:\n{dom}"
        );
    }
}

/// kill -9 a crawl on PostgreSQL mid-way and run it again: it finishes, and no layer is
/// walked twice over both runs; two processes then share the queue.
#[test]
fn crawl_killed_and_restarted_on_postgres_redoes_no_layer() {
    let name = "canary_test_crawl";
    let db = common::pg::fresh_database(name);
    let reg = Registry::open();
    let n = 10;
    push_all(&reg, n);
    let list = tempfile::NamedTempFile::new().unwrap();
    let refs: Vec<String> = (0..n)
        .flat_map(|i| {
            [
                format!("{}/team/app{i}:v1", reg.host),
                format!("{}/team/app{i}:v2", reg.host),
            ]
        })
        .collect();
    std::fs::write(list.path(), refs.join("\n")).unwrap();
    let c = Canary::new();
    let mut child = c
        .command()
        .args([
            "crawl",
            "--db",
            &db,
            "--workers",
            "1",
            "--job-lease-secs",
            "3",
            "--from-file",
        ])
        .arg(list.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some images are done and some are not.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        // The table appears once the crawl has migrated the database.
        let done = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", name, "-At", "-c"])
            .arg("SELECT count(*) FROM jobs WHERE state = 'done'")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<i64>()
                    .ok()
            })
            .unwrap_or(0);
        if done >= 3 {
            break;
        }
        assert!(Instant::now() < until, "the crawl made no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before: i64 = common::pg::psql(name, "SELECT count(*) FROM jobs WHERE state = 'done'")
        .parse()
        .unwrap();
    assert!(
        done_before < 2 * n as i64,
        "killed too late to test anything"
    );
    // Two processes resume together: one re-reads the list (dedup), one only works.
    let helper = c
        .command()
        .args([
            "crawl",
            "--db",
            &db,
            "--workers",
            "1",
            "--job-lease-secs",
            "3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let r = c.run_with(
        c.command()
            .args([
                "crawl",
                "--db",
                &db,
                "--workers",
                "1",
                "--job-lease-secs",
                "3",
                "--from-file",
            ])
            .arg(list.path()),
    );
    assert_eq!(r.code, 0, "{r}");
    let h = helper.wait_with_output().unwrap();
    assert!(h.status.success(), "{}", String::from_utf8_lossy(&h.stderr));
    // Every image has a verdict; every distinct layer was walked exactly once overall.
    assert_eq!(
        common::pg::psql(name, "SELECT count(*) FROM verdicts"),
        (2 * n).to_string()
    );
    let layers: i64 = common::pg::psql(name, "SELECT count(*) FROM layer_results")
        .parse()
        .unwrap();
    assert_eq!(layers, 2 + 2 * n as i64 + 1);
    // No layer result was produced twice, before or after the kill.
    assert_eq!(
        common::pg::psql(name, "SELECT max(walks) FROM layer_results"),
        "1"
    );
    let walked: i64 = common::pg::psql(
        name,
        "SELECT COALESCE(SUM((result::json->>'layers_walked')::bigint), 0) FROM jobs WHERE state = 'done'",
    )
    .parse()
    .unwrap();
    assert!(walked <= layers, "{walked} walks for {layers} layers");
}

#[test]
fn crawl_refuses_bad_sources() {
    let c = Canary::new();
    let db = format!("sqlite://{}", c.home.path().join("x.db").display());
    let list = c.home.path().join("list.txt");
    std::fs::write(&list, "ok/image:1\n/etc/passwd\n").unwrap();
    let r = c.run(&["crawl", "--db", &db, "--from-file", list.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("list.txt:2"), "{r}");
    let r = c.run(&[
        "crawl",
        "--db",
        &db,
        "--hub-namespace",
        "x",
        "--hub-url",
        "http://hub.example",
    ]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("only https://"), "{r}");
    let r = c.run(&[
        "crawl",
        "--db",
        &db,
        "--hub-namespace",
        "../admin",
        "--hub-url",
        "https://hub.example",
    ]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("not a Docker Hub namespace"), "{r}");
}

/// A registry with Docker Hub's pull limit (3 manifest GETs per user per 4 s, the local
/// fault-injecting server of tests/common/faulty.rs): with two accounts the crawl splits
/// its pulls between them; with one it waits for the window instead of being refused.
#[test]
fn crawl_paces_pulls_and_rotates_credentials() {
    use common::faulty::FaultyRegistry;
    let faulty = FaultyRegistry::start();
    faulty.require_basic(&[("alice", "pw-a"), ("bob", "pw-b")]);
    faulty.pull_limit(3, 4);
    let mut refs = Vec::new();
    for i in 0..5 {
        faulty.add_image(&format!("team/r{i}"), "1", &app(i, false));
        refs.push(format!("{}/team/r{i}:1", faulty.host));
    }
    let c = Canary::new();
    let list = c.home.path().join("list.txt");
    std::fs::write(&list, refs.join("\n")).unwrap();
    let both = c.home.path().join("creds-both");
    std::fs::write(
        &both,
        format!("{0} alice:pw-a\n{0} bob:pw-b\n", faulty.host),
    )
    .unwrap();
    let crawl = |db: &str, creds: &std::path::Path| {
        c.run(&[
            "crawl",
            "--db",
            db,
            "--workers",
            "1",
            "--registry-credentials",
            creds.to_str().unwrap(),
            "--from-file",
            list.to_str().unwrap(),
        ])
    };
    let r = crawl(
        &format!("sqlite://{}", c.home.path().join("a.db").display()),
        &both,
    );
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(faulty.too_many(), 0, "{r}");
    let (a, b) = (faulty.pulls("alice"), faulty.pulls("bob"));
    assert_eq!(a + b, 5, "{a} + {b}");
    assert!(a >= 2 && b >= 2, "both accounts used: {a}, {b}");

    // One account for 5 pulls at 3 per 4 s: the last two wait for the window.
    std::thread::sleep(Duration::from_secs(4));
    let one = c.home.path().join("creds-one");
    std::fs::write(&one, format!("{} alice:pw-a\n", faulty.host)).unwrap();
    let started = Instant::now();
    let r = crawl(
        &format!("sqlite://{}", c.home.path().join("b.db").display()),
        &one,
    );
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(
        faulty.too_many(),
        0,
        "the crawl was refused instead of waiting\n{r}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(r.stderr.contains("waited"), "{r}");
}

/// `crawl --runtime`: an image whose miner only shows itself when run (its pool name and
/// Stratum login XOR-encoded, tests/sandbox/quiet.c) is counted as caught only at run
/// time; an image with a miner launcher in plain sight is not.
#[test]
fn crawl_runtime_counts_images_caught_only_when_run() {
    let reg = Registry::open();
    let miner = std::fs::read(common::probe::quiet()).unwrap();
    let quiet = ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file_mode("usr/bin/worker", &miner, 0o755)
                .dir("tmp")
                .build(Compression::Gzip),
        )
        .entrypoint(&["/usr/bin/worker"])
        .user("1000")
        .build();
    rt().block_on(push_image(&reg.url, "team/quiet", "1", &quiet, None))
        .unwrap();
    rt().block_on(push_image(&reg.url, "team/app0", "2", &app(0, true), None))
        .unwrap();
    let c = Canary::new();
    let list = c.home.path().join("list.txt");
    std::fs::write(
        &list,
        format!("{0}/team/quiet:1\n{0}/team/app0:2\n", reg.host),
    )
    .unwrap();
    let db = format!("sqlite://{}", c.home.path().join("rt.db").display());
    let r = c.run_with(
        c.command()
            .args([
                "crawl",
                "--db",
                &db,
                "--runtime",
                "--runtime-timeout",
                "15",
                "--from-file",
            ])
            .arg(&list)
            .env("CANARY_CACHE_DIR", sandbox_cache()),
    );
    assert_eq!(r.code, 0, "{r}");
    let f = report_json(&c, &db);
    assert_eq!(f["images"], 2, "{f}");
    assert_eq!(f["runtime_only"], 1, "{f}");
    assert!(
        f["by_category"]["runtime"].as_u64().unwrap_or(0) >= 1,
        "{f}"
    );
}

/// The sandbox unpacks root filesystems under the cache: on a disk, not a tmpfs home.
fn sandbox_cache() -> std::path::PathBuf {
    let d = tempfile::Builder::new()
        .prefix("canary-crawl-rt-")
        .tempdir_in("/var/tmp")
        .unwrap();
    d.keep()
}
