//! `finding_groups` values (store layout 9, issue 20): the finding index entries of one finding
//! for a run of positions (those one batch changed or named it at, up to
//! [`FINDING_GROUP_MAX_ENTRIES`]), in one value under the run's first position.
//!
//! Format 1 is the checksummed envelope of the other records (`[version][CRC-32C][postcard
//! body]`), the CRC-32C taken over the key in the form of [`history_key_bytes`] (cluster,
//! check key, first position), the version byte and the body. The body is a postcard list of
//! `(delta, change bits)`, a delta being the entry's position minus the one before it (the
//! first entry's is 0: its position is the key's); postcard writes each delta as a varint, so
//! an entry usually takes two bytes. Positions strictly increase within a value, and the values
//! of one finding hold disjoint runs: a read from position p opens at most one value that starts
//! before p.

use super::{CodecError, decode_body, history_key_bytes, seal_with_key, unseal_with_key};

/// Format version of `finding_groups` values.
pub const FINDING_GROUP_FORMAT: u8 = 1;

/// The most entries one value holds: a batch that changes a finding more often writes several
/// values for it, so a read from any position decodes at most this many entries it does not
/// return. 64 entries take about 130 bytes.
pub const FINDING_GROUP_MAX_ENTRIES: usize = 64;

/// Encodes the entries `(position, change bits)` of `check_key` in `cluster` into `out`
/// (cleared first), for the key `(cluster, check_key, entries[0].0)`. The positions must
/// strictly increase, and there must be at least one.
pub fn encode_finding_group(
    cluster: &str,
    check_key: &str,
    entries: &[(u64, u8)],
    out: &mut Vec<u8>,
) {
    let first = entries.first().expect("a group holds at least one entry").0;
    let mut previous = first;
    let body: Vec<(u64, u8)> = entries
        .iter()
        .map(|&(seq, bits)| {
            debug_assert!(seq >= previous, "positions increase within a group");
            let delta = seq - previous;
            previous = seq;
            (delta, bits)
        })
        .collect();
    seal_with_key(
        FINDING_GROUP_FORMAT,
        &history_key_bytes(cluster, check_key, &[first]),
        &body,
        out,
    );
}

/// Decodes the `finding_groups` value under `(cluster, check_key, first)` into its entries
/// `(position, change bits)`, appended to `out` in increasing position. Refused: damage (the
/// checksum), a value moved under another key, an empty list, a first delta other than 0, a
/// later one of 0 (positions must increase) or one past the largest position.
pub fn decode_finding_group(
    cluster: &str,
    check_key: &str,
    first: u64,
    bytes: &[u8],
    out: &mut Vec<(u64, u8)>,
) -> Result<(), CodecError> {
    let body = match bytes.first() {
        None => return Err(CodecError::Empty),
        Some(&FINDING_GROUP_FORMAT) => {
            unseal_with_key(&history_key_bytes(cluster, check_key, &[first]), bytes)?
        }
        Some(&found) => {
            return Err(CodecError::UnknownFormat {
                found,
                expected: FINDING_GROUP_FORMAT,
            });
        }
    };
    let deltas: Vec<(u64, u8)> = decode_body(body)?;
    let invalid = |what: &str| CodecError::Postcard(format!("a finding group {what}"));
    match deltas.first() {
        None => return Err(invalid("holds no entry")),
        Some((0, _)) => {}
        Some(_) => return Err(invalid("does not start at its key's position")),
    }
    let mut seq = first;
    for (i, (delta, bits)) in deltas.into_iter().enumerate() {
        if i > 0 {
            if delta == 0 {
                return Err(invalid("repeats a position"));
            }
            seq = seq
                .checked_add(delta)
                .ok_or_else(|| invalid("names a position past the largest"))?;
        }
        out.push((seq, bits));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(first: u64, bytes: &[u8]) -> Result<Vec<(u64, u8)>, CodecError> {
        let mut out = Vec::new();
        decode_finding_group("c", "k", first, bytes, &mut out).map(|()| out)
    }

    #[test]
    fn a_group_round_trips_with_varint_deltas() {
        let entries = [(7, 2), (8, 4), (300, 1), (u64::MAX, 128)];
        let mut bytes = Vec::new();
        encode_finding_group("c", "k", &entries, &mut bytes);
        assert_eq!(decoded(7, &bytes).unwrap(), entries);
        // Small steps take one byte of delta and one of bits.
        let mut small = Vec::new();
        let run: Vec<(u64, u8)> = (1000..1064).map(|s| (s, 2)).collect();
        encode_finding_group("c", "k", &run, &mut small);
        assert_eq!(small.len(), 1 + 4 + 1 + 64 * 2);
    }

    #[test]
    fn a_group_under_another_key_or_damaged_is_refused() {
        let mut bytes = Vec::new();
        encode_finding_group("c", "k", &[(7, 2), (9, 4)], &mut bytes);
        assert!(matches!(
            decoded(8, &bytes),
            Err(CodecError::ChecksumMismatch { .. })
        ));
        let mut out = Vec::new();
        assert!(decode_finding_group("c", "other", 7, &bytes, &mut out).is_err());
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(decoded(7, &bytes).is_err());
        assert!(matches!(decoded(7, &[]), Err(CodecError::Empty)));
        assert!(matches!(
            decoded(7, &[9, 0, 0, 0, 0]),
            Err(CodecError::UnknownFormat { found: 9, .. })
        ));
    }

    #[test]
    fn a_group_that_breaks_its_rules_is_refused_even_with_a_good_checksum() {
        let key = history_key_bytes("c", "k", &[7]);
        for (body, why) in [
            (vec![], "holds no entry"),
            (vec![(1u64, 2u8)], "does not start"),
            (vec![(0, 2), (0, 4)], "repeats a position"),
            (vec![(0, 2), (u64::MAX, 4)], "past the largest"),
        ] {
            let mut bytes = Vec::new();
            seal_with_key(FINDING_GROUP_FORMAT, &key, &body, &mut bytes);
            let error = decoded(7, &bytes).unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
        }
    }
}
