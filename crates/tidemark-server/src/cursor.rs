//! Cursors of the paged lists: the sort key of the last item of a page, part by part.
//!
//! A key is a tuple in the list's order (`(cluster, check_key)`, `(opened_seq, id)`, ...). Its
//! cursor is the parts joined by `.`: a string as the lowercase hex of its UTF-8 bytes, a number
//! in decimal. Hex has no `.` and no NUL, so any string, NUL and all, keeps its place: a cursor
//! decodes to exactly the tuple it was made from, and the list resumes at the first item whose
//! key is greater. The grammar is each list's OpenAPI `pattern`, and every string that matches
//! it is a position in that list's order (hex that is not UTF-8 reads as the replacement
//! character; a number past the type's range as its end), so a cursor is refused (a 400 naming
//! the parameter) exactly when it does not match.

use std::fmt::Write as _;

use tidemark_core::flaps::FlapDetector;
use tidemark_core::orphans::{OrphanKind, OrphanOrder};

use crate::error::ApiError;

/// One part of a sort key.
trait Part: Sized {
    /// Its cursor text, as a regular expression (the tests check the documented patterns).
    #[cfg(test)]
    const PATTERN: &'static str;
    fn encode_into(&self, out: &mut String);
    fn decode(text: &str) -> Option<Self>;
}

impl Part for String {
    #[cfg(test)]
    const PATTERN: &'static str = "([0-9a-f]{2})*";

    fn encode_into(&self, out: &mut String) {
        for byte in self.bytes() {
            let _ = write!(out, "{byte:02x}");
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let hex = text.as_bytes();
        if !hex.len().is_multiple_of(2) {
            return None;
        }
        let bytes = hex
            .chunks(2)
            .map(|pair| Some(digit(pair[0])? * 16 + digit(pair[1])?))
            .collect::<Option<Vec<u8>>>()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Decimal digits, at most `max_digits` of them.
fn digits(text: &str, max_digits: usize) -> Option<u128> {
    let valid = (1..=max_digits).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| text.parse().ok()).flatten()
}

impl Part for u64 {
    #[cfg(test)]
    const PATTERN: &'static str = "[0-9]{1,20}";

    fn encode_into(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }

    fn decode(text: &str) -> Option<Self> {
        digits(text, 20).map(|n| u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl Part for i64 {
    #[cfg(test)]
    const PATTERN: &'static str = "-?[0-9]{1,19}";

    fn encode_into(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }

    fn decode(text: &str) -> Option<Self> {
        let (negative, magnitude) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let magnitude = i128::try_from(digits(magnitude, 19)?).ok()?;
        let value = if negative { -magnitude } else { magnitude };
        Some(i64::try_from(value).unwrap_or(if negative { i64::MIN } else { i64::MAX }))
    }
}

impl Part for FlapDetector {
    #[cfg(test)]
    const PATTERN: &'static str = "(count|state_change)";

    fn encode_into(&self, out: &mut String) {
        out.push_str(self.as_str());
    }

    fn decode(text: &str) -> Option<Self> {
        match text {
            "count" => Some(Self::Count),
            "state_change" => Some(Self::StateChange),
            _ => None,
        }
    }
}

impl Part for OrphanKind {
    #[cfg(test)]
    const PATTERN: &'static str = "(unmanaged|ghost|dangling|orphan_span|rootless_trace)";

    fn encode_into(&self, out: &mut String) {
        out.push_str(self.as_str());
    }

    fn decode(text: &str) -> Option<Self> {
        [
            Self::Unmanaged,
            Self::Ghost,
            Self::Dangling,
            Self::OrphanSpan,
            Self::RootlessTrace,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// A sort key a cursor can carry.
pub(crate) trait CursorKey: Sized {
    /// The parts of its cursor.
    fn encode_parts(&self, out: &mut String);
    /// The key of a cursor's parts; `None` when they are not this key's.
    fn decode_parts(parts: &[&str]) -> Option<Self>;
    /// The grammar of its cursors (a regular expression).
    #[cfg(test)]
    fn pattern() -> String;
}

macro_rules! cursor_key {
    ($($part:ident $text:ident $index:tt),+) => {
        impl<$($part: Part),+> CursorKey for ($($part,)+) {
            fn encode_parts(&self, out: &mut String) {
                let parts: Vec<String> = vec![$({
                    let mut text = String::new();
                    self.$index.encode_into(&mut text);
                    text
                }),+];
                out.push_str(&parts.join("."));
            }

            fn decode_parts(parts: &[&str]) -> Option<Self> {
                match parts {
                    [$($text),+] => Some(($($part::decode($text)?,)+)),
                    _ => None,
                }
            }

            #[cfg(test)]
            fn pattern() -> String {
                let parts: Vec<&str> = vec![$($part::PATTERN),+];
                format!("^{}$", parts.join("\\."))
            }
        }
    };
}

cursor_key!(A a 0, B b 1);
cursor_key!(A a 0, B b 1, C c 2);
cursor_key!(A a 0, B b 1, C c 2, D d 3, E e 4);

/// Cursors of lists sorted by (cluster, check_key): findings, flaps.
pub const FINDING_CURSOR_PATTERN: &str = r"^([0-9a-f]{2})*\.([0-9a-f]{2})*$";
/// Cursors of orphans, sorted by (cluster, kind, subject, detail, position judged at).
pub const ORPHAN_CURSOR_PATTERN: &str = r"^([0-9a-f]{2})*\.(unmanaged|ghost|dangling|orphan_span|rootless_trace)\.([0-9a-f]{2})*\.([0-9a-f]{2})*\.[0-9]{1,20}$";
/// Cursors of incidents, sorted by (opened_seq, id).
pub const INCIDENT_CURSOR_PATTERN: &str = r"^[0-9]{1,20}\.([0-9a-f]{2})*$";
/// Cursors of a finding's flap episodes, by (started_seq, detector).
pub const FLAP_EPISODE_CURSOR_PATTERN: &str = r"^[0-9]{1,20}\.(count|state_change)$";
/// Cursors of a cluster's timeline, sorted by (event time in Unix nanoseconds, position).
pub const TIMELINE_CURSOR_PATTERN: &str = r"^-?[0-9]{1,19}\.[0-9]{1,20}$";

/// The key of an orphans cursor: its cluster and `OrphanOrder`, part by part.
pub(crate) type OrphanKey = (String, OrphanKind, String, String, u64);

/// The cursor key of the orphan at `order` in `cluster`.
pub(crate) fn orphan_key(cluster: &str, order: OrphanOrder) -> OrphanKey {
    (
        cluster.to_owned(),
        order.kind,
        order.subject,
        order.detail,
        order.since_seq,
    )
}

/// The cluster and `OrphanOrder` of an orphans cursor key.
pub(crate) fn orphan_order(key: OrphanKey) -> (String, OrphanOrder) {
    let (cluster, kind, subject, detail, since_seq) = key;
    (
        cluster,
        OrphanOrder {
            kind,
            subject,
            detail,
            since_seq,
        },
    )
}

/// The cursor of `key`.
pub(crate) fn encode<K: CursorKey>(key: &K) -> String {
    let mut out = String::new();
    key.encode_parts(&mut out);
    out
}

/// The key in `cursor`, given as the query parameter `param`.
pub(crate) fn decode<K: CursorKey>(param: &str, cursor: &str) -> Result<K, ApiError> {
    let parts: Vec<&str> = cursor.split('.').collect();
    K::decode_parts(&parts).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`{param}`: not a cursor of this list; pass the `next` of the previous page, or leave `{param}` out to start from the beginning"
        ))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type FindingKey = (String, String);
    type OrphanKey = crate::cursor::OrphanKey;
    type IncidentKey = (u64, String);
    type TimelineKey = (i64, u64);
    type FlapEpisodeKey = (u64, FlapDetector);

    #[test]
    fn the_documented_patterns_are_the_grammars_of_the_keys() {
        assert_eq!(FindingKey::pattern(), FINDING_CURSOR_PATTERN);
        assert_eq!(OrphanKey::pattern(), ORPHAN_CURSOR_PATTERN);
        assert_eq!(IncidentKey::pattern(), INCIDENT_CURSOR_PATTERN);
        assert_eq!(TimelineKey::pattern(), TIMELINE_CURSOR_PATTERN);
        assert_eq!(FlapEpisodeKey::pattern(), FLAP_EPISODE_CURSOR_PATTERN);
    }

    #[test]
    fn nul_and_separators_stay_inside_their_string() {
        let keys: Vec<FindingKey> = [
            ("a\u{0}b", "c"),
            ("a", "b\u{0}c"),
            ("a", "\u{0}"),
            ("a.b", ""),
            ("", ""),
        ]
        .iter()
        .map(|(c, k)| (c.to_string(), k.to_string()))
        .collect();
        let cursors: Vec<String> = keys.iter().map(encode).collect();
        assert_eq!(cursors[0], "610062.63");
        assert_eq!(cursors[4], ".");
        for (key, cursor) in keys.iter().zip(&cursors) {
            assert_eq!(&decode::<FindingKey>("after", cursor).unwrap(), key);
        }
        assert_eq!(
            encode(&(i64::MIN, u64::MAX)),
            "-9223372036854775808.18446744073709551615"
        );
        let ends: TimelineKey =
            decode("after", "-9223372036854775808.18446744073709551615").unwrap();
        assert_eq!(ends, (i64::MIN, u64::MAX));
    }

    #[test]
    fn malformed_cursors_are_refused_naming_the_parameter() {
        for bad in [
            "", "zz", "6", "61", "61.62.63", "6A.62", "61.62 ", "%00", "-1.6a", "1.2.3",
        ] {
            let error = decode::<FindingKey>("after", bad).unwrap_err();
            assert!(
                error.message.contains("`after`"),
                "{bad}: {}",
                error.message
            );
        }
        for bad in [
            "",
            "1",
            "a.1",
            "1.-1",
            "01234567890123456789.1",
            "1.123456789012345678901",
            "+1.2",
        ] {
            assert!(decode::<TimelineKey>("after", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_past_their_range_are_the_end_of_it() {
        let key: TimelineKey =
            decode("after", "-9999999999999999999.99999999999999999999").unwrap();
        assert_eq!(key, (i64::MIN, u64::MAX));
        let key: TimelineKey = decode("after", "9999999999999999999.0").unwrap();
        assert_eq!(key, (i64::MAX, 0));
    }

    /// Any string matching a list's pattern is a position of that list (a 2xx, never a 400).
    #[test]
    fn every_cursor_the_patterns_allow_decodes() {
        fn check<K: CursorKey + std::fmt::Debug>(pattern: &str) {
            let unanchored = pattern.trim_start_matches('^').trim_end_matches('$');
            let strategy = proptest::string::string_regex(unanchored).unwrap();
            crate::property::assert_property(pattern, 500, strategy, |cursor| {
                prop_assert!(decode::<K>("after", &cursor).is_ok(), "{cursor:?}");
                Ok(())
            });
        }
        check::<FindingKey>(FINDING_CURSOR_PATTERN);
        check::<OrphanKey>(ORPHAN_CURSOR_PATTERN);
        check::<IncidentKey>(INCIDENT_CURSOR_PATTERN);
        check::<TimelineKey>(TIMELINE_CURSOR_PATTERN);
        check::<FlapEpisodeKey>(FLAP_EPISODE_CURSOR_PATTERN);
        for bad in ["1.Count", "1.", "1.statechange", "x.count"] {
            assert!(decode::<FlapEpisodeKey>("after", bad).is_err(), "{bad}");
        }
        let key: FlapEpisodeKey =
            decode("after", &encode(&(7_u64, FlapDetector::StateChange))).unwrap();
        assert_eq!(key, (7, FlapDetector::StateChange));
    }

    /// Any key comes back from its cursor, and cursors keep the order of their keys.
    #[test]
    fn any_key_round_trips_and_keeps_its_order() {
        let key = || (any::<String>(), any::<String>());
        crate::property::assert_property("cursor", 2_000, (key(), key()), |(a, b)| {
            let back_a: FindingKey = decode("after", &encode(&a)).unwrap();
            let back_b: FindingKey = decode("after", &encode(&b)).unwrap();
            prop_assert_eq!(&back_a, &a);
            prop_assert_eq!(back_a.cmp(&back_b), a.cmp(&b));
            Ok(())
        });
        let key = || (any::<i64>(), any::<u64>());
        crate::property::assert_property("timeline cursor", 2_000, (key(), key()), |(a, b)| {
            let back_a: TimelineKey = decode("after", &encode(&a)).unwrap();
            prop_assert_eq!(back_a, a);
            prop_assert_eq!(back_a.cmp(&b), a.cmp(&b));
            Ok(())
        });
    }
}
