//! Scanning a chart: secrets and miners in every file (templates, values, files,
//! sub-charts) and in every rendered manifest, the misconfiguration checks on each
//! rendered object, and the images the chart deploys, per workload.

use canary_analyzer::detect::content::ContentEngine;
use canary_analyzer::finding::{Category, Confidence, Finding, Location, Severity};
use serde_json::Value;

use crate::chart::{Chart, Rendered};
use crate::k8s::{containers, pod_spec};

/// An image a workload of the chart runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageUse {
    /// `Deployment/web`.
    pub object: String,
    /// `containers app`.
    pub container: String,
    pub image: String,
    /// The template it came from.
    pub source: String,
}

/// What scanning a chart found.
#[derive(Debug, Default)]
pub struct ChartScan {
    pub findings: Vec<Finding>,
    pub images: Vec<ImageUse>,
    /// Problems met (a file the engine could not scan, a rendered document that is not
    /// YAML), each naming the file.
    pub problems: Vec<String>,
}

fn severity(s: &str) -> Severity {
    s.parse().unwrap_or(Severity::Medium)
}

/// Secrets and miners in every file of a chart's sub-charts (`charts/<dir>/…` under
/// `prefix`), and of the chart itself.
pub fn scan_files(chart: &Chart, prefix: &str, engine: &'static ContentEngine) -> ChartScan {
    let mut out = ChartScan::default();
    scan_files_into(chart, prefix, engine, &mut out);
    out
}

fn scan_files_into(
    chart: &Chart,
    prefix: &str,
    engine: &'static ContentEngine,
    out: &mut ChartScan,
) {
    for (rel, bytes) in &chart.raw {
        let path = format!("{prefix}{rel}");
        match engine.scan(&path, bytes) {
            Ok(hits) => {
                out.findings
                    .extend(engine.findings(hits, &path, |line| Location::ChartFile {
                        path: path.clone(),
                        line: Some(line),
                        rendered: false,
                        object: None,
                        commit: None,
                    }))
            }
            Err(e) => out.problems.push(format!("{path}: {e}")),
        }
    }
    for sub in &chart.subcharts {
        scan_files_into(
            sub,
            &format!("{prefix}charts/{}/", sub.dir_name),
            engine,
            out,
        );
    }
}

/// Overwrites every value the render made at random (each line of it, and its base64
/// form) with `*`s of the same length, so line numbers hold and a key `genCA` made, or
/// a password `randAlphaNum` made, is not reported as the chart's. Built once per
/// render; `*` is not a base64 character, so a masked key body does not decode.
struct Masker(Option<aho_corasick::AhoCorasick>);

impl Masker {
    fn new(generated: &[String]) -> Masker {
        use base64::Engine as _;
        // PEM armor lines are common to every key: left alone, or the chart's own keys
        // would lose theirs.
        let mut needles: Vec<String> = Vec::new();
        for g in generated {
            needles.extend(
                g.lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 8 && !l.starts_with("-----"))
                    .map(str::to_string),
            );
            needles.push(base64::engine::general_purpose::STANDARD.encode(g));
        }
        Masker(
            (!needles.is_empty())
                .then(|| {
                    aho_corasick::AhoCorasick::builder()
                        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                        .build(&needles)
                        .ok()
                })
                .flatten(),
        )
    }

    /// `text` masked, in one pass however many values were generated.
    fn mask<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        let Some(ac) = self.0.as_ref().filter(|ac| ac.is_match(text)) else {
            return std::borrow::Cow::Borrowed(text);
        };
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in ac.find_iter(text) {
            out.push_str(&text[last..m.start()]);
            out.extend(text[m.start()..m.end()].chars().map(|_| '*'));
            last = m.end();
        }
        out.push_str(&text[last..]);
        std::borrow::Cow::Owned(out)
    }
}

/// Scan a chart and what it rendered to. `files_prefix`: where the chart's files are
/// named from (`None` when its files were scanned already, e.g. through the Git history).
pub fn scan_chart(
    chart: &Chart,
    rendered: &Rendered,
    engine: &'static ContentEngine,
    files_prefix: Option<&str>,
    checks: &crate::checks::CheckOptions,
) -> ChartScan {
    let mut out = ChartScan::default();
    if let Some(prefix) = files_prefix {
        scan_files_into(chart, prefix, engine, &mut out);
    }
    let masker = Masker::new(&rendered.generated);
    for m in &rendered.manifests {
        let obj = match crate::template::yaml::from_yaml(&m.content) {
            Ok(v) => v,
            Err(e) => {
                out.problems
                    .push(format!("{} (rendered): not YAML: {e}", m.source));
                Value::Null
            }
        };
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let object = format!("{}/{name}", if m.kind.is_empty() { "?" } else { &m.kind });
        let content = masker.mask(&m.content);
        match engine.scan(&m.source, content.as_bytes()) {
            Ok(hits) => out.findings.extend(engine.findings(
                hits,
                &format!("{}#{object}", m.source),
                |line| Location::ChartFile {
                    path: m.source.clone(),
                    line: Some(line),
                    rendered: true,
                    object: Some(object.clone()),
                    commit: None,
                },
            )),
            Err(e) => out.problems.push(format!("{} (rendered): {e}", m.source)),
        }
        for hit in crate::checks::check_with(&m.kind, &obj, checks) {
            out.findings.push(coded_finding(
                &hit,
                &format!("{}#{object}", m.source),
                Location::ChartFile {
                    path: m.source.clone(),
                    line: None,
                    rendered: true,
                    object: Some(object.clone()),
                    commit: None,
                },
                engine,
            ));
        }
        if let Some(spec) = pod_spec(&m.kind, &obj) {
            for (list, _, c) in containers(spec) {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    out.images.push(ImageUse {
                        object: object.clone(),
                        container: format!(
                            "{list} {}",
                            c.get("name").and_then(Value::as_str).unwrap_or("?")
                        ),
                        image: image.to_string(),
                        source: m.source.clone(),
                    });
                }
            }
        }
    }
    out
}

/// A finding of a rule of `k8s-checks.toml` or `chart-checks.toml`.
fn coded_finding(
    hit: &crate::checks::CheckHit,
    key: &str,
    location: Location,
    engine: &'static ContentEngine,
) -> Finding {
    let rule = canary_rules::k8s_checks()
        .iter()
        .chain(canary_rules::chart_checks())
        .find(|r| r.id == hit.rule_id);
    Finding {
        rule_id: hit.rule_id.to_string(),
        category: if hit.rule_id == "k8s/miner-args" {
            Category::Miner
        } else {
            Category::Misconfig
        },
        severity: rule
            .map(|r| severity(&r.severity))
            .unwrap_or(Severity::Medium),
        confidence: Confidence::High,
        title: rule.map(|r| r.title.clone()).unwrap_or_default(),
        fingerprint: Finding::fingerprint_of(hit.rule_id, key, hit.detail.as_bytes()),
        location,
        // Commands and URLs can carry tokens: shown redacted.
        evidence: engine.redact_text(hit.detail.as_bytes()),
    }
}

/// The supply-chain checks on a chart and its sub-charts: dependencies from plain-HTTP
/// repositories, and version ranges no lock file pins. `prefix`: where the chart's files
/// are named from (`charts/web/` in a repository).
pub fn supply_chain(chart: &Chart, prefix: &str, engine: &'static ContentEngine) -> Vec<Finding> {
    let mut out = Vec::new();
    let deps = crate::deps::dependencies(chart);
    let locked =
        chart.raw.contains_key("Chart.lock") || chart.raw.contains_key("requirements.lock");
    let file = if chart.metadata.contains_key("dependencies")
        || !chart.raw.contains_key("requirements.yaml")
    {
        "Chart.yaml"
    } else {
        "requirements.yaml"
    };
    let text = chart
        .raw
        .get(file)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let path = format!("{prefix}{file}");
    for hit in crate::checks::dependency_checks(&deps, locked) {
        // The line naming the repository (or the version) of that dependency.
        let needle = hit
            .detail
            .rsplit(' ')
            .next()
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        let line = text
            .lines()
            .position(|l| !needle.is_empty() && l.contains(&needle))
            .map(|i| i as u64 + 1);
        out.push(coded_finding(
            &hit,
            &path,
            Location::ChartFile {
                path: path.clone(),
                line,
                rendered: false,
                object: None,
                commit: None,
            },
            engine,
        ));
    }
    for sub in &chart.subcharts {
        out.extend(supply_chain(
            sub,
            &format!("{prefix}charts/{}/", sub.dir_name),
            engine,
        ));
    }
    out
}

/// The provenance checks on a packaged chart: `archive` is the `.tgz` as read, `prov`
/// the `.prov` file beside it, if any.
pub fn provenance(
    archive_name: &str,
    archive: &[u8],
    prov: Option<&str>,
    engine: &'static ContentEngine,
) -> Vec<Finding> {
    crate::checks::provenance_checks(archive_name, archive, prov)
        .iter()
        .map(|hit| {
            coded_finding(
                hit,
                archive_name,
                Location::ChartFile {
                    path: format!("{archive_name}.prov"),
                    line: None,
                    rendered: false,
                    object: None,
                    commit: None,
                },
                engine,
            )
        })
        .collect()
}
