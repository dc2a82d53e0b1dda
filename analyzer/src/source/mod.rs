//! Where images come from: a registry, a `docker save` tarball, an OCI layout directory
//! or archive. [`Target::parse`] reads what the user typed; [`resolve`](crate::source)
//! turns it into [`ResolvedImage`]s whose layers can be opened as streams.

pub mod archive;
pub mod registry;

use sha2::{Digest, Sha256};
use std::path::PathBuf;

use crate::image::{
    self, ImageConfig, Layer, MAX_CONFIG_BYTES, Manifest, Platform, Verify, check_digest,
    parse_manifest, select_platforms,
};
use crate::{Error, Result};

/// What the user asked to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A registry reference, normalized as Docker does.
    Registry(oci_client::Reference),
    /// `docker-archive:PATH` or a bare `docker save` tarball.
    DockerArchive(PathBuf),
    /// `oci:DIR[:REF]`.
    OciLayout(PathBuf, Option<String>),
    /// `oci-archive:PATH[:REF]`.
    OciArchive(PathBuf, Option<String>),
}

fn split_ref(rest: &str) -> (PathBuf, Option<String>) {
    let p = PathBuf::from(rest);
    if p.exists() {
        return (p, None);
    }
    match rest.rsplit_once(':') {
        Some((path, r)) if !r.contains('/') && PathBuf::from(path).exists() => {
            (PathBuf::from(path), Some(r.to_string()))
        }
        _ => (p, None),
    }
}

impl Target {
    /// Parse `docker-archive:PATH`, `oci:DIR[:REF]`, `oci-archive:PATH[:REF]`,
    /// `docker://REF`, a path to an existing tarball or layout, or a registry reference.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(p) = s.strip_prefix("docker-archive:") {
            return Ok(Target::DockerArchive(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("oci-archive:") {
            let (p, r) = split_ref(p);
            return Ok(Target::OciArchive(p, r));
        }
        if let Some(p) = s.strip_prefix("oci:") {
            let (p, r) = split_ref(p);
            return Ok(Target::OciLayout(p, r));
        }
        let reference = s.strip_prefix("docker://").unwrap_or(s);
        let path = PathBuf::from(s);
        if reference == s
            && (s.starts_with('/') || s.starts_with("./") || s.ends_with(".tar") || path.exists())
        {
            if path.is_dir() {
                return Ok(Target::OciLayout(path, None));
            }
            if path.is_file() {
                return Ok(match archive::sniff_archive(&path)? {
                    archive::ArchiveKind::Docker => Target::DockerArchive(path),
                    archive::ArchiveKind::Oci => Target::OciArchive(path, None),
                });
            }
            if s.starts_with('/') || s.starts_with("./") || s.ends_with(".tar") {
                return Err(Error::bad(s, "no such file or directory"));
            }
        }
        let r: oci_client::Reference =
            reference
                .parse()
                .map_err(|e: oci_client::ParseError| Error::Reference {
                    input: s.to_string(),
                    reason: e.to_string(),
                })?;
        Ok(Target::Registry(r))
    }

    /// A registry reference and nothing else: for names that come from untrusted input
    /// (a chart's images), which must never make the scanner open a local path.
    pub fn parse_registry(s: &str) -> Result<Self> {
        let r: oci_client::Reference =
            s.parse()
                .map_err(|e: oci_client::ParseError| Error::Reference {
                    input: s.to_string(),
                    reason: e.to_string(),
                })?;
        Ok(Target::Registry(r))
    }

    /// The registry host of a registry reference.
    pub fn registry_host(&self) -> Option<&str> {
        match self {
            Target::Registry(r) => Some(r.registry()),
            _ => None,
        }
    }

    /// Normalized display name.
    pub fn display(&self) -> String {
        match self {
            Target::Registry(r) => r.whole(),
            Target::DockerArchive(p) => format!("docker-archive:{}", p.display()),
            Target::OciLayout(p, r) => format!(
                "oci:{}{}",
                p.display(),
                r.as_deref().map(|r| format!(":{r}")).unwrap_or_default()
            ),
            Target::OciArchive(p, r) => format!(
                "oci-archive:{}{}",
                p.display(),
                r.as_deref().map(|r| format!(":{r}")).unwrap_or_default()
            ),
        }
    }
}

/// Reads manifests and configs from wherever the image lives.
pub(crate) trait ManifestStore {
    /// The manifest at `reference` (a tag or a digest): bytes and the media type the
    /// transport declared, if any.
    async fn manifest(
        &self,
        reference: &str,
        media_type: Option<&str>,
    ) -> Result<(Vec<u8>, Option<String>)>;
    /// The config blob, already checked against its digest.
    async fn config(&self, digest: &str) -> Result<Vec<u8>>;
    /// How layers of this store are verified.
    fn layer_verify(&self, digest: &str) -> Verify;
    /// The name shown for an image of this store.
    fn origin(&self) -> String;
}

/// One platform image, before an opener is attached.
pub(crate) struct Parts {
    pub manifest_digest: Option<String>,
    pub index_digest: Option<String>,
    pub platform: Option<String>,
    pub config_digest: String,
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
}

pub(crate) fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{}", crate::hex(&Sha256::digest(b)))
}

/// Verify a document fetched by digest.
pub(crate) fn verify_doc(bytes: &[u8], digest: &str, origin: &str) -> Result<()> {
    let actual = sha256_digest(bytes);
    if actual != digest {
        return Err(Error::DigestMismatch {
            origin: origin.to_string(),
            digest: digest.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Most platform images one target may expand to.
pub const MAX_IMAGES: usize = 64;

/// From a top-level manifest or index to platform images.
pub(crate) async fn resolve_parts<S: ManifestStore>(
    store: &S,
    top: (Vec<u8>, Option<String>),
    top_digest: Option<String>,
    platform: &Platform,
    all_platforms: bool,
) -> Result<Vec<Parts>> {
    let origin = store.origin();
    let mut out = Vec::new();
    let mut selected = 0usize;
    let mut stack = vec![(top, top_digest, None::<String>, 0usize)];
    while let Some(((bytes, mt), digest, index_digest, depth)) = stack.pop() {
        match parse_manifest(&bytes, mt.as_deref(), &origin)? {
            Manifest::Index(entries) => {
                if depth >= 2 {
                    return Err(Error::bad(
                        &origin,
                        "indexes nested more than two levels deep",
                    ));
                }
                let chosen = select_platforms(&entries, platform, all_platforms);
                selected += chosen.len();
                if selected > MAX_IMAGES {
                    return Err(Error::bad(
                        &origin,
                        format!("the index selects more than {MAX_IMAGES} platform images (limit)"),
                    ));
                }
                if chosen.is_empty() {
                    let have: Vec<String> = entries.iter().map(|e| e.platform()).collect();
                    return Err(Error::bad(
                        &origin,
                        format!(
                            "no image for platform {platform} in the index (it has: {})",
                            have.join(", ")
                        ),
                    ));
                }
                for e in chosen.into_iter().rev() {
                    let child = store.manifest(&e.digest, Some(&e.media_type)).await?;
                    verify_doc(&child.0, &e.digest, &origin)?;
                    stack.push((
                        child,
                        Some(e.digest.clone()),
                        digest.clone().or(index_digest.clone()),
                        depth + 1,
                    ));
                }
            }
            Manifest::Image {
                config_digest,
                layers,
            } => {
                let cbytes = store.config(&config_digest).await?;
                if cbytes.len() as u64 > MAX_CONFIG_BYTES {
                    return Err(Error::TooLarge {
                        origin: origin.clone(),
                        what: "image config".into(),
                        limit: MAX_CONFIG_BYTES,
                    });
                }
                let config =
                    ImageConfig::parse(&cbytes, &format!("{origin} config {config_digest}"))?;
                let platform = platform_of(&config);
                let layers = layers
                    .into_iter()
                    .enumerate()
                    .map(|(index, (digest, media_type, size))| Layer {
                        index,
                        verify: store.layer_verify(&digest),
                        digest,
                        media_type: Some(media_type),
                        size,
                    })
                    .collect();
                out.push(Parts {
                    manifest_digest: digest,
                    index_digest,
                    platform,
                    config_digest,
                    config,
                    layers,
                });
            }
        }
    }
    Ok(out)
}

/// `os/arch[/variant]` from an image config.
pub(crate) fn platform_of(config: &ImageConfig) -> Option<String> {
    match (&config.os, &config.architecture) {
        (Some(os), Some(arch)) => Some(match &config.variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        }),
        _ => None,
    }
}

pub(crate) fn check(d: &str, origin: &str) -> Result<()> {
    check_digest(d, origin)
}

pub use image::Platform as PlatformSelector;
