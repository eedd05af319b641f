//! Probes and metrics: `/healthz` (the process answers), `/readyz` (ready to serve) and
//! `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};
use crate::read::blocking;
use crate::replica::Gauge;
use crate::state::{AppState, Ingest};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/healthz", "getHealth", "The process answers", healthz),
        Route::get(
            "/readyz",
            "getReadiness",
            "Ready to serve (embedded: the writer runs; replica: caught up)",
            readyz,
        ),
        Route::get("/metrics", "getMetrics", "Prometheus metrics", metrics),
    ]
}

/// `GET /healthz`: the process answers.
async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, JsonSchema)]
struct Alive {
    /// Always `ok`.
    status: &'static str,
}

/// `GET /readyz`: embedded, the store is open and the writer runs; replica, the follower is
/// consuming, has not diverged, and its lag is under the threshold.
async fn readyz(State(state): State<AppState>) -> Readiness {
    let store = state.store.clone();
    // The store's count (every origin, across restarts), the same in both modes; not the
    // whole stats, which read every cluster (a reopened store restores them when first needed).
    let (checkpoint, quarantined) =
        blocking(move || Ok((store.checkpoint(), store.quarantined().ok())))
            .await
            .unwrap_or((0, None));
    let (ready, mut detail) = match &state.ingest {
        Ingest::Local(writer) => {
            let ready = writer.is_running();
            (
                ready,
                json!({"status": if ready { "ready" } else { "stopping" }, "checkpoint": checkpoint}),
            )
        }
        Ingest::Publish { health, .. } => health.readiness(),
    };
    // Reads keep working on a full disk, so the server stays ready; `writes` says why ingest
    // (or, on a replica, applying the stream) is refused.
    if let Some(object) = detail.as_object_mut() {
        if let Some(quarantined) = quarantined {
            object.insert("quarantined".into(), quarantined.into());
        }
        match state.store.disk_full() {
            None => {
                object.insert("writes".into(), "ok".into());
            }
            Some(full) => {
                object.insert("writes".into(), "disk_full".into());
                object.insert(
                    "disk_full".into(),
                    serde_json::to_value(&full).unwrap_or_default(),
                );
            }
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Readiness(status, detail)
}

/// The answer of `/readyz`: 200 when ready, else 503, with what the writer (or the follower)
/// reports either way.
#[derive(Debug)]
struct Readiness(StatusCode, Value);

impl IntoResponse for Readiness {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl DescribeOutput for Readiness {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        let detail = json!({"type": "object", "description": "`status`, the checkpoint, whether writes are refused (`writes`: `ok` or `disk_full`), `quarantined`; on a replica, the follower's state and lag"});
        operation.json(200, "ready", detail.clone());
        operation.json(
            503,
            "not ready (the writer stopped, or the replica is behind or diverged)",
            detail,
        );
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Result<PrometheusText, ApiError> {
    let store = state.store.clone();
    let stats = blocking(move || store.stats().map_err(|e| ApiError::internal(&e))).await?;
    let mut gauges = vec![
        Gauge {
            name: "tidemark_checkpoint",
            help: "last applied log position",
            value: stats.checkpoint as f64,
        },
        Gauge {
            name: "tidemark_events_stored",
            help: "events in the local log",
            value: stats.events as f64,
        },
        Gauge {
            name: "tidemark_quarantined",
            help: "quarantine records (each counts how often its input was refused)",
            value: stats.quarantined as f64,
        },
        Gauge {
            name: "tidemark_quarantine_bytes",
            help: "bytes the quarantine records take (bounded by --quarantine-max-bytes)",
            value: stats.quarantine_bytes as f64,
        },
        Gauge {
            name: "tidemark_findings_active",
            help: "active findings",
            value: stats.active_findings as f64,
        },
        Gauge {
            name: "tidemark_traces_kept",
            help: "traces the span forests hold (bounded by each cluster's span_retention_secs)",
            value: stats.traces_kept as f64,
        },
        Gauge {
            name: "tidemark_flap_auto_resolutions_kept",
            help: "auto-resolution times the count flap detector holds (bounded by the 30-day limit of flap_window_secs)",
            value: stats.auto_resolutions_kept as f64,
        },
        Gauge {
            name: "tidemark_store_bytes",
            help: "size of the store file",
            value: stats.size_on_disk_bytes as f64,
        },
        Gauge {
            name: "tidemark_store_disk_full",
            help: "1 while writes are refused because the disk (or the file size limit) is full",
            value: if state.store.disk_full().is_some() {
                1.0
            } else {
                0.0
            },
        },
    ];
    if let Ingest::Publish { health, .. } = &state.ingest {
        gauges.extend(health.gauges());
    }
    let mut text = String::new();
    for gauge in gauges {
        text.push_str(&format!(
            "# HELP {} {}\n# TYPE {} gauge\n{} {}\n",
            gauge.name, gauge.help, gauge.name, gauge.name, gauge.value
        ));
    }
    text.push_str(&format!(
        "# HELP tidemark_quarantine_dropped_total refused inputs whose raw bytes were not kept because the quarantine was full (kept in the store: survives restarts)\n# TYPE tidemark_quarantine_dropped_total counter\ntidemark_quarantine_dropped_total {}\n",
        stats.quarantine_dropped
    ));
    text.push_str(&format!(
        "# HELP tidemark_late_spans_total spans that arrived for a trace past its cluster's span_retention_secs and were judged alone (over the whole log)\n# TYPE tidemark_late_spans_total counter\ntidemark_late_spans_total {}\n",
        stats.late_spans
    ));
    state.metrics.render(&mut text);
    crate::metrics::render_time_travel(&state.time_travel.counts(), &mut text);
    state.stream.render(&mut text);
    Ok(PrometheusText(text))
}

/// Metrics in Prometheus' text format.
#[derive(Debug)]
struct PrometheusText(String);

impl IntoResponse for PrometheusText {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            self.0,
        )
            .into_response()
    }
}

impl DescribeOutput for PrometheusText {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.text(200, "success", "text/plain");
    }
}
