//! Checks the registry harness itself: each auth mode starts, accepts pushes
//! made with the fixtures and serves them back.

mod common;

use std::collections::BTreeMap;

use canary_analyzer::fixtures::{
    Auth, Compression, Image, ImageBuilder, Index, LayerBuilder, MediaTypes, index, push_image,
    push_index,
};
use common::registry::{Mode, Registry, SERVICE};

fn image(m: MediaTypes, arch: &str, variant: Option<&str>) -> Image {
    ImageBuilder::new()
        .media_types(m)
        .platform("linux", arch, variant)
        .layer(
            LayerBuilder::new()
                .dir("etc")
                .file("etc/os-release", format!("ID=fixture\nARCH={arch}\n"))
                .build(Compression::Gzip),
        )
        .layer(
            LayerBuilder::new()
                .file_mode("app/run", "#!/bin/sh\necho hi\n", 0o755)
                .build(Compression::Zstd),
        )
        .env("PATH=/usr/bin:/bin")
        .cmd(&["/app/run"])
        .build()
}

struct Pushed {
    oci: Image,
    docker: Image,
    oci_index: Index,
    docker_list: Index,
}

fn images() -> Pushed {
    Pushed {
        oci: image(MediaTypes::Oci, "amd64", None),
        docker: image(MediaTypes::Docker, "amd64", None),
        oci_index: index(
            vec![
                image(MediaTypes::Oci, "amd64", None),
                image(MediaTypes::Oci, "arm64", Some("v8")),
            ],
            MediaTypes::Oci,
        ),
        docker_list: index(
            vec![
                image(MediaTypes::Docker, "amd64", None),
                image(MediaTypes::Docker, "arm", Some("v7")),
            ],
            MediaTypes::Docker,
        ),
    }
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `Bearer realm="..",service="..",scope=".."` -> params.
fn challenge_params(header: &str) -> BTreeMap<String, String> {
    let rest = header.strip_prefix("Bearer ").expect("a Bearer challenge");
    let mut out = BTreeMap::new();
    for part in rest.split("\",") {
        if let Some((k, v)) = part.split_once('=') {
            out.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
        }
    }
    out
}

/// GET with `auth`; in token mode (auth None) goes through the 401 challenge
/// and the harness's token endpoint with the registry's credentials.
async fn get(reg: &Registry, path: &str, accept: &str) -> reqwest::Response {
    let c = client();
    let url = format!("{}{path}", reg.url);
    let req = c.get(&url).header("Accept", accept);
    match reg.mode() {
        Mode::Open => req.send().await.unwrap(),
        Mode::Basic => {
            let (u, p) = reg.credentials().unwrap();
            req.basic_auth(u, Some(p)).send().await.unwrap()
        }
        Mode::Token => {
            let first = c.get(&url).header("Accept", accept).send().await.unwrap();
            assert_eq!(first.status(), 401, "anonymous GET {path}");
            let ch = first.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            let params = challenge_params(&ch);
            assert_eq!(params["realm"], reg.token_url().unwrap());
            assert_eq!(params["service"], SERVICE);
            let (u, p) = reg.credentials().unwrap();
            let token_url = format!(
                "{}?service={}&scope={}",
                params["realm"],
                enc(&params["service"]),
                enc(&params["scope"])
            );
            let resp = c
                .get(token_url)
                .basic_auth(u, Some(p))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let tok: serde_json::Value =
                serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            let token = tok["token"].as_str().unwrap();
            assert_eq!(tok["access_token"], token);
            assert_eq!(tok["expires_in"], 300);
            req.bearer_auth(token).send().await.unwrap()
        }
    }
}

async fn check_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
    blob: &canary_analyzer::fixtures::Blob,
) {
    let resp = get(
        reg,
        &format!("/v2/{repo}/manifests/{reference}"),
        &blob.media_type,
    )
    .await;
    assert_eq!(resp.status(), 200, "GET {repo}:{reference}");
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        blob.media_type
    );
    assert_eq!(
        resp.headers()["docker-content-digest"].to_str().unwrap(),
        blob.digest
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());
}

fn auth_for(reg: &Registry, repo: &str) -> Option<Auth> {
    reg.push_auth_for(repo)
}

/// Pushes all fixtures and reads every manifest (and one layer) back.
async fn round_trip(reg: &Registry) {
    let p = images();
    let url = reg.url.as_str();
    push_image(
        url,
        "canary/oci",
        "v1",
        &p.oci,
        auth_for(reg, "canary/oci").as_ref(),
    )
    .await
    .unwrap();
    push_image(
        url,
        "canary/docker",
        "v1",
        &p.docker,
        auth_for(reg, "canary/docker").as_ref(),
    )
    .await
    .unwrap();
    let multi = auth_for(reg, "canary/multi");
    push_index(url, "canary/multi", "oci", &p.oci_index, multi.as_ref())
        .await
        .unwrap();
    push_index(
        url,
        "canary/multi",
        "docker",
        &p.docker_list,
        multi.as_ref(),
    )
    .await
    .unwrap();

    check_manifest(reg, "canary/oci", "v1", &p.oci.manifest).await;
    check_manifest(reg, "canary/docker", "v1", &p.docker.manifest).await;
    check_manifest(reg, "canary/multi", "oci", &p.oci_index.manifest).await;
    check_manifest(reg, "canary/multi", "docker", &p.docker_list.manifest).await;
    let arm = &p.oci_index.images[1];
    check_manifest(reg, "canary/multi", &arm.manifest.digest, &arm.manifest).await;

    let layer = &p.oci.layers[1];
    let resp = get(
        reg,
        &format!("/v2/canary/oci/blobs/{}", layer.digest),
        "*/*",
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), layer.bytes.as_slice());

    // In token mode every GET is tried anonymously first (401), then with a token.
    let per_get = if reg.mode() == Mode::Token { 2 } else { 1 };
    assert_eq!(
        reg.count_requests("\"GET /v2/canary/oci/manifests/v1 "),
        per_get,
        "{}",
        reg.log()
    );
    assert_eq!(reg.count_requests("\"GET /v2/canary/oci/blobs/"), per_get);
    assert_eq!(reg.count_requests("\"PUT /v2/canary/multi/manifests/"), 6);
    let log = reg.access_log();
    assert!(log.iter().any(|l| l.method == "PUT"
        && l.path == "/v2/canary/docker/manifests/v1"
        && l.status == 201));
}

#[tokio::test]
async fn open_registry() {
    let reg = Registry::open();
    assert!(reg.url.starts_with("http://127.0.0.1:"));
    assert_eq!(reg.url, format!("http://{}", reg.host));
    assert!(reg.push_auth().is_none());
    round_trip(&reg).await;
    assert_eq!(
        reg.count_requests("\"GET /v2/ "),
        0,
        "readiness probes are not counted"
    );
    assert!(reg.log().contains(&format!("listening on {}", reg.host)));
}

#[tokio::test]
async fn basic_auth_registry() {
    let reg = Registry::basic("alice", "s3cret pass");
    let c = client();
    let anon = c.get(format!("{}/v2/", reg.url)).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(
        anon.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let wrong = c
        .get(format!("{}/v2/", reg.url))
        .basic_auth("alice", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        reg.push_auth(),
        Some(Auth::Basic {
            user: "alice".into(),
            pass: "s3cret pass".into()
        })
    );
    // Pushing without credentials fails.
    let img = image(MediaTypes::Oci, "amd64", None);
    assert!(
        push_image(&reg.url, "canary/denied", "v1", &img, None)
            .await
            .is_err()
    );
    round_trip(&reg).await;
    let cfg: serde_json::Value = serde_json::from_str(&reg.docker_config_json()).unwrap();
    assert!(cfg["auths"][&reg.host]["auth"].is_string());
}

#[tokio::test]
async fn token_auth_registry() {
    let reg = Registry::token("bob", "hunter2");
    let c = client();
    let realm = reg.token_url().unwrap();
    let url = format!(
        "{realm}?service={SERVICE}&scope={}",
        enc("repository:canary/oci:pull")
    );

    // Anonymous and wrong credentials get nothing.
    let anon = c.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let wrong = c
        .get(&url)
        .basic_auth("bob", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(reg.token_requests(), 2);
    assert_eq!(reg.tokens_issued(), 0);

    // OAuth2-style form POST works too.
    let form = c
        .post(&realm)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=password&service={SERVICE}&scope=repository%3Acanary%2Foci%3Apull&username=bob&password=hunter2"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(&form.bytes().await.unwrap()).unwrap();
    assert!(v["access_token"].as_str().unwrap().split('.').count() == 3);

    // A token for another repository does not open this one.
    let other = reg.push_auth_for("somewhere/else");
    let img = image(MediaTypes::Oci, "amd64", None);
    assert!(
        push_image(&reg.url, "canary/oci", "v1", &img, other.as_ref())
            .await
            .is_err()
    );

    round_trip(&reg).await;
    // round_trip went through the endpoint once per GET (5 manifests + 1 blob).
    assert_eq!(reg.tokens_issued(), 1 + 6);
    assert_eq!(reg.token_requests(), 3 + 6);
}
