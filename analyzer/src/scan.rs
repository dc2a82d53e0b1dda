//! The scan: walk every layer of every resolved image in parallel (one pass per layer,
//! all detectors), merge per-layer results knowing what later layers deleted, run the
//! config detectors, apply policy, and build the [`Report`].

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::detect::{Detector, ImageContext};
use crate::finding::{Finding, Location, Visibility};
use crate::image::ResolvedImage;
use crate::policy::Policy;
use crate::report::{
    Coverage, FetchStats, ImageReport, Issue, IssueLevel, LayerSummary, PolicyOutcome, Report,
    SCHEMA_VERSION, Summary, Suppressed, Tool,
};
use crate::walk::{LayerIndex, LayerResult, WalkLimits, normalize_path, walk_layer_parallel};

/// Receives progress; the binary draws bars with it on a TTY.
pub trait Progress: Sync {
    fn start(&self, _layers: usize, _bytes: u64) {}
    fn layer_done(&self, _image: &str, _layer: usize, _compressed_bytes: u64) {}
}

/// No progress output.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Knobs of a scan.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub limits: WalkLimits,
    /// Layer workers; 0 = one per core.
    pub threads: usize,
    /// Digest of the rules in effect when user rules were added (default: the built-in
    /// rules' digest).
    pub rules_digest: Option<String>,
}

/// Everything the scan needs besides the images.
pub struct ScanInput<'a> {
    pub target: &'a str,
    pub detectors: &'a [Box<dyn Detector>],
    pub policy: &'a Policy,
    pub options: &'a ScanOptions,
    pub progress: &'a dyn Progress,
    pub fetch: FetchStats,
    /// Issues met before the walk (e.g. while resolving).
    pub issues: Vec<Issue>,
    pub started: Instant,
    /// Runs an image and says what it did (`canary scan --runtime`): its findings join
    /// the static ones before the policy, its issues the coverage section.
    pub runtime: Option<&'a RuntimeHook<'a>>,
    /// Layers walked before (by digest, under the same rules), used instead of walking
    /// them again; their blobs need not be present.
    pub known_layers: HashMap<String, LayerResult>,
    /// Told of every layer this scan walked, as soon as it is done (a store keeps the
    /// complete ones for the next scan).
    pub on_layer_walked: Option<&'a LayerSink<'a>>,
}

/// See [`ScanInput::on_layer_walked`].
pub type LayerSink<'a> = dyn Fn(&str, &LayerResult) + Sync + 'a;

/// See [`ScanInput::runtime`].
pub type RuntimeHook<'a> = dyn Fn(&ResolvedImage) -> (Vec<Finding>, Vec<Issue>) + Sync + 'a;

/// Scan resolved images and build the report.
pub fn scan_images(images: &[ResolvedImage], input: ScanInput<'_>) -> Report {
    // Each distinct layer digest is walked once, however many images or positions use it.
    let mut jobs: Vec<(usize, usize)> = Vec::new();
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    let known = input.known_layers;
    let mut fetch = input.fetch;
    for (i, img) in images.iter().enumerate() {
        for (l, layer) in img.layers.iter().enumerate() {
            if known.contains_key(&layer.digest) {
                continue;
            }
            first_use.entry(layer.digest.as_str()).or_insert_with(|| {
                jobs.push((i, l));
                jobs.len() - 1
            });
        }
    }
    // Biggest layers first (longest-processing-time order): the last layers taken are
    // the small ones, so no core is left walking a big layer alone while the others
    // idle. Results are keyed by digest: the order of the walk changes no output.
    jobs.sort_by_key(|&(i, l)| std::cmp::Reverse(images[i].layers[l].size.unwrap_or(u64::MAX)));
    let total_bytes = jobs
        .iter()
        .filter_map(|&(i, l)| images[i].layers[l].size)
        .sum();
    input.progress.start(jobs.len(), total_bytes);
    let cores = match input.options.threads {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    };
    let threads = cores.min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    fetch.layers_reused = images
        .iter()
        .flat_map(|img| &img.layers)
        .filter(|l| known.contains_key(&l.digest))
        .map(|l| l.digest.as_str())
        .collect::<HashSet<_>>()
        .len();
    let results: Mutex<HashMap<String, LayerResult>> = Mutex::new(known);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, l)) = jobs.get(j) else { break };
                    let img = &images[i];
                    let layer = &img.layers[l];
                    // Fewer layers left than cores: the idle cores help this layer.
                    let spare = cores.saturating_sub(jobs.len() - j);
                    let r = match img.opener.open(layer) {
                        Ok(blob) => walk_layer_parallel(
                            &img.name,
                            layer,
                            blob,
                            input.detectors,
                            &input.options.limits,
                            spare,
                        ),
                        Err(e) => LayerResult {
                            error: Some(e),
                            ..Default::default()
                        },
                    };
                    input.progress.layer_done(&img.name, l, r.compressed_bytes);
                    if let Some(sink) = input.on_layer_walked {
                        sink(&layer.digest, &r);
                    }
                    results
                        .lock()
                        .expect("no worker panics while holding the lock")
                        .insert(layer.digest.clone(), r);
                }
            });
        }
    });
    let results = results.into_inner().expect("workers are done");
    let not_scanned = LayerResult {
        error: Some(crate::Error::Other("layer was not scanned".into())),
        ..Default::default()
    };

    let mut coverage = Coverage {
        complete: true,
        ..Default::default()
    };
    for issue in input.issues {
        push_issue(&mut coverage, issue);
    }
    let mut reported: HashSet<&str> = HashSet::new();
    let mut summary = Summary::default();
    let mut failing = 0;
    let mut reports = Vec::new();
    for img in images {
        let mut layers = Vec::new();
        let mut indexes: Vec<&LayerIndex> = Vec::new();
        let mut findings: Vec<Finding> = Vec::new();
        let mut symlinks_by_layer: Vec<&[(String, String)]> = Vec::new();
        for (l, layer) in img.layers.iter().enumerate() {
            let r = results.get(&layer.digest).unwrap_or(&not_scanned);
            // Issues of a shared layer are reported once.
            if reported.insert(layer.digest.as_str()) {
                if let Some(e) = &r.error {
                    push_issue(
                        &mut coverage,
                        Issue {
                            level: IssueLevel::Error,
                            image: img.name.clone(),
                            layer: Some(layer.digest.clone()),
                            path: None,
                            message: e.to_string(),
                        },
                    );
                }
                for issue in &r.issues {
                    // A reused layer's issues name the image it was first walked in.
                    let mut issue = issue.clone();
                    issue.image.clone_from(&img.name);
                    push_issue(&mut coverage, issue);
                }
                for (k, v) in &r.skipped {
                    *coverage.skipped.entry(k).or_default() += v;
                }
            }
            layers.push(LayerSummary {
                layer: layer.clone(),
                compression: r.compression,
                entries: r.entries,
                compressed_bytes: r.compressed_bytes,
                uncompressed_bytes: r.uncompressed_bytes,
                archive_members: r.nested_members,
                complete: r.error.is_none(),
            });
            // Findings up to where a broken layer stopped still count, at this position.
            findings.extend(r.findings.iter().cloned().map(|mut f| {
                if let Location::ImageFile { layer_index, .. } = &mut f.location {
                    *layer_index = l;
                }
                f
            }));
            symlinks_by_layer.push(&r.symlinks);
            indexes.push(&r.index);
        }
        for f in &mut findings {
            set_visibility(f, &indexes);
        }
        for issue in symlink_loops(&img.name, &img.layers, &indexes, &symlinks_by_layer) {
            push_issue(&mut coverage, issue);
        }
        let ctx = ImageContext {
            name: &img.name,
            config: &img.config,
        };
        for d in input.detectors {
            d.scan_config(&ctx, &mut findings);
        }
        if let Some(run) = input.runtime {
            let (found, issues) = run(img);
            findings.extend(found);
            for issue in issues {
                push_issue(&mut coverage, issue);
            }
        }
        let (kept, suppressed) = apply_policy(findings, input.policy, &mut summary, &mut failing);
        reports.push(ImageReport {
            name: img.name.clone(),
            manifest_digest: img.manifest_digest.clone(),
            index_digest: img.index_digest.clone(),
            platform: img.platform.clone(),
            config_digest: img.config_digest.clone(),
            layers,
            findings: kept,
            suppressed,
        });
    }
    Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "canary",
            version: env!("CARGO_PKG_VERSION"),
        },
        target: input.target.to_string(),
        rules_digest: input
            .options
            .rules_digest
            .clone()
            .unwrap_or_else(canary_rules::rules_digest),
        images: reports,
        charts: vec![],
        summary,
        policy: PolicyOutcome {
            fail_on: input.policy.fail_on,
            failing,
            passed: failing == 0,
            policy_digest: input.policy.digest(),
        },
        coverage,
        fetch,
        duration_ms: input.started.elapsed().as_millis() as u64,
    }
}

/// Deduplicate (one finding per fingerprint and place), sort (severity, rule, place), and
/// split by the policy into kept and suppressed findings, counting them.
pub fn apply_policy(
    mut findings: Vec<Finding>,
    policy: &Policy,
    summary: &mut Summary,
    failing: &mut usize,
) -> (Vec<Finding>, Vec<Suppressed>) {
    let mut seen = HashSet::new();
    findings.retain(|f| seen.insert((f.fingerprint.clone(), f.location.clone())));
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule_id.cmp(&b.rule_id))
            .then_with(|| a.location.display().cmp(&b.location.display()))
    });
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    for f in findings {
        if let Some(rule) = policy.suppression(&f) {
            summary.suppressed += 1;
            suppressed.push(Suppressed {
                reason: rule.reason.clone(),
                finding: f,
            });
        } else {
            summary.count(f.severity);
            if policy.fails(&f) {
                *failing += 1;
            }
            kept.push(f);
        }
    }
    (kept, suppressed)
}

fn push_issue(c: &mut Coverage, issue: Issue) {
    match issue.level {
        IssueLevel::Error => {
            c.complete = false;
            c.errors.push(issue)
        }
        IssueLevel::Warning => c.warnings.push(issue),
    }
}

fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut p = path;
    std::iter::from_fn(move || {
        let i = p.rfind('/')?;
        p = &p[..i];
        Some(if p.is_empty() { "/" } else { p })
    })
}

/// What later layers did to the file a finding is in.
fn set_visibility(f: &mut Finding, indexes: &[&LayerIndex]) {
    let Location::ImageFile {
        layer_index,
        path,
        visibility,
        archive_chain,
        ..
    } = &mut f.location
    else {
        return;
    };
    // A member of an archive is as visible as the archive file.
    let path = archive_chain.first().unwrap_or(path);
    for idx in indexes.iter().skip(*layer_index + 1) {
        if idx.whiteouts.contains(path.as_str())
            || ancestors(path).any(|a| idx.whiteouts.contains(a))
        {
            *visibility = Visibility::Deleted;
            return;
        }
        if ancestors(path).any(|a| idx.opaque.contains(a)) {
            *visibility = Visibility::Deleted;
            return;
        }
        // A non-directory put where one of our parent directories was hides us too.
        if ancestors(path).any(|a| idx.entries.get(a) == Some(&false)) {
            *visibility = Visibility::Deleted;
            return;
        }
        if idx.entries.contains_key(path.as_str()) {
            *visibility = Visibility::Replaced;
            return;
        }
    }
}

/// Symlinks of the final filesystem that resolve in a loop (more than 40 hops, as Linux's
/// ELOOP). Nothing follows links during the static walk; this only reports them.
fn symlink_loops(
    image: &str,
    layers: &[crate::image::Layer],
    indexes: &[&LayerIndex],
    symlinks: &[&[(String, String)]],
) -> Vec<Issue> {
    let mut links: HashMap<String, (String, usize)> = HashMap::new();
    for (l, (idx, ls)) in indexes.iter().zip(symlinks).enumerate() {
        links.retain(|p, _| {
            !(idx.whiteouts.contains(p.as_str())
                || ancestors(p).any(|a| idx.whiteouts.contains(a) || idx.opaque.contains(a))
                || idx.entries.contains_key(p.as_str()))
        });
        for (p, t) in ls.iter() {
            links.insert(p.clone(), (t.clone(), l));
        }
    }
    let mut out = Vec::new();
    let mut names: Vec<&String> = links.keys().collect();
    names.sort();
    for start in names {
        let mut cur = start.clone();
        let mut hops = 0;
        while let Some((target, _)) = links.get(&cur) {
            hops += 1;
            if hops > 40 {
                let layer = links.get(start).map(|(_, l)| *l).unwrap_or(0);
                out.push(Issue {
                    level: IssueLevel::Warning,
                    image: image.to_string(),
                    layer: layers.get(layer).map(|l| l.digest.clone()),
                    path: Some(start.clone()),
                    message: "symlink loop (more than 40 hops); not followed".into(),
                });
                break;
            }
            let joined = if target.starts_with('/') {
                target.clone()
            } else {
                let parent = ancestors(&cur).next().unwrap_or("/");
                format!("{parent}/{target}")
            };
            cur = normalize_path(joined.as_bytes()).0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Category, Confidence, Severity};

    fn f(layer: usize, path: &str) -> Finding {
        Finding {
            rule_id: "x/y".into(),
            category: Category::Secret,
            severity: Severity::High,
            confidence: Confidence::High,
            title: String::new(),
            location: Location::ImageFile {
                layer_index: layer,
                layer_digest: String::new(),
                path: path.into(),
                line: None,
                archive_chain: vec![],
                visibility: Visibility::Visible,
            },
            evidence: String::new(),
            fingerprint: String::new(),
        }
    }

    fn vis(f: &Finding) -> Visibility {
        match f.location {
            Location::ImageFile { visibility, .. } => visibility,
            _ => unreachable!(),
        }
    }

    #[test]
    fn visibility_after_whiteouts_opaque_and_replacement() {
        let mut l1 = LayerIndex::default();
        l1.whiteouts.insert("/etc/secret".into());
        l1.opaque.insert("/opt".into());
        l1.entries.insert("/app/config".into(), false);
        l1.entries.insert("/data".into(), false);
        let l0 = LayerIndex::default();
        let idx = vec![&l0, &l1];
        for (path, want) in [
            ("/etc/secret", Visibility::Deleted),
            ("/opt/a/b", Visibility::Deleted),
            ("/app/config", Visibility::Replaced),
            ("/data/x", Visibility::Deleted),
            ("/etc/other", Visibility::Visible),
        ] {
            let mut x = f(0, path);
            set_visibility(&mut x, &idx);
            assert_eq!(vis(&x), want, "{path}");
        }
        // Whiteouts only act on lower layers.
        let mut x = f(1, "/etc/secret");
        set_visibility(&mut x, &idx);
        assert_eq!(vis(&x), Visibility::Visible);
    }

    #[test]
    fn symlink_loop_is_reported_not_followed() {
        let l0 = LayerIndex::default();
        let links = vec![
            ("/a".to_string(), "b".to_string()),
            ("/b".to_string(), "/a".to_string()),
            ("/ok".to_string(), "/etc/passwd".to_string()),
        ];
        let issues = symlink_loops("img", &[], &[&l0], &[&links]);
        assert_eq!(issues.len(), 2, "{issues:?}");
    }
}
