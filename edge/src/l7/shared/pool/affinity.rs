//! What a request brings to the choice of its server: the `hash`
//! algorithm's key and the sticky cookie, read once per request.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderValue};
use topology::tiers::l7::{Algorithm, HashOn, Pool as PoolConfig};

use crate::l7::rules::{balance, sticky};

/// What the request brings to the choice.
#[derive(Debug, Default, Clone, Copy)]
pub struct Affinity<'a> {
    /// Hash key for the `hash` algorithm.
    pub hash_key: u64,
    /// The sticky cookie's value, if the request has one.
    pub sticky: Option<&'a [u8]>,
}

/// What a request brings to the choice of its server, read from its
/// client address and headers once and kept for every attempt (the
/// headers are rewritten before the first).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RequestAffinity {
    hash_key: u64,
    sticky: Option<[u8; 16]>,
}

impl RequestAffinity {
    /// The affinity of a request from `client` with `headers` to a pool
    /// configured by `config`: the hash key of the `hash` algorithm (the
    /// configured header or cookie, else the client's address) and the
    /// pool's sticky cookie, when it is well-formed.
    pub fn of(config: &PoolConfig, client: IpAddr, headers: &HeaderMap) -> Self {
        Self::of_fields(
            config,
            client,
            |name| headers.get(name).map(HeaderValue::as_bytes),
            || {
                headers
                    .get_all(header::COOKIE)
                    .iter()
                    .map(HeaderValue::as_bytes)
            },
        )
    }

    /// As [`RequestAffinity::of`], with the request's fields read by
    /// `field` (the first value of a lowercase name) and `cookies` (every
    /// `Cookie` value).
    pub fn of_fields<'h, C>(
        config: &PoolConfig,
        client: IpAddr,
        field: impl Fn(&str) -> Option<&'h [u8]>,
        cookies: impl Fn() -> C,
    ) -> Self
    where
        C: Iterator<Item = &'h [u8]>,
    {
        let client_key = || match client {
            IpAddr::V4(ip) => balance::request_key(&ip.octets()),
            IpAddr::V6(ip) => balance::request_key(&ip.octets()),
        };
        let hash_key = match &config.hash_on {
            _ if config.algorithm != Algorithm::Hash => 0,
            HashOn::ClientIp => client_key(),
            HashOn::Header(name) => {
                field(name.as_str()).map_or_else(client_key, balance::request_key)
            }
            HashOn::Cookie(name) => {
                sticky::find_cookie(cookies(), name).map_or_else(client_key, balance::request_key)
            }
        };
        let sticky = config.sticky.as_ref().and_then(|s| {
            sticky::find_cookie(cookies(), &s.cookie).and_then(|v| <[u8; 16]>::try_from(v).ok())
        });
        Self { hash_key, sticky }
    }

    /// As [`super::PoolState::pick`] takes it.
    pub fn affinity(&self) -> Affinity<'_> {
        Affinity {
            hash_key: self.hash_key,
            sticky: self.sticky.as_ref().map(|token| &token[..]),
        }
    }
}
