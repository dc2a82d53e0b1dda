//! The analyzer's one error type. Every variant names what failed: the image, the layer
//! digest, the path, the registry URL, and keeps the underlying cause.

use std::path::PathBuf;

/// Result alias for the analyzer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while resolving, fetching or walking an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image reference {input:?}: {reason}")]
    Reference { input: String, reason: String },

    #[error("{source_name}: {message}")]
    BadInput {
        source_name: String,
        message: String,
    },

    #[error("{url}: registry answered HTTP {status}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Registry {
        url: String,
        status: u16,
        detail: Option<String>,
    },

    #[error("{url}: {message}")]
    Transport { url: String, message: String },

    #[error("authentication to {registry} failed: {message}")]
    Auth { registry: String, message: String },

    #[error("blob {digest} from {origin}: digest mismatch (got {actual}); the blob was discarded")]
    DigestMismatch {
        origin: String,
        digest: String,
        actual: String,
    },

    #[error("{what} from {origin} is larger than the limit of {limit} bytes")]
    TooLarge {
        origin: String,
        what: String,
        limit: u64,
    },

    #[error("layer {digest} of {image}: {message}")]
    Layer {
        image: String,
        digest: String,
        message: String,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("ignore file {path}: {message}")]
    IgnoreFile { path: PathBuf, message: String },

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}
