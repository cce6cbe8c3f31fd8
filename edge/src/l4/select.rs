//! Selection: which L7 node a new connection goes to, and which one it
//! retries on. Pure; built by the controller, read by the accept path.
//!
//! A [`Selection`] pairs a Maglev table over the **healthy, weighted** L7
//! nodes with one payload per table backend. A flow's key picks its slot;
//! the slot's backend is the primary. The fallback, used when connecting to
//! the primary fails, is the backend of the next slot (walking forward,
//! wrapping) that holds a *different* backend: deterministic per flow like
//! the primary, and spread over the other nodes in proportion to their
//! share of the table rather than piled onto one neighbour.

use crate::maglev::{Backend, MaglevError, MaglevTable, TableSize};

/// A Maglev table and the payload of each of its backends.
#[derive(Debug)]
pub struct Selection<B> {
    table: MaglevTable,
    /// Parallel to `table.backends()` (sorted by name, weight > 0).
    payloads: Vec<B>,
}

impl<B> Selection<B> {
    /// A table over `candidates` (`(name, weight)` with their payloads, any
    /// order). Weight-0 candidates are left out. Errors as
    /// [`MaglevTable::build`] (duplicate or empty names).
    pub fn build(candidates: Vec<(Backend, B)>, size: TableSize) -> Result<Self, MaglevError> {
        let backends: Vec<Backend> = candidates.iter().map(|(b, _)| b.clone()).collect();
        let table = MaglevTable::build(&backends, size)?;
        let mut slots: Vec<Option<B>> = Vec::with_capacity(table.backends().len());
        slots.resize_with(table.backends().len(), || None);
        for (backend, payload) in candidates {
            // `backends()` is sorted by name and names are unique.
            if let Ok(i) = table
                .backends()
                .binary_search_by(|b| b.name.as_str().cmp(&backend.name))
            {
                slots[i] = Some(payload);
            }
        }
        let payloads = slots.into_iter().flatten().collect();
        Ok(Self { table, payloads })
    }

    /// An empty selection: every lookup answers `None`.
    pub fn empty() -> Self {
        Self {
            table: MaglevTable::build(&[], TableSize::default())
                .unwrap_or_else(|_| unreachable!("an empty backend set always builds")),
            payloads: Vec::new(),
        }
    }

    /// The primary for a flow key, and the fallback if there is another
    /// backend. `None` when the table is empty (no healthy node).
    pub fn pick(&self, key: u64) -> Option<(&B, Option<&B>)> {
        let slots = self.table.slots();
        if slots.is_empty() {
            return None;
        }
        let m = slots.len();
        // `key % m < m`: in bounds.
        let slot = (key % m as u64) as usize;
        let primary = slots[slot];
        let fallback = if self.payloads.len() < 2 {
            None
        } else {
            (1..m)
                .map(|step| slots[(slot + step) % m])
                .find(|&b| b != primary)
        };
        Some((
            self.payloads.get(primary as usize)?,
            fallback.and_then(|b| self.payloads.get(b as usize)),
        ))
    }

    /// The payloads in the table, in table order (sorted by name).
    pub fn payloads(&self) -> &[B] {
        &self.payloads
    }

    /// How many slots each payload holds, parallel to
    /// [`payloads`](Self::payloads).
    pub fn slot_counts(&self) -> Vec<u32> {
        self.table.slot_counts()
    }

    /// The table size `M`.
    pub fn table_size(&self) -> u32 {
        self.table.size().get()
    }
}

impl<B> Default for Selection<B> {
    fn default() -> Self {
        Self::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn selection(nodes: &[(&'static str, u32)]) -> Selection<&'static str> {
        Selection::build(
            nodes
                .iter()
                .map(|&(n, w)| (Backend::new(n, w), n))
                .collect(),
            TableSize::default(),
        )
        .unwrap()
    }

    #[test]
    fn empty_and_drained_tables_pick_nothing() {
        assert!(Selection::<()>::empty().pick(7).is_none());
        assert!(selection(&[("a", 0), ("b", 0)]).pick(7).is_none());
    }

    #[test]
    fn a_single_node_has_no_fallback() {
        let s = selection(&[("only", 1), ("drained", 0)]);
        for key in 0..100 {
            assert_eq!(s.pick(key), Some((&"only", None)));
        }
    }

    #[test]
    fn fallback_is_another_node_spread_by_share() {
        let s = selection(&[("a", 1), ("b", 1), ("c", 1)]);
        assert_eq!(s.payloads(), &["a", "b", "c"]);
        let mut fallbacks: HashMap<(&str, &str), u32> = HashMap::new();
        for key in 0..30_000u64 {
            let key = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let (primary, fallback) = s.pick(key).unwrap();
            let fallback = fallback.unwrap();
            assert_ne!(primary, fallback);
            // Deterministic per key.
            assert_eq!(s.pick(key), Some((primary, Some(fallback))));
            *fallbacks.entry((primary, fallback)).or_default() += 1;
        }
        // Each primary's retries go to both other nodes, not one neighbour.
        for primary in ["a", "b", "c"] {
            let to: Vec<u32> = ["a", "b", "c"]
                .iter()
                .filter(|&&n| n != primary)
                .map(|n| fallbacks.get(&(primary, *n)).copied().unwrap_or(0))
                .collect();
            assert!(to.iter().all(|&n| n > 2_000), "{primary}: {to:?}");
        }
    }

    #[test]
    fn weights_set_the_share() {
        let s = selection(&[("heavy", 3), ("light", 1)]);
        let counts = s.slot_counts();
        let heavy = f64::from(counts[0]) / f64::from(s.table_size());
        assert!((heavy - 0.75).abs() < 0.001, "{heavy}");
    }
}
