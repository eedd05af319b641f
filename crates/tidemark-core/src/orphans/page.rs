//! A page of orphans, built after it is chosen: per cluster (by name), the orphans memory holds
//! (the graph's, the span forest's) merged in [`OrphanOrder`] with the rows of dropped traces'
//! orphans (`dropped.rs`) read from where the page starts, until it is full. Costs the page, the
//! clusters it passes and the orphans they hold in memory, never the rows before it.

use std::ops::Bound;

use super::{ClusterOrphans, OrphanKind, OrphanOrder, OrphanProjection, OrphanView};

/// Which orphans a page lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrphanFilter {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Only this kind.
    pub kind: Option<OrphanKind>,
    /// Also candidates not yet confirmed.
    pub candidates: bool,
}

/// A page of orphans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrphanPage {
    /// By cluster, then [`OrphanOrder`].
    pub orphans: Vec<OrphanView>,
    /// Whether more follow the last.
    pub more: bool,
}

impl OrphanProjection {
    /// The orphans `filter` selects after `after` (a cluster and an orphan's order in it: the
    /// last of the previous page), at most `limit`, by cluster, then [`OrphanOrder`].
    pub fn page(
        &self,
        filter: &OrphanFilter,
        after: Option<(&str, &OrphanOrder)>,
        limit: usize,
    ) -> OrphanPage {
        let wanted = limit.saturating_add(1);
        let from = after.map_or("", |(cluster, _)| cluster);
        let clusters: Box<dyn Iterator<Item = (&String, &ClusterOrphans)>> = match &filter.cluster {
            Some(name) if name.as_str() >= from => {
                Box::new(self.clusters.get_key_value(name).into_iter())
            }
            Some(_) => Box::new(std::iter::empty()),
            None => Box::new(self.clusters.iter_from(from)),
        };
        let mut out = Vec::new();
        for (name, cluster) in clusters {
            let within = after
                .filter(|(c, _)| *c == name.as_str())
                .map(|(_, order)| order);
            self.page_cluster(name, cluster, filter, within, wanted, &mut out);
            if out.len() >= wanted {
                break;
            }
        }
        let more = out.len() > limit;
        out.truncate(limit);
        OrphanPage { orphans: out, more }
    }

    /// Adds to `out` the orphans of one cluster `filter` selects after `within`, until `out`
    /// holds `wanted`.
    fn page_cluster(
        &self,
        name: &str,
        cluster: &ClusterOrphans,
        filter: &OrphanFilter,
        within: Option<&OrphanOrder>,
        wanted: usize,
        out: &mut Vec<OrphanView>,
    ) {
        let selected = |order: &OrphanOrder| {
            filter.kind.is_none_or(|kind| kind == order.kind) && within.is_none_or(|w| order > w)
        };
        let graph = cluster.graph.confirmed().chain(
            filter
                .candidates
                .then(|| cluster.graph.unconfirmed())
                .into_iter()
                .flatten(),
        );
        let mut memory: Vec<(OrphanOrder, &OrphanView)> = graph
            .map(|v| (OrphanOrder::of(v), v))
            .chain(cluster.spans.orphans())
            .filter(|(order, _)| selected(order))
            .collect();
        memory.sort_by(|x, y| x.0.cmp(&y.0));
        let mut memory = memory.into_iter().peekable();
        let rows_wanted = filter
            .kind
            .is_none_or(|kind| matches!(kind, OrphanKind::OrphanSpan | OrphanKind::RootlessTrace));
        if let (Some(reader), true) = (&self.dropped.reader, rows_wanted) {
            let kind_start = filter.kind.map(|kind| OrphanOrder {
                kind,
                ..OrphanOrder::FIRST
            });
            let start = match (within, &kind_start) {
                (Some(w), Some(k)) if k > w => Bound::Included(k),
                (Some(w), _) => Bound::Excluded(w),
                (None, Some(k)) => Bound::Included(k),
                (None, None) => Bound::Unbounded,
            };
            reader.dropped_orphans(name, start, self.dropped.as_of, &mut |row| {
                let order = OrphanOrder::of(&row);
                if filter.kind.is_some_and(|kind| kind != order.kind) {
                    return false;
                }
                while let Some((_, held)) = memory.next_if(|(o, _)| *o < order) {
                    out.push(held.clone());
                    if out.len() >= wanted {
                        return false;
                    }
                }
                // A row of an orphan the state holds is that orphan (listed from memory).
                if cluster.spans.holds_dropped(&order) {
                    return true;
                }
                out.push(row);
                out.len() < wanted
            });
        }
        while out.len() < wanted {
            let Some((_, held)) = memory.next() else {
                break;
            };
            out.push(held.clone());
        }
    }
}
