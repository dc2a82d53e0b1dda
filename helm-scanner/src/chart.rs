//! Charts as `helm template` renders them: loading a chart directory (and its `charts/`
//! sub-charts), merging values the way Helm coalesces them, the objects templates see
//! (`.Values`, `.Release`, `.Chart`, `.Capabilities`, `.Template`, `.Files`), and the
//! output: manifests split, ordered by kind as Helm installs them, each under its
//! `# Source:` line.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::template::yaml::{from_yaml, to_yaml};
use crate::template::{Engine, ExecError};

/// Something wrong with a chart, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{path}: {message}")]
    Bad { path: String, message: String },
    #[error("{0}")]
    Parse(#[from] crate::template::ParseError),
    #[error("{0}")]
    Exec(#[from] ExecError),
}

fn bad(path: impl Into<String>, message: impl Into<String>) -> ChartError {
    ChartError::Bad {
        path: path.into(),
        message: message.into(),
    }
}

/// Limits on what a chart (from anyone) may hold.
#[derive(Debug, Clone)]
pub struct ChartLimits {
    pub max_files: usize,
    pub max_bytes: u64,
    pub max_subchart_depth: usize,
}

impl Default for ChartLimits {
    fn default() -> Self {
        ChartLimits {
            max_files: 10_000,
            max_bytes: 64 << 20,
            max_subchart_depth: 10,
        }
    }
}

/// A loaded chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `Chart.yaml`, as read.
    pub metadata: Map<String, Value>,
    /// `values.yaml`.
    pub values: Value,
    /// Template path relative to the chart (`templates/x.yaml`) → source.
    pub templates: BTreeMap<String, String>,
    /// Every other file (`.Files`), relative path → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    pub subcharts: Vec<Chart>,
    /// Every file of the chart as read (Chart.yaml and values.yaml too), for scanning.
    pub raw: BTreeMap<String, Vec<u8>>,
    /// The directory's name (sub-charts sit in `charts/<dir>`).
    pub dir_name: String,
}

impl Chart {
    /// A chart with nothing in it (to build one field by field).
    pub fn empty() -> Chart {
        Chart {
            metadata: Map::new(),
            values: Value::Object(Map::new()),
            templates: BTreeMap::new(),
            files: BTreeMap::new(),
            subcharts: Vec::new(),
            raw: BTreeMap::new(),
            dir_name: String::new(),
        }
    }

    pub fn name(&self) -> &str {
        self.metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `Chart.yaml`'s version (a number written unquoted included).
    pub fn version(&self) -> String {
        match self.metadata.get("version") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }

    /// A library chart (`type: library`): only its helpers are used.
    pub fn is_library(&self) -> bool {
        self.metadata
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("library"))
    }
}

/// Read a chart directory (its `charts/` sub-charts, directories or `.tgz`, included).
pub fn load_dir(dir: &Path, limits: &ChartLimits) -> Result<Chart, ChartError> {
    let mut budget = (limits.max_files, limits.max_bytes);
    let mut all = BTreeMap::new();
    walk(dir, dir, &mut all, &mut budget)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    from_files(
        &dir.display().to_string(),
        &name,
        all,
        limits,
        0,
        &mut budget,
    )
}

/// Read a packaged chart (`helm package`'s `.tgz`): one top directory holding the chart.
pub fn load_tgz(path: &Path, limits: &ChartLimits) -> Result<Chart, ChartError> {
    let bytes = std::fs::read(path).map_err(|e| bad(path.display().to_string(), e.to_string()))?;
    load_tgz_bytes(&path.display().to_string(), &bytes, limits)
}

/// A packaged chart held in memory (fetched from a repository or registry); `origin`
/// names it in errors.
pub fn load_tgz_bytes(
    origin: &str,
    bytes: &[u8],
    limits: &ChartLimits,
) -> Result<Chart, ChartError> {
    let mut budget = (limits.max_files, limits.max_bytes);
    let (name, all) = untar(origin, bytes, &mut budget)?;
    from_files(origin, &name, all, limits, 0, &mut budget)
}

/// The files of a `.tgz` chart, relative to its top directory, which is returned too.
/// Only regular files and directories are accepted; `..`, absolute paths, links and
/// devices are refused, as are archives past the budget (a gzip bomb stops there).
fn untar(
    origin: &str,
    bytes: &[u8],
    budget: &mut (usize, u64),
) -> Result<(String, BTreeMap<String, Vec<u8>>), ChartError> {
    use std::io::Read;
    // Everything decompressed counts, headers and skipped bodies too: a gzip bomb stops
    // at the budget (plus room for the tar framing).
    let gz = flate2::read::GzDecoder::new(bytes).take(budget.1.saturating_add(16 << 20));
    let mut ar = tar::Archive::new(gz);
    let mut out = BTreeMap::new();
    let mut top: Option<String> = None;
    let entries = ar
        .entries()
        .map_err(|e| bad(origin, format!("not a tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(origin, format!("broken archive: {e}")))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        let clean = raw.trim_start_matches("./");
        if clean.starts_with('/') || clean.split('/').any(|c| c == "..") {
            return Err(bad(origin, format!("{raw:?}: path leaves the chart")));
        }
        if !(kind.is_file() || kind.is_dir()) {
            return Err(bad(
                origin,
                format!(
                    "{raw:?}: only files and directories are accepted (links and devices are not)"
                ),
            ));
        }
        let Some((first, rest)) = clean.split_once('/') else {
            if kind.is_dir() {
                continue;
            }
            return Err(bad(
                origin,
                format!("{raw:?}: a file outside the chart's directory"),
            ));
        };
        match &top {
            None => top = Some(first.to_string()),
            Some(t) if t != first => {
                return Err(bad(origin, format!("{raw:?}: more than one top directory")));
            }
            _ => {}
        }
        if kind.is_dir() || rest.is_empty() {
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if budget.0 == 0 || size > budget.1 {
            return Err(bad(origin, "chart holds too many files or bytes"));
        }
        let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
        (&mut entry)
            .take(budget.1 + 1)
            .read_to_end(&mut data)
            .map_err(|e| bad(origin, format!("{raw:?}: {e}")))?;
        if data.len() as u64 > budget.1 {
            return Err(bad(origin, "chart holds too many files or bytes"));
        }
        budget.0 -= 1;
        budget.1 -= data.len() as u64;
        out.insert(rest.trim_end_matches('/').to_string(), data);
    }
    let top = top.ok_or_else(|| bad(origin, "empty archive"))?;
    Ok((top, out))
}

/// A chart from its files in memory (e.g. a Git tree).
pub fn load_files(
    origin: &str,
    dir_name: &str,
    files: BTreeMap<String, Vec<u8>>,
    limits: &ChartLimits,
) -> Result<Chart, ChartError> {
    let mut budget = (limits.max_files, limits.max_bytes);
    from_files(origin, dir_name, files, limits, 0, &mut budget)
}

/// A chart from its files (relative paths): `charts/<dir>/…` and `charts/*.tgz` become
/// sub-charts.
fn from_files(
    origin: &str,
    dir_name: &str,
    files_in: BTreeMap<String, Vec<u8>>,
    limits: &ChartLimits,
    depth: usize,
    budget: &mut (usize, u64),
) -> Result<Chart, ChartError> {
    if depth > limits.max_subchart_depth {
        return Err(bad(origin, "sub-charts nested too deeply"));
    }
    let mut all: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut sub_dirs: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut sub_tgz: Vec<(String, Vec<u8>)> = Vec::new();
    for (rel, bytes) in files_in {
        if let Some(rest) = rel.strip_prefix("charts/") {
            match rest.split_once('/') {
                Some((sub, inner)) => {
                    sub_dirs
                        .entry(sub.to_string())
                        .or_default()
                        .insert(inner.to_string(), bytes);
                }
                None if rest.ends_with(".tgz") => sub_tgz.push((rest.to_string(), bytes)),
                None => {
                    all.insert(rel, bytes);
                }
            }
        } else {
            all.insert(rel, bytes);
        }
    }
    let at = |name: &str| format!("{origin}/{name}");
    let text = |name: &str| -> Result<Option<String>, ChartError> {
        match all.get(name) {
            None => Ok(None),
            Some(b) => String::from_utf8(b.clone())
                .map(Some)
                .map_err(|_| bad(at(name), "not UTF-8")),
        }
    };
    let chart_yaml =
        text("Chart.yaml")?.ok_or_else(|| bad(origin, "no Chart.yaml: not a chart"))?;
    let metadata = match from_yaml(&chart_yaml).map_err(|e| bad(at("Chart.yaml"), e))? {
        Value::Object(o) => o,
        _ => return Err(bad(at("Chart.yaml"), "not a mapping")),
    };
    if metadata
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(bad(at("Chart.yaml"), "chart has no name"));
    }
    let values = match text("values.yaml")? {
        Some(t) => match from_yaml(&t).map_err(|e| bad(at("values.yaml"), e))? {
            Value::Null => Value::Object(Map::new()),
            v @ Value::Object(_) => v,
            _ => return Err(bad(at("values.yaml"), "not a mapping")),
        },
        None => Value::Object(Map::new()),
    };
    let raw = all.clone();
    let mut templates = BTreeMap::new();
    let mut files = BTreeMap::new();
    for (rel, bytes) in all {
        if rel.starts_with("templates/") {
            let src =
                String::from_utf8(bytes).map_err(|_| bad(at(&rel), "template is not UTF-8"))?;
            templates.insert(rel, src);
        } else if !matches!(
            rel.as_str(),
            "Chart.yaml"
                | "values.yaml"
                | "values.schema.json"
                | "Chart.lock"
                | "requirements.yaml"
                | "requirements.lock"
        ) {
            files.insert(rel, bytes);
        }
    }
    let mut subcharts = Vec::new();
    for (sub, inner) in sub_dirs {
        subcharts.push(from_files(
            &at(&format!("charts/{sub}")),
            &sub,
            inner,
            limits,
            depth + 1,
            budget,
        )?);
    }
    for (name, bytes) in sub_tgz {
        let sub_origin = at(&format!("charts/{name}"));
        let (_, inner) = untar(&sub_origin, &bytes, budget)?;
        subcharts.push(from_files(
            &sub_origin,
            name.trim_end_matches(".tgz"),
            inner,
            limits,
            depth + 1,
            budget,
        )?);
    }
    Ok(Chart {
        metadata,
        values,
        templates,
        files,
        subcharts,
        raw,
        dir_name: dir_name.to_string(),
    })
}

/// Files of a chart directory, relative paths (symlinks are refused: a chart from anyone
/// must not point outside itself).
fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, Vec<u8>>,
    budget: &mut (usize, u64),
) -> Result<(), ChartError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad(dir.display().to_string(), e.to_string()))?;
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let ft = e
            .file_type()
            .map_err(|e| bad(path.display().to_string(), e.to_string()))?;
        if ft.is_symlink() {
            return Err(bad(
                path.display().to_string(),
                "symlinks are not followed in charts",
            ));
        }
        if !ft.is_dir() && !ft.is_file() {
            return Err(bad(
                path.display().to_string(),
                "not a regular file (FIFO, socket or device)",
            ));
        }
        if ft.is_dir() {
            if rel != ".git" {
                walk(root, &path, out, budget)?;
            }
            continue;
        }
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        if budget.0 == 0 || len > budget.1 {
            return Err(bad(
                path.display().to_string(),
                "chart holds too many files or bytes",
            ));
        }
        budget.0 -= 1;
        budget.1 -= len;
        let bytes =
            std::fs::read(&path).map_err(|e| bad(path.display().to_string(), e.to_string()))?;
        out.insert(rel, bytes);
    }
    Ok(())
}

/// Helm's `coalesce`: `over` wins, maps merge deeply, and a null in `over` deletes.
pub fn coalesce(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match out.get(k) {
                    Some(existing) => coalesce(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, o) => o.clone(),
    }
}

/// Apply one `--set`/`--set-string` expression (`a.b=c,d[0]=e`), as Helm's strvals does.
pub fn apply_set(values: &mut Value, expr: &str, as_string: bool) -> Result<(), String> {
    for assignment in split_unescaped(expr, ',') {
        let Some((key, raw)) = assignment.split_once('=') else {
            return Err(format!(
                "{assignment:?}: key without a value (use key=value)"
            ));
        };
        let raw = raw.replace("\\,", ",");
        let val = if as_string {
            Value::String(raw)
        } else {
            match raw.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                s => s
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(s.to_string())),
            }
        };
        set_path(values, &split_unescaped(key, '.'), val)?;
    }
    Ok(())
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut esc = false;
    for c in s.chars() {
        if esc {
            if c != sep {
                out.last_mut().expect("non-empty").push('\\');
            }
            out.last_mut().expect("non-empty").push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            out.push(String::new());
        } else {
            out.last_mut().expect("non-empty").push(c);
        }
    }
    out
}

fn set_path(v: &mut Value, path: &[String], val: Value) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *v = val;
        return Ok(());
    };
    // `name[3]`.
    let (name, index) = match first.find('[') {
        Some(i) if first.ends_with(']') => {
            let idx: usize = first[i + 1..first.len() - 1]
                .parse()
                .map_err(|_| format!("bad list index in {first:?}"))?;
            if idx > 65_535 {
                return Err(format!("list index {idx} too large"));
            }
            (&first[..i], Some(idx))
        }
        _ => (first.as_str(), None),
    };
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let obj = v.as_object_mut().expect("made an object");
    let slot = obj.entry(name.to_string()).or_insert(Value::Null);
    match index {
        None => set_path(slot, rest, val),
        Some(i) => {
            if !slot.is_array() {
                *slot = Value::Array(vec![]);
            }
            let arr = slot.as_array_mut().expect("made a list");
            while arr.len() <= i {
                arr.push(Value::Null);
            }
            set_path(&mut arr[i], rest, val)
        }
    }
}

/// What a render is given besides the chart.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub release_name: String,
    pub namespace: String,
    /// Merged user values (`-f` files, then `--set`s).
    pub values: Value,
    /// `v1.35.0` by default, as Helm v4.1.4 without a cluster.
    pub kube_version: String,
    /// Added to the default API versions.
    pub api_versions: Vec<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            release_name: "release-name".into(),
            namespace: "default".into(),
            values: Value::Object(Map::new()),
            kube_version: "v1.35.0".into(),
            api_versions: vec![],
        }
    }
}

const DEFAULT_API_VERSIONS: &str = include_str!("../data/api-versions.txt");

/// `.Chart`: Chart.yaml's keys as Helm's Go struct names them.
fn chart_object(meta: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (k, v) in meta {
        let key = match k.as_str() {
            "apiVersion" => "APIVersion".to_string(),
            "appVersion" => "AppVersion".to_string(),
            "kubeVersion" => "KubeVersion".to_string(),
            other => {
                let mut c = other.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => continue,
                }
            }
        };
        out.insert(key, v.clone());
    }
    Value::Object(out)
}

/// The `.Files` object: its files under a private key the methods read.
const FILES_KEY: &str = "\u{0}files";

thread_local! {
    /// The files of each chart being rendered on this thread, shared by every template
    /// context instead of copied into each (a chart's files can be tens of MiB and its
    /// templates thousands).
    static FILE_SETS: std::cell::RefCell<Vec<SharedFiles>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

type SharedFiles = std::sync::Arc<BTreeMap<String, Vec<u8>>>;

/// Clears this thread's file sets when a render ends, however it ends.
struct FileSets;

impl FileSets {
    fn register(files: &BTreeMap<String, Vec<u8>>) -> usize {
        FILE_SETS.with(|s| {
            let mut s = s.borrow_mut();
            s.push(std::sync::Arc::new(files.clone()));
            s.len() - 1
        })
    }
}

impl Drop for FileSets {
    fn drop(&mut self) {
        FILE_SETS.with(|s| s.borrow_mut().clear());
    }
}

/// `.Files`: a handle on a registered file set, optionally narrowed to some names
/// (what `.Files.Glob` returns).
fn files_object(set: usize, only: Option<Vec<String>>) -> Value {
    json!({ FILES_KEY: { "set": set, "only": only } })
}

/// Glob as Helm's `.Files.Glob` (gobwas/glob with `/` as separator).
fn glob_match(pattern: &str, path: &str) -> bool {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher().is_match(path))
        .unwrap_or(false)
}

/// Methods of the objects templates see.
fn methods(recv: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let arg = |i: usize| {
        args.get(i)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if let Some(handle) = recv.get(FILES_KEY) {
        let set = handle.get("set").and_then(Value::as_u64)? as usize;
        let files = FILE_SETS.with(|s| s.borrow().get(set).cloned())?;
        let only: Option<std::collections::HashSet<&str>> = handle
            .get("only")
            .and_then(Value::as_array)
            .map(|o| o.iter().filter_map(Value::as_str).collect());
        let visible = |k: &str| only.as_ref().is_none_or(|o| o.contains(k));
        let get = |p: &str| {
            files
                .get(p)
                .filter(|_| visible(p))
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        return Some(Ok(match name {
            "Get" => Value::String(get(&arg(0))),
            "GetBytes" => Value::Array(
                files
                    .get(&arg(0))
                    .filter(|_| visible(&arg(0)))
                    .map(|b| b.iter().map(|x| Value::from(*x)).collect())
                    .unwrap_or_default(),
            ),
            "Lines" => {
                let t = get(&arg(0));
                if t.is_empty() {
                    Value::Array(vec![])
                } else {
                    Value::Array(
                        t.split('\n')
                            .map(|l| Value::String(l.to_string()))
                            .collect(),
                    )
                }
            }
            "Glob" => {
                let pat = arg(0);
                let names: Vec<String> = files
                    .keys()
                    .filter(|k| visible(k) && glob_match(&pat, k))
                    .cloned()
                    .collect();
                files_object(set, Some(names))
            }
            "AsConfig" | "AsSecrets" => {
                let mut out = Map::new();
                for (k, v) in files.iter().filter(|(k, _)| visible(k)) {
                    let base = k.rsplit('/').next().unwrap_or(k).to_string();
                    let text = String::from_utf8_lossy(v);
                    out.insert(
                        base,
                        Value::String(if name == "AsSecrets" {
                            base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
                        } else {
                            text.to_string()
                        }),
                    );
                }
                if out.is_empty() {
                    return Some(Ok(Value::String(String::new())));
                }
                Value::String(
                    to_yaml(&Value::Object(out))
                        .trim_end_matches('\n')
                        .to_string(),
                )
            }
            _ => return None,
        }));
    }
    match (recv, name) {
        (Value::Array(list), "Has") => Some(Ok(Value::Bool(
            list.iter().any(|v| v.as_str() == Some(arg(0).as_str())),
        ))),
        _ => None,
    }
}

/// Helm's install order of kinds (what `helm template` prints first).
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// One rendered manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `chart/templates/x.yaml`.
    pub source: String,
    pub content: String,
    pub kind: String,
    pub hook: bool,
}

/// A chart rendered: manifests in Helm's order, and templates that failed (with file and
/// line), whose raw text is still there to scan.
#[derive(Debug, Default)]
pub struct Rendered {
    pub manifests: Vec<Manifest>,
    pub errors: Vec<String>,
    /// Values the render made at random (`randAlphaNum`, `genCA`…): not the chart's own
    /// secrets, and different on every render.
    pub generated: Vec<String>,
}

impl Rendered {
    /// The text `helm template` prints.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for m in self
            .manifests
            .iter()
            .filter(|m| !m.hook)
            .chain(self.manifests.iter().filter(|m| m.hook))
        {
            out.push_str(&format!("---\n# Source: {}\n{}\n", m.source, m.content));
        }
        out
    }
}

/// Every template of the chart and its sub-charts: `(name as Helm names it, source, the
/// context it renders with)`. `values` are the chart's coalesced values; each sub-chart
/// sees those under its name.
fn collect<'c>(
    chart: &'c Chart,
    prefix: &str,
    values: Value,
    opts: &RenderOptions,
    out: &mut Vec<(String, &'c str, Value)>,
) {
    let name = chart.name().to_string();
    let base = if prefix.is_empty() {
        name.clone()
    } else {
        format!("{prefix}/charts/{name}")
    };
    let mut api: Vec<Value> = DEFAULT_API_VERSIONS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| Value::String(l.trim().to_string()))
        .collect();
    api.extend(opts.api_versions.iter().cloned().map(Value::String));
    let kv = opts.kube_version.trim_start_matches('v');
    let mut kparts = kv.split('.');
    let (major, minor) = (kparts.next().unwrap_or("1"), kparts.next().unwrap_or("0"));
    let mut chart_obj = chart_object(&chart.metadata);
    if let Value::Object(o) = &mut chart_obj {
        o.insert("IsRoot".into(), Value::Bool(prefix.is_empty()));
    }
    let root = json!({
        "Values": values.clone(),
        "Release": {
            "Name": opts.release_name, "Namespace": opts.namespace, "Service": "Helm",
            "IsInstall": true, "IsUpgrade": false, "Revision": 1,
        },
        "Chart": chart_obj,
        "Capabilities": {
            "KubeVersion": {"Version": format!("v{kv}"), "Major": major, "Minor": minor, "GitVersion": format!("v{kv}")},
            "APIVersions": api,
            "HelmVersion": {"Version": "v4.1.4", "GitCommit": "", "GitTreeState": "clean", "GoVersion": ""},
        },
        "Files": files_object(FileSets::register(&chart.files), None),
    });
    for (rel, src) in &chart.templates {
        // A library chart lends its helpers; its other templates are not used at all.
        let file = rel.rsplit('/').next().unwrap_or(rel);
        if chart.is_library() && !file.starts_with('_') {
            continue;
        }
        let tname = format!("{base}/{rel}");
        let mut ctx = root.clone();
        ctx["Template"] = json!({"Name": tname, "BasePath": format!("{base}/templates")});
        out.push((tname, src, ctx));
    }
    for sub in &chart.subcharts {
        let sv = match values.get(sub.name()) {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => Value::Object(Map::new()),
        };
        collect(sub, &base, sv, opts, out);
    }
}

/// Render a chart as `helm template` does.
pub fn render(chart: &Chart, opts: &RenderOptions) -> Result<Rendered, ChartError> {
    let mut engine = Engine::new();
    engine.methods = Some(methods);
    let mut out = Rendered::default();
    if chart.is_library() {
        out.errors.push(format!(
            "{}: library charts are not installable",
            chart.name()
        ));
        return Ok(out);
    }
    let chart = &crate::deps::process(chart, &opts.values, &mut out.errors);
    let _file_sets = FileSets;
    // The caller's values as given: files' numbers are floats already, --set integers stay.
    let values = crate::deps::coalesce_values(chart, &opts.values).unwrap_or_else(|e| {
        out.errors.push(format!("{}: {e}", chart.name()));
        coalesce(&chart.values, &opts.values)
    });
    let mut sources = Vec::new();
    collect(chart, "", values, opts, &mut sources);
    // Parsed as Helm parses them: deepest first, then names in reverse order, so where
    // two charts define the same helper the parent's (or the first file's) wins; an
    // empty redefinition replaces nothing.
    sources.sort_by(|a, b| {
        let depth = |n: &str| n.matches('/').count();
        depth(&b.0).cmp(&depth(&a.0)).then_with(|| b.0.cmp(&a.0))
    });
    let mut contexts = Vec::new();
    for (name, src, ctx) in sources {
        // A template that does not parse is reported; the others still render.
        match engine.add(&name, src) {
            Ok(()) => contexts.push((name, ctx)),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for (name, ctx) in &contexts {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') || base == "NOTES.txt" {
            continue;
        }
        match engine.render(name, ctx) {
            Ok(text) => {
                files.insert(name.clone(), text.replace("<no value>", ""));
            }
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    out.generated = engine.take_generated();
    let mut manifests = Vec::new();
    for (source, content) in files {
        if content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(&content) {
            let head = from_yaml(&doc).unwrap_or(Value::Null);
            let kind = head
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let hook = head
                .pointer("/metadata/annotations/helm.sh~1hook")
                .is_some();
            manifests.push(Manifest {
                source: source.clone(),
                content: doc,
                kind,
                hook,
            });
        }
    }
    let rank = |k: &str| INSTALL_ORDER.iter().position(|x| *x == k);
    manifests.sort_by(|a, b| match (rank(&a.kind), rank(&b.kind)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.kind.cmp(&b.kind),
    });
    out.manifests = manifests;
    Ok(out)
}

/// The manifests of `helm template`'s output (`---` / `# Source: …` / document), for
/// charts rendered by Helm itself (`--helm-binary`).
pub fn parse_helm_output(text: &str) -> Rendered {
    let mut out = Rendered::default();
    let mut docs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(Vec::new());
        } else if let Some(d) = docs.last_mut() {
            d.push(line);
        }
    }
    for lines in docs {
        let (source, body) = match lines.first().and_then(|l| l.strip_prefix("# Source: ")) {
            Some(src) => (src.to_string(), &lines[1..]),
            None => (String::new(), &lines[..]),
        };
        let content = body.join("\n").trim().to_string();
        if content.is_empty() {
            continue;
        }
        let head = from_yaml(&content).unwrap_or(Value::Null);
        out.manifests.push(Manifest {
            source,
            kind: head
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            hook: head
                .pointer("/metadata/annotations/helm.sh~1hook")
                .is_some(),
            content,
        });
    }
    out
}

/// Write a loaded chart (its files, and each sub-chart under `charts/<dir>/`) into
/// `dir`, e.g. for Helm itself to render it.
pub fn write_dir(chart: &Chart, dir: &Path) -> std::io::Result<()> {
    for (rel, bytes) in &chart.raw {
        if rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            || rel.starts_with('/')
        {
            return Err(std::io::Error::other(format!("unsafe path {rel:?}")));
        }
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, bytes)?;
    }
    for (i, sub) in chart.subcharts.iter().enumerate() {
        let name = if sub.dir_name.is_empty()
            || sub.dir_name.contains(['/', '\\'])
            || sub.dir_name.starts_with('.')
        {
            format!("sub{i}")
        } else {
            sub.dir_name.clone()
        };
        write_dir(sub, &dir.join("charts").join(name))?;
    }
    Ok(())
}

/// Helm's `SplitManifests`: documents separated by `---` lines, trimmed, empty ones
/// dropped.
fn split_manifests(text: &str) -> Vec<String> {
    let re = regex_sep();
    re.split(text.trim())
        .filter(|d| !d.is_empty())
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

fn regex_sep() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"(?:^|\s*\n)---\s*").expect("static pattern"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thousands of templates and a large file: each template's context shares the
    /// files (copying them per template would need gigabytes here).
    #[test]
    fn helm_output_splits_into_manifests_with_their_sources() {
        let r = super::parse_helm_output(
            "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# Source: c/templates/job.yaml\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  annotations:\n    helm.sh/hook: pre-install\n",
        );
        assert_eq!(r.manifests.len(), 2);
        assert_eq!(r.manifests[0].source, "c/templates/a.yaml");
        assert_eq!(r.manifests[0].kind, "ConfigMap");
        assert!(!r.manifests[0].hook);
        assert!(r.manifests[1].hook);
        assert_eq!(
            r.text(),
            "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# Source: c/templates/job.yaml\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  annotations:\n    helm.sh/hook: pre-install\n"
        );
    }

    #[test]
    fn many_templates_share_one_copy_of_the_files() {
        let mut files = BTreeMap::new();
        files.insert(
            "Chart.yaml".to_string(),
            b"apiVersion: v2\nname: big\nversion: 1.0.0\n".to_vec(),
        );
        files.insert("files/blob.txt".to_string(), vec![b'x'; 2 << 20]);
        for i in 0..3000 {
            files.insert(
                format!("templates/t{i}.yaml"),
                format!("kind: ConfigMap\nmetadata:\n  name: t{i}\ndata:\n  n: {{{{ .Files.Get \"files/blob.txt\" | len }}}}\n")
                    .into_bytes(),
            );
        }
        let chart = load_files("big", "big", files, &ChartLimits::default()).unwrap();
        let r = render(&chart, &RenderOptions::default()).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.manifests.len(), 3000);
        assert!(r.manifests[0].content.contains("n: 2097152"));
    }
}
