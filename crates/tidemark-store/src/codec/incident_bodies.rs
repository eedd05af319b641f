//! Incident body rows (ADR 0006, step 4): the versions of incidents that were not open when
//! the fold wrote them out, as the `incident_bodies` table holds them
//! (`tidemark_core::incident_bodies` says what they mean).
//!
//! Format 1 is the checksummed envelope of the other records (`[version][CRC-32C][postcard
//! body]`), the CRC-32C taken over the row's table key (in the byte form of
//! [`body_key_bytes`]), the version byte and the body, a `BodyRow` (the incident's number and
//! the incident without its timeline). A row moved under another incident or position fails
//! [`CodecError::ChecksumMismatch`], and a row whose incident says it has another id is
//! refused.

use tidemark_core::incident_bodies::BodyRow;

use super::{CodecError, decode_body, seal_with_key, unseal_with_key};

/// Format version of `incident_bodies` rows. Format 1: the checksummed envelope, over the
/// tuple key's bytes.
pub const BODY_ROW_FORMAT: u8 = 1;

/// The bytes an `incident_bodies` key enters its row's checksum as: the incident id's length
/// (8 bytes, little-endian) and bytes, then the position written at (8 bytes, little-endian).
pub fn body_key_bytes(incident: &str, written_at: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + incident.len());
    out.extend_from_slice(&(incident.len() as u64).to_le_bytes());
    out.extend_from_slice(incident.as_bytes());
    out.extend_from_slice(&written_at.to_le_bytes());
    out
}

/// Encodes body row `(incident, written_at)` into `out` (cleared first).
pub fn encode_body_row(incident: &str, written_at: u64, row: &BodyRow, out: &mut Vec<u8>) {
    seal_with_key(
        BODY_ROW_FORMAT,
        &body_key_bytes(incident, written_at),
        row,
        out,
    );
}

/// Decodes the body row under `(incident, written_at)`.
pub fn decode_body_row(
    incident: &str,
    written_at: u64,
    bytes: &[u8],
) -> Result<BodyRow, CodecError> {
    let body = match bytes.first() {
        None => return Err(CodecError::Empty),
        Some(&BODY_ROW_FORMAT) => unseal_with_key(&body_key_bytes(incident, written_at), bytes)?,
        Some(&found) => {
            return Err(CodecError::UnknownFormat {
                found,
                expected: BODY_ROW_FORMAT,
            });
        }
    };
    let row: BodyRow = decode_body(body)?;
    if row.incident.id != incident {
        return Err(CodecError::Inconsistent(format!(
            "the row says it is incident {:?}",
            row.incident.id
        )));
    }
    Ok(row)
}
