//! Helm charts from Git history, packaged charts and repositories: rendering, checks, and
//! the image references handed to the analyzer.
//!
//! Built so far: [`template`], the Go template engine with Helm's and Sprig's functions,
//! and [`chart`], charts from a directory rendered as `helm template` renders them.
#![forbid(unsafe_code)]

pub mod chart;
pub mod checks;
pub mod deps;
pub mod fetch;
pub mod history;
pub mod k8s;
pub mod scan;
pub mod template;
