//! Detectors: they see entry metadata, file bytes and the image config, never tar, HTTP
//! or each other. [`default_detectors`] is the one place the list is built.

pub mod config;
pub mod content;
pub mod files;
pub mod secrets;
pub mod wallet;

use crate::finding::Finding;
use crate::image::ImageConfig;

/// Kind of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    HardLink,
    Other,
}

/// One tar entry as a detector sees it.
#[derive(Debug, Clone, Copy)]
pub struct EntryMeta<'a> {
    pub layer_index: usize,
    pub layer_digest: &'a str,
    /// Normalized absolute path, e.g. `/etc/passwd`.
    pub path: &'a str,
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    pub link_target: Option<&'a str>,
    /// Archives the entry sits in, outermost first (`["/app/app.jar", "lib/x.zip"]`);
    /// empty for a file of the layer itself. `path` is then the member's path in the
    /// innermost archive.
    pub archive_chain: &'a [String],
}

impl EntryMeta<'_> {
    /// The path a finding's fingerprint names: `path`, or for an archive member the whole
    /// chain (`/app/app.jar!/lib/x.jar!/key.pem`), so members of different archives differ.
    pub fn fingerprint_path(&self) -> String {
        if self.archive_chain.is_empty() {
            self.path.to_string()
        } else {
            crate::nested::location(self.archive_chain, self.path)
        }
    }
}

/// What a config detector is told about the image.
#[derive(Debug, Clone, Copy)]
pub struct ImageContext<'a> {
    pub name: &'a str,
    pub config: &'a ImageConfig,
}

/// A static detector. Implementations are immutable and shared by all layer workers.
pub trait Detector: Send + Sync {
    /// Short stable name, e.g. `image-config`.
    fn name(&self) -> &'static str;
    /// Whether this detector needs the bytes of this file.
    fn wants_content(&self, _entry: &EntryMeta<'_>) -> bool {
        false
    }
    /// Called for every entry of every layer; `content` is `Some` for regular files when any
    /// detector asked for it. Trouble scanning (a timeout, say) goes to `problems`, which
    /// the walk reports against this entry.
    fn scan_entry(
        &self,
        _entry: &EntryMeta<'_>,
        _content: Option<&[u8]>,
        _out: &mut Vec<Finding>,
        _problems: &mut Vec<String>,
    ) {
    }
    /// Called once per image.
    fn scan_config(&self, _image: &ImageContext<'_>, _out: &mut Vec<Finding>) {}
}

/// The detectors `canary scan` runs, in order.
pub fn default_detectors() -> Vec<Box<dyn Detector>> {
    detectors_with(content::ContentEngine::builtin())
}

/// The detectors, with a given content engine (built-in rules plus a user's).
pub fn detectors_with(engine: &'static content::ContentEngine) -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(config::ConfigDetector::new()),
        Box::new(files::CredentialFileDetector),
        Box::new(content::ContentDetector::new(engine)),
    ]
}
