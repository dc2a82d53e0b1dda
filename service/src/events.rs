//! Distribution registry notifications (`application/vnd.docker.distribution.events.v1+json`)
//! at `POST /registry/events`: a manifest push queues a scan of that digest.
//!
//! The registry delivers at least once, retrying until it gets a 2xx, in any order. So
//! handling is idempotent by digest: a digest with a verdict under the current rules is
//! skipped, and a digest already queued or running is the same job.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::scanner::Lookup;
use crate::server::{Shared, enqueue, error};

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

#[derive(Deserialize)]
struct Envelope {
    events: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    request: RequestInfo,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Target {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    url: String,
}

#[derive(Deserialize, Default)]
struct RequestInfo {
    #[serde(default)]
    host: String,
}

/// `http://host:port/v2/…` → `host:port`.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let a = rest.split('/').next()?;
    (!a.is_empty() && !a.contains('@')).then_some(a)
}

/// `POST /registry/events`.
pub async fn receive(State(app): State<Shared>, body: Bytes) -> Response {
    let env: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("not a registry notification envelope: {e}"),
            );
        }
    };
    if env.events.len() > 10_000 {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "more than 10000 events in one envelope",
        );
    }
    let platform = app.config.platform.clone();
    let (mut queued, mut known, mut ignored, mut rejected) = (0, 0, 0, Vec::new());
    for raw in env.events {
        // One odd event must not make the registry retry the whole envelope forever.
        let ev: Event = match serde_json::from_value(raw) {
            Ok(e) => e,
            Err(e) => {
                app.scanner.metrics.event("rejected");
                rejected.push(format!("unreadable event: {e}"));
                continue;
            }
        };
        let t = &ev.target;
        if ev.action != "push"
            || !MANIFEST_TYPES.contains(&t.media_type.as_str())
            || t.digest.is_empty()
        {
            app.scanner.metrics.event("ignored");
            ignored += 1;
            continue;
        }
        let host = authority(&t.url)
            .map(str::to_string)
            .or_else(|| (!ev.request.host.is_empty()).then(|| ev.request.host.clone()));
        let Some(host) = host else {
            app.scanner.metrics.event("rejected");
            rejected.push(format!(
                "{}@{}: no registry host in the event",
                t.repository, t.digest
            ));
            continue;
        };
        let image = crate::server::parse_image(&format!("{host}/{}@{}", t.repository, t.digest))
            .and_then(|i| app.check_registry(&i).map(|_| i));
        let image = match image {
            Ok(r) => r,
            Err(e) => {
                app.scanner.metrics.event("rejected");
                rejected.push(e);
                continue;
            }
        };
        match app.scanner.lookup(&t.digest, &platform).await {
            Ok(Lookup::Hit(_)) => {
                app.scanner.metrics.event("known");
                known += 1;
                continue;
            }
            Ok(_) => {}
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e:#}")),
        }
        match enqueue(&app, &image, &platform, "registry-event", None).await {
            Ok(_) => {
                app.scanner.metrics.event("queued");
                queued += 1;
            }
            // The registry retries a failed delivery: say so with a 5xx.
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e:#}")),
        }
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({
            "queued": queued,
            "already_scanned": known,
            "ignored": ignored,
            "rejected": rejected,
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn authority_of_event_urls() {
        assert_eq!(
            super::authority("http://127.0.0.1:5000/v2/a/manifests/sha256:00"),
            Some("127.0.0.1:5000")
        );
        assert_eq!(super::authority("https://user@evil/v2/"), None);
        assert_eq!(super::authority("nonsense"), None);
    }
}
