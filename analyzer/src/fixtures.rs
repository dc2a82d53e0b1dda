//! Builders of test container images, made in code (crate feature `fixtures`).
//!
//! * [`LayerBuilder`] writes a layer tar entry by entry (files, directories,
//!   links, whiteouts, hostile raw paths, entries lying about their size) and
//!   compresses it into a [`Layer`].
//! * [`ImageBuilder`] assembles layers, an image config and a manifest into an
//!   [`Image`]; [`index`] groups images into a multi-platform [`Index`].
//! * Images and indexes can be written as `docker save` archives (legacy and
//!   Docker 25+ layouts), OCI layout directories and OCI archives, or pushed to
//!   a registry over the Distribution API ([`push_image`], [`push_index`]).
//!
//! Everything is deterministic: the same builder calls give the same bytes and
//! digests. For hostile inputs that the builders cannot express (e.g. 10,000
//! layers or 50 MB of JSON), make [`Blob`]s directly with [`Blob::new`] and
//! assemble them with [`Image::from_parts`] or [`manifest_blob`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// Media type strings used by the builders.
pub mod media_type {
    pub use crate::image::{
        DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
    };
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Not part of the Docker schema 2 spec, but what containerd and buildx use.
    pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
}

/// Annotation holding the tag in OCI layouts.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Modification time written into every generated tar header (2023-11-14).
pub const DEFAULT_MTIME: u64 = 1_700_000_000;

const CREATED: &str = "2023-11-14T22:13:20Z";

// ---------------------------------------------------------------------------
// digests and compression helpers

pub use crate::hex;

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(Sha256::digest(data).as_slice())
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// The hex part of a `sha256:<hex>` digest (or the whole string if it has no `:`).
fn digest_hex(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, h)| h)
}

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// Compresses `data` in memory.
pub fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2 + 64),
                flate2::Compression::default(),
            );
            // Writing into a Vec cannot fail.
            enc.write_all(data).expect("gzip into memory");
            enc.finish().expect("gzip into memory")
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3).expect("zstd into memory"),
    }
}

/// Decompresses a layer blob: by media type when it names a compression or an
/// uncompressed tar, otherwise by magic bytes (gzip, zstd, else as-is).
pub fn decompress(media_type: &str, blob: &[u8]) -> io::Result<Vec<u8>> {
    let c = if media_type.ends_with("gzip") {
        Compression::Gzip
    } else if media_type.ends_with("zstd") {
        Compression::Zstd
    } else if media_type.ends_with(".tar") || media_type.ends_with("tar") {
        Compression::None
    } else if blob.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    match c {
        Compression::None => Ok(blob.to_vec()),
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(blob).read_to_end(&mut out)?;
            Ok(out)
        }
        Compression::Zstd => zstd::stream::decode_all(blob),
    }
}

// ---------------------------------------------------------------------------
// layers

#[derive(Debug, Clone)]
enum EntryKind {
    File { content: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Symlink { target: Vec<u8> },
    Hardlink { target: Vec<u8> },
    Lying { claimed: u64 },
}

#[derive(Debug, Clone)]
struct Entry {
    path: Vec<u8>,
    kind: EntryKind,
}

/// Builds one layer tar, entry by entry, in the order the calls are made.
///
/// Paths are written verbatim (no `./` prefix added, no normalisation), except
/// that [`dir`](Self::dir) adds a trailing `/`. Paths (and link targets) longer
/// than 100 bytes get a GNU long-name entry, or a PAX extended header when
/// [`long_names_pax(true)`](Self::long_names_pax) was set.
#[derive(Debug, Clone)]
pub struct LayerBuilder {
    entries: Vec<Entry>,
    pax: bool,
    mtime: u64,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder {
            entries: Vec::new(),
            pax: false,
            mtime: DEFAULT_MTIME,
        }
    }

    fn push(mut self, path: &[u8], kind: EntryKind) -> Self {
        self.entries.push(Entry {
            path: path.to_vec(),
            kind,
        });
        self
    }

    /// Regular file, mode 0644.
    pub fn file(self, path: &str, content: impl AsRef<[u8]>) -> Self {
        self.file_mode(path, content, 0o644)
    }

    /// Regular file with the given mode (e.g. `0o4755` for a setuid binary).
    pub fn file_mode(self, path: &str, content: impl AsRef<[u8]>, mode: u32) -> Self {
        let content = content.as_ref().to_vec();
        self.push(path.as_bytes(), EntryKind::File { content, mode })
    }

    /// Directory, mode 0755; a trailing `/` is added to the name if missing.
    pub fn dir(self, path: &str) -> Self {
        self.dir_mode(path, 0o755)
    }

    /// Directory with the given mode.
    pub fn dir_mode(self, path: &str, mode: u32) -> Self {
        let mut p = path.as_bytes().to_vec();
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        self.push(&p, EntryKind::Dir { mode })
    }

    /// Symbolic link `path` -> `target` (target written verbatim).
    pub fn symlink(self, path: &str, target: &str) -> Self {
        let target = target.as_bytes().to_vec();
        self.push(path.as_bytes(), EntryKind::Symlink { target })
    }

    /// Hard link `path` -> `target` (target written verbatim).
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        let target = target.as_bytes().to_vec();
        self.push(path.as_bytes(), EntryKind::Hardlink { target })
    }

    /// Whiteout for `path`: an empty file `<dir>/.wh.<name>` (`.wh.<name>` at the root).
    pub fn whiteout(self, path: &str) -> Self {
        let p = path.trim_end_matches('/');
        let name = match p.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/.wh.{base}"),
            None => format!(".wh.{p}"),
        };
        self.file(&name, b"")
    }

    /// Opaque-directory marker: an empty file `<dir>/.wh..wh..opq`.
    pub fn opaque(self, dir: &str) -> Self {
        let d = dir.trim_end_matches('/');
        let name = if d.is_empty() {
            ".wh..wh..opq".to_owned()
        } else {
            format!("{d}/.wh..wh..opq")
        };
        self.file(&name, b"")
    }

    /// Regular-file entry whose name is `path_bytes` exactly as given (e.g.
    /// `../../x`, `/etc/x`, invalid UTF-8), bypassing the `tar` crate's path
    /// checks. Names over 100 bytes use the long-name extension like any entry.
    pub fn raw_entry(self, path_bytes: &[u8], content: impl AsRef<[u8]>) -> Self {
        let content = content.as_ref().to_vec();
        self.push(
            path_bytes,
            EntryKind::File {
                content,
                mode: 0o644,
            },
        )
    }

    /// Regular-file entry whose header claims `claimed_size` bytes (values of
    /// 8 GiB and more use the GNU base-256 size encoding) but that carries no
    /// data of its own: whatever entries are added after it follow its header
    /// directly, and the archive gets no end-of-archive blocks, so a reader
    /// that believes the size runs into the end of the stream.
    pub fn lying_size_entry(self, path: &str, claimed_size: u64) -> Self {
        self.push(
            path.as_bytes(),
            EntryKind::Lying {
                claimed: claimed_size,
            },
        )
    }

    /// Use PAX extended headers (`path=`/`linkpath=` records, ustar headers)
    /// instead of GNU long-name entries (GNU headers) for names over 100 bytes.
    pub fn long_names_pax(mut self, yes: bool) -> Self {
        self.pax = yes;
        self
    }

    /// Modification time written into every header (default [`DEFAULT_MTIME`]).
    pub fn mtime(mut self, secs: u64) -> Self {
        self.mtime = secs;
        self
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut truncated = false;
        for e in &self.entries {
            match &e.kind {
                EntryKind::File { content, mode } => self.put(
                    &mut out,
                    &e.path,
                    None,
                    EntryType::Regular,
                    *mode,
                    content,
                    None,
                ),
                EntryKind::Dir { mode } => self.put(
                    &mut out,
                    &e.path,
                    None,
                    EntryType::Directory,
                    *mode,
                    &[],
                    None,
                ),
                EntryKind::Symlink { target } => self.put(
                    &mut out,
                    &e.path,
                    Some(target),
                    EntryType::Symlink,
                    0o777,
                    &[],
                    None,
                ),
                EntryKind::Hardlink { target } => self.put(
                    &mut out,
                    &e.path,
                    Some(target),
                    EntryType::Link,
                    0o644,
                    &[],
                    None,
                ),
                EntryKind::Lying { claimed } => {
                    self.put(
                        &mut out,
                        &e.path,
                        None,
                        EntryType::Regular,
                        0o644,
                        &[],
                        Some(*claimed),
                    );
                    truncated = true;
                }
            }
        }
        if !truncated {
            out.extend_from_slice(&[0u8; 1024]);
        }
        out
    }

    /// Compresses the tar into a layer. Its media type is the OCI one for the
    /// compression; [`ImageBuilder::build`] rewrites it to the image's flavour.
    pub fn build(&self, c: Compression) -> Layer {
        Layer::from_tar(&self.tar(), c)
    }

    fn new_header(&self) -> Header {
        let mut h = if self.pax {
            Header::new_ustar()
        } else {
            Header::new_gnu()
        };
        h.set_mtime(self.mtime);
        h.set_uid(0);
        h.set_gid(0);
        let _ = h.set_username("root");
        let _ = h.set_groupname("root");
        h
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        out: &mut Vec<u8>,
        name: &[u8],
        link: Option<&[u8]>,
        ty: EntryType,
        mode: u32,
        data: &[u8],
        claimed: Option<u64>,
    ) {
        let long_name = name.len() > 100;
        let long_link = link.is_some_and(|l| l.len() > 100);
        if self.pax {
            if long_name || long_link {
                let mut recs = Vec::new();
                if long_name {
                    pax_record(&mut recs, "path", name);
                }
                if let Some(l) = link.filter(|_| long_link) {
                    pax_record(&mut recs, "linkpath", l);
                }
                let mut h = self.new_header();
                copy_field(&mut h.as_old_mut().name, b"././@PaxHeader");
                h.set_entry_type(EntryType::XHeader);
                h.set_mode(0o644);
                h.set_size(recs.len() as u64);
                h.set_cksum();
                out.extend_from_slice(h.as_bytes());
                write_padded(out, &recs);
            }
        } else {
            if long_name {
                self.gnu_long(out, EntryType::GNULongName, name);
            }
            if let Some(l) = link.filter(|_| long_link) {
                self.gnu_long(out, EntryType::GNULongLink, l);
            }
        }
        let mut h = self.new_header();
        copy_field(&mut h.as_old_mut().name, name);
        if let Some(l) = link {
            copy_field(&mut h.as_old_mut().linkname, l);
        }
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_size(claimed.unwrap_or(data.len() as u64));
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        write_padded(out, data);
    }

    fn gnu_long(&self, out: &mut Vec<u8>, ty: EntryType, value: &[u8]) {
        let mut data = value.to_vec();
        data.push(0);
        let mut h = self.new_header();
        copy_field(&mut h.as_old_mut().name, b"././@LongLink");
        h.set_entry_type(ty);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        write_padded(out, &data);
    }
}

/// Copies `src` into a NUL-padded header field, truncating to the field size.
fn copy_field(dst: &mut [u8], src: &[u8]) {
    dst.fill(0);
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
}

/// Appends `data` padded with zeros to a multiple of 512 bytes.
fn write_padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    let rem = data.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
}

/// Appends one PAX record `"<len> <key>=<value>\n"`, where `len` counts the
/// whole record including its own digits.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    loop {
        let total = rest + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A compressed layer blob with its digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub blob: Vec<u8>,
    /// `sha256:<hex>` of `blob`.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    pub media_type: String,
    /// `blob.len()`.
    pub size: u64,
    pub compression: Compression,
}

impl Layer {
    /// Layer from arbitrary tar bytes (which need not be a valid tar).
    pub fn from_tar(tar: &[u8], c: Compression) -> Layer {
        let blob = compress(tar, c);
        Layer {
            digest: sha256_digest(&blob),
            diff_id: sha256_digest(tar),
            media_type: layer_media_type(MediaTypes::Oci, c).to_owned(),
            size: blob.len() as u64,
            blob,
            compression: c,
        }
    }

    /// Sets a media type that [`ImageBuilder::build`] keeps as is (any type not
    /// among the standard layer types is kept, e.g. a foreign-layer type).
    pub fn with_media_type(mut self, media_type: &str) -> Self {
        self.media_type = media_type.to_owned();
        self
    }

    /// The layer as a blob descriptor.
    pub fn to_blob(&self) -> Blob {
        Blob {
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            bytes: self.blob.clone(),
        }
    }
}

/// Manifest / config / layer media-type flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaTypes {
    /// Docker schema 2 (`application/vnd.docker.*`).
    Docker,
    /// OCI image spec (`application/vnd.oci.*`).
    Oci,
}

impl MediaTypes {
    pub fn manifest(self) -> &'static str {
        match self {
            MediaTypes::Docker => media_type::DOCKER_MANIFEST,
            MediaTypes::Oci => media_type::OCI_MANIFEST,
        }
    }
    pub fn index(self) -> &'static str {
        match self {
            MediaTypes::Docker => media_type::DOCKER_MANIFEST_LIST,
            MediaTypes::Oci => media_type::OCI_INDEX,
        }
    }
    pub fn config(self) -> &'static str {
        match self {
            MediaTypes::Docker => media_type::DOCKER_CONFIG,
            MediaTypes::Oci => media_type::OCI_CONFIG,
        }
    }
}

/// Layer media type for a flavour and compression.
pub fn layer_media_type(m: MediaTypes, c: Compression) -> &'static str {
    use media_type::*;
    match (m, c) {
        (MediaTypes::Docker, Compression::Gzip) => DOCKER_LAYER_GZIP,
        (MediaTypes::Docker, Compression::Zstd) => DOCKER_LAYER_ZSTD,
        (MediaTypes::Docker, Compression::None) => DOCKER_LAYER,
        (MediaTypes::Oci, Compression::Gzip) => OCI_LAYER_GZIP,
        (MediaTypes::Oci, Compression::Zstd) => OCI_LAYER_ZSTD,
        (MediaTypes::Oci, Compression::None) => OCI_LAYER,
    }
}

fn is_standard_layer_type(mt: &str) -> bool {
    use media_type::*;
    [
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
        DOCKER_LAYER_ZSTD,
    ]
    .contains(&mt)
}

// ---------------------------------------------------------------------------
// blobs, images, indexes

/// Content-addressed bytes with their media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>` of `bytes` (unless a hostile test set it otherwise).
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Blob with its digest computed.
    pub fn new(media_type: &str, bytes: impl Into<Vec<u8>>) -> Blob {
        let bytes = bytes.into();
        Blob {
            digest: sha256_digest(&bytes),
            media_type: media_type.to_owned(),
            bytes,
        }
    }

    /// Blob holding `value` serialised compactly.
    pub fn json(media_type: &str, value: &Value) -> Blob {
        Blob::new(media_type, value.to_string().into_bytes())
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// `{"mediaType","digest","size"}`.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size()})
    }

    fn hex(&self) -> &str {
        digest_hex(&self.digest)
    }
}

/// Schema-2 image manifest referencing `config` and `layers`; `annotations`
/// are added when non-empty.
pub fn manifest_blob(
    m: MediaTypes,
    config: &Blob,
    layers: &[Blob],
    annotations: &BTreeMap<String, String>,
) -> Blob {
    let mut v = json!({
        "schemaVersion": 2,
        "mediaType": m.manifest(),
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    if !annotations.is_empty() {
        v["annotations"] = json!(annotations);
    }
    Blob::json(m.manifest(), &v)
}

/// Builds one single-platform image.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    media: MediaTypes,
    os: String,
    arch: String,
    variant: Option<String>,
    layers: Vec<Layer>,
    env: Vec<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    user: Option<String>,
    workdir: Option<String>,
    exposed: Vec<String>,
    labels: BTreeMap<String, String>,
    history: Vec<(String, bool)>,
    annotations: BTreeMap<String, String>,
    raw_config: Option<Vec<u8>>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageBuilder {
    /// OCI media types, linux/amd64, no layers.
    pub fn new() -> Self {
        ImageBuilder {
            media: MediaTypes::Oci,
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
            layers: Vec::new(),
            env: Vec::new(),
            cmd: None,
            entrypoint: None,
            user: None,
            workdir: None,
            exposed: Vec::new(),
            labels: BTreeMap::new(),
            history: Vec::new(),
            annotations: BTreeMap::new(),
            raw_config: None,
        }
    }

    pub fn media_types(mut self, m: MediaTypes) -> Self {
        self.media = m;
        self
    }

    pub fn platform(mut self, os: &str, arch: &str, variant: Option<&str>) -> Self {
        self.os = os.into();
        self.arch = arch.into();
        self.variant = variant.map(Into::into);
        self
    }

    pub fn layer(mut self, l: Layer) -> Self {
        self.layers.push(l);
        self
    }

    /// Adds one `KEY=value` to `config.Env`.
    pub fn env(mut self, kv: &str) -> Self {
        self.env.push(kv.into());
        self
    }

    pub fn cmd(mut self, argv: &[&str]) -> Self {
        self.cmd = Some(argv.iter().map(|s| s.to_string()).collect());
        self
    }

    pub fn entrypoint(mut self, argv: &[&str]) -> Self {
        self.entrypoint = Some(argv.iter().map(|s| s.to_string()).collect());
        self
    }

    pub fn user(mut self, u: &str) -> Self {
        self.user = Some(u.into());
        self
    }

    pub fn workdir(mut self, dir: &str) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Adds `port` (e.g. `"8080/tcp"`) to `config.ExposedPorts`.
    pub fn expose(mut self, port: &str) -> Self {
        self.exposed.push(port.into());
        self
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    /// Adds a history entry. Without any, the config gets one entry per layer
    /// (`created_by: "fixture layer N"`, `empty_layer: false`).
    pub fn history(mut self, created_by: &str, empty_layer: bool) -> Self {
        self.history.push((created_by.into(), empty_layer));
        self
    }

    /// Adds an annotation to the manifest.
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.annotations.insert(k.into(), v.into());
        self
    }

    /// Uses `bytes` verbatim as the config blob instead of the generated JSON
    /// (start from [`config_value`](Self::config_value) to tweak it).
    pub fn raw_config(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_config = Some(bytes.into());
        self
    }

    /// The config JSON that [`build`](Self::build) writes (unless a raw config is set).
    pub fn config_value(&self) -> Value {
        let mut cfg = Map::new();
        cfg.insert("Env".into(), json!(self.env));
        if let Some(c) = &self.cmd {
            cfg.insert("Cmd".into(), json!(c));
        }
        if let Some(e) = &self.entrypoint {
            cfg.insert("Entrypoint".into(), json!(e));
        }
        if let Some(u) = &self.user {
            cfg.insert("User".into(), json!(u));
        }
        if let Some(w) = &self.workdir {
            cfg.insert("WorkingDir".into(), json!(w));
        }
        if !self.exposed.is_empty() {
            let ports: Map<String, Value> = self
                .exposed
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            cfg.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if !self.labels.is_empty() {
            cfg.insert("Labels".into(), json!(self.labels));
        }
        let history: Vec<Value> = if self.history.is_empty() {
            (0..self.layers.len())
                .map(|i| json!({"created": CREATED, "created_by": format!("fixture layer {i}"), "empty_layer": false}))
                .collect()
        } else {
            self.history
                .iter()
                .map(|(c, e)| json!({"created": CREATED, "created_by": c, "empty_layer": e}))
                .collect()
        };
        let mut v = json!({
            "created": CREATED,
            "architecture": self.arch,
            "os": self.os,
            "config": Value::Object(cfg),
            "rootfs": {
                "type": "layers",
                "diff_ids": self.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
            },
            "history": history,
        });
        if let Some(var) = &self.variant {
            v["variant"] = json!(var);
        }
        v
    }

    pub fn build(self) -> Image {
        let config_bytes = self
            .raw_config
            .clone()
            .unwrap_or_else(|| self.config_value().to_string().into_bytes());
        let config = Blob::new(self.media.config(), config_bytes);
        let layers: Vec<Blob> = self
            .layers
            .iter()
            .map(|l| {
                let mut b = l.to_blob();
                if is_standard_layer_type(&b.media_type) {
                    b.media_type = layer_media_type(self.media, l.compression).to_owned();
                }
                b
            })
            .collect();
        let manifest = manifest_blob(self.media, &config, &layers, &self.annotations);
        Image {
            config,
            layers,
            manifest,
            platform: (self.os, self.arch, self.variant),
            diff_ids: self.layers.iter().map(|l| l.diff_id.clone()).collect(),
            media_types: self.media,
        }
    }
}

/// A built image: config, layer blobs and manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Blob,
    /// (os, architecture, variant)
    pub platform: (String, String, Option<String>),
    /// `sha256:<hex>` of each uncompressed layer, as in the config.
    pub diff_ids: Vec<String>,
    pub media_types: MediaTypes,
}

/// A multi-platform index (OCI image index or Docker manifest list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub manifest: Blob,
    pub images: Vec<Image>,
}

/// Groups images into an index whose entries carry each image's platform.
pub fn index(images: Vec<Image>, m: MediaTypes) -> Index {
    let manifests: Vec<Value> = images
        .iter()
        .map(|img| {
            let mut d = img.manifest.descriptor();
            d["platform"] = img.platform_json();
            d
        })
        .collect();
    let v = json!({"schemaVersion": 2, "mediaType": m.index(), "manifests": manifests});
    Index {
        manifest: Blob::json(m.index(), &v),
        images,
    }
}

/// Files of an archive or layout, in write order, unique by path.
#[derive(Default)]
struct FileSet {
    files: Vec<(String, Vec<u8>)>,
    seen: BTreeSet<String>,
}

impl FileSet {
    fn add(&mut self, path: String, bytes: Vec<u8>) {
        if self.seen.insert(path.clone()) {
            self.files.push((path, bytes));
        }
    }

    fn blob(&mut self, b: &Blob) {
        self.add(format!("blobs/sha256/{}", b.hex()), b.bytes.clone());
    }

    fn write_dir(&self, root: &Path) -> io::Result<()> {
        for (path, bytes) in &self.files {
            let p = root.join(path);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&p, bytes)?;
        }
        Ok(())
    }

    fn write_tar(&self, path: &Path) -> io::Result<()> {
        let file = fs::File::create(path)?;
        let mut b = tar::Builder::new(io::BufWriter::new(file));
        let mut dirs = BTreeSet::new();
        for (p, bytes) in &self.files {
            // Parent directory entries first, as `docker save` writes them.
            let mut prefix = String::new();
            let parts: Vec<&str> = p.split('/').collect();
            for part in &parts[..parts.len().saturating_sub(1)] {
                prefix.push_str(part);
                prefix.push('/');
                if dirs.insert(prefix.clone()) {
                    let mut h = Header::new_gnu();
                    h.set_entry_type(EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_mtime(DEFAULT_MTIME);
                    h.set_size(0);
                    b.append_data(&mut h, &prefix, io::empty())?;
                }
            }
            let mut h = Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o644);
            h.set_mtime(DEFAULT_MTIME);
            h.set_size(bytes.len() as u64);
            b.append_data(&mut h, p, bytes.as_slice())?;
        }
        b.into_inner()?.flush()
    }
}

fn oci_layout_file() -> Vec<u8> {
    json!({"imageLayoutVersion": "1.0.0"})
        .to_string()
        .into_bytes()
}

fn ref_annotations(tag: &str) -> Value {
    json!({ REF_NAME_ANNOTATION: tag })
}

/// Splits `name:tag` (the tag part is after the last `:` following the last
/// `/`); `latest` when there is none.
fn split_tag(tag: &str) -> (&str, &str) {
    let slash = tag.rfind('/').map_or(0, |i| i + 1);
    match tag[slash..].rfind(':') {
        Some(i) => (&tag[..slash + i], &tag[slash + i + 1..]),
        None => (tag, "latest"),
    }
}

impl Image {
    /// Image from ready-made blobs; the manifest is generated (hostile tests
    /// can then replace any field).
    pub fn from_parts(
        m: MediaTypes,
        config: Blob,
        layers: Vec<Blob>,
        platform: (String, String, Option<String>),
        diff_ids: Vec<String>,
    ) -> Image {
        let manifest = manifest_blob(m, &config, &layers, &BTreeMap::new());
        Image {
            config,
            layers,
            manifest,
            platform,
            diff_ids,
            media_types: m,
        }
    }

    /// `{"architecture","os","variant"?}`.
    pub fn platform_json(&self) -> Value {
        let (os, arch, variant) = &self.platform;
        let mut p = json!({"architecture": arch, "os": os});
        if let Some(v) = variant {
            p["variant"] = json!(v);
        }
        p
    }

    /// Every blob of the image: config, layers, then the manifest.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut v = vec![&self.config];
        v.extend(self.layers.iter());
        v.push(&self.manifest);
        v
    }

    /// The uncompressed tar of each layer.
    pub fn layer_tars(&self) -> io::Result<Vec<Vec<u8>>> {
        self.layers
            .iter()
            .map(|l| decompress(&l.media_type, &l.bytes))
            .collect()
    }

    fn add_blobs(&self, files: &mut FileSet) {
        for b in self.blobs() {
            files.blob(b);
        }
    }

    fn oci_layout_files(&self, tag: &str) -> FileSet {
        let mut files = FileSet::default();
        files.add("oci-layout".into(), oci_layout_file());
        self.add_blobs(&mut files);
        let mut d = self.manifest.descriptor();
        d["platform"] = self.platform_json();
        if !tag.is_empty() {
            d["annotations"] = ref_annotations(tag);
        }
        let idx = json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": [d]});
        files.add("index.json".into(), idx.to_string().into_bytes());
        files
    }

    /// Writes a `docker save` archive to `path`.
    ///
    /// Layers are stored uncompressed (the blobs are decompressed). With
    /// `new_format == false` (Docker before 25): `<chain-id hex>/layer.tar`
    /// plus `VERSION` and `json` per layer (the OCI ChainID of the layer, so
    /// repeated layers get distinct directories), `<config hex>.json`,
    /// `manifest.json` and `repositories`. With `new_format == true`
    /// (Docker 25+): an OCI layout (`oci-layout`, `index.json`,
    /// `blobs/sha256/*`, with an OCI manifest listing the uncompressed layers)
    /// plus `manifest.json` whose `Config`/`Layers` are `blobs/sha256/<hex>`
    /// paths, and `repositories`. An empty `tag` gives `"RepoTags": null`.
    pub fn write_docker_archive(&self, path: &Path, tag: &str, new_format: bool) -> io::Result<()> {
        let tars = self.layer_tars()?;
        let mut files = FileSet::default();
        let repo_tags = if tag.is_empty() {
            Value::Null
        } else {
            json!([tag])
        };
        let mut layer_paths = Vec::new();
        let mut top_id = String::new();
        if new_format {
            let layer_blobs: Vec<Blob> = tars
                .into_iter()
                .map(|t| Blob::new(media_type::OCI_LAYER, t))
                .collect();
            let config = Blob::new(media_type::OCI_CONFIG, self.config.bytes.clone());
            let manifest = manifest_blob(MediaTypes::Oci, &config, &layer_blobs, &BTreeMap::new());
            files.add("oci-layout".into(), oci_layout_file());
            files.blob(&config);
            for l in &layer_blobs {
                files.blob(l);
                layer_paths.push(format!("blobs/sha256/{}", l.hex()));
                top_id = l.hex().to_owned();
            }
            files.blob(&manifest);
            let mut d = manifest.descriptor();
            if !tag.is_empty() {
                d["annotations"] = json!({
                    "io.containerd.image.name": tag,
                    REF_NAME_ANNOTATION: split_tag(tag).1,
                });
            }
            let idx =
                json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": [d]});
            files.add("index.json".into(), idx.to_string().into_bytes());
            let m = json!([{
                "Config": format!("blobs/sha256/{}", config.hex()),
                "RepoTags": repo_tags,
                "Layers": layer_paths,
            }]);
            files.add("manifest.json".into(), m.to_string().into_bytes());
        } else {
            let mut chain: Option<String> = None;
            let mut parent_id: Option<String> = None;
            for t in tars {
                let diff = sha256_digest(&t);
                let next = match &chain {
                    None => diff,
                    Some(prev) => sha256_digest(format!("{prev} {diff}").as_bytes()),
                };
                let id = digest_hex(&next).to_owned();
                chain = Some(next);
                let mut j = json!({"id": id, "created": CREATED});
                if let Some(p) = &parent_id {
                    j["parent"] = json!(p);
                }
                files.add(format!("{id}/VERSION"), b"1.0".to_vec());
                files.add(format!("{id}/json"), j.to_string().into_bytes());
                files.add(format!("{id}/layer.tar"), t);
                layer_paths.push(format!("{id}/layer.tar"));
                parent_id = Some(id.clone());
                top_id = id;
            }
            files.add(
                format!("{}.json", self.config.hex()),
                self.config.bytes.clone(),
            );
            let m = json!([{
                "Config": format!("{}.json", self.config.hex()),
                "RepoTags": repo_tags,
                "Layers": layer_paths,
            }]);
            files.add("manifest.json".into(), m.to_string().into_bytes());
        }
        if !tag.is_empty() && !top_id.is_empty() {
            let (name, t) = split_tag(tag);
            files.add(
                "repositories".into(),
                json!({ name: { t: top_id } }).to_string().into_bytes(),
            );
        }
        files.write_tar(path)
    }

    /// Writes an OCI image layout into `dir` (created if needed): `oci-layout`,
    /// `blobs/sha256/<hex>` for config, layers and manifest, and `index.json`
    /// with one descriptor (platform included) annotated
    /// `org.opencontainers.image.ref.name = tag` (no annotation if `tag` is empty).
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) -> io::Result<()> {
        self.oci_layout_files(tag).write_dir(dir)
    }

    /// The OCI layout of [`write_oci_layout`](Self::write_oci_layout) as a tar file.
    pub fn write_oci_archive(&self, path: &Path, tag: &str) -> io::Result<()> {
        self.oci_layout_files(tag).write_tar(path)
    }
}

impl Index {
    fn layout_files(&self, tag: &str, flat: bool) -> FileSet {
        let mut files = FileSet::default();
        files.add("oci-layout".into(), oci_layout_file());
        for img in &self.images {
            img.add_blobs(&mut files);
        }
        let manifests: Vec<Value> = if flat {
            self.images
                .iter()
                .map(|img| {
                    let mut d = img.manifest.descriptor();
                    d["platform"] = img.platform_json();
                    if !tag.is_empty() {
                        d["annotations"] = ref_annotations(tag);
                    }
                    d
                })
                .collect()
        } else {
            files.blob(&self.manifest);
            let mut d = self.manifest.descriptor();
            if !tag.is_empty() {
                d["annotations"] = ref_annotations(tag);
            }
            vec![d]
        };
        let idx =
            json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": manifests});
        files.add("index.json".into(), idx.to_string().into_bytes());
        files
    }

    /// Writes an OCI layout whose `index.json` has one descriptor, of the index
    /// blob (annotated with `tag`); the index blob lists the platform manifests.
    pub fn write_oci_layout(&self, dir: &Path, tag: &str) -> io::Result<()> {
        self.layout_files(tag, false).write_dir(dir)
    }

    /// Writes an OCI layout whose `index.json` lists each platform manifest
    /// directly (with platform, each annotated with `tag`); the index blob is
    /// not written.
    pub fn write_oci_layout_flat(&self, dir: &Path, tag: &str) -> io::Result<()> {
        self.layout_files(tag, true).write_dir(dir)
    }

    /// The layout of [`write_oci_layout`](Self::write_oci_layout) as a tar file.
    pub fn write_oci_archive(&self, path: &Path, tag: &str) -> io::Result<()> {
        self.layout_files(tag, false).write_tar(path)
    }
}

// ---------------------------------------------------------------------------
// registry push

/// Credentials for [`push_image`] and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Basic { user: String, pass: String },
    Bearer(String),
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building HTTP client")
}

fn authed(rb: reqwest::RequestBuilder, auth: Option<&Auth>) -> reqwest::RequestBuilder {
    match auth {
        None => rb,
        Some(Auth::Basic { user, pass }) => rb.basic_auth(user, Some(pass)),
        Some(Auth::Bearer(t)) => rb.bearer_auth(t),
    }
}

/// Resolves an upload `Location` against the registry base URL.
fn absolute_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let origin = match base.find("://") {
        Some(i) => match base[i + 3..].find('/') {
            Some(j) => &base[..i + 3 + j],
            None => base,
        },
        None => base,
    };
    if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        format!("{}/{location}", base.trim_end_matches('/'))
    }
}

async fn expect_status(
    resp: reqwest::Response,
    want: u16,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    let status = resp.status();
    if status.as_u16() != want {
        let body = resp.text().await.unwrap_or_default();
        bail!("{what}: expected {want}, got {status}: {body}");
    }
    Ok(resp)
}

async fn push_blob_with(
    client: &reqwest::Client,
    base_url: &str,
    repo: &str,
    blob: &Blob,
    auth: Option<&Auth>,
) -> anyhow::Result<()> {
    use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
    let base = base_url.trim_end_matches('/');
    // Already in the repository: not uploaded again (as `docker push` does).
    let exists = format!("{base}/v2/{repo}/blobs/{}", blob.digest);
    if let Ok(r) = authed(client.head(&exists), auth).send().await
        && r.status().as_u16() == 200
    {
        return Ok(());
    }
    let start = format!("{base}/v2/{repo}/blobs/uploads/");
    let resp = authed(client.post(&start), auth)
        .header(CONTENT_LENGTH, "0")
        .send()
        .await
        .with_context(|| format!("POST {start}"))?;
    let resp = expect_status(resp, 202, &format!("POST {start}")).await?;
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("POST {start}: no Location header"))?
        .to_owned();
    let mut url = absolute_url(base, &location);
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str("digest=");
    url.push_str(&blob.digest.replace(':', "%3A"));
    let resp = authed(client.put(&url), auth)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(blob.bytes.clone())
        .send()
        .await
        .with_context(|| format!("PUT {url}"))?;
    expect_status(resp, 201, &format!("PUT blob {} to {repo}", blob.digest)).await?;
    Ok(())
}

async fn put_manifest_with(
    client: &reqwest::Client,
    base_url: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
    auth: Option<&Auth>,
) -> anyhow::Result<()> {
    let url = format!(
        "{}/v2/{repo}/manifests/{reference}",
        base_url.trim_end_matches('/')
    );
    let resp = authed(client.put(&url), auth)
        .header(reqwest::header::CONTENT_TYPE, media_type)
        .body(body.to_vec())
        .send()
        .await
        .with_context(|| format!("PUT {url}"))?;
    expect_status(resp, 201, &format!("PUT {url}")).await?;
    Ok(())
}

async fn push_image_with(
    client: &reqwest::Client,
    base_url: &str,
    repo: &str,
    reference: &str,
    img: &Image,
    auth: Option<&Auth>,
) -> anyhow::Result<()> {
    let mut done = BTreeSet::new();
    for b in img.layers.iter().chain(std::iter::once(&img.config)) {
        if done.insert(b.digest.as_str()) {
            push_blob_with(client, base_url, repo, b, auth).await?;
        }
    }
    let m = &img.manifest;
    put_manifest_with(
        client,
        base_url,
        repo,
        reference,
        &m.media_type,
        &m.bytes,
        auth,
    )
    .await
}

/// Uploads one blob (monolithic: `POST /v2/<repo>/blobs/uploads/`, then
/// `PUT <Location>&digest=<digest>`).
pub async fn push_blob(
    base_url: &str,
    repo: &str,
    blob: &Blob,
    auth: Option<&Auth>,
) -> anyhow::Result<()> {
    push_blob_with(&http_client()?, base_url, repo, blob, auth).await
}

/// `PUT /v2/<repo>/manifests/<reference>` with `Content-Type: media_type`.
pub async fn put_manifest(
    base_url: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
    auth: Option<&Auth>,
) -> anyhow::Result<()> {
    put_manifest_with(
        &http_client()?,
        base_url,
        repo,
        reference,
        media_type,
        body,
        auth,
    )
    .await
}

/// Pushes layers and config, then the manifest under `tag`.
pub async fn push_image(
    base_url: &str,
    repo: &str,
    tag: &str,
    img: &Image,
    auth: Option<&Auth>,
) -> anyhow::Result<()> {
    push_image_with(&http_client()?, base_url, repo, tag, img, auth).await
}

/// Pushes each image (its manifest by digest), then the index under `tag`.
pub async fn push_index(
    base_url: &str,
    repo: &str,
    tag: &str,
    idx: &Index,
    auth: Option<&Auth>,
) -> anyhow::Result<()> {
    let client = http_client()?;
    for img in &idx.images {
        push_image_with(&client, base_url, repo, &img.manifest.digest, img, auth).await?;
    }
    let m = &idx.manifest;
    put_manifest_with(&client, base_url, repo, tag, &m.media_type, &m.bytes, auth).await
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// (path bytes, entry type, mode, link name, content) of each entry.
    type Row = (Vec<u8>, EntryType, u32, Option<Vec<u8>>, Vec<u8>);

    fn read_tar(bytes: &[u8]) -> Vec<Row> {
        let mut ar = tar::Archive::new(Cursor::new(bytes));
        let mut rows = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path_bytes().into_owned();
            let ty = e.header().entry_type();
            let mode = e.header().mode().unwrap();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            rows.push((path, ty, mode, link, data));
        }
        rows
    }

    fn sample() -> LayerBuilder {
        LayerBuilder::new()
            .dir("etc")
            .file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
            .file_mode("usr/bin/su", b"\x7fELF", 0o4755)
            .symlink("bin", "usr/bin")
            .hardlink("usr/bin/su2", "usr/bin/su")
            .whiteout("var/cache/apt")
            .whiteout("gone")
            .opaque("opt/app/")
    }

    #[test]
    fn hex_and_digests() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f, 0xff]), "00ab0fff");
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn tar_round_trips_kinds_and_paths() {
        let rows = read_tar(&sample().tar());
        let paths: Vec<&[u8]> = rows.iter().map(|r| r.0.as_slice()).collect();
        assert_eq!(
            paths,
            vec![
                &b"etc/"[..],
                b"etc/passwd",
                b"usr/bin/su",
                b"bin",
                b"usr/bin/su2",
                b"var/cache/.wh.apt",
                b".wh.gone",
                b"opt/app/.wh..wh..opq",
            ]
        );
        assert_eq!(rows[0].1, EntryType::Directory);
        assert_eq!(rows[0].2, 0o755);
        assert_eq!(rows[1].1, EntryType::Regular);
        assert_eq!(rows[1].2, 0o644);
        assert_eq!(rows[1].4, b"root:x:0:0::/root:/bin/sh\n");
        assert_eq!(rows[2].2, 0o4755);
        assert_eq!(rows[2].4, b"\x7fELF");
        assert_eq!(rows[3].1, EntryType::Symlink);
        assert_eq!(rows[3].3.as_deref(), Some(&b"usr/bin"[..]));
        assert_eq!(rows[4].1, EntryType::Link);
        assert_eq!(rows[4].3.as_deref(), Some(&b"usr/bin/su"[..]));
        assert!(rows[5].4.is_empty());
    }

    #[test]
    fn long_names_gnu_and_pax() {
        let long_dir = "d".repeat(120);
        let long = format!("{long_dir}/{}", "f".repeat(150));
        let long_target = format!("{long_dir}/target-{}", "t".repeat(110));
        for pax in [false, true] {
            let tar = LayerBuilder::new()
                .long_names_pax(pax)
                .file(&long, "x")
                .symlink(&format!("{long_dir}/link"), &long_target)
                .hardlink("short", &long)
                .raw_entry(format!("../{long}").as_bytes(), "y")
                .tar();
            // The extension entry type is in the stream.
            let ext_type = if pax { b'x' } else { b'L' };
            assert_eq!(tar[156], ext_type, "pax={pax}");
            let rows = read_tar(&tar);
            assert_eq!(rows.len(), 4, "pax={pax}");
            assert_eq!(rows[0].0, long.as_bytes());
            assert_eq!(rows[0].4, b"x");
            assert_eq!(rows[1].0, format!("{long_dir}/link").as_bytes());
            assert_eq!(rows[1].3.as_deref(), Some(long_target.as_bytes()));
            assert_eq!(rows[2].3.as_deref(), Some(long.as_bytes()));
            assert_eq!(rows[3].0, format!("../{long}").as_bytes());
        }
    }

    #[test]
    fn raw_entries_keep_hostile_paths() {
        let tar = LayerBuilder::new()
            .raw_entry(b"../../x", "up")
            .raw_entry(b"/etc/x", "abs")
            .raw_entry(b"a/\xff\xfe", "bad utf8")
            .tar();
        // Bytes are in the header verbatim.
        assert_eq!(&tar[..8], b"../../x\0");
        let rows = read_tar(&tar);
        assert_eq!(rows[0].0, b"../../x");
        assert_eq!(rows[0].4, b"up");
        assert_eq!(rows[1].0, b"/etc/x");
        assert_eq!(rows[2].0, b"a/\xff\xfe");
    }

    #[test]
    fn lying_size_entry_claims_more_than_it_has() {
        let claimed = 100 * 1000 * 1000 * 1000;
        let tar = LayerBuilder::new()
            .file("ok", "fine")
            .lying_size_entry("huge", claimed)
            .tar();
        assert_eq!(tar.len(), 512 * 3); // ok header + data, huge header, no trailer
        let mut ar = tar::Archive::new(Cursor::new(&tar[..]));
        let mut entries = ar.entries().unwrap();
        let first = entries.next().unwrap().unwrap();
        assert_eq!(first.header().size().unwrap(), 4);
        drop(first);
        let mut huge = entries.next().unwrap().unwrap();
        assert_eq!(huge.path_bytes().as_ref(), b"huge");
        assert_eq!(huge.header().size().unwrap(), claimed);
        let mut buf = Vec::new();
        let read = huge.read_to_end(&mut buf);
        assert!(read.is_err() || buf.len() < 1024);
    }

    #[test]
    fn compressions_and_digests() {
        let lb = sample();
        let tar = lb.tar();
        for (c, mt) in [
            (Compression::Gzip, media_type::OCI_LAYER_GZIP),
            (Compression::Zstd, media_type::OCI_LAYER_ZSTD),
            (Compression::None, media_type::OCI_LAYER),
        ] {
            let l = lb.build(c);
            assert_eq!(l.media_type, mt);
            assert_eq!(l.digest, sha256_digest(&l.blob));
            assert_eq!(l.diff_id, sha256_digest(&tar));
            assert_eq!(l.size, l.blob.len() as u64);
            assert_eq!(decompress(&l.media_type, &l.blob).unwrap(), tar);
            // by magic too
            assert_eq!(
                decompress("application/octet-stream", &l.blob).unwrap(),
                tar
            );
        }
        assert_eq!(
            lb.build(Compression::Gzip),
            lb.build(Compression::Gzip),
            "deterministic"
        );
    }

    fn small_image(m: MediaTypes) -> Image {
        ImageBuilder::new()
            .media_types(m)
            .platform("linux", "arm64", Some("v8"))
            .layer(sample().build(Compression::Gzip))
            .layer(
                LayerBuilder::new()
                    .file("app/run.sh", "#!/bin/sh\n")
                    .build(Compression::Zstd),
            )
            .layer(LayerBuilder::new().file("x", "y").build(Compression::None))
            .env("PATH=/usr/bin")
            .env("SECRET=1")
            .cmd(&["/app/run.sh", "--fast"])
            .entrypoint(&["/bin/sh", "-c"])
            .user("1000:1000")
            .label("org.example", "yes")
            .history("ADD rootfs", false)
            .history("ENV SECRET=1", true)
            .history("COPY run.sh", false)
            .history("COPY x", false)
            .build()
    }

    #[test]
    fn image_config_and_manifest() {
        for m in [MediaTypes::Oci, MediaTypes::Docker] {
            let img = small_image(m);
            assert_eq!(img.config.digest, sha256_digest(&img.config.bytes));
            assert_eq!(img.manifest.digest, sha256_digest(&img.manifest.bytes));
            let cfg: Value = serde_json::from_slice(&img.config.bytes).unwrap();
            assert_eq!(cfg["architecture"], "arm64");
            assert_eq!(cfg["os"], "linux");
            assert_eq!(cfg["variant"], "v8");
            assert_eq!(cfg["config"]["Env"], json!(["PATH=/usr/bin", "SECRET=1"]));
            assert_eq!(cfg["config"]["Cmd"], json!(["/app/run.sh", "--fast"]));
            assert_eq!(cfg["config"]["Entrypoint"], json!(["/bin/sh", "-c"]));
            assert_eq!(cfg["config"]["User"], "1000:1000");
            assert_eq!(cfg["config"]["Labels"]["org.example"], "yes");
            assert_eq!(cfg["rootfs"]["type"], "layers");
            assert_eq!(cfg["rootfs"]["diff_ids"], json!(img.diff_ids));
            assert_eq!(cfg["history"][1]["empty_layer"], true);
            assert_eq!(cfg["history"].as_array().unwrap().len(), 4);

            let man: Value = serde_json::from_slice(&img.manifest.bytes).unwrap();
            assert_eq!(man["schemaVersion"], 2);
            assert_eq!(man["mediaType"], m.manifest());
            assert_eq!(img.manifest.media_type, m.manifest());
            assert_eq!(man["config"]["mediaType"], m.config());
            assert_eq!(man["config"]["digest"], img.config.digest);
            assert_eq!(man["config"]["size"], img.config.bytes.len());
            let layers = man["layers"].as_array().unwrap();
            assert_eq!(layers.len(), 3);
            let want = [
                layer_media_type(m, Compression::Gzip),
                layer_media_type(m, Compression::Zstd),
                layer_media_type(m, Compression::None),
            ];
            for ((d, b), mt) in layers.iter().zip(&img.layers).zip(want) {
                assert_eq!(d["digest"], b.digest);
                assert_eq!(d["size"], b.bytes.len());
                assert_eq!(d["mediaType"], mt);
                assert_eq!(b.media_type, mt);
            }
            if m == MediaTypes::Docker {
                assert_eq!(
                    layers[0]["mediaType"],
                    "application/vnd.docker.image.rootfs.diff.tar.gzip"
                );
            }
            let tars = img.layer_tars().unwrap();
            for (t, d) in tars.iter().zip(&img.diff_ids) {
                assert_eq!(&sha256_digest(t), d);
            }
        }
    }

    #[test]
    fn default_history_and_custom_layer_type() {
        let img = ImageBuilder::new()
            .media_types(MediaTypes::Docker)
            .layer(LayerBuilder::new().file("a", "b").build(Compression::Gzip))
            .layer(
                LayerBuilder::new()
                    .file("c", "d")
                    .build(Compression::Gzip)
                    .with_media_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
            )
            .build();
        let cfg: Value = serde_json::from_slice(&img.config.bytes).unwrap();
        assert_eq!(cfg["history"][1]["created_by"], "fixture layer 1");
        assert!(cfg.get("variant").is_none());
        assert_eq!(cfg["architecture"], "amd64");
        assert_eq!(
            img.layers[1].media_type,
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        );
    }

    #[test]
    fn index_lists_platforms() {
        let a = ImageBuilder::new()
            .layer(
                LayerBuilder::new()
                    .file("a", "amd")
                    .build(Compression::Gzip),
            )
            .build();
        let b = ImageBuilder::new()
            .platform("linux", "arm", Some("v7"))
            .layer(
                LayerBuilder::new()
                    .file("a", "arm")
                    .build(Compression::Gzip),
            )
            .build();
        for m in [MediaTypes::Oci, MediaTypes::Docker] {
            let idx = index(vec![a.clone(), b.clone()], m);
            assert_eq!(idx.manifest.media_type, m.index());
            let v: Value = serde_json::from_slice(&idx.manifest.bytes).unwrap();
            assert_eq!(v["mediaType"], m.index());
            let ms = v["manifests"].as_array().unwrap();
            assert_eq!(ms[0]["digest"], a.manifest.digest);
            assert_eq!(
                ms[0]["platform"],
                json!({"architecture": "amd64", "os": "linux"})
            );
            assert_eq!(
                ms[1]["platform"],
                json!({"architecture": "arm", "os": "linux", "variant": "v7"})
            );
            assert_eq!(ms[1]["size"], b.manifest.bytes.len());
        }
    }

    /// Checks every blobs/sha256/<hex> file's digest, returns index.json.
    fn check_layout(dir: &Path) -> Value {
        let layout: Value =
            serde_json::from_slice(&fs::read(dir.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        for e in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            assert_eq!(sha256_hex(&fs::read(e.path()).unwrap()), name);
        }
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap()
    }

    fn blob_at(dir: &Path, digest: &str) -> Vec<u8> {
        fs::read(dir.join("blobs/sha256").join(digest_hex(digest))).unwrap()
    }

    #[test]
    fn oci_layout_and_archive() {
        let img = small_image(MediaTypes::Oci);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        img.write_oci_layout(&dir, "example.com/app:1.0").unwrap();
        let idx = check_layout(&dir);
        let d = &idx["manifests"][0];
        assert_eq!(d["digest"], img.manifest.digest);
        assert_eq!(d["mediaType"], media_type::OCI_MANIFEST);
        assert_eq!(d["annotations"][REF_NAME_ANNOTATION], "example.com/app:1.0");
        assert_eq!(blob_at(&dir, &img.manifest.digest), img.manifest.bytes);
        assert_eq!(blob_at(&dir, &img.config.digest), img.config.bytes);
        for l in &img.layers {
            assert_eq!(blob_at(&dir, &l.digest), l.bytes);
        }
        assert_eq!(fs::read_dir(dir.join("blobs/sha256")).unwrap().count(), 5);

        // The archive holds the same files.
        let ar_path = tmp.path().join("img.tar");
        img.write_oci_archive(&ar_path, "example.com/app:1.0")
            .unwrap();
        let extracted = tmp.path().join("extracted");
        tar::Archive::new(fs::File::open(&ar_path).unwrap())
            .unpack(&extracted)
            .unwrap();
        let idx2 = check_layout(&extracted);
        assert_eq!(idx, idx2);
        assert_eq!(
            fs::read_dir(extracted.join("blobs/sha256"))
                .unwrap()
                .count(),
            5
        );
    }

    #[test]
    fn index_layouts() {
        let a = small_image(MediaTypes::Oci);
        let b = ImageBuilder::new()
            .platform("linux", "s390x", None)
            .layer(LayerBuilder::new().file("z", "z").build(Compression::Gzip))
            .build();
        let idx = index(vec![a.clone(), b.clone()], MediaTypes::Oci);
        let tmp = tempfile::tempdir().unwrap();
        let nested = tmp.path().join("nested");
        idx.write_oci_layout(&nested, "multi").unwrap();
        let top = check_layout(&nested);
        assert_eq!(top["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(top["manifests"][0]["digest"], idx.manifest.digest);
        assert_eq!(top["manifests"][0]["mediaType"], media_type::OCI_INDEX);
        assert_eq!(blob_at(&nested, &idx.manifest.digest), idx.manifest.bytes);
        assert_eq!(blob_at(&nested, &b.manifest.digest), b.manifest.bytes);

        let flat = tmp.path().join("flat");
        idx.write_oci_layout_flat(&flat, "multi").unwrap();
        let top = check_layout(&flat);
        let ms = top["manifests"].as_array().unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[1]["platform"]["architecture"], "s390x");
        assert_eq!(ms[1]["annotations"][REF_NAME_ANNOTATION], "multi");
    }

    fn unpack(path: &Path, to: &Path) {
        tar::Archive::new(fs::File::open(path).unwrap())
            .unpack(to)
            .unwrap();
    }

    #[test]
    fn docker_archive_legacy() {
        let img = small_image(MediaTypes::Docker);
        let tmp = tempfile::tempdir().unwrap();
        let ar = tmp.path().join("save.tar");
        img.write_docker_archive(&ar, "registry:5000/team/app:v1", false)
            .unwrap();
        let out = tmp.path().join("x");
        unpack(&ar, &out);
        let m: Value =
            serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let m = &m[0];
        assert_eq!(m["RepoTags"], json!(["registry:5000/team/app:v1"]));
        let cfg_name = m["Config"].as_str().unwrap();
        assert_eq!(cfg_name, format!("{}.json", digest_hex(&img.config.digest)));
        assert_eq!(fs::read(out.join(cfg_name)).unwrap(), img.config.bytes);
        let layers = m["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3);
        for (l, diff) in layers.iter().zip(&img.diff_ids) {
            let p = l.as_str().unwrap();
            assert!(p.ends_with("/layer.tar"));
            let bytes = fs::read(out.join(p)).unwrap();
            assert_eq!(
                &sha256_digest(&bytes),
                diff,
                "layer.tar is the uncompressed tar"
            );
        }
        // The first layer's dir is its ChainID = DiffID.
        assert_eq!(
            layers[0],
            format!("{}/layer.tar", digest_hex(&img.diff_ids[0]))
        );
        let repos: Value =
            serde_json::from_slice(&fs::read(out.join("repositories")).unwrap()).unwrap();
        let top = layers[2].as_str().unwrap().trim_end_matches("/layer.tar");
        assert_eq!(repos["registry:5000/team/app"]["v1"], top);
    }

    #[test]
    fn docker_archive_new_format() {
        let img = small_image(MediaTypes::Docker);
        let tmp = tempfile::tempdir().unwrap();
        let ar = tmp.path().join("save.tar");
        img.write_docker_archive(&ar, "app:latest", true).unwrap();
        let out = tmp.path().join("x");
        unpack(&ar, &out);
        let idx = check_layout(&out);
        let m: Value =
            serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let m = &m[0];
        assert_eq!(
            m["Config"],
            format!("blobs/sha256/{}", digest_hex(&img.config.digest))
        );
        assert_eq!(m["RepoTags"], json!(["app:latest"]));
        let layers: Vec<String> = m["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let want: Vec<String> = img
            .diff_ids
            .iter()
            .map(|d| format!("blobs/sha256/{}", digest_hex(d)))
            .collect();
        assert_eq!(layers, want);
        // index.json -> OCI manifest -> same config and uncompressed layers
        let d = &idx["manifests"][0];
        assert_eq!(d["annotations"][REF_NAME_ANNOTATION], "latest");
        assert_eq!(d["annotations"]["io.containerd.image.name"], "app:latest");
        let man: Value =
            serde_json::from_slice(&blob_at(&out, d["digest"].as_str().unwrap())).unwrap();
        assert_eq!(man["config"]["digest"], img.config.digest);
        for (l, diff) in man["layers"].as_array().unwrap().iter().zip(&img.diff_ids) {
            assert_eq!(&l["digest"], diff);
            assert_eq!(l["mediaType"], media_type::OCI_LAYER);
        }
    }

    #[test]
    fn untagged_archive_has_null_repo_tags() {
        let img = small_image(MediaTypes::Oci);
        let tmp = tempfile::tempdir().unwrap();
        let ar = tmp.path().join("save.tar");
        img.write_docker_archive(&ar, "", false).unwrap();
        let out = tmp.path().join("x");
        unpack(&ar, &out);
        let m: Value =
            serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert!(m[0]["RepoTags"].is_null());
        assert!(!out.join("repositories").exists());
    }

    #[test]
    fn helpers() {
        assert_eq!(split_tag("a/b:c"), ("a/b", "c"));
        assert_eq!(split_tag("host:5000/a"), ("host:5000/a", "latest"));
        assert_eq!(split_tag("host:5000/a:t"), ("host:5000/a", "t"));
        assert_eq!(
            absolute_url("http://h:1", "/v2/x?a=b"),
            "http://h:1/v2/x?a=b"
        );
        assert_eq!(absolute_url("http://h:1/", "http://o/v2"), "http://o/v2");
        assert_eq!(absolute_url("http://h:1/p", "/v2/y"), "http://h:1/v2/y");
        let mut r = Vec::new();
        pax_record(&mut r, "path", b"abc");
        assert_eq!(r, b"12 path=abc\n");
        let mut r = Vec::new();
        pax_record(&mut r, "path", &[b'a'; 93]);
        assert_eq!(r.len(), 103);
        assert!(r.starts_with(b"103 path="));
    }
}
