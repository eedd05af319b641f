//! Finding the orphan candidates of a cluster's resource graph after a scan: dangling resources
//! (directly, then transitively over owners, each reason naming its root cause), unmanaged roots
//! of tracked kinds, and ghost tracking rows of scanned kinds.

use rustc_hash::FxHashMap;

use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

use super::graph::{ClusterGraph, Res, display_name};
use super::{Key, OrphanKind, OrphanView, TrackingRef};

impl ClusterGraph {
    /// A resource by uid, live or remembered, as `(Kind ns/name)`; empty when unknown.
    fn describe(&self, uid: &str) -> String {
        if let Some(res) = self.live.get(uid) {
            format!(
                " ({} {})",
                res.kind,
                display_name(res.namespace.as_deref(), &res.name)
            )
        } else if let Some(gone) = self.gone.get(uid) {
            format!(
                " ({} {})",
                gone.kind,
                display_name(gone.namespace.as_deref(), &gone.name)
            )
        } else {
            String::new()
        }
    }

    pub(super) fn compute_candidates(
        &self,
        cluster: &str,
        settings: &ClusterSettings,
    ) -> Vec<(Key, OrphanView)> {
        let blank = |kind: OrphanKind, reason: String| OrphanView {
            cluster: cluster.to_owned(),
            kind,
            resource: None,
            tracking: None,
            trace_id: None,
            span: None,
            reason,
            since: Timestamp::default(),
            since_seq: 0,
            scans: 0,
        };
        let mut out = Vec::new();
        let live: Vec<(&String, &Res)> = self.live.iter().collect();
        let index: FxHashMap<&str, u32> = live
            .iter()
            .enumerate()
            .map(|(i, (uid, _))| (uid.as_str(), i as u32))
            .collect();

        // Consumers of each live resource.
        let mut used: Vec<bool> = vec![false; live.len()];
        for (_, res) in &live {
            for target in &res.uses {
                if let Some(&j) = index.get(target.as_str()) {
                    used[j as usize] = true;
                }
            }
        }

        // Direct dangling causes.
        let mut direct: Vec<Option<String>> = vec![None; live.len()];
        for (i, (_, res)) in live.iter().enumerate() {
            let reason = if let Some(owner) =
                res.owners.iter().find(|o| !index.contains_key(o.as_str()))
            {
                Some(format!("owner {owner}{} is not live", self.describe(owner)))
            } else if let Some(dep) = res.uses.iter().find(|u| !index.contains_key(u.as_str())) {
                Some(format!(
                    "uses {dep}{}, which is not live",
                    self.describe(dep)
                ))
            } else if settings.orphan_consumer_kinds.contains(&res.kind) && !used[i] {
                Some(format!("no live resource uses this {}", res.kind))
            } else {
                None
            };
            direct[i] = reason;
        }

        // Transitive over owners: breadth-first from the direct ones along "owned by" edges.
        // `dist` is order-independent, so the chosen owner (nearest a root cause, first in
        // `owners` on ties) is too.
        let mut children_start = vec![0u32; live.len() + 1];
        for (_, res) in &live {
            for owner in &res.owners {
                if let Some(&j) = index.get(owner.as_str()) {
                    children_start[j as usize + 1] += 1;
                }
            }
        }
        for i in 0..live.len() {
            children_start[i + 1] += children_start[i];
        }
        let mut fill = children_start.clone();
        let mut children = vec![0u32; children_start[live.len()] as usize];
        for (i, (_, res)) in live.iter().enumerate() {
            for owner in &res.owners {
                if let Some(&j) = index.get(owner.as_str()) {
                    children[fill[j as usize] as usize] = i as u32;
                    fill[j as usize] += 1;
                }
            }
        }
        const UNREACHED: u32 = u32::MAX;
        let mut dist = vec![UNREACHED; live.len()];
        let mut order: Vec<u32> = Vec::new();
        for (i, reason) in direct.iter().enumerate() {
            if reason.is_some() {
                dist[i] = 0;
                order.push(i as u32);
            }
        }
        let mut head = 0;
        while head < order.len() {
            let i = order[head] as usize;
            head += 1;
            let (lo, hi) = (children_start[i] as usize, children_start[i + 1] as usize);
            for &child in &children[lo..hi] {
                if dist[child as usize] == UNREACHED {
                    dist[child as usize] = dist[i] + 1;
                    order.push(child);
                }
            }
        }
        // Root cause of each dangling resource: the index of a direct one.
        let mut root = vec![UNREACHED; live.len()];
        let mut via = vec![UNREACHED; live.len()];
        for &i in &order {
            let i = i as usize;
            if dist[i] == 0 {
                root[i] = i as u32;
                continue;
            }
            let res = live[i].1;
            let parent = res
                .owners
                .iter()
                .filter_map(|o| index.get(o.as_str()).copied())
                .find(|&j| dist[j as usize] != UNREACHED && dist[j as usize] + 1 == dist[i])
                .expect("a transitively dangling resource has an owner one step nearer");
            via[i] = parent;
            root[i] = root[parent as usize];
        }
        for &i in &order {
            let i = i as usize;
            let (uid, res) = live[i];
            let reason = if dist[i] == 0 {
                direct[i].clone().expect("direct")
            } else {
                let owner = live[via[i] as usize].0;
                let cause = direct[root[i] as usize].as_deref().expect("direct");
                format!("owner {owner}{} is dangling: {cause}", self.describe(owner))
            };
            let mut view = blank(OrphanKind::Dangling, reason);
            view.resource = Some(res.reference(uid));
            out.push((Key::resource(OrphanKind::Dangling, uid), view));
        }

        // Unmanaged roots of tracked kinds.
        for (uid, res) in &live {
            if res.owners.is_empty()
                && self.tracked_kinds.contains(&res.kind)
                && !self.is_tracked(uid, res)
            {
                let name = display_name(res.namespace.as_deref(), &res.name);
                let reason = format!(
                    "no {} tracking row tracks {name} (by uid {uid} or by a key ending in :{name})",
                    res.kind
                );
                let mut view = blank(OrphanKind::Unmanaged, reason);
                view.resource = Some(res.reference(uid));
                out.push((Key::resource(OrphanKind::Unmanaged, uid), view));
            }
        }

        // Ghost rows of scanned kinds.
        for ((kind, key), uid) in &self.rows {
            let Some(scan) = self.scanned.get(kind) else {
                continue;
            };
            if self.row_backed(kind, key, uid.as_deref()) {
                continue;
            }
            let reason = match uid {
                Some(uid) => format!(
                    "no live resource has the tracked uid {uid} (latest {kind} scan: {scan})"
                ),
                None => {
                    let suffix = key.rsplit_once(':').map_or(key.as_str(), |(_, s)| s);
                    format!("no live {kind} {suffix} (latest {kind} scan: {scan})")
                }
            };
            let mut view = blank(OrphanKind::Ghost, reason);
            view.tracking = Some(TrackingRef {
                kind: kind.clone(),
                key: key.clone(),
                uid: uid.clone(),
            });
            out.push((Key::ghost(kind, key), view));
        }
        out
    }
}
