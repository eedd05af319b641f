//! The detectors of check-key hygiene: byte classes and one scanner per rule of the module's
//! documentation (UUIDs, ULIDs and long runs, dates and epochs, IPs, host:port, port and index
//! words, index marks, Kubernetes name suffixes). Each pushes the candidates it finds; the parent
//! module keeps the most specific of overlapping ones and writes the advice.

use super::{Candidate, Shape, UnstableKind};

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
pub(super) const fn is_name_byte(c: u8) -> bool {
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
pub(super) const fn is_sep(c: u8) -> bool {
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

pub(super) fn detect_uuid(b: &[u8], found: &mut Vec<Candidate>) {
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
pub(super) fn detect_alnum_runs(b: &[u8], found: &mut Vec<Candidate>) {
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

pub(super) fn detect_datetime(b: &[u8], found: &mut Vec<Candidate>) {
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

pub(super) fn detect_ip(b: &[u8], found: &mut Vec<Candidate>) {
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
pub(super) fn detect_host_port(b: &[u8], found: &mut Vec<Candidate>) {
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
pub(super) fn detect_words(b: &[u8], found: &mut Vec<Candidate>) {
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
pub(super) fn detect_index_marks(b: &[u8], found: &mut Vec<Candidate>) {
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
pub(super) fn pod_shape(name: &[u8]) -> Option<(Shape, usize)> {
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
pub(super) fn single_shape(name: &[u8]) -> Option<(Shape, usize)> {
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

pub(super) fn detect_k8s(b: &[u8], found: &mut Vec<Candidate>) {
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
