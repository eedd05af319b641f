//! The web timeline: server-rendered HTML pages (incidents, an incident with its finding lanes
//! and timeline, a finding's history, the orphan graph), as pure functions from projection views
//! to `String`. One inline stylesheet, inline SVG charts, no external requests; the pages of
//! the present (incidents, an incident, a finding) inline a small script that follows the live
//! stream and reloads their `<main>` when an event changes them (`live.js`). Without
//! JavaScript every page is complete, only not updated.
//!
//! Every page is a `maud` template, so every piece of data is escaped by construction (see
//! [`html`]); path parts go through `html::encode_segment`. The same input gives the same bytes.
//! One file per page (`incidents`, `incident`, `finding`, `alerts`, `maintenance`, `orphans`), and the parts they share:
//! `html` (the shell and small parts), `timeline` (the table), `lanes` (the chart), `graph`.

mod alerts;
mod finding;
mod graph;
mod html;
mod incident;
mod incidents;
mod lanes;
mod maintenance;
mod orphans;
mod timeline;

#[cfg(test)]
mod tests;

use tidemark_core::findings::{FindingOverview, HistoryWindow, Occurrence};
use tidemark_core::flaps::FlapEpisodeView;
use tidemark_core::incidents::{IncidentKind, IncidentState, Touch};
use tidemark_core::maintenance::BookEntry;
use tidemark_core::{EventType, Severity, Timestamp};

pub use alerts::{ALERTS_SHOWN, UNHELD_SHOWN, alerts_page};
pub use finding::finding_page;
pub use html::{Live, not_found_page};
pub use incident::incident_page;
pub use incidents::incidents_page;
pub use maintenance::{WINDOWS_SHOWN, maintenance_page};
pub use orphans::{ORPHANS_SHOWN, orphans_page};

/// One event of a timeline as the pages show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineLine {
    /// Log position.
    pub seq: u64,
    /// Event time.
    pub at: Timestamp,
    /// Its type.
    pub event_type: EventType,
    /// What it says, in one line (`tidemark_core::describe::one_line`).
    pub summary: String,
    /// What it did to the incident or finding shown.
    pub touches: Vec<Touch>,
}

/// What the finding page shows: the finding, one page of its timeline, and the part of its
/// history that stretch of the log overlaps (never the whole history).
#[derive(Clone, Debug, PartialEq)]
pub struct FindingPage {
    /// The finding: its current occurrence and counts.
    pub finding: FindingOverview,
    /// One page of its timeline, in log order.
    pub timeline: Vec<TimelineLine>,
    /// The occurrences the page's stretch of the log overlaps, numbered in the whole history.
    pub history: HistoryWindow<Occurrence>,
    /// The flap episodes it overlaps, numbered likewise.
    pub flaps: HistoryWindow<FlapEpisodeView>,
    /// The `before` of the older page; `None` when there is nothing older.
    pub older: Option<u64>,
    /// The `after` of the newer page; `None` when this is the newest.
    pub newer: Option<u64>,
    /// The page size asked for, kept in the links (`None`: the default).
    pub limit: Option<usize>,
    /// The maintenance windows of its cluster that cover it (the lane's bands).
    pub maintenance: Vec<BookEntry>,
    /// Set when the page shows the present: it follows its cluster's events.
    pub live: Option<Live>,
}

/// One finding's lane on the incident chart.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingLane {
    /// The finding's key.
    pub check_key: String,
    /// Its severity (the lane's colour).
    pub severity: Severity,
    /// Every occurrence, oldest first.
    pub history: Vec<Occurrence>,
    /// Its flap episodes, oldest first.
    pub flaps: Vec<FlapEpisodeView>,
    /// The maintenance windows whose matchers cover it, whenever they were in effect: drawn as
    /// bands where they were open over the chart's span.
    pub maintenance: Vec<BookEntry>,
}

fn incident_state_word(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Open => "open",
        IncidentState::Closed => "closed",
        IncidentState::Merged => "merged",
    }
}

fn incident_kind_word(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Explicit => "explicit",
        IncidentKind::Automatic => "automatic",
    }
}
