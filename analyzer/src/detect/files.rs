//! Credential files found by where they are and what they are called (the content-based
//! secret engine is a separate detector). Deleted files count: they are still in the image.

use super::{Detector, EntryKind, EntryMeta};
use crate::finding::{Category, Confidence, Finding, Location, Severity, Visibility};

/// Path suffixes of files that hold credentials, and what they are.
const CREDENTIAL_FILES: &[(&str, &str)] = &[
    ("/.aws/credentials", "AWS CLI credentials"),
    ("/.git-credentials", "Git credential store"),
    ("/.netrc", "netrc credentials"),
    ("/.pgpass", "PostgreSQL password file"),
    ("/.npmrc", "npm configuration (may hold _authToken)"),
    ("/.pypirc", "PyPI upload credentials"),
    ("/.docker/config.json", "Docker registry credentials"),
    ("/.kube/config", "kubeconfig"),
    ("/.ssh/id_rsa", "SSH private key"),
    ("/.ssh/id_ecdsa", "SSH private key"),
    ("/.ssh/id_ed25519", "SSH private key"),
    ("/.ssh/id_dsa", "SSH private key"),
    (
        "/.config/gcloud/application_default_credentials.json",
        "Google Cloud credentials",
    ),
    ("/.azure/accessTokens.json", "Azure CLI tokens"),
    ("/.vault-token", "HashiCorp Vault token"),
];

/// Flags credential files by path.
#[derive(Default)]
pub struct CredentialFileDetector;

fn kind_of(path: &str) -> Option<&'static str> {
    CREDENTIAL_FILES
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix))
        .map(|(_, what)| *what)
}

impl Detector for CredentialFileDetector {
    fn name(&self) -> &'static str {
        "credential-files"
    }

    fn wants_content(&self, e: &EntryMeta<'_>) -> bool {
        e.kind == EntryKind::File && e.size > 0 && kind_of(e.path).is_some()
    }

    fn scan_entry(
        &self,
        e: &EntryMeta<'_>,
        content: Option<&[u8]>,
        out: &mut Vec<Finding>,
        _problems: &mut Vec<String>,
    ) {
        let (Some(what), Some(content)) = (kind_of(e.path), content) else {
            return;
        };
        if content.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let id = "file/credential-file";
        out.push(Finding {
            rule_id: id.into(),
            category: Category::Secret,
            severity: Severity::High,
            confidence: Confidence::Medium,
            title: format!("{what} in the image"),
            fingerprint: Finding::fingerprint_of(id, &e.fingerprint_path(), content),
            location: Location::ImageFile {
                layer_index: e.layer_index,
                layer_digest: e.layer_digest.to_string(),
                path: e.path.to_string(),
                line: None,
                archive_chain: e.archive_chain.to_vec(),
                visibility: Visibility::Visible,
            },
            evidence: format!("{} bytes, mode {:o}", e.size, e.mode & 0o7777),
        });
    }
}
