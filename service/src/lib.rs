//! `canary serve`: the admission gate service.
//!
//! One process (or several replicas on one PostgreSQL) that answers *allow or deny this
//! image digest* from stored verdicts, and scans on a miss, on a registry push or on
//! request. Interfaces: the scan API (`/v1/…`), Harbor's Pluggable Scanner Adapter API
//! (`/api/v1/…`), a Kubernetes validating admission webhook (`/admission/validate`),
//! Distribution registry notifications (`/registry/events`), health and Prometheus
//! metrics. Scans run from a durable job queue in the store, so a killed process loses
//! no job: another worker (or the restarted one) takes it up again.

pub mod admission;
pub mod crawl;
pub mod events;
pub mod harbor;
pub mod metrics;
pub mod ratelimit;
pub mod report;
pub mod scanner;
pub mod server;
pub mod store;
pub mod worker;
