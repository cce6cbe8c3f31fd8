//! `edge announce`: announces the VIP by BGP while this L4 node is ready.
//!
//! It runs beside the L4 node for as long as the node should be in the
//! region's ECMP group, polls `/readyz` every `every`, and switches BIRD's
//! static protocol carrying the VIP's /32 with `birdc -s SOCKET
//! enable|disable PROTOCOL`:
//!
//! - withdrawn → announced after `rise` ready polls in a row;
//! - announced → withdrawn at the first poll that is refused or not ready
//!   (one poll, about 100 ms: a node that cannot serve leaves ECMP at
//!   once), or at the `misses`-th unanswered poll in a row (a hung node;
//!   a slow answer alone withdraws nothing);
//! - the current state is re-asserted every [`REASSERT`], in case BIRD
//!   restarted and came back with its configured state;
//! - on SIGTERM or SIGINT it withdraws and exits: stopping the announcer
//!   takes the node out of ECMP.
//!
//! Its first state is **withdrawn**, and it says so to BIRD on the first
//! poll. BIRD's configuration must therefore render the protocol
//! `disabled`, so that nothing is announced before the node is ready, even
//! while BIRD runs and the announcer does not:
//!
//! ```text
//! protocol static vip { ipv4; disabled; route 203.0.113.1/32 via "lo"; }
//! ```
//!
//! A failing `birdc` (BIRD not running, a wrong socket, no such protocol)
//! is logged with the fix and retried on the next poll.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::ha::ready::{self, Patience};

/// How often the current state is told to BIRD again, transitions or not.
pub const REASSERT: Duration = Duration::from_secs(10);

/// How long one `birdc` may take before it counts as failed.
const BIRDC_TIMEOUT: Duration = Duration::from_secs(5);

/// How `edge announce` runs.
#[derive(Debug, Clone)]
pub struct AnnounceOptions {
    /// The L4 node's admin API.
    pub admin: SocketAddr,
    /// BIRD's control socket (`bird -s PATH`).
    pub bird_socket: PathBuf,
    /// The BIRD protocol that carries the VIP's route.
    pub protocol: String,
    /// Time between polls, and the timeout of each.
    pub every: Duration,
    /// Ready polls in a row before announcing.
    pub rise: u32,
    /// Unanswered polls in a row that count as not ready.
    pub misses: u32,
}

/// What BIRD is told to do with the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// `enable PROTOCOL`: the VIP is announced.
    Enable,
    /// `disable PROTOCOL`: the VIP is withdrawn.
    Disable,
}

impl Switch {
    fn word(self) -> &'static str {
        match self {
            Self::Enable => "enable",
            Self::Disable => "disable",
        }
    }
}

/// What to tell BIRD after a poll, and whether it is a transition (else a
/// re-assertion or a retry of the state BIRD should already be in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The state to tell BIRD.
    pub command: Switch,
    /// Whether that state differs from the one BIRD last confirmed.
    pub transition: bool,
}

/// The announcer's decisions, pure: readiness and time in, what to tell
/// BIRD out.
#[derive(Debug, Clone)]
pub struct Announcer {
    rise: u32,
    /// Ready polls in a row.
    streak: u32,
    /// The state BIRD last confirmed (starts withdrawn).
    announced: bool,
    /// When BIRD last confirmed it; `None` before the first confirmation
    /// and after a failed `birdc`, so the next poll tells it again.
    confirmed_at: Option<Instant>,
}

impl Announcer {
    /// Withdrawn, with nothing told to BIRD yet. A `rise` of 0 counts as 1.
    pub fn new(rise: u32) -> Self {
        Self {
            rise: rise.max(1),
            streak: 0,
            announced: false,
            confirmed_at: None,
        }
    }

    /// Whether BIRD last confirmed the VIP announced.
    pub fn announced(&self) -> bool {
        self.announced
    }

    /// Records one poll at `now`; returns what to tell BIRD, if anything.
    pub fn observe(&mut self, ready: bool, now: Instant) -> Option<Step> {
        self.streak = if ready {
            self.streak.saturating_add(1)
        } else {
            0
        };
        let want = ready && (self.announced || self.streak >= self.rise);
        let command = if want {
            Switch::Enable
        } else {
            Switch::Disable
        };
        let transition = want != self.announced;
        let due = self
            .confirmed_at
            .is_none_or(|at| now.saturating_duration_since(at) >= REASSERT);
        (transition || due).then_some(Step {
            command,
            transition,
        })
    }

    /// Records whether BIRD carried `command` out at `now`.
    pub fn done(&mut self, command: Switch, ok: bool, now: Instant) {
        if ok {
            self.announced = command == Switch::Enable;
            self.confirmed_at = Some(now);
        } else {
            self.confirmed_at = None;
        }
    }
}

/// Announces while the node is ready, until `shutdown`; then withdraws.
/// Errors only when the final withdrawal fails (the VIP may still be
/// announced: the caller must say so).
pub async fn run(options: AnnounceOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let birdc = Birdc {
        socket: options.bird_socket.clone(),
        protocol: options.protocol.clone(),
    };
    info!(
        admin = %options.admin, socket = %birdc.socket.display(), protocol = %birdc.protocol,
        every = ?options.every, rise = options.rise, misses = options.misses,
        "announcer started: the VIP is withdrawn until the L4 node is ready"
    );
    let mut announcer = Announcer::new(options.rise);
    let mut patience = Patience::new(options.misses);
    let mut failing = false;
    let mut ticks = tokio::time::interval(options.every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let Some(readiness) = patience.judge(ready::poll(options.admin, options.every).await)
        else {
            continue;
        };
        let now = Instant::now();
        let Some(step) = announcer.observe(readiness.is_ok(), now) else {
            continue;
        };
        let reason = match &readiness {
            Ok(reason) | Err(reason) => reason.as_str(),
        };
        let result = birdc.run(step.command).await;
        announcer.done(step.command, result.is_ok(), now);
        match result {
            Ok(()) => {
                if failing {
                    info!("birdc works again");
                    failing = false;
                }
                match (step.transition, step.command) {
                    (true, Switch::Enable) => info!(
                        protocol = %birdc.protocol,
                        "VIP announced: {} ready polls in a row ({reason})", options.rise
                    ),
                    (true, Switch::Disable) => {
                        warn!(protocol = %birdc.protocol, "VIP withdrawn: {reason}");
                    }
                    (false, command) => {
                        debug!(protocol = %birdc.protocol, "BIRD told again: {}", command.word());
                    }
                }
            }
            Err(e) if !failing => {
                error!("{e}; retrying on every poll");
                failing = true;
            }
            Err(e) => debug!("{e}"),
        }
    }
    match birdc.run(Switch::Disable).await {
        Ok(()) => {
            info!(protocol = %birdc.protocol, "stopping: VIP withdrawn");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "stopping, but the VIP could not be withdrawn and may still be announced: {e}"
        )),
    }
}

/// `birdc -s SOCKET COMMAND PROTOCOL`.
struct Birdc {
    socket: PathBuf,
    protocol: String,
}

impl Birdc {
    /// Runs the command; `Err` says what failed and how to fix it.
    async fn run(&self, command: Switch) -> Result<(), String> {
        let line = format!(
            "birdc -s {} {} {}",
            self.socket.display(),
            command.word(),
            self.protocol
        );
        let output = tokio::process::Command::new("birdc")
            .arg("-s")
            .arg(&self.socket)
            .arg(command.word())
            .arg(&self.protocol)
            .kill_on_drop(true)
            .output();
        let output = match tokio::time::timeout(BIRDC_TIMEOUT, output).await {
            Err(_) => {
                return Err(format!(
                    "`{line}` did not finish within {BIRDC_TIMEOUT:?}; is BIRD hung?"
                ));
            }
            Ok(Err(e)) => {
                return Err(format!(
                    "cannot run `{line}`: {e}; install BIRD 2 (Debian package bird2) so that \
                     birdc is on PATH"
                ));
            }
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        let said = said
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains(" ready."))
            .collect::<Vec<_>>()
            .join("; ");
        Err(format!(
            "`{line}` failed ({}): {said}; check that BIRD runs with `-s {}` and that its \
             configuration has `protocol static {} {{ ipv4; disabled; route VIP/32 via \"lo\"; }}`",
            output.status,
            self.socket.display(),
            self.protocol
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    /// Feeds polls 100 ms apart, BIRD always succeeding; returns the steps.
    fn feed(announcer: &mut Announcer, start: Instant, polls: &[bool]) -> Vec<Option<Step>> {
        polls
            .iter()
            .enumerate()
            .map(|(i, &ready)| {
                let now = at(start, 100 * i as u64);
                let step = announcer.observe(ready, now);
                if let Some(step) = step {
                    announcer.done(step.command, true, now);
                }
                step
            })
            .collect()
    }

    const fn step(command: Switch, transition: bool) -> Option<Step> {
        Some(Step {
            command,
            transition,
        })
    }

    #[test]
    fn starts_withdrawn_and_tells_bird_so_on_the_first_poll() {
        let start = Instant::now();
        let mut a = Announcer::new(2);
        assert_eq!(
            feed(&mut a, start, &[false, false]),
            [step(Switch::Disable, false), None]
        );
        assert!(!a.announced());
    }

    #[test]
    fn announces_after_rise_ready_polls_and_withdraws_at_the_first_failure() {
        let start = Instant::now();
        let mut a = Announcer::new(2);
        let steps = feed(&mut a, start, &[true, true, true, false, true, true]);
        assert_eq!(
            steps,
            [
                step(Switch::Disable, false), // first poll: say "withdrawn"
                step(Switch::Enable, true),
                None,
                step(Switch::Disable, true),
                None,
                step(Switch::Enable, true),
            ]
        );
    }

    #[test]
    fn a_broken_streak_starts_counting_again() {
        let start = Instant::now();
        let mut a = Announcer::new(3);
        let steps = feed(&mut a, start, &[true, true, false, true, true, true]);
        assert_eq!(steps[5], step(Switch::Enable, true));
        assert!(steps[1..5].iter().all(Option::is_none), "{steps:?}");
    }

    #[test]
    fn the_state_is_reasserted_every_ten_seconds() {
        let start = Instant::now();
        let mut a = Announcer::new(1);
        assert_eq!(a.observe(true, start), step(Switch::Enable, true));
        a.done(Switch::Enable, true, start);
        assert_eq!(a.observe(true, at(start, 9_999)), None);
        assert_eq!(
            a.observe(true, at(start, 10_000)),
            step(Switch::Enable, false)
        );
    }

    #[test]
    fn a_failed_birdc_is_retried_on_the_next_poll() {
        let start = Instant::now();
        let mut a = Announcer::new(1);
        let first = a.observe(true, start).unwrap();
        a.done(first.command, false, start);
        assert!(!a.announced(), "BIRD did not confirm");
        assert_eq!(a.observe(true, at(start, 100)), step(Switch::Enable, true));
        a.done(Switch::Enable, true, at(start, 100));
        // A failed re-assertion is retried too, not left for ten seconds.
        a.done(Switch::Enable, false, at(start, 10_100));
        assert_eq!(
            a.observe(true, at(start, 10_200)),
            step(Switch::Enable, false)
        );
    }
}
