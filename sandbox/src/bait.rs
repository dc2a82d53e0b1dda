//! Bait: canary credentials planted in each run (an AWS credentials file and env vars,
//! a Docker `config.json`, a kubeconfig, a Kubernetes service-account token), fresh
//! random values every run. Any of them in the run's network traffic is credential
//! theft, whatever the program looks like.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// One run's canary credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bait {
    pub aws_access_key_id: String,
    pub aws_secret_access_key: String,
    pub registry_password: String,
    pub kube_token: String,
}

fn random(n: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// `n` characters of `alphabet`, at random.
fn token(alphabet: &[u8], n: usize) -> std::io::Result<String> {
    Ok(random(n)?
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect())
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Bait {
    /// Fresh values, shaped like the real thing.
    pub fn new() -> std::io::Result<Bait> {
        Ok(Bait {
            aws_access_key_id: format!("AKIA{}", token(UPPER_DIGITS, 16)?),
            aws_secret_access_key: token(B64, 40)?,
            registry_password: format!("dckr_pat_{}", token(B64URL, 27)?),
            kube_token: format!(
                "eyJhbGciOiJSUzI1NiJ9.{}.{}",
                token(B64URL, 96)?,
                token(B64URL, 86)?
            ),
        })
    }

    /// The secret strings to look for in traffic, plain and base64-encoded as a stealer
    /// would send them (the whole credentials file too).
    pub fn needles(&self) -> Vec<String> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut v = vec![
            self.aws_access_key_id.clone(),
            self.aws_secret_access_key.clone(),
            self.registry_password.clone(),
            self.kube_token.clone(),
        ];
        let more: Vec<String> = v.iter().map(|s| b64(s)).collect();
        v.extend(more);
        // As JSON writes a `/` (`\/`) and as a URL or form encodes it (`%2F`, `%2B`).
        let secret = &self.aws_secret_access_key;
        v.push(secret.replace('/', "\\/"));
        v.push(
            secret
                .replace('%', "%25")
                .replace('/', "%2F")
                .replace('+', "%2B")
                .replace('=', "%3D"),
        );
        v.dedup();
        v.push(b64(&self.aws_credentials()));
        v.push(b64(&format!("canary:{}", self.registry_password)));
        v
    }

    /// Env vars a run gets unless the image sets them.
    pub fn env(&self) -> Vec<String> {
        vec![
            format!("AWS_ACCESS_KEY_ID={}", self.aws_access_key_id),
            format!("AWS_SECRET_ACCESS_KEY={}", self.aws_secret_access_key),
        ]
    }

    fn aws_credentials(&self) -> String {
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            self.aws_access_key_id, self.aws_secret_access_key
        )
    }

    /// Every path a bait file may be planted at, as the run sees it.
    pub fn planted_paths() -> [&'static str; 5] {
        [
            "/root/.aws/credentials",
            "/root/.docker/config.json",
            "/root/.kube/config",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "/run/secrets/kubernetes.io/serviceaccount/token",
        ]
    }

    /// Write the bait files into the overlay's upper directory, so the run sees them on
    /// top of the image. `lower` is the image's rootfs: a path it has as a symlink
    /// (`/var/run -> /run`) is followed rather than shadowed, and `/root` as a symlink
    /// gets no bait.
    pub(crate) fn plant(&self, upper: &Path, lower: &Path) -> Result<(), String> {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("canary:{}", self.registry_password));
        let docker =
            format!("{{\"auths\":{{\"https://index.docker.io/v1/\":{{\"auth\":\"{auth}\"}}}}}}\n");
        let kube = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://10.96.0.1:443\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: admin\ncurrent-context: prod\nusers:\n- name: admin\n  user:\n    token: {}\n",
            self.kube_token
        );
        let is_link = |rel: &str| {
            std::fs::symlink_metadata(lower.join(rel)).is_ok_and(|m| m.file_type().is_symlink())
        };
        let mut files = Vec::new();
        if !is_link("root") {
            files.push(("root/.aws/credentials", self.aws_credentials()));
            files.push(("root/.docker/config.json", docker));
            files.push(("root/.kube/config", kube));
        }
        let sa = if is_link("var/run") || is_link("var") {
            "run/secrets/kubernetes.io/serviceaccount/token"
        } else {
            "var/run/secrets/kubernetes.io/serviceaccount/token"
        };
        files.push((sa, self.kube_token.clone()));
        for (rel, content) in files {
            let path = upper.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("bait {rel}: {e}"))?;
            }
            std::fs::write(&path, content).map_err(|e| format!("bait {rel}: {e}"))?;
            // Times a minute in the past: the first read then moves the access time
            // past the modification time even when it comes within the same coarse
            // clock tick as the planting (file times tick every few milliseconds).
            let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| {
                    f.set_times(
                        std::fs::FileTimes::new()
                            .set_accessed(past)
                            .set_modified(past),
                    )
                })
                .map_err(|e| format!("bait {rel}: {e}"))?;
        }
        Ok(())
    }
}
