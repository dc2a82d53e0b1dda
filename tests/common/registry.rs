//! A real registry for integration tests: Debian's Distribution 2.8
//! (`/usr/bin/docker-registry`) on a free loopback port, with its storage,
//! config and log in a temporary directory, in one of three auth modes:
//!
//! * [`Registry::open`]: no auth;
//! * [`Registry::basic`]: htpasswd (bcrypt) auth;
//! * [`Registry::token`]: token auth, with the token endpoint served by this
//!   harness on another loopback port (HTTP Basic credentials required,
//!   RS256 JWTs signed with a key and self-signed cert made by `openssl`).
//!
//! The registry process is killed when the [`Registry`] is dropped (also when
//! the test panics); a small watchdog shell process also kills it if the test
//! process dies without dropping it (a `static`, an abort, a SIGKILL).
//!
//! Access-log lines are Apache combined format, one per request, e.g.
//! `127.0.0.1 - - [22/Nov/2026:04:13:30 +0000] "GET /v2/foo/manifests/latest HTTP/1.1" 200 525 "" "canary/0.1"`;
//! [`Registry::count_requests`] and [`Registry::access_log`] read them.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use canary_analyzer::fixtures::Auth;

/// The registry binary (Debian package `docker-registry`).
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// `service` of the token-auth registry (the JWT `aud`).
pub const SERVICE: &str = "canary-test";
/// `issuer` of the token-auth registry (the JWT `iss`).
pub const ISSUER: &str = "canary-test-issuer";
/// User-Agent of the harness's own readiness probes; their access-log lines
/// are left out of [`Registry::count_requests`] and [`Registry::access_log`].
pub const HARNESS_AGENT: &str = "canary-test-harness";
/// Lifetime of issued tokens, seconds.
pub const TOKEN_TTL: u64 = 300;

const MISSING: &str = "run the README test command (bash scripts/test.sh), which installs the test tools \
     (Debian packages docker-registry, apache2-utils and openssl)";

/// Authentication mode of a [`Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Open,
    Basic,
    Token,
}

/// One access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    pub method: String,
    /// Request target, query included.
    pub path: String,
    pub status: u16,
    pub bytes: u64,
    pub user_agent: String,
    /// The whole line.
    pub raw: String,
}

/// A running registry; killed on drop.
pub struct Registry {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `127.0.0.1:PORT`
    pub host: String,
    mode: Mode,
    creds: Option<(String, String)>,
    log_path: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
    token: Option<TokenServer>,
    signer: Option<Arc<Signer>>,
    // Last field: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl Registry {
    /// A registry without authentication.
    pub fn open() -> Registry {
        Registry::start(Mode::Open, None)
    }

    /// A registry with htpasswd auth accepting only `user`/`pass`.
    pub fn basic(user: &str, pass: &str) -> Registry {
        Registry::start(Mode::Basic, Some((user.to_owned(), pass.to_owned())))
    }

    /// A registry with token auth; the harness's token endpoint issues tokens
    /// to `user`/`pass` (HTTP Basic) and refuses anonymous requests.
    pub fn token(user: &str, pass: &str) -> Registry {
        Registry::start(Mode::Token, Some((user.to_owned(), pass.to_owned())))
    }

    /// A registry without authentication that sends its event notifications
    /// (Distribution's `notifications` endpoint) to `url`, with
    /// `Authorization: Bearer TOKEN`.
    pub fn open_notifying(url: &str, token: &str) -> Registry {
        let yaml = format!(
            "notifications:\n  endpoints:\n    - name: canary\n      url: \"{url}\"\n      \
             headers:\n        Authorization: [\"Bearer {token}\"]\n      timeout: 2s\n      \
             threshold: 3\n      backoff: 500ms\n"
        );
        Registry::start_with(Mode::Open, None, &yaml)
    }

    fn start(mode: Mode, creds: Option<(String, String)>) -> Registry {
        Registry::start_with(mode, creds, "")
    }

    fn start_with(mode: Mode, creds: Option<(String, String)>, extra_yaml: &str) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: {MISSING}"
        );
        let dir = tempfile::Builder::new()
            .prefix("canary-registry-")
            .tempdir()
            .expect("creating the registry temp dir");
        let d = dir.path();
        fs::create_dir_all(d.join("storage")).expect("creating storage dir");

        let (auth_yaml, token, signer) = match (&mode, &creds) {
            (Mode::Open, _) => (String::new(), None, None),
            (Mode::Basic, Some((user, pass))) => {
                let line = htpasswd_line(user, pass);
                let path = d.join("htpasswd");
                fs::write(&path, line).expect("writing htpasswd");
                let yaml = format!(
                    "auth:\n  htpasswd:\n    realm: canary-test\n    path: \"{}\"\n",
                    path.display()
                );
                (yaml, None, None)
            }
            (Mode::Token, Some((user, pass))) => {
                let signer = Arc::new(Signer::new(d, user, pass));
                let server = TokenServer::start(signer.clone());
                let yaml = format!(
                    "auth:\n  token:\n    realm: \"{}\"\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: \"{}\"\n",
                    server.realm(),
                    signer.cert_path.display()
                );
                (yaml, Some(server), Some(signer))
            }
            _ => unreachable!("auth modes need credentials"),
        };

        let log_path = d.join("registry.log");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: \"{storage}\"\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: {host}\n  secret: {secret}\n\
                 {auth_yaml}{extra_yaml}",
                storage = d.join("storage").display(),
                secret = random_hex(),
            );
            let config_path = d.join("config.yml");
            fs::write(&config_path, config).expect("writing registry config");
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("opening registry log");
            let log_err = log.try_clone().expect("cloning log handle");
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .current_dir(d)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {REGISTRY_BIN}: {e}; {MISSING}"));
            match wait_ready(&host, &mut child) {
                Ok(()) => {
                    let watchdog = spawn_watchdog(child.id());
                    return Registry {
                        url: format!("http://{host}"),
                        host,
                        mode,
                        creds,
                        log_path,
                        child: Some(child),
                        watchdog,
                        token,
                        signer,
                        dir,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = fs::read_to_string(&log_path).unwrap_or_default();
                    if !last_log.contains("address already in use") {
                        panic!("registry did not start: {why}\n--- log ---\n{last_log}");
                    }
                }
            }
        }
        panic!("registry did not start (ports busy)\n--- log ---\n{last_log}");
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `(user, pass)` in basic and token modes.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The temp dir holding config, storage, log and (token mode) key and cert.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Auth for pushing: `None` (open) or Basic. Panics in token mode, where
    /// tokens are per repository: use [`push_auth_for`](Self::push_auth_for).
    pub fn push_auth(&self) -> Option<Auth> {
        match self.mode {
            Mode::Open => None,
            Mode::Basic => self.basic_auth(),
            Mode::Token => panic!("token-auth registry: use push_auth_for(repo)"),
        }
    }

    /// Auth for pushing to `repo`: in token mode a Bearer token with
    /// `repository:<repo>:pull,push`, minted directly (not counted in
    /// [`token_requests`](Self::token_requests)); else as [`push_auth`](Self::push_auth).
    pub fn push_auth_for(&self, repo: &str) -> Option<Auth> {
        match self.mode {
            Mode::Token => Some(Auth::Bearer(
                self.token_for(&[&format!("repository:{repo}:pull,push")]),
            )),
            _ => self.push_auth(),
        }
    }

    /// Auth for pulling from `repo` (token mode: `repository:<repo>:pull`).
    pub fn pull_auth_for(&self, repo: &str) -> Option<Auth> {
        match self.mode {
            Mode::Token => Some(Auth::Bearer(
                self.token_for(&[&format!("repository:{repo}:pull")]),
            )),
            _ => self.push_auth(),
        }
    }

    fn basic_auth(&self) -> Option<Auth> {
        self.creds.as_ref().map(|(user, pass)| Auth::Basic {
            user: user.clone(),
            pass: pass.clone(),
        })
    }

    /// A signed token granting `scopes` (each `type:name:action[,action]`).
    /// Panics unless in token mode.
    pub fn token_for(&self, scopes: &[&str]) -> String {
        let signer = self
            .signer
            .as_ref()
            .expect("token_for needs a token-auth registry");
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        signer.mint(&scopes, &signer.user).expect("signing a token")
    }

    /// Token endpoint URL (token mode).
    pub fn token_url(&self) -> Option<String> {
        self.token.as_ref().map(|t| t.realm())
    }

    /// HTTP requests the token endpoint received (any outcome, including 401s).
    pub fn token_requests(&self) -> usize {
        self.token
            .as_ref()
            .map_or(0, |t| t.requests.load(Ordering::SeqCst))
    }

    /// Tokens the token endpoint issued over HTTP.
    pub fn tokens_issued(&self) -> usize {
        self.token
            .as_ref()
            .map_or(0, |t| t.issued.load(Ordering::SeqCst))
    }

    /// A Docker `config.json` with this registry's credentials
    /// (`{"auths":{}}` for an open registry).
    pub fn docker_config_json(&self) -> String {
        let mut auths = serde_json::Map::new();
        if let Some((user, pass)) = &self.creds {
            auths.insert(
                self.host.clone(),
                serde_json::json!({"auth": STANDARD.encode(format!("{user}:{pass}"))}),
            );
        }
        serde_json::json!({ "auths": auths }).to_string()
    }

    /// Writes [`docker_config_json`](Self::docker_config_json) to
    /// `<dir>/docker/config.json`; returns the directory (for `DOCKER_CONFIG`).
    pub fn write_docker_config(&self) -> PathBuf {
        let d = self.dir.path().join("docker");
        fs::create_dir_all(&d).expect("creating docker config dir");
        fs::write(d.join("config.json"), self.docker_config_json()).expect("writing docker config");
        d
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the registry printed so far (app log and access log).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// Waits until the log stopped growing (the access-log line of a request
    /// can be written just after its response reached the client).
    fn settle(&self) {
        let size = || fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut last = size();
        loop {
            thread::sleep(Duration::from_millis(60));
            let now = size();
            if now == last || Instant::now() > deadline {
                return;
            }
            last = now;
        }
    }

    /// Access-log lines (without the harness's own probes), after the log settled.
    pub fn access_log(&self) -> Vec<AccessLine> {
        self.settle();
        self.log()
            .lines()
            .filter_map(parse_access_line)
            .filter(|l| l.user_agent != HARNESS_AGENT)
            .collect()
    }

    /// Number of access-log lines containing `needle`, e.g.
    /// `"GET /v2/<repo>/blobs/` (quote included to anchor on the request
    /// line), after the log settled. Harness probes are not counted.
    pub fn count_requests(&self, needle: &str) -> usize {
        self.access_log()
            .iter()
            .filter(|l| l.raw.contains(needle))
            .count()
    }
}

impl Registry {
    /// Kill the registry process now (a registry that is down); its files stay.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(t) = self.token.take() {
            t.stop();
        }
    }
}

/// Parses `IP - USER [DATE] "METHOD PATH PROTO" STATUS BYTES "REFERER" "UA"`.
fn parse_access_line(line: &str) -> Option<AccessLine> {
    if line.starts_with("time=") {
        return None;
    }
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once('"')?;
    let mut req = request.split(' ');
    let method = req.next()?.to_owned();
    let path = req.next()?.to_owned();
    let mut nums = rest.trim_start().splitn(3, ' ');
    let status = nums.next()?.parse().ok()?;
    let bytes = nums.next()?.parse().unwrap_or(0);
    let tail = nums.next().unwrap_or("");
    // "referer" "user agent"
    let quoted: Vec<&str> = tail.split('"').collect();
    let user_agent = quoted.get(3).copied().unwrap_or("").to_owned();
    Some(AccessLine {
        method,
        path,
        status,
        bytes,
        user_agent,
        raw: line.to_owned(),
    })
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    l.local_addr().expect("local addr").port()
}

fn random_hex() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{:x}{:x}{:x}", nanos, std::process::id(), n)
}

fn htpasswd_line(user: &str, pass: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, pass])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running htpasswd: {e}; {MISSING}"));
    assert!(
        out.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned() + "\n"
}

/// Polls `GET /v2/` until the registry answers (any HTTP status).
fn wait_ready(host: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("registry exited: {status}"));
        }
        if let Ok(mut s) = TcpStream::connect(host) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = format!(
                "GET /v2/ HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {HARNESS_AGENT}\r\nConnection: close\r\n\r\n"
            );
            let mut resp = Vec::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_end(&mut resp).is_ok()
                && resp.starts_with(b"HTTP/1.1 ")
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("no answer to GET /v2/ within 20 s".into());
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Kills the registry if this test process goes away without dropping it.
fn spawn_watchdog(registry_pid: u32) -> Option<Child> {
    let script = "while kill -0 \"$1\" 2>/dev/null && kill -0 \"$2\" 2>/dev/null; do sleep 1; done; kill \"$2\" 2>/dev/null";
    Command::new("/bin/sh")
        .args(["-c", script, "canary-registry-watchdog"])
        .arg(std::process::id().to_string())
        .arg(registry_pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

// ---------------------------------------------------------------------------
// token auth

/// RSA key + self-signed cert (made by `openssl`) that sign JWTs.
struct Signer {
    key_path: PathBuf,
    cert_path: PathBuf,
    /// Base64 (standard) DER of the cert, for the `x5c` header.
    cert_b64: String,
    user: String,
    pass: String,
}

impl Signer {
    fn new(dir: &Path, user: &str, pass: &str) -> Signer {
        let key_path = dir.join("token-key.pem");
        let cert_path = dir.join("token-cert.pem");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            ])
            .arg(format!("/CN={ISSUER}"))
            .arg("-keyout")
            .arg(&key_path)
            .arg("-out")
            .arg(&cert_path)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running openssl: {e}; {MISSING}"));
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = fs::read_to_string(&cert_path).expect("reading cert.pem");
        let cert_b64: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .map(str::trim)
            .collect();
        assert!(
            !cert_b64.is_empty(),
            "no certificate in {}",
            cert_path.display()
        );
        Signer {
            key_path,
            cert_path,
            cert_b64,
            user: user.to_owned(),
            pass: pass.to_owned(),
        }
    }

    /// A JWT granting the requested scopes (`type:name:actions`, possibly
    /// several separated by spaces in one string) to `subject`.
    fn mint(&self, scopes: &[String], subject: &str) -> Result<String, String> {
        let mut access = Vec::new();
        for scope in scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
        {
            let (ty, rest) = scope
                .split_once(':')
                .ok_or_else(|| format!("bad scope {scope:?}"))?;
            let (name, actions) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("bad scope {scope:?}"))?;
            let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
            access.push(serde_json::json!({"type": ty, "name": name, "actions": actions}));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.cert_b64]});
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + TOKEN_TTL,
            "nbf": now.saturating_sub(10),
            "iat": now,
            "jti": random_hex(),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running openssl: {e}"))?;
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(signing_input.as_bytes())
            .map_err(|e| format!("writing to openssl: {e}"))?;
        let out = child
            .wait_with_output()
            .map_err(|e| format!("openssl: {e}"))?;
        if !out.status.success() || out.stdout.is_empty() {
            return Err(format!(
                "openssl dgst failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(&out.stdout)
        ))
    }
}

/// Tiny HTTP/1.1 token endpoint (`GET` or form `POST` on `/token`).
struct TokenServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    issued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    fn start(signer: Arc<Signer>) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token endpoint");
        let addr = listener.local_addr().expect("token endpoint addr");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let issued = Arc::new(AtomicUsize::new(0));
        let (st, rq, is) = (stop.clone(), requests.clone(), issued.clone());
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let (signer, rq, is) = (signer.clone(), rq.clone(), is.clone());
                thread::spawn(move || serve_token(stream, &signer, &rq, &is));
            }
        });
        TokenServer {
            addr,
            stop,
            requests,
            issued,
            thread: Some(thread),
        }
    }

    fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Request {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let decoded = match b[i] {
            b'%' if i + 2 < b.len() => std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
            _ => None,
        };
        match (decoded, b[i]) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (url_decode(k), url_decode(v)),
            None => (url_decode(p), String::new()),
        })
        .collect()
}

fn respond(stream: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes());
    let _ = stream.flush();
}

fn serve_token(
    mut stream: TcpStream,
    signer: &Signer,
    requests: &AtomicUsize,
    issued: &AtomicUsize,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&mut stream) else {
        return;
    };
    let (path, query) = req
        .target
        .split_once('?')
        .unwrap_or((req.target.as_str(), ""));
    if path != "/token" {
        respond(
            &mut stream,
            "404 Not Found",
            "",
            r#"{"errors":[{"code":"NOT_FOUND"}]}"#,
        );
        return;
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let mut params = parse_form(query);
    if req.method == "POST" {
        params.extend(parse_form(&String::from_utf8_lossy(&req.body)));
    } else if req.method != "GET" {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "",
            r#"{"errors":[{"code":"UNSUPPORTED"}]}"#,
        );
        return;
    }
    let param = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.clone())
    };
    if let Some(service) = param("service")
        && service != SERVICE
    {
        let body = format!(
            r#"{{"errors":[{{"code":"DENIED","message":"unknown service {service:?}"}}]}}"#
        );
        respond(&mut stream, "400 Bad Request", "", &body);
        return;
    }
    let basic = req
        .headers
        .get("authorization")
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
    let creds = basic.or_else(|| match (param("username"), param("password")) {
        (Some(u), Some(p)) => Some((u, p)),
        _ => None,
    });
    let ok = creds
        .as_ref()
        .is_some_and(|(u, p)| *u == signer.user && *p == signer.pass);
    if !ok {
        respond(
            &mut stream,
            "401 Unauthorized",
            "WWW-Authenticate: Basic realm=\"canary-test-token\"\r\n",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
        return;
    }
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    match signer.mint(&scopes, &signer.user) {
        Ok(token) => {
            issued.fetch_add(1, Ordering::SeqCst);
            let body =
                serde_json::json!({"token": token, "access_token": token, "expires_in": TOKEN_TTL});
            respond(&mut stream, "200 OK", "", &body.to_string());
        }
        Err(e) => {
            let body = serde_json::json!({"errors": [{"code": "DENIED", "message": e}]});
            respond(&mut stream, "400 Bad Request", "", &body.to_string());
        }
    }
}
