//! Who an answer is for: the client network a decision is made for, taken
//! from EDNS Client Subnet (RFC 7871) when the query carries a source
//! prefix, otherwise from the resolver's own address — and truncated to
//! /24 (IPv4) or /56 (IPv6) before it is looked up or logged.

use std::net::IpAddr;

use geo_data::Prefix;

/// IPv4 client addresses are used no more precisely than this.
pub const V4_TRUNCATION: u8 = 24;
/// IPv6 client addresses are used no more precisely than this.
pub const V6_TRUNCATION: u8 = 56;

/// An ECS option as received, before validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcsQuery {
    /// The address bytes sent, zero-filled to full width; the family is the
    /// address's.
    pub address: IpAddr,
    /// SOURCE PREFIX-LENGTH.
    pub source_prefix: u8,
    /// SCOPE PREFIX-LENGTH (must be 0 in a query).
    pub scope_prefix: u8,
}

/// An ECS option RFC 7871 §7.1.1 says to answer with FORMERR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    /// The source prefix is longer than the address family.
    #[error("ECS source prefix /{prefix} is longer than the address (/{bits})")]
    SourceTooLong {
        /// The prefix sent.
        prefix: u8,
        /// The family's width.
        bits: u8,
    },
    /// A query set the scope prefix.
    #[error("ECS scope prefix /{0} is set in a query; it must be 0")]
    ScopeInQuery(u8),
    /// Address bits beyond the source prefix are not zero.
    #[error("ECS address {address} has bits set beyond its /{prefix} source prefix")]
    BitsBeyondPrefix {
        /// The address sent.
        address: IpAddr,
        /// The prefix sent.
        prefix: u8,
    },
}

/// The ECS option to put in the reply: the query's family, source prefix
/// and address, with the scope of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcsEcho {
    /// The address as sent.
    pub address: IpAddr,
    /// The source prefix as sent.
    pub source_prefix: u8,
}

/// The client an answer is decided for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client's network, truncated: what is looked up and logged.
    pub network: Prefix,
    /// What to echo when the query carried ECS.
    pub ecs: Option<EcsEcho>,
}

impl Client {
    /// The client for a query from `resolver` carrying `ecs`, or the reason
    /// the ECS option is malformed.
    pub fn new(resolver: IpAddr, ecs: Option<EcsQuery>) -> Result<Client, EcsError> {
        let Some(ecs) = ecs else {
            return Ok(Client {
                network: truncate(resolver.to_canonical(), u8::MAX),
                ecs: None,
            });
        };
        let bits = match ecs.address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if ecs.source_prefix > bits {
            return Err(EcsError::SourceTooLong {
                prefix: ecs.source_prefix,
                bits,
            });
        }
        if ecs.scope_prefix != 0 {
            return Err(EcsError::ScopeInQuery(ecs.scope_prefix));
        }
        let sent = Prefix::new(ecs.address, ecs.source_prefix).expect("prefix checked above");
        if sent.addr() != ecs.address {
            return Err(EcsError::BitsBeyondPrefix {
                address: ecs.address,
                prefix: ecs.source_prefix,
            });
        }
        let echo = Some(EcsEcho {
            address: ecs.address,
            source_prefix: ecs.source_prefix,
        });
        // A source prefix of 0 says "do not use my address" (§7.1.2): decide
        // on the resolver's address, and answer with scope 0.
        let network = if ecs.source_prefix == 0 {
            truncate(resolver.to_canonical(), u8::MAX)
        } else {
            truncate(ecs.address, ecs.source_prefix)
        };
        Ok(Client { network, ecs: echo })
    }

    /// The scope to echo for an answer valid over `scope` bits around the
    /// client: never more than the source prefix, and 0 for a source of 0.
    pub fn echo_scope(&self, scope: u8) -> u8 {
        self.ecs.map_or(0, |ecs| scope.min(ecs.source_prefix))
    }
}

/// `ip` truncated to at most `len` bits and never more than the family's
/// truncation limit.
fn truncate(ip: IpAddr, len: u8) -> Prefix {
    let limit = match ip {
        IpAddr::V4(_) => V4_TRUNCATION,
        IpAddr::V6(_) => V6_TRUNCATION,
    };
    Prefix::new(ip, len.min(limit)).expect("length within the family's width")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecs(address: &str, source: u8, scope: u8) -> Option<EcsQuery> {
        Some(EcsQuery {
            address: address.parse().unwrap(),
            source_prefix: source,
            scope_prefix: scope,
        })
    }

    const RESOLVER: &str = "198.51.100.77";

    fn client(ecs: Option<EcsQuery>) -> Result<Client, EcsError> {
        Client::new(RESOLVER.parse().unwrap(), ecs)
    }

    #[test]
    fn without_ecs_the_resolver_address_is_truncated() {
        let c = client(None).unwrap();
        assert_eq!(c.network.to_string(), "198.51.100.0/24");
        assert_eq!(c.ecs, None);
        let v6 = Client::new("2001:db8:1:2:3::1".parse().unwrap(), None).unwrap();
        assert_eq!(v6.network.to_string(), "2001:db8:1::/56");
        let mapped = Client::new("::ffff:192.0.2.9".parse().unwrap(), None).unwrap();
        assert_eq!(mapped.network.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn ecs_source_prefix_is_used_up_to_the_truncation() {
        assert_eq!(
            client(ecs("203.0.113.0", 24, 0))
                .unwrap()
                .network
                .to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            client(ecs("203.0.113.77", 32, 0))
                .unwrap()
                .network
                .to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            client(ecs("203.0.0.0", 16, 0)).unwrap().network.to_string(),
            "203.0.0.0/16"
        );
        assert_eq!(
            client(ecs("2001:db8:aa:bb00::", 64, 0))
                .unwrap()
                .network
                .to_string(),
            "2001:db8:aa:bb00::/56"
        );
    }

    #[test]
    fn source_zero_falls_back_to_the_resolver_with_scope_zero() {
        let c = client(ecs("0.0.0.0", 0, 0)).unwrap();
        assert_eq!(c.network.to_string(), "198.51.100.0/24");
        assert_eq!(c.echo_scope(24), 0);
    }

    #[test]
    fn scope_never_exceeds_the_source_prefix() {
        let c = client(ecs("203.0.0.0", 16, 0)).unwrap();
        assert_eq!(c.echo_scope(20), 16);
        assert_eq!(c.echo_scope(8), 8);
        assert_eq!(client(None).unwrap().echo_scope(24), 0);
    }

    #[test]
    fn malformed_ecs_is_refused_as_the_rfc_says() {
        assert_eq!(
            client(ecs("203.0.113.0", 33, 0)),
            Err(EcsError::SourceTooLong {
                prefix: 33,
                bits: 32
            })
        );
        assert_eq!(
            client(ecs("203.0.113.0", 24, 8)),
            Err(EcsError::ScopeInQuery(8))
        );
        assert!(matches!(
            client(ecs("203.0.113.1", 24, 0)),
            Err(EcsError::BitsBeyondPrefix { prefix: 24, .. })
        ));
        assert!(matches!(
            client(ecs("2001:db8::1", 129, 0)),
            Err(EcsError::SourceTooLong { bits: 128, .. })
        ));
    }
}
