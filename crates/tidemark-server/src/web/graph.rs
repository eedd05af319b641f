//! The orphan graph as SVG: a deterministic layered layout, owners left of what they own (by
//! ownership depth) and used-only resources right of their users, `uses` edges dashed, orphans
//! in red, resources that are not live dashed.

use std::collections::BTreeMap;

use maud::{Markup, html};
use tidemark_core::orphans::{GraphNode, OrphanGraph, Relation};

use super::html::dec1;

const NODE_WIDTH: f64 = 210.0;
const NODE_HEIGHT: f64 = 38.0;
const COLUMN_WIDTH: f64 = 270.0;
const ROW_HEIGHT: f64 = 48.0;
const LEFT: f64 = 16.0;
const TOP: f64 = 34.0;
/// Deeper ownership chains share the last column.
const MAX_DEPTH: usize = 7;
const NAME_CHARS: usize = 27;

/// Graphs with more nodes than this are listed, not drawn.
pub(super) const MAX_DRAWN_NODES: usize = 300;

/// Where each node goes: its column (ownership depth) and row.
#[derive(Debug)]
struct Layout {
    column: Vec<usize>,
    row: Vec<usize>,
    columns: usize,
    rows: usize,
}

fn sort_key(node: &GraphNode) -> (&str, &str, &str, &str, &str) {
    (
        &node.cluster,
        node.namespace.as_deref().unwrap_or(""),
        &node.kind,
        &node.name,
        &node.uid,
    )
}

/// Resolves edges to node indexes, dropping edges to unknown nodes.
fn edge_indexes(graph: &OrphanGraph) -> Vec<(usize, usize, Relation)> {
    let index: BTreeMap<(&str, &str), usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| ((n.cluster.as_str(), n.uid.as_str()), i))
        .collect();
    graph
        .edges
        .iter()
        .filter_map(|e| {
            let from = index.get(&(e.cluster.as_str(), e.from.as_str()))?;
            let to = index.get(&(e.cluster.as_str(), e.to.as_str()))?;
            Some((*from, *to, e.relation))
        })
        .collect()
}

fn layout(graph: &OrphanGraph, edges: &[(usize, usize, Relation)]) -> Layout {
    let count = graph.nodes.len();
    // Longest ownership path from a root, capped (the cap also ends ownership cycles).
    let mut column = vec![0usize; count];
    for _ in 0..count.min(MAX_DEPTH + 1) {
        let mut changed = false;
        for &(from, to, relation) in edges {
            if relation == Relation::Owns && from != to {
                let depth = (column[from] + 1).min(MAX_DEPTH);
                if column[to] < depth {
                    column[to] = depth;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Resources that own nothing and are owned by nothing but are used (config maps, secrets,
    // volumes) go right of their deepest user, so `uses` edges run left to right too.
    let owned_or_owning: Vec<bool> = (0..count)
        .map(|i| {
            edges
                .iter()
                .any(|&(from, to, r)| r == Relation::Owns && from != to && (from == i || to == i))
        })
        .collect();
    let ownership_column = column.clone();
    for i in 0..count {
        if owned_or_owning[i] {
            continue;
        }
        let deepest_user = edges
            .iter()
            .filter(|&&(from, to, r)| r == Relation::Uses && to == i && from != i)
            .map(|&(from, _, _)| ownership_column[from] + 1)
            .max();
        if let Some(depth) = deepest_user {
            column[i] = depth.min(MAX_DEPTH);
        }
    }
    let columns = column.iter().max().map_or(0, |d| d + 1);
    let mut row = vec![0usize; count];
    let mut rows = 0;
    for depth in 0..columns {
        let mut members: Vec<(f64, usize)> = (0..count)
            .filter(|&i| column[i] == depth)
            .map(|i| {
                // Barycentre of the owners and users already placed, so a node sits near them.
                let owners: Vec<f64> = edges
                    .iter()
                    .filter(|&&(from, to, _)| to == i && column[from] < depth)
                    .map(|&(from, _, _)| row[from] as f64)
                    .collect();
                let centre = if owners.is_empty() {
                    0.0
                } else {
                    owners.iter().sum::<f64>() / owners.len() as f64
                };
                (centre, i)
            })
            .collect();
        members.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then_with(|| sort_key(&graph.nodes[a.1]).cmp(&sort_key(&graph.nodes[b.1])))
        });
        for (position, (_, i)) in members.iter().enumerate() {
            row[*i] = position;
        }
        rows = rows.max(members.len());
    }
    Layout {
        column,
        row,
        columns,
        rows,
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

fn node_origin(layout: &Layout, i: usize) -> (f64, f64) {
    (
        LEFT + COLUMN_WIDTH * layout.column[i] as f64,
        TOP + ROW_HEIGHT * layout.row[i] as f64,
    )
}

/// The graph as an `<svg>` (the caller checks [`MAX_DRAWN_NODES`]).
pub(super) fn graph_svg(graph: &OrphanGraph) -> Markup {
    let edges = edge_indexes(graph);
    let layout = layout(graph, &edges);
    let width = LEFT * 2.0 + COLUMN_WIDTH * (layout.columns.max(1) - 1) as f64 + NODE_WIDTH;
    let height = TOP + ROW_HEIGHT * layout.rows as f64 + 8.0;
    let (width, height) = (format!("{width:.0}"), format!("{height:.0}"));
    html! {
        svg class="graph" viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height)
            role="img" aria-label="Resource graph" {
            "\n"
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"
                    markerHeight="7" orient="auto-start-reverse" {
                    path d="M0 0L10 5L0 10z" fill="#8b949e" {}
                }
            } "\n"
            @for depth in 0..layout.columns {
                text class="col-label" x=(dec1(LEFT + COLUMN_WIDTH * depth as f64)) y="18" {
                    @match depth {
                        0 => "roots",
                        d if d == MAX_DEPTH => { "depth " (d) "+" }
                        d => { "depth " (d) }
                    }
                }
            }
            "\n"
            g class="edges" {
                "\n"
                @for &(from, to, relation) in &edges {
                    path class={ "edge edge-" (relation.as_str()) } d=(edge_path(&layout, from, to))
                        marker-end="url(#arrow)" {
                        title {
                            (node_name(&graph.nodes[from])) " " (relation.as_str()) " "
                            (node_name(&graph.nodes[to]))
                        }
                    } "\n"
                }
            } "\n"
            g class="nodes" {
                "\n"
                @for (i, node) in graph.nodes.iter().enumerate() {
                    (node_svg(&layout, i, node))
                }
            } "\n"
        } "\n"
    }
}

/// The curve of an edge: left to right between columns, a loop on the right within one.
fn edge_path(layout: &Layout, from: usize, to: usize) -> String {
    let (fx, fy) = node_origin(layout, from);
    let (tx, ty) = node_origin(layout, to);
    let (fy, ty) = (fy + NODE_HEIGHT / 2.0, ty + NODE_HEIGHT / 2.0);
    if layout.column[to] > layout.column[from] {
        let (x1, x2) = (fx + NODE_WIDTH, tx);
        format!(
            "M{x1:.1} {fy:.1}C{:.1} {fy:.1} {:.1} {ty:.1} {x2:.1} {ty:.1}",
            x1 + 40.0,
            x2 - 40.0
        )
    } else if layout.column[to] == layout.column[from] {
        let x = fx + NODE_WIDTH;
        format!(
            "M{x:.1} {fy:.1}C{:.1} {fy:.1} {:.1} {ty:.1} {x:.1} {ty:.1}",
            x + 36.0,
            x + 36.0
        )
    } else {
        let (x1, x2) = (fx, tx + NODE_WIDTH);
        format!(
            "M{x1:.1} {fy:.1}C{:.1} {fy:.1} {:.1} {ty:.1} {x2:.1} {ty:.1}",
            x1 - 40.0,
            x2 + 40.0
        )
    }
}

/// `Kind ns/name`, or the uid for a node never seen live.
pub(super) fn node_name(node: &GraphNode) -> String {
    if node.name.is_empty() {
        return format!("uid {}", node.uid);
    }
    match &node.namespace {
        Some(ns) => format!("{} {ns}/{}", node.kind, node.name),
        None => format!("{} {}", node.kind, node.name),
    }
}

fn node_svg(layout: &Layout, i: usize, node: &GraphNode) -> Markup {
    let (x, y) = node_origin(layout, i);
    let mut title = format!(
        "{}\ncluster {}\nuid {}",
        node_name(node),
        node.cluster,
        node.uid
    );
    title.push_str(if node.live { "\nlive" } else { "\nnot live" });
    if node.tracked {
        title.push_str(", tracked");
    }
    if let (Some(kind), Some(reason)) = (node.orphan, &node.reason) {
        title.push_str(&format!("\norphan ({}): {reason}", kind.as_str()));
    }
    let caption = match (&node.kind, &node.namespace) {
        (kind, _) if kind.is_empty() => "missing".to_owned(),
        (kind, Some(ns)) => format!("{kind} · {ns}"),
        (kind, None) => kind.clone(),
    };
    let caption_chars = if node.orphan.is_some() { 19 } else { 30 };
    let name = if node.name.is_empty() {
        &node.uid
    } else {
        &node.name
    };
    html! {
        g class={
            "node"
            @if node.orphan.is_some() { " node-orphan" }
            @if !node.live { " node-gone" }
            @if node.tracked { " node-tracked" }
        } data-uid=(node.uid) {
            title { (title) }
            rect x=(dec1(x)) y=(dec1(y)) width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="6" {}
            text class="node-kind" x=(dec1(x + 8.0)) y=(dec1(y + 14.0)) {
                (truncate(&caption, caption_chars))
            }
            @if let Some(kind) = node.orphan {
                text class="node-tag" x=(dec1(x + NODE_WIDTH - 7.0)) y=(dec1(y + 14.0))
                    text-anchor="end" { (kind.as_str()) }
            }
            text class="node-name" x=(dec1(x + 8.0)) y=(dec1(y + 30.0)) {
                (truncate(name, NAME_CHARS))
            }
        } "\n"
    }
}
