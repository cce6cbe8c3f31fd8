//! [`Prefix`]: a canonical CIDR block (network address plus length), the shape
//! of the EDNS Client Subnet scope the DNS server hands back.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::ParseError;

/// Address family of a [`Prefix`] or a compiled range.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Family {
    /// IPv4: 32-bit addresses.
    V4,
    /// IPv6: 128-bit addresses.
    V6,
}

impl Family {
    /// Address width in bits: 32 or 128.
    pub const fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The family of an address (an IPv4-mapped IPv6 address is IPv6 here).
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The largest address value of the family.
    pub(crate) const fn max(self) -> u128 {
        match self {
            Family::V4 => u32::MAX as u128,
            Family::V6 => u128::MAX,
        }
    }

    /// The address with numeric value `value` (truncated to the family's width).
    pub(crate) fn addr(self, value: u128) -> IpAddr {
        match self {
            // Truncation is intended: V4 values are < 2^32 by construction.
            Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
        }
    }
}

/// The numeric value of an address.
pub(crate) fn addr_value(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Mask of the host bits of a `len`-bit prefix in a `bits`-wide family.
pub(crate) const fn host_mask(bits: u8, len: u8) -> u128 {
    let host = (bits - len) as u32;
    if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    }
}

/// The smallest prefix length whose block around `addr` lies inside
/// `[first, last]` (which must contain `addr`), i.e. the widest such prefix.
///
/// "Fits at length l" is monotone in l (a longer prefix is a sub-block), so a
/// binary search over `0..=bits` finds the boundary; `bits` always fits.
pub(crate) fn widest_prefix_len(addr: u128, first: u128, last: u128, bits: u8) -> u8 {
    let fits = |len: u8| {
        let host = host_mask(bits, len);
        addr & !host >= first && addr | host <= last
    };
    let (mut lo, mut hi) = (0u8, bits);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    hi
}

/// A CIDR block: network address plus prefix length, always canonical (host
/// bits zero), e.g. `192.0.2.0/24` or `2001:db8::/32`.
///
/// Containment is purely numeric within one family: an IPv4 prefix does not
/// contain the IPv4-mapped IPv6 form of its addresses (convert with
/// [`IpAddr::to_canonical`] first, as [`GeoDb::lookup`](crate::GeoDb::lookup)
/// does).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// The prefix of length `len` containing `addr` (host bits are cleared).
    ///
    /// Fails when `len` exceeds the family's width (32 or 128).
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, ParseError> {
        let family = Family::of(addr);
        if len > family.bits() {
            return Err(ParseError::PrefixLength {
                len,
                max: family.bits(),
            });
        }
        Ok(Prefix::from_parts(family, addr_value(addr), len))
    }

    /// `len` must be at most `family.bits()` (callers inside the crate ensure it).
    pub(crate) fn from_parts(family: Family, value: u128, len: u8) -> Prefix {
        let len = len.min(family.bits());
        let network = value & !host_mask(family.bits(), len) & family.max();
        Prefix {
            addr: family.addr(network),
            len,
        }
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for `0.0.0.0/0` and `::/0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }

    /// The first address (same as [`addr`](Self::addr)).
    pub fn first(&self) -> IpAddr {
        self.addr
    }

    /// The last address of the block.
    pub fn last(&self) -> IpAddr {
        let family = self.family();
        family.addr(addr_value(self.addr) | host_mask(family.bits(), self.len))
    }

    /// Whether `ip` lies inside the block (same family only; see the type docs).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let family = self.family();
        Family::of(ip) == family
            && addr_value(ip) & !host_mask(family.bits(), self.len) == addr_value(self.addr)
    }

    /// The widest block containing `addr` that lies inside the inclusive
    /// range `first..=last` (same family; `None` if `addr` is outside it).
    /// Callers that merge ranges by their own criterion use it to turn a
    /// merged range into a scope.
    pub fn widest_within(addr: IpAddr, first: IpAddr, last: IpAddr) -> Option<Prefix> {
        let family = Family::of(addr);
        if Family::of(first) != family || Family::of(last) != family {
            return None;
        }
        let (value, low, high) = (addr_value(addr), addr_value(first), addr_value(last));
        if !(low..=high).contains(&value) {
            return None;
        }
        let len = widest_prefix_len(value, low, high, family.bits());
        Some(Prefix::from_parts(family, value, len))
    }

    /// The block one bit wider (`None` for a `/0`).
    pub fn widen(&self) -> Option<Prefix> {
        let len = self.len.checked_sub(1)?;
        Some(Prefix::from_parts(
            self.family(),
            addr_value(self.addr),
            len,
        ))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({self})")
    }
}

impl FromStr for Prefix {
    type Err = ParseError;

    /// Parses `addr/len`; host bits must be zero (`10.0.0.1/8` is rejected so a
    /// typo is not silently widened).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::Prefix(s.to_owned());
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        let prefix = Prefix::new(addr, len)?;
        if prefix.addr != addr {
            return Err(bad());
        }
        Ok(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn new_clears_host_bits() {
        let p = Prefix::new(ip("192.0.2.77"), 24).unwrap();
        assert_eq!(p.to_string(), "192.0.2.0/24");
        assert_eq!(p.last(), ip("192.0.2.255"));
        assert_eq!(
            Prefix::new(ip("2001:db8::1"), 32).unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            Prefix::new(ip("1.2.3.4"), 0).unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(Prefix::new(ip("::1"), 128).unwrap().last(), ip("::1"));
        assert_eq!(
            Prefix::new(ip("::1"), 0).unwrap().last(),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
    }

    #[test]
    fn new_rejects_overlong_lengths() {
        let err = Prefix::new(ip("1.2.3.4"), 33).unwrap_err();
        assert!(err.to_string().contains("at most 32"), "{err}");
        assert!(Prefix::new(ip("::"), 129).is_err());
    }

    #[test]
    fn contains_is_numeric_and_per_family() {
        let p: Prefix = "10.0.0.0/8".parse().unwrap();
        assert!(p.contains(ip("10.255.0.1")));
        assert!(!p.contains(ip("11.0.0.0")));
        assert!(!p.contains(ip("::ffff:10.0.0.1")));
        let all: Prefix = "::/0".parse().unwrap();
        assert!(all.contains(ip("::ffff:10.0.0.1")));
        assert!(!all.contains(ip("10.0.0.1")));
    }

    #[test]
    fn widen_goes_one_bit_up_to_zero() {
        let p: Prefix = "10.128.0.0/9".parse().unwrap();
        assert_eq!(p.widen().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("0.0.0.0/0".parse::<Prefix>().unwrap().widen(), None);
    }

    #[test]
    fn parse_rejects_host_bits_and_garbage() {
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0",
            "10.0.0.0/x",
            "nope/8",
            "10.0.0.0/40",
        ] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn widest_prefix_examples() {
        // 10.0.0.0 - 10.0.1.255 is a /23.
        let (first, last) = (0x0A00_0000, 0x0A00_01FF);
        assert_eq!(widest_prefix_len(0x0A00_0105, first, last, 32), 23);
        // 10.0.0.0 - 10.0.2.255: 10.0.2.x only gets its /24.
        assert_eq!(widest_prefix_len(0x0A00_0205, first, 0x0A00_02FF, 32), 24);
        assert_eq!(widest_prefix_len(0x0A00_0005, first, 0x0A00_02FF, 32), 23);
        // The whole space.
        assert_eq!(widest_prefix_len(12345, 0, u128::from(u32::MAX), 32), 0);
        assert_eq!(widest_prefix_len(7, 0, u128::MAX, 128), 0);
        // A single address.
        assert_eq!(widest_prefix_len(7, 7, 7, 128), 128);
    }
}
