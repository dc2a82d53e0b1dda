//! Local images: `docker save` tarballs (old `<id>/layer.tar` and Docker 25+ OCI-style
//! formats), OCI image layout directories and OCI archives. Members are found once by
//! seeking over the tar headers and then read in place: nothing is extracted.

use serde::Deserialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ManifestStore, Parts, check, resolve_parts, sha256_digest, verify_doc};
use crate::image::{
    BlobOpener, ImageConfig, Layer, MAX_CONFIG_BYTES, MAX_LAYERS, MAX_MANIFEST_BYTES, Platform,
    ResolvedImage, Verify,
};
use crate::{Error, Result};

/// Most members a local archive may have.
const MAX_MEMBERS: usize = 200_000;

/// What a tarball turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Docker,
    Oci,
}

/// Member name → (data offset, size).
#[derive(Debug, Default)]
struct TarIndex {
    members: HashMap<String, (u64, u64)>,
}

impl TarIndex {
    fn read(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut ar = tar::Archive::new(f);
        let mut members = HashMap::new();
        let entries = ar.entries_with_seek().map_err(|e| {
            Error::bad(
                path.display().to_string(),
                format!("not a tar archive: {e}"),
            )
        })?;
        for e in entries {
            let e = e.map_err(|e| {
                Error::bad(
                    path.display().to_string(),
                    format!("corrupt tar archive: {e}"),
                )
            })?;
            if members.len() >= MAX_MEMBERS {
                return Err(Error::bad(
                    path.display().to_string(),
                    format!("more than {MAX_MEMBERS} members"),
                ));
            }
            if e.header().entry_type().is_file() {
                let (name, _) = crate::walk::normalize_path(&e.path_bytes());
                members.insert(
                    name.trim_start_matches('/').to_string(),
                    (e.raw_file_position(), e.size()),
                );
            }
        }
        Ok(TarIndex { members })
    }
}

/// Reads members of a local image, from a directory or a tarball.
#[derive(Debug, Clone)]
enum Files {
    Dir(PathBuf),
    Tar(PathBuf, Arc<TarIndex>),
}

impl Files {
    fn display(&self) -> String {
        match self {
            Files::Dir(p) | Files::Tar(p, _) => p.display().to_string(),
        }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        if name.split('/').any(|c| c == "..") || name.starts_with('/') {
            return Err(Error::bad(
                self.display(),
                format!("member name {name:?} escapes the archive"),
            ));
        }
        match self {
            Files::Dir(d) => {
                let p = d.join(name);
                let f = File::open(&p).map_err(|e| Error::io(&p, e))?;
                Ok(Box::new(f))
            }
            Files::Tar(p, idx) => {
                let &(off, size) = idx.members.get(name).ok_or_else(|| {
                    Error::bad(
                        p.display().to_string(),
                        format!("archive has no member {name}"),
                    )
                })?;
                let mut f = File::open(p).map_err(|e| Error::io(p, e))?;
                f.seek(SeekFrom::Start(off)).map_err(|e| Error::io(p, e))?;
                Ok(Box::new(f.take(size)))
            }
        }
    }

    fn exists(&self, name: &str) -> bool {
        match self {
            Files::Dir(d) => d.join(name).is_file(),
            Files::Tar(_, idx) => idx.members.contains_key(name),
        }
    }

    fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open(name)?
            .take(limit + 1)
            .read_to_end(&mut v)
            .map_err(|e| Error::bad(self.display(), format!("reading {name}: {e}")))?;
        if v.len() as u64 > limit {
            return Err(Error::TooLarge {
                origin: format!("{} member {name}", self.display()),
                what: name.to_string(),
                limit,
            });
        }
        Ok(v)
    }
}

/// Whether a tarball is a `docker save` archive or an OCI archive.
pub fn sniff_archive(path: &Path) -> Result<ArchiveKind> {
    let idx = TarIndex::read(path)?;
    if idx.members.contains_key("manifest.json") {
        Ok(ArchiveKind::Docker)
    } else if idx.members.contains_key("oci-layout") && idx.members.contains_key("index.json") {
        Ok(ArchiveKind::Oci)
    } else {
        Err(Error::bad(
            path.display().to_string(),
            "neither a docker-archive (no manifest.json) nor an OCI archive (no oci-layout/index.json)",
        ))
    }
}

struct MemberOpener {
    files: Files,
    /// Layer digest → member name.
    names: HashMap<String, String>,
}

impl BlobOpener for MemberOpener {
    fn open(&self, layer: &Layer) -> Result<Box<dyn Read + Send>> {
        let name = self.names.get(&layer.digest).ok_or_else(|| {
            Error::bad(
                self.files.display(),
                format!("no member for layer {}", layer.digest),
            )
        })?;
        self.files.open(name)
    }
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// A `docker save` manifest.json item.
#[derive(Debug, Deserialize)]
struct DockerItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Open a `docker save` tarball: one resolved image per manifest.json item.
pub fn open_docker_archive(path: &Path) -> Result<Vec<ResolvedImage>> {
    let origin = format!("docker-archive:{}", path.display());
    let files = Files::Tar(path.to_path_buf(), Arc::new(TarIndex::read(path)?));
    if !files.exists("manifest.json") {
        return Err(Error::bad(
            &origin,
            "no manifest.json: not a docker save archive",
        ));
    }
    let m = files.read_small("manifest.json", MAX_MANIFEST_BYTES)?;
    let items: Vec<DockerItem> = serde_json::from_slice(&m).map_err(|e| {
        Error::bad(
            &origin,
            format!("manifest.json is not a docker save manifest: {e}"),
        )
    })?;
    if items.is_empty() {
        return Err(Error::bad(&origin, "manifest.json lists no image"));
    }
    let mut out = Vec::new();
    for item in items {
        if item.layers.len() > MAX_LAYERS {
            return Err(Error::bad(
                &origin,
                format!(
                    "image lists {} layers; the limit is {MAX_LAYERS}",
                    item.layers.len()
                ),
            ));
        }
        let cbytes = files.read_small(&item.config, MAX_CONFIG_BYTES)?;
        let config_digest = sha256_digest(&cbytes);
        let expect = item
            .config
            .strip_prefix("blobs/sha256/")
            .or_else(|| item.config.strip_suffix(".json"))
            .map(|h| format!("sha256:{h}"));
        if let Some(e) = &expect
            && check(e, &origin).is_ok()
        {
            verify_doc(&cbytes, e, &format!("{origin} {}", item.config))?;
        }
        let config = ImageConfig::parse(&cbytes, &format!("{origin} {}", item.config))?;
        let diff_ids = config
            .rootfs
            .as_ref()
            .map(|r| r.diff_ids.clone())
            .unwrap_or_default();
        let mut layers = Vec::new();
        let mut names = HashMap::new();
        for (index, member) in item.layers.iter().enumerate() {
            let (digest, verify) = if let Some(h) = member.strip_prefix("blobs/sha256/") {
                let d = format!("sha256:{h}");
                (d.clone(), Verify::Blob(d))
            } else {
                let d = diff_ids.get(index).cloned().ok_or_else(|| {
                    Error::bad(
                        &origin,
                        format!("layer {index} ({member}) has no diff id in the config"),
                    )
                })?;
                (d.clone(), Verify::DiffId(d))
            };
            check(&digest, &origin)?;
            names.insert(digest.clone(), member.clone());
            layers.push(Layer {
                index,
                digest,
                media_type: None,
                size: match &files {
                    Files::Tar(_, idx) => idx.members.get(member).map(|m| m.1),
                    Files::Dir(_) => None,
                },
                verify,
            });
        }
        let tag = item.repo_tags.as_ref().and_then(|t| t.first()).cloned();
        let platform = crate::source::platform_of(&config);
        out.push(ResolvedImage {
            name: match tag {
                Some(t) => format!("{origin} ({t})"),
                None => origin.clone(),
            },
            manifest_digest: None,
            index_digest: None,
            platform,
            config_digest: Some(config_digest),
            config,
            layers,
            opener: Box::new(MemberOpener {
                files: files.clone(),
                names,
            }),
        });
    }
    Ok(out)
}

struct LayoutStore {
    files: Files,
    origin: String,
}

impl ManifestStore for LayoutStore {
    async fn manifest(
        &self,
        reference: &str,
        _media_type: Option<&str>,
    ) -> Result<(Vec<u8>, Option<String>)> {
        check(reference, &self.origin)?;
        Ok((
            self.files
                .read_small(&blob_name(reference), MAX_MANIFEST_BYTES)?,
            None,
        ))
    }

    async fn config(&self, digest: &str) -> Result<Vec<u8>> {
        let b = self
            .files
            .read_small(&blob_name(digest), MAX_CONFIG_BYTES)?;
        verify_doc(&b, digest, &format!("{} config", self.origin))?;
        Ok(b)
    }

    fn layer_verify(&self, digest: &str) -> Verify {
        Verify::Blob(digest.to_string())
    }

    fn origin(&self) -> String {
        self.origin.clone()
    }
}

/// Open an OCI image layout (a directory, or a tarball of one).
pub async fn open_oci(
    path: &Path,
    archive: bool,
    reference: Option<&str>,
    platform: &Platform,
    all: bool,
) -> Result<Vec<ResolvedImage>> {
    let origin = if archive {
        format!("oci-archive:{}", path.display())
    } else {
        format!("oci:{}", path.display())
    };
    let files = if archive {
        Files::Tar(path.to_path_buf(), Arc::new(TarIndex::read(path)?))
    } else {
        if !path.is_dir() {
            return Err(Error::bad(&origin, "not a directory"));
        }
        Files::Dir(path.to_path_buf())
    };
    if !files.exists("oci-layout") {
        return Err(Error::bad(
            &origin,
            "no oci-layout file: not an OCI image layout",
        ));
    }
    let index = files.read_small("index.json", MAX_MANIFEST_BYTES)?;
    let mut v: serde_json::Value = serde_json::from_slice(&index)
        .map_err(|e| Error::bad(&origin, format!("index.json is not valid JSON: {e}")))?;
    if let Some(r) = reference {
        let ms = v
            .get_mut("manifests")
            .and_then(|m| m.as_array_mut())
            .ok_or_else(|| Error::bad(&origin, "index.json has no manifests"))?;
        ms.retain(|m| {
            let ann = m.get("annotations");
            let name = |k: &str| {
                ann.and_then(|a| a.get(k))
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
            };
            name("org.opencontainers.image.ref.name") == r
                || name("io.containerd.image.name").ends_with(&format!(":{r}"))
                || name("io.containerd.image.name") == r
        });
        if ms.is_empty() {
            return Err(Error::bad(
                &origin,
                format!("index.json has no image named {r:?}"),
            ));
        }
    }
    if v.get("mediaType").is_none() {
        v["mediaType"] = serde_json::Value::String(crate::image::OCI_INDEX.into());
    }
    let top = serde_json::to_vec(&v).map_err(|e| Error::Other(e.to_string()))?;
    let store = LayoutStore {
        files: files.clone(),
        origin: origin.clone(),
    };
    let parts: Vec<Parts> = resolve_parts(&store, (top, None), None, platform, all).await?;
    let several = parts.len() > 1;
    Ok(parts
        .into_iter()
        .map(|p| {
            let names = p
                .layers
                .iter()
                .map(|l| (l.digest.clone(), blob_name(&l.digest)))
                .collect();
            ResolvedImage {
                name: match (&p.manifest_digest, several) {
                    (Some(d), true) => format!("{origin}@{d}"),
                    _ => origin.clone(),
                },
                manifest_digest: p.manifest_digest,
                index_digest: p.index_digest,
                platform: p.platform,
                config_digest: Some(p.config_digest),
                config: p.config,
                layers: p.layers,
                opener: Box::new(MemberOpener {
                    files: files.clone(),
                    names,
                }),
            }
        })
        .collect())
}
