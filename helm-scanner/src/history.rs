//! Charts in Git: clone (bare, with gix, no `git` binary), walk every commit reachable
//! from HEAD, scan every distinct blob once for secrets and miners (a secret deleted from
//! HEAD still lives in the history), and find the charts at HEAD by their `Chart.yaml`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use canary_analyzer::detect::content::ContentEngine;
use canary_analyzer::finding::{CommitRef, Finding, Location};
use gix::bstr::ByteSlice;

/// Bounds on what a repository from anyone may cost.
#[derive(Debug, Clone)]
pub struct HistoryLimits {
    pub max_commits: usize,
    /// Blobs larger than this are not scanned (counted).
    pub max_blob_bytes: u64,
    /// All blobs together.
    pub max_total_bytes: u64,
    /// Tree entries visited over the whole walk: a "git bomb" (a tree holding the same
    /// subtree many times, nested) names billions of paths with a few objects.
    pub max_tree_entries: u64,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_commits: 100_000,
            max_blob_bytes: 8 << 20,
            max_total_bytes: 4 << 30,
            max_tree_entries: 20_000_000,
        }
    }
}

/// Tree entries one listing of the charts at a commit may visit.
const MAX_HEAD_ENTRIES: u64 = 1_000_000;

/// What walking the history found and cost.
#[derive(Debug, Default)]
pub struct HistoryScan {
    pub findings: Vec<Finding>,
    pub commits: usize,
    pub blobs: usize,
    pub bytes: u64,
    /// Limits that cut the walk short, said out loud.
    pub skipped: Vec<String>,
}

/// Where a blob was first added: the oldest commit reachable from HEAD holding it.
struct Sighting {
    path: String,
    commit: gix::ObjectId,
    seconds: i64,
    /// Walk index of `commit`.
    rank: usize,
}

/// A URL as shown to people: credentials in it (`https://user:token@host/…`) hidden.
pub fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}/{path}"),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// A repository: cloned bare into `work` from a URL (`git://`, `https://`, `file://`),
/// or opened in place (a local clone or bare repository). A clone that grows past
/// `max_bytes` on disk is stopped and refused.
pub fn open(source: &str, work: &Path, max_bytes: u64) -> Result<gix::Repository, String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let local = Path::new(source);
    if !source.contains("://") && local.exists() {
        return gix::open(local).map_err(|e| format!("{source}: not a Git repository: {e}"));
    }
    let shown = shown_url(source);
    let mut prep = gix::prepare_clone_bare(source, work).map_err(|e| format!("{shown}: {e}"))?;
    let interrupt = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let too_big = AtomicBool::new(false);
    let fetched = std::thread::scope(|scope| {
        // gix has no byte limit on a fetch: a watcher stops it when the clone grows past
        // the cap.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if dir_size(work) > max_bytes {
                    too_big.store(true, Ordering::Relaxed);
                    interrupt.store(true, Ordering::Relaxed);
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let r = prep.fetch_only(gix::progress::Discard, &interrupt);
        done.store(true, Ordering::Relaxed);
        r
    });
    // The watcher bounds what a large clone writes; a small fast one may finish between
    // two looks, so the size is checked once more at the end.
    if too_big.load(Ordering::Relaxed) || dir_size(work) > max_bytes {
        return Err(format!(
            "cloning {shown}: larger than {max_bytes} bytes on disk: stopped (--max-clone-size)"
        ));
    }
    let (repo, _) = fetched.map_err(|e| format!("cloning {shown}: {e}"))?;
    Ok(repo)
}

/// Bytes of the files under `dir` (links not followed).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// A source as written, `URL[@REF][#PATH]`, split into its parts. The `@` of a ref comes
/// after the URL's authority (so `https://user:tok@host/repo.git` has none); a local
/// path that exists as written is never split at `@`.
pub fn split_source(source: &str) -> (String, Option<String>, Option<String>) {
    let (base, path) = match source.split_once('#') {
        Some((b, p)) if !p.is_empty() => (b, Some(p.to_string())),
        Some((b, _)) => (b, None),
        None => (source, None),
    };
    if Path::new(base).exists() {
        return (base.to_string(), None, path);
    }
    let path_start = match base.find("://") {
        Some(i) => base[i + 3..]
            .find('/')
            .map(|j| i + 3 + j)
            .unwrap_or(base.len()),
        None => 0,
    };
    match base[path_start..].rfind('@') {
        Some(at) if at + 1 < base.len() - path_start => {
            let at = path_start + at;
            (
                base[..at].to_string(),
                Some(base[at + 1..].to_string()),
                path,
            )
        }
        _ => (base.to_string(), None, path),
    }
}

/// The commit to scan from: `rev` (a branch, a tag, a full commit id, or a full ref
/// name), or HEAD.
pub fn start(repo: &gix::Repository, rev: Option<&str>) -> Result<gix::ObjectId, String> {
    let Some(rev) = rev else {
        return repo
            .head_commit()
            .map(|c| c.id)
            .map_err(|e| format!("HEAD: {e}"));
    };
    let peel = |id: gix::ObjectId| {
        repo.find_object(id)
            .ok()
            .and_then(|o| o.peel_to_commit().ok())
            .map(|c| c.id)
    };
    if rev.len() == 40
        && let Ok(id) = gix::ObjectId::from_hex(rev.as_bytes())
        && let Some(c) = peel(id)
    {
        return Ok(c);
    }
    for name in [
        format!("refs/heads/{rev}"),
        format!("refs/tags/{rev}"),
        format!("refs/remotes/origin/{rev}"),
        rev.to_string(),
    ] {
        if let Ok(Some(mut r)) = repo.try_find_reference(name.as_str())
            && let Ok(id) = r.peel_to_id()
            && let Some(c) = peel(id.detach())
        {
            return Ok(c);
        }
    }
    Err(format!("no branch, tag or commit named {rev:?}"))
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// How many entries listing `root` with every path would visit, each distinct tree
/// read once (so a git bomb is measured, not expanded); saturating.
fn expanded_entries(repo: &gix::Repository, root: gix::ObjectId) -> Result<u64, String> {
    let mut size: HashMap<gix::ObjectId, u64> = HashMap::new();
    let mut children: HashMap<gix::ObjectId, (u64, Vec<gix::ObjectId>)> = HashMap::new();
    // Trees being sized: one met again inside itself is a cycle (objects whose ids do
    // not match their content, in a repository opened in place).
    let mut open: HashSet<gix::ObjectId> = HashSet::new();
    // Post-order without recursion: a tree's size once its subtrees' are known.
    let mut stack = vec![(root, false)];
    while let Some((id, expanded)) = stack.pop() {
        if size.contains_key(&id) {
            continue;
        }
        if expanded {
            open.remove(&id);
            let (entries, subs) = children.remove(&id).unwrap_or_default();
            let total = subs.iter().fold(entries, |acc, s| {
                acc.saturating_add(size.get(s).copied().unwrap_or(0))
            });
            size.insert(id, total);
            continue;
        }
        let t = repo.find_tree(id).map_err(|e| format!("tree {id}: {e}"))?;
        let decoded = t.decode().map_err(|e| format!("tree {id}: {e}"))?;
        let subs: Vec<gix::ObjectId> = decoded
            .entries
            .iter()
            .filter(|e| e.mode.is_tree())
            .map(|e| e.oid.to_owned())
            .collect();
        if subs.iter().any(|s| open.contains(s) || *s == id) {
            return Err(format!("tree {id} contains itself"));
        }
        open.insert(id);
        stack.push((id, true));
        stack.extend(
            subs.iter()
                .filter(|s| !size.contains_key(*s))
                .map(|s| (*s, false)),
        );
        children.insert(id, (decoded.entries.len() as u64, subs));
    }
    Ok(size.get(&root).copied().unwrap_or(0))
}

/// Blob ids and paths of a tree, recursively; refused when that would visit more than
/// `budget` entries.
fn files(
    repo: &gix::Repository,
    tree: gix::ObjectId,
    budget: &mut u64,
) -> Result<Vec<(String, gix::ObjectId)>, String> {
    if expanded_entries(repo, tree)? > *budget {
        return Err(
            "more tree entries than allowed (a tree naming the same subtree over and over?)".into(),
        );
    }
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), tree)];
    while let Some((prefix, id)) = stack.pop() {
        let t = repo.find_tree(id).map_err(|e| format!("tree {id}: {e}"))?;
        let decoded = t.decode().map_err(|e| format!("tree {id}: {e}"))?;
        for e in &decoded.entries {
            if *budget == 0 {
                return Err("more tree entries than allowed (a tree naming the same subtree over and over?)".into());
            }
            *budget -= 1;
            let name = e.filename.to_str_lossy();
            let path = if prefix.is_empty() {
                name.into_owned()
            } else {
                format!("{prefix}/{name}")
            };
            if e.mode.is_tree() {
                stack.push((path, e.oid.to_owned()));
            } else if e.mode.is_blob() {
                out.push((path, e.oid.to_owned()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A distinct tree met in the walk, listed once.
struct TreeNode {
    /// Walk index of the oldest commit seen holding this tree (the walk goes newest
    /// first, so the last index written is the oldest), and the tree's path there.
    rank: usize,
    path: String,
    /// Trees and blobs directly in this one, by name.
    subtrees: Vec<(String, gix::ObjectId)>,
    blobs: Vec<(String, gix::ObjectId)>,
}

/// Longest path followed in the history (deeper trees end the walk, said out loud).
const MAX_PATH: usize = 4096;

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// An older sighting (higher rank) wins; in the same commit, the smaller path (so the
/// report does not depend on the order trees were met).
fn better(rank: usize, path: &str, than_rank: usize, than_path: &str) -> bool {
    rank > than_rank || (rank == than_rank && path < than_path)
}

/// List a tree's entries once; it was met at `path` in the commit of walk index `rank`.
fn list_tree(
    repo: &gix::Repository,
    id: gix::ObjectId,
    path: &str,
    rank: usize,
    budget: &mut u64,
) -> Result<TreeNode, String> {
    if path.len() > MAX_PATH {
        return Err(format!("a path longer than {MAX_PATH} bytes"));
    }
    let t = repo.find_tree(id).map_err(|e| format!("tree {id}: {e}"))?;
    let decoded = t.decode().map_err(|e| format!("tree {id}: {e}"))?;
    let n = decoded.entries.len() as u64;
    if n > *budget {
        return Err("more tree entries than allowed".into());
    }
    *budget -= n;
    let mut node = TreeNode {
        rank,
        path: path.to_string(),
        subtrees: Vec::new(),
        blobs: Vec::new(),
    };
    for e in &decoded.entries {
        let name = e.filename.to_str_lossy().into_owned();
        if e.mode.is_tree() {
            node.subtrees.push((name, e.oid.to_owned()));
        } else if e.mode.is_blob() {
            node.blobs.push((name, e.oid.to_owned()));
        }
    }
    Ok(node)
}

/// Walk the history from `tip` (see [`start`]) and scan each distinct blob once.
///
/// Each distinct tree is listed once, whatever the number of commits or paths holding
/// it (so a "git bomb" costs its few objects, not its billions of paths); a tree met
/// again in an older commit only records that commit and its path there. A blob is
/// then named by the oldest commit holding any tree that holds it, with its path in
/// that commit: each tree's oldest sighting is passed down to the trees inside it,
/// parents before children.
pub fn scan(
    repo: &gix::Repository,
    tip: gix::ObjectId,
    engine: &'static ContentEngine,
    limits: &HistoryLimits,
) -> Result<HistoryScan, String> {
    let mut out = HistoryScan::default();
    let head = repo
        .find_commit(tip)
        .map_err(|e| format!("commit {tip}: {e}"))?;
    let head_tree = head.tree_id().map_err(|e| e.to_string())?.detach();
    let mut budget = limits.max_tree_entries;
    let mut trees: HashMap<gix::ObjectId, TreeNode> = HashMap::new();
    let mut commits: Vec<(gix::ObjectId, i64)> = Vec::new();
    let walk = repo.rev_walk([head.id]).all().map_err(|e| e.to_string())?;
    'walk: for info in walk {
        if out.commits >= limits.max_commits {
            out.skipped
                .push(format!("history cut at {} commits", limits.max_commits));
            break;
        }
        let info = info.map_err(|e| e.to_string())?;
        out.commits += 1;
        let commit = info.object().map_err(|e| e.to_string())?;
        let seconds = commit.time().map(|t| t.seconds).unwrap_or(0);
        let rank = commits.len();
        commits.push((commit.id, seconds));
        let root = commit.tree_id().map_err(|e| e.to_string())?.detach();
        let mut stack = vec![(root, String::new())];
        while let Some((id, path)) = stack.pop() {
            if let Some(t) = trees.get_mut(&id) {
                if better(rank, &path, t.rank, &t.path) {
                    t.rank = rank;
                    t.path = path;
                }
                continue;
            }
            let node = match list_tree(repo, id, &path, rank, &mut budget) {
                Ok(n) => n,
                Err(e) if rank == 0 => return Err(format!("the tree at {tip}: {e}")),
                Err(e) => {
                    out.skipped.push(format!(
                        "history cut at commit {}: {e} ({} tree entries in all at most)",
                        commit.id, limits.max_tree_entries
                    ));
                    break 'walk;
                }
            };
            stack.extend(
                node.subtrees
                    .iter()
                    .map(|(name, sub)| (*sub, join(&path, name))),
            );
            trees.insert(id, node);
        }
    }
    // Each tree's oldest sighting, passed from parents to children (trees form a DAG:
    // a parent's id hashes its children's; a corrupt cycle is simply never reached).
    let mut parents: HashMap<gix::ObjectId, usize> = HashMap::new();
    for t in trees.values() {
        for (_, sub) in &t.subtrees {
            *parents.entry(*sub).or_default() += 1;
        }
    }
    let mut ready: Vec<gix::ObjectId> = trees
        .keys()
        .filter(|id| !parents.contains_key(*id))
        .copied()
        .collect();
    while let Some(id) = ready.pop() {
        let Some(t) = trees.get(&id) else { continue };
        let (rank, path) = (t.rank, t.path.clone());
        let subs = t.subtrees.clone();
        for (name, sub) in subs {
            if let Some(child) = trees.get_mut(&sub) {
                let p = join(&path, &name);
                if p.len() <= MAX_PATH && better(rank, &p, child.rank, &child.path) {
                    child.rank = rank;
                    child.path = p;
                }
            }
            if let Some(n) = parents.get_mut(&sub) {
                *n -= 1;
                if *n == 0 {
                    ready.push(sub);
                }
            }
        }
    }
    let mut first: HashMap<gix::ObjectId, Sighting> = HashMap::new();
    for t in trees.values() {
        for (name, id) in &t.blobs {
            let path = join(&t.path, name);
            let (commit, seconds) = commits[t.rank];
            match first.get_mut(id) {
                Some(s) if !better(t.rank, &path, s.rank, &s.path) => {}
                Some(s) => {
                    *s = Sighting {
                        path,
                        commit,
                        seconds,
                        rank: t.rank,
                    };
                }
                None => {
                    first.insert(
                        *id,
                        Sighting {
                            path,
                            commit,
                            seconds,
                            rank: t.rank,
                        },
                    );
                }
            }
        }
    }
    // The blobs at the tip: those of the trees its tree reaches.
    let mut at_head: HashSet<gix::ObjectId> = HashSet::new();
    let mut seen: HashSet<gix::ObjectId> = HashSet::new();
    let mut stack = vec![head_tree];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(t) = trees.get(&id) {
            at_head.extend(t.blobs.iter().map(|(_, b)| *b));
            stack.extend(t.subtrees.iter().map(|(_, s)| *s));
        }
    }
    let mut by_path: BTreeMap<(String, gix::ObjectId), &Sighting> = BTreeMap::new();
    for (id, s) in &first {
        by_path.insert((s.path.clone(), *id), s);
    }
    for ((path, id), s) in by_path {
        // The size from the object's header, before its bytes are read.
        let size = repo
            .find_header(id)
            .map_err(|e| format!("{path} (blob {id}): {e}"))?
            .size();
        if size > limits.max_blob_bytes {
            out.skipped.push(format!(
                "{path} (blob {id}): larger than {} bytes, not scanned",
                limits.max_blob_bytes
            ));
            continue;
        }
        if out.bytes + size > limits.max_total_bytes {
            out.skipped.push(format!(
                "history cut at {} bytes of blobs",
                limits.max_total_bytes
            ));
            break;
        }
        let obj = repo.find_object(id).map_err(|e| e.to_string())?;
        if out.bytes + obj.data.len() as u64 > limits.max_total_bytes {
            out.skipped.push(format!(
                "history cut at {} bytes of blobs",
                limits.max_total_bytes
            ));
            break;
        }
        out.blobs += 1;
        out.bytes += obj.data.len() as u64;
        let hits = match engine.scan(&path, &obj.data) {
            Ok(h) => h,
            Err(e) => {
                out.skipped.push(format!("{path} (blob {id}): {e}"));
                continue;
            }
        };
        let commit = CommitRef {
            id: s.commit.to_string(),
            date: rfc3339(s.seconds),
            at_head: at_head.contains(&id),
        };
        out.findings
            .extend(
                engine.findings(hits, &format!("{path}@{id}"), |line| Location::ChartFile {
                    path: path.clone(),
                    line: Some(line),
                    rendered: false,
                    object: None,
                    commit: Some(commit.clone()),
                }),
            );
    }
    Ok(out)
}

/// The charts at `tip`: each directory holding a `Chart.yaml` (sub-charts under another
/// chart's `charts/` belong to it), as path → its files (relative to the chart).
/// `rel` (a `file://` dependency's path) joined to the chart directory `dir` of a
/// repository, `..` resolved; `None` when it leaves the repository or is absolute.
pub fn join_repo_path(dir: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

pub fn charts_at_head(
    repo: &gix::Repository,
    tip: gix::ObjectId,
    only: Option<&str>,
    max_bytes: u64,
) -> Result<BTreeMap<String, BTreeMap<String, Vec<u8>>>, String> {
    let head = repo
        .find_commit(tip)
        .map_err(|e| format!("commit {tip}: {e}"))?;
    let mut budget = MAX_HEAD_ENTRIES;
    let tree = head.tree_id().map_err(|e| e.to_string())?.detach();
    let all = files(repo, tree, &mut budget).map_err(|e| format!("the tree at {tip}: {e}"))?;
    let mut dirs: Vec<String> = all
        .iter()
        .filter_map(|(p, _)| {
            p.strip_suffix("Chart.yaml")
                .filter(|d| d.is_empty() || d.ends_with('/'))
                .map(|d| d.trim_end_matches('/').to_string())
        })
        .filter(|d| only.is_none_or(|o| d == o.trim_matches('/')))
        .collect();
    dirs.sort();
    // A chart inside another chart's `charts/` is that chart's sub-chart.
    let roots: Vec<String> = dirs
        .iter()
        .filter(|d| {
            !dirs.iter().any(|o| {
                o != *d && {
                    let prefix = if o.is_empty() {
                        "charts/".to_string()
                    } else {
                        format!("{o}/charts/")
                    };
                    d.starts_with(&prefix)
                }
            })
        })
        .cloned()
        .collect();
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    for root in roots {
        let prefix = if root.is_empty() {
            String::new()
        } else {
            format!("{root}/")
        };
        let mut chart_files = BTreeMap::new();
        for (p, id) in &all {
            let Some(rel) = p.strip_prefix(&prefix) else {
                continue;
            };
            let size = repo.find_header(*id).map_err(|e| e.to_string())?.size();
            if total + size > max_bytes {
                return Err(format!("charts at HEAD larger than {max_bytes} bytes"));
            }
            let data = repo
                .find_object(*id)
                .map_err(|e| e.to_string())?
                .data
                .clone();
            total += data.len() as u64;
            if total > max_bytes {
                return Err(format!("charts at HEAD larger than {max_bytes} bytes"));
            }
            chart_files.insert(rel.to_string(), data);
        }
        out.insert(root, chart_files);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_dependencies_stay_in_the_repository() {
        let j = super::join_repo_path;
        assert_eq!(
            j("charts/web", "../common").as_deref(),
            Some("charts/common")
        );
        assert_eq!(j("", "./lib").as_deref(), Some("lib"));
        assert_eq!(j("web", "../../etc"), None);
        assert_eq!(j("web", "/etc"), None);
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            super::shown_url("https://user:tok@git.example/org/charts.git#x"),
            "https://***@git.example/org/charts.git#x"
        );
        assert_eq!(
            super::shown_url("git://127.0.0.1:9418/r.git"),
            "git://127.0.0.1:9418/r.git"
        );
        assert_eq!(super::shown_url("/local/repo"), "/local/repo");
    }

    #[test]
    fn sources_split_into_url_ref_and_path() {
        let split = |s: &str| super::split_source(s);
        assert_eq!(
            split("https://user:tok@git.example/org/charts.git@v1.2#charts/web"),
            (
                "https://user:tok@git.example/org/charts.git".into(),
                Some("v1.2".into()),
                Some("charts/web".into())
            )
        );
        assert_eq!(
            split("https://user@git.example/org/charts.git"),
            ("https://user@git.example/org/charts.git".into(), None, None)
        );
        assert_eq!(
            split("git://127.0.0.1:9418/r.git@feature/x"),
            (
                "git://127.0.0.1:9418/r.git".into(),
                Some("feature/x".into()),
                None
            )
        );
        assert_eq!(
            split("/no/such/clone@main#c"),
            (
                "/no/such/clone".into(),
                Some("main".into()),
                Some("c".into())
            )
        );
    }
}
