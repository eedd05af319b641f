//! Administration routes: `GET /v1/admin/backup`, a consistent copy of the store while it
//! serves.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tidemark_store::BackupError;

use crate::error::ApiError;
use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};
use crate::read::blocking;
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/admin/backup",
        "getBackup",
        "A consistent copy of the store (a redb file, from one read transaction); needs the write scope",
        backup,
    )]
}

/// Bytes per chunk of the streamed backup.
const CHUNK: usize = 256 << 10;

/// Where a backup is built before it is streamed: next to the store (same filesystem, so the
/// operator's disk planning covers it), under a name no one else uses.
fn scratch_path(store: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".backup-{}-{n}.tmp", std::process::id()));
    store.with_file_name(name)
}

fn backup_error(error: BackupError) -> ApiError {
    match &error {
        BackupError::Storage(fault) if fault.is_disk_full() => {
            ApiError::insufficient_storage(format!(
                "no room for the backup copy next to the store: {error}; free space, or back up offline with `tidemark backup --db` to another disk"
            ))
        }
        BackupError::Io { source, .. } if tidemark_store::is_disk_full(source) => {
            ApiError::insufficient_storage(format!(
                "no room for the backup copy next to the store: {error}"
            ))
        }
        _ => ApiError::internal(&error),
    }
}

/// `GET /v1/admin/backup`: the store as one redb file, copied from one read transaction while
/// ingest goes on, so it is the store exactly as one commit left it (`X-Tidemark-Checkpoint`
/// says which). The copy is built next to the store, checked, unlinked (the open handle keeps
/// it until it is sent) and streamed.
async fn backup(State(state): State<AppState>) -> Result<BackupFile, ApiError> {
    let store = state.store.clone();
    let (file, info) = blocking(move || {
        let scratch = scratch_path(store.path());
        let info = store.backup_to(&scratch, |_, _| {}).map_err(backup_error)?;
        let file = std::fs::File::open(&scratch).map_err(|e| ApiError::internal(&e));
        // Unlinked now: nothing is left behind, whatever happens to the download.
        let _ = std::fs::remove_file(&scratch);
        Ok((file?, info))
    })
    .await?;
    tracing::info!(
        checkpoint = info.checkpoint,
        bytes = info.bytes,
        "streaming a backup"
    );
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut chunk = vec![0; CHUNK];
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                        break; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, info.bytes.into());
    headers.insert("x-tidemark-checkpoint", info.checkpoint.into());
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"tidemark-{}.redb\"",
        info.checkpoint
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(BackupFile(response))
}

/// The backup, streamed as `application/octet-stream` with its checkpoint in a header.
#[derive(Debug)]
struct BackupFile(Response);

impl IntoResponse for BackupFile {
    fn into_response(self) -> Response {
        self.0
    }
}

impl DescribeOutput for BackupFile {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.text(200, "success", "application/octet-stream");
    }
}
