//! Workers: take jobs from the store's queue, keep their lease alive while scanning, and
//! record how each ended. A worker that dies leaves its lease to expire; the job is then
//! taken again (SQLite: at the next start-up at once, since only one process can hold
//! the file).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::scanner::Scanner;
use crate::store::JobOutcome;

/// Queue settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Scans at once in this process.
    pub workers: usize,
    /// How long a job stays ours without a heartbeat.
    pub lease: Duration,
    /// How often an idle worker looks for work when nothing wakes it.
    pub poll: Duration,
}

/// Start `workers` loops; `wake` is notified when a job is queued here.
pub fn spawn(
    scanner: Arc<Scanner>,
    cfg: QueueConfig,
    wake: Arc<Notify>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    (0..cfg.workers.max(1))
        .map(|n| {
            let worker = format!("{host}/{}/{n}/{}", std::process::id(), uuid::Uuid::new_v4());
            let scanner = scanner.clone();
            let cfg = cfg.clone();
            let wake = wake.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    if *shutdown.borrow() {
                        return;
                    }
                    match work_one(&scanner, &worker, &cfg).await {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => eprintln!("canary serve: queue: {e:#}"),
                    }
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(cfg.poll) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            })
        })
        .collect()
}

/// Claim and run one job; false when there was none.
pub async fn work_one(scanner: &Scanner, worker: &str, cfg: &QueueConfig) -> anyhow::Result<bool> {
    let lease_ms = cfg.lease.as_millis() as i64;
    scanner.store.fail_exhausted().await?;
    let Some(job) = scanner.store.claim(worker, lease_ms).await? else {
        return Ok(false);
    };
    if job.attempts > job.max_attempts {
        scanner
            .store
            .finish(
                &job.id,
                worker,
                JobOutcome::Failed {
                    error: format!(
                        "gave up after {} attempts: {}",
                        job.max_attempts,
                        job.error
                            .as_deref()
                            .unwrap_or("the worker stopped mid-scan")
                    ),
                },
            )
            .await?;
        return Ok(true);
    }
    // Keep the lease while the scan runs.
    let beat = {
        let store = scanner.store.clone();
        let (id, w) = (job.id.clone(), worker.to_string());
        let every = cfg.lease / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match store.heartbeat(&id, &w, lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => eprintln!("canary serve: heartbeat of job {id}: {e:#}"),
                }
            }
        })
    };
    let outcome = scanner.run(&job).await;
    beat.abort();
    if let JobOutcome::Failed { error } | JobOutcome::Retry { error, .. } = &outcome {
        eprintln!("canary serve: job {} ({}): {error}", job.id, job.image);
    }
    if !scanner.store.finish(&job.id, worker, outcome).await? {
        eprintln!(
            "canary serve: job {} was taken over by another worker before it ended here",
            job.id
        );
    }
    Ok(true)
}
