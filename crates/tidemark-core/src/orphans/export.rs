//! The resource graph with orphan marks, as users export it: nodes, edges, JSON and Graphviz DOT.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::graph::ClusterGraph;
use super::{Key, OrphanKind};

/// Relation of a graph edge.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// `from` is an owner of `to`.
    Owns,
    /// `from` depends on `to`.
    Uses,
}

impl Relation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owns => "owns",
            Self::Uses => "uses",
        }
    }
}

/// A node of the resource graph: a live resource, a uid referenced but not live, or a ghost
/// tracking row (whose `uid` is the row's uid, or `tracking:<kind>:<key>` without one).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct GraphNode {
    /// The cluster.
    pub cluster: String,
    /// Uid (see the type's doc for ghosts).
    pub uid: String,
    /// Kind; empty for a referenced uid never seen live.
    pub kind: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name; empty for a referenced uid never seen live.
    pub name: String,
    /// Whether it is live.
    pub live: bool,
    /// Whether a tracking row tracks it (always true for a ghost row).
    pub tracked: bool,
    /// Its confirmed orphan kind, if it is one (unmanaged before dangling when both).
    pub orphan: Option<OrphanKind>,
    /// The orphan's reason.
    pub reason: Option<String>,
}

/// An edge of the resource graph.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct GraphEdge {
    /// The cluster.
    pub cluster: String,
    /// Owner or user uid.
    pub from: String,
    /// Owned or used uid.
    pub to: String,
    /// `owns` or `uses`.
    pub relation: Relation,
}

/// The resource graph with orphan marks; nodes and edges sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrphanGraph {
    /// Nodes, sorted by (cluster, uid).
    pub nodes: Vec<GraphNode>,
    /// Edges, sorted by (cluster, from, to, relation).
    pub edges: Vec<GraphEdge>,
}

fn dot_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

impl OrphanGraph {
    /// Graphviz DOT: one node per graph node (id `cluster/uid`), orphans red with their kind and
    /// reason in the label, nodes that are not live dashed grey, tracked nodes bold.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph orphans {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
        );
        for node in &self.nodes {
            let id = dot_escape(&format!("{}/{}", node.cluster, node.uid));
            let mut label = if node.kind.is_empty() {
                String::from("(unknown)")
            } else {
                node.kind.clone()
            };
            label.push('\n');
            if let Some(ns) = &node.namespace {
                label.push_str(ns);
                label.push('/');
            }
            label.push_str(&node.name);
            label.push('\n');
            label.push_str(&node.uid);
            let mut attrs = Vec::new();
            if let Some(kind) = node.orphan {
                label.push_str("\nORPHAN ");
                label.push_str(kind.as_str());
                if let Some(reason) = &node.reason {
                    label.push_str(": ");
                    label.push_str(reason);
                }
                attrs.push("color=\"red\"".to_owned());
                attrs.push("fontcolor=\"red\"".to_owned());
            }
            let mut styles = Vec::new();
            if !node.live {
                styles.push("dashed");
                if node.orphan.is_none() {
                    attrs.push("color=\"grey\"".to_owned());
                }
            }
            if node.tracked {
                styles.push("bold");
            }
            if !styles.is_empty() {
                attrs.push(format!("style=\"{}\"", styles.join(",")));
            }
            attrs.insert(0, format!("label=\"{}\"", dot_escape(&label)));
            let _ = writeln!(out, "  \"{id}\" [{}];", attrs.join(", "));
        }
        for edge in &self.edges {
            let from = dot_escape(&format!("{}/{}", edge.cluster, edge.from));
            let to = dot_escape(&format!("{}/{}", edge.cluster, edge.to));
            let _ = writeln!(
                out,
                "  \"{from}\" -> \"{to}\" [label=\"{}\"];",
                edge.relation.as_str()
            );
        }
        out.push_str("}\n");
        out
    }
}

impl ClusterGraph {
    /// Adds this cluster's nodes and edges: live resources, the uids they reference that are not
    /// live, and confirmed ghost rows.
    pub(super) fn graph_into(&self, cluster: &str, graph: &mut OrphanGraph) {
        let confirmed = |key: &Key| {
            self.candidates
                .get(key)
                .filter(|v| v.scans >= self.confirm_scans)
        };
        let mut missing: BTreeSet<&str> = BTreeSet::new();
        for (uid, res) in &self.live {
            let orphan = confirmed(&Key::resource(OrphanKind::Unmanaged, uid))
                .or_else(|| confirmed(&Key::resource(OrphanKind::Dangling, uid)));
            graph.nodes.push(GraphNode {
                cluster: cluster.to_owned(),
                uid: uid.clone(),
                kind: res.kind.clone(),
                namespace: res.namespace.clone(),
                name: res.name.clone(),
                live: true,
                tracked: self.is_tracked(uid, res),
                orphan: orphan.map(|v| v.kind),
                reason: orphan.map(|v| v.reason.clone()),
            });
            for target in &res.uses {
                if !self.live.contains_key(target) {
                    missing.insert(target);
                }
                graph.edges.push(GraphEdge {
                    cluster: cluster.to_owned(),
                    from: uid.clone(),
                    to: target.clone(),
                    relation: Relation::Uses,
                });
            }
            for owner in &res.owners {
                if !self.live.contains_key(owner) {
                    missing.insert(owner);
                }
                graph.edges.push(GraphEdge {
                    cluster: cluster.to_owned(),
                    from: owner.clone(),
                    to: uid.clone(),
                    relation: Relation::Owns,
                });
            }
        }
        let mut missing_nodes: BTreeMap<&str, GraphNode> = missing
            .into_iter()
            .map(|uid| {
                let gone = self.gone.get(uid);
                let node = GraphNode {
                    cluster: cluster.to_owned(),
                    uid: uid.to_owned(),
                    kind: gone.map(|g| g.kind.clone()).unwrap_or_default(),
                    namespace: gone.and_then(|g| g.namespace.clone()),
                    name: gone.map(|g| g.name.clone()).unwrap_or_default(),
                    live: false,
                    tracked: self.tracked_uids.contains_key(uid),
                    orphan: None,
                    reason: None,
                };
                (uid, node)
            })
            .collect();
        for ((kind, key), uid) in &self.rows {
            let Some(view) = confirmed(&Key::ghost(kind, key)) else {
                continue;
            };
            // A ghost row naming a uid that live resources reference marks that node.
            if let Some(node) = uid.as_deref().and_then(|u| missing_nodes.get_mut(u)) {
                if node.orphan.is_none() {
                    node.orphan = Some(OrphanKind::Ghost);
                    node.reason = Some(view.reason.clone());
                }
                continue;
            }
            let suffix = key.rsplit_once(':').map_or(key.as_str(), |(_, s)| s);
            let (namespace, name) = match suffix.split_once('/') {
                Some((ns, name)) => (Some(ns.to_owned()), name.to_owned()),
                None => (None, suffix.to_owned()),
            };
            graph.nodes.push(GraphNode {
                cluster: cluster.to_owned(),
                uid: uid
                    .clone()
                    .unwrap_or_else(|| format!("tracking:{kind}:{key}")),
                kind: kind.clone(),
                namespace,
                name,
                live: false,
                tracked: true,
                orphan: Some(OrphanKind::Ghost),
                reason: Some(view.reason.clone()),
            });
        }
        graph.nodes.extend(missing_nodes.into_values());
    }
}
