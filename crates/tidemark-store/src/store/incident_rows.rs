//! Incidents' timeline entries in `incident_entries` (ADR 0006, step 3): the core's row
//! algorithm (`tidemark_core::timeline_rows`: [`write_records`], [`read_written_entries`]) over
//! the redb table, written in a batch's write transaction and read as of a log position in
//! one read transaction (through [`StoreHistory`](super::history_tables::StoreHistory), which
//! reads a finding's history and these rows alike).

use redb::{ReadableTable, WriteTransaction};
use tidemark_core::incidents::IncidentEntry;
use tidemark_core::timeline_rows::{
    EntryRow, EntryRows, EntryRowsMut, IncidentEntryRecord, ReadRow, WriteOutHeader,
    read_has_written_entry, read_written_count, read_written_entries, write_records,
};

use crate::codec;
use crate::error::{CorruptRecord, ReadFault, StorageFault};
use crate::tables::{self, Table};

/// The key of `incident_entries`: (incident id, entry position, position written at).
pub(crate) type EntryKey = (&'static str, u64, u64);

/// `incident_entries`, open in some transaction: the core's [`EntryRows`] over it.
pub(crate) struct EntryTable<T> {
    table: T,
    /// The encoding buffer, reused across rows.
    buffer: Vec<u8>,
}

impl<T> EntryTable<T> {
    /// The rows of `table`.
    pub(crate) fn over(table: T) -> Self {
        Self {
            table,
            buffer: Vec::new(),
        }
    }
}

/// A row of `incident_entries` that does not decode.
fn corrupt(incident: &str, seq: u64, written_at: u64, problem: codec::CodecError) -> ReadFault {
    ReadFault::Corrupt(CorruptRecord {
        table: Table::IncidentEntries.name(),
        key: format!("({incident:?}, {seq}, {written_at})"),
        problem,
    })
}

impl<T: ReadableTable<EntryKey, &'static [u8]>> EntryRows for EntryTable<T> {
    type Error = ReadFault;

    fn latest_header(
        &self,
        incident: &str,
        up_to: u64,
    ) -> Result<Option<(u64, WriteOutHeader)>, ReadFault> {
        let Some(row) = self
            .table
            .range((incident, 0, 0)..=(incident, 0, up_to))?
            .next_back()
        else {
            return Ok(None);
        };
        let (key, value) = row?;
        let written_at = key.value().2;
        let header = codec::decode_write_out_header(incident, written_at, value.value())
            .map_err(|problem| corrupt(incident, 0, written_at, problem))?;
        Ok(Some((written_at, header)))
    }

    fn entry_rows(
        &self,
        incident: &str,
        from: u64,
        to: u64,
    ) -> Result<impl Iterator<Item = ReadRow<ReadFault>>, ReadFault> {
        let rows = (from <= to)
            .then(|| {
                self.table
                    .range((incident, from.max(1), 0)..=(incident, to, u64::MAX))
            })
            .transpose()?;
        Ok(rows.into_iter().flatten().map(move |row| {
            let (key, value) = row?;
            let (_, seq, written_at) = key.value();
            let entry = codec::decode_entry_row(incident, seq, written_at, value.value())
                .map_err(|problem| corrupt(incident, seq, written_at, problem))?;
            Ok((seq, written_at, entry))
        }))
    }
}

impl EntryRowsMut for EntryTable<redb::Table<'_, EntryKey, &'static [u8]>> {
    fn has_header_at(&self, incident: &str, written_at: u64) -> Result<bool, ReadFault> {
        Ok(self.table.get((incident, 0, written_at))?.is_some())
    }

    fn insert_entry(
        &mut self,
        incident: &str,
        seq: u64,
        written_at: u64,
        row: &EntryRow,
    ) -> Result<(), ReadFault> {
        codec::encode_entry_row(incident, seq, written_at, row, &mut self.buffer);
        self.table
            .insert((incident, seq, written_at), self.buffer.as_slice())?;
        Ok(())
    }

    fn insert_header(
        &mut self,
        incident: &str,
        written_at: u64,
        header: WriteOutHeader,
    ) -> Result<(), ReadFault> {
        codec::encode_write_out_header(incident, written_at, &header, &mut self.buffer);
        self.table
            .insert((incident, 0, written_at), self.buffer.as_slice())?;
        Ok(())
    }
}

/// Writes the timeline records a batch's fold wrote out into `incident_entries`, in the batch's
/// transaction (all of a batch or none).
pub(crate) fn write_timeline_records(
    txn: &WriteTransaction,
    records: &[IncidentEntryRecord],
) -> Result<(), ReadFault> {
    if records.is_empty() {
        return Ok(());
    }
    let table = txn
        .open_table(tables::INCIDENT_ENTRIES)
        .map_err(StorageFault::from)?;
    write_records(&mut EntryTable::over(table), records)
}

/// The reads of `incident_entries` the core's `IncidentEntryReader` makes, over a table of one
/// read transaction (`None`: a file that lacks it, read as empty).
pub(crate) struct EntryReads<'a>(
    pub(crate) Option<&'a EntryTable<redb::ReadOnlyTable<EntryKey, &'static [u8]>>>,
);

impl EntryReads<'_> {
    /// [`read_written_entries`].
    pub(crate) fn entries(
        &self,
        incident: &str,
        after: u64,
        as_of: u64,
        limit: usize,
    ) -> Result<Vec<IncidentEntry>, ReadFault> {
        self.0.map_or(Ok(Vec::new()), |t| {
            read_written_entries(t, incident, after, as_of, limit)
        })
    }

    /// [`read_written_count`].
    pub(crate) fn count(&self, incident: &str, as_of: u64) -> Result<u64, ReadFault> {
        self.0
            .map_or(Ok(0), |t| read_written_count(t, incident, as_of))
    }

    /// [`read_has_written_entry`].
    pub(crate) fn has(&self, incident: &str, seq: u64, as_of: u64) -> Result<bool, ReadFault> {
        self.0.map_or(Ok(false), |t| {
            read_has_written_entry(t, incident, seq, as_of)
        })
    }
}
