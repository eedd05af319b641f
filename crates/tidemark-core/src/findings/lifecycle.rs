//! Applying events to the findings: the cycle sweep of `docs/lifecycle.md` (upsert, then resolve
//! first and increment after), manual resolutions, and settings changes.
//!
//! The hot loop is [`ClusterFindings::apply_cycle`]: categories are interned per cluster, a cycle
//! stamp marks which findings a cycle saw (no per-cycle set is built), and the sweep walks only
//! the active list, in one pass per finding. Flap detection is called from inside that pass (the
//! `flaps` module); churn and drift suspects are noted from the cycle's first absences (`churn`).

use crate::event::{CycleCompleted, Event, FindingObservation, FindingResolved, Payload};
use crate::findings::changes::{Change, Collect, NoWatch, Watch};
use crate::timestamp::Timestamp;

use super::flaps::FlapState;
use super::{
    ChangeSink, ClusterFindings, Discard, Finding, FindingChange, FindingsProjection, FoldHistory,
    FoldOutput, NOT_ACTIVE, Occurrence, Output, ResolutionKind,
};

impl FindingsProjection {
    /// Applies the event at log position `seq`.
    pub fn apply(&mut self, seq: u64, event: &Event) {
        self.apply_reporting(seq, event, &mut Discard);
    }

    /// Applies the event at log position `seq`, telling `sink` every finding state change
    /// (of the event's cluster); the history it closes goes where the projection's history is
    /// (its own [`MemoryHistory`](super::MemoryHistory), or collected for the writer of a
    /// shared one: [`Self::take_history_records`]).
    pub fn apply_reporting(&mut self, seq: u64, event: &Event, sink: &mut impl ChangeSink) {
        let mut history = std::mem::take(&mut self.history);
        history.writing(|history| self.apply_writing_history(seq, event, sink, history));
        self.history = history;
    }

    /// Applies the event at log position `seq`, telling `changes` every finding state change
    /// and writing the history it closes (occurrences, flap episodes) to `history` instead of
    /// the projection's own [`MemoryHistory`](super::MemoryHistory). The live state is the
    /// same either way; the projection's views read its own history, so a fold that writes
    /// elsewhere reads its past through the reader of that sink (the store's tables, ADR 0006's
    /// next step).
    pub fn apply_writing_history(
        &mut self,
        seq: u64,
        event: &Event,
        changes: &mut impl ChangeSink,
        history: &mut (impl FoldHistory + ?Sized),
    ) {
        self.apply_watching(seq, event, changes, history, &mut NoWatch);
    }

    /// [`Self::apply`], appending to `out` what the event changed in the parts `finding`,
    /// `flap`, `stuck`, `drift` and `unstable_key` of a `tidemark replay --step` digest, in
    /// its text and order (ADR 0008; the findings' part of
    /// [`crate::Projections::apply_with_changes`]).
    pub fn apply_with_changes(&mut self, seq: u64, event: &Event, out: &mut Vec<Change>) {
        self.apply_reporting_changes(seq, event, &mut Discard, out);
    }

    /// [`Self::apply_reporting`], appending to `out` what the event changed in the parts
    /// `finding`, `flap`, `stuck`, `drift` and `unstable_key` of a `--step` digest, in its
    /// text and order (ADR 0008).
    pub(crate) fn apply_reporting_changes(
        &mut self,
        seq: u64,
        event: &Event,
        sink: &mut impl ChangeSink,
        out: &mut Vec<Change>,
    ) {
        let mut collect = Collect::default();
        let mut history = std::mem::take(&mut self.history);
        history.writing(|history| self.apply_watching(seq, event, sink, history, &mut collect));
        self.history = history;
        if let Some(cluster) = self.clusters.get(&event.cluster) {
            cluster.changes_of_event(&event.cluster, &mut collect, out);
        }
    }

    /// [`Self::apply_writing_history`], telling `watch` what it is about to change (ADR 0008):
    /// with [`NoWatch`], the same code as without.
    fn apply_watching<W: Watch>(
        &mut self,
        seq: u64,
        event: &Event,
        changes: &mut impl ChangeSink,
        history: &mut (impl FoldHistory + ?Sized),
        watch: &mut W,
    ) {
        let cluster = self.cluster_mut(&event.cluster);
        if W::ON
            && let Some(collect) = watch.collect()
        {
            collect.drifts_before = cluster.drifts.len();
            collect.unstable_before = cluster.unstable_keys.len();
            match &event.payload {
                Payload::CycleCompleted(_) | Payload::SettingsChanged(_) => {
                    cluster.name_unreachable(None, collect)
                }
                Payload::FindingResolved(resolved) => {
                    if let Some(index) = cluster.resolved_index(resolved) {
                        cluster.name_unreachable(Some(index), collect);
                    }
                }
                _ => {}
            }
        }
        let sink = &mut Output {
            cluster: &event.cluster,
            changes,
            history,
            watch,
        };
        // A late event (earlier than the cluster's clock) is applied at the clock, so no time in
        // the state goes back: a finding is never last seen before it opened
        // (docs/lifecycle.md, "Late events"; ADR 0004).
        let at = cluster
            .clock
            .map_or(event.time, |clock| clock.max(event.time));
        cluster.clock = Some(at);
        // Every projection's state of a cluster changes only with that cluster's events.
        cluster.changed_since_snapshot = true;
        cluster.maintenance_before_event(at);
        match &event.payload {
            Payload::CycleCompleted(cycle) => cluster.apply_cycle(seq, at, cycle, sink),
            Payload::FindingResolved(resolved) => cluster.apply_resolved(seq, at, resolved, sink),
            Payload::AlertFired(alert) => cluster.apply_alert(seq, at, alert, true, sink),
            Payload::AlertResolved(alert) => cluster.apply_alert(seq, at, alert, false, sink),
            Payload::MaintenanceScheduled(data) => {
                cluster.apply_maintenance_scheduled(seq, at, data)
            }
            Payload::MaintenanceCancelled(cancel) => cluster.apply_maintenance_cancelled(cancel),
            Payload::SettingsChanged(change) => {
                let before = cluster.settings.clone();
                cluster.settings.apply(change);
                if change.maintenance_suppresses_incidents.is_some()
                    || change.maintenance_suppresses_flaps.is_some()
                {
                    cluster
                        .maintenance
                        .get_or_insert_with(Default::default)
                        .apply_settings(change);
                }
                let flap_rules_changed = before.flap_window_secs
                    != cluster.settings.flap_window_secs
                    || before.flap_threshold != cluster.settings.flap_threshold
                    || before.flap_start_percent != cluster.settings.flap_start_percent
                    || before.flap_stop_percent != cluster.settings.flap_stop_percent;
                if cluster.settings.flap_window_secs > before.flap_window_secs {
                    cluster.reach_back_auto_resolutions(before.flap_window_secs, sink);
                }
                if flap_rules_changed {
                    cluster.recheck_flaps(seq, at, sink);
                }
            }
            _ => {}
        }
        if !cluster.count_expiry.is_empty() {
            cluster.check_count_flaps(seq, at, sink);
        }
        cluster.forget_old_auto_resolutions();
        cluster.maintenance_after_event(at);
    }
}

impl Finding {
    /// A finding not yet seen: no occurrence, no flap state.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn unseen(
        check_key: Box<str>,
        category: u32,
        severity: crate::event::Severity,
        title: String,
        detail: Option<String>,
        resource: Option<Box<crate::event::ResourceRef>>,
        alert: Option<Box<super::AlertFacts>>,
    ) -> Self {
        Self {
            check_key,
            category,
            severity,
            title,
            detail,
            resource,
            clean_cycles: 0,
            last_seen_at: Timestamp::default(),
            current: Occurrence::NONE,
            occurrence_count: 0,
            active_slot: NOT_ACTIVE,
            seen_stamp: 0,
            seen_index: 0,
            open_run: 0,
            flap: FlapState::default(),
            alert,
        }
    }

    fn refresh_from(&mut self, obs: &FindingObservation, category: u32) {
        self.category = category;
        self.severity = obs.severity;
        if self.title != obs.title {
            self.title.clone_from(&obs.title);
        }
        if self.detail != obs.detail {
            self.detail.clone_from(&obs.detail);
        }
        if self.resource.as_deref() != obs.resource.as_ref() {
            self.resource = obs.resource.clone().map(Box::new);
        }
    }
}

impl ClusterFindings {
    pub(super) fn intern_category(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.category_ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.category_names.len()).expect("fewer than 2^32 categories");
        self.category_names.push(name.to_owned());
        self.category_ids.insert(name.to_owned(), id);
        self.ran_scratch.push(false);
        self.category_runs.push(0);
        self.category_last_run.push((0, Timestamp::default(), 0));
        self.category_churn.push(Vec::new());
        id
    }

    /// The index of the finding `obs` is folded under (`key`: [`super::alerts::cycle_key`] of
    /// its key), made when it is new.
    pub(super) fn finding_index(
        &mut self,
        key: &str,
        obs: &FindingObservation,
        category: u32,
    ) -> u32 {
        if let Some(index) = self.index_of(key) {
            return index;
        }
        let index = self.push_unseen(Finding::unseen(
            key.into(),
            category,
            obs.severity,
            obs.title.clone(),
            obs.detail.clone(),
            obs.resource.clone().map(Box::new),
            None,
        ));
        if crate::hygiene::analyze_check_key(key).is_some() {
            self.unstable_keys.push(index);
        }
        index
    }

    /// Adds a finding that is not yet seen (no occurrence), indexed by its key (and, an
    /// alert, among the alerts); its index.
    pub(super) fn push_unseen(&mut self, finding: Finding) -> u32 {
        let index = u32::try_from(self.findings.len()).expect("fewer than 2^32 findings");
        if self.findings.len() == self.findings.capacity() {
            // Grow by a quarter, not double: a cluster of 10,000 findings would otherwise keep
            // room for 16,384 (a `Finding` is over 200 bytes; a million of them add up).
            self.findings
                .reserve_exact((self.findings.len() / 4).max(64));
        }
        self.findings.push(finding);
        self.by_key.insert_new(&self.findings, index);
        self.index_alert(index);
        index
    }

    /// Opens a new occurrence of finding `index` at `at` (log position `seq`): it is active.
    pub(super) fn open_occurrence(
        &mut self,
        index: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut impl FoldOutput,
    ) {
        let finding = &mut self.findings[index as usize];
        sink.change(&finding.check_key, FindingChange::Opened);
        finding.current = Occurrence {
            opened_at: at,
            opened_seq: seq,
            resolved_at: None,
            resolved_seq: None,
            resolution_kind: None,
        };
        finding.occurrence_count += 1;
        self.activate(index);
        self.note_maintenance(index, at, true);
    }

    pub(super) fn activate(&mut self, index: u32) {
        let slot = u32::try_from(self.active.len()).expect("fewer than 2^32 active findings");
        self.findings[index as usize].active_slot = slot;
        self.active.push(index);
    }

    pub(super) fn resolve(
        &mut self,
        index: u32,
        at: Timestamp,
        seq: u64,
        kind: ResolutionKind,
        sink: &mut impl FoldOutput,
    ) {
        let finding = &mut self.findings[index as usize];
        sink.change(&finding.check_key, FindingChange::Resolved(kind));
        let slot = finding.active_slot as usize;
        finding.active_slot = NOT_ACTIVE;
        finding.clean_cycles = 0;
        let occurrence = &mut finding.current;
        occurrence.resolved_at = Some(at);
        occurrence.resolved_seq = Some(seq);
        occurrence.resolution_kind = Some(kind);
        sink.occurrence_closed(&finding.check_key, finding.occurrence_count, occurrence);
        self.active.swap_remove(slot);
        if let Some(&moved) = self.active.get(slot) {
            self.findings[moved as usize].active_slot = slot as u32;
        }
        self.watch_if_needed(index);
        if kind.counts_towards_flapping() && self.resolution_counts(index, at) {
            self.note_auto_resolution(index, seq, at, sink);
        }
    }

    /// The id of category `name` in the cycle at (`stamp`, time, position) `run`, `None` when
    /// it is disabled: at its first sight in the cycle (`seen`), an enabled category is
    /// interned and marked as run.
    fn category_of_cycle<'c>(
        &mut self,
        name: &'c str,
        seen: &mut Vec<(&'c str, Option<u32>)>,
        run: (u64, Timestamp, u64),
    ) -> Option<u32> {
        if let Some(&(_, id)) = seen.iter().find(|(known, _)| *known == name) {
            return id;
        }
        let id = if self.settings.is_enabled(name) {
            let id = self.intern_category(name);
            self.ran_scratch[id as usize] = true;
            self.category_runs[id as usize] += 1;
            self.category_last_run[id as usize] = run;
            Some(id)
        } else {
            None
        };
        seen.push((name, id));
        id
    }

    pub(super) fn apply_cycle<O: FoldOutput>(
        &mut self,
        seq: u64,
        at: Timestamp,
        cycle: &CycleCompleted,
        sink: &mut O,
    ) {
        self.cycle_stamp += 1;
        let stamp = self.cycle_stamp;

        // 1 + 2. The categories that ran: listed ones plus the findings' own, if enabled; and
        //    the entries that count: category ran; for a key listed twice the last entry wins.
        //    Few categories per cycle, so a linear list beats hashing every finding's category;
        //    each entry's category is looked up once (nothing in the entries' step reads what
        //    a category's first sight sets).
        let mut cycle_categories: Vec<(&str, Option<u32>)> = Vec::new();
        for name in &cycle.categories {
            self.category_of_cycle(name, &mut cycle_categories, (stamp, at, seq));
        }
        let mut entries = std::mem::take(&mut self.entries_scratch);
        entries.clear();
        for (entry, obs) in cycle.findings.iter().enumerate() {
            let category =
                self.category_of_cycle(&obs.category, &mut cycle_categories, (stamp, at, seq));
            let Some(category) = category else { continue };
            let index =
                self.finding_index(&super::alerts::cycle_key(&obs.check_key), obs, category);
            let finding = &mut self.findings[index as usize];
            finding.seen_stamp = stamp;
            finding.seen_index = entry as u32;
            entries.push((entry as u32, index, category));
        }

        // 3. Upsert.
        let mut opened_now: Vec<u32> = Vec::new();
        for &(entry, index, category) in &entries {
            let finding = &self.findings[index as usize];
            if finding.seen_index != entry {
                continue;
            }
            let obs = &cycle.findings[entry as usize];
            if O::W::ON
                && (!finding.is_active()
                    || finding.clean_cycles != 0
                    || finding.severity != obs.severity)
            {
                let before = finding.digest_entry();
                sink.watch().finding(index, before);
            }
            if finding.is_active() && finding.severity != obs.severity {
                sink.change(&finding.check_key, FindingChange::SeverityChanged);
            }
            if finding.category != category {
                self.move_flap_history(index, category);
            }
            let finding = &mut self.findings[index as usize];
            finding.refresh_from(obs, category);
            finding.last_seen_at = at;
            finding.clean_cycles = 0;
            if !finding.is_active() {
                finding.open_run = self.category_runs[category as usize];
                self.open_occurrence(index, seq, at, sink);
                if obs.informational {
                    // Never counts towards flapping: its raw state stays absent.
                    self.resolve(index, at, seq, ResolutionKind::Informational, sink);
                    continue;
                }
                opened_now.push(index);
            } else {
                self.note_maintenance(index, at, false);
            }
            self.record_run(index, true, seq, at, sink);
        }
        self.entries_scratch = entries;

        // 4 + 5. Resolve first (against the prior count), then increment the rest.
        let threshold = self.settings.clean_cycles_to_resolve;
        let mut first_absent: Vec<u32> = Vec::new();
        let mut slot = 0;
        while slot < self.active.len() {
            let index = self.active[slot];
            let finding = &self.findings[index as usize];
            // An alert shares its category with no cycle: a probe's category named `alert`
            // never sweeps one.
            let absent_and_ran = finding.seen_stamp != stamp
                && self.ran_scratch[finding.category as usize]
                && !finding.is_alert();
            if absent_and_ran {
                if O::W::ON {
                    let before = finding.digest_entry();
                    sink.watch().finding(index, before);
                }
                if finding.clean_cycles == 0 {
                    // Present in the previous run of its category, absent now.
                    first_absent.push(index);
                }
                if finding.flap.absent_runs_matter() {
                    self.record_run(index, false, seq, at, sink);
                }
                let finding = &mut self.findings[index as usize];
                if finding.clean_cycles >= threshold {
                    // swap_remove brings another finding into this slot: look at it next.
                    self.resolve(index, at, seq, ResolutionKind::Auto, sink);
                    continue;
                }
                finding.clean_cycles += 1;
            }
            slot += 1;
        }

        // Findings that are not active but whose runs still matter to flap detection.
        self.record_watched_runs(false, seq, at, sink);

        if !first_absent.is_empty() {
            self.note_first_absences(&first_absent, &opened_now, seq, at);
        }

        for (_, id) in cycle_categories {
            if let Some(id) = id {
                self.ran_scratch[id as usize] = false;
            }
        }
    }

    pub(super) fn apply_resolved<O: FoldOutput>(
        &mut self,
        seq: u64,
        at: Timestamp,
        resolved: &FindingResolved,
        sink: &mut O,
    ) {
        if let Some(index) = self.resolved_index(resolved)
            && self.findings[index as usize].is_active()
        {
            if O::W::ON {
                let before = self.findings[index as usize].digest_entry();
                sink.watch().finding(index, before);
            }
            self.resolve(index, at, seq, resolved.kind.into(), sink);
        }
    }
}
