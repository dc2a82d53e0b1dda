//! The sinkhole: the run's network namespace gets a default route into its own loopback
//! and nftables rules that send every outgoing TCP connection (except to 127.0.0.0/8)
//! to one catcher and every DNS query to one resolver, both sockets of ours in that
//! namespace. Nothing is routed anywhere else: the namespace has no other interface.
//!
//! The resolver answers every A query with an address of its own in 198.18.1.0/24, one
//! per name, so a later connection maps back to the name. The catcher takes the original
//! destination from `SO_ORIGINAL_DST`, records the first bytes, and answers enough to
//! keep the program talking: a Stratum `login` or `mining.subscribe` gets a job, an HTTP
//! request a 404.

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
        /// `stratum`, `http`, `tls` or `unknown`, from the first bytes.
        protocol: String,
        /// The first bytes the program sent (up to 4 KiB).
        first_bytes: Vec<u8>,
    },
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
    pub(crate) fn start(tcp: OwnedFd, udp: OwnedFd, started: Instant) -> Sinkhole {
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
                            });
                        }
                        continue;
                    }
                    active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (names, record, active) = (names.clone(), record.clone(), active.clone());
                    std::thread::spawn(move || {
                        if let Some(e) = catch(conn, &names, t_ms()) {
                            record(e);
                        }
                        active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    });
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

/// Serve one caught connection: read its first bytes, answer as its protocol expects.
fn catch(mut conn: TcpStream, names: &Mutex<Names>, t_ms: u64) -> Option<NetEvent> {
    let (ip, port) = original_dst(&conn)?;
    let dst_name = name_of(names, ip);
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).unwrap_or(0);
    buf.truncate(n);
    let text = String::from_utf8_lossy(&buf);
    let protocol = if buf.first() == Some(&0x16) {
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
    };
    let reply: &[u8] = match protocol {
        "stratum" if text.contains("mining.subscribe") => {
            b"{\"id\":1,\"result\":[[[\"mining.notify\",\"canary\"]],\"00000000\",4],\"error\":null}\n"
        }
        "stratum" => {
            b"{\"id\":1,\"jsonrpc\":\"2.0\",\"error\":null,\"result\":{\"id\":\"canary\",\"job\":{\"blob\":\"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\",\"job_id\":\"1\",\"target\":\"ffffff00\",\"algo\":\"rx/0\",\"height\":1,\"seed_hash\":\"0000000000000000000000000000000000000000000000000000000000000000\"},\"status\":\"OK\"}}\n"
        }
        "http" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        _ => b"",
    };
    if !reply.is_empty() {
        let _ = conn.write_all(reply);
        // Keep a miner talking a little: its next messages are evidence too.
        if protocol == "stratum" {
            let mut more = [0u8; 1024];
            let _ = conn.read(&mut more);
        }
    }
    Some(NetEvent::Tcp {
        t_ms,
        dst_ip: ip.to_string(),
        dst_port: port,
        dst_name,
        protocol: protocol.into(),
        first_bytes: buf,
    })
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
