//! The HTTP routes: the drawing page, `POST /api/predict`, `GET /api/health`, `GET /api/model`.
//! Every error is JSON `{"error": ...}` with a 4xx status; a request never crashes the server.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use digitnet::data::IMAGE_PIXELS;
use digitnet::data::preprocess::digit_from_bytes;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::worker::Job;

/// The largest request body accepted (a PNG of a big photo of a digit fits easily).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How much of an over-limit body is read and thrown away so that a client that writes its
/// whole body before reading (most do) gets the 413 answer rather than a broken pipe.
/// Past this the connection is closed without reading further.
const MAX_DRAINED_BYTES: usize = 64 * 1024 * 1024;

/// Why a request body was not read.
enum BodyError {
    /// Over [`MAX_BODY_BYTES`].
    TooLarge,
    /// The connection failed mid-body.
    Read(String),
}

/// Reads a body of at most [`MAX_BODY_BYTES`]. An over-limit body is drained (up to
/// [`MAX_DRAINED_BYTES`]) before the error is returned, so the answer reaches the client.
async fn read_body(mut body: Body, declared_len: Option<u64>) -> Result<Bytes, BodyError> {
    if declared_len.is_some_and(|n| n > MAX_DRAINED_BYTES as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= MAX_BODY_BYTES {
            bytes.extend_from_slice(&data);
        } else if seen > MAX_DRAINED_BYTES {
            return Err(BodyError::TooLarge);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(bytes))
}

const PAGE: &str = include_str!("page.html");

/// What every handler shares.
pub struct AppState {
    /// The inference worker's queue.
    pub jobs: mpsc::Sender<Job>,
    /// Short name of the model (in every prediction).
    pub model_name: String,
    /// `GET /api/model`'s answer.
    pub model_info: Value,
}

/// The application's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/api/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/api/model", get(model))
        .route("/api/predict", post(predict))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page or API route") })
        // The body limit is enforced in `predict`, which answers it in JSON.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

async fn model(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(state.model_info.clone()).into_response()
}

/// The media type of a request, lower-case, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

async fn predict(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let kind = content_type(&headers);
    let is_image = matches!(kind.as_deref(), Some("image/png" | "image/jpeg"));
    let is_json = kind.as_deref() == Some("application/json");
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = read_body(body, declared_len).await;
    if !is_image && !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {} not supported: send image/png, image/jpeg, or application/json \
                 (an array of 784 numbers from 0 to 1)",
                kind.as_deref().unwrap_or("(none)")
            ),
        );
    }
    let bytes = match body {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {} MiB", MAX_BODY_BYTES >> 20),
            );
        }
        Err(BodyError::Read(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            );
        }
    };
    let image = if is_image {
        let decoded = tokio::task::spawn_blocking(move || {
            digit_from_bytes(&bytes, Path::new("request body"))
        })
        .await;
        match decoded {
            Ok(Ok(image)) => image,
            Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
            Err(_) => return error(StatusCode::BAD_REQUEST, "the image could not be decoded"),
        }
    } else {
        match image_from_json(&bytes) {
            Ok(image) => image,
            Err(message) => return error(StatusCode::BAD_REQUEST, message),
        }
    };
    let (reply, answer) = oneshot::channel();
    if state.jobs.send(Job { image, reply }).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the model is not running");
    }
    let Ok(prediction) = answer.await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the model is not running");
    };
    axum::Json(json!({
        "digit": prediction.digit,
        "probabilities": prediction.probabilities,
        "model": state.model_name,
        "input": image.to_vec(),
    }))
    .into_response()
}

/// A JSON array of 784 numbers in 0..=1 (ink), row by row, as a 28x28 image.
fn image_from_json(bytes: &[u8]) -> Result<[u8; IMAGE_PIXELS], String> {
    let values: Vec<f64> = serde_json::from_slice(bytes)
        .map_err(|e| format!("expected a JSON array of {IMAGE_PIXELS} numbers: {e}"))?;
    if values.len() != IMAGE_PIXELS {
        return Err(format!(
            "expected {IMAGE_PIXELS} values (28x28), got {}",
            values.len()
        ));
    }
    let mut image = [0u8; IMAGE_PIXELS];
    for (i, (&v, out)) in values.iter().zip(image.iter_mut()).enumerate() {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("value #{i} is {v}; values must be from 0 to 1"));
        }
        *out = (v * 255.0).round() as u8;
    }
    Ok(image)
}
