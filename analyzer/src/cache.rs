//! A content-addressed blob cache: `<root>/blobs/sha256/<hex>`. Blobs enter it only after
//! their sha256 matched while they streamed in; a mismatch discards the partial file.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::{Error, Result};

/// The blob cache.
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

/// What `prune` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneStats {
    pub blobs_before: usize,
    pub bytes_before: u64,
    pub blobs_removed: usize,
    pub bytes_removed: u64,
}

impl BlobCache {
    /// The cache under `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BlobCache { root: dir.into() }
    }

    /// `$CANARY_CACHE_DIR`, else `$XDG_CACHE_HOME/canary`, else `~/.cache/canary`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("CANARY_CACHE_DIR") {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(d).join("canary");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".cache").join("canary")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Path of a blob; `digest` must already be checked (`image::check_digest`).
    pub fn path_of(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.blob_dir().join(hex)
    }

    /// Whether the blob is cached. Touches it so pruning keeps recently used blobs.
    pub fn contains(&self, digest: &str) -> bool {
        let p = self.path_of(digest);
        match std::fs::File::open(&p) {
            Ok(f) => {
                // Best effort: a read-only cache still serves hits.
                let _ = f.set_modified(SystemTime::now());
                true
            }
            Err(_) => false,
        }
    }

    /// Start writing a blob: bytes go to a temporary file beside the final one, hashed as
    /// they pass.
    pub fn writer(&self, digest: &str, origin: &str, max_size: u64) -> Result<BlobWriter> {
        let dir = self.blob_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        Ok(BlobWriter {
            tmp,
            hasher: Sha256::new(),
            written: 0,
            max_size,
            digest: digest.to_string(),
            origin: origin.to_string(),
            dest: self.path_of(digest),
        })
    }

    /// Read a whole small blob (configs) that is already cached.
    pub fn read_small(&self, digest: &str, limit: u64) -> Result<Vec<u8>> {
        let p = self.path_of(digest);
        let f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
        let mut v = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut v)
            .map_err(|e| Error::io(&p, e))?;
        if v.len() as u64 > limit {
            return Err(Error::TooLarge {
                origin: p.display().to_string(),
                what: "blob".into(),
                limit,
            });
        }
        Ok(v)
    }

    /// Remove least recently used blobs until the cache holds at most `max_bytes`.
    /// Leftover partial files of interrupted downloads are removed too.
    pub fn prune(&self, max_bytes: u64) -> Result<PruneStats> {
        let dir = self.blob_dir();
        let mut stats = PruneStats::default();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stats),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut blobs = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| Error::io(&dir, e))?;
            let md = match ent.metadata() {
                Ok(m) if m.is_file() => m,
                _ => continue,
            };
            let name = ent.file_name();
            let mtime = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if name.to_string_lossy().starts_with(".partial-") {
                // Left by an interrupted download, unless another scan is writing it now.
                let idle = SystemTime::now().duration_since(mtime).unwrap_or_default();
                if idle > std::time::Duration::from_secs(3600) {
                    let _ = std::fs::remove_file(ent.path());
                }
                continue;
            }
            blobs.push((mtime, md.len(), ent.path()));
        }
        stats.blobs_before = blobs.len();
        stats.bytes_before = blobs.iter().map(|b| b.1).sum();
        blobs.sort_by_key(|b| b.0);
        let mut total = stats.bytes_before;
        for (_, len, path) in blobs {
            if total <= max_bytes {
                break;
            }
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            total -= len;
            stats.blobs_removed += 1;
            stats.bytes_removed += len;
        }
        Ok(stats)
    }
}

/// A blob being written into the cache. Dropped without `finish`, it leaves nothing.
pub struct BlobWriter {
    tmp: tempfile::NamedTempFile,
    hasher: Sha256,
    written: u64,
    max_size: u64,
    digest: String,
    origin: String,
    dest: PathBuf,
}

impl BlobWriter {
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.written += chunk.len() as u64;
        if self.written > self.max_size {
            return Err(Error::TooLarge {
                origin: self.origin.clone(),
                what: format!("blob {}", self.digest),
                limit: self.max_size,
            });
        }
        self.hasher.update(chunk);
        self.tmp
            .write_all(chunk)
            .map_err(|e| Error::io(self.tmp.path(), e))
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verify the digest and move the blob into place.
    pub fn finish(self) -> Result<PathBuf> {
        let actual = format!("sha256:{}", crate::hex(&self.hasher.finalize()));
        if actual != self.digest {
            return Err(Error::DigestMismatch {
                origin: self.origin,
                digest: self.digest,
                actual,
            });
        }
        let dest = self.dest;
        self.tmp
            .persist(&dest)
            .map_err(|e| Error::io(&dest, e.error))?;
        Ok(dest)
    }
}

/// A reader that hashes what passes through it and checks the digest at end of stream.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected: String,
    origin: String,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: &str, origin: &str) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            expected: expected.to_string(),
            origin: origin.to_string(),
            done: false,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.done {
            self.done = true;
            let actual = format!("sha256:{}", crate::hex(&self.hasher.clone().finalize()));
            if actual != self.expected {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "digest mismatch for {} from {}: content hashes to {actual}",
                        self.expected, self.origin
                    ),
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(b: &[u8]) -> String {
        format!("sha256:{}", crate::hex(&Sha256::digest(b)))
    }

    #[test]
    fn mismatch_discards_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let d = digest_of(b"hello");
        let mut w = cache.writer(&d, "test", 100).unwrap();
        w.write(b"hellO").unwrap();
        assert!(matches!(w.finish(), Err(Error::DigestMismatch { .. })));
        assert!(!cache.contains(&d));
        assert_eq!(std::fs::read_dir(cache.blob_dir()).unwrap().count(), 0);
    }

    #[test]
    fn prune_removes_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let mut ds = vec![];
        for (i, body) in [b"aaaa".as_slice(), b"bbbb", b"cccc"].iter().enumerate() {
            let d = digest_of(body);
            let mut w = cache.writer(&d, "t", 100).unwrap();
            w.write(body).unwrap();
            let p = w.finish().unwrap();
            let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i as u64);
            std::fs::File::options()
                .append(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
            ds.push(d);
        }
        let s = cache.prune(8).unwrap();
        assert_eq!((s.blobs_removed, s.bytes_removed), (1, 4));
        assert!(!cache.path_of(&ds[0]).exists());
        assert!(cache.path_of(&ds[2]).exists());
    }

    #[test]
    fn verifying_reader_fails_at_eof_on_mismatch() {
        let d = digest_of(b"abc");
        let mut ok = VerifyingReader::new(&b"abc"[..], &d, "t");
        std::io::copy(&mut ok, &mut std::io::sink()).unwrap();
        let mut bad = VerifyingReader::new(&b"abd"[..], &d, "t");
        assert!(std::io::copy(&mut bad, &mut std::io::sink()).is_err());
    }
}
