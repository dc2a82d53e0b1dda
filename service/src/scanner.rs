//! Runs one queued scan: resolve the image, reuse every layer result the store holds for
//! the current rules, download and walk only the other layers, store what was walked,
//! and record the verdict.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use canary_analyzer::cache::BlobCache;
use canary_analyzer::detect::Detector;
use canary_analyzer::image::{Platform, ResolvedImage};
use canary_analyzer::policy::Policy;
use canary_analyzer::report::Report;
use canary_analyzer::scan::{NoProgress, ScanInput, ScanOptions, scan_images};
use canary_analyzer::source::registry::{Credentials, RegistryClient, RegistryOptions};
use canary_analyzer::walk::{LayerResult, StoredLayer, WalkLimits};

use crate::metrics::Metrics;
use crate::ratelimit::{Pick, RateGate};
use crate::store::{Job, JobOutcome, LayerRow, Store, Verdict, now_ms};

/// Compressed JSON, as layer results and reports are stored.
pub fn pack<T: serde::Serialize>(v: &T) -> anyhow::Result<Vec<u8>> {
    Ok(zstd::bulk::compress(&serde_json::to_vec(v)?, 3)?)
}

/// Largest stored document unpacked (a layer index of a huge layer stays well under).
const MAX_UNPACKED: usize = 512 << 20;

pub fn unpack<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> anyhow::Result<T> {
    let raw = zstd::bulk::decompress(bytes, MAX_UNPACKED)?;
    Ok(serde_json::from_slice(&raw)?)
}

/// Verdicts by manifest digest (and by any index digest that led to one), in memory in
/// front of the store: a verdict never changes for one (manifest, policy, rules), so
/// replicas may each keep their own.
#[derive(Default)]
pub struct VerdictCache {
    map: RwLock<HashMap<String, Arc<Verdict>>>,
}

const VERDICT_CACHE_MAX: usize = 200_000;

impl VerdictCache {
    pub fn get(&self, key: &str) -> Option<Arc<Verdict>> {
        self.map.read().ok()?.get(key).cloned()
    }
    pub fn put(&self, key: &str, v: Arc<Verdict>) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= VERDICT_CACHE_MAX {
                m.clear();
            }
            m.insert(key.to_string(), v);
        }
    }
}

/// Everything a scan needs, shared by the workers.
pub struct Scanner {
    pub store: Store,
    pub policy: Policy,
    pub policy_digest: String,
    pub rules_digest: String,
    pub detectors: Arc<Vec<Box<dyn Detector>>>,
    pub registry: RegistryOptions,
    pub cache: BlobCache,
    pub limits: WalkLimits,
    /// Threads per scan.
    pub threads: usize,
    pub metrics: Arc<Metrics>,
    pub verdicts: VerdictCache,
    /// Told whenever a verdict is stored (admission requests waiting for one listen).
    pub verdict_stored: tokio::sync::broadcast::Sender<String>,
    /// Layers being walked by a job of this process.
    pub inflight: InFlight,
    /// Runs each image in the sandbox (`crawl --runtime`); needs every layer's blob.
    pub runtime: Option<Arc<RuntimeFn>>,
    /// Delete an image's blobs from the cache once it is scanned (bounded disk in a crawl).
    pub delete_blobs: bool,
    /// Pull pacing and credential rotation per registry.
    pub rates: RateGate,
}

/// See [`Scanner::runtime`].
pub type RuntimeFn = dyn Fn(
        &ResolvedImage,
    ) -> (
        Vec<canary_analyzer::finding::Finding>,
        Vec<canary_analyzer::report::Issue>,
    ) + Send
    + Sync;

/// What a [`Scanner`] is made of.
pub struct ScannerParts {
    pub store: Store,
    pub policy: Policy,
    pub rules_digest: String,
    pub detectors: Vec<Box<dyn Detector>>,
    pub registry: RegistryOptions,
    pub cache: BlobCache,
    /// Scans at once: each gets cores ÷ this many threads.
    pub workers: usize,
}

impl Scanner {
    pub fn new(p: ScannerParts) -> Scanner {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (verdict_stored, _) = tokio::sync::broadcast::channel(1024);
        Scanner {
            store: p.store,
            policy_digest: p.policy.digest(),
            policy: p.policy,
            rules_digest: p.rules_digest,
            detectors: Arc::new(p.detectors),
            registry: p.registry,
            cache: p.cache,
            limits: WalkLimits::default(),
            threads: (cores / p.workers.max(1)).max(1),
            metrics: Arc::new(Metrics::new()),
            verdicts: VerdictCache::default(),
            verdict_stored,
            inflight: InFlight::default(),
            runtime: None,
            delete_blobs: false,
            rates: RateGate::default(),
        }
    }
}

/// Layer digests some job of this process is walking now.
#[derive(Default)]
pub struct InFlight {
    set: Mutex<HashSet<String>>,
    done: tokio::sync::Notify,
}

/// Layers claimed by one job; released when dropped.
pub struct Claim<'a> {
    owner: &'a InFlight,
    digests: Vec<String>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.owner.set.lock() {
            for d in &self.digests {
                s.remove(d);
            }
        }
        self.owner.done.notify_waiters();
    }
}

impl InFlight {
    /// Wait until none of the layers this job still needs is being walked elsewhere in
    /// the process, then claim them all.
    pub async fn claim_missing(
        &self,
        store: &Store,
        digests: &[String],
        rules_digest: &str,
    ) -> anyhow::Result<Claim<'_>> {
        loop {
            let notified = self.done.notified();
            let have = store.layer_results(digests, rules_digest).await?;
            let missing: Vec<String> = digests
                .iter()
                .filter(|d| !have.contains_key(*d))
                .cloned()
                .collect();
            {
                let mut set = self
                    .set
                    .lock()
                    .map_err(|_| anyhow::anyhow!("in-flight lock"))?;
                if !missing.iter().any(|d| set.contains(d)) {
                    for d in &missing {
                        set.insert(d.clone());
                    }
                    return Ok(Claim {
                        owner: self,
                        digests: missing,
                    });
                }
            }
            // Woken when another job releases its layers (or re-check after a while).
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), notified).await;
        }
    }
}

/// Why a registry error is worth a retry: the registry or the network, not the image.
pub fn transient(e: &canary_analyzer::Error) -> bool {
    use canary_analyzer::Error as E;
    match e {
        E::Transport { .. } => true,
        E::Registry { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// Whether the scan behind a verdict read every layer.
fn complete(v: &Verdict) -> bool {
    v.summary.get("complete") != Some(&serde_json::Value::Bool(false))
}

/// The answer for a digest, when there is one under the current rules.
pub enum Lookup {
    Hit(Arc<Verdict>),
    /// A verdict made under other rules (or none): a scan is needed.
    Stale(Arc<Verdict>),
    Miss,
}

impl Scanner {
    /// The verdict on `digest` (a platform manifest, or an index resolved for `platform`).
    pub async fn lookup(&self, digest: &str, platform: &str) -> anyhow::Result<Lookup> {
        let key = format!("{digest}|{platform}");
        if let Some(v) = self.verdicts.get(&key)
            && v.rules_digest == self.rules_digest
            && complete(&v)
        {
            self.metrics.verdict_lookup("hit");
            return Ok(Lookup::Hit(v));
        }
        let Some(manifest) = self.store.platform_manifest(digest, platform).await? else {
            self.metrics.verdict_lookup("miss");
            return Ok(Lookup::Miss);
        };
        match self.store.verdict(&manifest, &self.policy_digest).await? {
            // A verdict from a scan that could not read every layer stands only until the
            // image is scanned again: it is never taken as the final word.
            Some(v) if v.rules_digest == self.rules_digest && !complete(&v) => {
                self.metrics.verdict_lookup("stale");
                Ok(Lookup::Stale(Arc::new(v)))
            }
            Some(v) if v.rules_digest == self.rules_digest => {
                let v = Arc::new(v);
                self.verdicts.put(&key, v.clone());
                self.metrics.verdict_lookup("hit");
                Ok(Lookup::Hit(v))
            }
            Some(v) => {
                self.metrics.verdict_lookup("stale");
                Ok(Lookup::Stale(Arc::new(v)))
            }
            None => {
                self.metrics.verdict_lookup("miss");
                Ok(Lookup::Miss)
            }
        }
    }

    /// A registry client for a job: its own credentials (Harbor's robot account), or
    /// the rotated credential the rate gate picked, or the Docker config's.
    fn client(&self, auth: Option<&str>, pick: Option<&Pick>) -> anyhow::Result<RegistryClient> {
        let mut opts = self.registry.clone();
        if let Some(a) = auth {
            let (u, p) = a.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("stored registry credentials are not user:password")
            })?;
            opts.credentials = Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            });
        } else if let Some(c) = pick.and_then(|p| p.credentials.clone()) {
            opts.credentials = Some(c);
        }
        Ok(RegistryClient::new(opts, self.cache.clone())?)
    }

    /// Run one job to its outcome.
    pub async fn run(&self, job: &Job) -> JobOutcome {
        let started = std::time::Instant::now();
        let out = self.run_inner(job).await;
        self.metrics.scan_done(&out, started.elapsed());
        out
    }

    async fn run_inner(&self, job: &Job) -> JobOutcome {
        let reference: oci_client::Reference = match job.image.parse() {
            Ok(r) => r,
            Err(e) => {
                return JobOutcome::Failed {
                    error: format!("invalid image reference {:?}: {e}", job.image),
                };
            }
        };
        let platform: Platform = match job.platform.parse() {
            Ok(p) => p,
            Err(e) => return JobOutcome::Failed { error: e },
        };
        // Pulls are paced per registry (and credential) from what the registry says.
        let host = reference.registry().to_string();
        let own = job.auth.is_some();
        let head_pick = self.rates.any(&host);
        let client = match self.client(job.auth.as_deref(), Some(&head_pick)) {
            Ok(c) => c,
            Err(e) => {
                return JobOutcome::Failed {
                    error: e.to_string(),
                };
            }
        };
        // A tag is HEADed first (no pull counted on Docker Hub): a digest already judged
        // under these rules needs no manifest GET and no layer.
        if reference.digest().is_none() {
            let head = client.head(&reference).await;
            if !own {
                self.rates.record(
                    &host,
                    head_pick.slot,
                    client.stats().rate_limit.as_ref(),
                    false,
                    false,
                );
            }
            match head {
                Ok(h) => {
                    if let Err(e) = self.store.record_image(&reference.whole(), &h.digest).await {
                        return retry(job, format!("store: {e:#}"));
                    }
                    if let Ok(Lookup::Hit(v)) = self.lookup(&h.digest, &job.platform).await {
                        return JobOutcome::Done {
                            manifest_digest: Some(v.manifest_digest.clone()),
                            result: serde_json::json!({
                                "manifest_digests": [v.manifest_digest],
                                "passed": v.allowed,
                                "complete": true,
                                "known_digest": h.digest,
                                "layers_walked": 0,
                                "layers_reused": 0,
                                "blobs_downloaded": 0,
                            }),
                        };
                    }
                }
                Err(e) if transient(&e) => return retry(job, e.to_string()),
                // Unknown tag, auth…: the GET below says so in full.
                Err(_) => {}
            }
        }
        // A manifest GET is a pull: under a credential with pulls left, waiting if none has.
        let (client, slot) = if own {
            (client, None)
        } else {
            let (pick, waited) = self.rates.acquire(&host).await;
            if waited > std::time::Duration::from_secs(1) {
                eprintln!(
                    "canary: waited {:.0}s for {host}'s pull limit before {}",
                    waited.as_secs_f64(),
                    job.image
                );
            }
            let c = if pick.slot == head_pick.slot {
                client
            } else {
                match self.client(None, Some(&pick)) {
                    Ok(c) => c,
                    Err(e) => {
                        return JobOutcome::Failed {
                            error: e.to_string(),
                        };
                    }
                }
            };
            (c, Some(pick.slot))
        };
        let resolved = client.resolve(&reference, &platform, false).await;
        if let Some(slot) = slot {
            let too_many = matches!(
                &resolved,
                Err(canary_analyzer::Error::Registry { status: 429, .. })
            );
            self.rates.record(
                &host,
                slot,
                client.stats().rate_limit.as_ref(),
                too_many,
                true,
            );
        }
        let mut images = match resolved {
            Ok(i) => i,
            Err(e) if transient(&e) => return retry(job, e.to_string()),
            Err(e) => {
                return JobOutcome::Failed {
                    error: e.to_string(),
                };
            }
        };
        match self
            .scan_resolved(job, &reference, &client, &mut images)
            .await
        {
            Ok(o) => o,
            Err(e) => retry(job, format!("store: {e:#}")),
        }
    }

    async fn scan_resolved(
        &self,
        job: &Job,
        reference: &oci_client::Reference,
        client: &RegistryClient,
        images: &mut Vec<ResolvedImage>,
    ) -> anyhow::Result<JobOutcome> {
        let digests: Vec<String> = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.digest.clone()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // Layers another job of this process is walking right now are waited for, not
        // walked twice; ours are claimed all at once (no two jobs wait on each other).
        let _claim = self
            .inflight
            .claim_missing(&self.store, &digests, &self.rules_digest)
            .await?;
        let mut known: HashMap<String, LayerResult> = HashMap::new();
        for (d, bytes) in self
            .store
            .layer_results(&digests, &self.rules_digest)
            .await?
        {
            match unpack::<StoredLayer>(&bytes) {
                Ok(s) => {
                    known.insert(d, LayerResult::from_stored(s));
                }
                // Unreadable (e.g. written by another version): walk the layer again.
                Err(e) => eprintln!(
                    "canary serve: stored result of layer {d} unreadable ({e}); walking it again"
                ),
            }
        }
        // A run in the sandbox needs the whole rootfs: every blob, walked or not.
        let skip: HashSet<String> = if self.runtime.is_some() {
            HashSet::new()
        } else {
            known.keys().cloned().collect()
        };
        client.fetch_layers(reference, images, &skip).await;
        let fetch = client.stats();
        let walked: Arc<Mutex<Vec<(String, StoredLayer)>>> = Arc::default();
        let report = {
            let images = std::mem::take(images);
            let detectors = self.detectors.clone();
            let policy = self.policy.clone();
            let options = ScanOptions {
                limits: self.limits.clone(),
                threads: self.threads,
                rules_digest: Some(self.rules_digest.clone()),
            };
            let walked = walked.clone();
            let target = job.image.clone();
            let runtime = self.runtime.clone();
            tokio::task::spawn_blocking(move || {
                let sink = |digest: &str, r: &LayerResult| {
                    if let Some(s) = r.to_stored() {
                        walked
                            .lock()
                            .expect("no panic while holding the lock")
                            .push((digest.to_string(), s));
                    }
                };
                let report = scan_images(
                    &images,
                    ScanInput {
                        target: &target,
                        detectors: &detectors,
                        policy: &policy,
                        options: &options,
                        progress: &NoProgress,
                        fetch,
                        issues: vec![],
                        started: std::time::Instant::now(),
                        runtime: runtime
                            .as_deref()
                            .map(|r| r as &canary_analyzer::scan::RuntimeHook<'_>),
                        known_layers: known,
                        on_layer_walked: Some(&sink),
                    },
                );
                (report, images)
            })
            .await
            .map_err(|e| anyhow::anyhow!("scan task: {e}"))?
        };
        let (report, back) = report;
        *images = back;
        if self.delete_blobs {
            for img in images.iter() {
                for d in img
                    .layers
                    .iter()
                    .map(|l| &l.digest)
                    .chain(img.config_digest.as_ref())
                {
                    let _ = std::fs::remove_file(self.cache.path_of(d));
                }
            }
        }
        let walked = std::mem::take(&mut *walked.lock().expect("scan is done"));
        self.metrics
            .layers(walked.len() as u64, report.fetch.layers_reused as u64);
        for (digest, stored) in &walked {
            self.store
                .put_layer_result(
                    digest,
                    &self.rules_digest,
                    pack(stored)?,
                    stored.findings.len(),
                )
                .await?;
        }
        // A layer that could not be read (download failed, registry went away) is worth
        // another attempt; a complete scan, or the last attempt, makes a verdict.
        if !report.coverage.complete && job.attempts < job.max_attempts {
            let why: Vec<String> = report
                .coverage
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect();
            return Ok(retry(job, format!("scan incomplete: {}", why.join("; "))));
        }
        let mut digests = Vec::new();
        for img in images.iter() {
            let Some(manifest) = img.manifest_digest.clone() else {
                continue;
            };
            let layers: Vec<LayerRow> = img
                .layers
                .iter()
                .map(|l| LayerRow {
                    digest: l.digest.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                })
                .collect();
            self.store
                .record_manifest(
                    &manifest,
                    img.platform.as_deref(),
                    img.config_digest.as_deref(),
                    &layers,
                    img.index_digest
                        .as_deref()
                        .map(|i| (i, job.platform.as_str())),
                )
                .await?;
            let top = img.index_digest.clone().unwrap_or_else(|| manifest.clone());
            if reference.digest().is_none() {
                self.store.record_image(&reference.whole(), &top).await?;
            }
            let one = single_image_report(&report, &img.name);
            let verdict = verdict_of(&one, &manifest, &self.policy_digest);
            self.store.put_verdict(&verdict, pack(&one)?).await?;
            let verdict = Arc::new(verdict);
            if complete(&verdict) {
                for d in [&manifest, &top] {
                    self.verdicts
                        .put(&format!("{d}|{}", job.platform), verdict.clone());
                }
            }
            let _ = self.verdict_stored.send(manifest.clone());
            let _ = self.verdict_stored.send(top.clone());
            digests.push(manifest);
        }
        let summary = serde_json::json!({
            "manifest_digests": digests,
            "passed": report.policy.passed,
            "complete": report.coverage.complete,
            "summary": report.summary,
            "layers_walked": walked.len(),
            "layers_reused": report.fetch.layers_reused,
            "blobs_downloaded": report.fetch.blobs_downloaded,
            "bytes_downloaded": report.fetch.bytes_downloaded,
            "duration_ms": report.duration_ms,
        });
        Ok(JobOutcome::Done {
            manifest_digest: digests.first().cloned(),
            result: summary,
        })
    }
}

fn retry(job: &Job, error: String) -> JobOutcome {
    // 2 s, 8 s, 32 s, … capped at 5 minutes.
    let backoff =
        2_000i64.saturating_mul(4i64.saturating_pow(job.attempts.saturating_sub(1) as u32));
    JobOutcome::Retry {
        error,
        retry_in_ms: backoff.min(300_000),
    }
}

/// The report of one platform image out of a scan's report.
fn single_image_report(report: &Report, name: &str) -> Report {
    let mut one = report.clone();
    one.images.retain(|i| i.name == name);
    one
}

/// Allowed when the policy passed and every layer was read: an image that could not be
/// scanned whole is not let through.
fn verdict_of(report: &Report, manifest: &str, policy_digest: &str) -> Verdict {
    let img = report.images.first();
    let failing: Vec<serde_json::Value> = img
        .map(|i| {
            i.findings
                .iter()
                .filter(|f| f.severity >= report.policy.fail_on)
                .take(20)
                .map(|f| {
                    serde_json::json!({
                        "rule_id": f.rule_id,
                        "severity": f.severity,
                        "location": f.location.display(),
                        "evidence": f.evidence,
                        "fingerprint": f.fingerprint,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut counts = canary_analyzer::report::Summary::default();
    if let Some(i) = img {
        for f in &i.findings {
            counts.count(f.severity);
        }
        counts.suppressed = i.suppressed.len();
    }
    let allowed = report.policy.passed && report.coverage.complete;
    Verdict {
        manifest_digest: manifest.to_string(),
        policy_digest: policy_digest.to_string(),
        rules_digest: report.rules_digest.clone(),
        allowed,
        image: img.map(|i| i.name.clone()).unwrap_or_default(),
        summary: serde_json::json!({
            "findings": counts,
            "failing": failing,
            "fail_on": report.policy.fail_on,
            "complete": report.coverage.complete,
            "errors": report.coverage.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        }),
        created_at: now_ms(),
    }
}
