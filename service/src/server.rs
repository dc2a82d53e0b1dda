//! The HTTP side: routes, authentication, limits, TLS, and the scan API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::admission::AdmissionConfig;
use crate::scanner::{Lookup, Scanner};
use crate::store::NewJob;

/// How the service is set up.
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Accepted API tokens (`Authorization: Bearer T` or `X-ScannerAdapter-API-Key: T`);
    /// empty = no authentication (only allowed on loopback unless `allow_no_auth`).
    pub tokens: Vec<String>,
    pub allow_no_auth: bool,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Platform scanned when a request names none.
    pub platform: String,
    pub max_attempts: i64,
    pub admission: AdmissionConfig,
    /// Largest request body (AdmissionReviews of big pods are the largest).
    pub max_body: usize,
    /// Longest a request may take end to end.
    pub request_timeout: Duration,
    /// Registries (`host[:port]`) the service pulls from; empty = any. Every image a
    /// request names is checked against it before anything is sent to its registry.
    pub allowed_registries: Vec<String>,
}

impl App {
    /// Whether the service may pull from this image's registry.
    pub fn check_registry(&self, r: &oci_client::Reference) -> Result<(), String> {
        let allowed = &self.config.allowed_registries;
        if allowed.is_empty() || allowed.iter().any(|h| h.eq_ignore_ascii_case(r.registry())) {
            Ok(())
        } else {
            Err(format!(
                "registry {} is not one this service pulls from (--allow-registry)",
                r.registry()
            ))
        }
    }
}

/// Shared by every handler.
pub struct App {
    pub scanner: Arc<Scanner>,
    pub config: ServeConfig,
    /// Wakes an idle worker when a job is queued here.
    pub wake: Arc<Notify>,
    /// Resolves tags for admission requests (HEAD only), with the service's credentials.
    pub resolver: canary_analyzer::source::registry::RegistryClient,
}

pub type Shared = Arc<App>;

/// A JSON error body with a status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": message.into()})),
    )
        .into_response()
}

/// The router with every route and layer.
pub fn router(app: Shared) -> Router {
    let protected = Router::new()
        .route("/v1/scans", post(create_scan))
        .route("/v1/scans/{id}", get(get_scan))
        .route("/v1/images/{digest}/verdict", get(get_verdict))
        .route("/admission/validate", post(crate::admission::validate))
        .route("/registry/events", post(crate::events::receive))
        .route("/api/v1/metadata", get(crate::harbor::metadata))
        .route("/api/v1/scan", post(crate::harbor::scan))
        .route("/api/v1/scan/{id}/report", get(crate::harbor::report))
        .route_layer(middleware::from_fn_with_state(app.clone(), authenticate));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(protected)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(app.config.max_body))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// Latency histogram per route, and the request deadline.
async fn observe(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = match tokio::time::timeout(app.config.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "request timed out"),
    };
    app.scanner
        .metrics
        .request(&route, resp.status().as_u16(), started.elapsed());
    resp
}

/// Equal in time whatever the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if app.config.tokens.is_empty() {
        return next.run(req).await;
    }
    let h = req.headers();
    let given = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| {
            h.get("x-scanneradapter-api-key")
                .and_then(|v| v.to_str().ok())
        });
    match given {
        Some(t)
            if app
                .config
                .tokens
                .iter()
                .any(|k| same(k.as_bytes(), t.trim().as_bytes())) =>
        {
            next.run(req).await
        }
        Some(_) => unauthorized(req.uri().path(), "invalid token"),
        None => {
            let mut r = unauthorized(
                req.uri().path(),
                "authentication required: Authorization: Bearer TOKEN or X-ScannerAdapter-API-Key",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"canary\""),
            );
            r
        }
    }
}

/// A 401 in the shape of the API asked (Harbor's error type under `/api/v1`).
fn unauthorized(path: &str, message: &str) -> Response {
    if path.starts_with("/api/v1/") {
        crate::harbor::harbor_error(StatusCode::UNAUTHORIZED, message)
    } else {
        error(StatusCode::UNAUTHORIZED, message)
    }
}

async fn readyz(State(app): State<Shared>) -> Response {
    match app.scanner.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e:#}")),
    }
}

async fn metrics(State(app): State<Shared>) -> Response {
    if let Ok(counts) = app.scanner.store.job_counts().await {
        app.scanner.metrics.queue(&counts);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.scanner.metrics.render(),
    )
        .into_response()
}

/// A registry reference: never a local path or archive (those would read the server's
/// own files).
pub fn parse_image(s: &str) -> Result<oci_client::Reference, String> {
    let s = s.trim();
    if s.is_empty() || s.len() > 1024 {
        return Err("image reference is empty or longer than 1024 bytes".into());
    }
    let local = ["docker-archive:", "oci:", "oci-archive:"]
        .iter()
        .any(|p| s.starts_with(p));
    if local || s.contains("://") || s.starts_with('/') || s.starts_with('.') {
        return Err(format!("{s:?} is not a registry image reference"));
    }
    let r: oci_client::Reference = s
        .parse()
        .map_err(|e| format!("invalid image reference {s:?}: {e}"))?;
    if let Some(d) = r.digest()
        && canary_analyzer::image::check_digest(d, s).is_err()
    {
        return Err(format!("{s:?}: only sha256 digests are accepted"));
    }
    Ok(r)
}

/// Queue a scan of `image`; the key makes the same request twice one job.
pub async fn enqueue(
    app: &App,
    image: &oci_client::Reference,
    platform: &str,
    source: &str,
    auth: Option<String>,
) -> anyhow::Result<(String, bool)> {
    let key = match image.digest() {
        Some(d) => format!("{}@{d}|{platform}", image.repository()),
        None => format!("{}|{platform}", image.whole()),
    };
    let key = format!("{}/{key}", image.registry());
    let r = app
        .scanner
        .store
        .enqueue(&NewJob {
            image: image.whole(),
            platform: platform.to_string(),
            source: source.to_string(),
            dedup_key: key,
            auth,
            max_attempts: app.config.max_attempts,
        })
        .await?;
    if r.1 {
        app.wake.notify_one();
    }
    Ok(r)
}

#[derive(Deserialize)]
struct ScanRequest {
    image: String,
    #[serde(default)]
    platform: Option<String>,
}

fn check_platform(p: &str) -> Result<String, Box<Response>> {
    p.parse::<canary_analyzer::image::Platform>()
        .map(|x| x.to_string())
        .map_err(|e| {
            Box::new(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("platform: {e}"),
            ))
        })
}

async fn create_scan(
    State(app): State<Shared>,
    body: Result<axum::Json<ScanRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), e.body_text()),
    };
    let image = match parse_image(&req.image).and_then(|i| app.check_registry(&i).map(|_| i)) {
        Ok(i) => i,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let platform = match check_platform(req.platform.as_deref().unwrap_or(&app.config.platform)) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match enqueue(&app, &image, &platform, "api", None).await {
        Ok((id, created)) => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/v1/scans/{id}"))],
            axum::Json(serde_json::json!({
                "id": id,
                "image": image.whole(),
                "platform": platform,
                "queued": created,
            })),
        )
            .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e:#}")),
    }
}

async fn get_scan(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    if id.len() > 64 {
        return error(StatusCode::NOT_FOUND, "no such scan");
    }
    let job = match app.scanner.store.job(&id).await {
        Ok(Some(j)) => j,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such scan"),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e:#}")),
    };
    let mut body = serde_json::to_value(&job).unwrap_or_default();
    if job.state == "done"
        && let Some(m) = &job.manifest_digest
    {
        match app
            .scanner
            .store
            .verdict_report(m, &app.scanner.policy_digest)
            .await
        {
            Ok(Some(bytes)) => match crate::scanner::unpack::<serde_json::Value>(&bytes) {
                Ok(report) => body["report"] = report,
                Err(e) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("stored report: {e}"),
                    );
                }
            },
            Ok(None) => {}
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e:#}")),
        }
    }
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
struct VerdictQuery {
    platform: Option<String>,
}

async fn get_verdict(
    State(app): State<Shared>,
    Path(digest): Path<String>,
    Query(q): Query<VerdictQuery>,
) -> Response {
    if canary_analyzer::image::check_digest(&digest, "path").is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "expected sha256:<64 hex> in the path",
        );
    }
    let platform = match check_platform(q.platform.as_deref().unwrap_or(&app.config.platform)) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match app.scanner.lookup(&digest, &platform).await {
        Ok(Lookup::Hit(v)) => axum::Json(serde_json::json!({
            "digest": digest,
            "verdict": if v.allowed { "allow" } else { "deny" },
            "detail": &*v,
        }))
        .into_response(),
        Ok(Lookup::Stale(v)) => error(
            StatusCode::NOT_FOUND,
            format!(
                "no verdict under the current rules ({}); the last one was made under {}",
                app.scanner.rules_digest, v.rules_digest
            ),
        ),
        Ok(Lookup::Miss) => error(StatusCode::NOT_FOUND, "no verdict for this digest"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e:#}")),
    }
}

/// Serve until `shutdown` turns true: plain HTTP/1.1, or TLS when configured. Each
/// connection has a header deadline; the router a per-request one.
pub async fn serve(
    app: Shared,
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let tls = match &app.config.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let router = router(app.clone());
    loop {
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    eprintln!("canary serve: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(router);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => {
                            http.serve_connection(hyper_util::rt::TokioIo::new(s), service)
                                .await
                        }
                        _ => return,
                    }
                }
                None => {
                    http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await
                }
            };
            let _ = result;
        });
    }
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use anyhow::Context;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("--tls-cert {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--tls-cert {}: not PEM certificates", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert {}: no certificate in the file", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("--tls-key {}: no PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match or are unsupported")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// A header value as text, or "".
pub fn header_str<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// An empty-bodied response.
pub fn empty(status: StatusCode) -> Response {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .unwrap_or_default()
}
