//! The root filesystem of a run, built from an image's layers as containerd would
//! unpack them: layers applied in order, whiteouts and opaque directories honoured,
//! every path resolved inside the rootfs (`openat2` with `RESOLVE_IN_ROOT`, so a
//! symlink in a layer can never point a write outside it). Device nodes are not made
//! (a user namespace cannot); setuid and setgid bits are dropped (`no_new_privs` makes
//! them void anyway). The result is cached per image, by the digests of its layers.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fchmodat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, linkat, symlinkat, unlinkat};
use sha2::{Digest, Sha256};

use canary_analyzer::cache::VerifyingReader;
use canary_analyzer::image::{ResolvedImage, Verify};
use canary_analyzer::walk::{WalkLimits, normalize_path, tar_stream};

/// Bounds on what unpacking one image may cost.
#[derive(Debug, Clone)]
pub struct RootfsLimits {
    /// File bytes written, all layers together.
    pub max_bytes: u64,
    /// Tar entries, all layers together.
    pub max_entries: u64,
}

impl Default for RootfsLimits {
    fn default() -> Self {
        RootfsLimits {
            max_bytes: 8 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// An unpacked image.
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub path: PathBuf,
    /// Whether it came from the cache (unpacked by an earlier run).
    pub cached: bool,
    pub bytes: u64,
    pub entries: u64,
    /// Entries not unpacked, by reason (`device`, `unsafe_path`, `dangling_parent`,
    /// `missing_link_target`).
    pub skipped: BTreeMap<&'static str, u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("{image} layer {layer}: {message}")]
pub struct RootfsError {
    pub image: String,
    pub layer: String,
    pub message: String,
}

/// The cache key of an image's rootfs: its layers' digests, in order.
fn chain_id(image: &ResolvedImage) -> String {
    let mut h = Sha256::new();
    for l in &image.layers {
        h.update(l.digest.as_bytes());
        h.update(b"\n");
    }
    let d = h.finalize();
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpack `image` under `cache_dir` (or reuse an earlier unpacking of the same layers).
pub fn prepare(
    image: &ResolvedImage,
    cache_dir: &Path,
    limits: &RootfsLimits,
) -> Result<Rootfs, RootfsError> {
    let err = |layer: &str, message: String| RootfsError {
        image: image.name.clone(),
        layer: layer.to_string(),
        message,
    };
    let key = chain_id(image);
    let done = cache_dir.join(format!("rootfs-{key}"));
    if done.is_dir() {
        return Ok(Rootfs {
            path: done,
            cached: true,
            bytes: 0,
            entries: 0,
            skipped: BTreeMap::new(),
        });
    }
    std::fs::create_dir_all(cache_dir)
        .and_then(|()| {
            // Unpacked images keep their modes and owners: only we may look in.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(cache_dir, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| err("-", format!("{}: {e}", cache_dir.display())))?;
    let tmp = cache_dir.join(format!("unpacking-{key}-{}", std::process::id()));
    let _ = remove_path(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| err("-", format!("{}: {e}", tmp.display())))?;
    let root = openat(
        nix::fcntl::AT_FDCWD,
        &tmp,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err("-", format!("{}: {e}", tmp.display())))?;
    let mut u = Unpacker {
        root,
        chown: nix::unistd::geteuid().is_root(),
        limits: limits.clone(),
        bytes: 0,
        entries: 0,
        skipped: BTreeMap::new(),
    };
    let walk_limits = WalkLimits::default();
    for layer in &image.layers {
        // The digests are checked to the end, so that an archive naming another image's
        // layer digests cannot poison that image's cached rootfs.
        let origin = format!("{} layer {}", image.name, layer.index);
        let applied = image
            .opener
            .open(layer)
            .map_err(|e| e.to_string())
            .map(|blob| match &layer.verify {
                Verify::Blob(d) => {
                    Box::new(VerifyingReader::new(blob, d, &origin)) as Box<dyn Read + Send>
                }
                _ => blob,
            })
            .and_then(|blob| tar_stream(blob, &walk_limits).map_err(|e| e.to_string()))
            .map(|(_, stream)| match &layer.verify {
                Verify::DiffId(d) => {
                    Box::new(VerifyingReader::new(stream, d, &origin)) as Box<dyn Read + Send>
                }
                _ => stream,
            })
            .and_then(|stream| u.apply(stream))
            .and_then(|mut rest| {
                std::io::copy(&mut rest, &mut std::io::sink())
                    .map(|_| ())
                    .map_err(|e| format!("after the last entry: {e}"))
            });
        if let Err(message) = applied {
            let _ = remove_path(&tmp);
            return Err(err(&layer.digest, message));
        }
    }
    // Another run may have unpacked the same image meanwhile: keep one.
    if std::fs::rename(&tmp, &done).is_err() {
        let _ = remove_path(&tmp);
        if !done.is_dir() {
            return Err(err(
                "-",
                format!("cannot store the rootfs at {}", done.display()),
            ));
        }
    }
    Ok(Rootfs {
        path: done,
        cached: false,
        bytes: u.bytes,
        entries: u.entries,
        skipped: u.skipped,
    })
}

/// Remove a directory tree of ours (no symlink is followed).
fn remove_path(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

struct Unpacker {
    root: OwnedFd,
    /// Running as root: files get the owners the layer names.
    chown: bool,
    limits: RootfsLimits,
    bytes: u64,
    entries: u64,
    skipped: BTreeMap<&'static str, u64>,
}

fn split(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

impl Unpacker {
    fn skip(&mut self, why: &'static str) {
        *self.skipped.entry(why).or_default() += 1;
    }

    /// A directory of the rootfs, resolved inside it; `None` if it does not exist.
    fn open_dir(&self, rel: &str) -> Result<Option<OwnedFd>, Errno> {
        let path = if rel.is_empty() { "." } else { rel };
        let how = OpenHow::new()
            .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match openat2(self.root.as_fd(), path, how) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `mkdir -p` inside the rootfs; `None` when a component cannot become a directory
    /// (a dangling symlink, or a file).
    fn make_dir(&self, rel: &str, depth: usize) -> Result<Option<OwnedFd>, Errno> {
        if let Some(fd) = self.open_dir(rel)? {
            return Ok(Some(fd));
        }
        if rel.is_empty() || depth > 256 {
            return Ok(None);
        }
        let (parent, name) = split(rel);
        let Some(pfd) = self.make_dir(parent, depth + 1)? else {
            return Ok(None);
        };
        match mkdirat(pfd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        self.open_dir(rel)
    }

    /// Apply one layer's tar stream; returns the stream after the archive's end, for
    /// the caller to read to its end (digests are checked there).
    fn apply(&mut self, stream: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>, String> {
        let mut archive = tar::Archive::new(stream);
        // Paths this layer made: an opaque marker hides only what lower layers made.
        let mut made: HashSet<String> = HashSet::new();
        let mut last = String::from("(start of layer)");
        for entry in archive
            .entries()
            .map_err(|e| format!("not a tar stream: {e}"))?
        {
            let mut entry = entry.map_err(|e| format!("after {last}: {e}"))?;
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(format!(
                    "more than {} entries (limit)",
                    self.limits.max_entries
                ));
            }
            let (path, problem) = normalize_path(&entry.path_bytes());
            last = path.clone();
            if problem.is_some() {
                self.skip("unsafe_path");
                continue;
            }
            if path == "/" {
                continue;
            }
            let rel = path[1..].to_string();
            let (parent, name) = split(&rel);
            let (parent, name) = (parent.to_string(), name.to_string());
            let res = if name == ".wh..wh..opq" {
                self.opaque(&parent, &made)
            } else if let Some(hidden) = name.strip_prefix(".wh.") {
                self.remove(&parent, hidden)
            } else {
                let made_it = self.add(&mut entry, &parent, &name);
                if matches!(made_it, Ok(true)) {
                    made.insert(rel.clone());
                }
                made_it.map(|_| ())
            };
            res.map_err(|e| format!("{path}: {e}"))?;
        }
        Ok(archive.into_inner())
    }

    /// Remove `name` from directory `parent` (a whole tree for a directory).
    fn remove(&self, parent: &str, name: &str) -> Result<(), Errno> {
        if name.is_empty() || name == "." || name == ".." {
            return Ok(());
        }
        let Some(pfd) = self.open_dir(parent)? else {
            return Ok(());
        };
        remove_at(pfd.as_fd(), name, 0)
    }

    /// Empty `dir` of everything lower layers put there.
    fn opaque(&self, dir: &str, made: &HashSet<String>) -> Result<(), Errno> {
        let Some(dfd) = self.open_dir(dir)? else {
            return Ok(());
        };
        for name in list(dfd.as_fd())? {
            let full = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if !made.contains(&full) {
                remove_at(dfd.as_fd(), &name, 0)?;
            }
        }
        Ok(())
    }

    /// Create one entry; `Ok(false)` when it was skipped.
    fn add<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &str,
        name: &str,
    ) -> Result<bool, Errno> {
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        if matches!(kind, T::Char | T::Block | T::Fifo) {
            self.skip("device");
            return Ok(false);
        }
        if !matches!(
            kind,
            T::Regular | T::Continuous | T::Directory | T::Symlink | T::Link
        ) {
            // PAX and GNU metadata are consumed by the tar reader; anything else is not
            // a file.
            self.skip("other");
            return Ok(false);
        }
        let Some(pfd) = self.make_dir(parent, 0)? else {
            self.skip("dangling_parent");
            return Ok(false);
        };
        let pfd = pfd.as_fd();
        let mut mode = Mode::from_bits_truncate(entry.header().mode().unwrap_or(0o644) & 0o1777);
        if kind == T::Directory && !self.chown {
            // Without root, a read-only directory of a lower layer would refuse the
            // files of the next: keep directories writable by their owner (us).
            mode |= Mode::S_IRWXU;
        }
        let existing = fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let is_dir = |st: &nix::sys::stat::FileStat| {
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
        };
        match kind {
            T::Directory => {
                match existing {
                    Some(st) if is_dir(&st) => {}
                    Some(_) => {
                        remove_at(pfd, name, 0)?;
                        mkdirat(pfd, name, mode)?;
                    }
                    None => mkdirat(pfd, name, mode)?,
                }
                fchmodat(
                    pfd,
                    name,
                    mode,
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )?;
            }
            T::Symlink => {
                if existing.is_some() {
                    remove_at(pfd, name, 0)?;
                }
                let target = link_target(entry);
                if target.contains(&0) {
                    self.skip("unsafe_path");
                    return Ok(false);
                }
                symlinkat(target.as_slice(), pfd, name)?;
            }
            T::Link => {
                if existing.is_some() {
                    remove_at(pfd, name, 0)?;
                }
                let (tpath, problem) = normalize_path(&link_target(entry));
                if problem.is_some() || tpath == "/" {
                    self.skip("unsafe_path");
                    return Ok(false);
                }
                let (tparent, tname) = split(&tpath[1..]);
                let Some(tfd) = self.open_dir(tparent)? else {
                    self.skip("missing_link_target");
                    return Ok(false);
                };
                match linkat(tfd.as_fd(), tname, pfd, name, AtFlags::empty()) {
                    Ok(()) => {}
                    Err(Errno::ENOENT) => {
                        self.skip("missing_link_target");
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => {
                if existing.is_some() {
                    remove_at(pfd, name, 0)?;
                }
                let fd = openat(
                    pfd,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    mode,
                )?;
                let mut file = std::fs::File::from(fd);
                let room = self.limits.max_bytes.saturating_sub(self.bytes);
                let n = std::io::copy(&mut entry.take(room + 1), &mut file)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
                self.bytes += n;
                if n > room {
                    return Err(Errno::EFBIG);
                }
                // The umask may have narrowed the mode.
                nix::sys::stat::fchmod(file.as_fd(), mode)?;
            }
        }
        // A hard link shares its target's inode: owner and mode stay the target's.
        if self.chown && kind != T::Link {
            let uid = entry
                .header()
                .uid()
                .ok()
                .and_then(|u| u32::try_from(u).ok());
            let gid = entry
                .header()
                .gid()
                .ok()
                .and_then(|g| u32::try_from(g).ok());
            // Ids beyond the sandbox's mapping (65,536) would show as nobody: keep ours.
            if let (Some(u), Some(g)) = (uid, gid)
                && u < 65_536
                && g < 65_536
            {
                nix::unistd::fchownat(
                    pfd,
                    name,
                    Some(nix::unistd::Uid::from_raw(u)),
                    Some(nix::unistd::Gid::from_raw(g)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
                if kind != T::Symlink {
                    // chown clears setuid bits, which we dropped already; the mode stays.
                    fchmodat(
                        pfd,
                        name,
                        mode,
                        nix::sys::stat::FchmodatFlags::FollowSymlink,
                    )?;
                }
            }
        }
        Ok(true)
    }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>) -> Vec<u8> {
    entry
        .link_name_bytes()
        .map(|l| l.into_owned())
        .unwrap_or_default()
}

/// Names in a directory, without `.` and `..`.
fn list(dir: BorrowedFd<'_>) -> Result<Vec<String>, Errno> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(String::from_utf8_lossy(n).into_owned());
        }
    }
    Ok(names)
}

/// Remove `name` in `dir`, recursing into directories and following no symlink.
fn remove_at(dir: BorrowedFd<'_>, name: &str, depth: usize) -> Result<(), Errno> {
    let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
    if depth > 4096 {
        return Err(Errno::ELOOP);
    }
    let sub = openat(
        dir,
        name,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    for child in list(sub.as_fd())? {
        remove_at(sub.as_fd(), &child, depth + 1)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// Read a file of an unpacked rootfs, resolving its path inside the rootfs (an image's
/// `/etc/passwd` may be a symlink to anywhere). At most `max` bytes; `None` if absent.
pub fn read_in_root(rootfs: &Path, path: &str, max: u64) -> Option<Vec<u8>> {
    let root = openat(
        nix::fcntl::AT_FDCWD,
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_fd(), path.trim_start_matches('/'), how).ok()?;
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(max)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}
