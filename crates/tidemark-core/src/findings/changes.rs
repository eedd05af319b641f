//! What an event changed in the projections, as `tidemark replay --step` says it: a digest of
//! every projection ([`Digest::of`]) compared before and after the event ([`Digest::changes`]).
//! The one definition of a change; ADR 0008 (change records) builds the fold's own records on
//! it, and proves them equal to this comparison.
//!
//! The fold's side ([`Watch`], [`Collect`]): the findings fold names, as it goes, each finding
//! whose digest entry it is about to change, with its before-value; at the end of the event the
//! named subjects' after-values are read and both are compared with [`Digest::changes`] itself,
//! on digests holding only those subjects (ADR 0008, plan step 2: the parts `finding`, `flap`,
//! `stuck`, `drift` and `unstable_key`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{ResolutionKind, UnreachableReason};
use crate::FindingState;
use crate::event::Severity;
use crate::orphans::{ListedOrphan, OrphanOrder, OrphanView};

/// One thing an event changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `finding`, `flap`, `stuck`, `drift`, `unstable_key`, `orphan`, `candidate`, `incident`.
    pub what: &'static str,
    /// The finding key, orphan, or incident id.
    pub subject: String,
    /// What happened to it.
    pub change: String,
}

/// The parts a change is of, in `--step` order. A stored change record names its part by its
/// place in this list (`Change::part_index`): entries are appended only.
pub const PARTS: [&str; 8] = [
    "finding",
    "flap",
    "stuck",
    "drift",
    "unstable_key",
    "orphan",
    "candidate",
    "incident",
];

impl Change {
    /// The place of this change's part in [`PARTS`].
    pub fn part_index(&self) -> u8 {
        part_of(self.what).expect("every change is of a part of PARTS")
    }

    /// The change of the part named `what`; `None` for a part this build does not know (said
    /// by a newer one).
    pub fn of_named_part(what: &str, subject: String, change: String) -> Option<Self> {
        Self::of_part(part_of(what)?, subject, change)
    }

    /// The change of part `PARTS[index]`; `None` for an index past the list (a record written
    /// by a newer build).
    pub fn of_part(index: u8, subject: String, change: String) -> Option<Self> {
        PARTS.get(usize::from(index)).map(|what| Self {
            what,
            subject,
            change,
        })
    }
}

impl std::fmt::Display for Change {
    /// The change as `tidemark replay --step` and `tidemark tail` print it: its part (padded
    /// to a column), subject and what happened.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<12} {}: {}", self.what, self.subject, self.change)
    }
}

/// Between the two check keys of a drift suspect's subject.
const DRIFT_ARROW: &str = " → ";

/// The subject of the drift suspect `old → new` of `cluster`.
pub(crate) fn drift_subject(cluster: &str, old: &str, new: &str) -> String {
    format!("{cluster} {old}{DRIFT_ARROW}{new}")
}

/// The two check keys (old, new) a `drift` change of `cluster` names, from its subject
/// (`cluster old → new`); `None` for another cluster's or another part's subject.
pub fn drift_keys<'a>(cluster: &str, subject: &'a str) -> Option<(&'a str, &'a str)> {
    subject
        .strip_prefix(cluster)?
        .strip_prefix(' ')?
        .split_once(DRIFT_ARROW)
}

/// The place of the part named `what` in [`PARTS`].
fn part_of(what: &str) -> Option<u8> {
    PARTS.iter().position(|part| *part == what).map(|i| i as u8)
}

/// What `--step` compares before and after each event.
#[derive(Debug, Default, PartialEq)]
pub struct Digest {
    /// (cluster check_key) → (state, clean cycles, severity, occurrences).
    pub(crate) findings: BTreeMap<String, (FindingState, Option<u32>, String, u64, String)>,
    pub(crate) flapping: BTreeMap<String, String>,
    pub(crate) unreachable: BTreeMap<String, String>,
    pub(crate) drift: BTreeSet<String>,
    pub(crate) unstable: BTreeSet<String>,
    /// (label, order) → reason: orphans are keyed by label and [`OrphanOrder`], since labels
    /// are not identities (two orphans can share one); a line names the label alone.
    pub(crate) orphans: BTreeMap<OrphanDigestKey, String>,
    /// (label, order) → `n scan(s)`, as for `orphans`.
    pub(crate) candidates: BTreeMap<OrphanDigestKey, String>,
    /// id → (state, finding keys, layers, timeline entries, title).
    pub(crate) incidents: BTreeMap<String, (String, BTreeSet<String>, usize, u64, String)>,
}

/// The digest key of an orphan or a candidate: its label ([`orphan_label`]), then its
/// [`OrphanOrder`] (ADR 0008: the text of a line and the order where labels differ are the
/// label's; same-label orphans are separate lines).
pub(crate) type OrphanDigestKey = (String, OrphanOrder);

pub(crate) fn key(cluster: &str, check_key: &str) -> String {
    format!("{cluster} {check_key}")
}

/// A finding's digest value, typed: state, clean cycles (`None` when resolved), severity,
/// occurrences, resolution kind of the latest occurrence.
pub(crate) type FindingEntry = (
    FindingState,
    Option<u32>,
    Severity,
    u64,
    Option<ResolutionKind>,
);

/// A flapping finding's digest value: which detectors call it flapping; `None` when neither.
pub(crate) fn flap_how(count: bool, state_change: bool) -> Option<&'static str> {
    match (count, state_change) {
        (true, true) => Some("count + state change"),
        (true, false) => Some("count"),
        (false, true) => Some("state change"),
        (false, false) => None,
    }
}

/// An unreachable finding's digest value.
pub(crate) fn unreachable_reason(reason: UnreachableReason) -> &'static str {
    match reason {
        UnreachableReason::CategoryDisabled => "category_disabled",
        UnreachableReason::CategoryNotRun => "category_not_run",
    }
}

/// How the fold tells what it is about to change (ADR 0008): a generic parameter of the
/// findings fold, every call site guarded by `if W::ON`, so that with [`NoWatch`] the fold
/// compiles to what it is without one.
pub(crate) trait Watch {
    /// Whether anything listens: the capture points are compiled in only when it does.
    const ON: bool;
    /// Finding `index` of the event's cluster is about to change; its digest value before the
    /// event (`None`: not yet seen). The first call for a finding in an event wins.
    fn finding(&mut self, index: u32, before: Option<FindingEntry>);
    /// The flap detectors of `check_key` (of the event's cluster) are about to flip; its
    /// digest value before the event. The first call for a finding in an event wins.
    fn flap(&mut self, check_key: &str, before: Option<&'static str>);
    /// What is collected, when something is.
    fn collect(&mut self) -> Option<&mut Collect>;
}

/// No watch: the plain fold.
pub(crate) struct NoWatch;

impl Watch for NoWatch {
    const ON: bool = false;
    #[inline(always)]
    fn finding(&mut self, _: u32, _: Option<FindingEntry>) {}
    #[inline(always)]
    fn flap(&mut self, _: &str, _: Option<&'static str>) {}
    #[inline(always)]
    fn collect(&mut self) -> Option<&mut Collect> {
        None
    }
}

/// The before-values of one event's named subjects, by index in the event's cluster.
#[derive(Debug, Default)]
pub(crate) struct Collect {
    /// Findings named, with their before-values, in the order named (repeats included: the
    /// first of an index is its before-value).
    pub(crate) findings: Vec<(u32, Option<FindingEntry>)>,
    /// Flap verdicts named, by check key, with their before-values (the first wins).
    pub(crate) flaps: Vec<(Box<str>, Option<&'static str>)>,
    /// Findings whose unreachable verdict the event may change, with their before-values.
    pub(crate) stuck: Vec<(u32, Option<UnreachableReason>)>,
    /// Every active finding of the cluster may change its unreachable verdict (a cycle, a
    /// settings change): they are all read after the event.
    pub(crate) stuck_cluster: bool,
    /// Lengths of the cluster's drift suspects and unstable keys before the event.
    pub(crate) drifts_before: usize,
    pub(crate) unstable_before: usize,
}

impl Watch for Collect {
    const ON: bool = true;

    fn finding(&mut self, index: u32, before: Option<FindingEntry>) {
        self.findings.push((index, before));
    }

    fn flap(&mut self, check_key: &str, before: Option<&'static str>) {
        if !self.flaps.iter().any(|(k, _)| **k == *check_key) {
            self.flaps.push((check_key.into(), before));
        }
    }

    fn collect(&mut self) -> Option<&mut Collect> {
        Some(self)
    }
}

/// How an orphan is named in a step: kind and what.
pub fn orphan_label(o: &OrphanView) -> String {
    let what = orphan_subject(o);
    format!("{} {} {what}", o.cluster, o.kind.as_str())
}

impl Digest {
    /// Adds the flap verdict of `check_key` of `cluster`.
    pub(crate) fn insert_flap(&mut self, cluster: &str, check_key: &str, how: &'static str) {
        self.flapping
            .insert(key(cluster, check_key), how.to_owned());
    }

    /// Adds the unreachable verdict of `check_key` of `cluster`.
    pub(crate) fn insert_unreachable(
        &mut self,
        cluster: &str,
        check_key: &str,
        reason: UnreachableReason,
    ) {
        self.unreachable.insert(
            key(cluster, check_key),
            unreachable_reason(reason).to_owned(),
        );
    }

    /// Adds the drift suspect `old → new` of `cluster`.
    pub(crate) fn insert_drift(&mut self, cluster: &str, old: &str, new: &str) {
        self.drift
            .insert(format!("{cluster} {old}{DRIFT_ARROW}{new}"));
    }

    /// Adds the unstable key `check_key` of `cluster`.
    pub(crate) fn insert_unstable(&mut self, cluster: &str, check_key: &str) {
        self.unstable.insert(key(cluster, check_key));
    }

    /// Adds `listed` as an orphan (confirmed) or a candidate, with its value.
    pub(crate) fn insert_orphan(&mut self, listed: &ListedOrphan<'_>) {
        let view = listed.view;
        let key = (orphan_label(view), OrphanOrder::of(view));
        if listed.confirmed {
            self.orphans.insert(key, view.reason.clone());
        } else {
            self.candidates
                .insert(key, format!("{} scan(s)", view.scans));
        }
    }

    /// What changed in the orphans and candidates `named` holds (ADR 0008, plan step 3): its
    /// before-values and after-values compared by [`Self::changes`] itself, in `--step` order.
    pub(crate) fn orphan_changes(named: &crate::orphans::NamedOrphanValues) -> Vec<Change> {
        let mut before = Self::default();
        let mut after = Self::default();
        for listed in named.before() {
            before.insert_orphan(&listed);
        }
        for listed in named.after() {
            after.insert_orphan(&listed);
        }
        before.changes(&after)
    }

    /// What changed from `self` to `after`, in `--step` order.
    pub fn changes(&self, after: &Self) -> Vec<Change> {
        let mut out = Vec::new();
        let mut push = |what, subject: &str, change: String| {
            out.push(Change {
                what,
                subject: subject.to_owned(),
                change,
            })
        };
        for (k, new) in &after.findings {
            let (state, clean, severity, occurrences, how) = new;
            let old = self
                .findings
                .get(k)
                .map(|(state, clean, severity, occurrences, _)| {
                    (*state, *clean, severity, *occurrences)
                });
            if let Some(line) = finding_change(old, (*state, *clean, severity, *occurrences), how) {
                push("finding", k, line);
            }
        }
        diff_maps(
            &self.flapping,
            &after.flapping,
            "flap",
            "started flapping",
            "stopped flapping",
            &mut push,
        );
        diff_maps(
            &self.unreachable,
            &after.unreachable,
            "stuck",
            "unreachable",
            "reachable again",
            &mut push,
        );
        for d in after.drift.difference(&self.drift) {
            push("drift", d, "drift suspect".into());
        }
        for k in after.unstable.difference(&self.unstable) {
            push("unstable_key", k, "flagged unstable".into());
        }
        diff_maps(
            &self.orphans,
            &after.orphans,
            "orphan",
            "confirmed",
            "withdrawn",
            &mut push,
        );
        diff_maps(
            &self.candidates,
            &after.candidates,
            "candidate",
            "candidate",
            "no longer a candidate",
            &mut push,
        );
        for (id, new) in &after.incidents {
            let (state, keys, layers, entries, title) = new;
            match self.incidents.get(id) {
                None => push("incident", id, format!("opened ({state}): {title}")),
                Some(old) if old == new => {}
                Some((old_state, old_keys, old_layers, old_entries, _)) => {
                    let mut what = Vec::new();
                    if old_state != state {
                        what.push(format!("{old_state} → {state}"));
                    }
                    for k in keys.difference(old_keys) {
                        what.push(format!("linked {k}"));
                    }
                    if layers > old_layers {
                        what.push(format!("failure layers: {layers}"));
                    }
                    if what.is_empty() && entries != old_entries {
                        what.push("timeline entry".to_owned());
                    }
                    if !what.is_empty() {
                        push("incident", id, what.join(", "));
                    }
                }
            }
        }
        out
    }
}

/// A digest key, as a line names its subject.
trait Subject {
    fn subject(&self) -> &str;
}

impl Subject for String {
    fn subject(&self) -> &str {
        self
    }
}

impl Subject for OrphanDigestKey {
    fn subject(&self) -> &str {
        &self.0
    }
}

/// What `--step` says of a finding whose digest value went from `old` (`None`: not seen
/// before) to `new` (state, clean cycles, severity, occurrences) whose latest occurrence was
/// resolved `how`; `None` when it says nothing. The one wording of a finding's change, for the
/// whole digest and for the fold's watch (which compares typed values, `S` = `Severity`).
pub(crate) fn finding_change<S: PartialEq + std::fmt::Display>(
    old: Option<(FindingState, Option<u32>, S, u64)>,
    new: (FindingState, Option<u32>, S, u64),
    how: &str,
) -> Option<String> {
    let (state, clean, severity, occurrences) = new;
    let Some((old_state, old_clean, old_severity, old_occurrences)) = old else {
        return Some(if state == FindingState::Resolved {
            format!("opened and resolved at once ({how})")
        } else {
            format!("opened ({severity})")
        });
    };
    // The parts, joined by ", ", written into one string without `format!` for the common
    // ones: a line per changed finding per event, and every absent finding's clean count moves.
    let mut what = String::new();
    let separate = |what: &mut String| {
        if !what.is_empty() {
            what.push_str(", ");
        }
    };
    if occurrences != old_occurrences && state == FindingState::Active {
        what.push_str("reopened (occurrence ");
        push_decimal(&mut what, occurrences);
        what.push(')');
    } else if old_state != state {
        match state {
            FindingState::Active => what.push_str("active"),
            FindingState::Resolved => {
                what.push_str("resolved (");
                what.push_str(how);
                what.push(')');
            }
        }
    }
    if old_clean != clean
        && let (Some(a), Some(b)) = (old_clean, clean)
    {
        separate(&mut what);
        what.push_str("clean ");
        push_decimal(&mut what, a.into());
        what.push_str(" → ");
        push_decimal(&mut what, b.into());
    }
    if old_severity != severity {
        separate(&mut what);
        // Writing into a String cannot fail.
        let _ = std::fmt::Write::write_fmt(
            &mut what,
            format_args!("severity {old_severity} → {severity}"),
        );
    }
    (!what.is_empty()).then_some(what)
}

/// Appends `n` in decimal to `out` (what `{n}` writes), without the formatting machinery.
fn push_decimal(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

fn diff_maps<K: Ord + Subject>(
    before: &BTreeMap<K, String>,
    after: &BTreeMap<K, String>,
    what: &'static str,
    added: &str,
    removed: &str,
    push: &mut impl FnMut(&'static str, &str, String),
) {
    for (k, v) in after {
        match before.get(k) {
            None => push(what, k.subject(), format!("{added} ({v})")),
            Some(old) if old != v => push(what, k.subject(), format!("{old} → {v}")),
            Some(_) => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        push(what, k.subject(), removed.to_owned());
    }
}

/// What an orphan is, in a few words: the resource, the tracking row, the span or the trace.
pub fn orphan_subject(o: &OrphanView) -> String {
    if let Some(r) = &o.resource {
        match &r.namespace {
            Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
            None => format!("{} {}", r.kind, r.name),
        }
    } else if let Some(t) = &o.tracking {
        format!("row {} ({})", t.key, t.kind)
    } else if let Some(s) = &o.span {
        format!("span {} ({}/{})", s.span_id, s.service, s.name)
    } else {
        format!("trace {}", o.trace_id.as_deref().unwrap_or("?"))
    }
}

#[cfg(test)]
mod drift_subject_tests {
    use super::*;

    #[test]
    fn a_drift_subject_reads_back_as_its_two_keys_of_its_cluster_only() {
        let subject = drift_subject("pw-prod", "pod:a:x-1", "pod:a:x-2");
        assert_eq!(
            drift_keys("pw-prod", &subject),
            Some(("pod:a:x-1", "pod:a:x-2"))
        );
        assert_eq!(drift_keys("pw", &subject), None);
        assert_eq!(drift_keys("pw-prod", "pw-prod pod:a:x-1"), None);
    }
}

#[cfg(test)]
mod finding_change_tests {
    use super::*;
    use crate::event::Severity;

    #[test]
    fn push_decimal_writes_what_display_writes() {
        for n in [0, 7, 9, 10, 99, 100, 4_294_967_295, u64::MAX] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn a_finding_change_names_every_part_in_order() {
        let (active, resolved) = (FindingState::Active, FindingState::Resolved);
        let (warning, error) = (Severity::Warning, Severity::Error);
        let line = |old, new| finding_change(Some(old), new, "auto");
        assert_eq!(
            line((active, Some(1), warning, 3), (active, Some(2), error, 3)).as_deref(),
            Some("clean 1 → 2, severity warning → error")
        );
        assert_eq!(
            line((resolved, None, warning, 3), (active, Some(0), warning, 4)).as_deref(),
            Some("reopened (occurrence 4)")
        );
        assert_eq!(
            line((active, Some(2), warning, 4), (resolved, None, warning, 4)).as_deref(),
            Some("resolved (auto)")
        );
        assert_eq!(
            line(
                (active, Some(12), warning, 4),
                (active, Some(13), warning, 4)
            )
            .as_deref(),
            Some("clean 12 → 13")
        );
        assert_eq!(
            line((active, Some(1), warning, 4), (active, Some(1), warning, 4)),
            None
        );
        assert_eq!(
            finding_change(None, (active, Some(0), error, 1), "auto").as_deref(),
            Some("opened (error)")
        );
    }
}
