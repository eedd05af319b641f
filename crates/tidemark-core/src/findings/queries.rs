//! Reading the findings: views and pages of them, a finding's history and flap episodes by
//! page or by window of the log, flaps, churn, stuck findings, the facts other projections read.
//! Every list is sorted by (cluster, check_key), whatever the order of the live state.
//!
//! The `*_page` functions are what the API reads: each selects its page first and builds only
//! the views on it, and none copies a history (occurrences, flap episodes) it does not return,
//! so a page costs what it returns, however long the log. The whole lists (`views`, `flaps`,
//! `stuck`) are the CLI's and the replay corpus' shapes.

use std::ops::Bound;

use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

use super::churn::{CHURN_MIN_KEYS, CHURN_WINDOW_RUNS, ChurnRecord};
use super::flaps::{FlapDetector, FlapEpisode, FlapEpisodeView};
use super::history::{Direction, HistoryRange};
use super::views::{
    ChurnView, DriftView, FindingFacts, FindingOverview, FindingSummary, FindingView, FlapOverview,
    FlapView, LongLivedView, StuckReport, UnreachableView,
};
use super::{
    ClusterFindings, Finding, FindingState, FindingsProjection, Occurrence, UnreachableReason,
};

/// What one live finding holds of its history in memory (`largest_live_history`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveHistory {
    /// Occurrences held (the current one, open or last closed).
    pub occurrences: usize,
    /// Flap episodes held (the open ones).
    pub flap_episodes: usize,
}

/// A window of a finding's history: the occurrences (or flap episodes) that overlap a range of
/// log positions, each with its number in the finding's whole history (1 for the first).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryWindow<T> {
    /// The items, oldest first, with their numbers.
    pub items: Vec<(usize, T)>,
    /// How many items the finding has in all.
    pub total: usize,
}

impl FindingsProjection {
    /// Every finding, sorted by (cluster, check_key).
    pub fn views(&self) -> Vec<FindingView> {
        let mut views = Vec::new();
        for (name, cluster) in self.clusters.iter() {
            let mut findings: Vec<&Finding> = cluster.seen_findings().collect();
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            views.extend(
                findings
                    .into_iter()
                    .map(|f| cluster.view(name, f, &self.history)),
            );
        }
        views
    }

    /// One finding's current occurrence and counts (what the API answers for it), if the
    /// projection has it; copies none of its history.
    pub fn overview(&self, cluster: &str, check_key: &str) -> Option<FindingOverview> {
        let (state, finding) = self.seen(cluster, check_key)?;
        Some(state.overview(cluster, finding))
    }

    /// One finding, if the projection has it.
    pub fn view(&self, cluster: &str, check_key: &str) -> Option<FindingView> {
        let state = self.clusters.get(cluster)?;
        let index = state.index_of(check_key)?;
        let finding = &state.findings[index as usize];
        (finding.occurrence_count > 0).then(|| state.view(cluster, finding, &self.history))
    }

    /// The settings in force for `cluster` (defaults for a cluster never seen).
    pub fn settings(&self, cluster: &str) -> ClusterSettings {
        self.clusters
            .get(cluster)
            .map(|c| c.settings.clone())
            .unwrap_or_default()
    }

    /// The clock of `cluster`: the latest event time seen for it.
    pub fn clock(&self, cluster: &str) -> Option<Timestamp> {
        self.clusters.get(cluster).and_then(|c| c.clock)
    }

    /// One page of findings sorted by (cluster, check_key): those of `cluster` (or every
    /// cluster) that `keep` accepts, after the finding `after` names (`(cluster, check_key)`,
    /// which need not exist), at most `limit`; and whether more follow. Overviews are built
    /// only for the page, and carry no history.
    pub fn views_page(
        &self,
        cluster: Option<&str>,
        keep: impl Fn(&FindingSummary<'_>) -> bool,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> (Vec<FindingOverview>, bool) {
        self.page_of(
            cluster,
            |state, f| {
                keep(&FindingSummary {
                    state: FindingState::of(f.is_active()),
                    severity: f.severity,
                    category: &state.category_names[f.category as usize],
                })
            },
            after,
            limit,
            |name, state, finding| Some(state.overview(name, finding)),
        )
    }

    /// One page of the findings that flap now or have flapped, by either detector, sorted by
    /// (cluster, check_key), after `after`, at most `limit`; and whether more follow. Only the
    /// page's overviews are built, each with its latest episode only.
    pub fn flaps_page(
        &self,
        cluster: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> (Vec<FlapOverview>, bool) {
        self.page_of(
            cluster,
            |_, f| f.flap.episode_count() > 0,
            after,
            limit,
            |name, state, finding| state.flap_overview(name, finding, &self.history),
        )
    }

    /// The findings `keep` accepts after `after`, in (cluster, check_key) order, each built by
    /// `build` only once it is on the page (`build` answers `None` only for one `keep` refused).
    fn page_of<T>(
        &self,
        cluster: Option<&str>,
        keep: impl Fn(&ClusterFindings, &Finding) -> bool,
        after: Option<(&str, &str)>,
        limit: usize,
        build: impl Fn(&str, &ClusterFindings, &Finding) -> Option<T>,
    ) -> (Vec<T>, bool) {
        let (after_cluster, after_key) = after.unzip();
        let mut page = Vec::new();
        // From the cursor's cluster on: the clusters before it are not restored.
        for (name, state) in self.clusters_matching_from(cluster, after_cluster.unwrap_or("")) {
            let mut findings: Vec<&Finding> = state
                .seen_findings()
                .filter(|f| {
                    after_cluster != Some(name.as_str())
                        || after_key.is_none_or(|k| &*f.check_key > k)
                })
                .filter(|f| keep(state, f))
                .collect();
            // Only the first `limit + 1` in key order can be on this page (or say more follow).
            let wanted = (limit - page.len()).saturating_add(1);
            if findings.len() > wanted {
                findings.select_nth_unstable_by(wanted - 1, |a, b| a.check_key.cmp(&b.check_key));
                findings.truncate(wanted);
            }
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            for finding in findings {
                if page.len() == limit {
                    return (page, true);
                }
                page.extend(build(name, state, finding));
            }
        }
        (page, false)
    }

    /// A seen finding and its cluster.
    fn seen(&self, cluster: &str, check_key: &str) -> Option<(&ClusterFindings, &Finding)> {
        let state = self.clusters.get(cluster)?;
        let finding = &state.findings[state.index_of(check_key)? as usize];
        (finding.occurrence_count > 0).then_some((state, finding))
    }

    /// A page of a finding's history, oldest first: the occurrences that opened after log
    /// position `after` (0 for the first page), at most `limit`; and whether more follow. The
    /// pages, followed from `after = 0` by the `opened_seq` of each page's last occurrence,
    /// are exactly [`FindingView::history`]. `None` when the projection has no such finding.
    pub fn history_page(
        &self,
        cluster: &str,
        check_key: &str,
        after: u64,
        limit: usize,
    ) -> Option<(Vec<Occurrence>, bool)> {
        let (_, finding) = self.seen(cluster, check_key)?;
        let mut page = finding.occurrences(
            cluster,
            &self.history,
            &HistoryRange {
                opened: (Bound::Excluded(after), Bound::Unbounded),
                limit: limit.saturating_add(1),
                ..HistoryRange::all()
            },
        );
        debug_assert!(
            page.windows(2)
                .all(|w| w[0].1.opened_seq < w[1].1.opened_seq),
            "occurrences open in log order, one per event"
        );
        let more = page.len() > limit;
        page.truncate(limit);
        Some((page.into_iter().map(|(_, o)| o).collect(), more))
    }

    /// A page of a finding's flap episodes, in the order they started: those after `after`
    /// (the `(started_seq, detector)` of the last episode of the previous page; `None` for the
    /// first page), at most `limit`; and whether more follow. Both detectors may start an
    /// episode at one event (in either order, the order they fired), so the cursor names the
    /// detector too: a detector starts at most one episode per event. `None` when the
    /// projection has no such finding.
    pub fn flap_episodes_page(
        &self,
        cluster: &str,
        check_key: &str,
        after: Option<(u64, FlapDetector)>,
        limit: usize,
    ) -> Option<(Vec<FlapEpisodeView>, bool)> {
        let (state, finding) = self.seen(cluster, check_key)?;
        // A detector starts at most one episode per event: the cursor's event holds at most
        // two, so `limit + 3` from it hold the page and say whether more follow.
        let episodes = finding.flap_episodes(
            cluster,
            &self.history,
            &HistoryRange {
                opened: (
                    after.map_or(Bound::Unbounded, |(seq, _)| Bound::Included(seq)),
                    Bound::Unbounded,
                ),
                limit: limit.saturating_add(3),
                ..HistoryRange::all()
            },
        );
        debug_assert!(
            episodes
                .windows(2)
                .all(|w| w[0].1.started_seq < w[1].1.started_seq
                    || (w[0].1.started_seq == w[1].1.started_seq
                        && w[0].1.detector != w[1].1.detector)),
            "episodes are kept in the order they started, one per detector and event"
        );
        let start = after.map_or(0, |(seq, detector)| {
            let ties = episodes.partition_point(|(_, e)| e.started_seq < seq);
            let past = episodes.partition_point(|(_, e)| e.started_seq <= seq);
            // Right after the cursor's episode; past the event when it names none of them.
            episodes[ties..past]
                .iter()
                .position(|(_, e)| e.detector == detector)
                .map_or(past, |i| ties + i + 1)
        });
        let end = start.saturating_add(limit).min(episodes.len());
        let window = state.settings.flap_window_secs;
        Some((
            episodes[start..end]
                .iter()
                .map(|(_, e)| e.view(window))
                .collect(),
            end < episodes.len(),
        ))
    }

    /// The occurrences of a finding that overlap log positions `from..=to` (opened at or
    /// before `to`, and active or resolved at or after `from`), oldest first: at most the
    /// `limit` that opened last. Every opening and resolution is an entry of the finding's
    /// timeline, so the occurrences overlapping a page of it are at most its entries and one.
    /// `None` when the projection has no such finding.
    pub fn history_between(
        &self,
        cluster: &str,
        check_key: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Option<HistoryWindow<Occurrence>> {
        let (_, finding) = self.seen(cluster, check_key)?;
        // Occurrences do not overlap one another: both ends grow with the number, so those
        // overlapping the window are the latest that opened by `to`, back to the first that
        // was still open at `from`.
        let mut items: Vec<(usize, Occurrence)> = finding
            .occurrences(
                cluster,
                &self.history,
                &HistoryRange {
                    opened: (Bound::Unbounded, Bound::Included(to)),
                    direction: Direction::Backward,
                    limit,
                    ..HistoryRange::all()
                },
            )
            .into_iter()
            .take_while(|(_, o)| o.resolved_seq.is_none_or(|resolved| resolved >= from))
            .map(|(number, o)| (number as usize, o))
            .collect();
        items.reverse();
        Some(HistoryWindow {
            items,
            total: finding.occurrence_count as usize,
        })
    }

    /// The flap episodes of a finding that overlap log positions `from..=to` (started at or
    /// before `to`, and open or stopped at or after `from`), in the order they started: at
    /// most the `limit` that started last. `None` when the projection has no such finding.
    pub fn flap_episodes_between(
        &self,
        cluster: &str,
        check_key: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Option<HistoryWindow<FlapEpisodeView>> {
        let (state, finding) = self.seen(cluster, check_key)?;
        let window = state.settings.flap_window_secs;
        let mut items: Vec<(usize, FlapEpisodeView)> = finding
            .flap_episodes_overlapping(cluster, &self.history, from, to, limit)
            .into_iter()
            .filter(|(_, e)| e.stopped_seq.is_none_or(|stopped| stopped >= from))
            .map(|(number, e)| (number as usize, e.view(window)))
            .collect();
        items.reverse();
        Some(HistoryWindow {
            items,
            total: finding.flap.episode_count() as usize,
        })
    }

    /// The clusters the projection has seen, sorted.
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.names().cloned().collect()
    }

    /// Auto-resolution times the count flap detector keeps, over every cluster: at most those
    /// of the last [`MAX_FLAP_WINDOW_SECS`](crate::settings::MAX_FLAP_WINDOW_SECS) of each
    /// cluster's clock, however long the log.
    pub fn auto_resolutions_kept(&self) -> usize {
        self.clusters
            .values()
            .map(|c| c.auto_resolutions_kept())
            .sum()
    }

    /// The settings in force for `cluster`, if the projection has seen it.
    pub fn settings_of(&self, cluster: &str) -> Option<&ClusterSettings> {
        self.clusters.get(cluster).map(|c| &c.settings)
    }

    /// Latest category, severity, title and resource of a finding, if the projection has it.
    pub fn finding_facts(&self, cluster: &str, check_key: &str) -> Option<FindingFacts<'_>> {
        let state = self.clusters.get(cluster)?;
        let finding = &state.findings[state.index_of(check_key)? as usize];
        Some(FindingFacts {
            category: &state.category_names[finding.category as usize],
            severity: finding.severity,
            title: &finding.title,
            detail: finding.detail.as_deref(),
            resource: finding.resource.as_deref(),
            active: finding.is_active(),
            last_seen_at: finding.last_seen_at,
            alert: finding.alert.as_deref(),
        })
    }

    /// The flapping episodes of a finding, oldest first.
    pub fn flap_episodes(&self, cluster: &str, check_key: &str) -> Vec<FlapEpisode> {
        self.seen(cluster, check_key)
            .map(|(_, finding)| {
                finding
                    .flap_episodes(cluster, &self.history, &HistoryRange::all())
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The flap episodes of a finding that started or stopped at one of `positions` (sorted),
    /// as (position, detector, started): what a page of its timeline names, without copying
    /// the others.
    pub fn flap_changes_at(
        &self,
        cluster: &str,
        check_key: &str,
        positions: &[u64],
    ) -> Vec<(u64, FlapDetector, bool)> {
        debug_assert!(positions.is_sorted(), "positions are sorted");
        let (Some(&first), Some(&last)) = (positions.first(), positions.last()) else {
            return Vec::new();
        };
        let Some((_, finding)) = self.seen(cluster, check_key) else {
            return Vec::new();
        };
        let named = |seq: u64| positions.binary_search(&seq).is_ok();
        let mut changes = Vec::new();
        // An episode named by a position overlaps `first..=last`.
        let overlapping =
            finding.flap_episodes_overlapping(cluster, &self.history, first, last, usize::MAX);
        for (_, episode) in overlapping.iter().rev() {
            if named(episode.started_seq) {
                changes.push((episode.started_seq, episode.detector, true));
            }
            if let Some(stopped) = episode.stopped_seq
                && named(stopped)
            {
                changes.push((stopped, episode.detector, false));
            }
        }
        changes
    }

    /// Whether a finding has an active occurrence.
    pub fn is_active(&self, cluster: &str, check_key: &str) -> bool {
        self.clusters.get(cluster).is_some_and(|state| {
            state
                .index_of(check_key)
                .is_some_and(|i| state.findings[i as usize].is_active())
        })
    }

    /// Findings that flap now or have flapped, by either detector, sorted by (cluster,
    /// check_key); only `cluster`'s when given.
    pub fn flaps(&self, cluster: Option<&str>) -> Vec<FlapView> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            let mut findings: Vec<&Finding> = state
                .findings
                .iter()
                .filter(|f| f.flap.episode_count() > 0)
                .collect();
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            out.extend(
                findings
                    .into_iter()
                    .map(|f| state.flap_view(name, f, &self.history)),
            );
        }
        out
    }

    /// Categories whose new keys keep dying young (at least [`CHURN_MIN_KEYS`] in the last
    /// [`CHURN_WINDOW_RUNS`] runs of the category).
    pub fn churn(&self, cluster: Option<&str>) -> Vec<ChurnView> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            let mut categories: Vec<(&str, &Vec<ChurnRecord>, u64)> = state
                .category_names
                .iter()
                .enumerate()
                .map(|(id, category)| {
                    (
                        category.as_str(),
                        &state.category_churn[id],
                        state.category_runs[id],
                    )
                })
                .collect();
            categories.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (category, records, run) in categories {
                let recent: Vec<&ChurnRecord> = records
                    .iter()
                    .filter(|r| r.run + CHURN_WINDOW_RUNS > run)
                    .collect();
                if recent.len() < CHURN_MIN_KEYS {
                    continue;
                }
                out.push(ChurnView {
                    cluster: name.clone(),
                    category: category.to_owned(),
                    short_lived_keys: recent.len() as u64,
                    examples: recent
                        .iter()
                        .rev()
                        .take(3)
                        .map(|r| r.check_key.clone())
                        .collect(),
                    since: recent[0].at,
                });
            }
        }
        out
    }

    /// Unreachable findings, stale alerts (judged at each cluster's clock), drift suspects
    /// and long-lived findings.
    pub fn stuck(&self, cluster: Option<&str>) -> StuckReport {
        self.stuck_up_to(cluster, None, usize::MAX)
    }

    /// The first `limit` unreachable findings, stale alerts and long-lived findings (by
    /// (cluster, check_key)) and the latest `limit` drift suspects, built only for those; and
    /// whether a list had more. Staleness is judged at `reference`, or at each cluster's clock
    /// when `None`.
    pub fn stuck_page(
        &self,
        cluster: Option<&str>,
        reference: Option<Timestamp>,
        limit: usize,
    ) -> (StuckReport, bool) {
        let mut report = self.stuck_up_to(cluster, reference, limit.saturating_add(1));
        let truncated = report.unreachable.len() > limit
            || report.stale_alerts.len() > limit
            || report.drift_suspects.len() > limit
            || report.long_lived.len() > limit;
        report.unreachable.truncate(limit);
        report.stale_alerts.truncate(limit);
        report.long_lived.truncate(limit);
        let older = report.drift_suspects.len().saturating_sub(limit);
        report.drift_suspects.drain(..older);
        (report, truncated)
    }

    /// [`Self::stuck`] with each list built up to `cap` items: the first unreachable and
    /// long-lived ones, the latest drift suspects.
    fn stuck_up_to(
        &self,
        cluster: Option<&str>,
        reference: Option<Timestamp>,
        cap: usize,
    ) -> StuckReport {
        let mut report = StuckReport::default();
        for (name, state) in self.clusters_matching(cluster) {
            if report.unreachable.len() >= cap && report.long_lived.len() >= cap {
                break;
            }
            let settings = &state.settings;
            let now = state.clock.unwrap_or_default();
            // An alert is never swept by cycles, so it is never unreachable through them, and
            // it is not "present in the latest run of its category": neither list holds it.
            let mut active: Vec<&Finding> = state
                .active
                .iter()
                .map(|&i| &state.findings[i as usize])
                .filter(|f| !f.is_alert())
                .collect();
            active.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            for finding in active {
                if report.unreachable.len() >= cap && report.long_lived.len() >= cap {
                    break;
                }
                let category = finding.category as usize;
                let category_name = &state.category_names[category];
                let (last_cycle, last_at, _) = state.category_last_run[category];
                let missing = state.cycle_stamp - last_cycle;
                let opened_at = finding.current.opened_at;
                if missing >= u64::from(settings.unreachable_after_cycles) {
                    if report.unreachable.len() < cap {
                        report.unreachable.push(UnreachableView {
                            cluster: name.clone(),
                            check_key: finding.check_key.to_string(),
                            category: category_name.clone(),
                            severity: finding.severity,
                            title: finding.title.clone(),
                            opened_at,
                            reason: if settings.is_enabled(category_name) {
                                UnreachableReason::CategoryNotRun
                            } else {
                                UnreachableReason::CategoryDisabled
                            },
                            category_last_ran_at: last_at,
                            cycles_without_category: missing,
                        });
                    }
                    continue;
                }
                let age_secs = now.saturating_duration_since(opened_at).as_secs();
                if finding.clean_cycles == 0
                    && age_secs >= settings.long_lived_secs
                    && report.long_lived.len() < cap
                {
                    report.long_lived.push(LongLivedView {
                        cluster: name.clone(),
                        check_key: finding.check_key.to_string(),
                        category: category_name.clone(),
                        severity: finding.severity,
                        title: finding.title.clone(),
                        opened_at,
                        last_seen_at: finding.last_seen_at,
                        age_secs,
                    });
                }
            }
        }
        report.stale_alerts = self.stale_alerts_up_to(cluster, reference, cap);
        report.drift_suspects = self.latest_drift_suspects(cluster, cap);
        report
    }

    /// The latest `cap` drift suspects, in log order per cluster (clusters sorted).
    fn latest_drift_suspects(&self, cluster: Option<&str>, cap: usize) -> Vec<DriftView> {
        let mut latest = Vec::new();
        'clusters: for (name, state) in self.clusters_matching(cluster).rev() {
            let active = |key: &str| {
                state
                    .index_of(key)
                    .is_some_and(|i| state.findings[i as usize].is_active())
            };
            for record in state.drifts.iter().rev() {
                if latest.len() >= cap {
                    break 'clusters;
                }
                latest.push(DriftView {
                    cluster: name.clone(),
                    old_active: active(&record.old_check_key),
                    new_active: active(&record.new_check_key),
                    record: record.clone(),
                });
            }
        }
        latest.reverse();
        latest
    }

    /// Keys flagged by check-key hygiene when first seen, as (cluster, check_key), sorted.
    pub fn unstable_keys<'a>(&'a self, cluster: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            out.extend(
                state
                    .sorted_unstable_keys()
                    .into_iter()
                    .map(|k| (name.as_str(), k)),
            );
        }
        out
    }

    /// The most occurrences and flap episodes any one live finding holds in memory (the rest
    /// of its history is in the history the fold writes to): what bounds the live state.
    pub fn largest_live_history(&self) -> LiveHistory {
        let mut largest = LiveHistory::default();
        for finding in self.clusters.values().flat_map(|c| &c.findings) {
            largest.occurrences = largest
                .occurrences
                .max(usize::from(finding.occurrence_count > 0));
            largest.flap_episodes = largest
                .flap_episodes
                .max(finding.flap.open_episodes().len());
        }
        largest
    }

    /// Number of findings (active or not) over all clusters.
    pub fn finding_count(&self) -> usize {
        self.clusters
            .values()
            .map(|c| c.seen_findings().count())
            .sum()
    }

    /// Number of active findings over all clusters.
    pub fn active_count(&self) -> usize {
        self.clusters.values().map(|c| c.active.len()).sum()
    }
}
