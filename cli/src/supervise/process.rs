//! Processes by pid: whether one still runs (and is the one a pid file
//! names, not a recycled pid), signals, and whether it handles SIGHUP.
//! Reads `/proc` on Linux; elsewhere falls back to `kill(pid, 0)`.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::state::PidRecord;

/// What `/proc/PID/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead), …
    pub state: char,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses
/// and may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: field 3 (state) is fields[0]; field 22 (starttime)
    // is fields[19].
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// `/proc/PID/stat`, if the process exists (and `/proc` is there).
pub fn stat(pid: u32) -> Option<ProcStat> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|text| parse_stat(&text))
}

fn has_proc() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

/// Whether the process a pid file names still runs: it exists, is not a
/// zombie, and started when the record says (a recycled pid belongs to
/// someone else).
pub fn is_running(record: &PidRecord) -> bool {
    if has_proc() {
        match stat(record.pid) {
            None => false,
            Some(stat) => {
                !matches!(stat.state, 'Z' | 'X' | 'x')
                    && record.start_ticks.is_none_or(|t| t == stat.start_ticks)
            }
        }
    } else {
        kill(pid(record.pid), None).is_ok()
    }
}

/// The start time of `pid`, to record beside it.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start_ticks)
}

fn pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

/// Sends `signal` to `pid`. A process already gone is not an error.
pub fn signal(target: u32, signal: Signal) -> Result<(), String> {
    match kill(pid(target), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(format!("cannot send {signal} to pid {target}: {errno}")),
    }
}

/// Whether `pid` catches SIGHUP (`SigCgt` in `/proc/PID/status`). A
/// process that does not would die of it, so `gtm reload` asks first.
/// `None` when it cannot be told.
pub fn handles_sighup(pid: u32) -> Option<bool> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    caught_signals(&text).map(|mask| mask & (1 << (Signal::SIGHUP as u32 - 1)) != 0)
}

/// The `SigCgt` mask of a `/proc/PID/status` text.
pub fn caught_signals(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("SigCgt:"))?;
    u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "4242 (edge (l4) x) S 1 4242 4242 0 -1 4194560 1036 0 0 0 3 1 0 0 20 0 \
                    5 0 987654 1234567 890 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                state: 'S',
                start_ticks: 987_654
            })
        );
        assert_eq!(parse_stat("4242 (gslb) Z"), None);
    }

    #[test]
    fn this_process_runs_and_a_recycled_pid_does_not_count() {
        let me = std::process::id();
        let ticks = start_ticks(me);
        let record = |start_ticks| PidRecord {
            pid: me,
            start_ticks,
            kind: crate::plan::Kind::Gslb,
            region: None,
            started_at: String::new(),
        };
        assert!(is_running(&record(ticks)));
        if let Some(ticks) = ticks {
            assert!(!is_running(&record(Some(ticks + 1))));
        }
    }

    #[test]
    fn sighup_is_read_from_the_caught_mask() {
        let status = "Name:\tedge\nSigBlk:\t0000000000000000\nSigCgt:\t0000000180004003\n";
        let mask = caught_signals(status).unwrap();
        assert_eq!(mask & 1, 1, "SIGHUP is bit 0");
        assert_eq!(caught_signals("Name:\tx\n"), None);
    }
}
