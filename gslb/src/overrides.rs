//! Operator overrides as one last-writer-wins slot per region, so that an
//! override set on any GSLB node reaches every node.
//!
//! A slot holds either an override (`fail` or `drain`, with its reason) or
//! a tombstone (the override was cleared), stamped with the wall-clock
//! time it was written (`at`, ms since the Unix epoch) and the node that
//! wrote it. Nodes send their slots with their views; a node keeps, per
//! region, the slot with the later `at`, and on equal `at` the one written
//! by the node whose name sorts last. The merge is commutative,
//! associative and idempotent, so every node that has seen the same slots
//! holds the same one, whatever the order they arrived in — a node that was
//! down or cut off converges as soon as it can poll a peer again. Clearing
//! writes a tombstone rather than forgetting, so a peer that has not heard
//! of the clear yet cannot bring the old override back.
//!
//! Pure: the caller supplies the time.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// Why a region is held out of service: the admin API's spelling is the
/// state file's and the peer view's.
pub use admin::api::gslb::OverrideMode;

/// An override in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Fail or drain.
    pub mode: OverrideMode,
    /// Free text from the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The latest word on one region's override.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The override, or `None` for a tombstone (cleared).
    pub held: Option<Held>,
    /// When it was written, ms since the Unix epoch.
    pub at: u64,
    /// The node that wrote it.
    pub node: String,
}

impl Slot {
    /// The slot `node` writes at `now_ms` over `current`: stamped after
    /// `current` even if this node's clock is behind the writer of
    /// `current`, so an operator's latest action on a node always takes
    /// effect there (and, by the merge, everywhere).
    pub fn write(held: Option<Held>, node: &str, now_ms: u64, current: Option<&Slot>) -> Slot {
        Slot {
            held,
            at: current.map_or(now_ms, |c| now_ms.max(c.at.saturating_add(1))),
            node: node.to_owned(),
        }
    }

    /// The total order the merge keeps the greatest of: `at`, then the
    /// writer's name, then the content (only a buggy writer reuses one
    /// `(at, node)`, and even then every node must pick the same slot).
    fn order(&self, other: &Slot) -> Ordering {
        let content = |slot: &Slot| {
            slot.held
                .as_ref()
                .map(|h| (h.mode.as_str(), h.reason.clone()))
        };
        (self.at, &self.node)
            .cmp(&(other.at, &other.node))
            .then_with(|| content(self).cmp(&content(other)))
    }

    /// Whether this slot wins over `other` in the merge.
    pub fn supersedes(&self, other: &Slot) -> bool {
        self.order(other) == Ordering::Greater
    }
}

/// Merges `incoming` into `current`: the result is whichever wins, and
/// the return value says whether `current` changed.
pub fn merge(current: &mut Option<Slot>, incoming: &Slot) -> bool {
    match current {
        Some(slot) if !incoming.supersedes(slot) => false,
        _ => {
            *current = Some(incoming.clone());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(mode: OverrideMode) -> Option<Held> {
        Some(Held { mode, reason: None })
    }

    fn slot(held: Option<Held>, at: u64, node: &str) -> Slot {
        Slot {
            held,
            at,
            node: node.into(),
        }
    }

    fn merged(slots: &[&Slot]) -> Option<Slot> {
        let mut current = None;
        for s in slots {
            merge(&mut current, s);
        }
        current
    }

    #[test]
    fn the_later_write_wins_whatever_the_order() {
        let drain = slot(held(OverrideMode::Drain), 1_000, "ns1");
        let fail = slot(held(OverrideMode::Fail), 2_000, "ns2");
        assert_eq!(merged(&[&drain, &fail]), Some(fail.clone()));
        assert_eq!(merged(&[&fail, &drain]), Some(fail));
    }

    #[test]
    fn a_tombstone_beats_an_older_override_and_loses_to_a_newer_one() {
        let drain = slot(held(OverrideMode::Drain), 1_000, "ns1");
        let cleared = slot(None, 1_500, "ns3");
        // A stale peer still holding the drain cannot bring it back.
        let mut current = Some(cleared.clone());
        assert!(!merge(&mut current, &drain));
        assert_eq!(current, Some(cleared.clone()));
        // A drain set after the clear is a new decision and wins.
        let again = slot(held(OverrideMode::Drain), 2_000, "ns1");
        assert!(merge(&mut current, &again));
        assert_eq!(current, Some(again));
    }

    #[test]
    fn equal_times_go_to_the_larger_node_name() {
        let a = slot(held(OverrideMode::Fail), 1_000, "ns1");
        let b = slot(None, 1_000, "ns2");
        assert_eq!(merged(&[&a, &b]), Some(b.clone()));
        assert_eq!(merged(&[&b, &a]), Some(b));
        // Even a writer reusing (at, node) yields one answer everywhere.
        let c = slot(held(OverrideMode::Drain), 1_000, "ns1");
        assert_eq!(merged(&[&a, &c]), merged(&[&c, &a]));
    }

    #[test]
    fn merging_is_idempotent_commutative_and_associative() {
        let slots = [
            slot(held(OverrideMode::Drain), 5, "ns2"),
            slot(None, 7, "ns1"),
            slot(held(OverrideMode::Fail), 7, "ns3"),
            slot(None, 3, "ns3"),
        ];
        let refs: Vec<&Slot> = slots.iter().collect();
        let expected = merged(&refs);
        assert_eq!(expected, Some(slots[2].clone()));
        // Every order of arrival (all 24), each slot seen twice.
        let n = slots.len();
        for code in 0..n.pow(n as u32) {
            let order: Vec<usize> = (0..n).map(|i| code / n.pow(i as u32) % n).collect();
            if (0..n).any(|i| !order.contains(&i)) {
                continue;
            }
            let twice: Vec<&Slot> = order
                .iter()
                .chain(order.iter().rev())
                .map(|&i| &slots[i])
                .collect();
            assert_eq!(merged(&twice), expected, "order {order:?}");
        }
        let mut current = expected.clone();
        assert!(!merge(&mut current, &slots[2]), "re-merging changed it");
    }

    #[test]
    fn a_local_write_is_stamped_after_what_it_replaces() {
        let ahead = slot(held(OverrideMode::Fail), 10_000, "ns2");
        // This node's clock says 9 000: its clear still wins.
        let clear = Slot::write(None, "ns1", 9_000, Some(&ahead));
        assert_eq!(clear.at, 10_001);
        assert!(clear.supersedes(&ahead));
        assert_eq!(Slot::write(None, "ns1", 9_000, None).at, 9_000);
    }
}
