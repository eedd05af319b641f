//! Postmortems of Tidemark incidents, rendered as Markdown, HTML or JSON from projection state.
//!
//! [`Postmortem::build`] assembles everything a postmortem says from the [`Projections`] and the
//! stored events at the incident timeline's positions; the renderers turn it into text. Nothing
//! here does IO or reads the clock: the same projections and events always give the same bytes,
//! and "generated at" is a log position, not a wall-clock time.
//!
//! Both text renderers draw the same [`document`] (sections of paragraphs, tables and lists), so
//! Markdown and HTML always say the same thing, and every piece of user text is escaped by the
//! renderer that writes it (HTML by construction: its template is `maud`'s).

mod build;
mod document;
mod html;
mod markdown;
mod text;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tidemark_core::event::ChangeKind;
use tidemark_core::flaps::FlapEpisodeView;
use tidemark_core::incidents::{ChangeRef, FailureLayer, IncidentView, Touch};
use tidemark_core::maintenance::WindowBook;
use tidemark_core::orphans::OrphanView;
use tidemark_core::{Event, Projections, ResolutionKind, Severity, Timestamp};

/// Everything a postmortem says, assembled from the projections and the incident's events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Postmortem {
    /// The incident as users see it (title, severity, state, findings, layers).
    pub incident: IncidentView,
    /// A generated summary: how many findings, how long, how it ended, what fixed it.
    pub tl_dr: String,
    /// Start, end, duration, clusters, peak severity, findings.
    pub impact: Impact,
    /// One row per finding of the incident, in the order they were first seen.
    pub triage: Vec<TriageRow>,
    /// Every event that touched the incident, in log order.
    pub timeline: Vec<TimelineRow>,
    /// Every deploy, rollback and config change on the incident's timeline, in log order, with
    /// how it is linked to the incident (ADR 0007, "Changes during an incident").
    pub changes: Vec<ChangeRow>,
    /// Resources that failed in more than one way across changes, layer by layer.
    pub layers: Vec<LayeredResource>,
    /// Flapping episodes of the incident's findings that overlap the incident, by finding.
    pub flaps: Vec<FlapRow>,
    /// Orphans of the incident's clusters that appeared during the incident.
    pub orphans: Vec<OrphanView>,
    /// Maintenance windows of the incident's clusters that were open while it was (ADR 0007),
    /// in the order they were scheduled.
    pub maintenance: Vec<MaintenanceRow>,
    /// The notes of the incident, by kind, in log order.
    pub notes: Notes,
    /// Actions and decisions written after the incident closed, then generated ones.
    pub follow_ups: Vec<FollowUp>,
    /// The log position the projections were at.
    pub generated_at_seq: u64,
}

/// When and how widely the incident hurt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    /// When it opened (its first finding's opening when it absorbed automatic incidents).
    pub started_at: Timestamp,
    /// When it closed, if it has.
    pub ended_at: Option<Timestamp>,
    /// Ended minus started.
    pub duration_secs: Option<u64>,
    /// The clusters of the incident and of its findings, sorted.
    pub clusters: Vec<String>,
    /// The highest severity of its findings and the declared one.
    pub peak_severity: Severity,
    /// How many findings it has.
    pub findings: usize,
}

/// How a finding of the incident ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The sweep resolved it after enough clean cycles.
    Auto,
    /// An operator resolved it.
    Manual,
    /// An automated remediation resolved it.
    Recipe,
    /// Informational: resolved the moment it opened.
    Informational,
    /// The alerting system resolved it (an alert).
    Source,
    /// Still active at the postmortem's log position.
    StillActive,
}

impl Resolution {
    /// Words for a table cell.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "automatic",
            Self::Manual => "manual",
            Self::Recipe => "recipe",
            Self::Informational => "informational",
            Self::Source => "by the alerting system",
            Self::StillActive => "still active",
        }
    }
}

impl From<ResolutionKind> for Resolution {
    fn from(kind: ResolutionKind) -> Self {
        match kind {
            ResolutionKind::Auto => Self::Auto,
            ResolutionKind::Manual => Self::Manual,
            ResolutionKind::Recipe => Self::Recipe,
            ResolutionKind::Informational => Self::Informational,
            ResolutionKind::Source => Self::Source,
        }
    }
}

/// One finding of the incident: what it looked like when first seen and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageRow {
    /// Its cluster.
    pub cluster: String,
    /// Its key.
    pub check_key: String,
    /// Highest severity seen while in the incident.
    pub severity: Severity,
    /// When the first occurrence overlapping the incident opened.
    pub first_seen_at: Timestamp,
    /// Log position of that.
    pub first_seen_seq: u64,
    /// Its title when it opened (the latest title when the opening event is not at hand).
    pub initial_title: String,
    /// Its detail when it opened.
    pub initial_detail: Option<String>,
    /// Its state when the incident opened.
    pub initial_state: InitialState,
    /// How its last occurrence overlapping the incident ended.
    pub resolution: Resolution,
    /// When.
    pub resolved_at: Option<Timestamp>,
    /// Log position of that.
    pub resolved_seq: Option<u64>,
    /// Who or what resolved it and why, for manual and recipe resolutions.
    pub resolved_by: Option<String>,
    /// Occurrences overlapping the incident (more than one: it came back).
    pub occurrences: u32,
}

/// A finding's state when its incident opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InitialState {
    /// Active when the incident opened, since `since`; its severity then, when an observation
    /// of it is among the incident's events.
    Active {
        /// When the occurrence opened.
        since: Timestamp,
        /// Its severity at the incident's opening (the latest observation up to it).
        severity: Option<Severity>,
    },
    /// Not failing yet when the incident opened: it opened during the incident.
    OpenedLater {
        /// When it opened.
        at: Timestamp,
        /// Its severity when it opened, when that observation is among the incident's events.
        severity: Option<Severity>,
    },
    /// Already resolved when the incident opened (the incident named it afterwards).
    ResolvedBefore {
        /// When it was resolved.
        at: Timestamp,
    },
    /// The findings projection has no occurrence of it (an incident named a finding never seen).
    Unknown,
}

/// One event of the incident's timeline and what it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Log position.
    pub seq: u64,
    /// Event time.
    pub at: Timestamp,
    /// The event's type, e.g. `change.deployed`.
    pub event_type: String,
    /// What the event says, in one line.
    pub event: String,
    /// What it did to the incident, as the projection recorded it.
    pub touches: Vec<Touch>,
    /// The same in words.
    pub effect: String,
}

/// How a change on an incident's timeline is linked to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeLink {
    /// The change names the incident (or one it absorbed), or a check key of one of its
    /// findings.
    Explicit,
    /// The change names neither, and its service is the workload of one of the incident's
    /// findings' resources.
    Resource,
    /// Linked neither way: it was deployed in one of the incident's clusters while the incident
    /// was open (`deploy_during`, `rollback_during`, `config_during` on the timeline).
    Time,
}

impl ChangeLink {
    /// Words for a table cell.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Explicit => "explicitly",
            Self::Resource => "by resource",
            Self::Time => "only by time",
        }
    }
}

/// A `change.deployed` on the incident's timeline and how it is linked to the incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    /// Log position.
    pub seq: u64,
    /// Event time.
    pub at: Timestamp,
    /// The cluster it was deployed in.
    pub cluster: String,
    /// Deploy, rollback or config.
    pub kind: ChangeKind,
    /// The service changed.
    pub service: String,
    /// Its version.
    pub version: String,
    /// What the change says it does.
    pub summary: Option<String>,
    /// How it is linked to the incident.
    pub link: ChangeLink,
}

/// The most open intervals of one maintenance window a postmortem lists (the rest are counted).
pub const MAINTENANCE_INTERVALS_LISTED: usize = 20;

/// A maintenance window that was open while the incident was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRow {
    /// Its cluster.
    pub cluster: String,
    /// Its name.
    pub window: String,
    /// Who scheduled it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// What it covers, in words (`namespace=dnd`, `whole cluster`).
    pub covers: String,
    /// When it was open during the incident (clipped to it), at most
    /// [`MAINTENANCE_INTERVALS_LISTED`].
    pub open: Vec<(Timestamp, Timestamp)>,
    /// Open intervals during the incident not listed.
    pub more_intervals: usize,
    /// The incident's findings it covers (check keys, sorted).
    pub covered_findings: Vec<String>,
    /// How its effect ended, if it did: `cancelled by NAME` (and why), or `replaced`.
    pub ended: Option<String>,
}

/// A resource whose failure changed shape across changes, with the change that ended it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayeredResource {
    /// `Kind namespace/workload`, or the check key when the finding names no resource.
    pub resource: String,
    /// Its layers, in order.
    pub layers: Vec<FailureLayer>,
    /// The last linked change before the last layer's finding resolved, if it did.
    pub fixed_by: Option<ChangeRef>,
}

/// Flapping episodes of one finding of the incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlapRow {
    /// The finding's cluster.
    pub cluster: String,
    /// Its key.
    pub check_key: String,
    /// Its latest title.
    pub title: String,
    /// Its episodes that overlap the incident, oldest first, with the figures.
    pub episodes: Vec<FlapEpisodeView>,
}

/// One note of the incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteRow {
    /// Log position.
    pub seq: u64,
    /// Event time.
    pub at: Timestamp,
    /// Who wrote it.
    pub author: String,
    /// The note.
    pub text: String,
    /// Its links.
    pub links: Vec<String>,
}

/// The notes of an incident by kind, each in log order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notes {
    /// Things suspected.
    pub hypotheses: Vec<NoteRow>,
    /// Things done (up to the close; later ones are follow-ups).
    pub actions: Vec<NoteRow>,
    /// Things decided (up to the close; later ones are follow-ups).
    pub decisions: Vec<NoteRow>,
    /// Things seen.
    pub observations: Vec<NoteRow>,
    /// How it ended.
    pub resolution: Vec<NoteRow>,
}

impl Notes {
    /// Whether there are no notes at all.
    pub fn is_empty(&self) -> bool {
        self.hypotheses.is_empty()
            && self.actions.is_empty()
            && self.decisions.is_empty()
            && self.observations.is_empty()
            && self.resolution.is_empty()
    }
}

/// Where a follow-up comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpSource {
    /// An `action` note written after the incident closed.
    Action,
    /// A `decision` note written after the incident closed.
    Decision,
    /// Generated: a finding of the incident flapped during it.
    Flapping,
    /// Generated: a finding of the incident has a check key with unstable parts.
    UnstableKey,
}

/// Something to do after the incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Where it comes from.
    pub source: FollowUpSource,
    /// What to do.
    pub text: String,
    /// Who wrote it (notes only).
    pub author: Option<String>,
    /// When it was written (notes only).
    pub at: Option<Timestamp>,
    /// Log position of the note.
    pub seq: Option<u64>,
    /// The finding it is about (generated ones).
    pub check_key: Option<String>,
}

/// Why a postmortem could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The projections know no incident with this id.
    #[error("no incident {id:?} in the projections")]
    UnknownIncident {
        /// The id asked for.
        id: String,
    },
    /// The incident's timeline names a log position whose event was not given.
    #[error("the event at log position {seq} of the incident's timeline was not given")]
    MissingEvent {
        /// The position.
        seq: u64,
    },
}

impl Postmortem {
    /// Assembles the postmortem of incident `id` from `projections` folded up to log position
    /// `at_seq`. `events`: the stored events at the incident timeline's positions, (seq, Event),
    /// any order (others are ignored). `windows`: the maintenance books of the incident's
    /// clusters up to `at_seq` (a cluster left out has none).
    pub fn build(
        id: &str,
        projections: &Projections,
        events: &[(u64, Event)],
        at_seq: u64,
        windows: &BTreeMap<String, WindowBook>,
    ) -> Result<Self, BuildError> {
        build::build(id, projections, events, at_seq, windows)
    }

    /// The postmortem as a Markdown document (GitHub-flavoured: tables).
    pub fn to_markdown(&self) -> String {
        markdown::render(&document::document(self))
    }

    /// The postmortem as one self-contained HTML page: inline CSS, no script, no external
    /// resources, every piece of text escaped (by construction: a `maud` template).
    pub fn to_html(&self) -> String {
        html::render(&document::document(self))
    }

    /// The postmortem as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a postmortem always serializes to JSON")
    }
}

/// An output format of a postmortem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Markdown (`md`, `markdown`).
    Markdown,
    /// A self-contained HTML page (`html`).
    Html,
    /// Pretty JSON of the whole [`Postmortem`] (`json`).
    Json,
}

impl Format {
    /// The names [`Format::from_str`] accepts.
    pub const CHOICES: &'static [&'static str] = &["md", "markdown", "html", "json"];

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Markdown => "md",
            Self::Html => "html",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Json => "json",
        })
    }
}

/// A format name that is not one of [`Format::CHOICES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown postmortem format {given:?}: choose md (or markdown), html or json")]
pub struct ParseFormatError {
    /// What was given.
    pub given: String,
}

impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Self::Markdown),
            "html" => Ok(Self::Html),
            "json" => Ok(Self::Json),
            _ => Err(ParseFormatError {
                given: s.to_owned(),
            }),
        }
    }
}

/// The postmortem in `format`.
pub fn render(postmortem: &Postmortem, format: Format) -> String {
    match format {
        Format::Markdown => postmortem.to_markdown(),
        Format::Html => postmortem.to_html(),
        Format::Json => postmortem.to_json(),
    }
}
