//! The HTTP(S) GET probe. The only module that names reqwest types.
//!
//! The client is built once per check and pinned: `resolve(name, addr)` makes
//! the URL name (and so the SNI and the certificate name check) follow the
//! configured name while every connection goes to the configured address;
//! no proxy, no redirects, no retries, no idle connections kept.

use std::error::Error as StdError;
use std::net::IpAddr;

use reqwest::header::{CONNECTION, HOST, HeaderValue};
use reqwest::{Client, Url};

use topology::health::{CheckError, MAX_BODY_BYTES};
use topology::status::StatusSet;

use crate::error::SpecError;
use crate::outcome::Outcome;
use crate::spec::HttpCheck;

/// Sent as `User-Agent`, so target logs can tell probes from users.
const USER_AGENT: &str = concat!("gtm-probe/", env!("CARGO_PKG_VERSION"));

/// A built HTTP(S) check.
#[derive(Debug, Clone)]
pub(crate) struct HttpProbe {
    client: Client,
    url: Url,
    host: Option<HeaderValue>,
    expect: StatusSet,
    body_contains: Option<String>,
}

impl HttpProbe {
    /// Builds the client for `check` (fields already validated).
    pub(crate) fn new(check: &HttpCheck) -> Result<Self, SpecError> {
        let name = check.url_name();
        let url_host = match (name, check.addr.ip()) {
            (Some(name), _) => name.to_owned(),
            (None, IpAddr::V4(ip)) => ip.to_string(),
            (None, IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        let scheme = if check.https { "https" } else { "http" };
        let url = Url::parse(&format!(
            "{scheme}://{url_host}:{}{}",
            check.addr.port(),
            check.path
        ))
        .map_err(|_| CheckError::BadPath {
            path: check.path.clone(),
        })?;
        let host = match &check.host {
            Some(h) => Some(HeaderValue::from_str(h).map_err(|_| CheckError::BadName {
                field: "host",
                value: h.clone(),
            })?),
            None => None,
        };

        let mut builder = Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            // New connection per probe: nothing is kept idle for the next one.
            .pool_max_idle_per_host(0)
            .referer(false)
            .user_agent(USER_AGENT)
            .tcp_nodelay(true)
            .tls_backend_preconfigured(crate::tls::client_config(
                check.https,
                &check.trust,
                check.client_cert.as_ref(),
            )?);
        if let Some(name) = name {
            builder = builder.resolve(name, check.addr);
        }
        let client = builder.build().map_err(|e| SpecError::HttpClient {
            reason: error_chain(&e),
        })?;
        Ok(Self {
            client,
            url,
            host,
            expect: check.expect.clone(),
            body_contains: check.body_contains.clone(),
        })
    }

    /// One GET; the caller bounds it with the timeout.
    pub(crate) async fn attempt(&self) -> Outcome {
        let mut request = self
            .client
            .get(self.url.clone())
            .header(CONNECTION, HeaderValue::from_static("close"));
        if let Some(host) = &self.host {
            request = request.header(HOST, host.clone());
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::fail(describe(&e)),
        };
        let status = response.status().as_u16();
        if !self.expect.contains(status) {
            return Outcome::fail(format!("HTTP {status}"));
        }
        let Some(needle) = &self.body_contains else {
            return Outcome::pass(format!("HTTP {status}"));
        };
        let needle_bytes = needle.as_bytes();
        let mut body: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let searched = body
                        .len()
                        .saturating_sub(needle_bytes.len().saturating_sub(1));
                    let take = chunk.len().min(MAX_BODY_BYTES - body.len());
                    body.extend_from_slice(&chunk[..take]);
                    if contains(&body[searched..], needle_bytes) {
                        return Outcome::pass(format!("HTTP {status}, body contains {needle:?}"));
                    }
                    if body.len() >= MAX_BODY_BYTES {
                        return Outcome::fail(format!(
                            "body lacks {needle:?} in its first {} KiB",
                            MAX_BODY_BYTES / 1024
                        ));
                    }
                }
                Ok(None) => return Outcome::fail(format!("body lacks {needle:?}")),
                Err(e) => {
                    return Outcome::fail(format!("HTTP {status}, reading body: {}", describe(&e)));
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The short detail for a request error: the TLS reason or the socket error
/// in plain words if there is one in the chain, else the innermost message.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if let Some(d) = describe_chain(e) {
        return d;
    }
    let mut innermost: &(dyn StdError + 'static) = e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    innermost.to_string()
}

fn describe_chain(e: &(dyn StdError + 'static)) -> Option<String> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(d) = crate::tls::describe(err) {
            return Some(d);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            // `io::Error::source` skips the wrapped error itself, and rustls
            // errors travel wrapped in (nested) io errors: look inside first.
            let inner = io.get_ref().map(|inner| inner as &(dyn StdError + 'static));
            return inner
                .and_then(describe_chain)
                .or_else(|| Some(crate::tcp::describe_io(io)));
        }
        current = err.source();
    }
    None
}

/// The whole chain, for internal errors.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut current = e.source();
    while let Some(err) = current {
        out.push_str(": ");
        out.push_str(&err.to_string());
        current = err.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_search() {
        assert!(contains(b"status: ok", b"ok"));
        assert!(!contains(b"status: o", b"ok"));
        assert!(!contains(b"", b"ok"));
        assert!(!contains(b"abc", b""));
    }

    #[test]
    fn url_follows_the_name_and_keeps_the_port() {
        let mut c = HttpCheck::https("127.0.0.1:8443".parse().unwrap());
        c.trust = crate::Trust::Insecure;
        c.path = "/healthz?deep=1".into();
        assert_eq!(
            HttpProbe::new(&c).unwrap().url.as_str(),
            "https://127.0.0.1:8443/healthz?deep=1"
        );
        c.sni = Some("probe.test".into());
        assert_eq!(
            HttpProbe::new(&c).unwrap().url.as_str(),
            "https://probe.test:8443/healthz?deep=1"
        );
        let c = HttpCheck::http("[::1]:80".parse().unwrap());
        assert_eq!(HttpProbe::new(&c).unwrap().url.as_str(), "http://[::1]/");
    }
}
