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
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct LayerIndex {
    /// Path → is a directory.
    pub entries: HashMap<String, bool>,
    /// Paths removed by `.wh.<name>` files.
    pub whiteouts: HashSet<String>,
    /// Directories made opaque by `.wh..wh..opq`.
    pub opaque: HashSet<String>,
}

/// Compression found by sniffing the blob's first bytes (media types can lie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Every reason a limit or a problem can keep a file from the detectors (the keys of
/// [`LayerResult::skipped`]).
pub const SKIP_REASONS: &[&str] = &[
    "file_truncated",
    "nested_truncated",
    "nested_depth",
    "nested_limit",
    "nested_ratio",
    "nested_encrypted",
    "nested_unsupported",
    "nested_corrupt",
    "detector_problem",
];

/// A layer walked to its end, in a form a store can keep and a later scan can reuse in
/// place of walking the same layer digest again (valid for one rules digest: the caller
/// keys it by both). Issues keep the name of the image the layer was first walked in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredLayer {
    pub index: LayerIndex,
    pub findings: Vec<Finding>,
    pub issues: Vec<Issue>,
    pub entries: u64,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub compression: Option<Compression>,
    pub symlinks: Vec<(String, String)>,
    pub skipped: std::collections::BTreeMap<String, u64>,
    pub nested_members: u64,
}

impl LayerResult {
    /// The storable form; `None` for a walk that stopped early (it must be redone).
    pub fn to_stored(&self) -> Option<StoredLayer> {
        if self.error.is_some() {
            return None;
        }
        Some(StoredLayer {
            index: self.index.clone(),
            findings: self.findings.clone(),
            issues: self.issues.clone(),
            entries: self.entries,
            compressed_bytes: self.compressed_bytes,
            uncompressed_bytes: self.uncompressed_bytes,
            compression: self.compression,
            symlinks: self.symlinks.clone(),
            skipped: self
                .skipped
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            nested_members: self.nested_members,
        })
    }

    /// Back from the stored form. A skip reason this version does not know (a store
    /// written by a newer one) is counted as `detector_problem`, not dropped.
    pub fn from_stored(s: StoredLayer) -> LayerResult {
        let mut skipped = std::collections::BTreeMap::new();
        for (k, v) in s.skipped {
            let key = SKIP_REASONS
                .iter()
                .find(|r| **r == k)
                .copied()
                .unwrap_or("detector_problem");
            *skipped.entry(key).or_default() += v;
        }
        LayerResult {
            index: s.index,
            findings: s.findings,
            issues: s.issues,
            entries: s.entries,
            compressed_bytes: s.compressed_bytes,
            uncompressed_bytes: s.uncompressed_bytes,
            compression: s.compression,
            symlinks: s.symlinks,
            error: None,
            skipped,
            nested_members: s.nested_members,
        }
    }
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

/// Slack allowed between one entry's data and the next yielded entry: the next header,
/// plus GNU long-name/long-link and PAX bodies, which the tar reader holds in memory.
/// Go's archive/tar (containerd) caps those bodies at 1 MiB too.
const META_SLACK: u64 = (1 << 20) + 4 * 512;

/// Counts uncompressed bytes, stops decompression bombs, and bounds how far the tar
/// reader may read past the data of the entry last handed out.
struct BombGuard {
    inner: Decoder,
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

impl BombGuard {
    /// The decompressed stream of `blob`: gzip, zstd or plain by its first bytes (media
    /// types can lie), counting bytes in and out against `limits`. The reader may not
    /// pass `window_end` in the decompressed stream.
    fn open(
        blob: Box<dyn Read + Send>,
        limits: &WalkLimits,
        window_end: Arc<AtomicU64>,
    ) -> Result<(Compression, BombGuard), String> {
        let compressed = Arc::new(AtomicU64::new(0));
        let mut raw = BufReader::with_capacity(
            256 << 10,
            Counting {
                inner: blob,
                count: compressed.clone(),
            },
        );
        let head = raw
            .fill_buf()
            .map_err(|e| format!("cannot read blob: {e}"))?;
        let (compression, inner) = if head.starts_with(&[0x1f, 0x8b]) {
            (
                Compression::Gzip,
                Decoder::Gzip(Box::new(MultiGzDecoder::new(raw))),
            )
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            let d = zstd::Decoder::with_buffer(raw).map_err(|e| format!("zstd: {e}"))?;
            (Compression::Zstd, Decoder::Zstd(Box::new(d)))
        } else {
            (Compression::None, Decoder::Plain(raw))
        };
        let guard = BombGuard {
            inner,
            compressed,
            out: Arc::new(AtomicU64::new(0)),
            window_end,
            limits: limits.clone(),
        };
        Ok((compression, guard))
    }
}

/// A layer blob as its tar stream, under the same size and ratio limits as the walk.
/// For consumers that need whole files (the sandbox's rootfs), not the detectors' view.
pub fn tar_stream(
    blob: Box<dyn Read + Send>,
    limits: &WalkLimits,
) -> std::io::Result<(Compression, Box<dyn Read + Send>)> {
    let (compression, guard) = BombGuard::open(blob, limits, Arc::new(AtomicU64::new(u64::MAX)))
        .map_err(std::io::Error::other)?;
    Ok((compression, Box::new(guard)))
}

/// Walk one layer: every entry to every detector, in one pass.
pub fn walk_layer(
    image: &str,
    layer: &Layer,
    blob: Box<dyn Read + Send>,
    detectors: &[Box<dyn Detector>],
    limits: &WalkLimits,
) -> LayerResult {
    walk_layer_parallel(image, layer, blob, detectors, limits, 0)
}

/// [`walk_layer`] using `spare_cores` more cores: that many helper threads run the
/// detectors over the files the walk reads, while the walk decompresses and reads on
/// (and scans a file itself when the helpers are all busy). For an image with fewer
/// layers than cores, or the last layers of a scan. The result is the same as
/// [`walk_layer`]'s, in the same order.
pub fn walk_layer_parallel(
    image: &str,
    layer: &Layer,
    blob: Box<dyn Read + Send>,
    detectors: &[Box<dyn Detector>],
    limits: &WalkLimits,
    spare_cores: usize,
) -> LayerResult {
    let layer_err = |message: String| crate::Error::Layer {
        image: image.to_string(),
        digest: layer.digest.clone(),
        message,
    };
    let blob: Box<dyn Read + Send> = match &layer.verify {
        Verify::Blob(d) => Box::new(VerifyingReader::new(
            blob,
            d,
            &format!("{image} layer {}", layer.index),
        )),
        _ => blob,
    };
    let failed = |e: crate::Error| LayerResult {
        error: Some(e),
        ..Default::default()
    };
    let window_end = Arc::new(AtomicU64::new(META_SLACK));
    let (compression, guard) = match BombGuard::open(blob, limits, window_end.clone()) {
        Ok(g) => g,
        Err(message) => return failed(layer_err(message)),
    };
    let (compressed, out) = (guard.compressed.clone(), guard.out.clone());
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
    let ctx = LayerCtx {
        image,
        layer,
        detectors,
        limits,
    };
    let walked = std::thread::scope(|s| {
        let (done_tx, done) = std::sync::mpsc::channel();
        let (mut jobs, mut queue) = (None, None);
        if spare_cores > 0 {
            let (tx, rx) = std::sync::mpsc::sync_channel::<FileJob>(64 * spare_cores);
            let rx = Arc::new(std::sync::Mutex::new(rx));
            for _ in 0..spare_cores {
                let (rx, done_tx) = (rx.clone(), done_tx.clone());
                let helper = move || {
                    while let Some(job) = next_job(&rx) {
                        let outcome = scan_file(ctx, &job);
                        if done_tx.send((job, outcome)).is_err() {
                            return;
                        }
                    }
                };
                // Without a thread, the walk scans those files itself.
                let _ = std::thread::Builder::new()
                    .name("canary-scan".into())
                    .spawn_scoped(s, helper);
            }
            jobs = Some(tx);
            queue = Some(rx);
        }
        drop(done_tx);
        let mut files = FileScans {
            ctx,
            jobs,
            queue,
            done,
            outcomes: Vec::new(),
            spare: Vec::new(),
            in_flight: 0,
        };
        let walked = walk_entries(
            &mut archive,
            image,
            layer,
            detectors,
            limits,
            &out,
            &window_end,
            &mut res,
            &mut files,
        );
        files.finish(&mut res);
        walked
    });
    if let Err(message) = walked {
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
        let mut raw = guard.inner.into_raw();
        std::io::copy(&mut raw, sink)?;
        Ok(())
    })();
    res.compressed_bytes = compressed.load(Ordering::Relaxed);
    res.uncompressed_bytes = out.load(Ordering::Relaxed);
    if let Err(e) = drained {
        res.error = Some(layer_err(format!("after the last entry: {e}")));
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
    files: &mut FileScans<'_>,
) -> Result<(), String> {
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

        let mode = entry.header().mode().unwrap_or(0);
        let meta = EntryMeta {
            layer_index: layer.index,
            layer_digest: &layer.digest,
            path: &path,
            kind,
            size,
            mode,
            link_target: link_target.as_deref(),
            archive_chain: &[],
        };
        let wanted = kind == EntryKind::File && detectors.iter().any(|d| d.wants_content(&meta));
        let content = if wanted {
            let mut buf = files.buffer();
            let cap = limits.max_file_read as u64;
            // The header's size, bounded by the read cap: one allocation instead of
            // `read_to_end` doubling (and copying) its way up a big file.
            buf.reserve(usize::try_from(size.min(cap)).unwrap_or(0));
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
            Some(buf)
        } else {
            None
        };
        files.submit(FileJob {
            seq: res.entries,
            path,
            kind,
            size,
            mode,
            link_target,
            content,
        });
        // The tar reader skips what was not read when the next entry is requested.
    }
    Ok(())
}

/// One entry's detector work, owned, so that another thread can do it.
struct FileJob {
    /// The entry's number in the layer: results are merged in this order.
    seq: u64,
    path: String,
    kind: EntryKind,
    size: u64,
    mode: u32,
    link_target: Option<String>,
    /// The bytes read for the content detectors, when one of them wanted them.
    content: Option<Vec<u8>>,
}

/// What the detectors made of one entry.
#[derive(Default)]
struct FileOutcome {
    findings: Vec<Finding>,
    issues: Vec<Issue>,
    skipped: std::collections::BTreeMap<&'static str, u64>,
    nested_members: u64,
}

/// What every entry of one layer shares.
#[derive(Clone, Copy)]
struct LayerCtx<'a> {
    image: &'a str,
    layer: &'a Layer,
    detectors: &'a [Box<dyn Detector>],
    limits: &'a WalkLimits,
}

/// Every detector over one entry, and over the members of an archive it is.
fn scan_file(ctx: LayerCtx<'_>, job: &FileJob) -> FileOutcome {
    let LayerCtx {
        image,
        layer,
        detectors,
        limits,
    } = ctx;
    let mut out = FileOutcome::default();
    let path = &job.path;
    let size = job.size;
    let content = job.content.as_deref();
    let meta = EntryMeta {
        layer_index: layer.index,
        layer_digest: &layer.digest,
        path,
        kind: job.kind,
        size,
        mode: job.mode,
        link_target: job.link_target.as_deref(),
        archive_chain: &[],
    };
    let mut problems = Vec::new();
    for d in detectors {
        d.scan_entry(&meta, content, &mut out.findings, &mut problems);
    }
    // Archives in the layer: every member through the same detectors, the location
    // naming the chain. A file cut at `max_file_read` has lost a zip's directory (it
    // sits at the end), so it is not opened; that it was cut is reported above.
    if let Some(data) = content
        && size <= limits.max_file_read as u64
        && crate::nested::sniff(path, data).is_some()
    {
        let stats =
            crate::nested::expand(path, data, &limits.nested, &mut |chain, member, bytes| {
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
                        &mut out.findings,
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
                *out.skipped.entry(key).or_default() += n;
            }
        }
        out.nested_members += stats.members;
        for p in stats.problems {
            out.issues.push(Issue {
                level: IssueLevel::Warning,
                image: image.to_string(),
                layer: Some(layer.digest.clone()),
                path: Some(path.clone()),
                message: format!("inside the archive: {p}"),
            });
        }
    }
    if !problems.is_empty() {
        *out.skipped.entry("detector_problem").or_default() += 1;
    }
    for message in problems {
        out.issues.push(Issue {
            level: IssueLevel::Error,
            image: image.to_string(),
            layer: Some(layer.digest.clone()),
            path: Some(path.clone()),
            message,
        });
    }
    out
}

/// The next queued file job, waiting for one; `None` once the queue is closed and empty
/// (or a taker panicked). The lock is held while waiting, by one idle taker at a time.
fn next_job(queue: &std::sync::Mutex<std::sync::mpsc::Receiver<FileJob>>) -> Option<FileJob> {
    queue.lock().ok()?.recv().ok()
}

/// Runs [`scan_file`] over a layer's entries: on the walking thread, and on helper
/// threads when the walk has spare cores. The results are merged in entry order either
/// way, so they do not depend on the threads.
struct FileScans<'a> {
    ctx: LayerCtx<'a>,
    /// Jobs for the helpers; `None` without helpers.
    jobs: Option<std::sync::mpsc::SyncSender<FileJob>>,
    /// The helpers' end of `jobs`, from which the walk takes its share once it has read
    /// the whole layer.
    queue: Option<Arc<std::sync::Mutex<std::sync::mpsc::Receiver<FileJob>>>>,
    /// Finished jobs from the helpers (their buffers come back with them).
    done: std::sync::mpsc::Receiver<(FileJob, FileOutcome)>,
    outcomes: Vec<(u64, FileOutcome)>,
    /// Content buffers of finished jobs, to read the next files into.
    spare: Vec<Vec<u8>>,
    /// Content bytes handed to the helpers and not back yet.
    in_flight: usize,
}

/// Most file bytes queued for or held by the helpers of one walk: a layer of big files
/// costs this much memory more, not a queue's worth of `max_file_read`.
const IN_FLIGHT_BYTES: usize = 64 << 20;
/// Buffers bigger than this are freed after use rather than kept for the next file.
const KEEP_BUFFER: usize = 1 << 20;

impl FileScans<'_> {
    fn collect(&mut self, job: FileJob, outcome: FileOutcome) {
        self.outcomes.push((job.seq, outcome));
        if let Some(mut b) = job.content
            && b.capacity() <= KEEP_BUFFER
        {
            b.clear();
            self.spare.push(b);
        }
    }

    fn collect_done(&mut self, job: FileJob, outcome: FileOutcome) {
        self.in_flight -= job.content.as_ref().map_or(0, Vec::len);
        self.collect(job, outcome);
    }

    /// An empty buffer for the next file's bytes.
    fn buffer(&mut self) -> Vec<u8> {
        while let Ok((job, outcome)) = self.done.try_recv() {
            self.collect_done(job, outcome);
        }
        self.spare.pop().unwrap_or_default()
    }

    fn submit(&mut self, job: FileJob) {
        use std::sync::mpsc::TrySendError;
        // Helpers take the entries with content (the costly ones). When they are busy
        // and their queue is full, or hold enough bytes, the walk scans the entry itself.
        let len = job.content.as_ref().map_or(0, Vec::len);
        let job = match &self.jobs {
            Some(tx) if job.content.is_some() && self.in_flight + len <= IN_FLIGHT_BYTES => {
                match tx.try_send(job) {
                    Ok(()) => {
                        self.in_flight += len;
                        return;
                    }
                    Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => job,
                }
            }
            _ => job,
        };
        let outcome = scan_file(self.ctx, &job);
        self.collect(job, outcome);
    }

    /// Wait for the helpers and add every entry's results to `res`, in entry order.
    fn finish(mut self, res: &mut LayerResult) {
        // Closing the queue ends the helpers once it is empty, and `done` with them.
        self.jobs = None;
        // The walk scans queued files beside the helpers rather than wait for them to
        // empty the queue (up to `IN_FLIGHT_BYTES` of files) on fewer cores.
        if let Some(queue) = self.queue.take() {
            while let Some(job) = next_job(&queue) {
                let outcome = scan_file(self.ctx, &job);
                self.collect_done(job, outcome);
            }
        }
        while let Ok((job, outcome)) = self.done.recv() {
            self.collect_done(job, outcome);
        }
        self.outcomes.sort_by_key(|(seq, _)| *seq);
        for (_, o) in self.outcomes {
            res.findings.extend(o.findings);
            res.issues.extend(o.issues);
            for (k, n) in o.skipped {
                *res.skipped.entry(k).or_default() += n;
            }
            res.nested_members += o.nested_members;
        }
    }
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
