//! Words shared by the builder and the renderers: times, durations, counts, changes, and what
//! a timeline touch means.

use tidemark_core::Timestamp;
use tidemark_core::event::ChangeKind;
use tidemark_core::incidents::{ChangeRef, Touch};

/// `2026-03-02` of an instant, in UTC.
pub(crate) fn date(at: Timestamp) -> String {
    at.to_rfc3339()[..10].to_owned()
}

/// `14:03:53` of an instant, in UTC (fractions of a second left out).
pub(crate) fn clock(at: Timestamp) -> String {
    at.to_rfc3339()[11..19].to_owned()
}

/// `14:03` of an instant, in UTC.
pub(crate) fn hour_minute(at: Timestamp) -> String {
    at.to_rfc3339()[11..16].to_owned()
}

/// `2026-03-02 14:03:53` of an instant, in UTC.
pub(crate) fn date_clock(at: Timestamp) -> String {
    format!("{} {}", date(at), clock(at))
}

/// `4 h 5 min`, `45 min`, `30 s`, `2 d 3 h`.
pub(crate) fn duration(secs: u64) -> String {
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    let parts: Vec<String> = if days > 0 {
        vec![format!("{days} d"), format!("{hours} h")]
    } else if hours > 0 {
        vec![format!("{hours} h"), format!("{minutes} min")]
    } else if minutes > 0 {
        vec![format!("{minutes} min"), format!("{seconds} s")]
    } else {
        vec![format!("{seconds} s")]
    };
    let mut parts: Vec<String> = parts.into_iter().filter(|p| !p.starts_with("0 ")).collect();
    if parts.is_empty() {
        parts.push("0 s".to_owned());
    }
    parts.join(" ")
}

/// `1 finding`, `7 findings`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `deploy`, `rollback`, `config change`.
pub(crate) fn change_kind(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Deploy => "deploy",
        ChangeKind::Rollback => "rollback",
        ChangeKind::Config => "config change",
    }
}

/// `deploy dnd-backend sha-0d9e8f7`.
pub(crate) fn change(change: &ChangeRef) -> String {
    format!(
        "{} {} {}",
        change_kind(change.kind),
        change.service,
        change.version
    )
}

/// The text with a full stop unless it ends with punctuation already.
pub(crate) fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// What an event did to the incident, in words: touches of one kind share a phrase
/// (`a, b opened`); phrases are joined with `; `.
pub(crate) fn effects(touches: &[Touch]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for touch in touches {
        let key = touch.check_key.as_deref();
        match groups.last_mut() {
            Some((change, keys))
                if *change == touch.change && key.is_some() && !keys.is_empty() =>
            {
                keys.extend(key);
            }
            _ => groups.push((touch.change.as_str(), key.into_iter().collect())),
        }
    }
    groups
        .iter()
        .map(|(change, keys)| effect(change, keys))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One kind of change to the incident, for the findings (or incidents) `keys`.
fn effect(change: &str, keys: &[&str]) -> String {
    let list = keys.join(", ");
    let keyed = |what: &str| format!("{list} {what}");
    match change {
        "opened" => keyed("opened"),
        "maintenance_ended" => keyed("joined when its maintenance window ended"),
        "resolved_auto" => keyed("resolved automatically"),
        "resolved_manual" => keyed("resolved by hand"),
        "resolved_recipe" => keyed("resolved by a recipe"),
        "resolved_source" => keyed("resolved by the alerting system"),
        "informational" => keyed("recorded (informational)"),
        "severity_changed" => keyed("changed severity"),
        "flap_started_count" => keyed("started flapping (auto-resolution count)"),
        "flap_stopped_count" => keyed("stopped flapping (auto-resolution count)"),
        "flap_started_state_change" => keyed("started flapping (state change)"),
        "flap_stopped_state_change" => keyed("stopped flapping (state change)"),
        "joined" => keyed("joined the incident"),
        "layer" => format!("new failure layer on {list}"),
        "no_effect" => format!("same failure on {list}: the change did not help"),
        "layer_again" => format!("an earlier failure layer again on {list}"),
        "failed_differently" => {
            format!("{list} failed differently after the rollback (its outcome, not a new layer)")
        }
        "merged" => match keys.len() {
            0 => "absorbed into another incident".to_owned(),
            1 => format!("absorbed incident {list}"),
            _ => format!("absorbed incidents {list}"),
        },
        "incident_opened" => "incident opened".to_owned(),
        "incident_updated" => "incident updated".to_owned(),
        "incident_closed" => "incident closed".to_owned(),
        "deploy" => "deploy linked".to_owned(),
        "rollback" => "rollback linked".to_owned(),
        "config" => "config change linked".to_owned(),
        "deploy_during" => "deploy during the incident, linked only by time".to_owned(),
        "rollback_during" => "rollback during the incident, linked only by time".to_owned(),
        "config_during" => "config change during the incident, linked only by time".to_owned(),
        "alert_fired" => "alert fired".to_owned(),
        "alert_resolved" => "alert resolved".to_owned(),
        other => match (other.strip_prefix("note_"), keys.is_empty()) {
            (Some(kind), _) => format!("{kind} noted"),
            (None, true) => other.to_owned(),
            (None, false) => format!("{other} ({list})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(30), "30 s");
        assert_eq!(duration(300), "5 min");
        assert_eq!(duration(330), "5 min 30 s");
        assert_eq!(duration(4 * 3600 + 300), "4 h 5 min");
        assert_eq!(duration(7200), "2 h");
        assert_eq!(duration(2 * 86_400 + 3 * 3600 + 5), "2 d 3 h");
    }

    #[test]
    fn lists_join_with_and() {
        let items = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(join_and(&items(&[])), "");
        assert_eq!(join_and(&items(&["a"])), "a");
        assert_eq!(join_and(&items(&["a", "b", "c"])), "a, b and c");
    }
}
