//! `canary serve` over real HTTP: started as a process by each test, against the real
//! Distribution registry (which sends it real push notifications), PostgreSQL at
//! 127.0.0.1:5432 and SQLite. The job queue is checked by SIGKILLing the server mid-scan.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use canary_analyzer::fixtures::{Compression, Image, ImageBuilder, LayerBuilder, push_image};
use common::cli::Canary;
use common::faulty::{Fault, FaultyRegistry};
use common::registry::Registry;
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789abcdef";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A running `canary serve`, SIGKILLed on drop.
struct Serve {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Serve {
    fn start(c: &Canary, db: &str, extra: &[&str]) -> Serve {
        let mut cmd = c.command();
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--job-lease-secs",
            "3",
        ])
        .args(extra)
        .env("CANARY_API_TOKENS", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        Serve::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Serve {
        let mut child = cmd.spawn().expect("start canary serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(url);
                }
                let mut l = l2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("canary serve did not start:\n{}", log.lock().unwrap());
            }
        };
        Serve { child, base, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Resp {
    rt().block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    })
}

impl Serve {
    fn get(&self, path: &str) -> Resp {
        http(
            "GET",
            &format!("{}{path}", self.base),
            Some(TOKEN),
            None,
            &[],
        )
    }
    fn post(&self, path: &str, body: &Value) -> Resp {
        http(
            "POST",
            &format!("{}{path}", self.base),
            Some(TOKEN),
            Some(body.to_string().into_bytes()),
            &[],
        )
    }
    fn scan(&self, image: &str) -> String {
        let r = self.post("/v1/scans", &json!({ "image": image }));
        assert_eq!(r.status, 202, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_string()
    }
    /// Poll a scan until it is done or failed.
    fn wait_scan(&self, id: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let j = self.get(&format!("/v1/scans/{id}")).json();
            if j["state"] == "done" || j["state"] == "failed" {
                return j;
            }
            assert!(
                Instant::now() < until,
                "scan {id} did not end: {j}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn base_layer() -> canary_analyzer::fixtures::Layer {
    LayerBuilder::new()
        .file("etc/os-release", "ID=fixture\n")
        .file("usr/share/doc/readme", "nothing to see\n".repeat(200))
        .build(Compression::Gzip)
}

fn lib_layer() -> canary_analyzer::fixtures::Layer {
    LayerBuilder::new()
        .file("usr/lib/app/lib.txt", "library\n".repeat(500))
        .build(Compression::Gzip)
}

fn clean_image() -> Image {
    ImageBuilder::new()
        .layer(base_layer())
        .layer(lib_layer())
        .user("1000")
        .build()
}

/// Shares the clean image's two layers and adds one with a miner launcher.
fn miner_image() -> Image {
    ImageBuilder::new()
        .layer(base_layer())
        .layer(lib_layer())
        .layer(
            LayerBuilder::new()
                .file(
                    "opt/start.sh",
                    "#!/bin/sh\nexec /opt/xmrig -o stratum+tcp://pool.supportxmr.com:3333 -u wallet --donate-level 1\n",
                )
                .build(Compression::Gzip),
        )
        .entrypoint(&["/opt/xmrig", "-o", "stratum+tcp://pool.supportxmr.com:3333"])
        .user("1000")
        .build()
}

/// A miner image whose digest no other test image has.
fn miner_image_variant() -> Image {
    ImageBuilder::new()
        .layer(base_layer())
        .entrypoint(&["/opt/xmrig", "-o", "stratum+tcp://pool.minexmr.com:4444"])
        .build()
}

/// Jobs in the store, in any state, from the queue gauges of `/metrics`.
fn jobs_total(s: &Serve) -> i64 {
    http("GET", &format!("{}/metrics", s.base), None, None, &[])
        .body
        .lines()
        .filter(|l| l.starts_with("canary_queue_jobs{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum()
}

fn push(reg: &Registry, repo: &str, tag: &str, img: &Image) {
    rt().block_on(push_image(&reg.url, repo, tag, img, None))
        .unwrap();
}

fn blob_gets(reg: &Registry) -> usize {
    reg.access_log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/blobs/"))
        .count()
}

#[test]
fn scan_api_stores_verdicts_and_walks_shared_layers_once() {
    let reg = Registry::open();
    push(&reg, "team/clean", "1", &clean_image());
    push(&reg, "team/miner", "1", &miner_image());
    let c = Canary::new();
    let db = format!("sqlite://{}", c.home.path().join("canary.db").display());
    let s = Serve::start(&c, &db, &[]);

    let clean = s.wait_scan(&s.scan(&format!("{}/team/clean:1", reg.host)));
    assert_eq!(clean["state"], "done", "{clean}");
    assert_eq!(clean["result"]["layers_walked"], 2, "{clean}");
    assert_eq!(clean["result"]["passed"], true, "{clean}");
    let blobs_before = blob_gets(&reg);

    // The miner image shares both layers: only its own layer is downloaded and walked.
    let miner = s.wait_scan(&s.scan(&format!("{}/team/miner:1", reg.host)));
    assert_eq!(miner["state"], "done", "{miner}");
    assert_eq!(miner["result"]["layers_walked"], 1, "{miner}");
    assert_eq!(miner["result"]["layers_reused"], 2, "{miner}");
    // Its config blob and its one new layer, nothing else (also by the registry's log).
    assert_eq!(miner["result"]["blobs_downloaded"], 2, "{miner}");
    assert_eq!(blob_gets(&reg) - blobs_before, 2, "{:?}", reg.access_log());
    let report = &miner["report"];
    assert_eq!(report["fetch"]["layers_reused"], 2);
    let ids: Vec<&str> = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"config/miner-command"), "{ids:?}");

    // Verdicts by digest.
    let digest = miner["manifest_digest"].as_str().unwrap();
    let v = s.get(&format!("/v1/images/{digest}/verdict"));
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.json()["verdict"], "deny");
    let clean_digest = clean["manifest_digest"].as_str().unwrap();
    assert_eq!(
        s.get(&format!("/v1/images/{clean_digest}/verdict")).json()["verdict"],
        "allow"
    );
    let unknown = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(s.get(&format!("/v1/images/{unknown}/verdict")).status, 404);
    assert_eq!(s.get("/v1/images/sha256:xyz/verdict").status, 400);

    // The same request twice while queued is one job; after it ended, a new one.
    let metrics = http("GET", &format!("{}/metrics", s.base), None, None, &[]);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("canary_layers_total{result=\"reused\"} 2"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("canary_scans_total{outcome=\"done\"} 2"),
        "{}",
        metrics.body
    );

    // An image the registry does not have fails at once (no retries), saying why.
    let nope = s.wait_scan(&s.scan(&format!("{}/team/nope:1", reg.host)));
    assert_eq!(nope["state"], "failed", "{nope}");
    assert_eq!(nope["attempts"], 1, "{nope}");
    assert!(nope["error"].as_str().unwrap().contains("404"), "{nope}");

    // Bad input and authentication.
    let u = format!("{}/v1/scans", s.base);
    let body = br#"{"image":"x/y:1"}"#.to_vec();
    assert_eq!(http("POST", &u, None, Some(body.clone()), &[]).status, 401);
    assert_eq!(
        http(
            "POST",
            &u,
            Some("wrong-token-0123456789"),
            Some(body.clone()),
            &[]
        )
        .status,
        401
    );
    assert_eq!(
        http(
            "POST",
            &u,
            None,
            Some(body),
            &[("X-ScannerAdapter-API-Key", TOKEN)]
        )
        .status,
        202
    );
    for (bad, status) in [
        (json!({"image": "docker-archive:/etc/passwd"}), 422),
        (json!({"image": "/etc/shadow"}), 422),
        (json!({"image": "Bad Ref!!"}), 422),
        (json!({"image": "x/y@sha256:1234"}), 422),
        (json!({"image": "x/y:1", "platform": "plan9"}), 422),
        (json!({"nope": 1}), 422),
    ] {
        let r = s.post("/v1/scans", &bad);
        assert_eq!(r.status, status, "{bad}: {}", r.body);
    }
    assert_eq!(
        http("POST", &u, Some(TOKEN), Some(b"{not json".to_vec()), &[]).status,
        400
    );
    let huge = format!(r#"{{"image":"{}"}}"#, "a".repeat(5 << 20)).into_bytes();
    assert_eq!(http("POST", &u, Some(TOKEN), Some(huge), &[]).status, 413);
    assert_eq!(s.get("/v1/scans/does-not-exist").status, 404);
    assert_eq!(
        http("GET", &format!("{}/healthz", s.base), None, None, &[]).status,
        200
    );
    assert_eq!(
        http("GET", &format!("{}/readyz", s.base), None, None, &[]).status,
        200
    );
    // No secret value leaves the server whole.
    assert!(!s.log().contains(TOKEN));
}

#[test]
fn harbor_adapter_scan_poll_report() {
    let reg = Registry::basic("robot$canary", "robot-secret-123");
    let img = miner_image();
    let auth = reg.push_auth_for("library/app");
    rt().block_on(push_image(
        &reg.url,
        "library/app",
        "v1",
        &img,
        auth.as_ref(),
    ))
    .unwrap();
    let c = Canary::new();
    let db = format!("sqlite://{}", c.home.path().join("canary.db").display());
    let s = Serve::start(&c, &db, &[]);
    let key = [("X-ScannerAdapter-API-Key", TOKEN)];

    let meta = http(
        "GET",
        &format!("{}/api/v1/metadata", s.base),
        None,
        None,
        &key,
    );
    assert_eq!(meta.status, 200, "{}", meta.body);
    assert!(
        meta.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.scanner.adapter.metadata+json")
    );
    let m = meta.json();
    assert_eq!(m["scanner"]["name"], "Canary");
    assert!(
        m["capabilities"][0]["produces_mime_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t
                .as_str()
                .unwrap()
                .starts_with("application/vnd.scanner.adapter.vuln.report.harbor+json"))
    );

    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("robot$canary:robot-secret-123");
    let request = json!({
        "registry": { "url": reg.url, "authorization": format!("Basic {basic}") },
        "artifact": { "repository": "library/app", "digest": img.manifest.digest, "tag": "v1",
                      "mime_type": "application/vnd.docker.distribution.manifest.v2+json" },
    });
    let scan_url = format!("{}/api/v1/scan", s.base);
    let r = http(
        "POST",
        &scan_url,
        None,
        Some(request.to_string().into_bytes()),
        &[
            key[0],
            (
                "Content-Type",
                "application/vnd.scanner.adapter.scan.request+json; version=1.0",
            ),
        ],
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();

    // 302 with Refresh-After until the report is ready, then 200.
    let report_url = format!("{}/api/v1/scan/{id}/report", s.base);
    let accept = (
        "Accept",
        "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
    );
    let until = Instant::now() + Duration::from_secs(120);
    let mut saw_302 = false;
    let report = loop {
        let r = http("GET", &report_url, None, None, &[key[0], accept]);
        match r.status {
            302 => {
                saw_302 = true;
                assert!(r.headers.contains_key("refresh-after"), "{:?}", r.headers);
            }
            200 => break r,
            _ => panic!("{} {}\n{}", r.status, r.body, s.log()),
        }
        assert!(Instant::now() < until, "no report\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = saw_302; // a fast scan may finish before the first poll
    assert!(
        report.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.scanner.adapter.vuln.report.harbor+json")
    );
    let rep = report.json();
    assert_eq!(rep["artifact"]["digest"], img.manifest.digest.as_str());
    assert!(
        ["Critical", "High"].contains(&rep["severity"].as_str().unwrap()),
        "{rep}"
    );
    let vulns = rep["vulnerabilities"].as_array().unwrap();
    assert!(
        vulns.iter().any(|v| v["id"] == "config/miner-command"),
        "{rep}"
    );
    // Our own report type too.
    let own = http(
        "GET",
        &report_url,
        None,
        None,
        &[
            key[0],
            ("Accept", "application/vnd.canary.report+json; version=1.0"),
        ],
    );
    assert_eq!(own.status, 200);
    assert_eq!(
        own.json()["images"][0]["manifest_digest"],
        img.manifest.digest.as_str()
    );
    // Robot credentials are not kept once the job ended, nor printed.
    assert!(!s.log().contains("robot-secret-123"));

    // Errors: unknown id, unsupported report type, unsupported auth scheme, plain HTTP
    // to a host not allowed.
    let r = http(
        "GET",
        &format!("{}/api/v1/scan/nope/report", s.base),
        None,
        None,
        &[key[0], accept],
    );
    assert_eq!(r.status, 404);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.scanner.adapter.error+json")
    );
    assert_eq!(
        http(
            "GET",
            &report_url,
            None,
            None,
            &[key[0], ("Accept", "text/html")]
        )
        .status,
        400
    );
    let mut bearer = request.clone();
    bearer["registry"]["authorization"] = json!("Bearer abc");
    assert_eq!(
        http(
            "POST",
            &scan_url,
            None,
            Some(bearer.to_string().into_bytes()),
            &key
        )
        .status,
        422
    );
    let mut far = request.clone();
    far["registry"]["url"] = json!("http://harbor.example:8080");
    assert_eq!(
        http(
            "POST",
            &scan_url,
            None,
            Some(far.to_string().into_bytes()),
            &key
        )
        .status,
        422
    );
    assert_eq!(
        http("POST", &scan_url, None, Some(b"[]".to_vec()), &key).status,
        400
    );
    assert_eq!(
        http(
            "GET",
            &format!("{}/api/v1/metadata", s.base),
            None,
            None,
            &[]
        )
        .status,
        401
    );
}

fn review(uid: &str, namespace: &str, kind: &str, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": if kind == "Pod" { "" } else { "apps" }, "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "dryRun": false
        }
    })
}

fn pod(images: &[&str], init: &[&str]) -> Value {
    let c = |i: usize, img: &&str| json!({"name": format!("c{i}"), "image": img});
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {
            "containers": images.iter().enumerate().map(|(i, x)| c(i, x)).collect::<Vec<_>>(),
            "initContainers": init.iter().enumerate().map(|(i, x)| c(i, x)).collect::<Vec<_>>(),
        }
    })
}

#[test]
fn admission_webhook_answers_from_verdicts_and_waits_for_scans() {
    let mut reg = Registry::open();
    push(&reg, "team/clean", "1", &clean_image());
    push(&reg, "team/miner", "1", &miner_image());
    let c = Canary::new();
    let db = format!("sqlite://{}", c.home.path().join("canary.db").display());
    let cfg = c.home.path().join("admission.toml");
    std::fs::write(
        &cfg,
        "on_miss = \"wait\"\nwait_ms = 20000\n[namespaces.strict]\non_miss = \"deny\"\n[namespaces.dev]\non_miss = \"allow\"\n\
         [namespaces.pinned]\non_miss = \"wait\"\nrequire_digest = true\n",
    )
    .unwrap();
    let s = Serve::start(&c, &db, &["--admission-config", cfg.to_str().unwrap()]);
    let clean = format!("{}/team/clean:1", reg.host);
    let miner = format!("{}/team/miner:1", reg.host);

    // Miss in "strict": denied at once, scan queued.
    let r = s.post(
        "/admission/validate",
        &review("u-1", "strict", "Pod", pod(&[&clean], &[])),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.json();
    assert_eq!(a["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(a["response"]["uid"], "u-1");
    assert_eq!(a["response"]["allowed"], false, "{a}");
    assert!(
        a["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not scanned yet"),
        "{a}"
    );

    // Default namespace waits: a Deployment whose init container is the miner is denied
    // with the rule named; the clean one alone is allowed.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": pod(&[&clean], &[&miner])}
    });
    let r = s.post(
        "/admission/validate",
        &review("u-2", "default", "Deployment", deployment),
    );
    let a = r.json();
    assert_eq!(a["response"]["allowed"], false, "{a}\n{}", s.log());
    let msg = a["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("config/miner-command"), "{msg}");
    assert!(msg.contains("team/miner"), "{msg}");
    let r = s.post(
        "/admission/validate",
        &review("u-3", "default", "Pod", pod(&[&clean], &[])),
    );
    assert_eq!(r.json()["response"]["allowed"], true, "{}", r.body);

    // A CronJob's template and an ephemeral container are looked at too.
    let cron = json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": pod(&[&miner], &[])}}}});
    let r = s.post(
        "/admission/validate",
        &review("u-4", "default", "CronJob", cron),
    );
    assert_eq!(r.json()["response"]["allowed"], false);
    let mut p = pod(&[&clean], &[]);
    p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": miner}]);
    let r = s.post("/admission/validate", &review("u-5", "default", "Pod", p));
    assert_eq!(r.json()["response"]["allowed"], false);

    // A namespace that admits only digests refuses tags, takes the same image pinned.
    let r = s.post(
        "/admission/validate",
        &review("u-p1", "pinned", "Pod", pod(&[&clean], &[])),
    );
    let a = r.json();
    assert_eq!(a["response"]["allowed"], false, "{a}");
    assert!(
        a["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("pinned by digest"),
        "{a}"
    );
    let pinned = format!("{}/team/clean@{}", reg.host, clean_image().manifest.digest);
    let r = s.post(
        "/admission/validate",
        &review("u-p2", "pinned", "Pod", pod(&[&pinned], &[])),
    );
    assert_eq!(r.json()["response"]["allowed"], true, "{}", r.body);

    // A dry run queues nothing and does not wait.
    push(&reg, "team/other", "1", &miner_image_variant());
    let before = jobs_total(&s);
    let mut dry = review(
        "u-d",
        "default",
        "Pod",
        pod(&[&format!("{}/team/other:1", reg.host)], &[]),
    );
    dry["request"]["dryRun"] = json!(true);
    let started = Instant::now();
    let a = s.post("/admission/validate", &dry).json();
    assert_eq!(a["response"]["allowed"], false, "{a}");
    assert!(
        a["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("dry run"),
        "{a}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(jobs_total(&s), before);

    // Cached verdicts are still served with the registry down (the tag's last digest),
    // with a warning.
    reg.stop();
    let started = Instant::now();
    let r = s.post(
        "/admission/validate",
        &review("u-6", "default", "Pod", pod(&[&clean], &[])),
    );
    let a = r.json();
    assert_eq!(a["response"]["allowed"], true, "{a}");
    assert!(
        a["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("last had"),
        "{a}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // "dev" allows what it cannot resolve, with a warning; the default denies.
    let ghost = format!("{}/team/ghost:1", reg.host);
    let r = s.post(
        "/admission/validate",
        &review("u-7", "dev", "Pod", pod(&[&ghost], &[])),
    );
    assert_eq!(r.json()["response"]["allowed"], true, "{}", r.body);
    let r = s.post(
        "/admission/validate",
        &review("u-8", "default", "Pod", pod(&[&ghost], &[])),
    );
    assert_eq!(r.json()["response"]["allowed"], false, "{}", r.body);

    // Malformed reviews are refused with 400; a DELETE (no object) is allowed.
    for bad in [
        json!({"kind": "AdmissionReview"}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "x", "kind": {"kind": "Pod"}, "object": {"spec": {"containers": "nope"}}}}),
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "x", "kind": {"kind": "Pod"}, "object": {"spec": {"containers": [{"name": "a"}]}}}}),
    ] {
        let r = s.post("/admission/validate", &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let mut del = review("u-9", "default", "Pod", Value::Null);
    del["request"]["operation"] = json!("DELETE");
    assert_eq!(
        s.post("/admission/validate", &del).json()["response"]["allowed"],
        true
    );
}

#[test]
fn registry_push_events_queue_scans_idempotently_on_postgres() {
    let db = common::pg::fresh_database("canary_test_events");
    let c = Canary::new();
    let s = Serve::start(&c, &db, &[]);
    let reg = Registry::open_notifying(&format!("{}/registry/events", s.base), TOKEN);
    let img = miner_image();
    push(&reg, "team/pushed", "1", &img);
    let digest = img.manifest.digest.clone();
    let until = Instant::now() + Duration::from_secs(120);
    let verdict = loop {
        let r = s.get(&format!("/v1/images/{digest}/verdict"));
        if r.status == 200 {
            break r.json();
        }
        assert!(
            Instant::now() < until,
            "no verdict after the push\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(verdict["verdict"], "deny", "{verdict}");
    // Pushing the same manifest again (another tag) sends the event again: no new scan.
    push(&reg, "team/pushed", "2", &img);
    std::thread::sleep(Duration::from_secs(2));
    let jobs = common::pg::psql(db.rsplit('/').next().unwrap(), "SELECT count(*) FROM jobs");
    assert_eq!(jobs, "1", "{}", s.log());
    let m = http("GET", &format!("{}/metrics", s.base), None, None, &[]).body;
    assert!(
        m.contains("canary_registry_events_total{action=\"known\"}"),
        "{m}"
    );
    // The registry's events carry the right token; a wrong one is refused.
    let r = http(
        "POST",
        &format!("{}/registry/events", s.base),
        Some("wrong-token-0123456789"),
        Some(b"{\"events\":[]}".to_vec()),
        &[],
    );
    assert_eq!(r.status, 401);
    let r = s.post("/registry/events", &json!({"events": "nope"}));
    assert_eq!(r.status, 400);
    // Tables are in PostgreSQL.
    let layers = common::pg::psql("canary_test_events", "SELECT count(*) FROM layer_results");
    assert_eq!(layers, "3");
}

/// SIGKILL the server while a scan is downloading, start it again: the job completes
/// once, nothing is lost or duplicated.
fn killed_mid_scan_job_completes(db: &str, pg: Option<&str>) {
    let faulty = FaultyRegistry::start();
    let img = miner_image();
    faulty.add_image("team/slow", "1", &img);
    let last = img.layers.last().unwrap().digest.clone();
    faulty.fault(
        &last,
        Fault::Stall {
            bytes: 10,
            secs: 120,
            times: 1,
        },
    );
    let c = Canary::new();
    let mut s = Serve::start(&c, db, &[]);
    let id = s.scan(&format!("{}/team/slow:1", faulty.host));
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let j = s.get(&format!("/v1/scans/{id}")).json();
        let downloading = faulty.log().iter().any(|l| l.contains(&last));
        if j["state"] == "running" && downloading {
            break;
        }
        assert!(Instant::now() < until, "{j}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    s.kill();
    let s = Serve::start(&c, db, &[]);
    let j = s.wait_scan(&id);
    assert_eq!(j["state"], "done", "{j}\n{}", s.log());
    assert_eq!(j["attempts"], 2, "{j}");
    assert!(
        !j["report"]["images"][0]["findings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    if let Some(name) = pg {
        assert_eq!(common::pg::psql(name, "SELECT count(*) FROM jobs"), "1");
        assert_eq!(common::pg::psql(name, "SELECT count(*) FROM verdicts"), "1");
    }
    let v = s.get(&format!("/v1/images/{}/verdict", img.manifest.digest));
    assert_eq!(v.json()["verdict"], "deny");
}

#[test]
fn sigkill_mid_scan_then_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    killed_mid_scan_job_completes(
        &format!("sqlite://{}", dir.path().join("c.db").display()),
        None,
    );
}

#[test]
fn sigkill_mid_scan_then_restart_on_postgres() {
    let db = common::pg::fresh_database("canary_test_kill");
    killed_mid_scan_job_completes(&db, Some("canary_test_kill"));
}

#[test]
fn tls_and_refusals_at_start() {
    let c = Canary::new();
    let dir = c.home.path();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    // A private CA and a server certificate for 127.0.0.1 signed by it.
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let script = "set -e
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=canary-test-ca -keyout ca.key -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out cert.csr
        openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out cert.pem";
    let ok = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let db = format!("sqlite://{}", dir.join("c.db").display());
    let s = Serve::start(
        &c,
        &db,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let pem = std::fs::read(dir.join("ca.pem")).unwrap();
    let status = rt().block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        client
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    drop(s);
    // A second server on the same SQLite file is refused; so is no auth off loopback.
    let _first = Serve::start(&c, &db, &[]);
    let r = c.run_with(
        c.command()
            .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
            .env("CANARY_API_TOKENS", TOKEN),
    );
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("in use by another canary process"), "{r}");
    let r = c.run(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--db",
        &format!("sqlite://{}", dir.join("d.db").display()),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("without API tokens"), "{r}");
    let r = c.run_with(
        c.command()
            .args(["serve", "--db", "mysql://x"])
            .env("CANARY_API_TOKENS", TOKEN),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("expected sqlite://PATH or postgres://"),
        "{r}"
    );
    // One password for every registry is refused: requests choose the registry.
    let r = c.run_with(
        c.command()
            .args(["serve", "--db", &db])
            .env("CANARY_REGISTRY_USERNAME", "u")
            .env("CANARY_REGISTRY_PASSWORD", "p"),
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("per registry"), "{r}");
    // With an allow-list, other registries are not contacted at all.
    let s = Serve::start(
        &c,
        &format!("sqlite://{}", dir.join("e.db").display()),
        &["--allow-registry", "registry.internal:5000"],
    );
    let r = s.post("/v1/scans", &json!({"image": "127.0.0.1:1/x:1"}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("--allow-registry"), "{}", r.body);
}

#[test]
fn new_rules_make_old_verdicts_stale_and_layers_are_walked_again() {
    let reg = Registry::open();
    push(&reg, "team/clean", "1", &clean_image());
    let c = Canary::new();
    let db = format!("sqlite://{}", c.home.path().join("canary.db").display());
    let image = format!("{}/team/clean:1", reg.host);
    let mut s = Serve::start(&c, &db, &[]);
    let first = s.wait_scan(&s.scan(&image));
    let digest = first["manifest_digest"].as_str().unwrap().to_string();
    let verdict = format!("/v1/images/{digest}/verdict");
    assert_eq!(s.get(&verdict).json()["verdict"], "allow");
    s.kill();

    let rules = c.home.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("marker.yar"),
        r#"rule readme_marker {
  meta:
    id = "user/readme-marker"
    family = "test"
    severity = "high"
    description = "A marker only this test's images carry."
    positive = "nothing to see here"
    negative = "something to see"
  strings:
    $a = "nothing to see"
  condition:
    $a
}
"#,
    )
    .unwrap();
    let s = Serve::start(&c, &db, &["--rules", rules.to_str().unwrap()]);
    let stale = s.get(&verdict);
    assert_eq!(stale.status, 404, "{}", stale.body);
    assert!(stale.body.contains("current rules"), "{}", stale.body);
    let second = s.wait_scan(&s.scan(&image));
    assert_eq!(second["state"], "done", "{second}");
    // Nothing reused from the old rules' results.
    assert_eq!(second["result"]["layers_walked"], 2, "{second}");
    assert_eq!(second["result"]["layers_reused"], 0, "{second}");
    let v = s.get(&verdict).json();
    assert_eq!(v["verdict"], "deny", "{v}");
    assert_eq!(
        v["detail"]["summary"]["failing"][0]["rule_id"],
        "user/readme-marker"
    );
}
