//! Incident timeline rows (ADR 0006, step 3): the entries an incident wrote out and each
//! write-out's header, as the `incident_entries` table holds them
//! (`tidemark_core::timeline_rows` says what they mean).
//!
//! Format 1 is the checksummed envelope of the other records (`[version][CRC-32C][postcard
//! body]`), the CRC-32C taken over the row's table key (in the byte form of
//! [`entry_key_bytes`]), the version byte and the body. The key is (incident id, entry
//! position, position written at); entry position 0 is a write-out's header, whose body is a
//! `WriteOutHeader` (`visible_from`, `count`); any other row's body is an `EntryRow` (`at`,
//! `touches`). A row moved under another incident or position fails
//! [`CodecError::ChecksumMismatch`].

use tidemark_core::timeline_rows::{EntryRow, WriteOutHeader};

use super::{CodecError, decode_body, seal_with_key, unseal_with_key};

/// Format version of `incident_entries` rows (entries and headers alike). Format 1: the
/// checksummed envelope, over the tuple key's bytes.
pub const TIMELINE_ROW_FORMAT: u8 = 1;

/// The bytes an `incident_entries` key enters its row's checksum as: the incident id's length
/// (8 bytes, little-endian) and bytes, then the entry position and the position written at (8
/// bytes each, little-endian).
pub fn entry_key_bytes(incident: &str, seq: u64, written_at: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + incident.len());
    out.extend_from_slice(&(incident.len() as u64).to_le_bytes());
    out.extend_from_slice(incident.as_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&written_at.to_le_bytes());
    out
}

/// Encodes entry row `(incident, seq, written_at)` into `out` (cleared first).
pub fn encode_entry_row(
    incident: &str,
    seq: u64,
    written_at: u64,
    row: &EntryRow,
    out: &mut Vec<u8>,
) {
    seal_with_key(
        TIMELINE_ROW_FORMAT,
        &entry_key_bytes(incident, seq, written_at),
        row,
        out,
    );
}

/// Decodes the entry row under `(incident, seq, written_at)`.
pub fn decode_entry_row(
    incident: &str,
    seq: u64,
    written_at: u64,
    bytes: &[u8],
) -> Result<EntryRow, CodecError> {
    decode_body(unseal_row(
        &entry_key_bytes(incident, seq, written_at),
        bytes,
    )?)
}

/// Encodes the header of `incident`'s write-out at `written_at` (key `(incident, 0,
/// written_at)`) into `out` (cleared first).
pub fn encode_write_out_header(
    incident: &str,
    written_at: u64,
    header: &WriteOutHeader,
    out: &mut Vec<u8>,
) {
    seal_with_key(
        TIMELINE_ROW_FORMAT,
        &entry_key_bytes(incident, 0, written_at),
        header,
        out,
    );
}

/// Decodes the header under `(incident, 0, written_at)`.
pub fn decode_write_out_header(
    incident: &str,
    written_at: u64,
    bytes: &[u8],
) -> Result<WriteOutHeader, CodecError> {
    decode_body(unseal_row(
        &entry_key_bytes(incident, 0, written_at),
        bytes,
    )?)
}

/// The body of a row, once its version and checksum are verified.
fn unseal_row<'a>(key: &[u8], bytes: &'a [u8]) -> Result<&'a [u8], CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&TIMELINE_ROW_FORMAT) => unseal_with_key(key, bytes),
        Some(&found) => Err(CodecError::UnknownFormat {
            found,
            expected: TIMELINE_ROW_FORMAT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use tidemark_core::Timestamp;
    use tidemark_core::incidents::Touch;

    use super::*;

    fn row() -> EntryRow {
        EntryRow {
            at: Timestamp::from_unix_secs(10),
            touches: vec![Touch {
                change: "incident_closed".into(),
                check_key: None,
            }],
        }
    }

    #[test]
    fn rows_round_trip_under_their_key_only() {
        let mut bytes = Vec::new();
        encode_entry_row("inc-1", 7, 9, &row(), &mut bytes);
        assert_eq!(bytes[0], TIMELINE_ROW_FORMAT);
        assert_eq!(decode_entry_row("inc-1", 7, 9, &bytes), Ok(row()));
        for (incident, seq, at) in [("inc-2", 7, 9), ("inc-1", 8, 9), ("inc-1", 7, 10)] {
            assert!(matches!(
                decode_entry_row(incident, seq, at, &bytes),
                Err(CodecError::ChecksumMismatch { .. })
            ));
        }
        let header = WriteOutHeader {
            visible_from: 3,
            count: 12,
        };
        encode_write_out_header("inc-1", 9, &header, &mut bytes);
        assert_eq!(decode_write_out_header("inc-1", 9, &bytes), Ok(header));
    }
}
