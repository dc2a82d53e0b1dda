//! The store: one schema, with numbered migrations, on SQLite (embedded, WAL, one server
//! process, enforced by a lock file) or PostgreSQL (shared by several replicas).
//!
//! What it keeps: tag → digest resolutions (`images`), platform manifests and their
//! layers (`manifests`, `manifest_aliases`, `layers`), each layer's walk result keyed by
//! (layer digest, rules digest) so a layer is walked once per rule set, verdicts keyed by
//! (manifest digest, policy digest) carrying the rules digest they were made under, and
//! the durable job queue (`jobs`). Findings arrive here already redacted; registry
//! credentials of a queued job are kept only until the job ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

/// Numbered migrations; `{blob}` is the backend's binary type. Never edit a released
/// one: add the next.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE images (
    reference TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE manifests (
    digest TEXT PRIMARY KEY,
    platform TEXT,
    config_digest TEXT,
    layers TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE manifest_aliases (
    digest TEXT NOT NULL,
    platform TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    PRIMARY KEY (digest, platform)
);
CREATE TABLE layers (
    digest TEXT PRIMARY KEY,
    size BIGINT,
    media_type TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE layer_results (
    layer_digest TEXT NOT NULL,
    rules_digest TEXT NOT NULL,
    result {blob} NOT NULL,
    findings BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (layer_digest, rules_digest)
);
CREATE TABLE verdicts (
    manifest_digest TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    rules_digest TEXT NOT NULL,
    allowed BIGINT NOT NULL,
    image TEXT NOT NULL,
    summary TEXT NOT NULL,
    report {blob} NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (manifest_digest, policy_digest)
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    platform TEXT NOT NULL,
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    worker TEXT,
    auth TEXT,
    error TEXT,
    manifest_digest TEXT,
    result TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_active ON jobs (dedup_key) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_claim ON jobs (state, not_before, created_at);
"#,
    // 2: how many times each layer result was produced: above 1 means work was done twice
    // (two processes meeting a new layer at once), which the crawl's figures report.
    r#"
ALTER TABLE layer_results ADD COLUMN walks BIGINT NOT NULL DEFAULT 1;
"#,
];

const JOB_COLS: &str = "id, image, platform, source, dedup_key, state, attempts, max_attempts, \
     error, manifest_digest, result, created_at, updated_at, auth, worker";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A scan to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Image reference as the scanner will pull it.
    pub image: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Who asked: `api`, `harbor`, `registry-event`, `admission`.
    pub source: String,
    /// At most one queued or running job per key: the same request twice is one job.
    pub dedup_key: String,
    /// Registry credentials (`user:password`) for the pull, dropped when the job ends.
    pub auth: Option<String>,
    pub max_attempts: i64,
}

/// A job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    pub image: String,
    pub platform: String,
    pub source: String,
    #[serde(skip)]
    pub dedup_key: String,
    /// `queued`, `running`, `done`, `failed`.
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub auth: Option<String>,
    #[serde(skip)]
    pub worker: Option<String>,
}

/// An allow/deny answer for one platform manifest under one policy.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub manifest_digest: String,
    pub policy_digest: String,
    pub rules_digest: String,
    pub allowed: bool,
    pub image: String,
    pub summary: serde_json::Value,
    pub created_at: i64,
}

/// A layer of a manifest, as recorded.
#[derive(Debug, Clone)]
pub struct LayerRow {
    pub digest: String,
    pub size: Option<u64>,
    pub media_type: Option<String>,
}

enum Backend {
    Sqlite {
        conn: Arc<Mutex<rusqlite::Connection>>,
        /// Held for the life of the store: one process per SQLite file (none when opened
        /// only to read, as `canary report` does while a crawl runs).
        _lock: Option<std::fs::File>,
    },
    Postgres(deadpool_postgres::Pool),
}

/// The store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    /// The URL without its password, for messages.
    shown: Arc<str>,
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn shown_url(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((base, q)) if q.to_ascii_lowercase().contains("password") => {
            format!("{base}?***")
        }
        _ => url.to_string(),
    };
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url
}

/// `$1` → `?1`: SQLite's numbered parameters, from the PostgreSQL text.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Store {
    /// Open (creating and migrating) `sqlite://PATH` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store> {
        let shown: Arc<str> = shown_url(url).into();
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = PathBuf::from(path);
            tokio::task::spawn_blocking(move || open_sqlite(&path))
                .await
                .map_err(|e| anyhow!("opening the store: {e}"))?
                .with_context(|| format!("store {shown}"))?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            open_postgres(url)
                .await
                .with_context(|| format!("store {shown}"))?
        } else {
            bail!("store URL {shown:?}: expected sqlite://PATH or postgres://…");
        };
        Ok(Store {
            backend: Arc::new(backend),
            shown,
        })
    }

    /// Open a store only to read it: SQLite read-only and without taking the file's
    /// lock, so a report can run beside the crawl or service that holds it.
    pub async fn open_for_reading(url: &str) -> Result<Store> {
        let Some(path) = url.strip_prefix("sqlite://") else {
            return Store::open(url).await;
        };
        let shown: Arc<str> = shown_url(url).into();
        let path = PathBuf::from(path);
        let backend = tokio::task::spawn_blocking(move || -> Result<Backend> {
            let c = rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("opening {} to read", path.display()))?;
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            let have: i64 = c
                .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
                .with_context(|| format!("{} is not a canary store", path.display()))?;
            if have != MIGRATIONS.len() as i64 {
                bail!(
                    "{}: schema version {have}, this canary reads {}; open it with canary serve or crawl first",
                    path.display(),
                    MIGRATIONS.len()
                );
            }
            Ok(Backend::Sqlite {
                conn: Arc::new(Mutex::new(c)),
                _lock: None,
            })
        })
        .await
        .map_err(|e| anyhow!("opening the store: {e}"))?
        .with_context(|| format!("store {shown}"))?;
        Ok(Store {
            backend: Arc::new(backend),
            shown,
        })
    }

    /// Which database, password hidden.
    pub fn describe(&self) -> &str {
        &self.shown
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(*self.backend, Backend::Sqlite { .. })
    }

    /// Run `f` on the SQLite connection on a blocking thread.
    async fn sqlite<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let Backend::Sqlite { conn, .. } = &*self.backend else {
            unreachable!("called only on the SQLite backend")
        };
        let conn = conn.clone();
        let shown = self.shown.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().map_err(|_| anyhow!("store lock poisoned"))?;
            f(&mut c).with_context(|| format!("store {shown}"))
        })
        .await
        .map_err(|e| anyhow!("store task: {e}"))?
    }

    async fn pg(&self) -> Result<deadpool_postgres::Object> {
        let Backend::Postgres(pool) = &*self.backend else {
            unreachable!("called only on the PostgreSQL backend")
        };
        pool.get()
            .await
            .with_context(|| format!("store {}: no connection", self.shown))
    }

    /// The database answers.
    pub async fn ping(&self) -> Result<()> {
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(|c| c.query_row("SELECT 1", [], |_| Ok(())))
                    .await
            }
            Backend::Postgres(_) => {
                self.pg().await?.simple_query("SELECT 1").await?;
                Ok(())
            }
        }
    }

    /// Remember what a reference (tag) resolved to.
    pub async fn record_image(&self, reference: &str, digest: &str) -> Result<()> {
        let sql = "INSERT INTO images (reference, digest, updated_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (reference) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at";
        let (r, d, t) = (reference.to_string(), digest.to_string(), now_ms());
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| c.execute(&sqlite_sql(sql), rusqlite::params![r, d, t]))
                    .await?;
            }
            Backend::Postgres(_) => {
                self.pg().await?.execute(sql, &[&r, &d, &t]).await?;
            }
        }
        Ok(())
    }

    /// The digest a reference last resolved to, and when.
    pub async fn image_digest(&self, reference: &str) -> Result<Option<(String, i64)>> {
        let sql = "SELECT digest, updated_at FROM images WHERE reference = $1";
        let r = reference.to_string();
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    use rusqlite::OptionalExtension;
                    c.query_row(&sqlite_sql(sql), [r], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()
                })
                .await
            }
            Backend::Postgres(_) => Ok(self
                .pg()
                .await?
                .query_opt(sql, &[&r])
                .await?
                .map(|row| (row.get(0), row.get(1)))),
        }
    }

    /// Record a platform manifest, its layers, and the index it was chosen from with
    /// the platform selector that chose it (`(index digest, selector)`).
    pub async fn record_manifest(
        &self,
        manifest_digest: &str,
        platform: Option<&str>,
        config_digest: Option<&str>,
        layers: &[LayerRow],
        chosen_from: Option<(&str, &str)>,
    ) -> Result<()> {
        let t = now_ms();
        let layer_json = serde_json::to_string(
            &layers
                .iter()
                .map(|l| {
                    serde_json::json!({"digest": l.digest, "size": l.size, "media_type": l.media_type})
                })
                .collect::<Vec<_>>(),
        )?;
        let m = (
            manifest_digest.to_string(),
            platform.map(str::to_string),
            config_digest.map(str::to_string),
            layer_json,
        );
        let ls: Vec<(String, Option<i64>, Option<String>)> = layers
            .iter()
            .map(|l| {
                (
                    l.digest.clone(),
                    l.size.map(|s| s as i64),
                    l.media_type.clone(),
                )
            })
            .collect();
        let alias = chosen_from.map(|(i, selector)| {
            (
                i.to_string(),
                selector.to_string(),
                manifest_digest.to_string(),
            )
        });
        const M: &str = "INSERT INTO manifests (digest, platform, config_digest, layers, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING";
        const L: &str = "INSERT INTO layers (digest, size, media_type, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (digest) DO NOTHING";
        const A: &str = "INSERT INTO manifest_aliases (digest, platform, manifest_digest) VALUES ($1, $2, $3) \
                         ON CONFLICT (digest, platform) DO UPDATE SET manifest_digest = excluded.manifest_digest";
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    let tx = c.transaction()?;
                    tx.execute(&sqlite_sql(M), rusqlite::params![m.0, m.1, m.2, m.3, t])?;
                    for (d, s, mt) in &ls {
                        tx.execute(&sqlite_sql(L), rusqlite::params![d, s, mt, t])?;
                    }
                    if let Some((i, p, md)) = &alias {
                        tx.execute(&sqlite_sql(A), rusqlite::params![i, p, md])?;
                    }
                    tx.commit()
                })
                .await
            }
            Backend::Postgres(_) => {
                let mut c = self.pg().await?;
                let tx = c.transaction().await?;
                tx.execute(M, &[&m.0, &m.1, &m.2, &m.3, &t]).await?;
                for (d, s, mt) in &ls {
                    tx.execute(L, &[d, s, mt, &t]).await?;
                }
                if let Some((i, p, md)) = &alias {
                    tx.execute(A, &[i, p, md]).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// The platform manifest a digest stands for: itself when it is one we scanned, the
    /// manifest chosen for `platform` when it is an index.
    pub async fn platform_manifest(&self, digest: &str, platform: &str) -> Result<Option<String>> {
        const Q: &str = "SELECT manifest_digest FROM manifest_aliases WHERE digest = $1 AND platform = $2 \
                         UNION ALL SELECT digest FROM manifests WHERE digest = $1";
        let (d, p) = (digest.to_string(), platform.to_string());
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    use rusqlite::OptionalExtension;
                    c.query_row(&sqlite_sql(Q), [d, p], |row| row.get(0))
                        .optional()
                })
                .await
            }
            Backend::Postgres(_) => Ok(self
                .pg()
                .await?
                .query(Q, &[&d, &p])
                .await?
                .first()
                .map(|row| row.get(0))),
        }
    }

    /// Stored walk results of these layers under `rules_digest` (zstd-compressed JSON).
    pub async fn layer_results(
        &self,
        digests: &[String],
        rules_digest: &str,
    ) -> Result<HashMap<String, Vec<u8>>> {
        let ds: Vec<String> = digests.to_vec();
        let r = rules_digest.to_string();
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    let mut st = c.prepare_cached(
                        "SELECT result FROM layer_results WHERE layer_digest = ?1 AND rules_digest = ?2",
                    )?;
                    let mut out = HashMap::new();
                    for d in ds {
                        let mut rows = st.query(rusqlite::params![d, r])?;
                        if let Some(row) = rows.next()? {
                            out.insert(d, row.get(0)?);
                        }
                    }
                    Ok(out)
                })
                .await
            }
            Backend::Postgres(_) => {
                let rows = self
                    .pg()
                    .await?
                    .query(
                        "SELECT layer_digest, result FROM layer_results \
                         WHERE layer_digest = ANY($1) AND rules_digest = $2",
                        &[&ds, &r],
                    )
                    .await?;
                Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
            }
        }
    }

    /// Keep a layer's walk result (zstd-compressed JSON) for `rules_digest`.
    pub async fn put_layer_result(
        &self,
        digest: &str,
        rules_digest: &str,
        result: Vec<u8>,
        findings: usize,
    ) -> Result<()> {
        const Q: &str = "INSERT INTO layer_results (layer_digest, rules_digest, result, findings, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (layer_digest, rules_digest) \
                         DO UPDATE SET walks = layer_results.walks + 1";
        let (d, r, n, t) = (
            digest.to_string(),
            rules_digest.to_string(),
            findings as i64,
            now_ms(),
        );
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    c.execute(&sqlite_sql(Q), rusqlite::params![d, r, result, n, t])
                })
                .await?;
            }
            Backend::Postgres(_) => {
                self.pg()
                    .await?
                    .execute(Q, &[&d, &r, &result, &n, &t])
                    .await?;
            }
        }
        Ok(())
    }

    /// The verdict on a platform manifest under a policy, whatever rules made it.
    pub async fn verdict(
        &self,
        manifest_digest: &str,
        policy_digest: &str,
    ) -> Result<Option<Verdict>> {
        const Q: &str = "SELECT manifest_digest, policy_digest, rules_digest, allowed, image, summary, created_at \
                         FROM verdicts WHERE manifest_digest = $1 AND policy_digest = $2";
        let (m, p) = (manifest_digest.to_string(), policy_digest.to_string());
        let row: Option<(String, String, String, i64, String, String, i64)> = match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    use rusqlite::OptionalExtension;
                    c.query_row(&sqlite_sql(Q), [m, p], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    })
                    .optional()
                })
                .await?
            }
            Backend::Postgres(_) => self.pg().await?.query_opt(Q, &[&m, &p]).await?.map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            }),
        };
        row.map(
            |(
                manifest_digest,
                policy_digest,
                rules_digest,
                allowed,
                image,
                summary,
                created_at,
            )| {
                Ok(Verdict {
                    manifest_digest,
                    policy_digest,
                    rules_digest,
                    allowed: allowed != 0,
                    image,
                    summary: serde_json::from_str(&summary).context("stored verdict summary")?,
                    created_at,
                })
            },
        )
        .transpose()
    }

    /// The stored report (zstd-compressed JSON) behind a verdict.
    pub async fn verdict_report(
        &self,
        manifest_digest: &str,
        policy_digest: &str,
    ) -> Result<Option<Vec<u8>>> {
        const Q: &str =
            "SELECT report FROM verdicts WHERE manifest_digest = $1 AND policy_digest = $2";
        let (m, p) = (manifest_digest.to_string(), policy_digest.to_string());
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    use rusqlite::OptionalExtension;
                    c.query_row(&sqlite_sql(Q), [m, p], |r| r.get(0)).optional()
                })
                .await
            }
            Backend::Postgres(_) => Ok(self
                .pg()
                .await?
                .query_opt(Q, &[&m, &p])
                .await?
                .map(|r| r.get(0))),
        }
    }

    /// Store (or replace) a verdict and its report.
    pub async fn put_verdict(&self, v: &Verdict, report: Vec<u8>) -> Result<()> {
        const Q: &str = "INSERT INTO verdicts (manifest_digest, policy_digest, rules_digest, allowed, image, summary, report, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (manifest_digest, policy_digest) DO UPDATE SET \
                         rules_digest = excluded.rules_digest, allowed = excluded.allowed, image = excluded.image, \
                         summary = excluded.summary, report = excluded.report, created_at = excluded.created_at";
        let v2 = v.clone();
        let summary = serde_json::to_string(&v.summary)?;
        let allowed = v.allowed as i64;
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    c.execute(
                        &sqlite_sql(Q),
                        rusqlite::params![
                            v2.manifest_digest,
                            v2.policy_digest,
                            v2.rules_digest,
                            allowed,
                            v2.image,
                            summary,
                            report,
                            v2.created_at
                        ],
                    )
                })
                .await?;
            }
            Backend::Postgres(_) => {
                self.pg()
                    .await?
                    .execute(
                        Q,
                        &[
                            &v2.manifest_digest,
                            &v2.policy_digest,
                            &v2.rules_digest,
                            &allowed,
                            &v2.image,
                            &summary,
                            &report,
                            &v2.created_at,
                        ],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Queue a job unless one with the same key is queued or running; returns the job's
    /// id and whether it is new.
    pub async fn enqueue(&self, j: &NewJob) -> Result<(String, bool)> {
        const INS: &str = "INSERT INTO jobs (id, image, platform, source, dedup_key, state, attempts, max_attempts, \
                           not_before, lease_until, auth, created_at, updated_at) \
                           VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, 0, $8, $7, $7) ON CONFLICT DO NOTHING";
        const SEL: &str =
            "SELECT id FROM jobs WHERE dedup_key = $1 AND state IN ('queued', 'running')";
        for _ in 0..3 {
            let id = uuid::Uuid::new_v4().to_string();
            let t = now_ms();
            let j2 = j.clone();
            let id2 = id.clone();
            let (inserted, existing): (usize, Option<String>) = match &*self.backend {
                Backend::Sqlite { .. } => {
                    self.sqlite(move |c| {
                        use rusqlite::OptionalExtension;
                        let n = c.execute(
                            &sqlite_sql(INS),
                            rusqlite::params![
                                id2,
                                j2.image,
                                j2.platform,
                                j2.source,
                                j2.dedup_key,
                                j2.max_attempts,
                                t,
                                j2.auth
                            ],
                        )?;
                        let e = if n == 0 {
                            c.query_row(&sqlite_sql(SEL), [&j2.dedup_key], |r| r.get(0))
                                .optional()?
                        } else {
                            None
                        };
                        Ok((n, e))
                    })
                    .await?
                }
                Backend::Postgres(_) => {
                    let c = self.pg().await?;
                    let n = c
                        .execute(
                            INS,
                            &[
                                &id2,
                                &j2.image,
                                &j2.platform,
                                &j2.source,
                                &j2.dedup_key,
                                &j2.max_attempts,
                                &t,
                                &j2.auth,
                            ],
                        )
                        .await? as usize;
                    let e = if n == 0 {
                        c.query_opt(SEL, &[&j2.dedup_key]).await?.map(|r| r.get(0))
                    } else {
                        None
                    };
                    (n, e)
                }
            };
            if inserted > 0 {
                return Ok((id, true));
            }
            if let Some(e) = existing {
                if let Some(auth) = &j.auth {
                    self.add_credentials(&e, auth).await?;
                }
                return Ok((e, false));
            }
            // The job we collided with ended between the two statements: try again.
        }
        bail!("store {}: could not queue {}", self.shown, j.image)
    }

    /// Give credentials to a job that has none (a request with credentials met the same
    /// image already queued without them).
    async fn add_credentials(&self, id: &str, auth: &str) -> Result<()> {
        const Q: &str = "UPDATE jobs SET auth = $1 WHERE id = $2 AND auth IS NULL \
                         AND state IN ('queued', 'running')";
        let (a, i) = (auth.to_string(), id.to_string());
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| c.execute(&sqlite_sql(Q), rusqlite::params![a, i]))
                    .await?;
            }
            Backend::Postgres(_) => {
                self.pg().await?.execute(Q, &[&a, &i]).await?;
            }
        }
        Ok(())
    }

    /// Take the oldest runnable job: queued and due, or running with an expired lease (its
    /// worker died). PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas never take the same
    /// job at once.
    pub async fn claim(&self, worker: &str, lease_ms: i64) -> Result<Option<Job>> {
        let pick = "SELECT id FROM jobs WHERE (state = 'queued' AND not_before <= $3) \
                    OR (state = 'running' AND lease_until < $3) ORDER BY created_at, id LIMIT 1";
        let t = now_ms();
        let w = worker.to_string();
        let lease = t + lease_ms;
        match &*self.backend {
            Backend::Sqlite { .. } => {
                let sql = format!(
                    "UPDATE jobs SET state = 'running', worker = $1, lease_until = $2, attempts = attempts + 1, \
                     updated_at = $3 WHERE id = ({pick}) RETURNING {JOB_COLS}"
                );
                self.sqlite(move |c| {
                    use rusqlite::OptionalExtension;
                    c.query_row(
                        &sqlite_sql(&sql),
                        rusqlite::params![w, lease, t],
                        sqlite_job,
                    )
                    .optional()
                })
                .await
            }
            Backend::Postgres(_) => {
                let sql = format!(
                    "UPDATE jobs SET state = 'running', worker = $1, lease_until = $2, attempts = attempts + 1, \
                     updated_at = $3 WHERE id = ({pick} FOR UPDATE SKIP LOCKED) RETURNING {JOB_COLS}"
                );
                Ok(self
                    .pg()
                    .await?
                    .query_opt(&sql, &[&w, &lease, &t])
                    .await?
                    .map(|r| pg_job(&r)))
            }
        }
    }

    /// Extend a running job's lease; false when the job is no longer ours.
    pub async fn heartbeat(&self, id: &str, worker: &str, lease_ms: i64) -> Result<bool> {
        const Q: &str =
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND worker = $3 AND state = 'running'";
        let (l, i, w) = (now_ms() + lease_ms, id.to_string(), worker.to_string());
        let n = match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| c.execute(&sqlite_sql(Q), rusqlite::params![l, i, w]))
                    .await?
            }
            Backend::Postgres(_) => self.pg().await?.execute(Q, &[&l, &i, &w]).await? as usize,
        };
        Ok(n > 0)
    }

    /// End a job: `done` with its result, or `failed`, or back to `queued` after
    /// `retry_in_ms` when attempts are left. Credentials are dropped when it ends. Only
    /// the worker holding the job can end it.
    pub async fn finish(&self, id: &str, worker: &str, outcome: JobOutcome) -> Result<bool> {
        let t = now_ms();
        let (i, w) = (id.to_string(), worker.to_string());
        let (sql, a, b, c3): (&str, Option<String>, Option<String>, i64) = match outcome {
            JobOutcome::Done {
                manifest_digest,
                result,
            } => (
                "UPDATE jobs SET state = 'done', manifest_digest = $1, result = $2, error = NULL, auth = NULL, \
                 worker = NULL, updated_at = $3 WHERE id = $4 AND worker = $5 AND state = 'running'",
                manifest_digest,
                Some(result.to_string()),
                t,
            ),
            JobOutcome::Failed { error } => (
                "UPDATE jobs SET state = 'failed', error = $1, result = $2, auth = NULL, worker = NULL, \
                 updated_at = $3 WHERE id = $4 AND worker = $5 AND state = 'running'",
                Some(error),
                None,
                t,
            ),
            JobOutcome::Retry { error, retry_in_ms } => (
                "UPDATE jobs SET state = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END, \
                 error = $1, result = $2, not_before = $3, worker = NULL, \
                 auth = CASE WHEN attempts < max_attempts THEN auth ELSE NULL END, updated_at = $3 \
                 WHERE id = $4 AND worker = $5 AND state = 'running'",
                Some(error),
                None,
                t + retry_in_ms,
            ),
        };
        let n = match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| c.execute(&sqlite_sql(sql), rusqlite::params![a, b, c3, i, w]))
                    .await?
            }
            Backend::Postgres(_) => {
                self.pg()
                    .await?
                    .execute(sql, &[&a, &b, &c3, &i, &w])
                    .await? as usize
            }
        };
        Ok(n > 0)
    }

    /// Give up on jobs whose attempts ran out while their worker kept dying (a lease
    /// expired with no attempts left): they are marked failed instead of being taken
    /// again forever.
    pub async fn fail_exhausted(&self) -> Result<usize> {
        const Q: &str = "UPDATE jobs SET state = 'failed', auth = NULL, worker = NULL, updated_at = $1, \
                         error = COALESCE(error, '') || ' (gave up: the worker stopped during every attempt)' \
                         WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts";
        let t = now_ms();
        Ok(match &*self.backend {
            Backend::Sqlite { .. } => self.sqlite(move |c| c.execute(&sqlite_sql(Q), [t])).await?,
            Backend::Postgres(_) => self.pg().await?.execute(Q, &[&t]).await? as usize,
        })
    }

    /// Running jobs go back to the queue (SQLite at start-up: the lock file proves no
    /// other process holds them).
    pub async fn requeue_running(&self) -> Result<usize> {
        const Q: &str = "UPDATE jobs SET state = 'queued', worker = NULL, updated_at = $1 WHERE state = 'running'";
        let t = now_ms();
        Ok(match &*self.backend {
            Backend::Sqlite { .. } => self.sqlite(move |c| c.execute(&sqlite_sql(Q), [t])).await?,
            Backend::Postgres(_) => self.pg().await?.execute(Q, &[&t]).await? as usize,
        })
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1");
        let i = id.to_string();
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    use rusqlite::OptionalExtension;
                    c.query_row(&sqlite_sql(&sql), [i], sqlite_job).optional()
                })
                .await
            }
            Backend::Postgres(_) => Ok(self
                .pg()
                .await?
                .query_opt(&sql, &[&i])
                .await?
                .map(|r| pg_job(&r))),
        }
    }

    /// Jobs by state.
    pub async fn job_counts(&self) -> Result<HashMap<String, i64>> {
        const Q: &str = "SELECT state, COUNT(*) FROM jobs GROUP BY state";
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(|c| {
                    let mut st = c.prepare_cached(Q)?;
                    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect()
                })
                .await
            }
            Backend::Postgres(_) => Ok(self
                .pg()
                .await?
                .query(Q, &[])
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()),
        }
    }
}

impl Store {
    /// Verdict reports in digest order after `after`, at most `limit`: `(manifest digest,
    /// image, rules digest, report)`; a report walk that does not hold everything in memory.
    pub async fn verdict_reports(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String, String, Vec<u8>)>> {
        const Q: &str = "SELECT manifest_digest, image, rules_digest, report FROM verdicts \
                         WHERE manifest_digest > $1 ORDER BY manifest_digest LIMIT $2";
        let a = after.to_string();
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(move |c| {
                    let mut st = c.prepare_cached(&sqlite_sql(Q))?;
                    let rows = st.query_map(rusqlite::params![a, limit], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?;
                    rows.collect()
                })
                .await
            }
            Backend::Postgres(_) => Ok(self
                .pg()
                .await?
                .query(Q, &[&a, &limit])
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect()),
        }
    }

    /// Jobs finished per minute: `(minute since the epoch, done, failed)`.
    pub async fn jobs_per_minute(&self) -> Result<Vec<(i64, i64, i64)>> {
        const Q: &str = "SELECT updated_at / 60000 AS m, \
                         SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), \
                         SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) \
                         FROM jobs WHERE state IN ('done', 'failed') GROUP BY m ORDER BY m";
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(|c| {
                    let mut st = c.prepare_cached(Q)?;
                    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                    rows.collect()
                })
                .await
            }
            Backend::Postgres(_) => Ok(self
                .pg()
                .await?
                .query(Q, &[])
                .await?
                .iter()
                .map(|r| {
                    let n = |i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0);
                    (r.get(0), n(1), n(2))
                })
                .collect()),
        }
    }

    /// Layer figures: `(layers recorded in manifests, layer results stored, walks that
    /// produced them)`.
    pub async fn layer_counts(&self) -> Result<(i64, i64, i64)> {
        const Q: &str = "SELECT (SELECT COUNT(*) FROM layers), (SELECT COUNT(*) FROM layer_results), \
                         (SELECT CAST(COALESCE(SUM(walks), 0) AS BIGINT) FROM layer_results)";
        match &*self.backend {
            Backend::Sqlite { .. } => {
                self.sqlite(|c| c.query_row(Q, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
                    .await
            }
            Backend::Postgres(_) => {
                let r = self.pg().await?.query_one(Q, &[]).await?;
                Ok((r.get(0), r.get(1), r.get(2)))
            }
        }
    }
}

/// How a job ended.
pub enum JobOutcome {
    Done {
        manifest_digest: Option<String>,
        result: serde_json::Value,
    },
    Failed {
        error: String,
    },
    Retry {
        error: String,
        retry_in_ms: i64,
    },
}

fn parse_result(s: Option<String>) -> Option<serde_json::Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

fn sqlite_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        image: r.get(1)?,
        platform: r.get(2)?,
        source: r.get(3)?,
        dedup_key: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        max_attempts: r.get(7)?,
        error: r.get(8)?,
        manifest_digest: r.get(9)?,
        result: parse_result(r.get(10)?),
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        auth: r.get(13)?,
        worker: r.get(14)?,
    })
}

fn pg_job(r: &tokio_postgres::Row) -> Job {
    Job {
        id: r.get(0),
        image: r.get(1),
        platform: r.get(2),
        source: r.get(3),
        dedup_key: r.get(4),
        state: r.get(5),
        attempts: r.get(6),
        max_attempts: r.get(7),
        error: r.get(8),
        manifest_digest: r.get(9),
        result: parse_result(r.get(10)),
        created_at: r.get(11),
        updated_at: r.get(12),
        auth: r.get(13),
        worker: r.get(14),
    }
}

fn open_sqlite(path: &Path) -> Result<Backend> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Lock the file's real location, so two spellings (symlinks, `..`) are one lock.
    let real = match (
        path.parent().filter(|d| !d.as_os_str().is_empty()),
        path.file_name(),
    ) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .with_context(|| format!("resolving {}", dir.display()))?
            .join(name),
        _ => path.to_path_buf(),
    };
    let real = std::fs::canonicalize(&real).unwrap_or(real);
    let lock_path = PathBuf::from(format!("{}.lock", real.display()));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    use fs4::fs_std::FileExt;
    if !lock.try_lock_exclusive().unwrap_or(false) {
        bail!(
            "{} is in use by another canary process (SQLite serves one process; use postgres:// for several replicas)",
            path.display()
        );
    }
    let mut c = rusqlite::Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    c.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")?;
    let have: i64 = c.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for (i, m) in MIGRATIONS.iter().enumerate() {
        let v = i as i64 + 1;
        if v <= have {
            continue;
        }
        let tx = c.transaction()?;
        tx.execute_batch(&m.replace("{blob}", "BLOB"))
            .with_context(|| format!("migration {v}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![v, now_ms()],
        )?;
        tx.commit()?;
    }
    if have > MIGRATIONS.len() as i64 {
        bail!(
            "schema version {have} is newer than this canary knows ({}); upgrade canary",
            MIGRATIONS.len()
        );
    }
    Ok(Backend::Sqlite {
        conn: Arc::new(Mutex::new(c)),
        _lock: Some(lock),
    })
}

async fn open_postgres(url: &str) -> Result<Backend> {
    let cfg: tokio_postgres::Config = url.parse().context("not a PostgreSQL URL")?;
    let mgr = deadpool_postgres::Manager::from_config(
        cfg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(mgr)
        .max_size(16)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .create_timeout(Some(std::time::Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("building the connection pool")?;
    let mut c = pool.get().await.context("connecting")?;
    let tx = c.transaction().await?;
    // Replicas starting together migrate one at a time.
    tx.execute("SELECT pg_advisory_xact_lock(7283519)", &[])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await?;
    let have: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    if have > MIGRATIONS.len() as i64 {
        bail!(
            "schema version {have} is newer than this canary knows ({}); upgrade canary",
            MIGRATIONS.len()
        );
    }
    for (i, m) in MIGRATIONS.iter().enumerate() {
        let v = i as i64 + 1;
        if v <= have {
            continue;
        }
        tx.batch_execute(&m.replace("{blob}", "BYTEA"))
            .await
            .with_context(|| format!("migration {v}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&v, &now_ms()],
        )
        .await?;
    }
    tx.commit().await?;
    drop(c);
    Ok(Backend::Postgres(pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database on the machine's PostgreSQL (127.0.0.1:5432, trust auth).
    async fn pg(name: &str) -> String {
        let (c, conn) = tokio_postgres::connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
            tokio_postgres::NoTls,
        )
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (trust auth) is part of the test set-up");
        tokio::spawn(conn);
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        format!("postgres://postgres@127.0.0.1:5432/{name}")
    }

    fn job(key: &str) -> NewJob {
        NewJob {
            image: format!("reg.test/{key}:1"),
            platform: "linux/amd64".into(),
            source: "api".into(),
            dedup_key: key.into(),
            auth: Some("u:p".into()),
            max_attempts: 2,
        }
    }

    async fn queue_semantics(s: &Store) {
        // Dedup while queued or running.
        let (a, new) = s.enqueue(&job("k1")).await.unwrap();
        assert!(new);
        let (a2, new2) = s.enqueue(&job("k1")).await.unwrap();
        assert_eq!((a2.as_str(), new2), (a.as_str(), false));
        // Claim, heartbeat; nobody else can take it while the lease holds.
        let j = s.claim("w1", 60_000).await.unwrap().unwrap();
        assert_eq!(
            (j.id.as_str(), j.attempts, j.auth.as_deref()),
            (a.as_str(), 1, Some("u:p"))
        );
        assert!(s.claim("w2", 60_000).await.unwrap().is_none());
        assert!(s.heartbeat(&a, "w1", 60_000).await.unwrap());
        assert!(!s.heartbeat(&a, "w2", 60_000).await.unwrap());
        // A retry goes back to the queue after its delay; the next attempt is the last.
        assert!(
            s.finish(
                &a,
                "w1",
                JobOutcome::Retry {
                    error: "503".into(),
                    retry_in_ms: 0
                }
            )
            .await
            .unwrap()
        );
        let j = s.claim("w2", 1).await.unwrap().unwrap();
        assert_eq!(j.attempts, 2);
        // w2's lease (1 ms) expired: w3 takes the job over, w2 can no longer end it.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(
            s.fail_exhausted().await.unwrap(),
            1,
            "no attempts left: failed"
        );
        let j = s.job(&a).await.unwrap().unwrap();
        assert_eq!(j.state, "failed");
        assert!(j.auth.is_none(), "credentials dropped when the job ended");
        // A new request for the same key after the end is a new job.
        let (b, new) = s.enqueue(&job("k1")).await.unwrap();
        assert!(new && b != a);
        let j = s.claim("w1", 1).await.unwrap().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let again = s.claim("w3", 60_000).await.unwrap().unwrap();
        assert_eq!(again.id, j.id, "an expired lease is taken over");
        assert!(
            !s.finish(
                &b,
                "w1",
                JobOutcome::Done {
                    manifest_digest: None,
                    result: serde_json::json!({})
                }
            )
            .await
            .unwrap()
        );
        assert!(
            s.finish(
                &b,
                "w3",
                JobOutcome::Done {
                    manifest_digest: Some("sha256:m".into()),
                    result: serde_json::json!({"ok": 1})
                }
            )
            .await
            .unwrap()
        );
        let j = s.job(&b).await.unwrap().unwrap();
        assert_eq!(
            (j.state.as_str(), j.manifest_digest.as_deref()),
            ("done", Some("sha256:m"))
        );
        assert_eq!(j.result.unwrap()["ok"], 1);
        // Layers, manifests, verdicts.
        s.record_manifest(
            "sha256:m",
            Some("linux/amd64"),
            Some("sha256:c"),
            &[LayerRow {
                digest: "sha256:l1".into(),
                size: Some(3),
                media_type: None,
            }],
            Some(("sha256:idx", "linux/amd64")),
        )
        .await
        .unwrap();
        assert_eq!(
            s.platform_manifest("sha256:idx", "linux/amd64")
                .await
                .unwrap()
                .as_deref(),
            Some("sha256:m")
        );
        assert_eq!(
            s.platform_manifest("sha256:m", "linux/amd64")
                .await
                .unwrap()
                .as_deref(),
            Some("sha256:m")
        );
        assert_eq!(
            s.platform_manifest("sha256:idx", "linux/arm64")
                .await
                .unwrap(),
            None
        );
        s.put_layer_result("sha256:l1", "r1", vec![1, 2, 3], 0)
            .await
            .unwrap();
        let got = s
            .layer_results(&["sha256:l1".into(), "sha256:l2".into()], "r1")
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert!(
            s.layer_results(&["sha256:l1".into()], "r2")
                .await
                .unwrap()
                .is_empty()
        );
        let v = Verdict {
            manifest_digest: "sha256:m".into(),
            policy_digest: "p".into(),
            rules_digest: "r1".into(),
            allowed: false,
            image: "reg.test/x".into(),
            summary: serde_json::json!({"failing": []}),
            created_at: 1,
        };
        s.put_verdict(&v, vec![9]).await.unwrap();
        let mut v2 = v.clone();
        v2.rules_digest = "r2".into();
        v2.allowed = true;
        s.put_verdict(&v2, vec![8]).await.unwrap();
        let got = s.verdict("sha256:m", "p").await.unwrap().unwrap();
        assert!(got.allowed && got.rules_digest == "r2");
        assert_eq!(
            s.verdict_report("sha256:m", "p").await.unwrap(),
            Some(vec![8])
        );
        assert!(s.verdict("sha256:m", "other").await.unwrap().is_none());
        s.record_image("reg.test/x:1", "sha256:idx").await.unwrap();
        assert_eq!(
            s.image_digest("reg.test/x:1").await.unwrap().unwrap().0,
            "sha256:idx"
        );
        let counts = s.job_counts().await.unwrap();
        assert_eq!(counts.get("done"), Some(&1));
        assert_eq!(counts.get("failed"), Some(&1));
    }

    #[tokio::test]
    async fn sqlite_queue_and_tables() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let s = Store::open(&url).await.unwrap();
        queue_semantics(&s).await;
        // One process per file; reopening after close keeps everything (migrations run once).
        assert!(Store::open(&url).await.is_err());
        drop(s);
        let s = Store::open(&url).await.unwrap();
        assert_eq!(s.job_counts().await.unwrap().values().sum::<i64>(), 2);
    }

    #[tokio::test]
    async fn postgres_queue_and_tables() {
        let url = pg("canary_store_unit").await;
        let s = Store::open(&url).await.unwrap();
        queue_semantics(&s).await;
        // A second replica on the same database migrates nothing and shares the data.
        let s2 = Store::open(&url).await.unwrap();
        assert_eq!(s2.job_counts().await.unwrap().values().sum::<i64>(), 2);
        assert!(s.describe().starts_with("postgres://"));
    }

    /// Replicas claiming at once never get the same job (`FOR UPDATE SKIP LOCKED`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_concurrent_claims_are_exclusive() {
        let url = pg("canary_store_claims").await;
        let s = Store::open(&url).await.unwrap();
        for i in 0..60 {
            s.enqueue(&job(&format!("k{i}"))).await.unwrap();
        }
        let mut tasks = Vec::new();
        for w in 0..6 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(j) = s.claim(&format!("w{w}"), 60_000).await.unwrap() {
                    got.push(j.id);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!((n, all.len()), (60, 60));
    }

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            shown_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(shown_url("sqlite:///x.db"), "sqlite:///x.db");
        assert_eq!(shown_url("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            shown_url("postgres://h/db?user=u&password=x"),
            "postgres://h/db?***"
        );
    }
}
