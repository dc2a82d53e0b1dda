//! `canary scan` against a real Distribution registry (Debian's docker-registry): open,
//! htpasswd basic auth, and token auth with the harness's token service. Also checks an
//! image pulled by skopeo into a docker-archive scans the same as from the registry.

mod common;

use std::io::Write;
use std::process::Stdio;

use canary_analyzer::fixtures::{
    Compression, Image, ImageBuilder, LayerBuilder, MediaTypes, index, push_image, push_index,
};
use common::cli::{Canary, Run, path_str, rule_ids};
use common::registry::Registry;

fn image(mt: MediaTypes, arch: &str, variant: Option<&str>) -> Image {
    ImageBuilder::new()
        .media_types(mt)
        .platform("linux", arch, variant)
        .layer(
            LayerBuilder::new()
                .file("etc/os-release", format!("ID=fixture\nARCH={arch}\n"))
                .file(
                    "root/.git-credentials",
                    "https://ci:glpat-s3cretvalue1234567890@gitlab.example\n",
                )
                .build(Compression::Gzip),
        )
        // skopeo refuses zstd layers under Docker media types (no such type in Docker's spec).
        .layer(
            LayerBuilder::new()
                .whiteout("root/.git-credentials")
                .file("app/run", "run")
                .build(match mt {
                    MediaTypes::Docker => Compression::Gzip,
                    MediaTypes::Oci => Compression::Zstd,
                }),
        )
        .env("REDIS_PASSWORD=r3dis-s3cret-value")
        .user("1000")
        .build()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn push(reg: &Registry, repo: &str, tag: &str, img: &Image) {
    let auth = reg.push_auth_for(repo);
    rt().block_on(push_image(&reg.url, repo, tag, img, auth.as_ref()))
        .unwrap();
}

/// `canary scan --format json TARGET` with credentials from the environment.
fn scan_with_env_credentials(c: &Canary, target: &str, user: &str, pass: &str) -> Run {
    c.run_with(
        c.command()
            .args(["scan", "--format", "json", target])
            .env("CANARY_REGISTRY_USERNAME", user)
            .env("CANARY_REGISTRY_PASSWORD", pass),
    )
}

fn check_found(r: &Run) {
    assert_eq!(r.code, 1, "{r}");
    let j = r.json();
    assert_eq!(j["coverage"]["complete"], true, "{r}");
    let ids = rule_ids(&j);
    assert!(ids.contains(&"config/env-credential".into()), "{ids:?}");
    let f = j["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "file/credential-file")
        .unwrap_or_else(|| panic!("no credential file finding\n{r}"));
    assert_eq!(f["location"]["visibility"], "deleted");
    assert!(!r.stdout.contains("s3cretvalue") && !r.stdout.contains("r3dis-s3cret"));
}

#[test]
fn open_registry_by_tag_digest_and_platform_with_cache() {
    let reg = Registry::open();
    let c = Canary::new();
    let img = image(MediaTypes::Docker, "amd64", None);
    push(&reg, "team/app", "v1", &img);
    let target = format!("{}/team/app:v1", reg.host);

    let r = c.scan_json(&target, &[]);
    check_found(&r);
    let j = r.json();
    assert_eq!(
        j["images"][0]["manifest_digest"],
        img.manifest.digest.as_str()
    );
    assert_eq!(
        j["fetch"]["blobs_downloaded"], 3,
        "config and two layers\n{r}"
    );
    let blob_gets = reg.count_requests("\"GET /v2/team/app/blobs/");
    assert_eq!(blob_gets, 3);

    // Re-scan: everything comes from the cache; the registry sees no blob request.
    let r = c.scan_json(&target, &[]);
    check_found(&r);
    assert_eq!(r.json()["fetch"]["blobs_downloaded"], 0, "{r}");
    assert_eq!(r.json()["fetch"]["blobs_cached"], 3, "{r}");
    assert_eq!(
        reg.count_requests("\"GET /v2/team/app/blobs/"),
        blob_gets,
        "no blob downloaded again"
    );

    // By digest, and the HEAD resolver agrees.
    let r = c.scan_json(
        &format!("{}/team/app@{}", reg.host, img.manifest.digest),
        &[],
    );
    check_found(&r);
    let r = c.run(&["resolve", &target]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.stdout.trim(), img.manifest.digest);
    assert!(reg.count_requests("\"HEAD /v2/team/app/manifests/v1") >= 1);

    // A multi-platform index (OCI) and manifest list (Docker).
    for (mt, repo) in [
        (MediaTypes::Oci, "multi/oci"),
        (MediaTypes::Docker, "multi/docker"),
    ] {
        let idx = index(
            vec![image(mt, "amd64", None), image(mt, "arm64", Some("v8"))],
            mt,
        );
        let auth = reg.push_auth_for(repo);
        rt().block_on(push_index(&reg.url, repo, "v1", &idx, auth.as_ref()))
            .unwrap();
        let t = format!("{}/{repo}:v1", reg.host);
        let r = c.scan_json(&t, &["--platform", "linux/arm64"]);
        check_found(&r);
        let j = r.json();
        assert_eq!(j["images"][0]["platform"], "linux/arm64/v8");
        assert_eq!(
            j["images"][0]["manifest_digest"],
            idx.images[1].manifest.digest.as_str()
        );
        assert_eq!(j["images"][0]["index_digest"], idx.manifest.digest.as_str());
        let r = c.scan_json(&t, &["--all-platforms"]);
        assert_eq!(r.json()["images"].as_array().unwrap().len(), 2, "{r}");
    }

    // Errors name the URL and what the registry said.
    let r = c.scan_json(&format!("{}/team/app:nope", reg.host), &[]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("HTTP 404") && r.stderr.contains("MANIFEST_UNKNOWN"),
        "{r}"
    );

    // cache prune empties the cache, and the next scan downloads again.
    let r = c.run(&["cache", "prune", "--max-size", "0"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("cache now holds 0 bytes"), "{r}");
    let r = c.scan_json(&target, &[]);
    assert_eq!(r.json()["fetch"]["blobs_downloaded"], 3, "{r}");
}

#[test]
fn basic_auth_registry() {
    let reg = Registry::basic("alice", "wonderland-9");
    let img = image(MediaTypes::Oci, "amd64", None);
    push(&reg, "private/app", "v1", &img);
    let target = format!("{}/private/app:v1", reg.host);

    let c = Canary::new();
    let r = c.scan_json(&target, &[]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("requires credentials"), "{r}");

    // --username + --password-stdin.
    let mut cmd = c.command();
    cmd.args([
        "scan",
        "--format",
        "json",
        &target,
        "--username",
        "alice",
        "--password-stdin",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"wonderland-9\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    check_found(&r);

    // Environment variables.
    let r = scan_with_env_credentials(&c, &target, "alice", "wonderland-9");
    check_found(&r);

    // Wrong password: 401, said as such.
    let r = scan_with_env_credentials(&c, &target, "alice", "wrong");
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("credentials rejected"), "{r}");
    assert!(
        !r.stderr.contains("wrong"),
        "the password is not echoed\n{r}"
    );

    // ~/.docker/config.json auths (via DOCKER_CONFIG), in a fresh cache.
    let c2 = Canary::new();
    let dir = reg.write_docker_config();
    let r = c2.run_with(
        c2.command()
            .args(["scan", "--format", "json", &target])
            .env("DOCKER_CONFIG", &dir),
    );
    check_found(&r);
}

#[test]
fn token_auth_registry() {
    let reg = Registry::token("bob", "builder-77");
    let img = image(MediaTypes::Oci, "amd64", None);
    push(&reg, "secure/app", "v1", &img);
    let target = format!("{}/secure/app:v1", reg.host);
    let c = Canary::new();

    // Anonymous: the token service refuses.
    let r = c.scan_json(&target, &[]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("authentication to") && r.stderr.contains("no credentials configured"),
        "{r}"
    );

    let before = reg.token_requests();
    let r = scan_with_env_credentials(&c, &target, "bob", "builder-77");
    check_found(&r);
    let tokens = reg.token_requests() - before;
    assert!(
        tokens >= 1,
        "the Bearer challenge flow went through the token service"
    );
    assert!(
        tokens <= 2,
        "one token is reused for the whole pull (got {tokens} token requests)"
    );

    let r = scan_with_env_credentials(&c, &target, "bob", "nope");
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("authentication to"), "{r}");

    // `docker login`'s file in its default place, ~/.docker/config.json, with a fresh cache.
    let c2 = Canary::new();
    let docker_dir = c2.home.path().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    std::fs::write(docker_dir.join("config.json"), reg.docker_config_json()).unwrap();
    check_found(&c2.scan_json(&target, &[]));
}

/// skopeo (the reference client) copies the image to a docker-archive; canary finds the
/// same things in it as in the registry.
#[test]
fn skopeo_docker_archive_matches_registry_scan() {
    let reg = Registry::open();
    let img = image(MediaTypes::Docker, "amd64", None);
    push(&reg, "cross/app", "v1", &img);
    let c = Canary::new();
    let tar = c.home.path().join("skopeo.tar");
    let out = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/cross/app:v1", reg.host),
            &format!("docker-archive:{}:cross/app:v1", path_str(&tar)),
        ])
        .output()
        .expect("skopeo is installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "skopeo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let from_registry = c.scan_json(&format!("{}/cross/app:v1", reg.host), &[]);
    let from_archive = c.scan_json(&format!("docker-archive:{}", path_str(&tar)), &[]);
    check_found(&from_archive);
    let key = |r: &Run| {
        let mut v: Vec<String> = r.json()["images"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {} {}",
                    f["rule_id"], f["fingerprint"], f["location"]["visibility"]
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&from_registry), key(&from_archive));
}
