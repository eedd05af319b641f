//! The replay corpus: `replay/<case>/` holds a recorded incident (`events.ndjson`), its named
//! checkpoints (`checkpoints.json`) and what the projections must conclude at each of them and
//! at the end (`expected/<checkpoint>/*.json`, `expected/end/postmortem-<incident>.md`).
//! `tidemark replay --check` compares, `--bless` writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tidemark_core::{Applied, Event, LogFold, Projections};

use crate::ndjson::{for_each_event, open};
use crate::views::{FlapsReport, IncidentsOutput, OrphansOutput, StuckOutput};
use crate::{CliError, exit};

/// The log file of a case.
pub const EVENTS_FILE: &str = "events.ndjson";
/// The checkpoints of a case (optional: without it only `end` is checked).
pub const CHECKPOINTS_FILE: &str = "checkpoints.json";
/// The folder of expectations.
pub const EXPECTED_DIR: &str = "expected";
/// The checkpoint every case has: after the last event.
pub const END: &str = "end";

/// A named point of a case's log.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// Folder name under `expected/`: lowercase letters, digits and `-`.
    pub name: String,
    /// The state right after this event id was applied.
    #[serde(default)]
    pub after_event: Option<String>,
    /// ... or after this log position.
    #[serde(default)]
    pub at: Option<u64>,
    /// What to look at there (for people; `--step` prints it).
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointsFile {
    checkpoints: Vec<CheckpointSpec>,
}

/// A checkpoint resolved to a log position.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub name: String,
    pub seq: u64,
    pub note: Option<String>,
}

/// Rendered views of one checkpoint: file name → contents.
pub type ViewFiles = BTreeMap<String, String>;

/// A case, loaded: its events in log order (duplicates dropped) and its checkpoints.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    /// `(seq, event)` of every event applied, in log order.
    pub events: Vec<(u64, Event)>,
    /// Named checkpoints in log order, then `end`.
    pub checkpoints: Vec<Checkpoint>,
}

fn data_error(error: anyhow::Error) -> CliError {
    CliError::new(exit::DATA_ERROR, error)
}

/// The events the bridge stores for a log line holding an Alertmanager webhook as the bridge
/// received it (`{"alertmanager_webhook": BODY, "received_at": RFC3339}`,
/// [`tidemark_core::alertmanager::translate_recorded`]: the bridge's own rules and defaults), if
/// it is one: the events, or why the webhook does not translate.
pub(crate) fn bridged_events(raw: &[u8]) -> Option<Result<Vec<Event>, String>> {
    tidemark_core::alertmanager::translate_recorded(raw).map(|result| {
        result.map_err(|e| format!("the Alertmanager webhook does not translate: {e}"))
    })
}

/// Reads a log strictly: every line must be a valid event, or an Alertmanager webhook as the
/// bridge received it (`{"alertmanager_webhook": BODY, "received_at": RFC3339}`, which stands
/// for the events the bridge stores for it). Returns the events the fold applied (a repeated id
/// takes no position, as in the store) with their positions.
pub fn read_log(path: &Path) -> Result<Vec<(u64, Event)>, CliError> {
    let (reader, _) = open(path)?;
    let mut fold = LogFold::new();
    let mut events = Vec::new();
    for_each_event(
        reader,
        &indicatif::ProgressBar::hidden(),
        tidemark_core::Contract::Logged,
        |line, raw, decoded| {
            let decoded = match (decoded, bridged_events(raw)) {
                (Ok(event), _) => vec![event],
                (Err(_), Some(Ok(bridged))) => bridged,
                (Err(_), Some(Err(e))) => {
                    return Err(data_error(anyhow::anyhow!(
                        "{} line {line}: {e}\nfix the line: a corpus log must be valid as a whole",
                        path.display()
                    )));
                }
                (Err(e), None) => {
                    return Err(data_error(anyhow::anyhow!(
                        "{}: {e}\nfix the line: a corpus log must be valid as a whole",
                        path.display()
                    )));
                }
            };
            for event in decoded {
                if let Applied::At(seq) = fold.apply(&event) {
                    events.push((seq, event));
                }
            }
            Ok(true)
        },
    )?;
    Ok(events)
}

impl Case {
    /// Loads the case in `dir` (it holds `events.ndjson`).
    pub fn load(dir: &Path) -> Result<Self, CliError> {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        let events = read_log(&dir.join(EVENTS_FILE))?;
        let last_seq = events.last().map_or(0, |(seq, _)| *seq);
        let checkpoints_path = dir.join(CHECKPOINTS_FILE);
        let specs = if checkpoints_path.exists() {
            let text = std::fs::read_to_string(&checkpoints_path).map_err(|e| {
                CliError::new(
                    exit::NO_INPUT,
                    anyhow::anyhow!("cannot read {}: {e}", checkpoints_path.display()),
                )
            })?;
            serde_json::from_str::<CheckpointsFile>(&text)
                .map_err(|e| {
                    data_error(anyhow::anyhow!(
                        "{}: {e}\nexpected {{\"checkpoints\": [{{\"name\", \"after_event\" or \"at\", \"note\"}}]}}",
                        checkpoints_path.display()
                    ))
                })?
                .checkpoints
        } else {
            Vec::new()
        };
        let mut checkpoints = Vec::new();
        for spec in specs {
            let bad = |what: String| {
                data_error(anyhow::anyhow!(
                    "{}: checkpoint {:?}: {what}",
                    checkpoints_path.display(),
                    spec.name
                ))
            };
            if spec.name.is_empty()
                || spec.name == END
                || !spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(bad(format!(
                    "a name is lowercase letters, digits and `-`, and not `{END}`"
                )));
            }
            let seq = match (&spec.after_event, spec.at) {
                (Some(id), None) => events
                    .iter()
                    .find(|(_, e)| e.id.0 == *id)
                    .map(|(seq, _)| *seq)
                    .ok_or_else(|| bad(format!("no event {id:?} in {EVENTS_FILE}")))?,
                (None, Some(at)) if (1..=last_seq).contains(&at) => at,
                (None, Some(at)) => {
                    return Err(bad(format!("position {at} is not in 1..={last_seq}")));
                }
                _ => return Err(bad("give exactly one of `after_event` and `at`".into())),
            };
            if checkpoints.iter().any(|c: &Checkpoint| c.name == spec.name) {
                return Err(bad("the name is used twice".into()));
            }
            checkpoints.push(Checkpoint {
                name: spec.name,
                seq,
                note: spec.note,
            });
        }
        checkpoints.sort_by_key(|c| c.seq);
        checkpoints.push(Checkpoint {
            name: END.to_owned(),
            seq: last_seq,
            note: None,
        });
        Ok(Self {
            name,
            dir: dir.to_owned(),
            events,
            checkpoints,
        })
    }

    /// What the projections conclude at each checkpoint: file name → contents.
    pub fn render(&self) -> Result<Vec<(Checkpoint, ViewFiles)>, CliError> {
        let mut projections = Projections::new();
        let mut out = Vec::new();
        let mut next = 0;
        let mut applied = 0u64;
        for checkpoint in &self.checkpoints {
            while next < self.events.len() && self.events[next].0 <= checkpoint.seq {
                let (seq, event) = &self.events[next];
                projections.apply(*seq, event);
                applied = *seq;
                next += 1;
            }
            let postmortems = checkpoint.name == END;
            out.push((
                checkpoint.clone(),
                render_views(&projections, &self.events, applied, postmortems)?,
            ));
        }
        Ok(out)
    }
}

fn pretty(value: &impl Serialize) -> Result<String, CliError> {
    let mut text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    text.push('\n');
    Ok(text)
}

/// Every view of the state after log position `at_seq`, as the store commands print them:
/// `findings --json`, `flaps --json`, `stuck --json`, `orphans --json --candidates`,
/// `incidents --json --all`, and (with `postmortems`) `export ID` of every listed incident.
pub fn render_views(
    p: &Projections,
    events: &[(u64, Event)],
    at_seq: u64,
    postmortems: bool,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut files = BTreeMap::new();
    files.insert("findings.json".into(), pretty(&p.findings().views())?);
    files.insert(
        "flaps.json".into(),
        pretty(&FlapsReport::of(p, None, at_seq))?,
    );
    files.insert(
        "stuck.json".into(),
        pretty(&StuckOutput::of(p, None, None, at_seq))?,
    );
    files.insert(
        "orphans.json".into(),
        pretty(&OrphansOutput::of(p, None, true, at_seq))?,
    );
    files.insert(
        "incidents.json".into(),
        pretty(&IncidentsOutput::of(p, None, true, at_seq))?,
    );
    if postmortems {
        for incident in p.incidents().views(p.findings(), None, false) {
            let markdown = postmortem_markdown(p, events, &incident.id, at_seq)?;
            files.insert(format!("postmortem-{}.md", incident.id), markdown);
        }
    }
    Ok(files)
}

/// The postmortem of `id` exactly as `tidemark export ID` writes it (Markdown).
pub fn postmortem_markdown(
    p: &Projections,
    events: &[(u64, Event)],
    id: &str,
    at_seq: u64,
) -> Result<String, CliError> {
    let positions: Vec<u64> = p
        .incidents()
        .incident(id)
        .map(|i| p.incidents().timeline_positions(&i, 0, usize::MAX))
        .unwrap_or_default();
    // The same events the store hands `export`: those the incident's timeline names.
    let timeline_events: Vec<(u64, Event)> = positions
        .iter()
        .filter_map(|seq| {
            events
                .binary_search_by_key(seq, |(s, _)| *s)
                .ok()
                .map(|i| events[i].clone())
        })
        .collect();
    // The maintenance windows of every cluster, from the log's events up to `at_seq`.
    let mut books: std::collections::BTreeMap<String, tidemark_core::maintenance::WindowBook> =
        std::collections::BTreeMap::new();
    for (seq, event) in events.iter().filter(|(seq, _)| *seq <= at_seq) {
        if matches!(
            event.payload,
            tidemark_core::Payload::MaintenanceScheduled(_)
                | tidemark_core::Payload::MaintenanceCancelled(_)
        ) {
            books
                .entry(event.cluster.clone())
                .or_default()
                .apply(*seq, event);
        }
    }
    let postmortem = tidemark_export::Postmortem::build(id, p, &timeline_events, at_seq, &books)
        .map_err(|e| CliError::new(exit::FAILURE, e))?;
    Ok(tidemark_export::render(
        &postmortem,
        tidemark_export::Format::Markdown,
    ))
}

/// The case folders under `path`: `path` itself when it holds `events.ndjson`, else each
/// subfolder that does, by name.
pub fn case_dirs(path: &Path) -> Result<Vec<PathBuf>, CliError> {
    if path.join(EVENTS_FILE).is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| {
        CliError::new(
            exit::NO_INPUT,
            anyhow::anyhow!(
                "cannot read {}: {e}\ngive a case folder (with {EVENTS_FILE}) or the corpus folder (replay/)",
                path.display()
            ),
        )
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(EVENTS_FILE).is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(CliError::new(
            exit::NO_INPUT,
            anyhow::anyhow!(
                "{} holds no case: a case is a folder with {EVENTS_FILE}",
                path.display()
            ),
        ));
    }
    Ok(dirs)
}

/// How one expected file compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewStatus {
    Match,
    Differ,
    /// The expected file does not exist.
    Missing,
    /// An expected file the replay does not produce (a stale checkpoint or incident).
    Unexpected,
}

/// One view at one checkpoint.
#[derive(Debug, Serialize)]
pub struct ViewResult {
    pub view: String,
    pub status: ViewStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// One checkpoint of a case.
#[derive(Debug, Serialize)]
pub struct CheckpointResult {
    pub name: String,
    pub seq: u64,
    pub views: Vec<ViewResult>,
}

/// One case.
#[derive(Debug, Serialize)]
pub struct CaseResult {
    pub case: String,
    pub dir: String,
    pub events: u64,
    pub checkpoints: Vec<CheckpointResult>,
    /// Where the fold's change records first differ from the whole-state comparison of
    /// `replay --step --verify` (ADR 0008), in words; `None` when they agree at every event.
    pub changes_disagree: Option<String>,
}

impl CaseResult {
    pub fn failures(&self) -> usize {
        usize::from(self.changes_disagree.is_some())
            + self
                .checkpoints
                .iter()
                .flat_map(|c| &c.views)
                .filter(|v| v.status != ViewStatus::Match)
                .count()
    }
}

/// Compares a case with its `expected/` folder.
pub fn check_case(case: &Case) -> Result<CaseResult, CliError> {
    let expected_root = case.dir.join(EXPECTED_DIR);
    let mut result = CaseResult {
        case: case.name.clone(),
        dir: case.dir.display().to_string(),
        events: case.events.len() as u64,
        checkpoints: Vec::new(),
        // Compared by `replay --check` (the walk is `step`'s, which reads this module).
        changes_disagree: None,
    };
    let rendered = case.render()?;
    for (checkpoint, files) in &rendered {
        let dir = expected_root.join(&checkpoint.name);
        let mut views = Vec::new();
        for (file, actual) in files {
            let path = dir.join(file);
            let (status, diff) = match std::fs::read_to_string(&path) {
                Err(_) => (ViewStatus::Missing, None),
                Ok(expected) if expected == *actual => (ViewStatus::Match, None),
                Ok(expected) => (
                    ViewStatus::Differ,
                    Some(unified_diff(
                        &expected,
                        actual,
                        &path.display().to_string(),
                        &format!("tidemark replay (log position {})", checkpoint.seq),
                    )),
                ),
            };
            views.push(ViewResult {
                view: file.clone(),
                status,
                diff,
            });
        }
        for file in expected_files(&dir) {
            if !files.contains_key(&file) {
                views.push(ViewResult {
                    view: file,
                    status: ViewStatus::Unexpected,
                    diff: None,
                });
            }
        }
        result.checkpoints.push(CheckpointResult {
            name: checkpoint.name.clone(),
            seq: checkpoint.seq,
            views,
        });
    }
    // Folders of checkpoints the case no longer names.
    let names: Vec<&str> = rendered.iter().map(|(c, _)| c.name.as_str()).collect();
    for dir in sub_dirs(&expected_root) {
        if !names.contains(&dir.as_str()) {
            result.checkpoints.push(CheckpointResult {
                name: dir.clone(),
                seq: 0,
                views: expected_files(&expected_root.join(&dir))
                    .into_iter()
                    .map(|view| ViewResult {
                        view,
                        status: ViewStatus::Unexpected,
                        diff: None,
                    })
                    .collect(),
            });
        }
    }
    Ok(result)
}

fn expected_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

fn sub_dirs(dir: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

/// Writes a case's `expected/` afresh (the folder is replaced). Returns the files written.
pub fn bless_case(case: &Case) -> Result<usize, CliError> {
    let root = case.dir.join(EXPECTED_DIR);
    let failed = |e: std::io::Error, path: &Path| {
        CliError::new(
            exit::FAILURE,
            anyhow::anyhow!("cannot write {}: {e}", path.display()),
        )
    };
    let rendered = case.render()?;
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(|e| failed(e, &root))?;
    }
    let mut written = 0;
    for (checkpoint, files) in rendered {
        let dir = root.join(&checkpoint.name);
        std::fs::create_dir_all(&dir).map_err(|e| failed(e, &dir))?;
        for (file, text) in files {
            let path = dir.join(file);
            std::fs::write(&path, text).map_err(|e| failed(e, &path))?;
            written += 1;
        }
    }
    Ok(written)
}

/// A unified diff of two texts by lines (`---` expected, `+++` actual), three lines of context.
pub fn unified_diff(
    expected: &str,
    actual: &str,
    expected_name: &str,
    actual_name: &str,
) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let ops = diff_lines(&a, &b);
    let mut out = format!("--- {expected_name}\n+++ {actual_name}\n");
    const CONTEXT: usize = 3;
    // Indices into `ops` of changed lines; hunks gather changes closer than 2 * CONTEXT.
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let mut i = 0;
    while i < changed.len() {
        let start = changed[i].saturating_sub(CONTEXT);
        let mut end = changed[i];
        while i + 1 < changed.len() && changed[i + 1] <= end + 2 * CONTEXT + 1 {
            i += 1;
            end = changed[i];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let (mut a_start, mut b_start) = (None, None);
        let (mut a_len, mut b_len) = (0, 0);
        let mut body = String::new();
        for op in &ops[start..end] {
            match *op {
                Op::Same(x, y) => {
                    a_start.get_or_insert(x);
                    b_start.get_or_insert(y);
                    a_len += 1;
                    b_len += 1;
                    let _ = writeln!(body, " {}", a[x]);
                }
                Op::Delete(x, y) => {
                    a_start.get_or_insert(x);
                    b_start.get_or_insert(y);
                    a_len += 1;
                    let _ = writeln!(body, "-{}", a[x]);
                }
                Op::Insert(x, y) => {
                    a_start.get_or_insert(x);
                    b_start.get_or_insert(y);
                    b_len += 1;
                    let _ = writeln!(body, "+{}", b[y]);
                }
            }
        }
        let _ = writeln!(
            out,
            "@@ -{},{a_len} +{},{b_len} @@",
            a_start.unwrap_or(0) + 1,
            b_start.unwrap_or(0) + 1
        );
        out.push_str(&body);
        i += 1;
    }
    out
}

/// One line of a diff: indices into the expected and actual lines (for inserts and deletes,
/// the position in the other text where it happens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Same(usize, usize),
    Delete(usize, usize),
    Insert(usize, usize),
}

/// A shortest line diff (longest common subsequence), after trimming the common ends. Inputs
/// too large for the table are shown as everything between the common ends replaced.
fn diff_lines(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<Op> = (0..prefix).map(|i| Op::Same(i, i)).collect();
    let (n, m) = (a_mid.len(), b_mid.len());
    if n.saturating_mul(m) > 16_000_000 {
        ops.extend((0..n).map(|i| Op::Delete(prefix + i, prefix)));
        ops.extend((0..m).map(|j| Op::Insert(prefix + n, prefix + j)));
    } else {
        // lcs[i][j] = LCS length of a_mid[i..] and b_mid[j..].
        let width = m + 1;
        let mut lcs = vec![0u32; (n + 1) * width];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * width + j] = if a_mid[i] == b_mid[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && a_mid[i] == b_mid[j] {
                ops.push(Op::Same(prefix + i, prefix + j));
                i += 1;
                j += 1;
            } else if j < m && (i == n || lcs[i * width + j + 1] > lcs[(i + 1) * width + j]) {
                // Deletions first on a tie: `-old` before `+new`, as diff(1) shows them.
                ops.push(Op::Insert(prefix + i, prefix + j));
                j += 1;
            } else {
                ops.push(Op::Delete(prefix + i, prefix + j));
                i += 1;
            }
        }
    }
    let (a_end, b_end) = (a.len() - suffix, b.len() - suffix);
    ops.extend((0..suffix).map(|k| Op::Same(a_end + k, b_end + k)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_is_shown_with_its_context_and_line_numbers() {
        let expected = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let actual = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let diff = unified_diff(expected, actual, "exp", "act");
        assert_eq!(
            diff,
            "--- exp\n+++ act\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn inserts_and_deletes_far_apart_make_two_hunks() {
        let expected: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let actual: String = (1..=20)
            .filter(|i| *i != 3)
            .map(|i| {
                if i == 18 {
                    "18\nnew\n".to_owned()
                } else {
                    format!("{i}\n")
                }
            })
            .collect();
        let diff = unified_diff(&expected, &actual, "exp", "act");
        assert_eq!(diff.matches("@@ -").count(), 2, "{diff}");
        assert!(diff.contains("\n-3\n"), "{diff}");
        assert!(diff.contains("\n+new\n"), "{diff}");
    }

    #[test]
    fn equal_texts_have_no_hunk() {
        assert_eq!(unified_diff("x\n", "x\n", "e", "a"), "--- e\n+++ a\n");
    }
}
