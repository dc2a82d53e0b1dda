//! What a resolved image is, whatever it came from: config, ordered layers, digests, and
//! a way to open each layer's bytes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;

use crate::Result;

/// Layer media types we know how to walk.
pub const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    // Not in Docker's spec, but containerd and buildx write it for zstd layers.
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Most layers an image may have. Docker itself stops at 127; OCI sets no limit, so a
/// manifest with thousands of layers is an attack on the scanner, not an image.
pub const MAX_LAYERS: usize = 1000;
/// Largest manifest or index document accepted (the Distribution registry's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// How a layer's bytes are verified while they are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "digest", rename_all = "snake_case")]
pub enum Verify {
    /// Already verified (e.g. when it entered the blob cache).
    Done,
    /// sha256 of the stored (possibly compressed) blob must equal this digest.
    Blob(String),
    /// sha256 of the uncompressed tar stream must equal this diff id.
    DiffId(String),
}

/// One layer of a resolved image.
#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    /// Position in the manifest, 0 = base.
    pub index: usize,
    /// The blob digest (registry, OCI layout) or the diff id (old docker-archive).
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip)]
    pub verify: Verify,
}

/// The parts of an image config (Docker and OCI share the shape) that detectors use.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
    #[serde(default)]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "User", default)]
    pub user: Option<String>,
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    pub working_dir: Option<String>,
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "ExposedPorts", default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parse an image config, naming where it came from on failure.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| crate::Error::bad(origin, format!("image config is not valid JSON: {e}")))
    }
}

/// Opens a layer's stored bytes as a stream.
pub trait BlobOpener: Send + Sync {
    fn open(&self, layer: &Layer) -> Result<Box<dyn Read + Send>>;
}

/// One platform image, resolved: what it is and how to read its layers.
pub struct ResolvedImage {
    /// What the user asked for, normalized (`docker.io/library/nginx:latest`, `docker-archive:/x.tar`).
    pub name: String,
    /// Digest of the platform manifest, when there is one.
    pub manifest_digest: Option<String>,
    /// Digest of the index the manifest was chosen from.
    pub index_digest: Option<String>,
    /// `os/arch[/variant]`.
    pub platform: Option<String>,
    pub config_digest: Option<String>,
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    pub opener: Box<dyn BlobOpener>,
}

impl std::fmt::Debug for ResolvedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedImage")
            .field("name", &self.name)
            .field("manifest_digest", &self.manifest_digest)
            .field("platform", &self.platform)
            .field("layers", &self.layers.len())
            .finish()
    }
}

/// A platform selector `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_string(),
                    arch: arch.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => Err(format!(
                "invalid platform {s:?}: expected os/arch[/variant], e.g. linux/arm64/v8"
            )),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// Whether an index entry's platform satisfies this selector. A selector without a
    /// variant accepts any variant; `arm64` treats a missing variant as `v8` as Docker does.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.arch != arch {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                let have = variant.or(if arch == "arm64" { Some("v8") } else { None });
                have == Some(want.as_str())
            }
        }
    }
}

/// Parsed index entries: (digest, media type, platform string).
pub(crate) struct IndexEntry {
    pub digest: String,
    pub media_type: String,
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl IndexEntry {
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.arch),
            None => format!("{}/{}", self.os, self.arch),
        }
    }
}

/// A manifest document, parsed and checked.
pub(crate) enum Manifest {
    Image {
        config_digest: String,
        layers: Vec<(String, String, Option<u64>)>,
    },
    Index(Vec<IndexEntry>),
}

/// Parse a manifest or index; `media_type_hint` is the HTTP Content-Type or the
/// descriptor's media type, when known. Unknown media types and malformed documents are
/// errors naming `origin`.
pub(crate) fn parse_manifest(
    bytes: &[u8],
    media_type_hint: Option<&str>,
    origin: &str,
) -> Result<Manifest> {
    use serde_json::Value;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(crate::Error::TooLarge {
            origin: origin.into(),
            what: "manifest".into(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| crate::Error::bad(origin, format!("manifest is not valid JSON: {e}")))?;
    let field_mt = v.get("mediaType").and_then(Value::as_str);
    let hint = media_type_hint
        .map(|h| h.split(';').next().unwrap_or(h).trim())
        .filter(|h| !h.is_empty() && *h != "application/json" && *h != "application/octet-stream");
    let mt = field_mt.or(hint).map(str::to_string).unwrap_or_else(|| {
        if v.get("manifests").is_some() {
            OCI_INDEX.to_string()
        } else {
            OCI_MANIFEST.to_string()
        }
    });
    if v.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err(crate::Error::bad(
            origin,
            format!(
                "unsupported manifest schemaVersion {} (only schema 2 is supported)",
                v.get("schemaVersion")
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "missing".into())
            ),
        ));
    }
    let str_of = |d: &Value, k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    match mt.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let config = v
                .get("config")
                .ok_or_else(|| crate::Error::bad(origin, "manifest has no config descriptor"))?;
            let config_digest = str_of(config, "digest")
                .ok_or_else(|| crate::Error::bad(origin, "manifest config has no digest"))?;
            check_digest(&config_digest, origin)?;
            if let Some(cmt) = str_of(config, "mediaType")
                && cmt != DOCKER_CONFIG
                && cmt != OCI_CONFIG
            {
                return Err(crate::Error::bad(
                    origin,
                    format!(
                        "config media type {cmt:?} is not an image config (this is not a container image)"
                    ),
                ));
            }
            let layers = v
                .get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| crate::Error::bad(origin, "manifest has no layers array"))?;
            if layers.len() > MAX_LAYERS {
                return Err(crate::Error::bad(
                    origin,
                    format!(
                        "manifest lists {} layers; the limit is {MAX_LAYERS}",
                        layers.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(layers.len());
            for (i, l) in layers.iter().enumerate() {
                let digest = str_of(l, "digest")
                    .ok_or_else(|| crate::Error::bad(origin, format!("layer {i} has no digest")))?;
                check_digest(&digest, origin)?;
                let lmt = str_of(l, "mediaType").unwrap_or_default();
                if !LAYER_MEDIA_TYPES.contains(&lmt.as_str()) {
                    return Err(crate::Error::bad(
                        origin,
                        format!(
                            "layer {i} ({digest}) has media type {lmt:?}, which is not a container layer"
                        ),
                    ));
                }
                let size = l.get("size").and_then(Value::as_u64);
                out.push((digest, lmt, size));
            }
            Ok(Manifest::Image {
                config_digest,
                layers: out,
            })
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let ms = v
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or_else(|| crate::Error::bad(origin, "index has no manifests array"))?;
            if ms.len() > MAX_LAYERS {
                return Err(crate::Error::bad(
                    origin,
                    format!(
                        "index lists {} manifests; the limit is {MAX_LAYERS}",
                        ms.len()
                    ),
                ));
            }
            let mut out = Vec::new();
            for m in ms {
                let Some(digest) = str_of(m, "digest") else {
                    continue;
                };
                check_digest(&digest, origin)?;
                let p = m.get("platform");
                out.push(IndexEntry {
                    digest,
                    media_type: str_of(m, "mediaType").unwrap_or_default(),
                    os: p.and_then(|p| str_of(p, "os")).unwrap_or_default(),
                    arch: p
                        .and_then(|p| str_of(p, "architecture"))
                        .unwrap_or_default(),
                    variant: p.and_then(|p| str_of(p, "variant")),
                });
            }
            Ok(Manifest::Index(out))
        }
        other => Err(crate::Error::bad(
            origin,
            format!("unsupported manifest media type {other:?}"),
        )),
    }
}

/// Check `sha256:<64 hex>`; digests name files in the cache, so nothing else may pass.
pub fn check_digest(d: &str, origin: &str) -> Result<()> {
    match d.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(())
        }
        _ => Err(crate::Error::bad(
            origin,
            format!("invalid or unsupported digest {d:?} (expected sha256:<64 lowercase hex>)"),
        )),
    }
}

/// Pick index entries for a platform (or all image entries), skipping attestation
/// manifests (`unknown/unknown`). Entries that declare no platform at all (common in OCI
/// layouts) are taken when nothing declares a matching one; the config says what they are.
pub(crate) fn select_platforms<'a>(
    entries: &'a [IndexEntry],
    platform: &Platform,
    all: bool,
) -> Vec<&'a IndexEntry> {
    let images = entries
        .iter()
        .filter(|e| e.os != "unknown" && e.arch != "unknown");
    if all {
        return images.collect();
    }
    let matching = images
        .clone()
        .find(|e| platform.matches(&e.os, &e.arch, e.variant.as_deref()));
    match matching {
        Some(e) => vec![e],
        None => images
            .filter(|e| e.os.is_empty() && e.arch.is_empty())
            .take(1)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "amd64", None));
        assert!("linux".parse::<Platform>().is_err());
        let any: Platform = "linux/arm".parse().unwrap();
        assert!(any.matches("linux", "arm", Some("v7")));
    }

    #[test]
    fn manifest_with_wrong_layer_media_type_is_rejected() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:{z}","size":2}},"layers":[{{"mediaType":"text/html","digest":"sha256:{z}","size":1}}]}}"#,
            z = "0".repeat(64)
        );
        let e = parse_manifest(m.as_bytes(), None, "test")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("text/html"), "{e}");
    }

    #[test]
    fn digest_must_be_sha256_hex() {
        assert!(check_digest(&format!("sha256:{}", "a".repeat(64)), "t").is_ok());
        assert!(check_digest("sha256:../../etc/passwd", "t").is_err());
        assert!(check_digest(&format!("sha512:{}", "a".repeat(128)), "t").is_err());
    }
}
