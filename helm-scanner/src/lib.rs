//! Helm charts in, findings and image references out.
//!
//! Charts come from directories and `.tgz` files ([`chart`]), Helm repositories and OCI
//! registries ([`fetch`], which also fetches missing dependencies), and Git history
//! ([`history`], every blob of every commit). [`template`] is a Go `text/template`
//! engine with Helm's and Sprig's functions; [`chart::render`] renders a chart as `helm
//! template` does, [`deps`] processes dependencies as Helm does, and [`scan`] runs the
//! analyzer's content engine over chart files and rendered manifests, the Kubernetes
//! checks ([`checks`], rules in `rules/`) and collects the images workloads deploy. It
//! does not pull or scan those images (the binary hands them to the analyzer) and never
//! runs Helm unless told to.
#![forbid(unsafe_code)]

pub mod chart;
pub mod checks;
pub mod deps;
pub mod fetch;
pub mod history;
pub mod k8s;
pub mod scan;
pub mod template;
