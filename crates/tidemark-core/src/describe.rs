//! One line of text per event, for timelines read by people (CLI, postmortems, the web page).

use crate::event::{
    ChangeKind, Event, MaintenanceSchedule, ManualResolutionKind, NoteKind, Payload, SpanStatus,
};
use crate::settings::MAX_FLAP_WINDOW_SECS;

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// What a maintenance window's matchers cover, in words: `namespace=dnd service=api`, or `whole
/// cluster` when none is given.
pub fn maintenance_matchers(m: &crate::event::MaintenanceMatchers) -> String {
    let mut parts = Vec::new();
    if let Some(ns) = &m.namespace {
        parts.push(format!("namespace={ns}"));
    }
    if let Some(service) = &m.service {
        parts.push(format!("service={service}"));
    }
    if let Some(name) = &m.alert_name {
        parts.push(format!("alert_name={name}"));
    }
    if let Some(pattern) = &m.check_key {
        parts.push(format!("check_key={pattern}"));
    }
    parts.extend(m.labels.iter().map(|(k, v)| format!("{k}={v}")));
    if parts.is_empty() {
        "whole cluster".to_owned()
    } else {
        parts.join(" ")
    }
}

/// What the event says, in one line.
pub fn one_line(event: &Event) -> String {
    match &event.payload {
        Payload::CycleCompleted(c) => format!(
            "cycle {}: {} finding(s); ran {}",
            c.cycle,
            c.findings.len(),
            if c.categories.is_empty() {
                "the findings' categories".to_owned()
            } else {
                c.categories.join(", ")
            }
        ),
        Payload::FindingResolved(r) => {
            let how = match r.kind {
                ManualResolutionKind::Manual => "by hand".to_owned(),
                ManualResolutionKind::Recipe => {
                    format!("by recipe {}", r.recipe.as_deref().unwrap_or("?"))
                }
            };
            let mut line = format!("resolved {} {how}", r.check_key);
            if let Some(by) = &r.by {
                line.push_str(&format!(" ({by})"));
            }
            if let Some(reason) = &r.reason {
                line.push_str(&format!(": {reason}"));
            }
            line
        }
        Payload::SettingsChanged(change) => match change.flap_window_secs {
            // Only a log written before the limit holds one: say how the fold reads it.
            Some(window) if window > MAX_FLAP_WINDOW_SECS => format!(
                "settings changed; flap_window_secs {window} is above the limit of \
                 {MAX_FLAP_WINDOW_SECS} and is read as {MAX_FLAP_WINDOW_SECS}"
            ),
            _ => "settings changed".to_owned(),
        },
        Payload::InventoryObserved(i) => format!(
            "inventory scan {}: {} resource(s) of {}",
            i.scan,
            i.resources.len(),
            i.kinds.join(", ")
        ),
        Payload::TrackingUpserted(t) => format!("tracking row {} ({}) upserted", t.key, t.kind),
        Payload::TrackingDeleted(t) => format!("tracking row {} ({}) deleted", t.key, t.kind),
        Payload::SpanRecorded(s) => format!(
            "span {} of {} in trace {}{}{}",
            s.name,
            s.service,
            short(&s.trace_id),
            match &s.parent_span_id {
                Some(parent) => format!(", parent {}", short(parent)),
                None => ", root".to_owned(),
            },
            match s.status {
                SpanStatus::Error => ": error",
                _ => "",
            }
        ),
        Payload::AlertFired(a) => format!("alert {} fired ({})", a.name, a.severity),
        Payload::AlertResolved(a) => format!("alert {} resolved", a.name),
        Payload::ChangeDeployed(d) => {
            let kind = match d.kind {
                ChangeKind::Deploy => "deploy",
                ChangeKind::Rollback => "rollback",
                ChangeKind::Config => "config change",
            };
            let mut line = format!("{kind} {} {}", d.service, d.version);
            if let Some(link) = &d.link {
                line.push_str(&format!(" ({link})"));
            }
            if let Some(summary) = &d.summary {
                line.push_str(&format!(": {summary}"));
            }
            line
        }
        Payload::NoteAdded(n) => {
            let kind = match n.kind {
                NoteKind::Observation => "observation",
                NoteKind::Hypothesis => "hypothesis",
                NoteKind::Action => "action",
                NoteKind::Decision => "decision",
                NoteKind::Resolution => "resolution",
            };
            format!("{kind} by {}: {}", n.author, n.text)
        }
        Payload::IncidentOpened(i) => format!(
            "incident {} opened{}",
            i.incident,
            i.title
                .as_deref()
                .map(|t| format!(": {t}"))
                .unwrap_or_default()
        ),
        Payload::IncidentUpdated(i) => format!(
            "incident {} updated{}",
            i.incident,
            i.summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ),
        Payload::IncidentClosed(i) => format!(
            "incident {} closed{}",
            i.incident,
            i.summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ),
        Payload::MaintenanceScheduled(m) => {
            let when = match &m.schedule {
                MaintenanceSchedule::Once(span) => {
                    format!("{} to {}", span.starts_at, span.ends_at)
                }
                MaintenanceSchedule::TimeIntervals(specs) => {
                    format!("recurring ({} time interval(s))", specs.len())
                }
            };
            format!(
                "maintenance window {} scheduled by {}, {when}: {}",
                m.window, m.by, m.reason
            )
        }
        Payload::MaintenanceCancelled(m) => {
            let mut line = format!("maintenance window {} cancelled by {}", m.window, m.by);
            if let Some(reason) = &m.reason {
                line.push_str(&format!(": {reason}"));
            }
            line
        }
    }
}

/// Which entries of a timeline in log order are **late**: earlier than an entry before them.
/// Such an event was applied where it landed in the log, at its cluster's clock (ADR 0004), so
/// a reader sees time go back there; timelines mark it rather than reorder it.
pub fn late_entries(times: impl IntoIterator<Item = crate::Timestamp>) -> Vec<bool> {
    let mut latest: Option<crate::Timestamp> = None;
    times
        .into_iter()
        .map(|at| {
            let late = latest.is_some_and(|latest| at < latest);
            latest = Some(latest.map_or(at, |latest| latest.max(at)));
            late
        })
        .collect()
}

/// The same for a timeline in time order (log positions given in that order): an entry is late
/// when an entry with a later time was stored before it.
pub fn late_entries_in_time_order(positions: impl IntoIterator<Item = u64>) -> Vec<bool> {
    let positions: Vec<u64> = positions.into_iter().collect();
    let mut late = vec![false; positions.len()];
    let mut earliest_after: Option<u64> = None;
    for (i, &seq) in positions.iter().enumerate().rev() {
        late[i] = earliest_after.is_some_and(|after| after < seq);
        earliest_after = Some(earliest_after.map_or(seq, |after| after.min(seq)));
    }
    late
}

#[cfg(test)]
mod late_tests {
    use super::late_entries;
    use crate::Timestamp;

    #[test]
    fn an_entry_earlier_than_any_before_it_is_late() {
        let t = Timestamp::from_unix_secs;
        assert_eq!(
            late_entries([t(10), t(20), t(15), t(20), t(5), t(30)]),
            [false, false, true, false, true, false]
        );
        assert!(late_entries([]).is_empty());
    }

    #[test]
    fn in_time_order_an_entry_stored_after_a_later_one_is_late() {
        use super::late_entries_in_time_order;
        assert_eq!(
            late_entries_in_time_order([1, 7, 2, 3, 8, 4]),
            [false, true, false, false, true, false]
        );
    }
}
