//! The compiled lookup structure. Per address family, the whole address space is
//! cut into sorted segments, each carrying an optional location id; adjacent
//! segments never carry the same id (they are merged at build time). A lookup is
//! a binary search for the segment, and the widest prefix that stays inside the
//! segment is the EDNS Client Subnet scope.
//!
//! Segments are stored as two little-endian byte columns (segment starts, ids)
//! so that the embedded database can be searched in place, without decoding it
//! at startup; databases opened from files use the same layout in owned memory.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::location::LocationId;
use crate::prefix::{Family, Prefix, addr_value, host_mask, widest_prefix_len};

/// Width in bytes of a location id column entry for a database with
/// `n_locations` distinct locations. The all-ones value of the width means "no
/// location", so the largest id must stay below it.
pub(crate) fn id_width_for(n_locations: usize) -> u8 {
    if n_locations <= 0xFF {
        1
    } else if n_locations <= 0xFFFF {
        2
    } else {
        4
    }
}

/// The "no location" marker for an id column of `width` bytes.
fn sentinel(width: u8) -> u32 {
    match width {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => u32::MAX,
    }
}

/// One family's segments.
#[derive(Clone)]
pub(crate) struct FamilyTable {
    family: Family,
    id_width: u8,
    len: usize,
    starts: Cow<'static, [u8]>,
    ids: Cow<'static, [u8]>,
}

impl FamilyTable {
    /// Builds a table from `(start, id)` segments as produced by
    /// [`SegmentBuilder::finish`]: the first start is 0, starts strictly
    /// increase, neighbours differ in id and ids are below the sentinel of
    /// `id_width`.
    pub(crate) fn from_segments(
        family: Family,
        segments: &[(u128, Option<u32>)],
        id_width: u8,
    ) -> FamilyTable {
        let width = start_width(family);
        let mut starts = Vec::with_capacity(segments.len() * width);
        let mut ids = Vec::with_capacity(segments.len() * usize::from(id_width));
        for &(start, id) in segments {
            starts.extend_from_slice(&start.to_le_bytes()[..width]);
            let id = id.unwrap_or(sentinel(id_width));
            ids.extend_from_slice(&id.to_le_bytes()[..usize::from(id_width)]);
        }
        FamilyTable {
            family,
            id_width,
            len: segments.len(),
            starts: Cow::Owned(starts),
            ids: Cow::Owned(ids),
        }
    }

    /// Wraps stored columns, checking the shape always and, with `full_check`,
    /// every entry (sorted starts, ids in range, neighbours merged). Skipping the
    /// full check is only for the embedded table, which a test checks instead.
    pub(crate) fn from_columns(
        family: Family,
        id_width: u8,
        starts: Cow<'static, [u8]>,
        ids: Cow<'static, [u8]>,
        n_locations: usize,
        full_check: bool,
    ) -> Result<FamilyTable, String> {
        let name = match family {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        };
        if !matches!(id_width, 1 | 2 | 4) {
            return Err(format!("id width {id_width} is not 1, 2 or 4"));
        }
        if n_locations > sentinel(id_width) as usize {
            return Err(format!(
                "{n_locations} locations do not fit {id_width}-byte ids"
            ));
        }
        let width = start_width(family);
        let len = starts.len() / width;
        if len == 0
            || !starts.len().is_multiple_of(width)
            || ids.len() != len * usize::from(id_width)
        {
            return Err(format!(
                "{name} columns have inconsistent lengths ({} start bytes, {} id bytes)",
                starts.len(),
                ids.len()
            ));
        }
        let table = FamilyTable {
            family,
            id_width,
            len,
            starts,
            ids,
        };
        if table.start(0) != 0 {
            return Err(format!("{name} table does not start at address 0"));
        }
        if full_check {
            table
                .check(n_locations)
                .map_err(|e| format!("{name} table: {e}"))?;
        }
        Ok(table)
    }

    /// Verifies every entry; see [`from_columns`](Self::from_columns).
    pub(crate) fn check(&self, n_locations: usize) -> Result<(), String> {
        let sentinel = sentinel(self.id_width);
        let mut prev: Option<(u128, u32)> = None;
        for i in 0..self.len {
            let start = self.start(i);
            let raw = read_id(&self.ids, i, self.id_width);
            if raw != sentinel && raw as usize >= n_locations {
                return Err(format!("segment {i} names location {raw} of {n_locations}"));
            }
            if let Some((prev_start, prev_raw)) = prev {
                if start <= prev_start {
                    return Err(format!("segment {i} is out of order"));
                }
                if raw == prev_raw {
                    return Err(format!(
                        "segments {} and {i} should have been merged",
                        i - 1
                    ));
                }
            }
            prev = Some((start, raw));
        }
        Ok(())
    }

    pub(crate) fn id_width(&self) -> u8 {
        self.id_width
    }

    /// Number of segments (at least 1).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn starts_bytes(&self) -> &[u8] {
        &self.starts
    }

    pub(crate) fn ids_bytes(&self) -> &[u8] {
        &self.ids
    }

    /// Heap bytes owned by this table (0 for the embedded one).
    pub(crate) fn heap_bytes(&self) -> usize {
        let owned = |c: &Cow<'static, [u8]>| match c {
            Cow::Borrowed(_) => 0,
            Cow::Owned(v) => v.capacity(),
        };
        owned(&self.starts) + owned(&self.ids)
    }

    /// First address of segment `i < len`.
    pub(crate) fn start(&self, i: usize) -> u128 {
        match self.family {
            Family::V4 => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&self.starts[i * 4..i * 4 + 4]);
                u128::from(u32::from_le_bytes(b))
            }
            Family::V6 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&self.starts[i * 16..i * 16 + 16]);
                u128::from_le_bytes(b)
            }
        }
    }

    /// Last address of segment `i < len`.
    pub(crate) fn last(&self, i: usize) -> u128 {
        if i + 1 < self.len {
            self.start(i + 1) - 1
        } else {
            self.family.max()
        }
    }

    /// Location of segment `i < len`.
    pub(crate) fn id(&self, i: usize) -> Option<LocationId> {
        let raw = read_id(&self.ids, i, self.id_width);
        (raw != sentinel(self.id_width)).then_some(LocationId(raw))
    }

    /// Index of the segment containing `addr` (a value of this family).
    pub(crate) fn find(&self, addr: u128) -> usize {
        // Invariant: start(lo) <= addr (start(0) == 0), and the answer is < hi.
        let (mut lo, mut hi) = (0, self.len);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.start(mid) <= addr {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The segment containing `addr` and the widest prefix around `addr` inside it.
    pub(crate) fn lookup(&self, addr: u128) -> (Prefix, Option<LocationId>) {
        let i = self.find(addr);
        let bits = self.family.bits();
        let len = widest_prefix_len(addr, self.start(i), self.last(i), bits);
        (Prefix::from_parts(self.family, addr, len), self.id(i))
    }

    /// Segment `i < len` as a public [`Range`].
    pub(crate) fn range(&self, i: usize) -> Range {
        Range {
            first: self.family.addr(self.start(i)),
            last: self.family.addr(self.last(i)),
            location: self.id(i),
        }
    }
}

impl std::fmt::Debug for FamilyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilyTable")
            .field("family", &self.family)
            .field("segments", &self.len)
            .field("id_width", &self.id_width)
            .finish_non_exhaustive()
    }
}

fn start_width(family: Family) -> usize {
    usize::from(family.bits() / 8)
}

fn read_id(ids: &[u8], i: usize, width: u8) -> u32 {
    let width = usize::from(width);
    let mut b = [0u8; 4];
    b[..width].copy_from_slice(&ids[i * width..i * width + width]);
    u32::from_le_bytes(b)
}

/// Collects located networks of one family (in any order) and turns them into
/// merged segments covering the whole address space.
pub(crate) struct SegmentBuilder {
    family: Family,
    pieces: Vec<(u128, u128, u32)>,
}

impl SegmentBuilder {
    pub(crate) fn new(family: Family) -> SegmentBuilder {
        SegmentBuilder {
            family,
            pieces: Vec::new(),
        }
    }

    /// Records that `first..=last` is at location `id`.
    pub(crate) fn push(&mut self, first: u128, last: u128, id: u32) {
        self.pieces.push((first, last, id));
    }

    /// Sorted, gap-filled, merged `(start, id)` segments; the first starts at 0.
    /// Fails (naming the two ranges) if any pushed ranges overlap.
    pub(crate) fn finish(mut self) -> Result<Vec<(u128, Option<u32>)>, String> {
        self.pieces.sort_unstable_by_key(|p| p.0);
        let family = self.family;
        let mut segments: Vec<(u128, Option<u32>)> = Vec::new();
        // Next address not yet covered; None once the top of the space is covered.
        let mut cursor = Some(0u128);
        let mut prev_last = None;
        for (first, last, id) in self.pieces {
            let Some(next) = cursor.filter(|&c| first >= c) else {
                let show = |v: u128| family.addr(v);
                let prev = prev_last.map_or_else(String::new, |p| {
                    format!(" (previous range ends at {})", show(p))
                });
                return Err(format!("overlapping networks at {}{prev}", show(first)));
            };
            if first > next {
                push_merged(&mut segments, next, None);
            }
            push_merged(&mut segments, first, Some(id));
            prev_last = Some(last);
            cursor = last.checked_add(1).filter(|&c| c <= family.max());
        }
        if let Some(next) = cursor {
            push_merged(&mut segments, next, None);
        }
        Ok(segments)
    }
}

fn push_merged(segments: &mut Vec<(u128, Option<u32>)>, start: u128, id: Option<u32>) {
    if segments.last().is_none_or(|&(_, last_id)| last_id != id) {
        segments.push((start, id));
    }
}

/// One compiled range: consecutive addresses of one family that share a
/// location (or share having none). Ranges of a family are disjoint, sorted,
/// cover the whole address space, and neighbours differ in location.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Range {
    /// First address (inclusive).
    pub first: IpAddr,
    /// Last address (inclusive).
    pub last: IpAddr,
    /// Where these addresses are; `None` where the database has no location.
    pub location: Option<LocationId>,
}

impl Range {
    /// Address family of the range.
    pub fn family(&self) -> Family {
        Family::of(self.first)
    }

    /// The range as the minimal list of CIDR prefixes, in address order.
    pub fn prefixes(&self) -> impl Iterator<Item = Prefix> + use<> {
        let family = self.family();
        let bits = family.bits();
        let last = addr_value(self.last);
        let mut next = Some(addr_value(self.first));
        std::iter::from_fn(move || {
            let first = next?;
            let len = widest_prefix_len(first, first, last, bits);
            let end = first | host_mask(bits, len);
            next = end.checked_add(1).filter(|&n| n <= last);
            Some(Prefix::from_parts(family, first, len))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(family: Family, pieces: &[(u128, u128, u32)]) -> FamilyTable {
        let mut b = SegmentBuilder::new(family);
        for &(f, l, id) in pieces {
            b.push(f, l, id);
        }
        FamilyTable::from_segments(family, &b.finish().unwrap(), 1)
    }

    #[test]
    fn builder_fills_gaps_and_merges_neighbours() {
        let mut b = SegmentBuilder::new(Family::V4);
        b.push(20, 29, 1);
        b.push(10, 19, 1);
        b.push(30, 39, 2);
        b.push(50, u128::from(u32::MAX), 2);
        let segs = b.finish().unwrap();
        assert_eq!(
            segs,
            vec![
                (0, None),
                (10, Some(1)),
                (30, Some(2)),
                (40, None),
                (50, Some(2))
            ]
        );
    }

    #[test]
    fn builder_handles_the_top_of_the_space() {
        let max = u128::from(u32::MAX);
        let mut b = SegmentBuilder::new(Family::V4);
        b.push(10, max - 1, 1);
        assert_eq!(
            b.finish().unwrap(),
            vec![(0, None), (10, Some(1)), (max, None)]
        );
        let mut b = SegmentBuilder::new(Family::V6);
        b.push(0, u128::MAX, 2);
        assert_eq!(b.finish().unwrap(), vec![(0, Some(2))]);
        let mut b = SegmentBuilder::new(Family::V6);
        b.push(0, u128::MAX, 2);
        b.push(5, 5, 3);
        assert!(b.finish().is_err());
    }

    #[test]
    fn builder_reports_overlaps() {
        let mut b = SegmentBuilder::new(Family::V4);
        b.push(0, 255, 1);
        b.push(128, 128, 2);
        let err = b.finish().unwrap_err();
        assert!(err.contains("0.0.0.128"), "{err}");
    }

    #[test]
    fn empty_builder_is_one_unlocated_segment() {
        let segs = SegmentBuilder::new(Family::V6).finish().unwrap();
        assert_eq!(segs, vec![(0, None)]);
    }

    #[test]
    fn lookup_finds_segment_and_prefix() {
        let t = table(Family::V4, &[(0x0A00_0000, 0x0A00_01FF, 3)]);
        let (p, id) = t.lookup(0x0A00_0105);
        assert_eq!(
            (p.to_string(), id),
            ("10.0.0.0/23".to_owned(), Some(LocationId(3)))
        );
        let (p, id) = t.lookup(0x0A00_0200);
        assert_eq!((p.to_string(), id), ("10.0.2.0/23".to_owned(), None));
        let (p, id) = t.lookup(0);
        assert_eq!((p.to_string(), id), ("0.0.0.0/5".to_owned(), None));
        let (p, _) = t.lookup(u128::from(u32::MAX));
        assert_eq!(p.to_string(), "128.0.0.0/1");
    }

    #[test]
    fn columns_round_trip_and_full_check_catches_damage() {
        let t = table(
            Family::V6,
            &[(1 << 100, (1 << 101) - 1, 0), (1 << 101, 1 << 102, 1)],
        );
        let again = FamilyTable::from_columns(
            Family::V6,
            1,
            Cow::Owned(t.starts_bytes().to_vec()),
            Cow::Owned(t.ids_bytes().to_vec()),
            2,
            true,
        )
        .unwrap();
        assert_eq!(again.len(), t.len());
        let err = FamilyTable::from_columns(
            Family::V6,
            1,
            Cow::Owned(t.starts_bytes().to_vec()),
            Cow::Owned(t.ids_bytes().to_vec()),
            1,
            true,
        )
        .unwrap_err();
        assert!(err.contains("location 1 of 1"), "{err}");
        let mut swapped = t.starts_bytes().to_vec();
        swapped[16..48].rotate_left(16);
        let err = FamilyTable::from_columns(
            Family::V6,
            1,
            Cow::Owned(swapped),
            Cow::Owned(t.ids_bytes().to_vec()),
            2,
            true,
        )
        .unwrap_err();
        assert!(err.contains("out of order"), "{err}");
        let err = FamilyTable::from_columns(
            Family::V6,
            1,
            Cow::Owned(vec![0; 17]),
            Cow::Owned(vec![0]),
            2,
            true,
        )
        .unwrap_err();
        assert!(err.contains("inconsistent lengths"), "{err}");
    }

    #[test]
    fn range_prefixes_cover_exactly() {
        let r = Range {
            first: "10.0.0.1".parse().unwrap(),
            last: "10.0.1.0".parse().unwrap(),
            location: None,
        };
        let got: Vec<String> = r.prefixes().map(|p| p.to_string()).collect();
        assert_eq!(
            got,
            [
                "10.0.0.1/32",
                "10.0.0.2/31",
                "10.0.0.4/30",
                "10.0.0.8/29",
                "10.0.0.16/28",
                "10.0.0.32/27",
                "10.0.0.64/26",
                "10.0.0.128/25",
                "10.0.1.0/32"
            ]
        );
        let all = Range {
            first: "::".parse().unwrap(),
            last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
            location: None,
        };
        assert_eq!(
            all.prefixes().map(|p| p.to_string()).collect::<Vec<_>>(),
            ["::/0"]
        );
    }
}
