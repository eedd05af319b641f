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

mod detect;

use self::detect::{
    detect_alnum_runs, detect_datetime, detect_host_port, detect_index_marks, detect_ip,
    detect_k8s, detect_uuid, detect_words, is_name_byte, is_sep, pod_shape, single_shape,
};

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
