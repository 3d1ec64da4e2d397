//! The HTTP surface: `POST /mutate` (pods that opted in), `POST /mutate/namespace` (pods of
//! namespaces that opted in), `GET /healthz`, `GET /readyz`. Bodies over the limit get 413, a
//! body that is no `admission.k8s.io/v1` AdmissionReview gets 400 with a refusal, a review is
//! answered 200 (allowed, patched or denied). Reviews run on the blocking pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::admission::{self, Verdict};
use crate::profile::Profiles;
use crate::request::Scope;
use crate::server::reload::Shared;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The profiles in use (replaced on reload).
    pub profiles: Shared<Profiles>,
    /// `false` once shutdown began: `/readyz` fails so no new review is routed here.
    pub ready: AtomicBool,
}

/// The routes, with a body limit of `max_body` bytes.
pub fn router(state: Arc<AppState>, max_body: usize) -> Router {
    Router::new()
        .route("/mutate", post(mutate_pod))
        .route("/mutate/namespace", post(mutate_namespace))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    }
}

async fn mutate_pod(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    answer(state, body, Scope::Pod).await
}

async fn mutate_namespace(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    answer(state, body, Scope::Namespace).await
}

async fn answer(state: Arc<AppState>, body: Bytes, scope: Scope) -> Response {
    let profiles = state.profiles.get();
    let reviewed =
        tokio::task::spawn_blocking(move || admission::review(&body, &profiles, scope)).await;
    match reviewed {
        Ok(Ok(a)) => {
            match &a.verdict {
                Verdict::Injected(p, notes) => {
                    tracing::info!(pod = %a.object, profile = %p, "injected");
                    for n in notes {
                        tracing::warn!(pod = %a.object, profile = %p, "{n}");
                    }
                }
                Verdict::Unchanged => tracing::debug!(pod = %a.object, "allowed unchanged"),
                Verdict::Excluded(m) => tracing::info!(pod = %a.object, "{m}"),
                Verdict::Denied(m) => tracing::warn!(pod = %a.object, reason = %m, "denied"),
            }
            (StatusCode::OK, Json(a.review)).into_response()
        }
        Ok(Err(e)) => {
            let message = secure_model_core::chain_message(&e);
            tracing::warn!(error = %message, "bad AdmissionReview");
            (StatusCode::BAD_REQUEST, Json(admission::invalid(&message))).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the review task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}
