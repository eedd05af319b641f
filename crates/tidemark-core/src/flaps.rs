//! Flap detection arithmetic: the weighted percent state change of the last 20 runs (Icinga 2.8+
//! style) and the episodes both detectors record.
//!
//! A finding's *raw state* in a run of its category is present (seen by the cycle, and active
//! after it) or absent. Each run shifts one bit into a 20-bit history, set when the raw state
//! differs from the previous run's. The value weights the oldest bit 0.8 and each newer one 0.02
//! more (the newest 1.18), and is `100 · Σ weights / 20` percent. In tenths of a percent that is
//! the integer `Σ (40 + i)` over the set bits, `i` = 0 for the oldest: exact, no floating point
//! in the fold.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// Runs of its category a finding's state change history covers.
pub const FLAP_HISTORY_RUNS: u32 = 20;
const HISTORY_MASK: u32 = (1 << FLAP_HISTORY_RUNS) - 1;

/// The history after `runs` runs in which the finding was absent, given that the last recorded
/// run was in state `last_present`; returns the history and the new last state.
pub fn absent_runs(bits: u32, last_present: bool, runs: u64) -> (u32, bool) {
    if runs == 0 {
        return (bits, last_present);
    }
    // The first absent run changes the state if the finding was present; the rest do not.
    let bits = ((bits << 1) | u32::from(last_present)) & HISTORY_MASK;
    let rest = runs - 1;
    let bits = if rest >= u64::from(FLAP_HISTORY_RUNS) {
        0
    } else {
        (bits << rest) & HISTORY_MASK
    };
    (bits, false)
}

/// The history after `gap` runs in which the finding was absent, then one run in state
/// `present`, given that the last recorded run was in state `last_present`.
pub fn shift_history(bits: u32, last_present: bool, gap: u64, present: bool) -> u32 {
    let (bits, last) = absent_runs(bits, last_present, gap);
    ((bits << 1) | u32::from(present != last)) & HISTORY_MASK
}

/// The weighted percent state change of a history, in tenths of a percent (0 to 990).
pub fn state_change_tenths(bits: u32) -> u32 {
    // Bit p (0 = newest) is run i = 19 - p counted from the oldest: weight 40 + i = 59 - p.
    let mut total = 0;
    let mut rest = bits & HISTORY_MASK;
    while rest != 0 {
        let p = rest.trailing_zeros();
        total += 59 - p;
        rest &= rest - 1;
    }
    total
}

/// Tenths of a percent as a percent, for people and JSON.
pub fn tenths_to_percent(tenths: u32) -> f64 {
    f64::from(tenths) / 10.0
}

/// Which detector saw the flapping.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FlapDetector {
    /// More auto-resolutions inside the flap window than the flap threshold (lifecycle.md).
    Count,
    /// Weighted percent state change over the last 20 runs of the category, with hysteresis.
    StateChange,
}

impl FlapDetector {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::StateChange => "state_change",
        }
    }
}

/// One flapping episode of a finding: when a detector started and stopped calling it flapping,
/// with the figure that triggered each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapEpisode {
    /// The detector.
    pub detector: FlapDetector,
    /// When it started (the time of the event that triggered it).
    pub started_at: Timestamp,
    /// Log position of that event.
    pub started_seq: u64,
    /// The figure that started it: auto-resolutions in the window (count) or tenths of a
    /// percent (state change).
    pub start_figure: u32,
    /// When it stopped; `None` while flapping.
    pub stopped_at: Option<Timestamp>,
    /// Log position of the event that stopped it.
    pub stopped_seq: Option<u64>,
    /// The figure that stopped it.
    pub stop_figure: Option<u32>,
}

/// A flapping episode as users see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlapEpisodeView {
    /// The detector.
    pub detector: FlapDetector,
    /// When it started.
    pub started_at: Timestamp,
    /// Log position of the event that started it.
    pub started_seq: u64,
    /// What started it, in words.
    pub started_because: String,
    /// When it stopped; `None` while flapping.
    pub stopped_at: Option<Timestamp>,
    /// Log position of the event that stopped it.
    pub stopped_seq: Option<u64>,
    /// What stopped it, in words.
    pub stopped_because: Option<String>,
}

fn describe(detector: FlapDetector, figure: u32, window_secs: u64, starting: bool) -> String {
    match detector {
        FlapDetector::Count => format!(
            "{figure} auto-resolution(s) in the last {window_secs} s{}",
            if starting { "" } else { " (window passed)" }
        ),
        FlapDetector::StateChange => format!(
            "{:.1}% state change over the last {FLAP_HISTORY_RUNS} runs of its category",
            tenths_to_percent(figure)
        ),
    }
}

impl FlapEpisode {
    /// The episode in words; `window_secs` is the count detector's window in force.
    pub fn view(&self, window_secs: u64) -> FlapEpisodeView {
        FlapEpisodeView {
            detector: self.detector,
            started_at: self.started_at,
            started_seq: self.started_seq,
            started_because: describe(self.detector, self.start_figure, window_secs, true),
            stopped_at: self.stopped_at,
            stopped_seq: self.stopped_seq,
            stopped_because: self
                .stop_figure
                .map(|figure| describe(self.detector, figure, window_secs, false)),
        }
    }

    /// Whether the episode is still open.
    pub fn is_open(&self) -> bool {
        self.stopped_seq.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_run_from_0_8_to_1_18() {
        assert_eq!(state_change_tenths(1), 59); // newest: 1.18 -> 5.9 %
        assert_eq!(state_change_tenths(1 << 19), 40); // oldest: 0.8 -> 4.0 %
        assert_eq!(state_change_tenths(HISTORY_MASK), 990); // every run changed: 99 %
        assert_eq!(state_change_tenths(0), 0);
    }

    #[test]
    fn gaps_record_one_change_then_quiet_runs() {
        // Present, then 3 absent runs, then present: changes at the first absent run and now.
        let bits = shift_history(0, true, 3, true);
        assert_eq!(bits, 0b1001);
        // A long gap forgets everything before it.
        assert_eq!(shift_history(HISTORY_MASK, false, 40, false), 0);
        // No gap, same state: a zero shifted in.
        assert_eq!(shift_history(0b1, true, 0, true), 0b10);
    }
}
