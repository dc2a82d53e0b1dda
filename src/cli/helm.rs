//! `canary helm template CHART`: render a chart as `helm template` would, without Helm.

use std::path::PathBuf;

use anyhow::Context;
use std::sync::Arc;

use canary_analyzer::source::registry::{Credentials, RegistryClient};
use canary_helm_scanner::chart::{
    Chart, ChartLimits, RenderOptions, Rendered, apply_set, coalesce, load_dir, load_tgz, render,
};
use canary_helm_scanner::fetch::{Fetcher, LocalCharts, fetch_dependencies};
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
    /// Registry hosts whose images are trusted (repeatable; `*.domain` for subdomains);
    /// replaces the default list of big public and cloud registries for the
    /// `k8s/untrusted-registry` check.
    #[arg(long = "trusted-registry", value_name = "HOST")]
    pub trusted_registry: Vec<String>,
    /// Git sources: walk at most this many commits of the history.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_commits: usize,
    /// Git sources: stop a clone that grows past this size on disk (`500M`, `2G`).
    #[arg(long, default_value = "2G", value_parser = super::cache::parse_size, value_name = "SIZE")]
    pub max_clone_size: u64,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// Chart directory, a packaged chart (`.tgz`), or a chart in an OCI registry
    /// (`oci://HOST/PATH/CHART[:VERSION]`); for `scan` also a Git repository (`git://`,
    /// `https://`, `file://` URL or a local clone), optionally `@REF` (branch, tag or
    /// commit; default HEAD) and `#path/to/chart`.
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
    /// Take CHART from this Helm repository (its `index.yaml`; `https://`, or `http://`;
    /// or an `oci://` registry path), as `helm template --repo URL CHART` does.
    /// `--username`/`--password-stdin` are sent to this repository's host only.
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// With --repo or an oci:// chart: the chart version, exact or a constraint
    /// (default: the newest release).
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Fetch the dependencies `Chart.yaml` declares that `charts/` lacks, from their
    /// repositories (https://, oci://, file:// next to a local or Git chart), at the
    /// versions `Chart.lock` pins, as `helm dependency build` would; without it they are
    /// reported missing, as Helm does.
    #[arg(long)]
    pub dependency_update: bool,
    /// `.Capabilities.KubeVersion`.
    #[arg(long, default_value = "v1.35.0")]
    pub kube_version: String,
    /// Add to `.Capabilities.APIVersions` (repeatable).
    #[arg(long = "api-versions", value_name = "GROUP/VERSION")]
    pub api_versions: Vec<String>,
    /// Render with this Helm binary (`helm template`) instead of the native engine;
    /// the scan of the output is the same.
    #[arg(long, value_name = "PATH")]
    pub helm_binary: Option<PathBuf>,
    #[command(flatten)]
    pub registry: super::RegistryArgs,
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

/// Where charts come from once they are not a local path: a Helm repository, an OCI
/// registry, and the repositories of missing dependencies; fetched archives go to a
/// work directory.
struct Sources {
    /// The registry options and `--repo` credentials, for the clients made on first use
    /// (a local chart needs none: no TLS roots loaded, no runtime started).
    opts: canary_analyzer::source::registry::RegistryOptions,
    cache: canary_analyzer::cache::BlobCache,
    repo_credentials: Option<(String, Credentials)>,
    net: std::sync::OnceLock<Net>,
    work: tempfile::TempDir,
}

/// The network side: registry client, chart fetcher, async runtime.
struct Net {
    registry: Arc<RegistryClient>,
    fetcher: Fetcher,
    rt: tokio::runtime::Runtime,
}

/// A chart as loaded from its source.
struct Loaded {
    chart: Chart,
    /// How the source is named when it was fetched (`URL CHART VERSION`, `oci://…`).
    shown: Option<String>,
    /// The packaged chart's path (a `.tgz` given or fetched), for its provenance.
    archive: Option<PathBuf>,
    /// Dependencies that could not be fetched.
    errors: Vec<String>,
}

impl Sources {
    fn new(a: &TemplateArgs) -> anyhow::Result<Sources> {
        let mut opts = a.registry.options()?;
        // --username/--password-stdin log in to where the chart comes from, and only
        // there: an HTTP(S) --repo, or the registry of an oci:// chart. Dependencies and
        // images name other hosts; those use the Docker config's per-registry auths.
        let chart = a.chart.to_string_lossy();
        let oci = match &a.repo {
            Some(r) if r.starts_with("oci://") => Some(r.clone()),
            Some(_) => None,
            None if chart.starts_with("oci://") => Some(chart.to_string()),
            None => None,
        };
        let mut repo_credentials = None;
        if let Some(c) = opts.credentials.take() {
            if let Some(url) = &oci {
                let host = canary_analyzer::source::Target::parse_registry(
                    url.trim_start_matches("oci://"),
                )?
                .registry_host()
                .unwrap_or_default()
                .to_string();
                opts.credentials = Some(c);
                opts.credentials_for = Some(host);
            } else if let Some(repo) = &a.repo {
                repo_credentials = Some((repo.clone(), c));
            } else {
                eprintln!(
                    "warning: --username is for a chart from --repo or oci://; image registries use the Docker config's auths"
                );
            }
        }
        Ok(Sources {
            opts,
            cache: a.registry.cache(),
            repo_credentials,
            net: std::sync::OnceLock::new(),
            work: tempfile::Builder::new().prefix("canary-helm-").tempdir()?,
        })
    }

    /// The network clients, made on first use.
    fn net(&self) -> anyhow::Result<&Net> {
        if let Some(n) = self.net.get() {
            return Ok(n);
        }
        let registry = Arc::new(RegistryClient::new(self.opts.clone(), self.cache.clone())?);
        let fetcher = Fetcher::new(registry.clone(), self.repo_credentials.clone())?;
        let net = Net {
            registry,
            fetcher,
            rt: super::runtime()?,
        };
        Ok(self.net.get_or_init(|| net))
    }

    /// The chart `--repo` or an `oci://` source names, fetched into the work directory
    /// (with its `.prov`, if published); `None` for a local chart.
    fn fetch_chart(&self, a: &TemplateArgs) -> anyhow::Result<Option<(PathBuf, String)>> {
        let chart = a.chart.to_string_lossy().into_owned();
        let fetched = if let Some(repo) = &a.repo {
            if repo.starts_with("oci://") {
                let url = format!("{}/{chart}", repo.trim_end_matches('/'));
                let n = self.net()?;
                n.rt.block_on(n.fetcher.from_oci(&url, a.version.as_deref()))?
            } else {
                let n = self.net()?;
                n.rt.block_on(n.fetcher.from_repo(repo, &chart, a.version.as_deref()))?
            }
        } else if chart.starts_with("oci://") {
            let n = self.net()?;
            n.rt.block_on(n.fetcher.from_oci(&chart, a.version.as_deref()))?
        } else {
            if a.version.is_some() {
                anyhow::bail!("--version needs --repo or an oci:// chart");
            }
            return Ok(None);
        };
        if fetched.plain_http {
            eprintln!("warning: {} was fetched over plain HTTP", fetched.shown);
        }
        let path = self.work.path().join(&fetched.file_name);
        std::fs::write(&path, &fetched.archive)?;
        if let Some(prov) = &fetched.prov {
            std::fs::write(
                self.work.path().join(format!("{}.prov", fetched.file_name)),
                prov,
            )?;
        }
        Ok(Some((path, fetched.shown)))
    }

    /// One chart (directory, package, repository or OCI chart), with its missing
    /// dependencies fetched when `--dependency-update` asks for it.
    fn load(&self, a: &TemplateArgs) -> anyhow::Result<Loaded> {
        let (path, shown) = match self.fetch_chart(a)? {
            Some((p, shown)) => (p, Some(shown)),
            None => (a.chart.clone(), None),
        };
        let limits = ChartLimits::default();
        let (mut chart, archive) = if path.is_file() {
            (load_tgz(&path, &limits)?, Some(path.clone()))
        } else {
            (load_dir(&path, &limits)?, None)
        };
        let mut errors = Vec::new();
        if a.dependency_update {
            let name = shown.clone().unwrap_or_else(|| path.display().to_string());
            // file:// dependencies sit beside a chart directory; a package has none.
            let dir = archive.is_none().then(|| path.clone());
            let local = |rel: &str| -> Option<Result<Chart, String>> {
                let dir = dir.as_ref()?;
                // Relative to the chart, as Helm resolves it; never an absolute path a
                // chart from anyone could point anywhere.
                if std::path::Path::new(rel).is_absolute() {
                    return Some(Err(format!(
                        "file://{rel}: an absolute path is not followed"
                    )));
                }
                let p = dir.join(rel);
                Some(if p.is_file() {
                    load_tgz(&p, &limits).map_err(|e| e.to_string())
                } else if p.join("Chart.yaml").is_file() {
                    load_dir(&p, &limits).map_err(|e| e.to_string())
                } else {
                    Err(format!("no chart at {}", p.display()))
                })
            };
            errors = self.dependencies(&mut chart, &local, &name);
        }
        Ok(Loaded {
            chart,
            shown,
            archive,
            errors,
        })
    }

    /// Render a loaded chart: natively, or with `--helm-binary` by Helm itself (the chart,
    /// with any dependencies fetched, written out for it). With Helm, the `Rendered`
    /// holds Helm's manifests, and Helm's whole output comes second. `opts` are the
    /// flags' values, read once ([`options`]).
    fn render(
        &self,
        chart: &Chart,
        a: &TemplateArgs,
        opts: &RenderOptions,
    ) -> anyhow::Result<(Rendered, Option<String>)> {
        let Some(helm) = &a.helm_binary else {
            return Ok((render(chart, opts)?, None));
        };
        let dir = tempfile::Builder::new()
            .prefix("helm-input-")
            .tempdir_in(self.work.path())?;
        let chart_dir = dir.path().join("chart");
        canary_helm_scanner::chart::write_dir(chart, &chart_dir)
            .with_context(|| format!("writing {} for Helm", chart.name()))?;
        let mut cmd = std::process::Command::new(helm);
        cmd.arg("template")
            .arg(&a.release_name)
            .arg(&chart_dir)
            .args(["--namespace", &a.namespace])
            .args(["--kube-version", &a.kube_version]);
        for f in &a.values {
            cmd.arg("-f").arg(f);
        }
        for v in &a.set {
            cmd.args(["--set", v]);
        }
        for v in &a.set_string {
            cmd.args(["--set-string", v]);
        }
        for v in &a.api_versions {
            cmd.args(["--api-versions", v]);
        }
        let (status, stdout, stderr) = run_bounded(&mut cmd, HELM_DEADLINE, HELM_MAX_OUTPUT)
            .with_context(|| format!("running {}", helm.display()))?;
        let text = String::from_utf8_lossy(&stdout).into_owned();
        let mut rendered = canary_helm_scanner::chart::parse_helm_output(&text);
        match status {
            Some(s) if s.success() => {}
            Some(_) => rendered.errors.push(format!(
                "{} template: {}",
                helm.display(),
                String::from_utf8_lossy(&stderr).trim()
            )),
            None => rendered.errors.push(format!(
                "{} template: stopped after {} s or {} bytes of output",
                helm.display(),
                HELM_DEADLINE.as_secs(),
                HELM_MAX_OUTPUT
            )),
        }
        Ok((rendered, Some(text)))
    }

    /// Fetch a chart's missing dependencies; says what it fetched on stderr and returns
    /// what it could not.
    fn dependencies(&self, chart: &mut Chart, local: &LocalCharts<'_>, shown: &str) -> Vec<String> {
        let n = match self.net() {
            Ok(n) => n,
            Err(e) => return vec![format!("{shown}: dependencies not fetched: {e:#}")],
        };
        let got =
            n.rt.block_on(fetch_dependencies(chart, &n.fetcher, local, shown));
        for f in &got.fetched {
            eprintln!("dependency: {f}");
        }
        for p in &got.plain_http {
            eprintln!("warning: {p} was fetched over plain HTTP");
        }
        got.errors
    }
}

/// How long `--helm-binary` may render one chart, and how much it may print.
const HELM_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);
const HELM_MAX_OUTPUT: u64 = 256 << 20;

/// Run a command with no input, reading at most `cap` bytes of each output, killed at
/// `deadline`: its exit status (`None` when it was stopped), stdout and stderr.
fn run_bounded(
    cmd: &mut std::process::Command,
    deadline: std::time::Duration,
    cap: u64,
) -> std::io::Result<(Option<std::process::ExitStatus>, Vec<u8>, Vec<u8>)> {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                // Past the cap the rest is drained, so the child is never blocked on a
                // full pipe.
                let mut p = p;
                let _ = p.by_ref().take(cap).read_to_end(&mut buf);
                let _ = std::io::copy(&mut p, &mut std::io::sink());
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let until = std::time::Instant::now() + deadline;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let status = status.filter(|_| (stdout.len() as u64) < cap);
    Ok((status, stdout, stderr))
}

/// Whether a scan source is a Git repository (a URL, or a local clone or bare
/// repository) rather than one chart.
fn is_git(source: &str) -> bool {
    let (base, _, _) = canary_helm_scanner::history::split_source(source);
    let path = std::path::Path::new(&base);
    (source.contains("://") && !source.starts_with("oci://"))
        || (path.is_dir()
            && !path.join("Chart.yaml").exists()
            && (path.join(".git").exists()
                || (path.join("HEAD").is_file() && path.join("objects").is_dir())))
}

fn template(a: TemplateArgs) -> anyhow::Result<i32> {
    let sources = Sources::new(&a)?;
    let opts = options(&a)?;
    let loaded = sources.load(&a)?;
    let (rendered, helm_output) = sources.render(&loaded.chart, &a, &opts)?;
    for e in loaded.errors.iter().chain(&rendered.errors) {
        eprintln!("error: {e}");
    }
    match helm_output {
        Some(text) => print!("{text}"),
        None => print!("{}", rendered.text()),
    }
    Ok(if rendered.errors.is_empty() && loaded.errors.is_empty() {
        0
    } else {
        2
    })
}

fn scan(a: ScanArgs) -> anyhow::Result<i32> {
    let sources = Sources::new(&a.render)?;
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
    let git = a.render.repo.is_none() && is_git(&source);
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
    let mut units: Vec<(String, Chart, Option<String>)> = Vec::new();
    let mut checks = canary_helm_scanner::checks::CheckOptions::default();
    if !a.trusted_registry.is_empty() {
        checks.trusted_registries = a.trusted_registry.clone();
    }
    // Values flags are read (and checked) once, before anything is fetched.
    let opts = options(&a.render)?;
    // Shown everywhere (report, errors) without credentials a URL may carry.
    let mut target = canary_helm_scanner::history::shown_url(&source);
    if git {
        let (url, rev, only) = canary_helm_scanner::history::split_source(&source);
        let shown = canary_helm_scanner::history::shown_url(&url);
        let repo = canary_helm_scanner::history::open(
            &url,
            &sources.work.path().join("repo.git"),
            a.max_clone_size,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let tip = canary_helm_scanner::history::start(&repo, rev.as_deref())
            .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        let limits = canary_helm_scanner::history::HistoryLimits {
            max_commits: a.max_commits,
            ..Default::default()
        };
        let hist = canary_helm_scanner::history::scan(&repo, tip, engine, &limits)
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
            let mut c = match canary_helm_scanner::chart::load_files(
                &format!("{shown}#{dir}"),
                &dir_name,
                files,
                &ChartLimits::default(),
            ) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            findings.extend(canary_helm_scanner::scan::supply_chain(&c, &prefix, engine));
            if a.render.dependency_update {
                // file:// dependencies: other charts of the same commit.
                let local = |rel: &str| -> Option<Result<Chart, String>> {
                    let Some(at) = canary_helm_scanner::history::join_repo_path(&dir, rel) else {
                        return Some(Err(format!("file://{rel} leaves the repository")));
                    };
                    let found = canary_helm_scanner::history::charts_at_head(
                        &repo,
                        tip,
                        Some(&at),
                        64 << 20,
                    );
                    Some(match found {
                        Ok(m) => match m.into_iter().next() {
                            Some((d, files)) => canary_helm_scanner::chart::load_files(
                                &format!("{shown}#{d}"),
                                d.rsplit('/').next().unwrap_or(&d),
                                files,
                                &ChartLimits::default(),
                            )
                            .map_err(|e| e.to_string()),
                            None => Err(format!("no Chart.yaml at {at}")),
                        },
                        Err(e) => Err(e),
                    })
                };
                let carried = c.subcharts.len();
                errors.extend(sources.dependencies(&mut c, &local, &format!("{shown}#{dir}")));
                // The chart's own files were scanned through the history (with their
                // commits); fetched dependencies were not.
                for sub in &c.subcharts[carried..] {
                    let fetched = canary_helm_scanner::chart::Chart {
                        subcharts: vec![sub.clone()],
                        ..Chart::empty()
                    };
                    let found = canary_helm_scanner::scan::scan_files(&fetched, &prefix, engine);
                    findings.extend(found.findings);
                    problems.extend(found.problems);
                }
            }
            // Its files were scanned through the history (with their commits).
            units.push((dir, c, None));
        }
    } else {
        let loaded = sources.load(&a.render)?;
        errors.extend(loaded.errors);
        if let Some(shown) = &loaded.shown {
            target = shown.clone();
        }
        if let Some(path) = &loaded.archive {
            // A packaged chart's provenance: the `.prov` beside it, if any.
            let archive =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut prov_path = path.clone().into_os_string();
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
        }
        findings.extend(canary_helm_scanner::scan::supply_chain(
            &loaded.chart,
            "",
            engine,
        ));
        units.push((String::new(), loaded.chart, Some(String::new())));
    }
    for (_, chart, prefix) in &units {
        let (rendered, _) = sources.render(chart, &a.render, &opts)?;
        errors.extend(rendered.errors.iter().map(|e| format!("rendering: {e}")));
        let found = canary_helm_scanner::scan::scan_chart(
            chart,
            &rendered,
            engine,
            prefix.as_deref(),
            &checks,
        );
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
        [(_, c, _)] if !git => format!("chart {}", c.name()),
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
        Some(scan_images(&a, &sources, &mut charts, &policy, started)?)
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
    sources: &Sources,
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
    let net = sources.net()?;
    let client = &net.registry;
    let rt = &net.rt;
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
                rt.block_on(canary_analyzer::open_target(&t, client, &a.platform, false))
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
