//! `canary helm template CHART`: render a chart as `helm template` would, without Helm.

use std::path::PathBuf;

use anyhow::Context;
use canary_helm_scanner::chart::{
    ChartLimits, RenderOptions, apply_set, coalesce, load_dir, render,
};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct HelmArgs {
    #[command(subcommand)]
    pub command: HelmCommand,
}

#[derive(Debug, Subcommand)]
pub enum HelmCommand {
    /// Print a chart's rendered manifests as `helm template` does (to diff against Helm).
    Template(TemplateArgs),
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// Chart directory.
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
    /// `.Capabilities.KubeVersion`.
    #[arg(long, default_value = "v1.35.0")]
    pub kube_version: String,
    /// Add to `.Capabilities.APIVersions` (repeatable).
    #[arg(long = "api-versions", value_name = "GROUP/VERSION")]
    pub api_versions: Vec<String>,
}

pub fn run(a: HelmArgs) -> anyhow::Result<i32> {
    match a.command {
        HelmCommand::Template(t) => template(t),
    }
}

fn template(a: TemplateArgs) -> anyhow::Result<i32> {
    let chart = load_dir(&a.chart, &ChartLimits::default())?;
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
    let opts = RenderOptions {
        release_name: a.release_name,
        namespace: a.namespace,
        values: coalesce(&canary_helm_scanner::template::yaml::floats(values), &sets),
        kube_version: a.kube_version,
        api_versions: a.api_versions,
    };
    let rendered = render(&chart, &opts)?;
    for e in &rendered.errors {
        eprintln!("error: {e}");
    }
    print!("{}", rendered.text());
    Ok(if rendered.errors.is_empty() { 0 } else { 2 })
}
