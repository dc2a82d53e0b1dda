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
    /// Archives inside layers (zip/jar, tar, gzip, zstd): depth, size and bomb limits.
    pub nested: crate::nested::NestedLimits,
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
            nested: crate::nested::NestedLimits::default(),
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
    /// Why the walk stopped before the end of the layer; what was found up to there is
    /// kept.
    pub error: Option<crate::Error>,
    /// Files (or parts of files) a limit kept from the detectors, by reason.
    pub skipped: std::collections::BTreeMap<&'static str, u64>,
    /// Archive members scanned.
    pub nested_members: u64,
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

/// What the walk reads decoded bytes from.
enum Source {
    Inline(Decoder),
    Piped(Piped),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Inline(d) => d.read(buf),
            Source::Piped(p) => p.read(buf),
        }
    }
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

/// Decoded bytes of a layer coming from the thread that decodes it (see
/// [`walk_layer_decoding_ahead`]); the end of the stream comes after that thread also
/// read the blob's trailing bytes, so a digest mismatch there is still an error here.
struct Piped {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Emptied chunks go back to the decoding thread, so no chunk is allocated twice.
    spent: std::sync::mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

/// Decoded chunk size, and chunks in flight: about 1 MiB ahead of the walk at most.
const PIPE_CHUNK: usize = 256 << 10;
const PIPE_DEPTH: usize = 3;
const PIPE_STEP: usize = 32 << 10;

impl Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            let next = match self.rx.recv() {
                Ok(next) => next?,
                // The decoding thread is done: the stream ended.
                Err(_) => return Ok(0),
            };
            let old = std::mem::replace(&mut self.chunk, next);
            self.pos = 0;
            // The decoding thread may be gone; then the chunk is just freed.
            let _ = self.spent.send(old);
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decode `dec` to its end into chunks for [`Piped`], then read the blob's trailing
/// bytes. Stops as soon as the walk drops its end (an error or a limit there).
fn decode_ahead(
    mut dec: Decoder,
    tx: std::sync::mpsc::SyncSender<std::io::Result<Vec<u8>>>,
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut chunk = spent.try_recv().unwrap_or_default();
        chunk.resize(PIPE_CHUNK, 0);
        let mut n = 0;
        let end = loop {
            // Small steps: a decoder error drops what its failing call decoded, so this
            // keeps what comes before a corrupt spot close to what the one-thread walk sees.
            let step = (n + PIPE_STEP).min(chunk.len());
            match dec.read(&mut chunk[n..step]) {
                Ok(0) => break Ok(true),
                Ok(k) => {
                    n += k;
                    if n == chunk.len() {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        chunk.truncate(n);
        if n > 0 && tx.send(Ok(chunk)).is_err() {
            return;
        }
        match end {
            Ok(false) => {}
            Ok(true) => break,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
    let mut raw = dec.into_raw();
    if let Err(e) = std::io::copy(&mut raw, &mut std::io::sink()) {
        let _ = tx.send(Err(e));
    }
}

/// Slack allowed between one entry's data and the next yielded entry: the next header,
/// plus GNU long-name/long-link and PAX bodies, which the tar reader holds in memory.
/// Go's archive/tar (containerd) caps those bodies at 1 MiB too.
const META_SLACK: u64 = (1 << 20) + 4 * 512;

/// Counts uncompressed bytes, stops decompression bombs, and bounds how far the tar
/// reader may read past the data of the entry last handed out.
struct BombGuard {
    inner: Source,
    compressed: Arc<AtomicU64>,
    /// Uncompressed bytes produced so far.
    out: Arc<AtomicU64>,
    /// Absolute position in the uncompressed stream the reader may not pass.
    window_end: Arc<AtomicU64>,
    limits: WalkLimits,
}

impl Read for BombGuard {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let out = self.out.load(Ordering::Relaxed);
        let window_end = self.window_end.load(Ordering::Relaxed);
        if out >= window_end {
            return Err(std::io::Error::other(format!(
                "tar metadata (long name, long link or PAX header) larger than {META_SLACK} bytes"
            )));
        }
        let room = (window_end - out).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        let out = out + n as u64;
        self.out.store(out, Ordering::Relaxed);
        if out > self.limits.max_layer_bytes {
            return Err(std::io::Error::other(format!(
                "layer decompresses to more than {} bytes (limit)",
                self.limits.max_layer_bytes
            )));
        }
        if out > self.limits.ratio_grace {
            let c = self.compressed.load(Ordering::Relaxed).max(1);
            if out / c > self.limits.max_ratio {
                return Err(std::io::Error::other(format!(
                    "decompression bomb: {out} bytes from {c} compressed (ratio over {}:1)",
                    self.limits.max_ratio
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
) -> LayerResult {
    walk(image, layer, blob, detectors, limits, false)
}

/// [`walk_layer`], with the blob decompressed on a thread of its own about 1 MiB ahead
/// of the walk: one layer then takes about the longer of decompression and scanning
/// instead of their sum. For a spare core (an image with fewer layers than cores, or
/// the last layer of a scan). The result is the same.
pub fn walk_layer_decoding_ahead(
    image: &str,
    layer: &Layer,
    blob: Box<dyn Read + Send>,
    detectors: &[Box<dyn Detector>],
    limits: &WalkLimits,
) -> LayerResult {
    walk(image, layer, blob, detectors, limits, true)
}

fn walk(
    image: &str,
    layer: &Layer,
    blob: Box<dyn Read + Send>,
    detectors: &[Box<dyn Detector>],
    limits: &WalkLimits,
    ahead: bool,
) -> LayerResult {
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
    let failed = |e: crate::Error| LayerResult {
        error: Some(e),
        ..Default::default()
    };
    let head = match raw.fill_buf() {
        Ok(h) => h,
        Err(e) => return failed(layer_err(format!("cannot read blob: {e}"))),
    };
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let decoder = match compression {
        Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(raw))),
        Compression::Zstd => match zstd::Decoder::with_buffer(raw) {
            Ok(d) => Decoder::Zstd(Box::new(d)),
            Err(e) => return failed(layer_err(format!("zstd: {e}"))),
        },
        Compression::None => Decoder::Plain(raw),
    };
    let mut decoding = None;
    let source = match decoder {
        Decoder::Gzip(_) | Decoder::Zstd(_) if ahead => {
            let (tx, rx) = std::sync::mpsc::sync_channel(PIPE_DEPTH);
            let (spent_tx, spent_rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("canary-decode".into())
                .spawn(move || decode_ahead(decoder, tx, spent_rx));
            match spawned {
                Ok(handle) => decoding = Some(handle),
                Err(e) => return failed(layer_err(format!("cannot start a decoding thread: {e}"))),
            }
            Source::Piped(Piped {
                rx,
                spent: spent_tx,
                chunk: Vec::new(),
                pos: 0,
            })
        }
        decoder => Source::Inline(decoder),
    };
    let out = Arc::new(AtomicU64::new(0));
    let window_end = Arc::new(AtomicU64::new(META_SLACK));
    let guard = BombGuard {
        inner: source,
        compressed: compressed.clone(),
        out: out.clone(),
        window_end: window_end.clone(),
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
    let walked = walk_entries(
        &mut archive,
        image,
        layer,
        detectors,
        limits,
        &out,
        &window_end,
        &mut res,
    );
    if let Err(message) = walked {
        // Dropping the stream ends the decoding thread at its next chunk.
        drop(archive);
        let _ = join_decoding(decoding);
        res.compressed_bytes = compressed.load(Ordering::Relaxed);
        res.uncompressed_bytes = out.load(Ordering::Relaxed);
        res.error = Some(layer_err(message));
        return res;
    }

    // Drain the rest so trailing bytes are hashed and verified.
    window_end.store(u64::MAX, Ordering::Relaxed);
    let sink = &mut std::io::sink();
    let drained = (|| -> std::io::Result<()> {
        let mut guard = match archive.into_inner() {
            Stream::Checked(mut v) => {
                std::io::copy(&mut v, sink)?;
                v.into_inner()
            }
            Stream::Unchecked(g) => g,
        };
        std::io::copy(&mut guard, sink)?;
        // A decoding thread read the trailing bytes already.
        if let Source::Inline(decoder) = guard.inner {
            std::io::copy(&mut decoder.into_raw(), sink)?;
        }
        Ok(())
    })();
    let joined = join_decoding(decoding);
    res.compressed_bytes = compressed.load(Ordering::Relaxed);
    res.uncompressed_bytes = out.load(Ordering::Relaxed);
    if let Err(e) = drained {
        res.error = Some(layer_err(format!("after the last entry: {e}")));
    } else if let Err(message) = joined {
        res.error = Some(layer_err(message));
    }
    res
}

/// Go's archive/tar (what containerd extracts with) reads no data for these types,
/// whatever their size field says; a reader that skipped `size` bytes would lose sync.
fn header_only(t: tar::EntryType) -> bool {
    matches!(
        t,
        tar::EntryType::Link
            | tar::EntryType::Symlink
            | tar::EntryType::Char
            | tar::EntryType::Block
            | tar::EntryType::Directory
            | tar::EntryType::Fifo
    )
}

/// Wait for a decoding thread, so nothing of a layer's walk outlives it. A panic there
/// would have looked like the end of the stream to the walk, so it is an error.
fn join_decoding(handle: Option<std::thread::JoinHandle<()>>) -> Result<(), String> {
    match handle.map(|h| h.join()) {
        Some(Err(_)) => Err("the decompressor failed (panicked) mid-layer".to_string()),
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn walk_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    image: &str,
    layer: &Layer,
    detectors: &[Box<dyn Detector>],
    limits: &WalkLimits,
    out: &AtomicU64,
    window_end: &AtomicU64,
    res: &mut LayerResult,
) -> Result<(), String> {
    let mut buf: Vec<u8> = Vec::new();
    let mut last_path = String::from("(start of layer)");
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar stream: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("after {last_path}: {e}"))?;
        res.entries += 1;
        if res.entries > limits.max_entries {
            return Err(format!("more than {} entries (limit)", limits.max_entries));
        }
        let size = entry.size();
        let raw_path = entry.path_bytes().into_owned();
        let (path, problem) = normalize_path(&raw_path);
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        last_path = path.clone();
        if size > limits.max_entry_size {
            return Err(format!(
                "{path}: entry claims {size} bytes, over the limit of {} bytes",
                limits.max_entry_size
            ));
        }
        // The reader may read this entry's data (padded) and the next header's metadata.
        let padded = size.div_ceil(512).saturating_mul(512);
        window_end.store(
            out.load(Ordering::Relaxed)
                .saturating_add(padded)
                .saturating_add(META_SLACK),
            Ordering::Relaxed,
        );

        // Anything containerd would read differently is a way to hide a file: refuse it.
        let raw_type = entry.header().as_bytes()[156];
        let et = entry.header().entry_type();
        let differential = if header_only(et) && size != 0 {
            Some(format!(
                "a {et:?} entry with {size} bytes of data (containerd reads none; the stream would desync)"
            ))
        } else if matches!(
            et,
            tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink
        ) {
            Some(format!(
                "a {et:?} metadata entry without a valid ustar/GNU header"
            ))
        } else if raw_path.contains(&0) {
            Some("a name with an embedded NUL byte".to_string())
        } else if raw_type == 0 && raw_path.ends_with(b"/") && size != 0 {
            Some("an old-style entry named like a directory but carrying data".to_string())
        } else {
            None
        };
        let differential = match differential {
            Some(d) => Some(d),
            None => pax_problem(&mut entry).map_err(|e| format!("{path}: PAX header: {e}"))?,
        };
        if let Some(d) = differential {
            return Err(format!(
                "{shown}: tar entry parsed differently by containerd: {d}"
            ));
        }
        if et == tar::EntryType::XGlobalHeader {
            // Applies to nothing in Go's reader; containerd skips it.
            continue;
        }
        let link_target = match et {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                entry.link_name_bytes().map(|l| l.into_owned())
            }
            _ => None,
        };
        if link_target.as_deref().is_some_and(|l| l.contains(&0)) {
            return Err(format!(
                "{shown}: tar entry parsed differently by containerd: a link target with an embedded NUL byte"
            ));
        }
        let link_target = link_target.map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut kind = match et {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                EntryKind::File
            }
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::HardLink,
            _ => EntryKind::Other,
        };
        // Go promotes an old-style regular entry whose name ends in `/` to a directory.
        if raw_type == 0 && raw_path.ends_with(b"/") {
            kind = EntryKind::Dir;
        }
        if let Some(why) = problem {
            res.issues.push(Issue {
                level: IssueLevel::Error,
                image: image.to_string(),
                layer: Some(layer.digest.clone()),
                path: Some(shown.clone()),
                message: format!("{why}; containerd refuses or rewrites such entries, so the image is hostile or broken"),
            });
        }
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
            } else if !hidden.is_empty() {
                let target = if dir == "/" {
                    format!("/{hidden}")
                } else {
                    format!("{dir}/{hidden}")
                };
                res.index.whiteouts.insert(target);
            }
            continue;
        }
        if path == "/" && kind != EntryKind::Dir {
            // The root itself: containerd never replaces it with a non-directory.
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
            mode: entry.header().mode().unwrap_or(0),
            link_target: link_target.as_deref(),
            archive_chain: &[],
        };
        let wanted = kind == EntryKind::File && detectors.iter().any(|d| d.wants_content(&meta));
        let content = if wanted {
            buf.clear();
            let cap = limits.max_file_read as u64;
            (&mut entry)
                .take(cap)
                .read_to_end(&mut buf)
                .map_err(|e| format!("{path}: {e}"))?;
            if size > cap {
                *res.skipped.entry("file_truncated").or_default() += 1;
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
        let mut problems = Vec::new();
        for d in detectors {
            d.scan_entry(&meta, content, &mut res.findings, &mut problems);
        }
        // Archives in the layer: every member through the same detectors, the location
        // naming the chain. A file cut at `max_file_read` has lost a zip's directory (it
        // sits at the end), so it is not opened; that it was cut is reported above.
        if let Some(data) = content
            && size <= limits.max_file_read as u64
            && crate::nested::sniff(&path, data).is_some()
        {
            let stats =
                crate::nested::expand(&path, data, &limits.nested, &mut |chain, member, bytes| {
                    let member_meta = EntryMeta {
                        path: member,
                        kind: EntryKind::File,
                        size: bytes.len() as u64,
                        mode: 0o644,
                        link_target: None,
                        archive_chain: chain,
                        ..meta
                    };
                    let mut member_problems = Vec::new();
                    for d in detectors {
                        let wants = d.wants_content(&member_meta);
                        d.scan_entry(
                            &member_meta,
                            wants.then_some(bytes),
                            &mut res.findings,
                            &mut member_problems,
                        );
                    }
                    for m in member_problems {
                        problems.push(format!("{}: {m}", crate::nested::location(chain, member)));
                    }
                });
            for (key, n) in [
                ("nested_truncated", stats.truncated),
                ("nested_depth", stats.skipped_depth),
                ("nested_limit", stats.skipped_limit),
                ("nested_ratio", stats.stopped_ratio),
                ("nested_encrypted", stats.skipped_encrypted),
                ("nested_unsupported", stats.skipped_unsupported),
                ("nested_corrupt", stats.corrupt),
            ] {
                if n > 0 {
                    *res.skipped.entry(key).or_default() += n;
                }
            }
            res.nested_members += stats.members;
            for p in stats.problems {
                res.issues.push(Issue {
                    level: IssueLevel::Warning,
                    image: image.to_string(),
                    layer: Some(layer.digest.clone()),
                    path: Some(path.clone()),
                    message: format!("inside the archive: {p}"),
                });
            }
        }
        if !problems.is_empty() {
            *res.skipped.entry("detector_problem").or_default() += 1;
        }
        for message in problems {
            res.issues.push(Issue {
                level: IssueLevel::Error,
                image: image.to_string(),
                layer: Some(layer.digest.clone()),
                path: Some(path.clone()),
                message,
            });
        }
        // The tar reader skips what was not read when the next entry is requested.
    }
    Ok(())
}

/// PAX records Go would read differently from tar-rs: a repeated key (Go keeps the last,
/// tar-rs the first) or GNU sparse records (Go rewrites name and data).
fn pax_problem<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::io::Result<Option<String>> {
    let Some(exts) = entry.pax_extensions()? else {
        return Ok(None);
    };
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for ext in exts {
        let ext = ext?;
        let key = ext.key_bytes().to_vec();
        if key.starts_with(b"GNU.sparse.") {
            return Ok(Some("GNU sparse PAX records are not supported".into()));
        }
        if seen.contains(&key) {
            return Ok(Some(format!(
                "the PAX record {:?} appears twice",
                String::from_utf8_lossy(&key)
            )));
        }
        seen.push(key);
    }
    Ok(None)
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
