//! Every write transaction on a store file begins here, with redb's quick repair enabled.
//!
//! A process killed while it holds a redb file open for writing leaves it needing recovery, and
//! by default redb recovers by walking the whole file (every page's checksum, the allocator
//! state rebuilt): about 1–2 s per GB, so a restart after a crash grows with the log. With quick
//! repair, each commit also saves the allocator state (and commits in two phases, so the primary
//! commit slot is valid without checking checksums), and the next open loads that state instead
//! of walking the file. But the saved state belongs to ONE commit: any commit made without quick
//! repair drops it, and the next crash walks the file again. So no code path may begin a write
//! transaction any other way: `clippy.toml` disallows `redb::Database::begin_write` in the whole
//! workspace (CI runs clippy with `-D warnings`), and this is the one place allowed to call it.
//!
//! What quick repair cannot cover: redb's own compaction commits without it (`Store::compact`
//! records the state again right after it), so a process killed *during* a compaction leaves a
//! file that the next open walks in full. The cost per commit (two fsyncs instead of one, plus
//! the allocator state, which grows with the file) is measured in `docs/benchmarks.md`.

use redb::{Database, TransactionError, WriteTransaction};

/// A write transaction on `db` whose commit saves redb's allocator state (quick repair).
pub(crate) fn begin(db: &Database) -> Result<WriteTransaction, TransactionError> {
    #[allow(clippy::disallowed_methods)]
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    Ok(txn)
}
