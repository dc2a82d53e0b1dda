//! A local fault-injecting server that speaks the pull subset of the Distribution API
//! (`GET /v2/`, `GET|HEAD /v2/<repo>/manifests/<ref>`, `GET /v2/<repo>/blobs/<digest>`).
//! It is not a registry: it exists to answer what a real registry only does on a bad
//! day (429 with Retry-After, 500s, 403, a connection closed mid-blob), which the real
//! Distribution registry the other tests use cannot be made to do. Loopback only.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do with requests whose path ends with a given suffix.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status (with these extra headers) the first `times` requests, then serve normally.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        times: usize,
    },
    /// Send headers and only the first `bytes` of the body, then close, `times` times.
    CloseMidBody { bytes: usize, times: usize },
    /// Send headers and the first `bytes` of the body, then hold the connection open
    /// without sending more for `secs` seconds, `times` times (a download in progress).
    Stall {
        bytes: usize,
        secs: u64,
        times: usize,
    },
}

struct State {
    /// path → (content type, body)
    content: HashMap<String, (String, Vec<u8>)>,
    faults: Vec<(String, Fault, usize)>,
    log: Vec<String>,
    /// `Authorization` header value → user, when Basic auth is required.
    users: Option<HashMap<String, String>>,
    /// Docker Hub style pull limit: (limit, window seconds), per user.
    rate: Option<(usize, u64)>,
    /// user → times of their manifest GETs (pulls).
    pulls: HashMap<String, Vec<std::time::Instant>>,
    too_many: usize,
}

pub struct FaultyRegistry {
    pub host: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    pub requests: Arc<AtomicUsize>,
}

impl FaultyRegistry {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let host = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(State {
            content: HashMap::new(),
            faults: vec![],
            log: vec![],
            users: None,
            rate: None,
            pulls: HashMap::new(),
            too_many: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (st, sp, rq) = (state.clone(), stop.clone(), requests.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let st = st.clone();
                        let rq = rq.clone();
                        std::thread::spawn(move || {
                            let _ = serve(s, &st, &rq);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultyRegistry {
            host,
            state,
            stop,
            requests,
        }
    }

    /// Serve an image manifest under `/v2/<repo>/manifests/<tag>` and by digest, and its blobs.
    pub fn add_image(&self, repo: &str, tag: &str, img: &canary_analyzer::fixtures::Image) {
        let mut s = self.state.lock().unwrap();
        let m = &img.manifest;
        for r in [tag, m.digest.as_str()] {
            s.content.insert(
                format!("/v2/{repo}/manifests/{r}"),
                (m.media_type.clone(), m.bytes.clone()),
            );
        }
        for b in std::iter::once(&img.config).chain(img.layers.iter()) {
            s.content.insert(
                format!("/v2/{repo}/blobs/{}", b.digest),
                ("application/octet-stream".into(), b.bytes.clone()),
            );
        }
    }

    /// Serve raw bytes at a path (e.g. a hostile manifest).
    pub fn add_raw(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .content
            .insert(path.to_string(), (content_type.to_string(), body));
    }

    pub fn fault(&self, path_suffix: &str, f: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((path_suffix.to_string(), f, 0));
    }

    /// Require HTTP Basic auth with one of these `(user, password)` pairs.
    pub fn require_basic(&self, users: &[(&str, &str)]) {
        use base64::Engine;
        let map = users
            .iter()
            .map(|(u, p)| {
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                (format!("Basic {b}"), u.to_string())
            })
            .collect();
        self.state.lock().unwrap().users = Some(map);
    }

    /// Limit manifest GETs (pulls) per user as Docker Hub does: `limit` per sliding
    /// `window` seconds, announced in `RateLimit-Limit`/`RateLimit-Remaining` on manifest
    /// GETs and HEADs (HEADs do not count), and 429 beyond it.
    pub fn pull_limit(&self, limit: usize, window_secs: u64) {
        self.state.lock().unwrap().rate = Some((limit, window_secs));
    }

    /// Manifest GETs served to `user` (or "anonymous").
    pub fn pulls(&self, user: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .pulls
            .get(user)
            .map_or(0, Vec::len)
    }

    /// 429s served for the pull limit.
    pub fn too_many(&self) -> usize {
        self.state.lock().unwrap().too_many
    }

    /// Request lines seen, e.g. `GET /v2/x/blobs/sha256:…`.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for FaultyRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(s: TcpStream, state: &Mutex<State>, requests: &AtomicUsize) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(s.try_clone()?);
    let mut out = s;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        let mut authorization = String::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
                if k.eq_ignore_ascii_case("authorization") {
                    authorization = v.trim().to_string();
                }
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
        requests.fetch_add(1, Ordering::Relaxed);
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let (fault, found) = {
            let mut st = state.lock().unwrap();
            st.log.push(format!("{method} {path}"));
            let mut fault = None;
            for (suffix, f, used) in st.faults.iter_mut() {
                let times = match f {
                    Fault::Status { times, .. }
                    | Fault::CloseMidBody { times, .. }
                    | Fault::Stall { times, .. } => *times,
                };
                if path.ends_with(suffix.as_str()) && *used < times {
                    *used += 1;
                    fault = Some(f.clone());
                    break;
                }
            }
            (fault, st.content.get(&path).cloned())
        };
        let head = method == "HEAD";
        // Auth, then the pull limit, as a registry in front of everything else.
        let (user, limited) = {
            let mut st = state.lock().unwrap();
            let user = match &st.users {
                None => Some("anonymous".to_string()),
                Some(u) => u.get(&authorization).cloned(),
            };
            let mut limited = None;
            if let (Some(u), Some((limit, window))) = (&user, st.rate)
                && path.contains("/manifests/")
            {
                let now = std::time::Instant::now();
                let w = Duration::from_secs(window);
                let times = st.pulls.entry(u.clone()).or_default();
                times.retain(|t| now.duration_since(*t) < w);
                let mut used = times.len();
                let over = !head && used >= limit;
                if !head && !over {
                    times.push(now);
                    used += 1;
                }
                if over {
                    st.too_many += 1;
                }
                limited = Some((limit, window, limit.saturating_sub(used), over));
            }
            (user, limited)
        };
        if user.is_none() {
            out.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"faulty\"\r\nContent-Length: 0\r\n\r\n")?;
            out.flush()?;
            continue;
        }
        let rate_headers = match limited {
            Some((l, w, r, _)) => {
                format!("RateLimit-Limit: {l};w={w}\r\nRateLimit-Remaining: {r};w={w}\r\n")
            }
            None => {
                "RateLimit-Limit: 100;w=21600\r\nRateLimit-Remaining: 99;w=21600\r\n".to_string()
            }
        };
        if let Some((_, _, _, true)) = limited {
            let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull limit reached"}]}"#;
            write!(
                out,
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n{rate_headers}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            out.flush()?;
            continue;
        }
        match (fault, found) {
            (
                Some(Fault::Status {
                    status, headers, ..
                }),
                _,
            ) => {
                let body = format!(
                    r#"{{"errors":[{{"code":"INJECTED","message":"injected status {status}"}}]}}"#
                );
                let mut resp = format!(
                    "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                out.write_all(resp.as_bytes())?;
                out.write_all(body.as_bytes())?;
            }
            (Some(Fault::CloseMidBody { bytes, .. }), Some((ct, data))) => {
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                    data.len()
                );
                out.write_all(resp.as_bytes())?;
                out.write_all(&data[..bytes.min(data.len())])?;
                out.flush()?;
                return Ok(());
            }
            (Some(Fault::Stall { bytes, secs, .. }), Some((ct, data))) => {
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                    data.len()
                );
                out.write_all(resp.as_bytes())?;
                out.write_all(&data[..bytes.min(data.len())])?;
                out.flush()?;
                std::thread::sleep(Duration::from_secs(secs));
                return Ok(());
            }
            (_, Some((ct, data))) if path != "/v2/" => {
                let digest = format!(
                    "sha256:{}",
                    canary_analyzer::hex(&<sha2::Sha256 as sha2::Digest>::digest(&data))
                );
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nDocker-Content-Digest: {digest}\r\n{rate_headers}\r\n",
                    data.len()
                );
                out.write_all(resp.as_bytes())?;
                if !head {
                    out.write_all(&data)?;
                }
            }
            (_, _) if path == "/v2/" => {
                out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")?;
            }
            _ => {
                let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not here"}]}"#;
                out.write_all(
                    format!("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                        .as_bytes(),
                )?;
            }
        }
        out.flush()?;
    }
}
