//! Incidents that are not open in `incident_bodies` and `incident_openings` (ADR 0006, step 4):
//! the core's row algorithm (`tidemark_core::incident_bodies`: [`write_body_records`],
//! [`read_body`], [`read_in_opening_order`]) over the redb tables, written in a batch's write
//! transaction and read as of a log position in one read transaction (through
//! [`StoreHistory`](super::history_tables::StoreHistory), which reads a finding's history, the
//! timeline rows and these alike).

use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};
use tidemark_core::incident_bodies::{
    BodyRow, BodyRows, BodyRowsMut, IncidentBodyRecord, OpeningKey, read_body,
    read_in_opening_order, write_body_records,
};

use crate::codec;
use crate::error::{CorruptRecord, ReadFault, StorageFault};
use crate::tables::{self, Table};

/// The key of `incident_bodies`: (incident id, position written at).
pub(crate) type BodyKey = (&'static str, u64);
/// The key of `incident_openings`: (scope, opened position, incident id, position written at).
pub(crate) type OpeningRowKey = (&'static str, u64, &'static str, u64);

/// `incident_bodies` and `incident_openings`, open in some transaction: the core's
/// [`BodyRows`] over them.
pub(crate) struct BodyTables<B, O> {
    bodies: B,
    openings: O,
    /// The encoding buffer, reused across rows.
    buffer: Vec<u8>,
}

impl<B, O> BodyTables<B, O> {
    /// The rows of `bodies` and `openings`.
    pub(crate) fn over(bodies: B, openings: O) -> Self {
        Self {
            bodies,
            openings,
            buffer: Vec::new(),
        }
    }
}

/// A row of `incident_bodies` that does not decode.
fn corrupt(incident: &str, written_at: u64, problem: codec::CodecError) -> ReadFault {
    ReadFault::Corrupt(CorruptRecord {
        table: Table::IncidentBodies.name(),
        key: format!("({incident:?}, {written_at})"),
        problem,
    })
}

impl<B, O> BodyRows for BodyTables<B, O>
where
    B: ReadableTable<BodyKey, &'static [u8]>,
    O: ReadableTable<OpeningRowKey, ()>,
{
    type Error = ReadFault;

    fn latest_body(&self, id: &str, as_of: u64) -> Result<Option<(u64, BodyRow)>, ReadFault> {
        let Some(row) = self.bodies.range((id, 0)..=(id, as_of))?.next_back() else {
            return Ok(None);
        };
        let (key, value) = row?;
        let written_at = key.value().1;
        let body = codec::decode_body_row(id, written_at, value.value())
            .map_err(|problem| corrupt(id, written_at, problem))?;
        Ok(Some((written_at, body)))
    }

    fn openings_after(
        &self,
        scope: &str,
        after: Option<(u64, &str)>,
    ) -> Result<impl Iterator<Item = Result<OpeningKey, ReadFault>>, ReadFault> {
        let start = match after {
            Some((seq, id)) => Bound::Excluded((scope, seq, id, u64::MAX)),
            None => Bound::Included((scope, 0, "", 0)),
        };
        let end = Bound::Included((scope, u64::MAX, "\u{10FFFF}\u{10FFFF}", u64::MAX));
        let rows = self.openings.range((start, end))?;
        let scope = scope.to_owned();
        Ok(rows
            .map(|row| -> Result<_, ReadFault> {
                let (key, _) = row?;
                let (row_scope, seq, id, written_at) = key.value();
                Ok((row_scope.to_owned(), (seq, id.to_owned(), written_at)))
            })
            .take_while(move |row| row.as_ref().map_or(true, |(s, _)| *s == scope))
            .map(|row| row.map(|(_, key)| key)))
    }
}

impl BodyRowsMut
    for BodyTables<redb::Table<'_, BodyKey, &'static [u8]>, redb::Table<'_, OpeningRowKey, ()>>
{
    fn insert_body(&mut self, id: &str, written_at: u64, row: &BodyRow) -> Result<(), ReadFault> {
        codec::encode_body_row(id, written_at, row, &mut self.buffer);
        self.bodies
            .insert((id, written_at), self.buffer.as_slice())?;
        Ok(())
    }

    fn insert_opening(
        &mut self,
        scope: &str,
        opened_seq: u64,
        id: &str,
        written_at: u64,
    ) -> Result<(), ReadFault> {
        self.openings
            .insert((scope, opened_seq, id, written_at), ())?;
        Ok(())
    }
}

/// Writes what the fold of a batch ending at position `at` wrote out of its incidents since the
/// last call (timeline entries into `incident_entries`, incident versions into
/// `incident_bodies` and `incident_openings`), with what closed incidents still hold in memory
/// (after a restore: `Projections::write_out_closed_incidents`), in the batch's transaction
/// (all of a batch or none).
pub(crate) fn write_incident_records(
    txn: &WriteTransaction,
    projections: &mut tidemark_core::Projections,
    at: u64,
) -> Result<(), ReadFault> {
    projections.write_out_closed_incidents(at);
    super::incident_rows::write_timeline_records(txn, &projections.take_timeline_records())?;
    write_incident_body_records(txn, &projections.take_incident_body_records())
}

/// Writes the incident versions a batch's fold wrote out into `incident_bodies` and
/// `incident_openings`, in the batch's transaction (all of a batch or none).
pub(crate) fn write_incident_body_records(
    txn: &WriteTransaction,
    records: &[IncidentBodyRecord],
) -> Result<(), ReadFault> {
    if records.is_empty() {
        return Ok(());
    }
    let bodies = txn
        .open_table(tables::INCIDENT_BODIES)
        .map_err(StorageFault::from)?;
    let openings = txn
        .open_table(tables::INCIDENT_OPENINGS)
        .map_err(StorageFault::from)?;
    write_body_records(&mut BodyTables::over(bodies, openings), records)
}

/// The tables of one read transaction as the core's `IncidentBodyReader` reads them.
pub(crate) type ReadBodyTables =
    BodyTables<redb::ReadOnlyTable<BodyKey, &'static [u8]>, redb::ReadOnlyTable<OpeningRowKey, ()>>;

/// The reads of `incident_bodies` the core's `IncidentBodyReader` makes (`None`: a file that
/// lacks the tables, read as empty).
pub(crate) struct BodyReads<'a>(pub(crate) Option<&'a ReadBodyTables>);

impl BodyReads<'_> {
    /// [`read_body`].
    pub(crate) fn body(&self, id: &str, as_of: u64) -> Result<Option<BodyRow>, ReadFault> {
        self.0.map_or(Ok(None), |t| read_body(t, id, as_of))
    }

    /// [`read_in_opening_order`].
    pub(crate) fn in_opening_order(
        &self,
        cluster: Option<&str>,
        after: Option<(u64, &str)>,
        as_of: u64,
        visit: &mut dyn FnMut(BodyRow) -> bool,
    ) -> Result<(), ReadFault> {
        self.0.map_or(Ok(()), |t| {
            read_in_opening_order(t, cluster, after, as_of, visit)
        })
    }
}
