//! `canary resolve REF`: the manifest digest by HEAD request.

use clap::Args;

use super::RegistryArgs;

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Registry reference, e.g. `nginx:1.27` or `127.0.0.1:5000/app@sha256:…`.
    pub reference: String,
    /// Print JSON instead of the digest alone.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(a: ResolveArgs) -> anyhow::Result<i32> {
    let target = canary_analyzer::source::Target::parse(&a.reference)?;
    let canary_analyzer::source::Target::Registry(r) = target else {
        anyhow::bail!("{} is not a registry reference", a.reference);
    };
    let client = a.registry.client()?;
    let info = super::runtime()?.block_on(client.head(&r))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("{}", info.digest);
        if let Some(rl) = &info.rate_limit {
            eprintln!(
                "rate limit: {} of {} pulls left per {}s",
                rl.remaining
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "?".into()),
                rl.limit
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "?".into()),
                rl.window_seconds
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "?".into())
            );
        }
    }
    Ok(0)
}
