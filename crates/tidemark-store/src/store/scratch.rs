//! The new file a rebuild writes beside the store before renaming it over the store, and its
//! removal when a rebuild died before the rename (at the next read-write open).

use std::path::{Path, PathBuf};

/// The new file a rebuild writes beside the store at `path` before it replaces it.
pub(super) fn rebuild_scratch_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".rebuild-partial");
    path.with_file_name(name)
}

/// Removes a partial rebuild left beside the store at `path` by a process that died while
/// rebuilding. Only a process holding the store open for writing may call it: the rebuild that
/// writes the file holds the store until the file is renamed over it.
pub(super) fn remove_partial_rebuild(path: &Path) -> std::io::Result<()> {
    let scratch = rebuild_scratch_path(path);
    match std::fs::remove_file(&scratch) {
        Ok(()) => {
            tracing::info!(file = %scratch.display(), "removed a partial rebuild left by an interrupted `tidemark rebuild`; the store is as it was before it");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
