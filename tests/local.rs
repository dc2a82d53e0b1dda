//! `canary scan` end to end on local inputs: docker-archive (old and new `docker save`
//! formats), OCI layout directories and archives, multi-platform indexes, report formats,
//! policy and ignore files.

mod common;

use canary_analyzer::fixtures::{
    Compression, Image, ImageBuilder, LayerBuilder, MediaTypes, index,
};
use common::cli::{Canary, path_str, rule_ids};

/// An image with a secret in ENV, a credential file deleted by a later layer, one
/// replaced, one still visible, hard and symbolic links, and an opaque directory.
fn sample(mt: MediaTypes, c: Compression) -> Image {
    let base = LayerBuilder::new()
        .dir("etc")
        .file("etc/os-release", "ID=fixture\n")
        .file(
            "root/.aws/credentials",
            "[default]\naws_access_key_id=AKIAZ7QWERTYUIOPASDF\n",
        )
        .file(
            "home/app/.git-credentials",
            "https://bob:hunter22@git.example.org\n",
        )
        .file(
            "opt/old/.netrc",
            "machine git.corp.internal login bob password hunter22\n",
        )
        .symlink("etc/alias", "os-release")
        .hardlink("etc/os-release.hard", "etc/os-release")
        .build(c);
    let top = LayerBuilder::new()
        .whiteout("root/.aws/credentials")
        .file(
            "home/app/.git-credentials",
            "https://alice:other-secret@git.example.org\n",
        )
        .opaque("opt/old")
        .file("srv/.pgpass", "db:5432:*:app:pgsecret\n")
        .build(c);
    ImageBuilder::new()
        .media_types(mt)
        .layer(base)
        .layer(top)
        .env("PATH=/usr/bin")
        .env("DB_PASSWORD=s3cr3t-Pa55word")
        .user("app")
        .cmd(&["/bin/app"])
        .history("/bin/sh -c #(nop) ADD file:abc in /", false)
        .history("/bin/sh -c rm -rf /root/.aws", false)
        .build()
}

/// The sample image as an OCI layout under the test's home; returns the `oci:` target.
fn sample_layout(c: &Canary) -> String {
    let dir = c.home.path().join("img");
    sample(MediaTypes::Oci, Compression::Gzip)
        .write_oci_layout(&dir, "v1")
        .unwrap();
    format!("oci:{}", path_str(&dir))
}

fn visibility_of(report: &serde_json::Value, rule: &str, path: &str) -> Vec<String> {
    report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["location"]["path"] == path && f["rule_id"] == rule)
        .map(|f| f["location"]["visibility"].as_str().unwrap().to_string())
        .collect()
}

fn check_sample_report(r: &common::cli::Run) {
    assert_eq!(r.code, 1, "high findings fail the default policy\n{r}");
    let j = r.json();
    assert_eq!(j["schema_version"], "1.4");
    assert_eq!(j["coverage"]["complete"], true, "{r}");
    let ids = rule_ids(&j);
    assert!(
        ids.contains(&"config/env-credential".to_string()),
        "{ids:?}"
    );
    const FILE: &str = "file/credential-file";
    assert_eq!(
        visibility_of(&j, FILE, "/root/.aws/credentials"),
        ["deleted"]
    );
    let mut git = visibility_of(&j, FILE, "/home/app/.git-credentials");
    git.sort();
    assert_eq!(git, ["replaced", "visible"]);
    assert_eq!(visibility_of(&j, FILE, "/opt/old/.netrc"), ["deleted"]);
    assert_eq!(visibility_of(&j, FILE, "/srv/.pgpass"), ["visible"]);
    // The secret engine sees the same files' contents, with lines, and the same history.
    assert_eq!(
        visibility_of(&j, "secret/aws-access-key-id", "/root/.aws/credentials"),
        ["deleted"]
    );
    let mut git = visibility_of(&j, "secret/git-credentials", "/home/app/.git-credentials");
    git.sort();
    assert_eq!(git, ["replaced", "visible"]);
    assert_eq!(
        visibility_of(&j, "secret/netrc-password", "/opt/old/.netrc"),
        ["deleted"]
    );
    let aws = j["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "secret/aws-access-key-id")
        .unwrap();
    assert_eq!(aws["location"]["line"], 2);
    let layers = j["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert!(layers.iter().all(|l| l["complete"] == true));
    // Secrets are never printed whole.
    for secret in [
        "s3cr3t-Pa55word",
        "hunter22",
        "QWERTYUIOPASDF",
        "other-secret",
        "pgsecret",
    ] {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{secret} leaked\n{r}"
        );
    }
}

#[test]
fn docker_archive_old_format() {
    let c = Canary::new();
    let tar = c.home.path().join("old.tar");
    sample(MediaTypes::Docker, Compression::Gzip)
        .write_docker_archive(&tar, "fixture/app:1", false)
        .unwrap();
    let r = c.scan_json(&format!("docker-archive:{}", path_str(&tar)), &[]);
    check_sample_report(&r);
    // A bare .tar from docker save works the same.
    let bare = c.scan_json(path_str(&tar), &[]);
    check_sample_report(&bare);
}

#[test]
fn docker_archive_new_format() {
    let c = Canary::new();
    let tar = c.home.path().join("new.tar");
    sample(MediaTypes::Oci, Compression::None)
        .write_docker_archive(&tar, "fixture/app:1", true)
        .unwrap();
    check_sample_report(&c.scan_json(&format!("docker-archive:{}", path_str(&tar)), &[]));
    check_sample_report(&c.scan_json(path_str(&tar), &[]));
}

#[test]
fn oci_layout_and_archive_with_gzip_zstd_plain() {
    let c = Canary::new();
    for (i, comp) in [Compression::Gzip, Compression::Zstd, Compression::None]
        .into_iter()
        .enumerate()
    {
        let img = sample(MediaTypes::Oci, comp);
        let dir = c.home.path().join(format!("layout{i}"));
        img.write_oci_layout(&dir, "v1").unwrap();
        let r = c.scan_json(&format!("oci:{}", path_str(&dir)), &[]);
        check_sample_report(&r);
        let r = c.scan_json(&format!("oci:{}:v1", path_str(&dir)), &[]);
        check_sample_report(&r);
        let ar = c.home.path().join(format!("layout{i}.tar"));
        img.write_oci_archive(&ar, "v1").unwrap();
        check_sample_report(&c.scan_json(&format!("oci-archive:{}", path_str(&ar)), &[]));
    }
}

#[test]
fn multi_platform_index_picks_platform_or_all() {
    let c = Canary::new();
    let amd = ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("amd", "x")
                .build(Compression::Gzip),
        )
        .user("1000")
        .build();
    let arm = ImageBuilder::new()
        .platform("linux", "arm64", Some("v8"))
        .layer(
            LayerBuilder::new()
                .file("arm", "x")
                .build(Compression::Gzip),
        )
        .env("API_TOKEN=tok-3e8f1a9b2c")
        .user("1000")
        .build();
    let dir = c.home.path().join("multi");
    index(vec![amd, arm], MediaTypes::Oci)
        .write_oci_layout(&dir, "multi")
        .unwrap();
    let target = format!("oci:{}", path_str(&dir));

    let r = c.scan_json(&target, &[]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["images"][0]["platform"], "linux/amd64");

    let r = c.scan_json(&target, &["--platform", "linux/arm64"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(r.json()["images"][0]["platform"], "linux/arm64/v8");

    let r = c.scan_json(&target, &["--all-platforms"]);
    let j = r.json();
    assert_eq!(j["images"].as_array().unwrap().len(), 2, "{r}");

    let r = c.scan_json(&target, &["--platform", "linux/s390x"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("no image for platform linux/s390x"),
        "{r}"
    );
}

#[test]
fn fail_on_and_ignore_file() {
    let c = Canary::new();
    let target = sample_layout(&c);

    // An image whose worst finding is high: --fail-on critical passes it, the default fails it.
    let high_only = c.home.path().join("high-only");
    ImageBuilder::new()
        .layer(
            LayerBuilder::new()
                .file("etc/motd", "hi")
                .build(Compression::Gzip),
        )
        .env("DB_PASSWORD=s3cr3t-Pa55word")
        .user("app")
        .build()
        .write_oci_layout(&high_only, "v1")
        .unwrap();
    let high_only = format!("oci:{}", path_str(&high_only));
    let r = c.scan_json(&high_only, &["--fail-on", "critical"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["policy"]["passed"], true);
    assert_eq!(c.scan_json(&high_only, &[]).code, 1);
    // The sample image has critical secrets.
    assert_eq!(c.scan_json(&target, &["--fail-on", "critical"]).code, 1);

    // Waive every high finding: by rule, by path glob, and by fingerprint.
    let j = c.scan_json(&target, &[]).json();
    let env_fp = j["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "config/env-credential")
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let ignore = c.home.path().join("ignore.toml");
    std::fs::write(
        &ignore,
        format!(
            "[[ignore]]\nfingerprint = \"{env_fp}\"\nreason = \"test credential, rotated\"\n\n\
             [[ignore]]\npath = \"/{{home,srv,root,opt}}/**\"\nreason = \"fixture files\"\n"
        ),
    )
    .unwrap();
    let r = c.scan_json(&target, &["--ignore-file", path_str(&ignore)]);
    assert_eq!(r.code, 0, "{r}");
    let j = r.json();
    assert_eq!(j["summary"]["high"], 0, "{r}");
    assert_eq!(j["summary"]["critical"], 0, "{r}");
    let sup = j["images"][0]["suppressed"].as_array().unwrap();
    assert!(
        sup.iter()
            .any(|s| s["reason"] == "test credential, rotated")
    );

    // A typo in the ignore file is an error naming the file and the key.
    std::fs::write(&ignore, "[[ignore]]\nrule = \"x/y\"\nreasn = \"typo\"\n").unwrap();
    let r = c.scan_json(&target, &["--ignore-file", path_str(&ignore)]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("ignore.toml") && r.stderr.contains("reasn"),
        "{r}"
    );
}

#[test]
fn table_and_output_file() {
    let c = Canary::new();
    let target = sample_layout(&c);
    let r = c.run(&["scan", "--format", "table", &target]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("config/env-credential"), "{r}");
    assert!(r.stdout.contains("(deleted in a later layer)"), "{r}");
    assert!(r.stdout.contains("FAILED"), "{r}");
    assert!(!r.stdout.contains("\x1b["), "no colour off a terminal");

    let out = c.home.path().join("report.sarif");
    let r = c.run(&["scan", &target, "--output", path_str(&out)]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.is_empty());
    let sarif: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        sarif["version"], "2.1.0",
        "format inferred from the .sarif extension"
    );
}

/// The SARIF report validates against the official SARIF 2.1.0 schema and carries what
/// GitHub code scanning requires.
#[test]
fn sarif_matches_schema_and_github_requirements() {
    let schema_path = std::env::var("CANARY_SARIF_SCHEMA")
        .expect("CANARY_SARIF_SCHEMA is not set: run the tests with scripts/test.sh, which fetches the SARIF 2.1.0 schema");
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");

    let c = Canary::new();
    let r = c.run(&["scan", "--format", "sarif", &sample_layout(&c)]);
    assert_eq!(r.code, 1, "{r}");
    let sarif: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "SARIF schema violations: {errors:#?}");
    // The check has teeth: a result without a message is rejected.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    assert!(
        !validator.is_valid(&broken),
        "the schema check must reject a result without a message"
    );

    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for res in results {
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], res["ruleId"]);
        let loc = &res["locations"][0]["physicalLocation"];
        assert!(
            loc["artifactLocation"]["uri"]
                .as_str()
                .is_some_and(|u| !u.is_empty() && !u.starts_with('/'))
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(
            res["partialFingerprints"]
                .as_object()
                .is_some_and(|m| !m.is_empty())
        );
    }
    for rule in rules {
        let s: f64 = rule["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&s));
    }
}

/// GNU long names and PAX path headers both reach the detectors with the full path.
#[test]
fn long_names_gnu_and_pax() {
    let c = Canary::new();
    let deep = format!(
        "home/{}/.git-credentials",
        "very-long-directory-name/".repeat(8).trim_end_matches('/')
    );
    assert!(deep.len() > 200);
    for pax in [false, true] {
        let layer = LayerBuilder::new()
            .long_names_pax(pax)
            .file(&deep, "https://u:p4ssw0rd-long@git.example\n")
            .symlink(&format!("{deep}.link"), &format!("/{deep}"))
            .build(Compression::Gzip);
        let img = ImageBuilder::new().layer(layer).user("1000").build();
        let dir = c.home.path().join(format!("long-{pax}"));
        img.write_oci_layout(&dir, "v1").unwrap();
        let r = c.scan_json(&format!("oci:{}", path_str(&dir)), &[]);
        assert_eq!(r.code, 1, "{r}");
        let j = r.json();
        assert_eq!(
            j["images"][0]["findings"][0]["location"]["path"],
            format!("/{deep}"),
            "pax={pax}\n{r}"
        );
        assert_eq!(j["images"][0]["layers"][0]["entries"], 2);
    }
}

#[test]
fn rules_list_and_explain() {
    let c = Canary::new();
    let r = c.run(&["rules", "list", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert!(list.len() >= 50, "{}", list.len());
    let mut ids: Vec<&str> = list.iter().map(|v| v["id"].as_str().unwrap()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "rule ids are unique");
    let r = c.run(&["rules", "explain", "secret/github-token"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("CRC32") && r.stdout.contains("check: github-crc32"),
        "{r}"
    );
    let r = c.run(&["rules", "explain", "secret/nope"]);
    assert_eq!(r.code, 2, "{r}");
}

/// `--rules DIR`: a user's YARA rule, secret rule, pool name and IOC hash all fire in a
/// scan; `rules check` runs their examples; a broken directory fails before any work.
#[test]
fn user_rules_directory() {
    let c = Canary::new();
    let dir = c.home.path().join("my-rules");
    std::fs::create_dir_all(&dir).unwrap();
    let dropper = b"\x7fELF\x02\x01\x01\0 acme dropper build 7".to_vec();
    let digest = {
        use sha2::Digest;
        canary_analyzer::hex(&sha2::Sha256::digest(&dropper))
    };
    std::fs::write(
        dir.join("acme.yar"),
        r#"
private rule is_elf { condition: uint32(0) == 0x464c457f }
rule acme_loader {
  meta:
    id = "user/acme-loader"
    family = "acme"
    severity = "high"
    description = "The ACME loader our incident team found."
    positive = "\x7fELF acme-loader-v2"
    negative = "acme-loader-v2 in a text file"
  strings:
    $a = "acme-loader-v2"
  condition:
    is_elf and $a
}
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("acme.toml"),
        r#"[[rule]]
id = "secret/acme-api-key"
title = "ACME API key"
severity = "critical"
description = "An ACME internal API key."
help = "Rotate it in the ACME console."
regex = '''\b(acmek_[a-z0-9]{24})\b'''
group = 1
entropy = 3.5
reveal = 6
positive = ["ACME_KEY=acmek_q8w7e6r5t4y3u2i1o0p9a8s7"]
negative = ["ACME_KEY=acmek_aaaaaaaaaaaaaaaaaaaaaaaa", "acmek_short"]
"#,
    )
    .unwrap();
    std::fs::write(dir.join("mining-pools.txt"), "pool.acme-mining.test\n").unwrap();
    std::fs::write(
        dir.join("ioc-sha256.txt"),
        format!("{digest} acme-dropper incident 2026-11\n"),
    )
    .unwrap();

    let r = c.run(&["rules", "check", path_str(&dir)]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains(
            "1 YARA rules, 1 secret rules, 1 pool names, 1 IOC hashes; 0 example failures"
        ),
        "{r}"
    );

    let layer = LayerBuilder::new()
        .file("usr/local/bin/helper", &dropper)
        .file(
            "usr/local/bin/loader",
            b"\x7fELF\x02\x01\x01\0 acme-loader-v2 \0",
        )
        .file("srv/app/.env", "ACME_KEY=acmek_z9x8c7v6b5n4m3l2k1j0h9g8\n")
        .file("srv/app/miner.conf", "url = pool.acme-mining.test:3333\n")
        .build(Compression::Gzip);
    let archive = c.home.path().join("img.tar");
    ImageBuilder::new()
        .layer(layer)
        .build()
        .write_docker_archive(&archive, "acme:1", true)
        .unwrap();
    let target = format!("docker-archive:{}", path_str(&archive));
    let plain = c.scan_json(&target, &[]);
    let ids = rule_ids(&plain.json());
    assert!(!ids.iter().any(|i| i.contains("acme")), "{ids:?}");
    let r = c.scan_json(&target, &["--rules", path_str(&dir)]);
    let report = r.json();
    let ids = rule_ids(&report);
    for want in [
        "user/acme-loader",
        "secret/acme-api-key",
        "miner/pool-host",
        "miner/known-bad-sha256",
    ] {
        assert!(
            ids.iter().any(|i| i == want),
            "{want} missing: {ids:?}\n{r}"
        );
    }
    assert_ne!(
        report["rules_digest"],
        plain.json()["rules_digest"],
        "the digest names the user rules too"
    );
    assert!(
        !r.stdout.contains("acmek_z9x8c7v6b5n4m3l2k1j0h9g8"),
        "redacted"
    );
    // SARIF knows the user rules' metadata.
    let r = c.run(&["scan", &target, "--rules", path_str(&dir), "-f", "sarif"]);
    assert!(
        r.stdout
            .contains("The ACME loader our incident team found."),
        "{r}"
    );
    let r = c.run(&[
        "rules",
        "explain",
        "user/acme-loader",
        "--rules",
        path_str(&dir),
    ]);
    assert_eq!(r.code, 0, "{r}");

    // A failing example is exit 1; a rule that does not compile is exit 2 with its file.
    std::fs::write(
        dir.join("acme.toml"),
        std::fs::read_to_string(dir.join("acme.toml"))
            .unwrap()
            .replace("acmek_short", "ACME_KEY=acmek_q8w7e6r5t4y3u2i1o0p9a8s7"),
    )
    .unwrap();
    let r = c.run(&["rules", "check", path_str(&dir)]);
    assert_eq!(r.code, 1, "{r}");
    assert!(
        r.stdout
            .contains("FAIL secret/acme-api-key: fired on negative"),
        "{r}"
    );
    std::fs::write(dir.join("broken.yar"), "rule x { condition: nope }").unwrap();
    let r = c.run(&["rules", "check", path_str(&dir)]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("broken.yar"), "{r}");
    let r = c.scan_json(&target, &["--rules", path_str(&dir)]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("--rules") && r.stderr.contains("broken.yar"),
        "{r}"
    );
}
