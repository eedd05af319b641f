//! `/maintenance`: the maintenance windows in effect (open at the reference time by default, or
//! all of them), what each covers and until when, and each cluster's counts.

use maud::{Markup, html};
use tidemark_core::event::{MaintenanceMatchers, MaintenanceSchedule};
use tidemark_core::findings::{ClusterMaintenanceView, MaintenanceWindowView};

use super::html::{Section, page, time_html};

/// How many windows `/maintenance` lists; the rest are read through `GET /v1/maintenance`.
pub const WINDOWS_SHOWN: usize = 500;

fn covers(m: &MaintenanceMatchers) -> Markup {
    html! {
        @if m.is_empty() {
            "the whole cluster"
        }
        @if let Some(ns) = &m.namespace { span class="label mono" { "namespace=" (ns) } " " }
        @if let Some(s) = &m.service { span class="label mono" { "service=" (s) } " " }
        @if let Some(n) = &m.alert_name { span class="label mono" { "alert=" (n) } " " }
        @if let Some(k) = &m.check_key { span class="label mono" { "check_key=" (k) } " " }
        @for (k, v) in &m.labels { span class="label mono" { (k) "=" (v) } " " }
    }
}

fn schedule(s: &MaintenanceSchedule) -> Markup {
    html! {
        @match s {
            MaintenanceSchedule::Once(span) => {
                (time_html(span.starts_at)) " to " (time_html(span.ends_at))
            }
            MaintenanceSchedule::TimeIntervals(specs) => {
                "recurring: "
                code { (serde_json::to_string(specs).unwrap_or_default()) }
            }
        }
    }
}

fn now_html(w: &MaintenanceWindowView) -> Markup {
    html! {
        @if w.open {
            span class="badge maint-open" { "open" }
            @if let Some(until) = w.open_until { " until " (time_html(until)) }
        } @else {
            span class="badge state-resolved" { "closed" }
            @if let Some(next) = w.next_open { " opens " (time_html(next)) }
        }
    }
}

/// `/maintenance`: the windows (`all`: every one in effect, else those open), at most
/// [`WINDOWS_SHOWN`] (`more` when others follow), at log position `at_seq`.
pub fn maintenance_page(
    windows: &[MaintenanceWindowView],
    clusters: &[ClusterMaintenanceView],
    more: bool,
    all: bool,
    at_seq: u64,
) -> String {
    let marked: u64 = clusters.iter().map(|c| c.summary.marked).sum();
    let body = html! {
        section class="page-head" {
            h1 { "Maintenance windows" }
            p class="sub" {
                span class="stat stat-open" { b { (windows.len()) } @if all { " in effect" } @else { " open" } }
                span class="stat" { b { (marked) } " finding(s) in maintenance" }
                span class="stat" {
                    @if all { a href="/maintenance" { "open only" } }
                    @else { a href="/maintenance?state=all" { "all in effect" } }
                }
                span class="asof" { "as of log position " code { (at_seq) } }
            }
        } "\n"
        p class="note" {
            "A finding or alert a window covers is still recorded, marked " code { "in_maintenance" }
            "; by default it opens no automatic incident until the window ends and does not count "
            "towards flapping. Each window is judged at its cluster's clock (or the time of "
            code { "?at=" } ")."
        } "\n"
        @if windows.is_empty() {
            p class="empty card" {
                @if all { "No maintenance window is in effect." } @else { "No maintenance window is open." }
            } "\n"
        } @else {
            div class="card flush" {
                table class="maintenance" {
                    "\n"
                    thead {
                        tr {
                            th { "Cluster" }
                            th { "Window" }
                            th { "Now" }
                            th { "Covers" }
                            th { "When" }
                            th { "Scheduled by" }
                            th { "Why" }
                        }
                    } "\n"
                    tbody {
                        "\n"
                        @for w in windows {
                            tr class="window" data-window=(w.window) {
                                td class="mono" { (w.cluster) }
                                td class="mono" { (w.window) }
                                td { (now_html(w)) }
                                td { (covers(&w.matchers)) }
                                td { (schedule(&w.schedule)) }
                                td { (w.by) " at " (time_html(w.scheduled_at)) }
                                td class="title" { (w.reason) }
                            }
                            "\n"
                        }
                    } "\n"
                }
            } "\n"
        }
        @if more {
            p class="note card" {
                "More windows follow the first " (windows.len()) ": "
                code { "GET /v1/maintenance?state=all&limit=1000" } "."
            } "\n"
        }
    };
    page(
        "Maintenance",
        "page-maintenance",
        Section::Maintenance,
        body,
    )
}
