//! The finding index, read and written: which events changed or named a finding, with how
//! (change bits), in position order. Store layout 9 keeps it in `finding_groups` (a value per
//! finding per run of positions, `codec::encode_finding_group`); a store of an earlier layout
//! opened read-only keeps it in `by_finding` (an entry per change). Readers go through
//! [`FindingIndex`], which reads whichever table holds the entries, so every read gives the
//! same answer from either.

use redb::{ReadOnlyTable, ReadableTable, ReadableTableMetadata};

use crate::codec::{self, FINDING_GROUP_MAX_ENTRIES};
use crate::error::{CorruptRecord, ReadFault, StorageFault};
use crate::tables::{self, Table};

/// `finding_groups` open for writing.
pub(super) type GroupTable<'txn> = redb::Table<'txn, FindingKey, &'static [u8]>;

/// The key of both tables: (cluster, check key, position).
type FindingKey = (&'static str, &'static str, u64);
type GroupsReadOnly = ReadOnlyTable<FindingKey, &'static [u8]>;
type EntriesReadOnly = ReadOnlyTable<FindingKey, u8>;
type GroupRange<'a> = redb::Range<'a, FindingKey, &'static [u8]>;
type EntryRange<'a> = redb::Range<'a, FindingKey, u8>;
/// One finding's entries kept for rewriting: (cluster, check key, entries).
type FindingEntries = (String, String, Vec<(u64, u8)>);

/// The key of a finding group as text, for a corrupt record's message.
fn group_key_text(cluster: &str, check_key: &str, first: u64) -> String {
    format!("({cluster}, {check_key}, {first})")
}

/// Decodes the group under `(cluster, check_key, first)` into `out` (cleared first).
pub(super) fn decode_group(
    cluster: &str,
    check_key: &str,
    first: u64,
    bytes: &[u8],
    out: &mut Vec<(u64, u8)>,
) -> Result<(), CorruptRecord> {
    out.clear();
    codec::decode_finding_group(cluster, check_key, first, bytes, out).map_err(|problem| {
        CorruptRecord::new(
            Table::FindingGroups.name(),
            group_key_text(cluster, check_key, first),
            problem,
        )
    })
}

/// Writes the entries `(position, change bits)` of one finding, positions increasing, as groups
/// of at most [`FINDING_GROUP_MAX_ENTRIES`]; `buffer` is scratch.
pub(super) fn write_groups(
    table: &mut GroupTable<'_>,
    cluster: &str,
    check_key: &str,
    entries: &[(u64, u8)],
    buffer: &mut Vec<u8>,
) -> Result<(), StorageFault> {
    for group in entries.chunks(FINDING_GROUP_MAX_ENTRIES) {
        codec::encode_finding_group(cluster, check_key, group, buffer);
        table.insert((cluster, check_key, group[0].0), buffer.as_slice())?;
    }
    Ok(())
}

/// Writes entries handed over one at a time in key order (cluster, check key, position) as
/// groups ([`copy_entries_up_to`]).
#[derive(Default)]
struct GroupWriter {
    cluster: String,
    check_key: String,
    entries: Vec<(u64, u8)>,
    buffer: Vec<u8>,
}

impl GroupWriter {
    /// Adds an entry; the ones of the finding before, or a full group, are written first.
    fn push(
        &mut self,
        table: &mut GroupTable<'_>,
        cluster: &str,
        check_key: &str,
        seq: u64,
        bits: u8,
    ) -> Result<(), StorageFault> {
        if self.cluster != cluster
            || self.check_key != check_key
            || self.entries.len() == FINDING_GROUP_MAX_ENTRIES
        {
            self.flush(table)?;
            cluster.clone_into(&mut self.cluster);
            check_key.clone_into(&mut self.check_key);
        }
        debug_assert!(
            self.entries.last().is_none_or(|(last, _)| *last < seq),
            "entries come in key order"
        );
        self.entries.push((seq, bits));
        Ok(())
    }

    /// Writes what is held.
    fn flush(&mut self, table: &mut GroupTable<'_>) -> Result<(), StorageFault> {
        if !self.entries.is_empty() {
            write_groups(
                table,
                &self.cluster,
                &self.check_key,
                &self.entries,
                &mut self.buffer,
            )?;
            self.entries.clear();
        }
        Ok(())
    }
}

/// The finding index of a read transaction: `finding_groups`, or, in a store of layout 8 or
/// earlier opened read-only (whose read-write open has not moved them yet), `by_finding`.
pub(crate) enum FindingIndex {
    Groups(Option<GroupsReadOnly>),
    Entries(EntriesReadOnly),
}

impl FindingIndex {
    /// Opens the table that holds the entries: `by_finding` when it has any (nothing writes it
    /// from layout 9 on, and the upgrade empties it only in the transaction after the groups
    /// are complete), else `finding_groups` (absent in an older store: empty).
    pub(crate) fn open(txn: &redb::ReadTransaction) -> Result<Self, StorageFault> {
        let entries = txn.open_table(tables::BY_FINDING)?;
        if !entries.is_empty()? {
            return Ok(Self::Entries(entries));
        }
        Ok(Self::Groups(tables::open_listed(
            txn,
            Table::FindingGroups,
            tables::FINDING_GROUPS,
        )?))
    }

    /// The table read, for messages.
    pub(crate) fn table_name(&self) -> &'static str {
        match self {
            Self::Groups(_) => Table::FindingGroups.name(),
            Self::Entries(_) => Table::ByFinding.name(),
        }
    }

    /// The change bits of `check_key` in `cluster` at `seq`, if the index has an entry there.
    pub(crate) fn get(
        &self,
        cluster: &str,
        check_key: &str,
        seq: u64,
    ) -> Result<Option<u8>, ReadFault> {
        // The read from `seq` to `seq`: the group that starts at or before it, no more.
        Ok(self
            .forward(cluster, check_key, seq, seq)?
            .next()
            .transpose()?
            .map(|(_, bits)| bits))
    }

    /// The entries `(position, change bits)` of `check_key` in `cluster` at positions
    /// `from..=to`, in increasing position; lazily (a caller that takes a page reads the index
    /// for that page, and at most one group before it).
    pub(crate) fn forward<'a>(
        &'a self,
        cluster: &'a str,
        check_key: &'a str,
        from: u64,
        to: u64,
    ) -> Result<Forward<'a>, ReadFault> {
        if from > to {
            return Ok(Forward::Done);
        }
        match self {
            Self::Entries(table) => Ok(Forward::Entries(
                table.range((cluster, check_key, from)..=(cluster, check_key, to))?,
            )),
            Self::Groups(None) => Ok(Forward::Done),
            Self::Groups(Some(table)) => {
                // The group that starts at or before `from` may hold entries from it on.
                let mut held = Vec::new();
                if let Some(entry) = table
                    .range((cluster, check_key, 0)..=(cluster, check_key, from))?
                    .next_back()
                {
                    let (key, value) = entry?;
                    decode_group(cluster, check_key, key.value().2, value.value(), &mut held)?;
                }
                let rest = match from.checked_add(1) {
                    Some(next) if next <= to => {
                        Some(table.range((cluster, check_key, next)..=(cluster, check_key, to))?)
                    }
                    _ => None,
                };
                Ok(Forward::Groups(GroupsForward {
                    cluster,
                    check_key,
                    from,
                    to,
                    held,
                    given: 0,
                    rest,
                }))
            }
        }
    }

    /// The entries of `check_key` in `cluster` at positions up to `to`, in decreasing position;
    /// lazily.
    pub(crate) fn backward<'a>(
        &'a self,
        cluster: &'a str,
        check_key: &'a str,
        to: u64,
    ) -> Result<Backward<'a>, ReadFault> {
        match self {
            Self::Entries(table) => Ok(Backward::Entries(
                table
                    .range((cluster, check_key, 0)..=(cluster, check_key, to))?
                    .rev(),
            )),
            Self::Groups(None) => Ok(Backward::Done),
            Self::Groups(Some(table)) => Ok(Backward::Groups(GroupsBackward {
                cluster,
                check_key,
                to,
                held: Vec::new(),
                rest: Some(
                    table
                        .range((cluster, check_key, 0)..=(cluster, check_key, to))?
                        .rev(),
                ),
            })),
        }
    }

    /// Every entry of the index, in key order: `visit(cluster, check_key, position, bits)`.
    /// A group that does not decode goes to `corrupt` (with its key as text) and the walk goes
    /// on; a storage failure ends it.
    pub(crate) fn for_each(
        &self,
        mut visit: impl FnMut(&str, &str, u64, u8) -> Result<(), StorageFault>,
        mut corrupt: impl FnMut(CorruptRecord),
    ) -> Result<(), StorageFault> {
        match self {
            Self::Entries(table) => {
                for entry in table.iter()? {
                    let (key, bits) = entry?;
                    let (cluster, check_key, seq) = key.value();
                    visit(cluster, check_key, seq, bits.value())?;
                }
            }
            Self::Groups(None) => {}
            Self::Groups(Some(table)) => {
                let mut entries = Vec::new();
                for entry in table.iter()? {
                    let (key, value) = entry?;
                    let (cluster, check_key, first) = key.value();
                    match decode_group(cluster, check_key, first, value.value(), &mut entries) {
                        Ok(()) => {
                            for &(seq, bits) in &entries {
                                visit(cluster, check_key, seq, bits)?;
                            }
                        }
                        Err(record) => corrupt(record),
                    }
                }
            }
        }
        Ok(())
    }
}

/// A row of `by_finding` as redb gives it.
type EntryRow<'a> =
    Result<(redb::AccessGuard<'a, FindingKey>, redb::AccessGuard<'a, u8>), redb::StorageError>;
/// A row of `finding_groups` as redb gives it.
type GroupRow<'a> = Result<
    (
        redb::AccessGuard<'a, FindingKey>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// A `by_finding` row as (position, change bits).
fn entry_of(row: EntryRow<'_>) -> Result<(u64, u8), ReadFault> {
    let (key, bits) = row?;
    Ok((key.value().2, bits.value()))
}

/// Reads the next group of `rest` into `held` (cleared first). `None` at the end; a group that
/// cannot be read answers its error and ends the read (`rest` is dropped either way).
fn next_group<'a>(
    rest: &mut Option<impl Iterator<Item = GroupRow<'a>>>,
    cluster: &str,
    check_key: &str,
    held: &mut Vec<(u64, u8)>,
) -> Option<Result<(), ReadFault>> {
    let read = match rest.as_mut()?.next() {
        None => {
            *rest = None;
            return None;
        }
        Some(Err(error)) => Err(ReadFault::from(error)),
        Some(Ok((key, value))) => {
            decode_group(cluster, check_key, key.value().2, value.value(), held)
                .map_err(ReadFault::from)
        }
    };
    if read.is_err() {
        *rest = None;
    }
    Some(read)
}

/// [`FindingIndex::forward`]'s entries.
pub(crate) enum Forward<'a> {
    Done,
    Entries(EntryRange<'a>),
    Groups(GroupsForward<'a>),
}

/// The groups of one finding read forwards.
pub(crate) struct GroupsForward<'a> {
    cluster: &'a str,
    check_key: &'a str,
    from: u64,
    to: u64,
    /// The entries of the group read last, and how many of them were given.
    held: Vec<(u64, u8)>,
    given: usize,
    /// The groups after it (`None` once the end is reached).
    rest: Option<GroupRange<'a>>,
}

impl Iterator for Forward<'_> {
    type Item = Result<(u64, u8), ReadFault>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Done => None,
            Self::Entries(range) => Some(entry_of(range.next()?)),
            Self::Groups(groups) => loop {
                if let Some(&(seq, bits)) = groups.held.get(groups.given) {
                    groups.given += 1;
                    if seq < groups.from {
                        continue;
                    }
                    if seq > groups.to {
                        groups.rest = None;
                        groups.held.clear();
                        return None;
                    }
                    return Some(Ok((seq, bits)));
                }
                let (cluster, check_key) = (groups.cluster, groups.check_key);
                if let Err(error) =
                    next_group(&mut groups.rest, cluster, check_key, &mut groups.held)?
                {
                    return Some(Err(error));
                }
                groups.given = 0;
            },
        }
    }
}

/// [`FindingIndex::backward`]'s entries.
pub(crate) enum Backward<'a> {
    Done,
    Entries(std::iter::Rev<EntryRange<'a>>),
    Groups(GroupsBackward<'a>),
}

/// The groups of one finding read backwards.
pub(crate) struct GroupsBackward<'a> {
    cluster: &'a str,
    check_key: &'a str,
    to: u64,
    /// The entries of the group read last not yet given, in increasing position (given from
    /// the end).
    held: Vec<(u64, u8)>,
    rest: Option<std::iter::Rev<GroupRange<'a>>>,
}

impl Iterator for Backward<'_> {
    type Item = Result<(u64, u8), ReadFault>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Done => None,
            Self::Entries(range) => Some(entry_of(range.next()?)),
            Self::Groups(groups) => loop {
                if let Some((seq, bits)) = groups.held.pop() {
                    if seq > groups.to {
                        continue;
                    }
                    return Some(Ok((seq, bits)));
                }
                let (cluster, check_key) = (groups.cluster, groups.check_key);
                if let Err(error) =
                    next_group(&mut groups.rest, cluster, check_key, &mut groups.held)?
                {
                    return Some(Err(error));
                }
            },
        }
    }
}

/// Entries copied per commit by [`copy_entries_up_to`].
const COPY_CHUNK: usize = 1_000_000;

/// Copies the entries of `source` at positions up to `base` into the `finding_groups` of
/// `target`: a rebuild's new file (the entries before its base), or the store itself (the
/// upgrade to layout 9, reading `by_finding` in a read transaction of it). In chunks of
/// [`COPY_CHUNK`] entries, a durable commit each (redb reuses the pages a commit frees only
/// once a durable commit follows it); `progress` counts the entries read, once per chunk. A
/// group of `source` that does not decode cannot be split at `base`: it is left out, with a
/// warning (`tidemark verify` of the source lists it).
pub(super) fn copy_entries_up_to(
    source: &FindingIndex,
    target: &redb::Database,
    base: u64,
    progress: &mut impl FnMut(u64),
) -> Result<(), StorageFault> {
    let mut pending: Vec<(String, String, u64, u8)> = Vec::new();
    let write = |pending: &mut Vec<(String, String, u64, u8)>| -> Result<(), StorageFault> {
        let txn = super::write_txn::begin(target)?;
        {
            let mut table = txn.open_table(tables::FINDING_GROUPS)?;
            let mut writer = GroupWriter::default();
            for (cluster, check_key, seq, bits) in pending.drain(..) {
                writer.push(&mut table, &cluster, &check_key, seq, bits)?;
            }
            writer.flush(&mut table)?;
        }
        txn.commit()?;
        Ok(())
    };
    let mut read = 0u64;
    source.for_each(
        |cluster, check_key, seq, bits| {
            read += 1;
            if seq <= base {
                pending.push((cluster.to_owned(), check_key.to_owned(), seq, bits));
                if pending.len() == COPY_CHUNK {
                    write(&mut pending)?;
                    progress(std::mem::take(&mut read));
                }
            }
            Ok(())
        },
        |record| tracing::warn!(%record, "a finding group that does not decode is not copied"),
    )?;
    write(&mut pending)?;
    progress(read);
    Ok(())
}

/// Drops the finding index entries before `cut` (retention, in its transaction `txn`): a
/// group that starts before the cut goes, and its entries from the cut on are written again
/// under the first of them. A group that does not decode is kept (never removed on a guess:
/// `tidemark verify` lists it).
pub(super) fn cut_groups_before(
    txn: &redb::WriteTransaction,
    cut: u64,
) -> Result<(), StorageFault> {
    let mut table = txn.open_table(tables::FINDING_GROUPS)?;
    let mut straddling: Vec<FindingEntries> = Vec::new();
    let mut entries = Vec::new();
    table.retain(|(cluster, check_key, first), value| {
        if first >= cut {
            return true;
        }
        if decode_group(cluster, check_key, first, value, &mut entries).is_err() {
            return true;
        }
        let after: Vec<(u64, u8)> = entries
            .iter()
            .copied()
            .filter(|(seq, _)| *seq >= cut)
            .collect();
        if !after.is_empty() {
            straddling.push((cluster.to_owned(), check_key.to_owned(), after));
        }
        false
    })?;
    let mut buffer = Vec::new();
    for (cluster, check_key, after) in &straddling {
        write_groups(&mut table, cluster, check_key, after, &mut buffer)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
