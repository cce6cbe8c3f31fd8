//! Readiness: one check of a component (a real DNS query answered, or its
//! `/healthz` answering 2xx), and what a component that exited before it
//! was ready died of, read from its exit status and its log.

use std::time::Duration;

use crate::admin::Admin;
use crate::dns::{Question, ask};
use crate::plan::Probe;

/// How long one readiness check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(400);

/// One readiness check: `Ok` when the component serves, else what was
/// seen (`GET /healthz: connection refused`).
pub fn check(probe: &Probe, admin: &Admin) -> Result<(), String> {
    match probe {
        Probe::Dns { addrs, zone } => {
            for addr in addrs {
                let mut question = Question::new(*addr, zone, "SOA");
                question.timeout = CHECK_TIMEOUT;
                ask(&question).map_err(|e| format!("DNS query for {zone} SOA: {e}"))?;
            }
            Ok(())
        }
        Probe::Http { addr, path } => match admin.probe(*addr, path, CHECK_TIMEOUT) {
            Ok(code) if (200..300).contains(&code) => Ok(()),
            Ok(code) => Err(format!("GET http://{addr}{path}: HTTP {code}")),
            Err(e) => Err(format!("GET http://{addr}{path}: {e}")),
        },
    }
}

/// Why a component stopped before it was ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// It could not bind an address.
    AddressInUse,
    /// It refused its configuration or command line (exit 1).
    Config,
    /// The binary does not implement it yet.
    NotBuilt,
    /// Anything else.
    Crashed,
}

impl Cause {
    /// Whether the user can fix it (exit code 1 rather than 2).
    pub fn is_user(self) -> bool {
        matches!(self, Cause::AddressInUse | Cause::Config)
    }
}

/// What a component that exited with `code` (or died of `signal`) died of,
/// from what it wrote to its log this run: the cause and one line saying
/// it.
pub fn classify(code: Option<i32>, signal: Option<i32>, log: &str) -> (Cause, String) {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let find = |needles: &[&str]| {
        lines.iter().rev().find(|line| {
            let lower = line.to_ascii_lowercase();
            needles.iter().any(|n| lower.contains(n))
        })
    };
    let status = match (code, signal) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "exited".to_owned(),
    };
    if let Some(line) = find(&["address already in use", "address in use", "eaddrinuse"]) {
        return (
            Cause::AddressInUse,
            format!("address in use ({status}): {}", strip_log_prefix(line)),
        );
    }
    if let Some(line) = find(&["not built yet"]) {
        return (
            Cause::NotBuilt,
            format!(
                "not implemented in this build ({status}): {}",
                strip_log_prefix(line)
            ),
        );
    }
    let last_error = find(&["error", "problem", "cannot", "failed"]).or(lines.last());
    let detail = last_error.map_or_else(|| "it logged nothing".to_owned(), |l| strip_log_prefix(l));
    if code == Some(1) {
        return (
            Cause::Config,
            format!("bad configuration ({status}): {detail}"),
        );
    }
    (Cause::Crashed, format!("{status}: {detail}"))
}

/// A tracing line without its timestamp and level, for quoting.
fn strip_log_prefix(line: &str) -> String {
    let mut words = line.split_whitespace().peekable();
    // `2026-11-22T20:00:00.123Z ERROR target: message`
    if let Some(first) = words.peek()
        && first.len() > 10
        && first.as_bytes()[4] == b'-'
        && first.contains('T')
    {
        words.next();
        if let Some(level) = words.peek()
            && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&strip_ansi(level).as_str())
        {
            words.next();
        }
        return words.collect::<Vec<_>>().join(" ");
    }
    line.to_owned()
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_in_use_is_found_in_the_log() {
        let log = "2026-11-22T20:00:00.1Z  INFO gslb: GeoIP database loaded\n\
                   2026-11-22T20:00:00.2Z ERROR gslb: cannot bind UDP 127.0.0.1:5353: Address already in use (os error 98)\n\
                   gslb: cannot bind UDP 127.0.0.1:5353: Address already in use (os error 98)\n";
        let (cause, line) = classify(Some(2), None, log);
        assert_eq!(cause, Cause::AddressInUse);
        assert!(cause.is_user());
        assert_eq!(
            line,
            "address in use (exit status 2): gslb: cannot bind UDP 127.0.0.1:5353: Address already in use (os error 98)"
        );
    }

    #[test]
    fn a_refused_configuration_is_the_users() {
        let log =
            "t.yaml: 1 problem found\n  line 3: dns.nodes[0].listen[0]: \"x\" is not an address\n";
        let (cause, line) = classify(Some(1), None, log);
        assert_eq!(cause, Cause::Config);
        assert!(line.contains("problem"), "{line}");
    }

    #[test]
    fn unbuilt_tiers_and_crashes_are_not() {
        let log = "2026-11-22T20:00:00.2Z ERROR edge: L4 node us-east-l4: the L4 tier is not built yet\n\
                   edge: L4 node us-east-l4: the L4 tier is not built yet\n";
        let (cause, line) = classify(Some(2), None, log);
        assert_eq!(cause, Cause::NotBuilt);
        assert!(!cause.is_user());
        assert!(line.ends_with("the L4 tier is not built yet"), "{line}");
        let (cause, line) = classify(None, Some(9), "");
        assert_eq!(cause, Cause::Crashed);
        assert_eq!(line, "killed by signal 9: it logged nothing");
    }
}
