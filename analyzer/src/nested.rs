//! Archives inside image files: zip (jar, war, ear, whl, egg, Android apk, nupkg, docx…),
//! tar, gzip and zstd, and their tar combinations, expanded in memory so detectors can see
//! the members. [`expand`] takes one file's path and bytes and hands every member to a
//! visitor with its location chain, recursing into members that are archives themselves.
//!
//! Nothing is written to disk and no member's declared size is trusted: every read is
//! capped, every decompressing stream is watched for its ratio, and one outer file may make
//! us decompress and hand out at most [`NestedLimits::max_total_bytes`]. What was cut short
//! or left out is counted in [`NestedStats`], with a bounded list of problems that name the
//! chain (`/app/app.jar!/BOOT-INF/lib/x.jar: …`).
//!
//! How members are treated:
//! - Every regular member is visited, archives included (rules that match raw archive
//!   bytes still see them); then, if it sniffs as an archive and the depth allows, it is
//!   expanded. The outer file's archive is depth 1.
//! - A member larger than `max_member_size` is visited with its first `max_member_size`
//!   bytes (as the layer walk does with large files), counted in `truncated`, and not
//!   expanded. A member stopped by the ratio guard or by corrupt data is likewise visited
//!   with what was read (if anything) and not expanded. Members past the member or byte
//!   budget are not visited at all.
//! - Zip members: stored and deflated only; the zip crate parses the directory and
//!   flate2 inflates, so the compressed bytes consumed are counted exactly. Encrypted
//!   members and other methods are counted, not read. Names are shown raw (lossy UTF-8),
//!   `..` and absolute names included: members are data here, never extracted.
//! - Tar: regular files only; links, directories and devices are skipped silently.

use flate2::read::{DeflateDecoder, MultiGzDecoder};
use std::cell::Cell;
use std::io::{self, Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// Bounds on what expanding one outer file may make us do.
#[derive(Debug, Clone)]
pub struct NestedLimits {
    /// Deepest archive opened; the outer file's archive is depth 1.
    pub max_depth: usize,
    /// Most bytes of one member read into memory; a larger member is visited with this
    /// prefix and not expanded.
    pub max_member_size: u64,
    /// Most bytes decompressed, and separately most bytes handed to the visitor, while
    /// expanding one outer file (all depths together).
    pub max_total_bytes: u64,
    /// Most members handed to the visitor per outer file (all depths together). Zip
    /// directories loaded may list at most twice as many entries in all, so loading
    /// directories is bounded too.
    pub max_members: usize,
    /// Largest decompressed/compressed ratio of one stream (a zip member, a gzip or zstd
    /// file), checked once `ratio_grace` bytes came out of it.
    pub max_ratio: u64,
    pub ratio_grace: u64,
}

impl Default for NestedLimits {
    fn default() -> Self {
        NestedLimits {
            max_depth: 3,
            // As much of a member as the layer walk reads of a file (`max_file_read`).
            max_member_size: 32 << 20,
            // An outer file is at most 32 MiB (the walk's read cap); a 32 MiB jar of
            // classes inflates 2–4 times, and jars in a fat jar are stored, so real inputs
            // stay well under this while a bomb is cut off after a fraction of a second.
            max_total_bytes: 256 << 20,
            // A Spring Boot fat jar with its libraries holds tens of thousands of entries;
            // members cost little beyond their bytes, which `max_total_bytes` bounds.
            max_members: 50_000,
            // Deflate cannot exceed about 1030:1 and real files rarely pass 20:1; past 1 MiB
            // only runs of zeros or bombs reach 100:1 (and even then the first part of
            // the member is visited).
            max_ratio: 100,
            ratio_grace: 1 << 20,
        }
    }
}

/// Container formats [`expand`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Zip,
    Tar,
    Gzip,
    TarGzip,
    Zstd,
    TarZstd,
}

/// What happened while expanding one outer file.
#[derive(Default, Debug)]
pub struct NestedStats {
    /// Members handed to the visitor.
    pub members: u64,
    /// Bytes handed to the visitor.
    pub bytes: u64,
    /// Bytes that came out of decompressors (gzip, zstd, deflate), skipped data included.
    pub decompressed: u64,
    /// Members over `max_member_size`: visited with their first `max_member_size` bytes.
    pub truncated: u64,
    /// Archives not opened because of `max_depth` (they were visited as bytes).
    pub skipped_depth: u64,
    /// Left out because a limit was reached: when `max_members`, `max_total_bytes` or the
    /// zip-directory budget ran out, the member at hand plus the rest of each open zip's
    /// directory (the rest of a tar stream is not read to count it); and zips with too
    /// large a directory to load.
    pub skipped_limit: u64,
    /// Streams (a zip member, a gzip or zstd file) stopped by the ratio guard: a bomb. What
    /// came out before was visited.
    pub stopped_ratio: u64,
    /// Encrypted zip members.
    pub skipped_encrypted: u64,
    /// Zip members with a compression method other than stored or deflated.
    pub skipped_unsupported: u64,
    /// Archives that could not be opened and members or streams that ended in corrupt or
    /// truncated data (what was read before was visited).
    pub corrupt: u64,
    /// What went wrong, naming the chain: at most [`MAX_PROBLEMS`], plus the line saying
    /// the expansion stopped at a limit, which is always kept.
    pub problems: Vec<String>,
    /// Problems beyond [`MAX_PROBLEMS`], counted only.
    pub problems_dropped: u64,
}

/// Most problem lines kept per outer file.
pub const MAX_PROBLEMS: usize = 20;

/// Zips whose bytes hold more central-directory signatures than this are not opened: the
/// zip crate loads the whole directory (about 200 bytes and 3.5 µs per entry), and a real
/// archive of at most `max_member_size` bytes has far fewer entries.
const MAX_ZIP_ENTRIES: usize = 100_000;

/// Largest zstd window accepted: 16 MiB, enough for every level up to 19. Frames asking
/// for more (`--ultra`, `--long`) are reported as corrupt instead of having the decoder
/// allocate up to its default 128 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Slack allowed between one tar entry's data and the next yielded entry (the next
/// header and GNU long-name or PAX bodies, which the tar reader holds in memory); as in
/// the layer walk.
const TAR_META_SLACK: u64 = (1 << 20) + 4 * 512;

/// Extensions of zip-based formats: files with one of these and a zip end-of-directory
/// record but no `PK` at offset 0 (a jar with a launch script in front) are opened too.
const ZIP_EXTENSIONS: &[&str] = &[
    ".zip", ".jar", ".war", ".ear", ".whl", ".egg", ".apk", ".nupkg", ".aar",
];

/// `a!/b!/c`: where a member sits, from the outer file inward.
pub fn location(chain: &[String], member: &str) -> String {
    let mut s = chain.join("!/");
    if !member.is_empty() {
        s.push_str("!/");
        s.push_str(member);
    }
    s
}

/// Sniff an archive by magic bytes first, extension second; `None` for anything else.
///
/// Zip by `PK\x03\x04` or `PK\x05\x06` at offset 0 (so a self-extracting ELF is not a zip,
/// and docx/xlsx/odt are); gzip and zstd by magic, with the first decompressed block
/// checked for a tar header; tar by `ustar` at offset 257 with a valid header checksum.
/// By extension: `.tar` whose first header checksums (pre-POSIX tar), and zip-based
/// extensions with an end-of-directory record near the end.
pub fn sniff(path: &str, data: &[u8]) -> Option<ArchiveKind> {
    if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        return Some(ArchiveKind::Zip);
    }
    if data.starts_with(&[0x1f, 0x8b]) {
        let head = head_of(MultiGzDecoder::new(data));
        return Some(if is_tar(&head, true) {
            ArchiveKind::TarGzip
        } else {
            ArchiveKind::Gzip
        });
    }
    if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let head = zstd_decoder(data).map(head_of).unwrap_or_default();
        return Some(if is_tar(&head, true) {
            ArchiveKind::TarZstd
        } else {
            ArchiveKind::Zstd
        });
    }
    if is_tar(data, true) {
        return Some(ArchiveKind::Tar);
    }
    let name = base_name(path).to_ascii_lowercase();
    if name.ends_with(".tar") && is_tar(data, false) {
        return Some(ArchiveKind::Tar);
    }
    if ZIP_EXTENSIONS.iter().any(|e| name.ends_with(e)) {
        let tail = &data[data.len().saturating_sub(22 + 0xffff)..];
        if memchr::memmem::rfind(tail, b"PK\x05\x06").is_some() {
            return Some(ArchiveKind::Zip);
        }
    }
    None
}

/// The first 512 decompressed bytes (fewer if the stream is short or broken).
fn head_of(r: impl Read) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    let _ = r.take(512).read_to_end(&mut head);
    head
}

/// A tar header block: checksum valid and, if `ustar`, the POSIX/GNU magic present.
fn is_tar(block: &[u8], ustar: bool) -> bool {
    let Some(block) = block.get(..512) else {
        return false;
    };
    if ustar && &block[257..262] != b"ustar" {
        return false;
    }
    let field = &block[148..156];
    let digits = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(u8::is_ascii_digit);
    let mut declared: u32 = 0;
    let mut any = false;
    for d in digits {
        if d > b'7' {
            return false;
        }
        any = true;
        declared = declared * 8 + u32::from(d - b'0');
    }
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    // An all-zero block sums to 256 (the spaces) but declares nothing.
    any && declared == sum
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The member a plain `.gz`/`.zst` file holds: its name without the compression suffix.
fn inner_name(path: &str) -> String {
    let base = base_name(path);
    let lower = base.to_ascii_lowercase();
    for (suffix, replacement) in [
        (".tgz", ".tar"),
        (".tzst", ".tar"),
        (".gz", ""),
        (".zstd", ""),
        (".zst", ""),
    ] {
        if lower.len() > suffix.len() && lower.ends_with(suffix) {
            return format!("{}{replacement}", &base[..base.len() - suffix.len()]);
        }
    }
    base.to_string()
}

fn zstd_decoder<R: Read>(r: R) -> io::Result<zstd::Decoder<'static, io::BufReader<R>>> {
    let mut d = zstd::Decoder::new(r)?;
    d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
    Ok(d)
}

/// What [`expand`] calls for each member: (archive chain, member name, member bytes).
pub type Visitor<'v> = dyn FnMut(&[String], &str, &[u8]) + 'v;

/// Visit every member of `data` (the bytes of the file at `path`), recursing into members
/// that are archives. The visitor gets the chain of archive paths from the outer file
/// inward (`["/app/app.jar", "BOOT-INF/lib/inner.jar"]`), the member's raw name inside the
/// innermost one, and its bytes. Returns empty stats if `data` is not an archive.
///
/// Never panics on any input (a panic inside a decoder becomes a problem line; one in the
/// visitor is passed on), never holds more than about `max_member_size` per depth level
/// plus decoder state, never writes to disk.
pub fn expand(
    path: &str,
    data: &[u8],
    limits: &NestedLimits,
    visit: &mut Visitor<'_>,
) -> NestedStats {
    let Some(kind) = sniff(path, data) else {
        return NestedStats::default();
    };
    let budget = Budget {
        decompressed: Cell::new(0),
        limit: limits.max_total_bytes,
    };
    let mut x = Expander {
        limits,
        budget: &budget,
        stats: NestedStats::default(),
        chain: vec![path.to_string()],
        bufs: vec![Vec::new(); limits.max_depth],
        listed: 0,
        done: false,
        in_visitor: false,
        visit,
    };
    if limits.max_depth == 0 {
        x.stats.skipped_depth = 1;
        return x.stats;
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| x.archive(kind, data, 1)));
    if let Err(payload) = outcome {
        if x.in_visitor {
            resume_unwind(payload);
        }
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = location(&x.chain, "");
        x.problem(format!("{at}: decoder panicked (a bug): {what}"));
        x.stats.corrupt += 1;
    }
    x.stats.decompressed = budget.decompressed.get();
    x.stats
}

/// Decompressed bytes across the whole expansion, shared by every guarded stream.
struct Budget {
    decompressed: Cell<u64>,
    limit: u64,
}

/// Why a guarded stream refused to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Ratio,
    Budget,
    TarMetadata,
}

/// The state of one stream: how far it got, what it consumed, where a tar reader may go.
struct StreamState {
    out: Cell<u64>,
    compressed: Cell<u64>,
    window_end: Cell<u64>,
    stop: Cell<Option<Stop>>,
}

impl StreamState {
    fn new() -> Self {
        StreamState {
            out: Cell::new(0),
            compressed: Cell::new(0),
            window_end: Cell::new(u64::MAX),
            stop: Cell::new(None),
        }
    }
}

/// Counts the compressed bytes a decoder pulls in.
struct Counting<'s, R> {
    inner: R,
    count: &'s Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// Counts what comes out of a stream; for decompressors, charges the budget and stops
/// bombs; for tar streams, keeps the reader within the current entry's window.
struct Guard<'s, R> {
    inner: R,
    state: &'s StreamState,
    /// `Some` for decompressed streams: the shared budget and (max ratio, grace).
    decompressing: Option<(&'s Budget, u64, u64)>,
}

impl<R: Read> Read for Guard<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let st = self.state;
        if let Some(stop) = st.stop.get() {
            return Err(io::Error::other(format!(
                "stream stopped earlier ({stop:?})"
            )));
        }
        let out = st.out.get();
        let end = st.window_end.get();
        if out >= end {
            st.stop.set(Some(Stop::TarMetadata));
            return Err(io::Error::other(format!(
                "tar metadata (long name or PAX header) larger than {TAR_META_SLACK} bytes"
            )));
        }
        let mut room = (end - out).min(buf.len() as u64);
        // Never decompress past the budget, so it is a true bound; with nothing left, one
        // byte is asked for to tell the end of the stream from more data.
        let left = self
            .decompressing
            .map(|(budget, ..)| budget.limit.saturating_sub(budget.decompressed.get()));
        if let Some(left) = left {
            room = room.min(left.max(1));
        }
        let n = self.inner.read(&mut buf[..room as usize])?;
        if let (Some(left), Some((budget, ..))) = (left, self.decompressing)
            && n as u64 > left
        {
            st.stop.set(Some(Stop::Budget));
            return Err(io::Error::other(format!(
                "more than {} bytes decompressed (limit)",
                budget.limit
            )));
        }
        let out = out + n as u64;
        st.out.set(out);
        if let Some((budget, max_ratio, grace)) = self.decompressing {
            budget
                .decompressed
                .set(budget.decompressed.get() + n as u64);
            let c = st.compressed.get().max(1);
            if out > grace && out / c > max_ratio {
                st.stop.set(Some(Stop::Ratio));
                return Err(io::Error::other(format!(
                    "decompression bomb: {out} bytes from {c} compressed (ratio over {max_ratio}:1)"
                )));
            }
        }
        Ok(n)
    }
}

impl<'s, R: Read> Guard<'s, R> {
    fn plain(inner: R, state: &'s StreamState) -> Self {
        Guard {
            inner,
            state,
            decompressing: None,
        }
    }
}

/// How reading one member ended.
enum Outcome {
    Complete,
    Truncated,
    Stopped(Stop, io::Error),
    Corrupt(io::Error),
}

/// Read at most `limit + 1` bytes into `buf`, growing it no further than that, so a
/// member's claimed size never decides an allocation.
fn read_member(r: &mut dyn Read, limit: u64, buf: &mut Vec<u8>, st: &StreamState) -> Outcome {
    buf.clear();
    let want = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut chunk = [0u8; 16 << 10];
    loop {
        let room = (want - buf.len()).min(chunk.len());
        if room == 0 {
            buf.truncate(want - 1);
            return Outcome::Truncated;
        }
        let n = match r.read(&mut chunk[..room]) {
            Ok(0) => return Outcome::Complete,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return match st.stop.get() {
                    Some(stop) => Outcome::Stopped(stop, e),
                    None => Outcome::Corrupt(e),
                };
            }
        };
        if buf.len() + n > buf.capacity() {
            let grown = buf
                .capacity()
                .saturating_mul(2)
                .max(buf.len() + n)
                .min(want);
            buf.reserve_exact(grown - buf.len());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Expander<'a, 'v> {
    limits: &'a NestedLimits,
    budget: &'a Budget,
    stats: NestedStats,
    /// Archive paths from the outer file to the one being expanded.
    chain: Vec<String>,
    /// One member buffer per depth, reused.
    bufs: Vec<Vec<u8>>,
    /// Entries in the zip directories loaded so far.
    listed: u64,
    /// A member or byte budget ran out: everything stops.
    done: bool,
    in_visitor: bool,
    visit: &'v mut Visitor<'v>,
}

/// Whether the archive being read can go on with its next member.
#[derive(PartialEq, Eq)]
enum Next {
    Continue,
    Stop,
}

impl<'a> Expander<'a, '_> {
    fn problem(&mut self, message: String) {
        if self.stats.problems.len() < MAX_PROBLEMS {
            self.stats.problems.push(message);
        } else {
            self.stats.problems_dropped += 1;
        }
    }

    fn here(&self, member: &str) -> String {
        location(&self.chain, member)
    }

    fn guard<'s, R: Read>(&self, inner: R, state: &'s StreamState) -> Guard<'s, R>
    where
        'a: 's,
    {
        Guard {
            inner,
            state,
            decompressing: Some((self.budget, self.limits.max_ratio, self.limits.ratio_grace)),
        }
    }

    /// Whether one more member may be read; if not, stop everything and say why once.
    fn room_for_member(&mut self) -> bool {
        if self.done {
            return false;
        }
        let limit = self.limits.max_total_bytes;
        let why = if self.stats.members >= self.limits.max_members as u64 {
            format!("{} members", self.limits.max_members)
        } else if self.stats.bytes >= limit || self.budget.decompressed.get() >= limit {
            format!("{limit} bytes")
        } else {
            return true;
        };
        self.exhausted(why);
        false
    }

    fn exhausted(&mut self, why: String) {
        self.done = true;
        // Kept even when the list is full: it says the expansion is incomplete.
        self.stats.problems.push(format!(
            "{}: expansion stopped at the limit of {why}; later members were not scanned",
            self.chain[0]
        ));
    }

    /// Open the archive `data`, the member at the end of `self.chain`, at `depth`.
    fn archive(&mut self, kind: ArchiveKind, data: &[u8], depth: usize) {
        let st = StreamState::new();
        match kind {
            ArchiveKind::Zip => self.zip(data, depth),
            ArchiveKind::Tar => self.tar(Guard::plain(data, &st), &st, depth),
            ArchiveKind::TarGzip => {
                let dec = MultiGzDecoder::new(Counting {
                    inner: data,
                    count: &st.compressed,
                });
                self.tar(self.guard(dec, &st), &st, depth);
            }
            ArchiveKind::Gzip => {
                let dec = MultiGzDecoder::new(Counting {
                    inner: data,
                    count: &st.compressed,
                });
                self.single(self.guard(dec, &st), &st, depth);
            }
            ArchiveKind::Zstd | ArchiveKind::TarZstd => {
                let dec = match zstd_decoder(Counting {
                    inner: data,
                    count: &st.compressed,
                }) {
                    Ok(d) => d,
                    Err(e) => {
                        self.stats.corrupt += 1;
                        self.problem(format!("{}: zstd: {e}", self.here("")));
                        return;
                    }
                };
                if kind == ArchiveKind::TarZstd {
                    self.tar(self.guard(dec, &st), &st, depth);
                } else {
                    self.single(self.guard(dec, &st), &st, depth);
                }
            }
        }
    }

    /// A plain `.gz` or `.zst`: one member named after the file.
    fn single(&mut self, mut reader: impl Read, st: &StreamState, depth: usize) {
        let name = inner_name(self.chain.last().expect("the chain holds the outer file"));
        if !self.room_for_member() {
            self.stats.skipped_limit += 1;
            return;
        }
        let mut buf = std::mem::take(&mut self.bufs[depth - 1]);
        let outcome = read_member(&mut reader, self.limits.max_member_size, &mut buf, st);
        self.member(&name, outcome, &buf, depth, None);
        self.bufs[depth - 1] = buf;
    }

    fn tar(&mut self, reader: impl Read, st: &StreamState, depth: usize) {
        st.window_end.set(TAR_META_SLACK);
        let mut archive = tar::Archive::new(reader);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => {
                self.stream_failed(st, "", format!("not a tar stream: {e}"));
                return;
            }
        };
        let mut last = String::new();
        for entry in entries {
            if self.done {
                return;
            }
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let after = if last.is_empty() {
                        String::new()
                    } else {
                        format!(" after {last}")
                    };
                    self.stream_failed(st, "", format!("tar{after}: {e}"));
                    return;
                }
            };
            let size = entry.size();
            st.window_end.set(
                st.out
                    .get()
                    .saturating_add(size.div_ceil(512).saturating_mul(512))
                    .saturating_add(TAR_META_SLACK),
            );
            let raw_name = entry.path_bytes();
            last = String::from_utf8_lossy(&raw_name).into_owned();
            let dir_like = raw_name.ends_with(b"/");
            let raw_type = entry.header().as_bytes()[156];
            // An old-style regular entry named like a directory is one (as in Go's reader).
            let regular = matches!(
                entry.header().entry_type(),
                tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
            ) && !(raw_type == 0 && dir_like);
            if !regular {
                continue;
            }
            if !self.room_for_member() {
                self.stats.skipped_limit += 1;
                return;
            }
            let mut buf = std::mem::take(&mut self.bufs[depth - 1]);
            let outcome = read_member(&mut entry, self.limits.max_member_size, &mut buf, st);
            let next = self.member(&last, outcome, &buf, depth, None);
            self.bufs[depth - 1] = buf;
            if next == Next::Stop {
                return;
            }
        }
    }

    /// A stream failed outside a member's data (a header, skipped data, the decoder).
    fn stream_failed(&mut self, st: &StreamState, member: &str, message: String) {
        let at = self.here(member);
        match st.stop.get() {
            Some(Stop::Budget) => {
                self.stats.skipped_limit += 1;
                if !self.done {
                    let limit = self.limits.max_total_bytes;
                    self.exhausted(format!("{limit} bytes"));
                }
            }
            Some(Stop::Ratio) => {
                self.stats.stopped_ratio += 1;
                self.problem(format!("{at}: {message}"));
            }
            Some(Stop::TarMetadata) | None => {
                self.stats.corrupt += 1;
                self.problem(format!("{at}: {message}"));
            }
        }
    }

    fn zip(&mut self, data: &[u8], depth: usize) {
        let entries = memchr::memmem::find_iter(data, b"PK\x01\x02").count();
        if entries > MAX_ZIP_ENTRIES {
            self.stats.skipped_limit += 1;
            self.problem(format!(
                "{}: zip directory may hold {entries} entries, over {MAX_ZIP_ENTRIES}; not opened",
                self.here("")
            ));
            return;
        }
        let max_listed = (self.limits.max_members as u64).saturating_mul(2);
        if self.listed >= max_listed {
            self.stats.skipped_limit += 1;
            self.exhausted(format!("{max_listed} zip directory entries"));
            return;
        }
        let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
            Ok(a) => a,
            Err(e) => {
                self.stats.corrupt += 1;
                self.problem(format!("{}: unreadable zip: {e}", self.here("")));
                return;
            }
        };
        self.listed += archive.len() as u64;
        if archive.has_duplicate_names() {
            self.problem(format!(
                "{}: several entries share a name; only one of each is readable here, and \
                 tools disagree on which one counts",
                self.here("")
            ));
        }
        if archive.has_overlapping_files().unwrap_or(false) {
            self.problem(format!(
                "{}: entries share compressed data (an overlapping-file zip bomb); \
                 read within the limits",
                self.here("")
            ));
        }
        let count = archive.len();
        for i in 0..count {
            if !self.room_for_member() {
                self.stats.skipped_limit += (count - i) as u64;
                return;
            }
            let name = match archive.by_index_data(i) {
                Ok(entry) => String::from_utf8_lossy(entry.name_raw()).into_owned(),
                Err(_) => format!("(entry {i})"),
            };
            let mut file = match archive.by_index_raw(i) {
                Ok(f) => f,
                Err(e) => {
                    self.stats.corrupt += 1;
                    self.problem(format!("{}: {e}", self.here(&name)));
                    continue;
                }
            };
            if file.is_dir() || file.is_symlink() {
                continue;
            }
            if file.encrypted() {
                self.stats.skipped_encrypted += 1;
                continue;
            }
            let declared = (file.size(), file.crc32());
            let method = file.compression();
            let st = StreamState::new();
            let mut buf = std::mem::take(&mut self.bufs[depth - 1]);
            let limit = self.limits.max_member_size;
            let outcome = if method == zip::CompressionMethod::STORE {
                read_member(&mut file, limit, &mut buf, &st)
            } else if method == zip::CompressionMethod::DEFLATE {
                let dec = DeflateDecoder::new(Counting {
                    inner: &mut file,
                    count: &st.compressed,
                });
                read_member(&mut self.guard(dec, &st), limit, &mut buf, &st)
            } else {
                self.stats.skipped_unsupported += 1;
                self.bufs[depth - 1] = buf;
                continue;
            };
            drop(file);
            let next = self.member(&name, outcome, &buf, depth, Some(declared));
            self.bufs[depth - 1] = buf;
            if next == Next::Stop {
                self.stats.skipped_limit += (count - i - 1) as u64;
                return;
            }
        }
    }

    /// Account for one member read into `buf`, visit it, and expand it if it is an archive.
    /// `declared` is a zip member's (size, CRC-32), checked when it was read whole.
    fn member(
        &mut self,
        name: &str,
        outcome: Outcome,
        buf: &[u8],
        depth: usize,
        declared: Option<(u64, u32)>,
    ) -> Next {
        // `whole`: read to its end; `broken`: a stream that failed part-way, which can give
        // nothing more (a zip's other members are independent and go on).
        let (whole, broken) = match outcome {
            Outcome::Complete => (true, false),
            Outcome::Truncated => {
                self.stats.truncated += 1;
                (false, false)
            }
            Outcome::Stopped(Stop::Budget, _) => {
                self.stats.skipped_limit += 1;
                if !self.done {
                    let limit = self.limits.max_total_bytes;
                    self.exhausted(format!("{limit} bytes"));
                }
                return Next::Stop;
            }
            Outcome::Stopped(Stop::Ratio, e) => {
                self.stats.stopped_ratio += 1;
                self.problem(format!("{}: {e}", self.here(name)));
                (false, true)
            }
            Outcome::Stopped(Stop::TarMetadata, e) | Outcome::Corrupt(e) => {
                self.stats.corrupt += 1;
                self.problem(format!("{}: {e}", self.here(name)));
                (false, true)
            }
        };
        if whole && let Some((size, crc)) = declared {
            if buf.len() as u64 != size {
                self.problem(format!(
                    "{}: zip directory says {size} bytes, the data holds {}",
                    self.here(name),
                    buf.len()
                ));
            } else if crc32fast::hash(buf) != crc {
                self.problem(format!(
                    "{}: CRC-32 does not match the zip directory",
                    self.here(name)
                ));
            }
        }
        let next = if broken && declared.is_none() {
            Next::Stop
        } else {
            Next::Continue
        };
        if !whole && buf.is_empty() {
            return next;
        }
        let limit = self.limits.max_total_bytes;
        if self.stats.bytes.saturating_add(buf.len() as u64) > limit {
            self.stats.skipped_limit += 1;
            self.exhausted(format!("{limit} bytes"));
            return Next::Stop;
        }
        self.stats.members += 1;
        self.stats.bytes += buf.len() as u64;
        self.in_visitor = true;
        (self.visit)(&self.chain, name, buf);
        self.in_visitor = false;
        if whole && let Some(kind) = sniff(name, buf) {
            if depth < self.limits.max_depth {
                self.chain.push(name.to_string());
                self.archive(kind, buf, depth + 1);
                self.chain.pop();
            } else {
                self.stats.skipped_depth += 1;
            }
        }
        if self.done { Next::Stop } else { next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    const MARKER: &[u8] = b"CANARY-NESTED-MARKER-7f3a";

    /// One visitor call, with the bytes kept when small.
    #[derive(Debug)]
    struct Visit {
        chain: Vec<String>,
        member: String,
        len: usize,
        marker: bool,
    }

    fn run(path: &str, data: &[u8], limits: &NestedLimits) -> (Vec<Visit>, NestedStats) {
        let mut visits = Vec::new();
        let stats = expand(path, data, limits, &mut |chain, member, bytes| {
            visits.push(Visit {
                chain: chain.to_vec(),
                member: member.to_string(),
                len: bytes.len(),
                marker: memchr::memmem::find(bytes, MARKER).is_some(),
            });
        });
        (visits, stats)
    }

    fn find<'v>(visits: &'v [Visit], member: &str) -> &'v Visit {
        visits
            .iter()
            .find(|v| v.member == member)
            .unwrap_or_else(|| panic!("{member} not visited: {visits:#?}"))
    }

    fn strings(chain: &[&str]) -> Vec<String> {
        chain.iter().map(|s| s.to_string()).collect()
    }

    // ---- builders -------------------------------------------------------------------

    #[derive(Clone, Copy)]
    enum Method {
        Stored,
        Deflated,
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write to a Vec");
        e.finish().expect("write to a Vec")
    }

    /// A minimal zip writer, so tests can set flags, methods and offsets a real writer
    /// would refuse.
    struct ZipBuilder {
        out: Vec<u8>,
        cd: Vec<u8>,
        entries: usize,
    }

    impl ZipBuilder {
        fn new() -> Self {
            ZipBuilder {
                out: Vec::new(),
                cd: Vec::new(),
                entries: 0,
            }
        }

        fn add(mut self, name: &str, data: &[u8], method: Method) -> Self {
            self.add_flagged(name, data, method, 0);
            self
        }

        fn add_flagged(&mut self, name: &str, data: &[u8], method: Method, flags: u16) {
            let (code, payload) = match method {
                Method::Stored => (0, data.to_vec()),
                Method::Deflated => (8, deflate(data)),
            };
            let crc = crc32fast::hash(data);
            self.add_raw(name, code, flags, crc, data.len() as u32, &payload);
        }

        /// A member whose payload is given as is; returns its local header's offset.
        fn add_raw(
            &mut self,
            name: &str,
            method: u16,
            flags: u16,
            crc: u32,
            size: u32,
            payload: &[u8],
        ) -> u32 {
            let offset = self.out.len() as u32;
            let o = &mut self.out;
            o.extend_from_slice(b"PK\x03\x04");
            o.extend_from_slice(&20u16.to_le_bytes());
            o.extend_from_slice(&flags.to_le_bytes());
            o.extend_from_slice(&method.to_le_bytes());
            o.extend_from_slice(&[0, 0, 0x21, 0]); // 1980-01-01 00:00
            o.extend_from_slice(&crc.to_le_bytes());
            o.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            o.extend_from_slice(&size.to_le_bytes());
            o.extend_from_slice(&(name.len() as u16).to_le_bytes());
            o.extend_from_slice(&0u16.to_le_bytes());
            o.extend_from_slice(name.as_bytes());
            o.extend_from_slice(payload);
            self.directory_entry(name, method, flags, crc, payload.len() as u32, size, offset);
            offset
        }

        #[allow(clippy::too_many_arguments)]
        fn directory_entry(
            &mut self,
            name: &str,
            method: u16,
            flags: u16,
            crc: u32,
            csize: u32,
            size: u32,
            offset: u32,
        ) {
            let c = &mut self.cd;
            c.extend_from_slice(b"PK\x01\x02");
            c.extend_from_slice(&0x0314u16.to_le_bytes()); // made by unix, 2.0
            c.extend_from_slice(&20u16.to_le_bytes());
            c.extend_from_slice(&flags.to_le_bytes());
            c.extend_from_slice(&method.to_le_bytes());
            c.extend_from_slice(&[0, 0, 0x21, 0]);
            c.extend_from_slice(&crc.to_le_bytes());
            c.extend_from_slice(&csize.to_le_bytes());
            c.extend_from_slice(&size.to_le_bytes());
            c.extend_from_slice(&(name.len() as u16).to_le_bytes());
            c.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
            c.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
            c.extend_from_slice(&offset.to_le_bytes());
            c.extend_from_slice(name.as_bytes());
            self.entries += 1;
        }

        fn finish(self) -> Vec<u8> {
            let mut o = self.out;
            let cd_offset = o.len() as u32;
            o.extend_from_slice(&self.cd);
            o.extend_from_slice(b"PK\x05\x06");
            o.extend_from_slice(&[0; 4]);
            let entries = u16::try_from(self.entries).expect("at most 65,535 entries");
            o.extend_from_slice(&entries.to_le_bytes());
            o.extend_from_slice(&entries.to_le_bytes());
            o.extend_from_slice(&(self.cd.len() as u32).to_le_bytes());
            o.extend_from_slice(&cd_offset.to_le_bytes());
            o.extend_from_slice(&0u16.to_le_bytes());
            o
        }
    }

    /// A zip made by the zip crate's own writer (stored members).
    fn real_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, data) in members {
            w.start_file(*name, options).expect("zip writer");
            w.write_all(data).expect("zip writer");
        }
        w.finish().expect("zip writer").into_inner()
    }

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).expect("tar to a Vec");
        }
        b.into_inner().expect("tar to a Vec")
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write to a Vec");
        e.finish().expect("write to a Vec")
    }

    fn zst(data: &[u8]) -> Vec<u8> {
        zstd::encode_all(data, 3).expect("zstd to a Vec")
    }

    /// A deflated member of `mib` MiB of zeros: (payload, crc, size).
    fn zeros_deflated(mib: usize) -> (Vec<u8>, u32, u32) {
        let chunk = vec![0u8; 1 << 20];
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let mut crc = crc32fast::Hasher::new();
        for _ in 0..mib {
            e.write_all(&chunk).expect("write to a Vec");
            crc.update(&chunk);
        }
        let payload = e.finish().expect("write to a Vec");
        (payload, crc.finalize(), (mib << 20) as u32)
    }

    fn zip_bomb(mib: usize, copies: usize) -> Vec<u8> {
        let (payload, crc, size) = zeros_deflated(mib);
        let mut z = ZipBuilder::new();
        for i in 0..copies {
            z.add_raw(&format!("zeros-{i}.bin"), 8, 0, crc, size, &payload);
        }
        z.finish()
    }

    // ---- behaviour ------------------------------------------------------------------

    #[test]
    fn jar_in_zip_in_tar_gz_is_found_with_its_chain() {
        let jar = real_zip(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
            ("META-INF/app.properties", &[b"key=", MARKER].concat()),
        ]);
        let bundle = ZipBuilder::new()
            .add("README", b"hello hello hello hello", Method::Deflated)
            .add("lib/inner.jar", &jar, Method::Stored)
            .finish();
        let outer = gz(&tar_of(&[
            ("app/notes.txt", b"nothing here"),
            ("app/bundle.zip", &bundle),
        ]));
        assert_eq!(sniff("/srv/app.tar.gz", &outer), Some(ArchiveKind::TarGzip));

        let (visits, stats) = run("/srv/app.tar.gz", &outer, &NestedLimits::default());
        let hit = find(&visits, "META-INF/app.properties");
        assert!(hit.marker);
        assert_eq!(
            hit.chain,
            strings(&["/srv/app.tar.gz", "app/bundle.zip", "lib/inner.jar"])
        );
        // Archives are visited as bytes too.
        assert_eq!(
            find(&visits, "app/bundle.zip").chain,
            strings(&["/srv/app.tar.gz"])
        );
        assert_eq!(
            find(&visits, "lib/inner.jar").chain,
            strings(&["/srv/app.tar.gz", "app/bundle.zip"])
        );
        assert_eq!(stats.members, 6, "{visits:#?}");
        assert!(stats.problems.is_empty(), "{:?}", stats.problems);
        assert_eq!(
            stats.bytes,
            visits.iter().map(|v| v.len as u64).sum::<u64>()
        );
        assert_eq!(
            location(&hit.chain, &hit.member),
            "/srv/app.tar.gz!/app/bundle.zip!/lib/inner.jar!/META-INF/app.properties"
        );
    }

    #[test]
    fn depth_four_is_visited_as_bytes_but_not_opened() {
        let z4 = real_zip(&[("secret.txt", MARKER)]);
        let z3 = real_zip(&[("z4.zip", &z4)]);
        let z2 = real_zip(&[("z3.zip", &z3)]);
        let z1 = real_zip(&[("z2.zip", &z2)]);
        let (visits, stats) = run("/z1.zip", &z1, &NestedLimits::default());
        assert_eq!(
            find(&visits, "z4.zip").chain,
            strings(&["/z1.zip", "z2.zip", "z3.zip"])
        );
        assert!(visits.iter().all(|v| v.member != "secret.txt"));
        assert_eq!(stats.skipped_depth, 1);
        assert_eq!(stats.members, 3);

        let limits = NestedLimits {
            max_depth: 4,
            ..Default::default()
        };
        let (visits, stats) = run("/z1.zip", &z1, &limits);
        assert!(find(&visits, "secret.txt").marker);
        assert_eq!(stats.skipped_depth, 0);
    }

    #[test]
    fn zip_bomb_member_is_stopped_by_the_ratio_guard() {
        let (payload, crc, size) = zeros_deflated(50);
        let mut z = ZipBuilder::new();
        z.add_raw("zeros.bin", 8, 0, crc, size, &payload);
        z.add_flagged("after.txt", MARKER, Method::Deflated, 0);
        let bomb = z.finish();

        let t = Instant::now();
        let (visits, stats) = run("/opt/bomb.zip", &bomb, &NestedLimits::default());
        let took = t.elapsed();
        eprintln!("50 MiB zip bomb member: {took:?}, {stats:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert_eq!(stats.stopped_ratio, 1);
        assert!(stats.decompressed < 8 << 20, "{stats:?}");
        assert!(
            stats.problems[0].starts_with("/opt/bomb.zip!/zeros.bin: decompression bomb"),
            "{:?}",
            stats.problems
        );
        // What came out before the guard fired is still scanned, and the zip goes on.
        assert!(find(&visits, "zeros.bin").len < 8 << 20);
        assert!(find(&visits, "after.txt").marker);
    }

    #[test]
    fn nested_and_recursive_zip_bombs_stay_bounded() {
        // 16 zips, each with one 50 MiB member of zeros.
        let inner = zip_bomb(50, 1);
        let mut z = ZipBuilder::new();
        for i in 0..16 {
            z.add_flagged(&format!("inner-{i}.zip"), &inner, Method::Deflated, 0);
        }
        let nested = z.finish();
        let t = Instant::now();
        let (_, stats) = run("/nested.zip", &nested, &NestedLimits::default());
        let took = t.elapsed();
        eprintln!("16 nested bombs: {took:?}, {stats:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert_eq!(stats.stopped_ratio, 16);

        // 42.zip-style: 16 × 16 × 16 members of 50 MiB zeros (200 GiB), three levels.
        let l1 = zip_bomb(50, 16);
        let mut l2 = ZipBuilder::new();
        for i in 0..16 {
            l2.add_flagged(&format!("l1-{i}.zip"), &l1, Method::Deflated, 0);
        }
        let l2 = l2.finish();
        let mut l3 = ZipBuilder::new();
        for i in 0..16 {
            l3.add_flagged(&format!("l2-{i}.zip"), &l2, Method::Deflated, 0);
        }
        let l3 = l3.finish();
        let limits = NestedLimits::default();
        let t = Instant::now();
        let (visits, stats) = run("/42.zip", &l3, &limits);
        let took = t.elapsed();
        eprintln!(
            "recursive bomb ({} bytes): {took:?}, {} visits, {stats:?}",
            l3.len(),
            visits.len()
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert!(stats.stopped_ratio > 0);
        assert!(stats.skipped_limit > 0);
        assert!(stats.decompressed <= limits.max_total_bytes);
        assert!(stats.bytes <= limits.max_total_bytes);
        assert!(
            stats
                .problems
                .iter()
                .any(|p| p.starts_with("/42.zip: expansion stopped at the limit")),
            "{:?}",
            stats.problems
        );
    }

    #[test]
    fn overlapping_file_zip_bomb_is_bounded_by_the_byte_budget() {
        // One 1 MiB member of zeros (under the ratio grace), listed 10,000 times: 10 GiB.
        let (payload, crc, size) = zeros_deflated(1);
        let mut z = ZipBuilder::new();
        let offset = z.add_raw("0", 8, 0, crc, size, &payload);
        for i in 1..10_000 {
            z.directory_entry(
                &i.to_string(),
                8,
                0,
                crc,
                payload.len() as u32,
                size,
                offset,
            );
        }
        let bomb = z.finish();
        let limits = NestedLimits::default();
        let t = Instant::now();
        let (visits, stats) = run("/overlap.zip", &bomb, &limits);
        let took = t.elapsed();
        eprintln!("overlapping bomb: {took:?}, {stats:?}");
        // This one really inflates the whole 256 MiB budget: allow for a busy machine.
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(visits.len(), 256);
        assert_eq!(stats.skipped_limit, 10_000 - 256);
        assert!(stats.decompressed <= limits.max_total_bytes);
        assert!(stats.problems[0].contains("overlapping-file zip bomb"));
        assert!(stats.problems[1].contains("expansion stopped at the limit"));
    }

    #[test]
    fn gzip_bomb_is_stopped_by_the_ratio_guard() {
        let zeros = vec![0u8; 50 << 20];
        let bomb = gz(&zeros);
        let tar_bomb = gz(&tar_of(&[("zeros", &zeros), ("after", MARKER)]));
        drop(zeros);
        let t = Instant::now();
        let (_, stats) = run("/z.gz", &bomb, &NestedLimits::default());
        let (visits, tar_stats) = run("/z.tar.gz", &tar_bomb, &NestedLimits::default());
        eprintln!("gzip bombs: {:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(stats.stopped_ratio, 1);
        assert_eq!(tar_stats.stopped_ratio, 1);
        assert!(tar_stats.problems[0].starts_with("/z.tar.gz!/zeros: decompression bomb"));
        // The stream is dead after the guard fires: nothing after it is read.
        assert!(visits.iter().all(|v| v.member != "after"));
    }

    #[test]
    fn encrypted_and_unsupported_members_are_counted() {
        let mut z = ZipBuilder::new();
        z.add_flagged("locked.txt", MARKER, Method::Stored, 1);
        z.add_raw("bzip2.bin", 12, 0, 0, 3, b"BZh");
        z.add_flagged("open.txt", b"ok", Method::Stored, 0);
        let (visits, stats) = run("/x.zip", &z.finish(), &NestedLimits::default());
        assert_eq!(stats.skipped_encrypted, 1);
        assert_eq!(stats.skipped_unsupported, 1);
        assert_eq!(visits.len(), 1);
        assert_eq!(visits[0].member, "open.txt");
    }

    #[test]
    fn corrupt_zip_is_a_problem_naming_the_chain() {
        let mut bad = b"PK\x03\x04".to_vec();
        bad.extend_from_slice(&[0x55; 300]);
        let outer = tar_of(&[("lib/bad.jar", &bad), ("ok.txt", b"fine")]);
        let (visits, stats) = run("/x.tar", &outer, &NestedLimits::default());
        assert_eq!(stats.corrupt, 1);
        assert!(
            stats.problems[0].starts_with("/x.tar!/lib/bad.jar: unreadable zip"),
            "{:?}",
            stats.problems
        );
        assert_eq!(visits.len(), 2);

        // A directory that points past the data: every member fails, none panics.
        let good = ZipBuilder::new()
            .add("a", MARKER, Method::Deflated)
            .finish();
        let cut = [&good[..20], &good[good.len() - 68..]].concat();
        let (_, stats) = run("/cut.zip", &cut, &NestedLimits::default());
        assert!(stats.corrupt >= 1, "{stats:?}");
    }

    #[test]
    fn truncated_gzip_is_a_problem_and_its_prefix_is_scanned() {
        let text: Vec<u8> = [MARKER, &b"x".repeat(100_000)].concat();
        let data = gz(&text);
        let cut = &data[..data.len() - 8]; // no trailer
        let (visits, stats) = run("/var/log/app.log.gz", cut, &NestedLimits::default());
        assert_eq!(stats.corrupt, 1);
        assert!(
            stats.problems[0].starts_with("/var/log/app.log.gz!/app.log: "),
            "{:?}",
            stats.problems
        );
        assert!(find(&visits, "app.log").marker);

        let mut rng = Rng(7);
        let noise: Vec<u8> = (0..20_000).map(|_| rng.next() as u8).collect();
        let tgz = gz(&tar_of(&[("a", MARKER), ("b", &noise)]));
        let (visits, stats) = run("/x.tgz", &tgz[..tgz.len() / 2], &NestedLimits::default());
        assert_eq!(stats.corrupt, 1, "{stats:?}");
        assert!(
            stats.problems[0].starts_with("/x.tgz!/b: "),
            "{:?}",
            stats.problems
        );
        assert!(find(&visits, "a").marker);
        assert!(find(&visits, "b").len < noise.len());
    }

    #[test]
    fn zip_directory_mismatches_are_reported() {
        let mut z = ZipBuilder::new();
        z.add_raw("liar", 0, 0, crc32fast::hash(b"abc"), 3, b"abd");
        let (visits, stats) = run("/x.zip", &z.finish(), &NestedLimits::default());
        assert_eq!(visits.len(), 1);
        assert_eq!(
            stats.problems,
            ["/x.zip!/liar: CRC-32 does not match the zip directory"]
        );
    }

    #[test]
    fn sniff_returns_none_for_non_archives() {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(4096, 0);
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        let text = b"#!/bin/sh\necho ustar PK\n".repeat(50);
        for (path, data) in [
            ("/usr/bin/x", &elf),
            ("/x.png", &png),
            ("/x.sh", &text),
            ("/x.zip", &text),
            ("/x.tar", &text),
            ("/x.jar", &Vec::new()),
            ("/zeros.tar", &vec![0; 10240]),
        ] {
            assert_eq!(sniff(path, data), None, "{path}");
            let (visits, stats) = run(path, data, &NestedLimits::default());
            assert!(visits.is_empty() && stats.problems.is_empty());
        }
        // A self-extracting ELF with a zip appended is not opened.
        let sfx = [&elf[..], &real_zip(&[("a", b"b")])].concat();
        assert_eq!(sniff("/usr/bin/installer", &sfx), None);
    }

    #[test]
    fn sniff_finds_each_kind() {
        let tar = tar_of(&[("a", b"b")]);
        let zip = real_zip(&[("a", b"b")]);
        assert_eq!(sniff("/x", &zip), Some(ArchiveKind::Zip));
        assert_eq!(sniff("/x", b"PK\x05\x06"), Some(ArchiveKind::Zip));
        assert_eq!(sniff("/x", &tar), Some(ArchiveKind::Tar));
        assert_eq!(sniff("/x", &gz(&tar)), Some(ArchiveKind::TarGzip));
        assert_eq!(sniff("/x", &gz(b"text")), Some(ArchiveKind::Gzip));
        assert_eq!(sniff("/x", &zst(&tar)), Some(ArchiveKind::TarZstd));
        assert_eq!(sniff("/x", &zst(b"text")), Some(ArchiveKind::Zstd));
        // Pre-POSIX tar: no magic, recognised by extension and checksum.
        let mut v7 = tar.clone();
        v7[257..265].fill(0);
        let sum: u32 = v7[..512]
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        v7[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(sniff("/x", &v7), None);
        assert_eq!(sniff("/old.TAR", &v7), Some(ArchiveKind::Tar));
    }

    #[test]
    fn executable_jar_with_a_launch_script_is_opened_by_extension() {
        let jar = real_zip(&[("app.properties", MARKER)]);
        let data = [&b"#!/bin/bash\nexec java -jar \"$0\" \"$@\"\n"[..], &jar].concat();
        assert_eq!(sniff("/app/app.jar", &data), Some(ArchiveKind::Zip));
        assert_eq!(sniff("/app/app.sh", &data), None);
        let (visits, stats) = run("/app/app.jar", &data, &NestedLimits::default());
        assert!(find(&visits, "app.properties").marker, "{stats:?}");
        assert!(stats.problems.is_empty(), "{:?}", stats.problems);
    }

    #[test]
    fn docx_like_zip_is_expanded() {
        let docx = real_zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", &[b"<w:t>", MARKER, b"</w:t>"].concat()),
        ]);
        let (visits, _) = run("/srv/report.docx", &docx, &NestedLimits::default());
        assert!(find(&visits, "word/document.xml").marker);
    }

    #[test]
    fn large_members_are_truncated_and_not_expanded() {
        let inner = real_zip(&[("deep.txt", MARKER), ("pad", &[1; 3000])]);
        let z = ZipBuilder::new()
            .add(
                "big.bin",
                &[MARKER, &[9; 5000][..]].concat(),
                Method::Deflated,
            )
            .add("inner.zip", &inner, Method::Stored)
            .finish();
        let limits = NestedLimits {
            max_member_size: 1000,
            ..Default::default()
        };
        let (visits, stats) = run("/x.zip", &z, &limits);
        assert_eq!(stats.truncated, 2);
        let big = find(&visits, "big.bin");
        assert!(big.len == 1000 && big.marker);
        assert_eq!(find(&visits, "inner.zip").len, 1000);
        assert!(visits.iter().all(|v| v.member != "deep.txt"));
        assert!(stats.problems.is_empty(), "{:?}", stats.problems);

        // Same in a tar stream: the rest of the big entry is skipped, the next one read.
        let t = gz(&tar_of(&[("big", &[7; 5000]), ("next", MARKER)]));
        let (visits, stats) = run("/x.tar.gz", &t, &limits);
        assert_eq!(stats.truncated, 1);
        assert!(find(&visits, "next").marker);
    }

    #[test]
    fn member_limit_stops_and_counts_the_rest() {
        let mut z = ZipBuilder::new();
        for i in 0..10 {
            z.add_flagged(&format!("f{i}"), b"x", Method::Stored, 0);
        }
        let limits = NestedLimits {
            max_members: 4,
            ..Default::default()
        };
        let (visits, stats) = run("/x.zip", &z.finish(), &limits);
        assert_eq!(visits.len(), 4);
        assert_eq!(stats.skipped_limit, 6);
        assert_eq!(
            stats.problems,
            ["/x.zip: expansion stopped at the limit of 4 members; later members were not scanned"]
        );
    }

    #[test]
    fn zip_directories_loaded_are_bounded_too() {
        // Directories are listed but not visited: the member limit alone would not stop
        // an archive of zips full of them.
        let mut dirs = ZipBuilder::new();
        for i in 0..8 {
            dirs.add_flagged(&format!("d{i}/"), b"", Method::Stored, 0);
        }
        let dirs = dirs.finish();
        let outer = ZipBuilder::new()
            .add("a.zip", &dirs, Method::Stored)
            .add("b.zip", &dirs, Method::Stored)
            .finish();
        let limits = NestedLimits {
            max_members: 5,
            ..Default::default()
        };
        let (visits, stats) = run("/x.zip", &outer, &limits);
        assert_eq!(visits.len(), 2);
        assert_eq!(stats.skipped_limit, 1);
        assert_eq!(
            stats.problems,
            [
                "/x.zip: expansion stopped at the limit of 10 zip directory entries; later \
                 members were not scanned"
            ]
        );
    }

    #[test]
    fn zstd_gzip_and_tar_members_and_names() {
        let tar = tar_of(&[("etc/key", MARKER)]);
        let (visits, _) = run("/a/b.tar.zst", &zst(&tar), &NestedLimits::default());
        assert_eq!(find(&visits, "etc/key").chain, strings(&["/a/b.tar.zst"]));
        let (visits, _) = run("/a/notes.txt.zst", &zst(MARKER), &NestedLimits::default());
        assert!(find(&visits, "notes.txt").marker);
        // A gzipped jar: the .gz is depth 1, the jar depth 2.
        let jar = real_zip(&[("k", MARKER)]);
        let (visits, _) = run("/a/lib.jar.gz", &gz(&jar), &NestedLimits::default());
        assert_eq!(
            find(&visits, "k").chain,
            strings(&["/a/lib.jar.gz", "lib.jar"])
        );
    }

    #[test]
    fn tar_visits_regular_files_only() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        b.append_data(&mut h, "dir/", &b""[..]).expect("tar");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "link", "/etc/shadow").expect("tar");
        // The tar writer refuses `..`; write the name into the header by hand.
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..14].copy_from_slice(b"../../abs/file");
        h.set_size(MARKER.len() as u64);
        h.set_cksum();
        b.append(&h, MARKER).expect("tar");
        let data = b.into_inner().expect("tar");
        let (visits, stats) = run("/x.tar", &data, &NestedLimits::default());
        assert_eq!(visits.len(), 1, "{visits:#?}");
        assert_eq!(visits[0].member, "../../abs/file");
        assert!(stats.problems.is_empty());
    }

    #[test]
    fn zip_names_are_shown_raw() {
        let z = ZipBuilder::new()
            .add("../../etc/cron.d/x", MARKER, Method::Stored)
            .add("/abs", b"a", Method::Stored)
            .finish();
        let (visits, _) = run("/x.zip", &z, &NestedLimits::default());
        assert!(find(&visits, "../../etc/cron.d/x").marker);
        find(&visits, "/abs");
    }

    #[test]
    #[should_panic(expected = "visitor bug")]
    fn a_panicking_visitor_is_not_swallowed() {
        let z = real_zip(&[("a", b"b")]);
        expand("/x.zip", &z, &NestedLimits::default(), &mut |_, _, _| {
            panic!("visitor bug")
        });
    }

    /// Deterministic xorshift64*, so the fuzz test needs no dependency and is repeatable.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut d = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(6) {
                0 => d.truncate(rng.below(d.len() + 1)),
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        if !d.is_empty() {
                            let i = rng.below(d.len());
                            d[i] ^= 1 << rng.below(8);
                        }
                    }
                }
                2 => {
                    // Sizes, counts and offsets are where parsers break: write extremes.
                    if d.len() >= 4 {
                        let i = rng.below(d.len() - 3);
                        let v: u32 = [0, 1, 0xffff, 0xffff_ffff, 0x7fff_ffff, 512][rng.below(6)];
                        d[i..i + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
                3 => {
                    let i = rng.below(d.len() + 1);
                    let j = (i + rng.below(64)).min(d.len());
                    let piece = d[i..j].to_vec();
                    let at = rng.below(d.len() + 1);
                    d.splice(at..at, piece);
                }
                4 => {
                    let i = rng.below(d.len() + 1);
                    let j = (i + rng.below(256)).min(d.len());
                    d.drain(i..j);
                }
                _ => {
                    let n = rng.below(64);
                    let at = rng.below(d.len() + 1);
                    let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    d.splice(at..at, junk);
                }
            }
        }
        d
    }

    #[test]
    fn fuzz_mutated_archives_never_panic_and_stay_bounded() {
        let jar = real_zip(&[("a.properties", MARKER), ("b", &[3; 700])]);
        let zip = ZipBuilder::new()
            .add("x.txt", &b"hello ".repeat(200), Method::Deflated)
            .add("in.jar", &jar, Method::Stored)
            .add("in.jar.deflated", &jar, Method::Deflated)
            .finish();
        let tar = tar_of(&[("z.zip", &zip), ("t", b"text"), ("g.gz", &gz(&jar))]);
        let seeds = [
            zip.clone(),
            jar.clone(),
            tar.clone(),
            gz(&tar),
            zst(&tar),
            gz(b"plain text, gzipped"),
            zst(&zip),
        ];
        let limits = NestedLimits {
            max_member_size: 64 << 10,
            max_total_bytes: 1 << 20,
            max_members: 200,
            ..Default::default()
        };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let t = Instant::now();
        let mut problems = 0;
        for round in 0..3000 {
            let seed = &seeds[round % seeds.len()];
            let data = mutate(&mut rng, seed);
            let path = ["/f.zip", "/f.tar.gz", "/f", "/f.jar", "/f.tar"][rng.below(5)];
            let mut max_len = 0;
            let stats = expand(path, &data, &limits, &mut |chain, _, bytes| {
                assert!(!chain.is_empty() && chain.len() <= limits.max_depth);
                max_len = max_len.max(bytes.len());
            });
            assert!(max_len as u64 <= limits.max_member_size);
            assert!(stats.members <= limits.max_members as u64);
            assert!(stats.bytes <= limits.max_total_bytes);
            assert!(stats.decompressed <= limits.max_total_bytes);
            assert!(stats.problems.len() <= MAX_PROBLEMS + 1);
            assert!(
                stats.problems.iter().all(|p| !p.contains("panicked")),
                "round {round}: {:?}",
                stats.problems
            );
            problems += stats.problems.len();
        }
        eprintln!(
            "fuzz: 3000 rounds in {:?}, {problems} problems",
            t.elapsed()
        );
        assert!(problems > 0);
    }
}
