//! Event time: an instant in UTC, parsed from and printed as RFC 3339.
//!
//! Producers may send any offset; the store keeps the instant (nanoseconds since the Unix epoch)
//! and prints it in UTC with `Z`, so two events at the same instant compare equal whatever
//! offset their producers used.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The first year an event time may name (as written, before its offset is applied). Instants
/// are i64 nanoseconds, which reach from 1677-09-21 to 2262-04-11: whole years inside that
/// range, with any offset, are always representable.
pub const FIRST_YEAR: i32 = 1678;
/// The last year an event time may name.
pub const LAST_YEAR: i32 = 2261;
/// The JSON Schema `pattern` (with `format: date-time`) of an event time: years
/// [`FIRST_YEAR`]..=[`LAST_YEAR`], `T` or `t` between date and time, seconds 00..59.
pub const TIME_PATTERN: &str = "^(1(6(7[89]|[89][0-9])|[7-9][0-9]{2})|2([01][0-9]{2}|2([0-5][0-9]|6[01])))-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9]";

/// An instant, as nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Why a string is not an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 time such as 2026-03-02T14:03:53Z, got {input:?} ({reason})")]
pub struct TimestampError {
    /// The text that was given.
    pub input: String,
    /// What the parser objected to.
    pub reason: String,
}

impl Timestamp {
    /// The instant `nanos` nanoseconds after the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// The instant `secs` seconds after the Unix epoch.
    pub const fn from_unix_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// This instant moved by `secs` seconds (saturating at the ends of the range).
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1_000_000_000)))
    }

    /// The time from `earlier` to this instant, zero when `earlier` is later. Exact over the
    /// whole range: two instants can be further apart than an `i64` of nanoseconds holds
    /// (1677 to 2262), so the difference is taken in `i128` and never overflows.
    pub fn saturating_duration_since(self, earlier: Self) -> std::time::Duration {
        let nanos = i128::from(self.0) - i128::from(earlier.0);
        u64::try_from(nanos).map_or(std::time::Duration::ZERO, std::time::Duration::from_nanos)
    }

    /// Parses RFC 3339 (`2026-03-02T14:03:53Z`, `2026-03-02T16:03:53.5+02:00`): a `T` (or `t`)
    /// between date and time, an offset or `Z`, seconds up to 59 (no leap second), and a year
    /// from [`FIRST_YEAR`] to [`LAST_YEAR`] (what [`TIME_PATTERN`] states for JSON Schema).
    pub fn parse_rfc3339(input: &str) -> Result<Self, TimestampError> {
        let fail = |reason: String| TimestampError {
            input: input.to_owned(),
            reason,
        };
        let bytes = input.as_bytes();
        if bytes.len() >= 11 && !matches!(bytes[10], b'T' | b't') {
            return Err(fail("date and time must be joined by `T`".to_owned()));
        }
        if bytes.len() >= 19 && bytes[17] == b'6' {
            return Err(fail(
                "seconds run from 00 to 59 (no leap second)".to_owned(),
            ));
        }
        let parsed = OffsetDateTime::parse(input, &Rfc3339).map_err(|e| fail(e.to_string()))?;
        if !(FIRST_YEAR..=LAST_YEAR).contains(&parsed.year()) {
            return Err(fail(format!(
                "outside the years {FIRST_YEAR}..={LAST_YEAR}"
            )));
        }
        let nanos = parsed.unix_timestamp_nanos();
        i64::try_from(nanos)
            .map(Self)
            .map_err(|_| fail(format!("outside the years {FIRST_YEAR}..={LAST_YEAR}")))
    }

    /// RFC 3339 in UTC with `Z`; fractional seconds only when there are any.
    pub fn to_rfc3339(self) -> String {
        let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0))
            .expect("every i64 nanosecond count is a valid OffsetDateTime")
            .to_offset(UtcOffset::UTC);
        utc.format(&Rfc3339)
            .expect("years 1678..=2262 always format as RFC 3339")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_rfc3339(s)
    }
}

/// Human-readable formats (JSON) carry the RFC 3339 string; compact ones (postcard) the i64.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_rfc3339())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = Cow::<'de, str>::deserialize(deserializer)?;
            Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(deserializer).map(Self)
        }
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "pattern": TIME_PATTERN,
            "description": "RFC 3339 time with an offset or Z, years 1678 to 2261"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_to_the_same_instant() {
        let z = Timestamp::parse_rfc3339("2026-03-02T14:03:53Z").unwrap();
        let plus2 = Timestamp::parse_rfc3339("2026-03-02T16:03:53+02:00").unwrap();
        assert_eq!(z, plus2);
        assert_eq!(plus2.to_rfc3339(), "2026-03-02T14:03:53Z");
    }

    #[test]
    fn keeps_fractional_seconds() {
        let t = Timestamp::parse_rfc3339("2026-03-02T14:03:53.250Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-02T14:03:53.25Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn durations_span_the_whole_range_without_overflow() {
        let (min, max) = (Timestamp(i64::MIN), Timestamp(i64::MAX));
        assert_eq!(
            max.saturating_duration_since(min),
            std::time::Duration::from_nanos(u64::MAX)
        );
        assert_eq!(
            min.saturating_duration_since(max),
            std::time::Duration::ZERO
        );
        let epoch = Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap();
        let late = Timestamp::parse_rfc3339("2261-12-31T23:59:59Z").unwrap();
        assert_eq!(
            late.saturating_duration_since(epoch).as_secs(),
            late.unix_nanos() as u64 / 1_000_000_000
        );
        // Both ends print and read back (stores written before the year bound may hold them).
        assert_eq!(min.to_rfc3339(), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(max.to_rfc3339(), "2262-04-11T23:47:16.854775807Z");
    }

    #[test]
    fn years_are_bounded_so_that_every_offset_is_representable() {
        for ok in [
            "1678-01-01T00:00:00+23:59",
            "2261-12-31T23:59:59-23:59",
            "2261-12-31T23:59:59.999999999Z",
        ] {
            assert!(Timestamp::parse_rfc3339(ok).is_ok(), "{ok}");
        }
        for out in [
            "1677-12-31T23:59:59Z",
            "2262-01-01T00:00:00Z",
            "1677-09-21T00:12:43.145224192Z",
            "2262-04-11T23:47:16.854775807Z",
        ] {
            let err = Timestamp::parse_rfc3339(out).unwrap_err();
            assert!(err.to_string().contains("1678..=2261"), "{err}");
        }
    }

    #[test]
    fn rejects_garbage_with_the_input_named() {
        for bad in [
            "yesterday",
            "2026-03-02",
            "2026-03-02T14:03:53",
            "2026-13-02T14:03:53Z",
            "2026-03-02 14:03:53Z",
            "2026-12-31T23:59:60Z",
            "1677-12-31T23:59:59Z",
            "2262-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let err = Timestamp::parse_rfc3339(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
