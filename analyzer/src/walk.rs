//! The layer walk: one streaming pass over a layer blob (gzip, zstd or plain tar), every
//! entry handed to every detector, whiteouts recorded so the merge step knows what later
//! layers deleted. Nothing is extracted to disk and no link is ever followed.

use flate2::read::MultiGzDecoder;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::VerifyingReader;
use crate::detect::{Detector, EntryKind, EntryMeta};
use crate::finding::Finding;
use crate::image::{Layer, Verify};
use crate::report::{Issue, IssueLevel};

/// Bounds on what one layer may make us do.
#[derive(Debug, Clone)]
pub struct WalkLimits {
    /// Most tar entries in one layer.
    pub max_entries: u64,
    /// Largest size one entry may claim.
    pub max_entry_size: u64,
    /// Most uncompressed bytes in one layer.
    pub max_layer_bytes: u64,
    /// Largest uncompressed/compressed ratio, checked once `ratio_grace` bytes came out.
    /// Real layers compress 2–20:1; only files of zeros reach 100:1 over 256 MiB, and
    /// gzip cannot exceed about 1030:1, so a higher limit would never fire on gzip.
    pub max_ratio: u64,
    pub ratio_grace: u64,
    /// Most bytes of one file read into memory for content detectors.
    pub max_file_read: usize,
}

impl Default for WalkLimits {
    fn default() -> Self {
        WalkLimits {
            max_entries: 1_000_000,
            max_entry_size: 8 << 30,
            max_layer_bytes: 64 << 30,
            max_ratio: 100,
            ratio_grace: 256 << 20,
            max_file_read: 32 << 20,
        }
    }
}

/// Paths a layer adds, and what it deletes from the layers below.
#[derive(Debug, Default, Clone)]
pub struct LayerIndex {
    /// Path → is a directory.
    pub entries: HashMap<String, bool>,
    /// Paths removed by `.wh.<name>` files.
    pub whiteouts: HashSet<String>,
    /// Directories made opaque by `.wh..wh..opq`.
    pub opaque: HashSet<String>,
}

/// Compression found by sniffing the blob's first bytes (media types can lie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// What walking one layer produced.
#[derive(Debug, Default)]
pub struct LayerResult {
    pub index: LayerIndex,
    pub findings: Vec<Finding>,
    pub issues: Vec<Issue>,
    pub entries: u64,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub compression: Option<Compression>,
    /// Symlinks seen: path → target, for the merged-filesystem checks.
    pub symlinks: Vec<(String, String)>,
}

struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Raw = BufReader<Counting<Box<dyn Read + Send>>>;

enum Decoder {
    Gzip(Box<MultiGzDecoder<Raw>>),
    Zstd(Box<zstd::Decoder<'static, Raw>>),
    Plain(Raw),
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Plain(d) => d.read(buf),
        }
    }
}

impl Decoder {
    fn into_raw(self) -> Raw {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
            Decoder::Plain(d) => d,
        }
    }
}

/// Counts uncompressed bytes and stops decompression bombs.
struct BombGuard {
    inner: Decoder,
    compressed: Arc<AtomicU64>,
    out: u64,
    limits: WalkLimits,
}

impl Read for BombGuard {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > self.limits.max_layer_bytes {
            return Err(std::io::Error::other(format!(
                "layer decompresses to more than {} bytes (limit)",
                self.limits.max_layer_bytes
            )));
        }
        if self.out > self.limits.ratio_grace {
            let c = self.compressed.load(Ordering::Relaxed).max(1);
            if self.out / c > self.limits.max_ratio {
                return Err(std::io::Error::other(format!(
                    "decompression bomb: {} bytes from {} compressed (ratio over {}:1)",
                    self.out, c, self.limits.max_ratio
                )));
            }
        }
        Ok(n)
    }
}

enum Stream {
    Checked(VerifyingReader<BombGuard>),
    Unchecked(BombGuard),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Checked(r) => r.read(buf),
            Stream::Unchecked(r) => r.read(buf),
        }
    }
}

/// Normalize a tar path to `/a/b`. Returns the cleaned path and, for hostile paths
/// (absolute, or with `..` escaping the root), why it is hostile.
pub fn normalize_path(raw: &[u8]) -> (String, Option<&'static str>) {
    let s = String::from_utf8_lossy(raw);
    let mut problem = None;
    if s.starts_with('/') {
        problem = Some("absolute path in a layer tar");
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in s.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                problem = Some("path escapes the image root with `..`");
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    (format!("/{}", parts.join("/")), problem)
}

fn parent_of(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// Walk one layer: every entry to every detector, in one pass.
pub fn walk_layer(
    image: &str,
    layer: &Layer,
    blob: Box<dyn Read + Send>,
    detectors: &[Box<dyn Detector>],
    limits: &WalkLimits,
) -> Result<LayerResult, crate::Error> {
    let layer_err = |message: String| crate::Error::Layer {
        image: image.to_string(),
        digest: layer.digest.clone(),
        message,
    };
    let compressed = Arc::new(AtomicU64::new(0));
    let blob: Box<dyn Read + Send> = match &layer.verify {
        Verify::Blob(d) => Box::new(VerifyingReader::new(
            blob,
            d,
            &format!("{image} layer {}", layer.index),
        )),
        _ => blob,
    };
    let mut raw = BufReader::with_capacity(
        256 << 10,
        Counting {
            inner: blob,
            count: compressed.clone(),
        },
    );
    let head = raw
        .fill_buf()
        .map_err(|e| layer_err(format!("cannot read blob: {e}")))?;
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let decoder = match compression {
        Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(raw))),
        Compression::Zstd => Decoder::Zstd(Box::new(
            zstd::Decoder::with_buffer(raw).map_err(|e| layer_err(format!("zstd: {e}")))?,
        )),
        Compression::None => Decoder::Plain(raw),
    };
    let guard = BombGuard {
        inner: decoder,
        compressed: compressed.clone(),
        out: 0,
        limits: limits.clone(),
    };
    let stream = match &layer.verify {
        Verify::DiffId(d) => Stream::Checked(VerifyingReader::new(
            guard,
            d,
            &format!("{image} layer {}", layer.index),
        )),
        _ => Stream::Unchecked(guard),
    };

    let mut res = LayerResult {
        compression: Some(compression),
        ..Default::default()
    };
    let mut archive = tar::Archive::new(stream);
    let mut buf: Vec<u8> = Vec::new();
    let mut last_path = String::from("(start of layer)");
    let entries = archive
        .entries()
        .map_err(|e| layer_err(format!("not a tar stream: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| layer_err(format!("after {last_path}: {e}")))?;
        res.entries += 1;
        if res.entries > limits.max_entries {
            return Err(layer_err(format!(
                "more than {} entries (limit)",
                limits.max_entries
            )));
        }
        let raw_path = entry.path_bytes().into_owned();
        let (path, problem) = normalize_path(&raw_path);
        last_path = path.clone();
        if let Some(why) = problem {
            res.issues.push(Issue {
                level: IssueLevel::Error,
                image: image.to_string(),
                layer: Some(layer.digest.clone()),
                path: Some(String::from_utf8_lossy(&raw_path).into_owned()),
                message: format!("{why}; containerd refuses or rewrites such entries, so the image is hostile or broken"),
            });
        }
        let header = entry.header();
        let size = entry.size();
        let mode = header.mode().unwrap_or(0);
        let et = header.entry_type();
        let kind = match et {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                EntryKind::File
            }
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::HardLink,
            _ => EntryKind::Other,
        };
        if size > limits.max_entry_size {
            return Err(layer_err(format!(
                "{path}: entry claims {size} bytes, over the limit of {} bytes",
                limits.max_entry_size
            )));
        }
        let link_target = match kind {
            EntryKind::Symlink | EntryKind::HardLink => entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
            _ => None,
        };
        if kind == EntryKind::HardLink
            && let Some(t) = &link_target
        {
            let (_, prob) = normalize_path(t.as_bytes());
            if prob.is_some() && t.contains("..") {
                res.issues.push(Issue {
                    level: IssueLevel::Error,
                    image: image.to_string(),
                    layer: Some(layer.digest.clone()),
                    path: Some(path.clone()),
                    message: format!("hard link target {t:?} escapes the image root"),
                });
            }
        }

        // Whiteouts.
        let name = path.rsplit('/').next().unwrap_or("");
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let dir = parent_of(&path);
            if hidden == ".wh..opq" {
                res.index.opaque.insert(dir.to_string());
            } else {
                let target = if dir == "/" {
                    format!("/{hidden}")
                } else {
                    format!("{dir}/{hidden}")
                };
                res.index.whiteouts.insert(target);
            }
            continue;
        }
        res.index
            .entries
            .insert(path.clone(), kind == EntryKind::Dir);
        if kind == EntryKind::Symlink
            && let Some(t) = &link_target
        {
            res.symlinks.push((path.clone(), t.clone()));
        }

        let meta = EntryMeta {
            layer_index: layer.index,
            layer_digest: &layer.digest,
            path: &path,
            kind,
            size,
            mode,
            link_target: link_target.as_deref(),
        };
        let wanting: Vec<&dyn Detector> = detectors
            .iter()
            .map(|d| d.as_ref())
            .filter(|d| d.wants_content(&meta))
            .collect();
        let content = if kind == EntryKind::File && !wanting.is_empty() {
            buf.clear();
            let cap = limits.max_file_read as u64;
            (&mut entry)
                .take(cap)
                .read_to_end(&mut buf)
                .map_err(|e| layer_err(format!("{path}: {e}")))?;
            if size > cap {
                res.issues.push(Issue {
                    level: IssueLevel::Warning,
                    image: image.to_string(),
                    layer: Some(layer.digest.clone()),
                    path: Some(path.clone()),
                    message: format!(
                        "file is {size} bytes; only the first {cap} bytes were scanned"
                    ),
                });
            }
            Some(buf.as_slice())
        } else {
            None
        };
        for d in detectors {
            d.scan_entry(&meta, content, &mut res.findings);
        }
        // The tar reader skips what was not read when the next entry is requested.
    }

    // Drain the rest so trailing bytes are hashed and verified.
    let sink = &mut std::io::sink();
    let after = |e: std::io::Error| layer_err(format!("after the last entry: {e}"));
    let mut guard = match archive.into_inner() {
        Stream::Checked(mut v) => {
            std::io::copy(&mut v, sink).map_err(after)?;
            v.into_inner()
        }
        Stream::Unchecked(g) => g,
    };
    std::io::copy(&mut guard, sink).map_err(after)?;
    res.uncompressed_bytes = guard.out;
    let mut raw = guard.inner.into_raw();
    std::io::copy(&mut raw, sink)
        .map_err(|e| layer_err(format!("after the compressed stream: {e}")))?;
    res.compressed_bytes = compressed.load(Ordering::Relaxed);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_flags_hostile_paths() {
        assert_eq!(
            normalize_path(b"./etc/passwd"),
            ("/etc/passwd".into(), None)
        );
        assert_eq!(normalize_path(b"etc//x/"), ("/etc/x".into(), None));
        assert!(normalize_path(b"../../etc/cron.d/x").1.is_some());
        assert!(normalize_path(b"/etc/shadow").1.is_some());
        assert_eq!(normalize_path(b"a/../../b").0, "/b");
    }
}
