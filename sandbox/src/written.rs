//! What a run wrote: the overlay's upper layer is a complete record of it. After pid 1
//! is gone, and before the tmpfs goes with the mount namespace, the files there are
//! listed and hashed, and the executables among them (ELF, PE, `#!` scripts) copied out
//! for the static detectors, by hash, within bounds. Names come from the program under
//! analysis: nothing is followed, and copies are named by their hash only.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One file the run left in its filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// Path inside the run, e.g. `/tmp/.x/xmrig`.
    pub path: String,
    pub size: u64,
    pub mode: u32,
    /// `sha256:<hex>` of regular files up to 256 MiB.
    pub sha256: Option<String>,
    /// Where the copy is, for executables within the bounds.
    pub copy: Option<PathBuf>,
    /// Read since it was last written: its access time is later than its modification
    /// time (the scratch tmpfs is relatime, which updates the access time on the first
    /// read after a write). Taken before the listing reads the file itself.
    #[serde(default)]
    pub read: bool,
}

const MAX_ENTRIES: usize = 10_000;
const MAX_DEPTH: usize = 64;
const MAX_HASHED: u64 = 256 << 20;
const MAX_COPIED_FILE: u64 = 32 << 20;
const MAX_COPIED_TOTAL: u64 = 128 << 20;

fn executable_magic(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF") || head.starts_with(b"MZ") || head.starts_with(b"#!")
}

/// What the listing found, and whether a bound cut it short.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Listing {
    pub files: Vec<Written>,
    /// Paths of the image the run deleted: the whiteouts (character devices 0/0) the
    /// overlay left in its upper layer.
    #[serde(default)]
    pub deleted: Vec<String>,
    /// More than 10,000 files, or directories deeper than 64 levels: not all listed.
    pub truncated: bool,
}

/// List the regular files under `upper`; copy executables into `out_dir`.
pub(crate) fn collect(upper: &Path, out_dir: &Path) -> Listing {
    let mut truncated = false;
    let mut deleted = Vec::new();
    // The bait files first, whatever else the run wrote: flooding the scratch with
    // files cannot push them out of the listing.
    let mut copied = 0u64;
    let mut files: Vec<Written> = Vec::new();
    for path in crate::bait::Bait::planted_paths() {
        let p = upper.join(path.trim_start_matches('/'));
        if let Ok(m) = p.symlink_metadata()
            && m.is_file()
        {
            files.push(entry(path.to_string(), &m, &p, out_dir, &mut copied));
        }
    }
    let planted: Vec<String> = files.iter().map(|w| w.path.clone()).collect();
    files.extend(
        walk(upper, out_dir, &mut truncated, &mut deleted)
            .into_iter()
            .filter(|w| !planted.contains(&w.path)),
    );
    Listing {
        files,
        deleted,
        truncated,
    }
}

fn walk(
    upper: &Path,
    out_dir: &Path,
    truncated: &mut bool,
    deleted: &mut Vec<String>,
) -> Vec<Written> {
    let mut found = Vec::new();
    let mut copied = 0u64;
    let mut stack: Vec<(PathBuf, String, usize)> = vec![(upper.to_path_buf(), String::new(), 0)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if found.len() >= MAX_ENTRIES {
                *truncated = true;
                return found;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}/{name}");
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((e.path(), path, depth + 1));
                } else {
                    *truncated = true;
                }
                continue;
            }
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            if m.file_type().is_char_device() && m.rdev() == 0 {
                // Deletions have a cap of their own: they cannot crowd out files.
                if deleted.len() < MAX_ENTRIES {
                    deleted.push(path);
                } else {
                    *truncated = true;
                }
                continue;
            }
            if !m.is_file() {
                continue;
            }
            found.push(entry(path, &m, &e.path(), out_dir, &mut copied));
        }
    }
    found
}

/// One regular file's entry: its times are taken from `m` (before it is read here),
/// then it is hashed, and copied out if it is an executable within the bounds.
fn entry(
    path: String,
    m: &std::fs::Metadata,
    src: &Path,
    out_dir: &Path,
    copied: &mut u64,
) -> Written {
    use std::os::unix::fs::MetadataExt;
    let mut w = Written {
        path,
        size: m.len(),
        mode: m.mode() & 0o7777,
        sha256: None,
        copy: None,
        read: (m.atime(), m.atime_nsec()) > (m.mtime(), m.mtime_nsec()),
    };
    if m.len() <= MAX_HASHED {
        hash_and_copy(src, &mut w, out_dir, copied);
    }
    w
}

fn hash_and_copy(src: &Path, w: &mut Written, out_dir: &Path, copied: &mut u64) {
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
    else {
        return;
    };
    let mut h = Sha256::new();
    let mut head = Vec::new();
    let keep = w.size <= MAX_COPIED_FILE && *copied + w.size <= MAX_COPIED_TOTAL;
    let mut buf = vec![0u8; 64 << 10];
    let mut all = Vec::new();
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => return,
        };
        h.update(&buf[..n]);
        if head.len() < 4 {
            head.extend_from_slice(&buf[..n.min(4)]);
        }
        if keep && (all.len() as u64) < MAX_COPIED_FILE {
            all.extend_from_slice(&buf[..n]);
        }
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if keep && executable_magic(&head) {
        let dest = out_dir.join(&hex);
        let saved = std::fs::create_dir_all(out_dir).is_ok()
            && std::fs::File::create(&dest)
                .and_then(|mut d| d.write_all(&all))
                .is_ok();
        if saved {
            *copied += all.len() as u64;
            w.copy = Some(dest);
        }
    }
    w.sha256 = Some(format!("sha256:{hex}"));
}
