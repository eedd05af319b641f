//! History records (ADR 0006): a finding's closed occurrences and ended flap episodes, as the
//! `finding_occurrences` and `finding_flap_episodes` tables hold them.
//!
//! Format 1 is the checksummed envelope of the other records (`[version][CRC-32C][postcard
//! body]`), the CRC-32C taken over the record's table key, the version byte and the body. The
//! keys are tuples, so they enter the checksum in one fixed byte form ([`history_key_bytes`]):
//! a record moved under another cluster, check key, position or number fails
//! [`CodecError::ChecksumMismatch`]. An occurrence's body is `(number, Occurrence)` (its opening
//! position is in the key and in the occurrence); an episode's body is the `FlapEpisode` (its
//! number and starting position are in the key).

use tidemark_core::findings::Occurrence;
use tidemark_core::flaps::FlapEpisode;

use super::{CodecError, decode_body, seal_with_key, unseal_with_key};

/// Format version of history records (occurrences and flap episodes alike). Format 1: the
/// checksummed envelope, over the tuple key's bytes.
pub const HISTORY_FORMAT: u8 = 1;

/// The bytes a history record's key enters its checksum as: each string as its length (8 bytes,
/// little-endian) and its bytes, then each number as 8 bytes, little-endian. Lengths first, so
/// no two keys give the same bytes.
pub fn history_key_bytes(cluster: &str, check_key: &str, numbers: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + cluster.len() + check_key.len() + 8 * numbers.len());
    for text in [cluster, check_key] {
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    for number in numbers {
        out.extend_from_slice(&number.to_le_bytes());
    }
    out
}

/// Encodes occurrence `number` of `check_key` in `cluster` into `out` (cleared first), for the
/// key `(cluster, check_key, occurrence.opened_seq)` of `finding_occurrences`.
pub fn encode_occurrence(
    cluster: &str,
    check_key: &str,
    number: u64,
    occurrence: &Occurrence,
    out: &mut Vec<u8>,
) {
    let key = history_key_bytes(cluster, check_key, &[occurrence.opened_seq]);
    seal_with_key(HISTORY_FORMAT, &key, &(number, occurrence), out);
}

/// Decodes the `finding_occurrences` record under `(cluster, check_key, opened_seq)`: the
/// occurrence's number and the occurrence (checked against its checksum, and refused when it
/// says it opened at another position than its key).
pub fn decode_occurrence(
    cluster: &str,
    check_key: &str,
    opened_seq: u64,
    bytes: &[u8],
) -> Result<(u64, Occurrence), CodecError> {
    let key = history_key_bytes(cluster, check_key, &[opened_seq]);
    let (number, occurrence): (u64, Occurrence) = decode_body(unseal_history(&key, bytes)?)?;
    if occurrence.opened_seq != opened_seq {
        return Err(CodecError::WrongKey {
            found: occurrence.opened_seq,
        });
    }
    Ok((number, occurrence))
}

/// Encodes flap episode `number` of `check_key` in `cluster` into `out` (cleared first), for
/// the key `(cluster, check_key, episode.started_seq, number)` of `finding_flap_episodes`.
pub fn encode_flap_episode(
    cluster: &str,
    check_key: &str,
    number: u64,
    episode: &FlapEpisode,
    out: &mut Vec<u8>,
) {
    let key = history_key_bytes(cluster, check_key, &[episode.started_seq, number]);
    seal_with_key(HISTORY_FORMAT, &key, episode, out);
}

/// Decodes the `finding_flap_episodes` record under `(cluster, check_key, started_seq,
/// number)` (checked against its checksum, and refused when it says it started at another
/// position than its key).
pub fn decode_flap_episode(
    cluster: &str,
    check_key: &str,
    started_seq: u64,
    number: u64,
    bytes: &[u8],
) -> Result<FlapEpisode, CodecError> {
    let key = history_key_bytes(cluster, check_key, &[started_seq, number]);
    let episode: FlapEpisode = decode_body(unseal_history(&key, bytes)?)?;
    if episode.started_seq != started_seq {
        return Err(CodecError::WrongKey {
            found: episode.started_seq,
        });
    }
    Ok(episode)
}

/// The body of a history record, once its version and checksum are verified.
fn unseal_history<'a>(key: &[u8], bytes: &'a [u8]) -> Result<&'a [u8], CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&HISTORY_FORMAT) => unseal_with_key(key, bytes),
        Some(&found) => Err(CodecError::UnknownFormat {
            found,
            expected: HISTORY_FORMAT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use tidemark_core::Timestamp;
    use tidemark_core::findings::ResolutionKind;
    use tidemark_core::flaps::FlapDetector;

    use super::*;

    fn occurrence() -> Occurrence {
        Occurrence {
            opened_at: Timestamp::from_unix_secs(10),
            opened_seq: 17,
            resolved_at: Some(Timestamp::from_unix_secs(20)),
            resolved_seq: Some(23),
            resolution_kind: Some(ResolutionKind::Manual),
        }
    }

    fn episode() -> FlapEpisode {
        FlapEpisode {
            detector: FlapDetector::StateChange,
            started_at: Timestamp::from_unix_secs(10),
            started_seq: 17,
            start_figure: 412,
            stopped_at: Some(Timestamp::from_unix_secs(30)),
            stopped_seq: Some(40),
            stop_figure: Some(120),
        }
    }

    #[test]
    fn records_round_trip_under_their_key() {
        let mut bytes = Vec::new();
        encode_occurrence("c", "k", 3, &occurrence(), &mut bytes);
        assert_eq!(bytes[0], HISTORY_FORMAT);
        assert_eq!(
            decode_occurrence("c", "k", 17, &bytes),
            Ok((3, occurrence()))
        );
        encode_flap_episode("c", "k", 4, &episode(), &mut bytes);
        assert_eq!(decode_flap_episode("c", "k", 17, 4, &bytes), Ok(episode()));
    }

    /// Every flipped bit, and the record under any other part of its key, is refused.
    #[test]
    fn every_flipped_bit_and_a_moved_record_are_refused() {
        let mut occurrence_bytes = Vec::new();
        encode_occurrence("c", "k", 3, &occurrence(), &mut occurrence_bytes);
        let mut episode_bytes = Vec::new();
        encode_flap_episode("c", "k", 4, &episode(), &mut episode_bytes);
        for (cluster, key, seq) in [
            ("c", "k", 18),
            ("d", "k", 17),
            ("c", "j", 17),
            ("", "ck", 17),
        ] {
            assert!(decode_occurrence(cluster, key, seq, &occurrence_bytes).is_err());
            assert!(decode_flap_episode(cluster, key, seq, 4, &episode_bytes).is_err());
        }
        assert!(decode_flap_episode("c", "k", 17, 5, &episode_bytes).is_err());
        for bit in 0..occurrence_bytes.len() * 8 {
            let mut flipped = occurrence_bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_occurrence("c", "k", 17, &flipped).is_err(),
                "bit {bit}"
            );
        }
        for bit in 0..episode_bytes.len() * 8 {
            let mut flipped = episode_bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_flap_episode("c", "k", 17, 4, &flipped).is_err(),
                "bit {bit}"
            );
        }
    }

    /// A record sealed for its key but saying it opened elsewhere is refused by name.
    #[test]
    fn a_record_naming_another_position_than_its_key_is_refused() {
        let mut moved = occurrence();
        moved.opened_seq = 18;
        let mut bytes = Vec::new();
        let key = history_key_bytes("c", "k", &[17]);
        seal_with_key(HISTORY_FORMAT, &key, &(1u64, &moved), &mut bytes);
        assert_eq!(
            decode_occurrence("c", "k", 17, &bytes),
            Err(CodecError::WrongKey { found: 18 })
        );
    }
}
