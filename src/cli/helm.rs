//! `canary helm template CHART`: render a chart as `helm template` would, without Helm.

use std::path::PathBuf;

use anyhow::Context;
use canary_helm_scanner::chart::{
    ChartLimits, RenderOptions, apply_set, coalesce, load_dir, render,
};
use clap::{Args, Subcommand};

/// `canary helm SOURCE` is short for `canary helm scan SOURCE` (see main.rs).
#[derive(Debug, Args)]
pub struct HelmArgs {
    #[command(subcommand)]
    pub command: HelmCommand,
}

#[derive(Debug, Subcommand)]
pub enum HelmCommand {
    /// Print a chart's rendered manifests as `helm template` does (to diff against Helm).
    Template(Box<TemplateArgs>),
    /// Scan a chart: secrets and miners in every file and rendered manifest,
    /// misconfigurations of the rendered objects, and the images it deploys.
    Scan(Box<ScanArgs>),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub render: TemplateArgs,
    /// Output format (default: table on a terminal, json otherwise, or from --output).
    /// (`-f` is the values file, as in Helm.)
    #[arg(long, value_enum)]
    pub format: Option<super::scan::Format>,
    /// Write the report to FILE.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Fail (exit 1) on findings at or above this severity.
    #[arg(long, default_value = "high", value_name = "SEVERITY")]
    pub fail_on: canary_analyzer::finding::Severity,
    /// Ignore file (TOML, as `canary scan`).
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// Also scan every image the rendered charts deploy (each distinct image once, each
    /// distinct layer once), reported with the workloads that use it.
    #[arg(long)]
    pub images: bool,
    /// With --images: pull only from these registry hosts (repeatable); images elsewhere
    /// are reported as not scanned.
    #[arg(long = "allow-registry", value_name = "HOST", requires = "images")]
    pub allow_registry: Vec<String>,
    /// With --images: the platform to pick from multi-platform images.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    pub platform: canary_analyzer::image::Platform,
    #[command(flatten)]
    pub registry: super::RegistryArgs,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// Chart directory, or a packaged chart (`.tgz`); for `scan` also a Git repository
    /// (`git://`, `https://`, `file://` URL or a local clone), optionally `@REF` (branch,
    /// tag or commit; default HEAD) and `#path/to/chart`.
    pub chart: PathBuf,
    /// Values file (repeatable; later ones win).
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Set a value: `a.b=c,list[0]=x` (repeatable).
    #[arg(long = "set", value_name = "K=V")]
    pub set: Vec<String>,
    /// Set a value as a string whatever it looks like (repeatable).
    #[arg(long = "set-string", value_name = "K=V")]
    pub set_string: Vec<String>,
    /// `.Release.Name`.
    #[arg(long, default_value = "release-name")]
    pub release_name: String,
    /// `.Release.Namespace`.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Take CHART from this Helm repository (its `index.yaml`; `https://`, or `http://`),
    /// as `helm template --repo URL CHART` does.
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// With --repo: the chart version, exact or a constraint (default: the newest
    /// release).
    #[arg(long, value_name = "VERSION", requires = "repo")]
    pub version: Option<String>,
    /// `.Capabilities.KubeVersion`.
    #[arg(long, default_value = "v1.35.0")]
    pub kube_version: String,
    /// Add to `.Capabilities.APIVersions` (repeatable).
    #[arg(long = "api-versions", value_name = "GROUP/VERSION")]
    pub api_versions: Vec<String>,
}

pub fn run(a: HelmArgs) -> anyhow::Result<i32> {
    match a.command {
        HelmCommand::Template(t) => template(*t),
        HelmCommand::Scan(s) => scan(*s),
    }
}

/// Load and render a chart with the flags' values.
/// The render options the flags describe.
fn options(a: &TemplateArgs) -> anyhow::Result<RenderOptions> {
    let mut values = serde_json::Value::Object(Default::default());
    for f in &a.values {
        let text = std::fs::read_to_string(f).with_context(|| format!("-f {}", f.display()))?;
        let v = canary_helm_scanner::template::yaml::from_yaml(&text)
            .map_err(|e| anyhow::anyhow!("-f {}: {e}", f.display()))?;
        values = coalesce(&values, &v);
    }
    // --set values keep their integer type (Helm's strvals), so they are applied after
    // the YAML files' numbers became floats.
    let mut sets = serde_json::Value::Object(Default::default());
    for s in &a.set {
        apply_set(&mut sets, s, false).map_err(|e| anyhow::anyhow!("--set {s}: {e}"))?;
    }
    for s in &a.set_string {
        apply_set(&mut sets, s, true).map_err(|e| anyhow::anyhow!("--set-string {s}: {e}"))?;
    }
    Ok(RenderOptions {
        release_name: a.release_name.clone(),
        namespace: a.namespace.clone(),
        values: coalesce(&canary_helm_scanner::template::yaml::floats(values), &sets),
        kube_version: a.kube_version.clone(),
        api_versions: a.api_versions.clone(),
    })
}

/// Load a chart directory or package and render it with the flags' values.
fn rendered(
    a: TemplateArgs,
) -> anyhow::Result<(
    canary_helm_scanner::chart::Chart,
    canary_helm_scanner::chart::Rendered,
)> {
    let chart = if a.chart.is_file() {
        canary_helm_scanner::chart::load_tgz(&a.chart, &ChartLimits::default())?
    } else {
        load_dir(&a.chart, &ChartLimits::default())?
    };
    let rendered = render(&chart, &options(&a)?)?;
    Ok((chart, rendered))
}

/// Whether a scan source is a Git repository (a URL, or a local clone or bare
/// repository) rather than one chart.
fn is_git(source: &str) -> bool {
    let (base, _, _) = canary_helm_scanner::history::split_source(source);
    let path = std::path::Path::new(&base);
    source.contains("://")
        || (path.is_dir()
            && !path.join("Chart.yaml").exists()
            && (path.join(".git").exists()
                || (path.join("HEAD").is_file() && path.join("objects").is_dir())))
}

fn template(mut a: TemplateArgs) -> anyhow::Result<i32> {
    let work = tempfile::Builder::new().prefix("canary-helm-").tempdir()?;
    if let Some(repo) = a.repo.clone() {
        let name = a.chart.display().to_string();
        a.chart = fetch_from_repo(&repo, &name, a.version.as_deref(), work.path())?.0;
    }
    let (_, rendered) = rendered(a)?;
    for e in &rendered.errors {
        eprintln!("error: {e}");
    }
    print!("{}", rendered.text());
    Ok(if rendered.errors.is_empty() { 0 } else { 2 })
}

fn scan(mut a: ScanArgs) -> anyhow::Result<i32> {
    let fetched = tempfile::Builder::new().prefix("canary-helm-").tempdir()?;
    let mut from_repo = None;
    if let Some(repo) = a.render.repo.clone() {
        let name = a.render.chart.display().to_string();
        let (path, shown) =
            fetch_from_repo(&repo, &name, a.render.version.as_deref(), fetched.path())?;
        a.render.chart = path;
        from_repo = Some(shown);
    }
    use canary_analyzer::report::{
        ChartImage, ChartReport, Coverage, ImageReport, Issue, IssueLevel, PolicyOutcome, Report,
        SCHEMA_VERSION, Summary, Tool,
    };
    let started = std::time::Instant::now();
    let mut policy = canary_analyzer::policy::Policy::new(a.fail_on);
    if let Some(p) = &a.ignore_file {
        policy = policy.with_ignore_file(p)?;
    }
    let source = a.render.chart.display().to_string();
    // Shown everywhere (report, errors) without credentials a URL may carry.
    let target = from_repo.unwrap_or_else(|| canary_helm_scanner::history::shown_url(&source));
    let engine = canary_analyzer::detect::content::ContentEngine::builtin();
    let mut coverage = Coverage {
        complete: true,
        ..Default::default()
    };
    let mut findings = Vec::new();
    let mut charts = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    // One chart, or every chart at HEAD of a repository plus its whole history.
    let mut units: Vec<(String, canary_helm_scanner::chart::Chart, Option<String>)> = Vec::new();
    let opts = options(&a.render)?;
    let _work;
    if is_git(&source) {
        let (url, rev, only) = canary_helm_scanner::history::split_source(&source);
        let shown = canary_helm_scanner::history::shown_url(&url);
        let work = tempfile::Builder::new().prefix("canary-helm-").tempdir()?;
        let repo = canary_helm_scanner::history::open(&url, &work.path().join("repo.git"))
            .map_err(|e| anyhow::anyhow!(e))?;
        _work = work;
        let tip = canary_helm_scanner::history::start(&repo, rev.as_deref())
            .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        let hist = canary_helm_scanner::history::scan(&repo, tip, engine, &Default::default())
            .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        eprintln!(
            "history: {} commits, {} distinct blobs, {} bytes scanned",
            hist.commits, hist.blobs, hist.bytes
        );
        findings.extend(hist.findings);
        problems.extend(hist.skipped);
        let at_head =
            canary_helm_scanner::history::charts_at_head(&repo, tip, only.as_deref(), 64 << 20)
                .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        if at_head.is_empty() {
            errors.push(format!(
                "{shown}: no Chart.yaml at {}{}",
                rev.as_deref().unwrap_or("HEAD"),
                only.map(|o| format!(" under {o}")).unwrap_or_default()
            ));
        }
        for (dir, files) in at_head {
            let dir_name = dir.rsplit('/').next().unwrap_or(&dir).to_string();
            match canary_helm_scanner::chart::load_files(
                &format!("{shown}#{dir}"),
                &dir_name,
                files,
                &ChartLimits::default(),
            ) {
                // Its files were scanned through the history (with their commits).
                Ok(c) => {
                    let prefix = if dir.is_empty() {
                        String::new()
                    } else {
                        format!("{dir}/")
                    };
                    findings.extend(canary_helm_scanner::scan::supply_chain(&c, &prefix, engine));
                    units.push((dir, c, None))
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    } else {
        let chart = if a.render.chart.is_file() {
            let chart =
                canary_helm_scanner::chart::load_tgz(&a.render.chart, &ChartLimits::default())?;
            // A packaged chart's provenance: the `.prov` beside it, if any.
            let archive = std::fs::read(&a.render.chart)
                .with_context(|| format!("reading {}", a.render.chart.display()))?;
            let name = a
                .render
                .chart
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut prov_path = a.render.chart.clone().into_os_string();
            prov_path.push(".prov");
            let prov = std::fs::read(&prov_path)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            findings.extend(canary_helm_scanner::scan::provenance(
                &name,
                &archive,
                prov.as_deref(),
                engine,
            ));
            chart
        } else {
            load_dir(&a.render.chart, &ChartLimits::default())?
        };
        findings.extend(canary_helm_scanner::scan::supply_chain(&chart, "", engine));
        units.push((String::new(), chart, Some(String::new())));
    }
    for (_, chart, prefix) in &units {
        let rendered = render(chart, &opts)?;
        errors.extend(rendered.errors.iter().map(|e| format!("rendering: {e}")));
        let found =
            canary_helm_scanner::scan::scan_chart(chart, &rendered, engine, prefix.as_deref());
        findings.extend(found.findings);
        problems.extend(found.problems);
        charts.push(ChartReport {
            name: chart.name().to_string(),
            version: chart
                .metadata
                .get("version")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            manifests: rendered.manifests.len(),
            images: found
                .images
                .into_iter()
                .map(|i| ChartImage {
                    object: i.object,
                    container: i.container,
                    image: i.image,
                    source: i.source,
                    scan: None,
                })
                .collect(),
        });
    }
    let name = match units.as_slice() {
        [(_, c, _)] if !is_git(&source) => format!("chart {}", c.name()),
        _ => format!("charts in {target}"),
    };
    let issue = |level, message: String| Issue {
        level,
        image: name.clone(),
        layer: None,
        path: None,
        message,
    };
    // A template that failed is an error (its raw file was still scanned).
    for e in errors {
        coverage.complete = false;
        coverage.errors.push(issue(IssueLevel::Error, e));
    }
    for p in problems {
        coverage.warnings.push(issue(IssueLevel::Warning, p));
    }
    let mut summary = Summary::default();
    let mut failing = 0;
    let (kept, suppressed) =
        canary_analyzer::scan::apply_policy(findings, &policy, &mut summary, &mut failing);
    let images = if a.images {
        Some(scan_images(&a, &mut charts, &policy, started)?)
    } else {
        None
    };
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "canary",
            version: env!("CARGO_PKG_VERSION"),
        },
        target,
        rules_digest: canary_rules::rules_digest(),
        images: vec![ImageReport {
            name,
            manifest_digest: None,
            index_digest: None,
            platform: None,
            config_digest: None,
            layers: vec![],
            findings: kept,
            suppressed,
        }],
        charts,
        summary,
        policy: PolicyOutcome {
            fail_on: policy.fail_on,
            failing,
            passed: failing == 0,
            policy_digest: policy.digest(),
        },
        coverage,
        fetch: Default::default(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    if let Some(img) = images {
        report.images.extend(img.images);
        let (s, o) = (&mut report.summary, &img.summary);
        s.critical += o.critical;
        s.high += o.high;
        s.medium += o.medium;
        s.low += o.low;
        s.info += o.info;
        s.suppressed += o.suppressed;
        report.policy.failing += img.policy.failing;
        report.policy.passed = report.policy.failing == 0;
        report.coverage.complete &= img.coverage.complete;
        report.coverage.errors.extend(img.coverage.errors);
        report.coverage.warnings.extend(img.coverage.warnings);
        for (k, v) in img.coverage.skipped {
            *report.coverage.skipped.entry(k).or_default() += v;
        }
        report.fetch = img.fetch;
        report.duration_ms = started.elapsed().as_millis() as u64;
    }
    for e in &report.coverage.errors {
        eprintln!("error: {e}");
    }
    super::scan::write_report(
        &report,
        a.format
            .unwrap_or_else(|| super::scan::default_format(&a.output)),
        a.output.as_ref(),
    )?;
    Ok(report.exit_code())
}

/// `--images`: every distinct image the charts deploy, opened from its registry (only
/// registry references: a chart cannot make the scanner read a local path) and scanned
/// together, so layers shared between images are walked once. Each workload's entry
/// gets the image's digest and findings; an image that cannot be opened is an error
/// naming the workloads that use it.
fn scan_images(
    a: &ScanArgs,
    charts: &mut [canary_analyzer::report::ChartReport],
    policy: &canary_analyzer::policy::Policy,
    started: std::time::Instant,
) -> anyhow::Result<canary_analyzer::report::Report> {
    use canary_analyzer::report::{ChartImageScan, Issue, IssueLevel};
    use canary_analyzer::source::Target;
    use std::collections::BTreeMap;
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in charts.iter() {
        for i in &c.images {
            users
                .entry(i.image.clone())
                .or_default()
                .push(format!("{} {}", i.object, i.container));
        }
    }
    let client = a.registry.client()?;
    let rt = super::runtime()?;
    let mut resolved = Vec::new();
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let mut issues = Vec::new();
    for (image, used_by) in &users {
        let opened = Target::parse_registry(image)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                let host = t.registry_host().unwrap_or_default().to_string();
                if !a.allow_registry.is_empty()
                    && !a
                        .allow_registry
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(&host))
                {
                    return Err(format!("registry {host} is not allowed (--allow-registry)"));
                }
                rt.block_on(canary_analyzer::open_target(
                    &t,
                    &client,
                    &a.platform,
                    false,
                ))
                .map_err(|e| e.to_string())
            });
        match opened {
            Ok(imgs) => {
                names.insert(image.clone(), imgs.iter().map(|i| i.name.clone()).collect());
                resolved.extend(imgs);
            }
            Err(e) => {
                issues.push(Issue {
                    level: IssueLevel::Error,
                    image: image.clone(),
                    layer: None,
                    path: None,
                    message: format!("not scanned ({}): {e}", used_by.join(", ")),
                });
                failed.insert(image.clone(), e);
            }
        }
    }
    eprintln!(
        "images: {} distinct, {} opened, {} layers",
        users.len(),
        resolved.len(),
        resolved.iter().map(|i| i.layers.len()).sum::<usize>()
    );
    let detectors = canary_analyzer::detect::default_detectors();
    let options = canary_analyzer::scan::ScanOptions::default();
    let report = canary_analyzer::scan::scan_images(
        &resolved,
        canary_analyzer::scan::ScanInput {
            target: "images of the chart",
            detectors: &detectors,
            policy,
            options: &options,
            progress: &canary_analyzer::scan::NoProgress,
            fetch: client.stats(),
            issues,
            started,
            runtime: None,
            known_layers: Default::default(),
            on_layer_walked: None,
        },
    );
    for c in charts.iter_mut() {
        for i in &mut c.images {
            i.scan = Some(match failed.get(&i.image) {
                Some(e) => ChartImageScan {
                    manifest_digest: None,
                    findings: 0,
                    max_severity: None,
                    error: Some(e.clone()),
                },
                None => {
                    let reports: Vec<_> = report
                        .images
                        .iter()
                        .filter(|r| names.get(&i.image).is_some_and(|n| n.contains(&r.name)))
                        .collect();
                    ChartImageScan {
                        manifest_digest: reports.first().and_then(|r| r.manifest_digest.clone()),
                        findings: reports.iter().map(|r| r.findings.len()).sum(),
                        max_severity: reports
                            .iter()
                            .flat_map(|r| r.findings.iter().map(|f| f.severity))
                            .max(),
                        error: None,
                    }
                }
            });
        }
    }
    Ok(report)
}

/// Bytes of a GET, refused past `cap` or on any status but 200.
async fn get_capped(
    http: &reqwest::Client,
    url: &str,
    cap: usize,
) -> anyhow::Result<Option<Vec<u8>>> {
    let shown = canary_helm_scanner::history::shown_url(url);
    let mut resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {shown}"))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if resp.status() != reqwest::StatusCode::OK {
        anyhow::bail!("GET {shown}: HTTP {}", resp.status());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.with_context(|| format!("GET {shown}"))? {
        if body.len() + chunk.len() > cap {
            anyhow::bail!("GET {shown}: larger than {cap} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `--repo URL CHART [--version V]`: the chart's archive from a Helm repository (its
/// `index.yaml`, the entry `helm pull` would take, the archive checked against the
/// index's digest) and its `.prov` if the repository has one, written into `dir`.
/// Returns the archive's path and how to name the source.
fn fetch_from_repo(
    repo: &str,
    name: &str,
    version: Option<&str>,
    dir: &std::path::Path,
) -> anyhow::Result<(PathBuf, String)> {
    use sha2::Digest;
    let shown_repo = canary_helm_scanner::history::shown_url(repo);
    let base = repo.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        anyhow::bail!("--repo {shown_repo}: not an http(s) URL");
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .connect_timeout(std::time::Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()?;
    super::runtime()?.block_on(async {
        let index = get_capped(&http, &format!("{base}/index.yaml"), 32 << 20)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{shown_repo}: no index.yaml (HTTP 404)"))?;
        let index = String::from_utf8(index)
            .map_err(|_| anyhow::anyhow!("{shown_repo}/index.yaml: not UTF-8"))?;
        let index = canary_helm_scanner::template::yaml::from_yaml(&index)
            .map_err(|e| anyhow::anyhow!("{shown_repo}/index.yaml: {e}"))?;
        let entries = index
            .pointer(&format!(
                "/entries/{}",
                name.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(|e| e.as_array())
            .ok_or_else(|| {
                anyhow::anyhow!("{shown_repo}: no chart named {name:?} in index.yaml")
            })?;
        let versions: Vec<String> = entries
            .iter()
            .map(|e| match &e["version"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let i = canary_helm_scanner::deps::pick_version(&versions, version).ok_or_else(|| {
            anyhow::anyhow!(
                "{shown_repo}: no version of {name} matches {}",
                version.unwrap_or("(newest release)")
            )
        })?;
        let entry = &entries[i];
        let url = entry["urls"]
            .as_array()
            .and_then(|u| u.first())
            .and_then(|u| u.as_str())
            .ok_or_else(|| anyhow::anyhow!("{shown_repo}: {name} {} has no URL", versions[i]))?;
        let url = if url.contains("://") {
            url.to_string()
        } else {
            format!("{base}/{}", url.trim_start_matches('/'))
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            anyhow::bail!("{shown_repo}: {name} {}: not an http(s) URL", versions[i]);
        }
        let shown = canary_helm_scanner::history::shown_url(&url);
        let archive = get_capped(&http, &url, 64 << 20)
            .await?
            .ok_or_else(|| anyhow::anyhow!("GET {shown}: HTTP 404"))?;
        if let Some(want) = entry["digest"].as_str().filter(|d| !d.is_empty()) {
            let got = canary_analyzer::hex(&sha2::Sha256::digest(&archive));
            if !want
                .trim_start_matches("sha256:")
                .eq_ignore_ascii_case(&got)
            {
                anyhow::bail!(
                    "{shown}: archive digest sha256:{got} is not the index's {want}: refusing it"
                );
            }
        }
        // The file name the archive has in the repository, made safe for `dir`.
        let file: String = url
            .rsplit('/')
            .next()
            .unwrap_or("chart.tgz")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let file = if file.starts_with('.') || file.is_empty() {
            format!("{name}.tgz")
        } else {
            file
        };
        let path = dir.join(&file);
        std::fs::write(&path, &archive)?;
        if let Some(prov) = get_capped(&http, &format!("{url}.prov"), 1 << 20).await? {
            std::fs::write(dir.join(format!("{file}.prov")), prov)?;
        }
        if url.starts_with("http://") {
            eprintln!("warning: {shown} was fetched over plain HTTP");
        }
        Ok((path, format!("{shown_repo} {name} {}", versions[i])))
    })
}
