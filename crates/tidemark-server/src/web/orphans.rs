//! `/orphans`: the orphans (the first [`ORPHANS_SHOWN`]), then the resource graph they sit in.

use std::collections::BTreeMap;

use maud::{Markup, html};
use tidemark_core::orphans::{OrphanGraph, OrphanKind, OrphanView};

use super::graph;
use super::html::{Section, key_html, page, time_html};

/// What an orphan is: a resource, a tracking row, or a span and its trace.
fn orphan_what(orphan: &OrphanView) -> Markup {
    if let Some(resource) = &orphan.resource {
        let name = match &resource.namespace {
            Some(ns) => format!("{ns}/{}", resource.name),
            None => resource.name.clone(),
        };
        return html! { span class="res-kind" { (resource.kind) } " " (key_html(&name)) };
    }
    if let Some(tracking) = &orphan.tracking {
        return html! {
            "tracking row " span class="res-kind" { (tracking.kind) } " " (key_html(&tracking.key))
            @if let Some(uid) = &tracking.uid {
                " " span class="muted" { "uid" } " " (key_html(uid))
            }
        };
    }
    html! {
        @if let Some(span) = &orphan.span {
            "span " (key_html(&span.name)) " " span class="muted" { "of" } " " (span.service) " "
            (key_html(&span.span_id)) " "
        }
        @if let Some(trace) = &orphan.trace_id {
            span class="muted" { "trace" } " " (key_html(trace))
        }
    }
}

/// An orphan kind's badge (by its wire name): `dangling`, `orphan span`...
fn kind_badge(name: &str) -> Markup {
    html! { span class={ "badge orphan-kind orphan-" (name) } { (name.replace('_', " ")) } }
}

/// How many orphans the page lists; the rest are paged through `GET /v1/orphans`.
pub const ORPHANS_SHOWN: usize = 500;

/// `/orphans`: the orphans (the first [`ORPHANS_SHOWN`]; `more` when others follow), then the
/// resource graph they sit in.
pub fn orphans_page(orphans: &[OrphanView], more: bool, graph: &OrphanGraph) -> String {
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for orphan in orphans {
        *by_kind.entry(orphan.kind.as_str()).or_default() += 1;
    }
    let body = html! {
        section class="page-head" {
            h1 { "Orphans" }
            p class="sub" {
                span class="stat stat-open" {
                    @if more { "the first " }
                    b { (orphans.len()) } " orphan(s)"
                }
                @for (kind, n) in &by_kind {
                    span class="stat" { (kind_badge(kind)) " " (n) }
                }
                span class="asof" { (graph.nodes.len()) " resource(s) in the graph" }
            }
        } "\n"
        section id="orphan-list" {
            "\n"
            @if orphans.is_empty() {
                p class="empty card" { "No orphans." } "\n"
            } @else {
                (orphan_table(orphans))
            }
            @if more {
                p class="note card" {
                    "More orphans follow the first " (orphans.len()) ": page through them with "
                    code { "GET /v1/orphans?after=" } " (the " code { "next" } " of each page)."
                } "\n"
            }
        } "\n"
        section id="graph" {
            h2 { "Resource graph" } "\n"
            @if graph.nodes.is_empty() {
                p class="empty card" { "No resources seen yet." } "\n"
            } @else if graph.nodes.len() > graph::MAX_DRAWN_NODES {
                p class="note card" {
                    "The graph has " (graph.nodes.len()) " resources, more than the "
                    (graph::MAX_DRAWN_NODES) " this page draws; the orphans are listed above."
                } "\n"
            } @else {
                div class="legend" {
                    span { i class="sw sw-node" {} "live" }
                    span { i class="sw sw-tracked" {} "tracked" }
                    span { i class="sw sw-orphan" {} "orphan" }
                    span { i class="sw sw-gone" {} "not live" }
                    span { i class="sw sw-owns" {} "owns" }
                    span { i class="sw sw-uses" {} "uses" }
                } "\n"
                div class="card scroll" { (graph::graph_svg(graph)) } "\n"
            }
        } "\n"
    };
    page("Orphans", "page-orphans", Section::Orphans, body)
}

fn orphan_table(orphans: &[OrphanView]) -> Markup {
    html! {
        div class="card flush" {
            table class="orphans" {
                "\n"
                thead {
                    tr {
                        th { "Kind" }
                        th { "What" }
                        th { "Cluster" }
                        th { "Reason" }
                        th { "Since (UTC)" }
                        th class="num" { "Scans" }
                    }
                } "\n"
                tbody {
                    "\n"
                    @for orphan in orphans {
                        @let spans = matches!(
                            orphan.kind,
                            OrphanKind::OrphanSpan | OrphanKind::RootlessTrace
                        );
                        tr class={ "orphan orphan-row-" (orphan.kind.as_str()) } {
                            td { (kind_badge(orphan.kind.as_str())) }
                            td { (orphan_what(orphan)) }
                            td class="mono" { (orphan.cluster) }
                            td { (orphan.reason) }
                            td { (time_html(orphan.since)) }
                            td class="num" {
                                // Spans are not confirmed over scans.
                                @if spans { "—" } @else { (orphan.scans) }
                            }
                        } "\n"
                    }
                } "\n"
            }
        } "\n"
    }
}
