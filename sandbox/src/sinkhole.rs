//! The sinkhole: the run's network namespace gets a default route into its own loopback
//! and nftables rules that send every outgoing TCP connection (except to 127.0.0.0/8)
//! to one catcher and every DNS query to one resolver, both sockets of ours in that
//! namespace. Nothing is routed anywhere else: the namespace has no other interface.
//!
//! The resolver answers every A query with an address of its own in 198.18.1.0/24, one
//! per name, so a later connection maps back to the name. The catcher takes the original
//! destination from `SO_ORIGINAL_DST`, records the first bytes, and answers enough to
//! keep the program talking: a Stratum `login` or `mining.subscribe` gets a job, an HTTP
//! request a 404, and the cloud metadata service (169.254.169.254) the run's canary AWS
//! credentials, as EC2's instance metadata service would. A TLS connection has its SNI
//! read from the ClientHello and is then terminated with a certificate of the
//! sinkhole's own (miners seldom check it; a client that does simply hangs up), so
//! Stratum or HTTP inside TLS is seen and answered the same way.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where the catcher and the resolver listen inside the run's namespace.
pub(crate) const CATCH_PORT: u16 = 65_531;
pub(crate) const DNS_PORT: u16 = 65_532;

/// What the sinkhole saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "net")]
pub enum NetEvent {
    Dns {
        t_ms: u64,
        name: String,
        qtype: u16,
        /// The address given, for A queries.
        answer: Option<String>,
    },
    Tcp {
        t_ms: u64,
        dst_ip: String,
        dst_port: u16,
        /// The name the destination address was given for, if it came from our resolver.
        dst_name: Option<String>,
        /// `stratum`, `http`, `tls` or `unknown`, from the first bytes (inside TLS when
        /// the sinkhole could terminate it; `tls` when it could not).
        protocol: String,
        /// The first bytes the program sent (up to 4 KiB), decrypted when the TLS
        /// handshake went through.
        first_bytes: Vec<u8>,
        /// Whether the connection started with a TLS handshake.
        #[serde(default)]
        tls: bool,
        /// The server name the TLS ClientHello asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sni: Option<String>,
        /// For HTTP (plain or inside TLS): the request line and headers that say what
        /// was asked and by what.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http: Option<HttpRequest>,
    },
}

/// What an HTTP request asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// The `Host` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The `User-Agent` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The request line and the `Host` and `User-Agent` headers of an HTTP request's first
/// bytes (each cut at 1 KiB).
fn http_request(first: &[u8]) -> Option<HttpRequest> {
    let text = String::from_utf8_lossy(first);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let mut request = lines.next()?.split_whitespace();
    let cut = |s: &str| s.chars().take(1024).collect::<String>();
    let method = cut(request.next()?);
    let path = cut(request.next().unwrap_or(""));
    let mut req = HttpRequest {
        method,
        path,
        host: None,
        user_agent: None,
    };
    for line in lines.take(100) {
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("host") {
                req.host = Some(cut(v.trim()));
            } else if k.trim().eq_ignore_ascii_case("user-agent") {
                req.user_agent = Some(cut(v.trim()));
            }
        }
    }
    Some(req)
}

/// Most events kept per run.
const MAX_NET_EVENTS: usize = 2_000;
/// Most connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// Set up the network of the namespace we are in: loopback up, default route into it,
/// the redirect rules; then bind the catcher and the resolver. Runs as root of the
/// run's user namespace, before pid 1 exists.
pub(crate) fn prepare() -> Result<(TcpListener, UdpSocket), String> {
    run("ip", &["link", "set", "lo", "up"], None)?;
    // With no source address given, connections would leave from 0.0.0.0 and the
    // catcher's answers would go nowhere.
    run(
        "ip",
        &["route", "add", "default", "dev", "lo", "src", "127.0.0.1"],
        None,
    )?;
    let rules = format!(
        "table ip canary_sinkhole {{
  chain out {{
    type nat hook output priority -100; policy accept;
    udp dport 53 redirect to :{DNS_PORT}
    ip daddr != 127.0.0.0/8 meta l4proto tcp redirect to :{CATCH_PORT}
  }}
}}
"
    );
    run("nft", &["-f", "-"], Some(&rules))?;
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, CATCH_PORT))
        .map_err(|e| format!("sinkhole catcher: {e}"))?;
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, DNS_PORT))
        .map_err(|e| format!("sinkhole resolver: {e}"))?;
    Ok((tcp, udp))
}

/// Run a host tool (`ip`, `nft`) in our namespaces.
fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let path = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.exists())
        .ok_or_else(|| format!("{tool} is not installed (Debian: iproute2, nftables)"))?;
    let mut child = std::process::Command::new(&path)
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{tool}: {e}"))?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        let _ = w.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The sinkhole's servers, on threads of the sandbox init.
pub(crate) struct Sinkhole {
    events: Arc<Mutex<(Vec<NetEvent>, u64)>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Connections being served.
    active: Arc<std::sync::atomic::AtomicUsize>,
    /// The servers' sockets, to wake their threads at the end.
    wake: Vec<OwnedFd>,
}

/// Fake addresses given to names, both ways.
#[derive(Default)]
struct Names {
    by_name: HashMap<String, Ipv4Addr>,
    by_addr: HashMap<Ipv4Addr, String>,
}

impl Names {
    fn address(&mut self, name: &str) -> Option<Ipv4Addr> {
        if let Some(a) = self.by_name.get(name) {
            return Some(*a);
        }
        let n = self.by_name.len();
        if n >= 250 {
            return None;
        }
        let a = Ipv4Addr::new(198, 18, 1, 2 + n as u8);
        self.by_name.insert(name.to_string(), a);
        self.by_addr.insert(a, name.to_string());
        Some(a)
    }
}

impl Sinkhole {
    pub(crate) fn start(
        tcp: OwnedFd,
        udp: OwnedFd,
        started: Instant,
        bait: Option<&crate::bait::Bait>,
        http: Option<crate::run::HttpReply>,
    ) -> Sinkhole {
        let answers = Arc::new(Answers {
            http,
            ..Answers::new(bait)
        });
        let wake: Vec<OwnedFd> = [&tcp, &udp]
            .into_iter()
            .filter_map(|fd| fd.try_clone().ok())
            .collect();
        let tcp = TcpListener::from(tcp);
        let udp = UdpSocket::from(udp);
        let events: Arc<Mutex<(Vec<NetEvent>, u64)>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let names: Arc<Mutex<Names>> = Arc::default();
        let t_ms = move || started.elapsed().as_millis() as u64;
        let record = {
            let events = events.clone();
            move |e: NetEvent| {
                let mut g = events.lock().unwrap_or_else(|p| p.into_inner());
                if g.0.len() < MAX_NET_EVENTS {
                    g.0.push(e);
                } else {
                    g.1 += 1;
                }
            }
        };
        let mut threads = Vec::new();
        let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        {
            let (stop, names, record) = (stop.clone(), names.clone(), record.clone());
            let _ = udp.set_read_timeout(Some(Duration::from_millis(100)));
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some((reply, name, qtype, answer)) = dns_answer(&buf[..n], &names) {
                        let _ = udp.send_to(&reply, from);
                        record(NetEvent::Dns {
                            t_ms: t_ms(),
                            name,
                            qtype,
                            answer: answer.map(|a| a.to_string()),
                        });
                    }
                }
            }));
        }
        {
            let (stop, names, record, active) =
                (stop.clone(), names.clone(), record.clone(), active.clone());
            let _ = tcp.set_nonblocking(true);
            threads.push(std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let conn = match tcp.accept() {
                        Ok((c, _)) => c,
                        Err(_) => {
                            // Wake for a connection at once, or to check `stop`.
                            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                            let mut fds = [PollFd::new(
                                std::os::fd::AsFd::as_fd(&tcp),
                                PollFlags::POLLIN,
                            )];
                            let _ = poll(&mut fds, PollTimeout::from(100u8));
                            continue;
                        }
                    };
                    if active.load(std::sync::atomic::Ordering::Relaxed) >= MAX_CONNECTIONS {
                        // Too many open at once: still recorded, by destination, unread.
                        if let Some((ip, port)) = original_dst(&conn) {
                            let dst_name = name_of(&names, ip);
                            record(NetEvent::Tcp {
                                t_ms: t_ms(),
                                dst_ip: ip.to_string(),
                                dst_port: port,
                                dst_name,
                                protocol: "unknown".into(),
                                first_bytes: Vec::new(),
                                tls: false,
                                sni: None,
                                http: None,
                            });
                        }
                        continue;
                    }
                    active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (names, record, active, answers) = (
                        names.clone(),
                        record.clone(),
                        active.clone(),
                        answers.clone(),
                    );
                    let done = active.clone();
                    let spawned = std::thread::Builder::new().spawn(move || {
                        if let Some(e) = catch(conn, &names, t_ms(), &answers) {
                            record(e);
                        }
                        active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    });
                    // No thread to be had (the host's limits): the connection is
                    // dropped, and the catcher goes on.
                    if spawned.is_err() {
                        done.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }));
        }
        Sinkhole {
            events,
            stop,
            threads,
            active,
            wake,
        }
    }

    /// Stop the servers; the events and how many were dropped.
    pub(crate) fn finish(self) -> (Vec<NetEvent>, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Shutting a socket down returns its blocked accept or recv at once.
        for fd in &self.wake {
            let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
        for t in self.threads {
            let _ = t.join();
        }
        // The run's processes are gone, so their connections are closed and each
        // handler ends at once; the bound is for a handler stuck anyway.
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.active.load(std::sync::atomic::Ordering::Relaxed) > 0
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut g = self.events.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut g.0), g.1)
    }
}

/// The original destination of a redirected connection.
fn original_dst(conn: &TcpStream) -> Option<(Ipv4Addr, u16)> {
    // SAFETY: sockaddr_in is plain integers; zero is a valid value.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: getsockopt(SO_ORIGINAL_DST) writes at most `len` bytes into `addr`, which
    // is that size and ours; `len` is updated in place.
    let r = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_IP,
            libc::SO_ORIGINAL_DST,
            (&mut addr as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    };
    (r == 0).then(|| {
        (
            Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
            u16::from_be(addr.sin_port),
        )
    })
}

/// The name our resolver gave `ip` for, if it did.
fn name_of(names: &Mutex<Names>, ip: Ipv4Addr) -> Option<String> {
    names
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .by_addr
        .get(&ip)
        .cloned()
}

/// What the catcher answers the cloud metadata service with: the run's canary AWS
/// credentials (TLS uses [`tls_identity`], made on the first TLS connection).
pub(crate) struct Answers {
    /// Access key id and secret key, from the run's bait.
    aws: Option<(String, String)>,
    /// TLS connections terminated so far.
    tls_served: std::sync::atomic::AtomicUsize,
    /// The body every other HTTP request gets, when the caller set one.
    http: Option<crate::run::HttpReply>,
}

impl Answers {
    pub(crate) fn new(bait: Option<&crate::bait::Bait>) -> Answers {
        Answers {
            aws: bait.map(|b| (b.aws_access_key_id.clone(), b.aws_secret_access_key.clone())),
            tls_served: Default::default(),
            http: None,
        }
    }
}

/// The sinkhole's TLS certificate (self-signed, ECDSA P-256), made once per process, on
/// first use (not on the run's start-up path).
pub(crate) struct TlsIdentity {
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// The certificate itself (the tests trust it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) cert: rustls::pki_types::CertificateDer<'static>,
}

/// The name in the sinkhole's certificate.
pub(crate) const TLS_NAME: &str = "canary-sinkhole.invalid";

pub(crate) fn tls_identity() -> Option<&'static TlsIdentity> {
    static ID: std::sync::OnceLock<Option<TlsIdentity>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let key = rcgen::KeyPair::generate().ok()?;
        let cert = rcgen::CertificateParams::new(vec![TLS_NAME.to_string()])
            .ok()?
            .self_signed(&key)
            .ok()?;
        let der = cert.der().clone();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .ok()?
            .with_no_client_auth()
            .with_single_cert(
                vec![der.clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .ok()?;
        Some(TlsIdentity {
            config: Arc::new(config),
            cert: der,
        })
    })
    .as_ref()
}

/// Serve one caught connection: its original destination, then [`serve`].
fn catch(conn: TcpStream, names: &Mutex<Names>, t_ms: u64, answers: &Answers) -> Option<NetEvent> {
    let (ip, port) = original_dst(&conn)?;
    let dst_name = name_of(names, ip);
    Some(serve(conn, ip, port, dst_name, t_ms, answers))
}

/// What the first bytes of a connection say it speaks.
fn classify(first: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(first);
    if first.first() == Some(&0x16) {
        "tls"
    } else if text.contains("\"method\"")
        && (text.contains("login") || text.contains("mining.subscribe"))
    {
        "stratum"
    } else if [
        "GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ",
    ]
    .iter()
    .any(|m| text.starts_with(m))
    {
        "http"
    } else {
        "unknown"
    }
}

/// Read a connection's first bytes (up to 4 KiB, within the read timeout): one read,
/// and more while an HTTP header or a JSON line is still incomplete (a request can come
/// in pieces).
fn read_first(conn: &mut impl Read) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut n = conn.read(&mut buf).unwrap_or(0);
    let until = Instant::now() + Duration::from_secs(1);
    while n > 0 && n < buf.len() && Instant::now() < until {
        let got = &buf[..n];
        let http = classify(got) == "http" || got.iter().all(|c| c.is_ascii_uppercase());
        let incomplete = (http && !got.windows(4).any(|w| w == b"\r\n\r\n"))
            || (got.first() == Some(&b'{') && !got.contains(&b'\n'));
        if !incomplete {
            break;
        }
        match conn.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    buf.truncate(n);
    buf
}

/// How long one caught connection is served in all, however slowly its bytes come.
const CONNECTION_BUDGET: Duration = Duration::from_secs(5);
/// TLS handshakes one run may make the sinkhole do (each costs the host CPU outside
/// the run's limits); past that the ClientHello is recorded and the connection closed.
const MAX_TLS_PER_RUN: usize = 256;

/// A connection with one deadline for all its reads and writes: each waits at most
/// until then, so a client dribbling a byte at a time cannot hold its thread.
struct Deadlined {
    conn: TcpStream,
    until: Instant,
}

impl Deadlined {
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection budget spent",
            ));
        }
        Ok(left)
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        self.conn
            .set_read_timeout(Some(left.min(Duration::from_secs(2))))?;
        self.conn.read(buf)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        self.conn
            .set_write_timeout(Some(left.min(Duration::from_secs(2))))?;
        self.conn.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.conn.flush()
    }
}

/// Serve one connection to `ip:port`: read its first bytes, answer as its protocol
/// expects (inside TLS when it starts a handshake), and say what was seen.
fn serve(
    conn: TcpStream,
    ip: Ipv4Addr,
    port: u16,
    dst_name: Option<String>,
    t_ms: u64,
    answers: &Answers,
) -> NetEvent {
    let _ = conn.set_nonblocking(false);
    let mut conn = Deadlined {
        conn,
        until: Instant::now() + CONNECTION_BUDGET,
    };
    let first = read_first(&mut conn);
    let event =
        |protocol: &str, first_bytes: Vec<u8>, tls: bool, sni: Option<String>| NetEvent::Tcp {
            t_ms,
            dst_ip: ip.to_string(),
            dst_port: port,
            dst_name: dst_name.clone(),
            protocol: protocol.into(),
            http: (protocol == "http")
                .then(|| http_request(&first_bytes))
                .flatten(),
            first_bytes,
            tls,
            sni,
        };
    if first.first() == Some(&0x16) {
        let sni = client_hello_sni(&first);
        let allowed = answers
            .tls_served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            < MAX_TLS_PER_RUN;
        if allowed
            && let Some(id) = tls_identity()
            && let Some((inner, protocol)) = serve_tls(conn, &first, &id.config, ip, answers)
        {
            return event(protocol, inner, true, sni);
        }
        return event("tls", first, true, sni);
    }
    let protocol = classify(&first);
    respond(&mut conn, protocol, &first, ip, answers);
    event(protocol, first, false, None)
}

/// Finish the TLS handshake a ClientHello (`hello`, already read) began, then read and
/// answer what comes inside. `None` when the handshake fails (the client checks
/// certificates, or is not TLS after all).
fn serve_tls(
    conn: Deadlined,
    hello: &[u8],
    config: &Arc<rustls::ServerConfig>,
    ip: Ipv4Addr,
    answers: &Answers,
) -> Option<(Vec<u8>, &'static str)> {
    let mut server = rustls::ServerConnection::new(config.clone()).ok()?;
    let mut pending: &[u8] = hello;
    while !pending.is_empty() {
        if server.read_tls(&mut pending).ok()? == 0 {
            break;
        }
        server.process_new_packets().ok()?;
    }
    let mut tls = rustls::StreamOwned::new(server, conn);
    let inner = read_first(&mut tls);
    if inner.is_empty() {
        return None;
    }
    let protocol = classify(&inner);
    respond(&mut tls, protocol, &inner, ip, answers);
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Some((inner, protocol))
}

/// Answer what the program sent, as its protocol expects.
fn respond(
    conn: &mut (impl Read + Write),
    protocol: &str,
    first: &[u8],
    ip: Ipv4Addr,
    answers: &Answers,
) {
    let text = String::from_utf8_lossy(first);
    let reply: Vec<u8> = match protocol {
        "stratum" if text.contains("mining.subscribe") => {
            b"{\"id\":1,\"result\":[[[\"mining.notify\",\"canary\"]],\"00000000\",4],\"error\":null}\n".to_vec()
        }
        "stratum" => {
            b"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":null,\"result\":{\"id\":\"canary\",\"job\":{\"blob\":\"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\",\"job_id\":\"1\",\"target\":\"ffffff00\",\"algo\":\"rx/0\",\"height\":1,\"seed_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"},\"status\":\"OK\"}}\n".to_vec()
        }
        "http" => http_reply(&text, ip, answers),
        _ => Vec::new(),
    };
    if !reply.is_empty() {
        let _ = conn.write_all(&reply);
        let _ = conn.flush();
        // Keep a miner talking a little: its next messages are evidence too.
        if protocol == "stratum" {
            let mut more = [0u8; 1024];
            let _ = conn.read(&mut more);
        }
    }
}

/// The address of the cloud metadata service (AWS, GCP, Azure, …).
const METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The role name the fake metadata service reports.
const IMDS_ROLE: &str = "canary-instance-role";

/// An HTTP answer: EC2's metadata service (IMDSv1 and v2) for requests to 169.254.169.254
/// with the run's canary AWS credentials, a 404 for anything else.
fn http_reply(request: &str, ip: Ipv4Addr, answers: &Answers) -> Vec<u8> {
    let mut line = request.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (line.next().unwrap_or(""), line.next().unwrap_or(""));
    let body = match (&answers.aws, ip == METADATA_IP, method) {
        (Some(_), true, "PUT") if path == "/latest/api/token" => {
            Some("canary-imds-session-token".to_string())
        }
        (Some((id, secret)), true, "GET") => {
            let creds = "/latest/meta-data/iam/security-credentials";
            if path.trim_end_matches('/') == creds {
                Some(IMDS_ROLE.to_string())
            } else if path.trim_end_matches('/') == format!("{creds}/{IMDS_ROLE}") {
                Some(format!(
                    "{{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2026-01-01T00:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"{id}\",\n  \"SecretAccessKey\" : \"{secret}\",\n  \"Token\" : \"canary-session-token\",\n  \"Expiration\" : \"2099-01-01T00:00:00Z\"\n}}"
                ))
            } else if path.trim_end_matches('/') == "/latest/meta-data/instance-id" {
                Some("i-0canary0sinkhole0".to_string())
            } else {
                None
            }
        }
        _ => None,
    };
    let ok = |content_type: &str, body: &[u8]| {
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if method != "HEAD" {
            reply.extend_from_slice(body);
        }
        reply
    };
    match (body, &answers.http) {
        (Some(b), _) => ok("text/plain", b.as_bytes()),
        (None, Some(h)) if ip != METADATA_IP => ok(&h.content_type, &h.body),
        (None, _) => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    }
}

/// The server name (SNI) a TLS ClientHello asks for, read from its first record.
fn client_hello_sni(b: &[u8]) -> Option<String> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn u16_at(b: &mut &[u8]) -> Option<usize> {
        take(b, 2).map(|x| u16::from_be_bytes([x[0], x[1]]) as usize)
    }
    let mut r = b;
    // Record header: handshake (22), version, length.
    if take(&mut r, 1)? != [0x16] {
        return None;
    }
    take(&mut r, 2)?;
    let len = u16_at(&mut r)?;
    let mut hs = &r[..len.min(r.len())];
    // Handshake header: ClientHello (1), 24-bit length.
    if take(&mut hs, 1)? != [0x01] {
        return None;
    }
    take(&mut hs, 3)?;
    take(&mut hs, 2 + 32)?; // version, random
    let sid = take(&mut hs, 1)?[0] as usize;
    take(&mut hs, sid)?;
    let suites = u16_at(&mut hs)?;
    take(&mut hs, suites)?;
    let comp = take(&mut hs, 1)?[0] as usize;
    take(&mut hs, comp)?;
    let ext_len = u16_at(&mut hs)?;
    let ext_len = ext_len.min(hs.len());
    let mut ext = take(&mut hs, ext_len)?;
    while ext.len() >= 4 {
        let kind = u16_at(&mut ext)?;
        let n = u16_at(&mut ext)?;
        let mut data = take(&mut ext, n)?;
        if kind != 0 {
            continue;
        }
        let list = u16_at(&mut data)?;
        let list = list.min(data.len());
        let mut names = take(&mut data, list)?;
        while !names.is_empty() {
            let name_type = take(&mut names, 1)?[0];
            let n = u16_at(&mut names)?;
            let name = take(&mut names, n)?;
            if name_type == 0 {
                let name = String::from_utf8_lossy(name).into_owned();
                // Only hostname characters: the name is shown in reports.
                return name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c))
                    .then_some(name);
            }
        }
    }
    None
}

/// Answer a DNS query: A gets a fake address of its own, anything else no data.
/// Returns the reply, the name, the query type and the address given.
fn dns_answer(q: &[u8], names: &Mutex<Names>) -> Option<(Vec<u8>, String, u16, Option<Ipv4Addr>)> {
    if q.len() < 12 || q[2] & 0x80 != 0 {
        return None;
    }
    // One question: labels, then type and class.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 || labels.len() > 127 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question_end = i + 4;
    q.get(..question_end)?;
    let name = labels.join(".");
    let answer = if qtype == 1 {
        names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .address(&name)
    } else {
        None
    };
    let mut r = Vec::with_capacity(question_end + 16);
    r.extend_from_slice(&q[..2]);
    // Response, recursion desired copied, recursion available, no error.
    r.push(0x80 | (q[2] & 0x01));
    r.push(0x80);
    r.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    r.extend_from_slice(&q[12..question_end]);
    if let Some(a) = answer {
        // Name by pointer to the question, type A, class IN, TTL 60, 4 bytes.
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&a.octets());
    }
    Some((r, name, qtype, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS client that trusts the sinkhole's certificate, asking for `name`.
    fn client(name: &str) -> rustls::ClientConnection {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(tls_identity().expect("sinkhole certificate").cert.clone())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        rustls::ClientConnection::new(Arc::new(config), name.to_string().try_into().unwrap())
            .unwrap()
    }

    /// Serve one connection on loopback as if it had been redirected from `ip:port`.
    fn serve_one(
        ip: Ipv4Addr,
        port: u16,
        answers: Answers,
        talk: impl FnOnce(TcpStream) + Send + 'static,
    ) -> NetEvent {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || talk(TcpStream::connect(addr).unwrap()));
        let (conn, _) = l.accept().unwrap();
        let e = serve(conn, ip, port, None, 7, &answers);
        t.join().unwrap();
        e
    }

    #[test]
    fn the_server_name_is_read_from_a_real_client_hello() {
        let mut c = client("pool.supportxmr.com");
        let mut hello = Vec::new();
        c.write_tls(&mut hello).unwrap();
        assert_eq!(
            client_hello_sni(&hello).as_deref(),
            Some("pool.supportxmr.com")
        );
        // Cut short, or not a handshake: no name, no panic.
        for n in 0..hello.len().min(300) {
            let _ = client_hello_sni(&hello[..n]);
        }
        assert_eq!(client_hello_sni(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn stratum_inside_tls_is_answered_and_seen() {
        let e = serve_one(
            Ipv4Addr::new(198, 18, 1, 9),
            443,
            Answers::new(None),
            |sock| {
                let mut tls = rustls::StreamOwned::new(client(TLS_NAME), sock);
                tls.write_all(b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"WALLET\",\"agent\":\"XMRig/6.21.0\"}}\n").unwrap();
                let mut reply = vec![0u8; 4096];
                let n = tls.read(&mut reply).unwrap();
                assert!(String::from_utf8_lossy(&reply[..n]).contains("\"job\""));
            },
        );
        let NetEvent::Tcp {
            protocol,
            tls,
            sni,
            first_bytes,
            ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(protocol, "stratum");
        assert!(tls);
        assert_eq!(sni.as_deref(), Some(TLS_NAME));
        assert!(String::from_utf8_lossy(&first_bytes).contains("XMRig/6.21.0"));
    }

    #[test]
    fn the_metadata_service_hands_out_the_canary_credentials() {
        let bait = crate::bait::Bait::new().unwrap();
        let get = |path: &'static str, bait: &crate::bait::Bait| {
            let mut body = String::new();
            let b = bait.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            serve_one(METADATA_IP, 80, Answers::new(Some(&b)), move |mut sock| {
                write!(sock, "GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n").unwrap();
                let mut out = String::new();
                let _ = sock.read_to_string(&mut out);
                tx.send(out).unwrap();
            });
            body.push_str(&rx.recv().unwrap());
            body
        };
        let role = get("/latest/meta-data/iam/security-credentials/", &bait);
        assert!(role.starts_with("HTTP/1.1 200 OK"), "{role}");
        assert!(role.ends_with(IMDS_ROLE), "{role}");
        let creds = get(
            "/latest/meta-data/iam/security-credentials/canary-instance-role",
            &bait,
        );
        assert!(creds.contains(&format!("\"AccessKeyId\" : \"{}\"", bait.aws_access_key_id)));
        assert!(creds.contains(&bait.aws_secret_access_key));
        assert!(get("/latest/user-data", &bait).starts_with("HTTP/1.1 404"));
        // Anywhere else, or without bait, nothing is handed out.
        let answers = Answers::new(None);
        let reply = http_reply(
            "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\n\r\n",
            METADATA_IP,
            &answers,
        );
        assert!(reply.starts_with(b"HTTP/1.1 404"));
    }

    #[test]
    fn a_configured_body_answers_every_other_http_request() {
        let answers = Answers {
            http: Some(crate::run::HttpReply {
                content_type: "text/x-shellscript".into(),
                body: b"echo stage two\n".to_vec(),
            }),
            ..Answers::new(None)
        };
        let ip = Ipv4Addr::new(198, 18, 1, 9);
        let reply = http_reply("GET /s.sh HTTP/1.1\r\nHost: x\r\n\r\n", ip, &answers);
        assert_eq!(
            reply,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/x-shellscript\r\nContent-Length: 15\r\nConnection: close\r\n\r\necho stage two\n"
        );
        let head = http_reply("HEAD /s.sh HTTP/1.1\r\n\r\n", ip, &answers);
        assert!(head.ends_with(b"Content-Length: 15\r\nConnection: close\r\n\r\n"));
        // The metadata service is not given the body.
        let imds = http_reply(
            "GET /latest/user-data HTTP/1.1\r\n\r\n",
            METADATA_IP,
            &answers,
        );
        assert!(imds.starts_with(b"HTTP/1.1 404"));
    }

    #[test]
    fn http_requests_are_read_into_method_path_host_and_agent() {
        let r = http_request(
            b"GET /x.sh?t=1 HTTP/1.1\r\nHost: dl.example.net\r\nuser-agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            r,
            HttpRequest {
                method: "GET".into(),
                path: "/x.sh?t=1".into(),
                host: Some("dl.example.net".into()),
                user_agent: Some("curl/8.5.0".into()),
            }
        );
        // Headers after the blank line are body, not headers.
        let r = http_request(b"POST /c HTTP/1.1\n\nHost: no").unwrap();
        assert_eq!((r.method.as_str(), r.host), ("POST", None));
        assert!(http_request(b"").is_none());
        // Served: the event carries it.
        let e = serve_one(
            Ipv4Addr::new(198, 18, 1, 4),
            80,
            Answers::new(None),
            |mut s| {
                s.write_all(
                    b"GET /p HTTP/1.0\r\nHost: h.example\r\nUser-Agent: Go-http-client/1.1\r\n\r\n",
                )
                .unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
            },
        );
        let NetEvent::Tcp { http, .. } = e else {
            panic!()
        };
        assert_eq!(
            http.and_then(|h| h.user_agent).as_deref(),
            Some("Go-http-client/1.1")
        );
    }

    #[test]
    fn a_client_dribbling_bytes_cannot_hold_the_catcher() {
        let started = Instant::now();
        let e = serve_one(
            Ipv4Addr::new(198, 18, 1, 3),
            80,
            Answers::new(None),
            |mut sock| {
                // A TLS record header, then a byte every 400 ms: the handshake never
                // completes.
                let _ = sock.write_all(b"\x16\x03\x01\x02\x00");
                for _ in 0..40 {
                    std::thread::sleep(Duration::from_millis(400));
                    if sock.write_all(b"\x01").is_err() {
                        break;
                    }
                }
            },
        );
        assert!(
            matches!(&e, NetEvent::Tcp { protocol, .. } if protocol == "tls"),
            "{e:?}"
        );
        // The budget (5 s) ends the connection; the client's 16 s do not matter.
        assert!(
            started.elapsed() < CONNECTION_BUDGET + Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn dns_queries_get_one_address_per_name() {
        let names = std::sync::Mutex::new(super::Names::default());
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["Pool", "example", "org"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let (r, name, qtype, a) = super::dns_answer(&q, &names).unwrap();
        assert_eq!((name.as_str(), qtype), ("pool.example.org", 1));
        assert_eq!(a, Some(std::net::Ipv4Addr::new(198, 18, 1, 2)));
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(&r[r.len() - 4..], &[198, 18, 1, 2]);
        // The same name, the same address; truncated queries are ignored.
        assert_eq!(super::dns_answer(&q, &names).unwrap().3, a);
        assert!(super::dns_answer(&q[..14], &names).is_none());
    }
}
