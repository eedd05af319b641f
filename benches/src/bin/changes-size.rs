//! The bytes each table of a store file takes, read with redb's own table statistics (for the
//! `changes` table of ADR 0008: benches/changes/run). Reads any Tidemark store file, old or new,
//! read-only; prints one JSON line per table and one for the whole file.
//!
//! `changes-size PATH.redb`

use redb::{ReadOnlyDatabase, ReadableDatabase, ReadableTableMetadata, TableHandle};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: changes-size PATH.redb");
    let file_bytes = std::fs::metadata(&path).expect("the file exists").len();
    let db = ReadOnlyDatabase::open(&path).expect("the store opens read-only");
    let txn = db.begin_read().expect("a read transaction");
    let mut handles: Vec<_> = txn.list_tables().expect("the tables list").collect();
    handles.sort_by(|a, b| a.name().cmp(b.name()));
    let (mut stored, mut metadata, mut fragmented) = (0, 0, 0);
    for handle in handles {
        let name = handle.name().to_string();
        let table = txn.open_untyped_table(handle).expect("the table opens");
        let stats = table.stats().expect("the table's stats");
        stored += stats.stored_bytes();
        metadata += stats.metadata_bytes();
        fragmented += stats.fragmented_bytes();
        println!(
            "{{\"table\":\"{name}\",\"entries\":{},\"stored_bytes\":{},\"metadata_bytes\":{},\"fragmented_bytes\":{},\"leaf_pages\":{},\"branch_pages\":{}}}",
            table.len().expect("the table's length"),
            stats.stored_bytes(),
            stats.metadata_bytes(),
            stats.fragmented_bytes(),
            stats.leaf_pages(),
            stats.branch_pages(),
        );
    }
    println!(
        "{{\"table\":\"(all tables)\",\"file_bytes\":{file_bytes},\"stored_bytes\":{stored},\"metadata_bytes\":{metadata},\"fragmented_bytes\":{fragmented}}}"
    );
}
