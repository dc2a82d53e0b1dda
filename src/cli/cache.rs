//! `canary cache prune|dir`.

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
    /// Blob cache directory (default: $XDG_CACHE_HOME/canary).
    #[arg(long, value_name = "DIR", env = "CANARY_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove least recently used blobs until the cache fits in SIZE (e.g. 10G, 500M, 0).
    Prune {
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: u64,
    },
    /// Print the cache directory.
    Dir,
}

/// `10G`, `500M`, `64K`, `1234` (bytes); binary units.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid size {s:?}"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("invalid size {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

pub fn run(a: CacheArgs) -> anyhow::Result<i32> {
    let cache = canary_analyzer::cache::BlobCache::new(
        a.cache_dir
            .unwrap_or_else(canary_analyzer::cache::BlobCache::default_dir),
    );
    match a.command {
        CacheCommand::Dir => println!("{}", cache.root().display()),
        CacheCommand::Prune { max_size } => {
            let s = cache.prune(max_size)?;
            println!(
                "removed {} of {} blobs ({} of {} bytes); cache now holds {} bytes",
                s.blobs_removed,
                s.blobs_before,
                s.bytes_removed,
                s.bytes_before,
                s.bytes_before - s.bytes_removed
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("1.5M"), Ok(3 << 19));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
    }
}
