//! Canary's analyzer: from an image reference or archive to a [`report::Report`].
//!
//! What goes in: a [`source::Target`] (registry reference, `docker save` tarball, OCI
//! layout or archive), registry options, detectors and a policy. What comes out: resolved
//! platform images whose layers stream from a digest-verified blob cache, a single-pass
//! walk of every layer feeding every detector, findings that know whether a later layer
//! deleted their file, and a report (table, JSON, SARIF). It does not run anything from
//! the image (that is `canary-sandbox`) and never extracts layers to disk.
#![forbid(unsafe_code)]

pub mod cache;
#[cfg(feature = "fixtures")]
pub mod corpus;
pub mod detect;
mod error;
pub mod finding;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod image;
pub mod nested;
pub mod policy;
pub mod report;
pub mod scan;
pub mod source;
pub mod walk;

pub use error::{Error, Result};

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// Resolve a target to platform images, fetching registry blobs into the cache.
pub async fn open_target(
    target: &source::Target,
    registry: &source::registry::RegistryClient,
    platform: &image::Platform,
    all_platforms: bool,
) -> Result<Vec<image::ResolvedImage>> {
    use source::Target;
    match target {
        Target::Registry(r) => registry.open(r, platform, all_platforms).await,
        Target::DockerArchive(p) => source::archive::open_docker_archive(p),
        Target::OciLayout(p, r) => {
            source::archive::open_oci(p, false, r.as_deref(), platform, all_platforms).await
        }
        Target::OciArchive(p, r) => {
            source::archive::open_oci(p, true, r.as_deref(), platform, all_platforms).await
        }
    }
}
