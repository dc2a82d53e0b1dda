//! Helm charts from Git history, packaged charts and repositories: rendering, checks, and
//! the image references handed to the analyzer.
//!
//! Not built yet: the Helm-scanner issue fills this crate.
#![forbid(unsafe_code)]
