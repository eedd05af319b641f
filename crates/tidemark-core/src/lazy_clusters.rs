//! Per-cluster state that is restored when it is first needed (ADR 0006, "Reopen across
//! clusters"): a map by cluster name whose entries are either in memory or a reference to the
//! snapshot part that holds them, read through a loader the store gives.
//!
//! A projection restored from a per-cluster snapshot knows every cluster's name and the
//! position of its part; a cluster's state is read and restored the first time anything asks
//! for it (a read of that cluster, or the fold of one of its events), so a reopen costs the
//! manifest and a read what it touches. The answers are those of a projection restored whole:
//! the loader gives the state the whole restore gives for that part, and every access goes
//! through this map.
//!
//! A loader that fails (a part missing, corrupt, the engine) answers `None` after recording the
//! fault where the store's read paths look for it (as a shared history reader does): a read
//! then sees the cluster as absent and the store answers the fault instead; the fold of a
//! batch that met it fails and the state is reloaded. A failed load is not kept: the next
//! access tries again.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Reads one cluster's state from the part at a position: `Some(Some(state))`, `Some(None)`
/// when the part holds nothing of this kind for the cluster, `None` after a fault (recorded by
/// the loader for the store to answer).
pub type ClusterLoader<T> = Arc<dyn Fn(&str, u64) -> Option<Option<T>> + Send + Sync>;

/// One cluster: its state once known (`None` inside: nothing of this kind), and the position
/// of the snapshot part it is restored from until then. The state is boxed: a slot of a cluster
/// not in memory takes a few words, not the size of a cluster's state (6,000 unloaded
/// clusters are 6,000 small slots).
#[derive(Clone)]
struct Slot<T> {
    state: OnceLock<Option<Box<T>>>,
    part: u64,
}

impl<T> Slot<T> {
    fn known(state: T) -> Self {
        Self {
            state: OnceLock::from(Some(Box::new(state))),
            part: 0,
        }
    }
}

/// Per-cluster state by cluster name, each restored on first use (see the module docs).
#[derive(Clone)]
pub(crate) struct LazyClusters<T> {
    slots: BTreeMap<String, Slot<T>>,
    load: Option<ClusterLoader<T>>,
}

impl<T> Default for LazyClusters<T> {
    fn default() -> Self {
        Self {
            slots: BTreeMap::new(),
            load: None,
        }
    }
}

impl<T> std::fmt::Debug for LazyClusters<T>
where
    T: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (name, slot) in &self.slots {
            match slot.state.get() {
                Some(state) => map.entry(name, state),
                None => map.entry(name, &format_args!("unloaded (part at {})", slot.part)),
            };
        }
        map.finish()
    }
}

impl<T> LazyClusters<T> {
    /// Clusters not in memory yet: each name with the position of the part it is restored
    /// from by `load`.
    pub(crate) fn unloaded(
        parts: impl IntoIterator<Item = (String, u64)>,
        load: ClusterLoader<T>,
    ) -> Self {
        Self {
            slots: parts
                .into_iter()
                .map(|(name, part)| {
                    (
                        name,
                        Slot {
                            state: OnceLock::new(),
                            part,
                        },
                    )
                })
                .collect(),
            load: Some(load),
        }
    }

    /// The state of `slot` (named `name`), loaded first if it is not in memory; `None` when
    /// it holds nothing, or when the load failed (the loader recorded the fault).
    fn resolve<'a>(&'a self, name: &str, slot: &'a Slot<T>) -> Option<&'a T> {
        if let Some(state) = slot.state.get() {
            return state.as_deref();
        }
        let loaded = (self.load.as_ref()?)(name, slot.part)?.map(Box::new);
        // Two readers may load at once: both loaded the same part, one of them is kept.
        slot.state.get_or_init(|| loaded).as_deref()
    }

    /// One cluster's state.
    pub(crate) fn get(&self, name: &str) -> Option<&T> {
        self.get_key_value(name).map(|(_, state)| state)
    }

    /// One cluster's state, with its name as the map holds it.
    pub(crate) fn get_key_value(&self, name: &str) -> Option<(&String, &T)> {
        let (name, slot) = self.slots.get_key_value(name)?;
        Some((name, self.resolve(name, slot)?))
    }

    /// One cluster's state, to change it. A failed load leaves the cluster empty of this kind
    /// (the fault is recorded: the fold that asked fails, and its state is dropped).
    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        let slot = self.slots.get_mut(name)?;
        if slot.state.get().is_none() {
            let loaded = self
                .load
                .as_ref()
                .and_then(|load| load(name, slot.part))
                .flatten()
                .map(Box::new);
            // Nobody else holds the map: the cell is empty until this sets it.
            let _ = slot.state.set(loaded);
        }
        slot.state.get_mut().and_then(Option::as_deref_mut)
    }

    /// One cluster's state, to change it; a new default one if it has none.
    pub(crate) fn get_or_insert_default(&mut self, name: &str) -> &mut T
    where
        T: Default,
    {
        if self.get_mut(name).is_none() {
            self.slots
                .insert(name.to_owned(), Slot::known(T::default()));
        }
        self.get_mut(name).expect("inserted just above")
    }

    /// Sets one cluster's state.
    pub(crate) fn insert(&mut self, name: String, state: T) {
        self.slots.insert(name, Slot::known(state));
    }

    /// Every cluster with state of this kind, by name (loading those not in memory).
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &T)> + '_ {
        self.slots
            .iter()
            .filter_map(|(name, slot)| Some((name, self.resolve(name, slot)?)))
    }

    /// The clusters named `from` or later, by name (loading those not in memory as the
    /// iteration reaches them: a page that stops early loads no cluster after it).
    pub(crate) fn iter_from<'a>(
        &'a self,
        from: &str,
    ) -> impl DoubleEndedIterator<Item = (&'a String, &'a T)> + 'a {
        use std::ops::Bound;
        self.slots
            .range::<str, _>((Bound::Included(from), Bound::Unbounded))
            .filter_map(|(name, slot)| Some((name, self.resolve(name, slot)?)))
    }

    /// Every cluster's state (loading those not in memory).
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().map(|(_, state)| state)
    }

    /// Every cluster name, without loading any: for a kind of state every cluster has (a
    /// cluster's findings part always holds its findings).
    pub(crate) fn names(&self) -> impl Iterator<Item = &String> + '_ {
        self.slots.keys()
    }

    /// Every cluster name, with its state if it is in memory (`None`: not loaded yet, so
    /// unchanged since the part it is restored from was written).
    pub(crate) fn in_memory(&self) -> impl Iterator<Item = (&String, Option<&T>)> + '_ {
        self.slots
            .iter()
            .map(|(name, slot)| (name, slot.state.get().and_then(Option::as_deref)))
    }

    /// The state of every cluster in memory, to change it (loading none).
    pub(crate) fn in_memory_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.slots
            .values_mut()
            .filter_map(|slot| slot.state.get_mut().and_then(Option::as_deref_mut))
    }

    /// How many clusters are in memory (loaded, or never restored from a part).
    pub(crate) fn loaded(&self) -> usize {
        self.slots
            .values()
            .filter(|slot| slot.state.get().is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A loader over a fixed set of parts that counts its reads and fails for "broken".
    fn loader(reads: Arc<Mutex<Vec<String>>>) -> ClusterLoader<u32> {
        Arc::new(move |name, part| {
            reads.lock().unwrap().push(format!("{name}@{part}"));
            match name {
                "broken" => None,
                "empty" => Some(None),
                _ => Some(Some(part as u32 * 10)),
            }
        })
    }

    fn parts() -> Vec<(String, u64)> {
        ["a", "b", "broken", "empty"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i as u64 + 1))
            .collect()
    }

    #[test]
    fn a_cluster_is_loaded_once_on_first_use_and_only_it() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let map = LazyClusters::unloaded(parts(), loader(reads.clone()));
        assert_eq!(map.loaded(), 0);
        assert_eq!(map.get("b"), Some(&20));
        assert_eq!(map.get("b"), Some(&20));
        assert_eq!(map.get("zzz"), None);
        assert_eq!(*reads.lock().unwrap(), vec!["b@2"]);
        assert_eq!(map.loaded(), 1);
        assert_eq!(map.names().count(), 4);
        assert_eq!(map.in_memory().filter(|(_, s)| s.is_some()).count(), 1);
    }

    #[test]
    fn iterating_from_a_name_loads_no_cluster_before_it_nor_after_where_it_stops() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let map = LazyClusters::unloaded(parts(), loader(reads.clone()));
        let first: Vec<(&String, &u32)> = map.iter_from("ab").take(1).collect();
        assert_eq!(first, vec![(&"b".to_owned(), &20)]);
        assert_eq!(*reads.lock().unwrap(), vec!["b@2"]);
    }

    #[test]
    fn a_failed_load_is_absent_and_tried_again() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let map = LazyClusters::unloaded(parts(), loader(reads.clone()));
        assert_eq!(map.get("broken"), None);
        assert_eq!(map.get("broken"), None);
        assert_eq!(*reads.lock().unwrap(), vec!["broken@3", "broken@3"]);
        assert_eq!(map.loaded(), 0);
        // A part with nothing of this kind is absent, and known so.
        assert_eq!(map.get("empty"), None);
        assert_eq!(map.loaded(), 1);
        let all: Vec<(&String, &u32)> = map.iter().collect();
        assert_eq!(all, vec![(&"a".to_owned(), &10), (&"b".to_owned(), &20)]);
    }

    #[test]
    fn changing_a_cluster_loads_it_first_and_a_new_one_starts_empty() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let mut map = LazyClusters::unloaded(parts(), loader(reads.clone()));
        *map.get_or_insert_default("a") += 1;
        *map.get_or_insert_default("new") += 1;
        *map.get_or_insert_default("empty") += 5;
        assert_eq!(map.get("a"), Some(&11));
        assert_eq!(map.get("new"), Some(&1));
        assert_eq!(map.get("empty"), Some(&5));
        let all: Vec<u32> = map.values().copied().collect();
        assert_eq!(all, vec![11, 20, 5, 1]);
        // Each part read once; `broken`'s failed (it is absent).
        assert_eq!(
            *reads.lock().unwrap(),
            vec!["a@1", "empty@4", "b@2", "broken@3"]
        );
        // Changed, it is absent too (the fold that changed it fails: its state is dropped).
        assert!(map.get_mut("broken").is_none());
        assert_eq!(map.in_memory_mut().count(), 4);
    }
}
