//! What an event changed in the projections, as `tidemark replay --step` says it: a digest of
//! every projection ([`Digest::of`]) compared before and after the event ([`Digest::changes`]).
//! The one definition of a change; ADR 0008 (change records) builds the fold's own records on
//! it, and proves them equal to this comparison.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::findings::UnreachableReason;
use crate::orphans::OrphanView;
use crate::{FindingState, Projections};

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

/// What `--step` compares before and after each event.
#[derive(Debug, Default, PartialEq)]
pub struct Digest {
    /// (cluster check_key) → (state, clean cycles, severity, occurrences).
    findings: BTreeMap<String, (FindingState, Option<u32>, String, u64, String)>,
    flapping: BTreeMap<String, String>,
    unreachable: BTreeMap<String, String>,
    drift: BTreeSet<String>,
    unstable: BTreeSet<String>,
    orphans: BTreeMap<String, String>,
    candidates: BTreeMap<String, String>,
    /// id → (state, finding keys, layers, timeline entries, title).
    incidents: BTreeMap<String, (String, BTreeSet<String>, usize, u64, String)>,
}

fn key(cluster: &str, check_key: &str) -> String {
    format!("{cluster} {check_key}")
}

/// How an orphan is named in a step: kind and what.
pub fn orphan_label(o: &OrphanView) -> String {
    let what = orphan_subject(o);
    format!("{} {} {what}", o.cluster, o.kind.as_str())
}

impl Digest {
    /// The digest of the whole state.
    pub fn of(p: &Projections) -> Self {
        let f = p.findings();
        let findings = f
            .views()
            .into_iter()
            .map(|v| {
                (
                    key(&v.cluster, &v.check_key),
                    (
                        v.state,
                        v.clean_cycles,
                        v.severity.to_string(),
                        v.occurrences,
                        v.resolution_kind
                            .map_or_else(String::new, |k| k.as_str().to_owned()),
                    ),
                )
            })
            .collect();
        let flapping = f
            .flaps(None)
            .into_iter()
            .filter(|v| v.flapping || v.flapping_state_change)
            .map(|v| {
                let how = match (v.flapping, v.flapping_state_change) {
                    (true, true) => "count + state change",
                    (true, false) => "count",
                    _ => "state change",
                };
                (key(&v.cluster, &v.check_key), how.to_owned())
            })
            .collect();
        let stuck = f.stuck(None);
        let unreachable = stuck
            .unreachable
            .iter()
            .map(|u| {
                let reason = match u.reason {
                    UnreachableReason::CategoryDisabled => "category_disabled",
                    UnreachableReason::CategoryNotRun => "category_not_run",
                };
                (key(&u.cluster, &u.check_key), reason.to_owned())
            })
            .collect();
        let drift = stuck
            .drift_suspects
            .iter()
            .map(|d| {
                format!(
                    "{} {} → {}",
                    d.cluster, d.record.old_check_key, d.record.new_check_key
                )
            })
            .collect();
        let unstable = p
            .unstable_keys(None)
            .into_iter()
            .map(|k| key(&k.cluster, &k.advice.check_key))
            .collect();
        let orphans = p
            .orphans()
            .orphans(None)
            .iter()
            .map(|o| (orphan_label(o), o.reason.clone()))
            .collect();
        let candidates = p
            .orphans()
            .candidates(None)
            .iter()
            .map(|o| (orphan_label(o), format!("{} scan(s)", o.scans)))
            .collect();
        let incidents = p
            .incidents()
            .views(f, None, true)
            .into_iter()
            .map(|i| {
                let state = format!("{:?}", i.state).to_lowercase();
                let keys = i.findings.iter().map(|f| f.check_key.clone()).collect();
                let layers = i.layers.iter().map(|l| l.layers.len()).sum();
                (i.id, (state, keys, layers, i.timeline_entries, i.title))
            })
            .collect();
        Self {
            findings,
            flapping,
            unreachable,
            drift,
            unstable,
            orphans,
            candidates,
            incidents,
        }
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
            match self.findings.get(k) {
                None if *state == FindingState::Resolved => {
                    push("finding", k, format!("opened and resolved at once ({how})"))
                }
                None => push("finding", k, format!("opened ({severity})")),
                Some(old) if old == new => {}
                Some((old_state, old_clean, old_severity, old_occurrences, _)) => {
                    let mut what = Vec::new();
                    if occurrences != old_occurrences && *state == FindingState::Active {
                        what.push(format!("reopened (occurrence {occurrences})"));
                    } else if old_state != state {
                        what.push(match state {
                            FindingState::Active => "active".to_owned(),
                            FindingState::Resolved => format!("resolved ({how})"),
                        });
                    }
                    if old_clean != clean
                        && let (Some(a), Some(b)) = (old_clean, clean)
                    {
                        what.push(format!("clean {a} → {b}"));
                    }
                    if old_severity != severity {
                        what.push(format!("severity {old_severity} → {severity}"));
                    }
                    if !what.is_empty() {
                        push("finding", k, what.join(", "));
                    }
                }
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

fn diff_maps(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    what: &'static str,
    added: &str,
    removed: &str,
    push: &mut impl FnMut(&'static str, &str, String),
) {
    for (k, v) in after {
        match before.get(k) {
            None => push(what, k, format!("{added} ({v})")),
            Some(old) if old != v => push(what, k, format!("{old} → {v}")),
            Some(_) => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        push(what, k, removed.to_owned());
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
