//! Check-key hygiene: finding the parts of a `check_key` that change between cycles.
//!
//! A finding is identified by its `check_key` (`pod:crashloop:dnd/dnd-backend`,
//! `proxied:domain:42`, `pods:ns-17/app-42:crashloop`). A key built from something that changes
//! — an ephemeral pod UID, a port that varies across restarts, a slot index in state that gets
//! reordered — yields a new finding every cycle while the old one auto-resolves: the finding
//! flaps. [`analyze_check_key`] names the parts of a key that look unstable, suggests a stable
//! key and says what to key by instead; [`stable_name`] strips the generated suffixes of a
//! Kubernetes object name.
//!
//! The scanners are hand-written over the key's bytes (no regex), allocate nothing for a key
//! that looks stable, and are deterministic. Offsets are byte offsets into the key; every match
//! is ASCII and bounded by ASCII (or the ends of the key), so the offsets are char boundaries.
//!
//! # Rules
//!
//! Keys use `:` `/` ` ` `,` `;` `|` `=` `@` as separators; `-` `_` `.` join words of a name.
//! "Bounded" below means: not preceded or followed by an ASCII letter or digit.
//!
//! **Every rule needs at least one ASCII digit**, so a key made only of letters and separators
//! is never flagged (and a key without a digit is answered without scanning).
//!
//! - **UUID** — 8-4-4-4-12 hex digits, either case, bounded, with at least one digit:
//!   `pod:evicted:3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b` (a pod UID is new for every pod).
//!   *Exception*: `pvc-<uuid>`, the name a dynamic provisioner gives a PersistentVolume (and the
//!   Longhorn volume name). It is the volume's own name for its whole life, not a per-cycle
//!   value, so `longhorn:replica_faulted:pvc-3f2a1b4c-…` is stable and is not flagged.
//! - **ULID** — a bounded run of exactly 26 Crockford base-32 characters (no `I L O U`), one
//!   case, starting with `0`–`7`: `job:stuck:01ARZ3NDEKTSV4RRFFQ69G5FAV`.
//! - **Pod-template hash** — Kubernetes generates suffixes from the "safe" alphabet
//!   `bcdfghjklmnpqrstvwxz2456789` (no vowels, no `0 1 3`). At the end of a run of
//!   `[A-Za-z0-9-]` that starts with a letter or digit:
//!   - pod of a Deployment: `<name>-<6..10 safe, with a digit>-<5 safe>`
//!     (`dnd-backend-7f9d4b8c6-xk2p9`; a real hash is a decimal number mapped into the
//!     alphabet, so it practically always contains a digit);
//!   - pod of a CronJob's Job: `<name>-<8 digits>-<5 safe>` (`backup-29540160-x7k2q`; the
//!     8 digits are the scheduled minute since the epoch, new for every run);
//!   - ReplicaSet: `<name>-<8..10 safe, with a digit and a letter>` (`web-5d8f7c9b6`);
//!   - pod of a DaemonSet or Job: `<name>-<5 safe, with a digit and a letter>`
//!     (`fluentd-x7k2q`). Requiring both a digit and a letter keeps `app-42`, `ns-17`,
//!     `plex-config`, `redis-master` and `db-0` (StatefulSet ordinals) out; the price is that
//!     the ~22% of DaemonSet pod suffixes with no digit go unnoticed.
//! - **Timestamp** — bounded, year 1970..=2199, valid month/day/hour/minute/second:
//!   RFC 3339 / ISO 8601 date-times and dates in extended form (`2026-03-02T14:03:53Z`,
//!   `2026-03-02 14:03`, `2026-03-02`, with fractions and `Z`/`±hh:mm` offsets) and basic form
//!   (`20260302T140353Z`, `20260302140353`, `20260302`); Unix epoch seconds (10 digits,
//!   1e9..=4e9, optionally with a `.fraction`), milliseconds (13 digits, 1e12..=4e12), and also
//!   microseconds (16) and nanoseconds (19) in the same range:
//!   `cron:late:report@1772409600`. A bounded 8-digit `YYYYMMDD` date is flagged too: a numeric
//!   id that happens to read as a valid date in that range would be a false positive.
//! - **IP address** — IPv4 dotted quad, each part 0..=255, bounded and not followed by `.digit`
//!   (`node:unreachable:10.0.3.17`, but not the version `v1.4.2.1`). IPv6: hex groups of 1..=4
//!   separated by `:`, at least two groups, at least one digit, and either one `::` (at most
//!   seven groups) or exactly eight groups; a trailing embedded IPv4 counts as two groups
//!   (`peer:lost:fe80::1ff:fe23:4567:890a`). Keys use `:` as a separator, so
//!   `pod:crashloop:dnd` is no address: its groups are not hex-only. A leading group of letters
//!   only is left out when the rest is an address (`dns:aaaa:2001:db8::1` flags
//!   `2001:db8::1`: `aaaa` is the record type). Not recognised: `::1` and
//!   `fe80::` (one group), and an IPv6 port without brackets (`fe80::1:8443` reads as one
//!   address).
//! - **Port** — `:<1..5 digits>` (at most 65535) right after an IP address, after `]` closing
//!   a bracketed IPv6, or after a host name with a dot whose last label is letters
//!   (`tls:handshake:api.example.com:8443`, `proxy:upstream_down:10.0.3.17:31847`); and
//!   `port` (or `nodePort`, `hostPort`, `containerPort`, `targetPort`, `localPort`,
//!   `remotePort`, `srcPort`, `dstPort`, `listenPort`, any case) followed by `=`, `-`, `:`, `_`
//!   or nothing and the number: `svc:web:port=30080`. A well-known port on a host name
//!   (`:443`) is flagged like any other: the rule cannot tell it from an ephemeral one.
//!   `proxied:domain:42` is no port: `42` follows a plain word, where it is a stable id;
//!   `report-2024` is no port: the word must be exactly one of the above.
//! - **Long hex** — a bounded run of at least 12 hex digits with at least one digit and at
//!   least one letter `a`–`f` (container ids, span ids, digests):
//!   `container:restarted:3f2a9b8c7d6e5f40a1b2`. A UUID's last group is part of the UUID.
//! - **Positional index** — `[3]`, `#3` (1..=6 digits), or one of the words `index`, `idx`,
//!   `slot`, `pos`, `position`, `item`, `entry`, `element`, `elem`, `row`, `nth` (a whole run
//!   of letters, any case) followed by `=`, `-`, `:`, `_`, `#` or nothing and 1..=6 digits:
//!   `state:slot-3:stale`, `queue:item_7:stuck`, `containers[2]:restarting`. A plain
//!   `app-42` or `k3s-worker-2` is a name, not an index.
//!
//! Overlapping matches keep the most specific: UUID, then ULID, timestamp, IP address, port,
//! pod-template hash, positional index and long hex last; between two matches of one kind the
//! longer wins.
//!
//! # Suggestion
//!
//! Each unstable part is replaced by a stable form: a pod or ReplicaSet suffix is stripped with
//! its `-` (key by the workload), a UUID, ULID or long hex id becomes `<name>`, an IP address
//! `<host>`, a positional index `<stable-id>` (`[<stable-id>]`, `#<stable-id>`), and a
//! timestamp or port is removed with one adjacent separator. Doubled separators left where
//! something was removed are collapsed.

use std::borrow::Cow;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an unstable part of a check key looks like.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UnstableKind {
    /// 8-4-4-4-12 hex: an object UID.
    Uuid,
    /// 26 Crockford base-32 characters.
    Ulid,
    /// A generated Kubernetes suffix: pod-template hash, ReplicaSet hash, pod suffix.
    PodTemplateHash,
    /// A date, a date-time or a Unix epoch time.
    Timestamp,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A port number.
    Port,
    /// A long hex id: container id, span id, digest.
    LongHex,
    /// A position in a list: `[3]`, `slot-3`.
    PositionalIndex,
}

impl UnstableKind {
    /// The snake-case name, as serialised.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Ulid => "ulid",
            Self::PodTemplateHash => "pod_template_hash",
            Self::Timestamp => "timestamp",
            Self::IpAddress => "ip_address",
            Self::Port => "port",
            Self::LongHex => "long_hex",
            Self::PositionalIndex => "positional_index",
        }
    }

    /// Rank among overlapping matches: higher is more specific.
    const fn rank(self) -> u8 {
        match self {
            Self::Uuid => 8,
            Self::Ulid => 7,
            Self::Timestamp => 6,
            Self::IpAddress => 5,
            Self::Port => 4,
            Self::PodTemplateHash => 3,
            Self::PositionalIndex => 2,
            Self::LongHex => 1,
        }
    }
}

impl std::fmt::Display for UnstableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One part of a key that looks unstable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnstablePart {
    pub kind: UnstableKind,
    /// The part's text, `key[start..end]`.
    pub text: String,
    /// Byte offset of the part in the key.
    pub start: usize,
    /// Byte offset just past the part.
    pub end: usize,
}

/// Why a key looks unstable and what to key by instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyAdvice {
    /// The key analysed.
    pub check_key: String,
    /// The unstable parts, in key order, not overlapping.
    pub parts: Vec<UnstablePart>,
    /// The key with every unstable part replaced by a stable form.
    pub suggestion: String,
    /// One sentence per part: what it is, why it changes, what to key by.
    pub advice: String,
}

/// The unstable parts of `key` with advice, or `None` when the key looks stable.
pub fn analyze_check_key(key: &str) -> Option<KeyAdvice> {
    let found = scan(key.as_bytes());
    if found.is_empty() {
        return None;
    }
    let parts = found
        .iter()
        .map(|c| UnstablePart {
            kind: c.kind,
            text: key[c.start..c.end].to_owned(),
            start: c.start,
            end: c.end,
        })
        .collect();
    let mut advice = String::with_capacity(200 * found.len());
    for (i, c) in found.iter().enumerate() {
        if i > 0 {
            advice.push(' ');
        }
        sentence(&mut advice, key, c);
    }
    Some(KeyAdvice {
        check_key: key.to_owned(),
        parts,
        suggestion: suggestion(key, &found),
        advice,
    })
}

/// The stable name of a Kubernetes object name: its generated suffix stripped.
///
/// - Deployment pod `dnd-backend-7f9d4b8c6-xk2p9` → `dnd-backend`;
/// - ReplicaSet `web-5d8f7c9b6` → `web`;
/// - DaemonSet or Job pod `fluentd-x7k2q` → `fluentd` (the suffix needs a digit and a letter);
/// - CronJob pod `backup-29540160-x7k2q` → `backup` (8 digits: the scheduled minute);
/// - a Job's pod with any other number, `backup-28391-x7k2q` → `backup-28391`: a Job named
///   with a number keeps its name, only the pod suffix goes;
/// - StatefulSet ordinals and ordinary names stay: `db-0`, `app-42`, `plex-config`, `redis`.
///
/// Only the trailing run of `[A-Za-z0-9-]` is considered, so `dnd/dnd-backend-7f9d4b8c6-xk2p9`
/// → `dnd/dnd-backend`. The result is always a prefix of `name`, hence always borrowed.
pub fn stable_name(name: &str) -> Cow<'_, str> {
    let b = name.as_bytes();
    let run = b
        .iter()
        .rposition(|&c| !is_name_byte(c))
        .map_or(0, |p| p + 1);
    match pod_shape(&b[run..]).or_else(|| single_shape(&b[run..])) {
        Some((_, workload_end)) => Cow::Borrowed(&name[..run + workload_end]),
        None => Cow::Borrowed(name),
    }
}

// ---------------------------------------------------------------------------------------------
// Candidates

/// Which rule matched, where it matters for the suggestion and the advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Plain,
    /// A `pvc-<uuid>` volume name: blocks other matches, never reported.
    Exempt,
    PodSuffix,
    CronJobPod,
    ReplicaSetHash,
    GeneratedSuffix,
    Epoch,
    DateTime,
    PortAfterHost,
    PortNamed,
    IndexWord,
    IndexBracket,
    IndexHash,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    kind: UnstableKind,
    shape: Shape,
    start: usize,
    end: usize,
    /// For the pod shapes: where the workload name starts.
    workload_start: usize,
}

impl Candidate {
    const fn new(kind: UnstableKind, shape: Shape, start: usize, end: usize) -> Self {
        Self {
            kind,
            shape,
            start,
            end,
            workload_start: start,
        }
    }

    const fn rank(&self) -> u8 {
        match self.shape {
            Shape::Exempt => u8::MAX,
            _ => self.kind.rank(),
        }
    }
}

fn scan(b: &[u8]) -> Vec<Candidate> {
    let mut found = Vec::new();
    if !b.iter().any(u8::is_ascii_digit) {
        return found;
    }
    detect_uuid(b, &mut found);
    detect_alnum_runs(b, &mut found);
    detect_datetime(b, &mut found);
    detect_ip(b, &mut found);
    detect_host_port(b, &mut found);
    detect_words(b, &mut found);
    detect_index_marks(b, &mut found);
    detect_k8s(b, &mut found);
    resolve(found)
}

/// Keeps the most specific of overlapping candidates, in key order.
fn resolve(mut found: Vec<Candidate>) -> Vec<Candidate> {
    if found.len() > 1 {
        found.sort_by(|a, b| {
            b.rank()
                .cmp(&a.rank())
                .then((b.end - b.start).cmp(&(a.end - a.start)))
                .then(a.start.cmp(&b.start))
        });
        let mut kept = 0;
        for i in 0..found.len() {
            let c = found[i];
            if found[..kept]
                .iter()
                .all(|k| c.end <= k.start || c.start >= k.end)
            {
                found[kept] = c;
                kept += 1;
            }
        }
        found.truncate(kept);
        found.sort_by_key(|c| c.start);
    }
    found.retain(|c| c.shape != Shape::Exempt);
    found
}

// ---------------------------------------------------------------------------------------------
// Byte classes

const fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

const fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// The alphabet of Kubernetes' generated names (`k8s.io/apimachinery/pkg/util/rand`).
const fn is_safe(c: u8) -> bool {
    matches!(
        c,
        b'b' | b'c'
            | b'd'
            | b'f'
            | b'g'
            | b'h'
            | b'j'
            | b'k'
            | b'l'
            | b'm'
            | b'n'
            | b'p'
            | b'q'
            | b'r'
            | b's'
            | b't'
            | b'v'
            | b'w'
            | b'x'
            | b'z'
            | b'2'
            | b'4'..=b'9'
    )
}

/// A byte of a Kubernetes object name (DNS label characters).
const fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// Separators between the fields of a key.
const fn is_field_sep(c: u8) -> bool {
    matches!(
        c,
        b':' | b'/' | b' ' | b',' | b';' | b'|' | b'=' | b'@' | b'\t'
    )
}

/// Any separator, including those joining the words of a name.
const fn is_sep(c: u8) -> bool {
    is_field_sep(c) || matches!(c, b'-' | b'_' | b'.')
}

fn has_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_digit)
}

fn has_letter(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_alphabetic)
}

/// No letter or digit just before `i`.
fn starts_word(b: &[u8], i: usize) -> bool {
    i == 0 || !is_alnum(b[i - 1])
}

/// No letter or digit at `i`.
fn ends_word(b: &[u8], i: usize) -> bool {
    i >= b.len() || !is_alnum(b[i])
}

/// A number ends at `i`: no letter or digit, and no `.digit` (a version or an address).
fn ends_number(b: &[u8], i: usize) -> bool {
    ends_word(b, i) && !(b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit))
}

/// Exactly `n` digits at `i`, as a number.
fn digits(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = b.get(i..i + n)?;
    s.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

/// The run of 1..=`max` digits at `i` ending a number: (value, end).
fn number(b: &[u8], i: usize, max: usize) -> Option<(u64, usize)> {
    let mut j = i;
    let mut v = 0u64;
    while j < b.len() && b[j].is_ascii_digit() {
        if j - i == max {
            return None;
        }
        v = v * 10 + u64::from(b[j] - b'0');
        j += 1;
    }
    (j > i && ends_number(b, j)).then_some((v, j))
}

/// Maximal runs of bytes satisfying `class`.
fn runs<'a>(
    b: &'a [u8],
    class: impl Fn(u8) -> bool + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && !class(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        let s = i;
        while i < b.len() && class(b[i]) {
            i += 1;
        }
        Some((s, i))
    })
}

// ---------------------------------------------------------------------------------------------
// Detectors

fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(k, &c)| match k {
            8 | 13 | 18 | 23 => c == b'-',
            _ => is_hex(c),
        })
        && has_digit(s)
}

fn detect_uuid(b: &[u8], found: &mut Vec<Candidate>) {
    let mut i = 0;
    while i + 36 <= b.len() {
        if is_hex(b[i]) && starts_word(b, i) && ends_word(b, i + 36) && is_uuid(&b[i..i + 36]) {
            let volume =
                i >= 4 && b[i - 4..i].eq_ignore_ascii_case(b"pvc-") && starts_word(b, i - 4);
            found.push(if volume {
                Candidate::new(UnstableKind::Uuid, Shape::Exempt, i - 4, i + 36)
            } else {
                Candidate::new(UnstableKind::Uuid, Shape::Plain, i, i + 36)
            });
            i += 36;
        } else {
            i += 1;
        }
    }
}

/// ULIDs, long hex ids and epoch times: whole runs of letters and digits.
fn detect_alnum_runs(b: &[u8], found: &mut Vec<Candidate>) {
    for (s, e) in runs(b, is_alnum) {
        let run = &b[s..e];
        let all_hex = run.iter().all(|&c| is_hex(c));
        if run.len() >= 12 && all_hex && has_letter(run) {
            if has_digit(run) {
                found.push(Candidate::new(UnstableKind::LongHex, Shape::Plain, s, e));
            }
        } else if run.len() == 26 && is_ulid(run) {
            found.push(Candidate::new(UnstableKind::Ulid, Shape::Plain, s, e));
        } else if let Some(end) = epoch(b, s, e) {
            found.push(Candidate::new(
                UnstableKind::Timestamp,
                Shape::Epoch,
                s,
                end,
            ));
        }
    }
}

fn is_ulid(run: &[u8]) -> bool {
    matches!(run[0], b'0'..=b'7')
        && (run.iter().all(|&c| {
            c.is_ascii_digit()
                || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'L' | b'O' | b'U'))
        }) || run.iter().all(|&c| {
            c.is_ascii_digit()
                || (c.is_ascii_lowercase() && !matches!(c, b'i' | b'l' | b'o' | b'u'))
        }))
}

/// The end of a Unix epoch time in seconds, milliseconds, microseconds or nanoseconds that is
/// the all-digit run `b[s..e]`.
fn epoch(b: &[u8], s: usize, e: usize) -> Option<usize> {
    let run = &b[s..e];
    if !matches!(run.len(), 10 | 13 | 16 | 19) {
        return None;
    }
    let v = run.iter().try_fold(0u64, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u64::from(c - b'0'))
    })?;
    let unit = 10u64.pow(run.len() as u32 - 10);
    if !(1_000_000_000 * unit..=4_000_000_000 * unit).contains(&v) {
        return None;
    }
    // Seconds with a fraction: 1772409600.123
    if run.len() == 10 && b.get(e) == Some(&b'.') {
        let f = e + 1;
        let mut j = f;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > f && ends_word(b, j) {
            return Some(j);
        }
    }
    Some(e)
}

fn detect_datetime(b: &[u8], found: &mut Vec<Candidate>) {
    let mut i = 0;
    while i + 8 <= b.len() {
        if b[i].is_ascii_digit()
            && starts_word(b, i)
            && let Some(end) = datetime_at(b, i)
        {
            found.push(Candidate::new(
                UnstableKind::Timestamp,
                Shape::DateTime,
                i,
                end,
            ));
            i = end;
        } else {
            i += 1;
        }
    }
}

fn valid_date(month: u32, day: u32) -> bool {
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// An ISO 8601 date or date-time at `i`: its end.
fn datetime_at(b: &[u8], i: usize) -> Option<usize> {
    let year = digits(b, i, 4)?;
    if !(1970..=2199).contains(&year) {
        return None;
    }
    let mut j = i + 4;
    if b.get(j) == Some(&b'-') {
        let month = digits(b, j + 1, 2)?;
        if b.get(j + 3) != Some(&b'-') {
            return None;
        }
        let day = digits(b, j + 4, 2)?;
        if !valid_date(month, day) {
            return None;
        }
        j += 6;
        if matches!(b.get(j), Some(b'T' | b't' | b' ' | b'_'))
            && let Some(end) = extended_time(b, j + 1)
        {
            j = end;
        }
    } else {
        let month = digits(b, j, 2)?;
        let day = digits(b, j + 2, 2)?;
        if !valid_date(month, day) {
            return None;
        }
        j += 4;
        if matches!(b.get(j), Some(b'T' | b't')) {
            j = basic_time(b, j + 1)?;
        } else if let Some(end) = hms(b, j, false) {
            j = end;
        }
    }
    ends_word(b, j).then_some(j)
}

/// `hh:mm[:ss]` (extended) or `hhmmss` (basic) at `i`: its end.
fn hms(b: &[u8], i: usize, extended: bool) -> Option<usize> {
    let hour = digits(b, i, 2)?;
    let minute_at = if extended { i + 3 } else { i + 2 };
    if extended && b.get(i + 2) != Some(&b':') {
        return None;
    }
    let minute = digits(b, minute_at, 2)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    let j = minute_at + 2;
    let second_at = if extended { j + 1 } else { j };
    let second = if !extended || b.get(j) == Some(&b':') {
        digits(b, second_at, 2)
    } else {
        None
    };
    match second {
        Some(second) if second <= 60 => Some(second_at + 2),
        Some(_) => None,
        None if extended => Some(j),
        // Basic form needs the seconds: `hhmm` alone is too easily a number.
        None => None,
    }
}

fn fraction_and_offset(b: &[u8], mut j: usize, extended: bool) -> usize {
    if matches!(b.get(j), Some(b'.' | b',')) && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j += 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
    }
    match b.get(j) {
        Some(b'Z' | b'z') => j + 1,
        Some(b'+' | b'-') => {
            if digits(b, j + 1, 2).is_some() {
                if extended && b.get(j + 3) == Some(&b':') && digits(b, j + 4, 2).is_some() {
                    j + 6
                } else if digits(b, j + 3, 2).is_some() {
                    j + 5
                } else {
                    j + 3
                }
            } else {
                j
            }
        }
        _ => j,
    }
}

fn extended_time(b: &[u8], i: usize) -> Option<usize> {
    let j = hms(b, i, true)?;
    Some(fraction_and_offset(b, j, true))
}

fn basic_time(b: &[u8], i: usize) -> Option<usize> {
    let j = hms(b, i, false)?;
    Some(fraction_and_offset(b, j, false))
}

fn detect_ip(b: &[u8], found: &mut Vec<Candidate>) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let prev = if i == 0 { None } else { Some(b[i - 1]) };
        let after_boundary = prev.is_none_or(|p| !is_alnum(p) && p != b'.');
        let span = if !after_boundary {
            None
        } else if c == b':' {
            if prev == Some(b':') {
                None
            } else {
                ipv6_at(b, i).map(|end| (i, end))
            }
        } else if c.is_ascii_digit() {
            ipv4_at(b, i)
                .map(|end| (i, end))
                .or_else(|| ipv6_from(b, i))
        } else if is_hex(c) {
            ipv6_from(b, i)
        } else {
            None
        };
        if let Some((start, end)) = span {
            found.push(Candidate::new(
                UnstableKind::IpAddress,
                Shape::Plain,
                start,
                end,
            ));
            i = end;
        } else {
            i += 1;
        }
    }
}

/// Four dotted parts 0..=255 at `i`, ending a number: its end.
fn ipv4_at(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for part in 0..4 {
        if part > 0 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        let s = j;
        let mut v = 0u32;
        while j < b.len() && b[j].is_ascii_digit() {
            if j - s == 3 {
                return None;
            }
            v = v * 10 + u32::from(b[j] - b'0');
            j += 1;
        }
        if j == s || v > 255 {
            return None;
        }
    }
    ends_number(b, j).then_some(j)
}

/// An IPv6 address starting with a hex group at `i`: (start, end). A first group of letters
/// only is left out when the rest is an address: in `dns:aaaa:2001:db8::1` it is the record
/// type.
fn ipv6_from(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let end = ipv6_at(b, i)?;
    let first = b[i..end]
        .iter()
        .position(|&c| c == b':')
        .map_or(end, |p| i + p);
    if !has_digit(&b[i..first])
        && b.get(first + 1).is_some_and(|&c| is_hex(c))
        && let Some(rest) = ipv6_at(b, first + 1)
    {
        return Some((first + 1, rest));
    }
    Some((i, end))
}

/// An IPv6 address at `i`: its end.
fn ipv6_at(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    let mut groups = 0;
    let mut double = false;
    let mut digit = false;
    let mut end = i;
    if b[j..].starts_with(b"::") {
        double = true;
        j += 2;
        end = j;
    }
    while groups <= 8 {
        let s = j;
        while j < b.len() && j - s < 4 && is_hex(b[j]) {
            j += 1;
        }
        if j == s || (j < b.len() && is_alnum(b[j])) {
            // No group, or a word that is not a hex group: the address (if any) ended before.
            break;
        }
        if b.get(j) == Some(&b'.')
            && (groups > 0 || double)
            && let Some(v4) = ipv4_at(b, s)
        {
            groups += 2;
            digit = true;
            end = v4;
            break;
        }
        groups += 1;
        digit |= has_digit(&b[s..j]);
        end = j;
        if b[j..].starts_with(b"::") {
            if double {
                break;
            }
            double = true;
            j += 2;
            end = j;
        } else if b.get(j) == Some(&b':') {
            j += 1;
        } else {
            break;
        }
    }
    let valid = groups >= 2 && digit && if double { groups <= 7 } else { groups == 8 };
    (valid && ends_word(b, end)).then_some(end)
}

/// `:<port>` after an IP address or a host name with a dot.
fn detect_host_port(b: &[u8], found: &mut Vec<Candidate>) {
    for c in 1..b.len() {
        if b[c] != b':' {
            continue;
        }
        let Some((port, end)) = number(b, c + 1, 5) else {
            continue;
        };
        if port > 65_535 {
            continue;
        }
        let after_ip = found.iter().any(|x| {
            x.kind == UnstableKind::IpAddress
                && (x.end == c || (b[c - 1] == b']' && x.end + 1 == c))
        });
        if after_ip || is_host_before(b, c) {
            found.push(Candidate::new(
                UnstableKind::Port,
                Shape::PortAfterHost,
                c + 1,
                end,
            ));
        }
    }
}

/// The field ending at `c` is a host name with a dot: labels of `[A-Za-z0-9_-]`, the last of
/// two or more letters.
fn is_host_before(b: &[u8], c: usize) -> bool {
    let s = b[..c]
        .iter()
        .rposition(|&x| is_field_sep(x))
        .map_or(0, |p| p + 1);
    let host = &b[s..c];
    if !host.contains(&b'.')
        || !host
            .iter()
            .all(|&x| is_alnum(x) || matches!(x, b'.' | b'-' | b'_'))
    {
        return false;
    }
    let mut labels = host.split(|&x| x == b'.');
    let last = labels.next_back().unwrap_or_default();
    last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic) && labels.all(|l| !l.is_empty())
}

const PORT_WORDS: &[&[u8]] = &[
    b"port",
    b"nodeport",
    b"hostport",
    b"containerport",
    b"targetport",
    b"localport",
    b"remoteport",
    b"srcport",
    b"dstport",
    b"listenport",
];

const INDEX_WORDS: &[&[u8]] = &[
    b"index",
    b"idx",
    b"slot",
    b"pos",
    b"position",
    b"item",
    b"entry",
    b"element",
    b"elem",
    b"row",
    b"nth",
];

fn is_one_of(word: &[u8], words: &[&[u8]]) -> bool {
    words.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// `port=8443` and `slot-3`: a whole word of letters, an optional separator, a number.
fn detect_words(b: &[u8], found: &mut Vec<Candidate>) {
    for (s, e) in runs(b, |c| c.is_ascii_alphabetic()) {
        // Cheap rejection first: a number must follow, at once or after one separator.
        let digit_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
        if !digit_at(e) && !digit_at(e + 1) {
            continue;
        }
        let word = &b[s..e];
        let (kind, shape, max, seps): (_, _, _, &[u8]) = if is_one_of(word, PORT_WORDS) {
            (UnstableKind::Port, Shape::PortNamed, 5, b"=-:_")
        } else if is_one_of(word, INDEX_WORDS) {
            (UnstableKind::PositionalIndex, Shape::IndexWord, 6, b"=-:_#")
        } else {
            continue;
        };
        let n = if b.get(e).is_some_and(|c| seps.contains(c)) {
            e + 1
        } else {
            e
        };
        if let Some((v, end)) = number(b, n, max)
            && (kind != UnstableKind::Port || v <= 65_535)
        {
            found.push(Candidate::new(kind, shape, s, end));
        }
    }
}

/// `[3]` and `#3`.
fn detect_index_marks(b: &[u8], found: &mut Vec<Candidate>) {
    for i in 0..b.len() {
        match b[i] {
            b'[' => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() && j - i <= 6 {
                    j += 1;
                }
                if j > i + 1 && b.get(j) == Some(&b']') {
                    found.push(Candidate::new(
                        UnstableKind::PositionalIndex,
                        Shape::IndexBracket,
                        i,
                        j + 1,
                    ));
                }
            }
            b'#' => {
                if let Some((_, end)) = number(b, i + 1, 6) {
                    found.push(Candidate::new(
                        UnstableKind::PositionalIndex,
                        Shape::IndexHash,
                        i,
                        end,
                    ));
                }
            }
            _ => {}
        }
    }
}

/// The last `-` of `name` with a workload name before it: (its offset, the part after it).
fn last_part(name: &[u8]) -> Option<(usize, &[u8])> {
    let p = name.iter().rposition(|&c| c == b'-')?;
    (p > 0 && is_alnum(name[0]) && is_alnum(name[p - 1])).then(|| (p, &name[p + 1..]))
}

/// A two-part generated suffix: Deployment or CronJob pod. (shape, end of the workload name).
fn pod_shape(name: &[u8]) -> Option<(Shape, usize)> {
    let (p1, last) = last_part(name)?;
    if last.len() != 5 || !last.iter().all(|&c| is_safe(c)) {
        return None;
    }
    let (p2, mid) = last_part(&name[..p1])?;
    if (6..=10).contains(&mid.len()) && mid.iter().all(|&c| is_safe(c)) && has_digit(mid) {
        Some((Shape::PodSuffix, p2))
    } else if mid.len() == 8 && mid.iter().all(u8::is_ascii_digit) {
        Some((Shape::CronJobPod, p2))
    } else {
        None
    }
}

/// A one-part generated suffix: ReplicaSet hash, DaemonSet or Job pod suffix.
fn single_shape(name: &[u8]) -> Option<(Shape, usize)> {
    let (p1, last) = last_part(name)?;
    if !last.iter().all(|&c| is_safe(c)) || !has_digit(last) || !has_letter(last) {
        return None;
    }
    match last.len() {
        8..=10 => Some((Shape::ReplicaSetHash, p1)),
        5 => Some((Shape::GeneratedSuffix, p1)),
        _ => None,
    }
}

fn detect_k8s(b: &[u8], found: &mut Vec<Candidate>) {
    for (s, e) in runs(b, is_name_byte) {
        let name = &b[s..e];
        // Cheap rejection first: every suffix is 5 or 8..=10 bytes after a `-`.
        let Some(dash) = name.iter().rposition(|&c| c == b'-') else {
            continue;
        };
        if !matches!(name.len() - dash - 1, 5 | 8..=10) {
            continue;
        }
        // Both: the single suffix stands if something more specific takes the middle part
        // (`backup-20260302-x7k2q`: a date, then a pod suffix).
        for (shape, workload_end) in [pod_shape(name), single_shape(name)].into_iter().flatten() {
            found.push(Candidate {
                kind: UnstableKind::PodTemplateHash,
                shape,
                start: s + workload_end + 1,
                end: e,
                workload_start: s,
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Suggestion and advice

/// What replaces `c` in the suggestion: (start, end, replacement) in the key.
fn edit(b: &[u8], c: &Candidate) -> (usize, usize, &'static str) {
    // Removal with one adjacent separator, the one before if any.
    let remove = || {
        if c.start > 0 && is_sep(b[c.start - 1]) {
            (c.start - 1, c.end, "")
        } else if c.end < b.len() && is_sep(b[c.end]) {
            (c.start, c.end + 1, "")
        } else {
            (c.start, c.end, "")
        }
    };
    match c.shape {
        Shape::PodSuffix
        | Shape::CronJobPod
        | Shape::ReplicaSetHash
        | Shape::GeneratedSuffix
        | Shape::PortAfterHost => (c.start - 1, c.end, ""),
        Shape::Epoch | Shape::DateTime | Shape::PortNamed => remove(),
        Shape::IndexWord => (c.start, c.end, "<stable-id>"),
        Shape::IndexBracket => (c.start, c.end, "[<stable-id>]"),
        Shape::IndexHash => (c.start, c.end, "#<stable-id>"),
        Shape::Plain | Shape::Exempt => match c.kind {
            UnstableKind::IpAddress => (c.start, c.end, "<host>"),
            _ => (c.start, c.end, "<name>"),
        },
    }
}

fn suggestion(key: &str, parts: &[Candidate]) -> String {
    let b = key.as_bytes();
    let mut out = String::with_capacity(key.len());
    let mut pos = 0;
    let mut removed = false;
    for c in parts {
        let (s, e, replacement) = edit(b, c);
        let s = s.max(pos);
        let e = e.max(s);
        push_segment(&mut out, &key[pos..s], removed);
        out.push_str(replacement);
        removed = replacement.is_empty();
        pos = e;
    }
    push_segment(&mut out, &key[pos..], removed);
    // A removal at either end may leave a separator the key did not have there.
    while out.as_bytes().last().is_some_and(|&c| is_sep(c)) && !b.last().is_some_and(|&c| is_sep(c))
    {
        out.pop();
    }
    let lead = out.bytes().take_while(|&c| is_sep(c)).count();
    let key_lead = b.iter().take_while(|&&c| is_sep(c)).count();
    if lead > key_lead {
        out.drain(..lead - key_lead);
    }
    if out.is_empty() {
        out.push_str("<stable-id>");
    }
    out
}

/// Appends `segment`; after a removal, one separator doubling the last one is dropped.
fn push_segment(out: &mut String, segment: &str, after_removal: bool) {
    let seg = segment.as_bytes();
    let doubled = after_removal
        && !seg.is_empty()
        && out
            .as_bytes()
            .last()
            .is_some_and(|&l| is_sep(l) && (l == seg[0] || is_sep(seg[0])));
    out.push_str(if doubled { &segment[1..] } else { segment });
}

/// Appends the advice sentence for `c` to `out`.
fn sentence(out: &mut String, key: &str, c: &Candidate) {
    let text = &key[c.start..c.end];
    let workload = || &key[c.workload_start..c.start.saturating_sub(1).max(c.workload_start)];
    // Writing to a String cannot fail.
    let _ = match c.shape {
        Shape::PodSuffix => write!(
            out,
            "`{text}` is a pod-template hash and pod suffix: they change on every rollout; key \
             by the workload (`{}`).",
            workload()
        ),
        Shape::CronJobPod => write!(
            out,
            "`{text}` is a CronJob's scheduled-run suffix and pod suffix: they change on every \
             run; key by the CronJob (`{}`).",
            workload()
        ),
        Shape::ReplicaSetHash => write!(
            out,
            "`{text}` is a ReplicaSet's pod-template hash: it changes on every rollout; key by \
             the Deployment (`{}`).",
            workload()
        ),
        Shape::GeneratedSuffix => write!(
            out,
            "`{text}` is a generated pod suffix: it changes whenever the pod is recreated; key \
             by the owning workload (`{}`).",
            workload()
        ),
        Shape::Epoch => write!(
            out,
            "`{text}` is a Unix epoch time: it changes every cycle; drop it from the key and put \
             the time in the finding's detail."
        ),
        Shape::DateTime => write!(
            out,
            "`{text}` is a date or date-time: it changes every cycle (or every day); drop it \
             from the key and put the time in the finding's detail."
        ),
        Shape::PortAfterHost | Shape::PortNamed => write!(
            out,
            "`{text}` is a port: ports vary across restarts (NodePorts, ephemeral ports); key \
             by the service or host name without it."
        ),
        Shape::IndexWord | Shape::IndexBracket | Shape::IndexHash => write!(
            out,
            "`{text}` is a positional index: positions shift when the list is reordered; key \
             by a stable id of the item, such as its name."
        ),
        Shape::Plain | Shape::Exempt => match c.kind {
            UnstableKind::Uuid => write!(
                out,
                "`{text}` is a UUID: an object's UID is new every time it is recreated; key by \
                 its namespace and name."
            ),
            UnstableKind::Ulid => write!(
                out,
                "`{text}` is a ULID: a new one is minted for every event or run; key by the name \
                 of what it identifies."
            ),
            UnstableKind::IpAddress => write!(
                out,
                "`{text}` is an IP address: pod and node addresses are reassigned on restart; key \
                 by the pod, node or service name."
            ),
            _ => write!(
                out,
                "`{text}` is a long hex id (a container id, span id or digest): it is new for \
                 every container, span or build; key by the container or workload name."
            ),
        },
    };
}
