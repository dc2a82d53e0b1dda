//! A local stand-in for Docker Hub's API (not the registry): it serves the documented
//! JSON shapes of `GET /v2/namespaces/{ns}/repositories`, `GET
//! /v2/namespaces/{ns}/repositories/{repo}/tags` and `GET /v2/search/repositories/`,
//! paged with `next` links, from a fixed table. Docker Hub itself is not reachable from
//! these machines; the images it names are pulled from the real Distribution registry
//! the tests start. Loopback only.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `namespace/name` → tags with their `last_updated`.
pub type Table = Vec<(String, Vec<(String, String)>)>;

pub struct FakeHub {
    pub url: String,
    stop: Arc<AtomicBool>,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub served: Arc<AtomicUsize>,
}

/// Items per page the fake serves, whatever `page_size` asks: paging is exercised.
const PAGE: usize = 2;

fn query(path: &str, key: &str) -> Option<String> {
    let q = path.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
}

impl FakeHub {
    pub fn start(table: Table) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let served = Arc::new(AtomicUsize::new(0));
        let (st, rq, sv, base) = (stop.clone(), requests.clone(), served.clone(), url.clone());
        let table = Arc::new(table);
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                rq.lock().unwrap().push(path.clone());
                sv.fetch_add(1, Ordering::Relaxed);
                let (status, body) = answer(&table, &base, &path);
                let mut out = s;
                let _ = write!(
                    out,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeHub {
            url,
            stop,
            requests,
            served,
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn page(items: Vec<serde_json::Value>, base: &str, path: &str) -> String {
    let n: usize = query(path, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let start = (n - 1) * PAGE;
    let results: Vec<_> = items.iter().skip(start).take(PAGE).cloned().collect();
    let next = (start + PAGE < items.len()).then(|| {
        let p = path.split('?').next().unwrap_or("");
        let q: Vec<String> = path
            .split_once('?')
            .map(|x| x.1)
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.starts_with("page=") && !kv.is_empty())
            .map(str::to_string)
            .collect();
        format!("{base}{p}?{}&page={}", q.join("&"), n + 1)
    });
    serde_json::json!({
        "count": items.len(),
        "next": next,
        "previous": null,
        "results": results,
    })
    .to_string()
}

fn answer(table: &Table, base: &str, path: &str) -> (&'static str, String) {
    let p = path.split('?').next().unwrap_or("");
    let parts: Vec<&str> = p.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v2", "namespaces", ns, "repositories"] => {
            let items = table
                .iter()
                .filter(|(r, _)| r.split('/').next() == Some(ns))
                .map(|(r, _)| {
                    serde_json::json!({
                        "name": r.split('/').nth(1).unwrap_or(""),
                        "namespace": ns,
                        "repository_type": "image",
                        "status": 1,
                        "is_private": false,
                        "star_count": 0,
                        "pull_count": 10,
                        "last_updated": "2026-11-01T00:00:00.000000Z",
                    })
                })
                .collect();
            ("200 OK", page(items, base, path))
        }
        ["v2", "namespaces", ns, "repositories", repo, "tags"] => {
            let full = format!("{ns}/{repo}");
            match table.iter().find(|(r, _)| *r == full) {
                Some((_, tags)) => {
                    let items = tags
                        .iter()
                        .map(|(t, when)| {
                            serde_json::json!({
                                "name": t,
                                "last_updated": when,
                                "tag_status": "active",
                                "full_size": 1000,
                                "images": [],
                            })
                        })
                        .collect();
                    ("200 OK", page(items, base, path))
                }
                None => ("404 Not Found", r#"{"message":"object not found"}"#.into()),
            }
        }
        ["v2", "search", "repositories"] => {
            let q = query(path, "query").unwrap_or_default();
            let items = table
                .iter()
                .filter(|(r, _)| r.contains(&q))
                .map(|(r, _)| {
                    serde_json::json!({
                        "repo_name": r,
                        "short_description": "",
                        "star_count": 0,
                        "pull_count": 1,
                        "repo_owner": "",
                        "is_automated": false,
                        "is_official": false,
                    })
                })
                .collect();
            ("200 OK", page(items, base, path))
        }
        _ => ("404 Not Found", r#"{"message":"not found"}"#.into()),
    }
}
