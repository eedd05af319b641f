//! Change records (ADR 0008): what the projections drew from the event at one position, as the
//! `changes` table holds them, in `tidemark replay --step` order.
//!
//! Format 1 is the checksummed envelope of the other records (`[version][CRC-32C][postcard
//! body]`), the CRC-32C taken over the position (8 bytes, little-endian), the version byte and
//! the body. The body is a list of `(part, subject, change)`: the part as its place in
//! `tidemark_core::changes::PARTS` (appended only), the subject and the text of the change as
//! `--step` says them. The text is stored as said rather than as typed values: a change to how
//! `--step` words a change does not change what a past position's record says (the record is
//! what the stream said then), and `tidemark rebuild` writes every record anew under the
//! build's words. A position without changes has no record.

use tidemark_core::changes::Change;

use super::{COMPRESS_FROM, CodecError, compressed, decode_body, unseal_with_key};

/// Format version of change records. Format 1: the checksummed envelope over the position.
/// Format 2 is format 1's body compressed ([`CHANGES_FORMAT_COMPRESSED`]).
pub const CHANGES_FORMAT: u8 = 1;
/// Format version of large change records: format 1's body compressed (`codec::compressed`),
/// written for a body of at least [`COMPRESS_FROM`] bytes from store layout 8 on (a cycle's
/// record of about 9 KB is stored in about 1.3 KB, so it shares a page with others).
pub const CHANGES_FORMAT_COMPRESSED: u8 = 2;

/// One stored change: its part's place in `PARTS`, its subject, what happened to it.
type StoredChange<'a> = (u8, &'a str, &'a str);

/// Encodes the changes of the event at `seq` into `out` (cleared first): format 1, or format 2
/// (compressed) when its body takes at least [`COMPRESS_FROM`] bytes.
pub fn encode_changes(seq: u64, changes: &[Change], out: &mut Vec<u8>) {
    encode_changes_from(seq, changes, COMPRESS_FROM, out);
}

/// [`encode_changes`] compressing whatever the body's size (the golden records of format 2,
/// tests).
pub fn encode_changes_compressed(seq: u64, changes: &[Change], out: &mut Vec<u8>) {
    encode_changes_from(seq, changes, 0, out);
}

/// Encodes the changes, compressed when the body takes at least `from` bytes.
fn encode_changes_from(seq: u64, changes: &[Change], from: usize, out: &mut Vec<u8>) {
    let body: Vec<StoredChange<'_>> = changes
        .iter()
        .map(|c| (c.part_index(), c.subject.as_str(), c.change.as_str()))
        .collect();
    compressed::seal_compressing(
        (CHANGES_FORMAT, CHANGES_FORMAT_COMPRESSED),
        &seq.to_le_bytes(),
        &body,
        from,
        out,
    );
}

/// Decodes the `changes` record under `seq` (checked against its checksum, so a record moved
/// under another position is refused).
pub fn decode_changes(seq: u64, bytes: &[u8]) -> Result<Vec<Change>, CodecError> {
    let stored: Vec<(u8, String, String)> = match bytes.first() {
        None => return Err(CodecError::Empty),
        Some(&CHANGES_FORMAT) => decode_body(unseal_with_key(&seq.to_le_bytes(), bytes)?)?,
        Some(&CHANGES_FORMAT_COMPRESSED) => decode_body(&compressed::decompress(
            unseal_with_key(&seq.to_le_bytes(), bytes)?,
        )?)?,
        Some(&found) => {
            return Err(CodecError::UnknownFormat {
                found,
                expected: CHANGES_FORMAT_COMPRESSED,
            });
        }
    };
    stored
        .into_iter()
        .map(|(part, subject, change)| {
            Change::of_part(part, subject, change).ok_or_else(|| {
                CodecError::Postcard(format!(
                    "change part {part} is not one this build knows: upgrade tidemark"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> Vec<Change> {
        vec![
            Change::of_part(0, "pw-prod a:b".into(), "opened (warning)".into()).unwrap(),
            Change::of_part(7, "auto-pw-prod-1".into(), "open → closed".into()).unwrap(),
        ]
    }

    #[test]
    fn a_record_reads_back_only_under_its_position() {
        let mut bytes = Vec::new();
        encode_changes(41, &changes(), &mut bytes);
        assert_eq!(decode_changes(41, &bytes).unwrap(), changes());
        assert!(matches!(
            decode_changes(42, &bytes),
            Err(CodecError::ChecksumMismatch { .. })
        ));
        bytes[0] = CHANGES_FORMAT_COMPRESSED + 1;
        assert!(matches!(
            decode_changes(41, &bytes),
            Err(CodecError::UnknownFormat { .. })
        ));
        assert!(matches!(decode_changes(41, &[]), Err(CodecError::Empty)));
    }
}
