//! `gtm logs COMPONENT [-f] [-n N]`: a component's log from the state
//! directory; `-f` keeps printing what it appends (across restarts and
//! truncation) until interrupted. With `--json`, one object per line.
//! For a deployment on hosts, the log is read over ssh (`gtmctl`'s log
//! file, or the unit's journal).

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use serde::Serialize;

use crate::cli::LogsArgs;
use crate::error::user;
use crate::printer::Printer;
use crate::supervise::state::StateDir;

use crate::deployed::Deployed;
use crate::remote::{Ssh, services};

#[derive(Serialize)]
struct Line<'a> {
    component: &'a str,
    line: &'a str,
}

/// Runs `gtm logs`.
pub fn run(args: &LogsArgs, state: &StateDir, printer: &Printer) -> anyhow::Result<()> {
    if let Some(deployed) = Deployed::load(state).ok().flatten()
        && let Some(ssh) = deployed.ssh()
    {
        return remote(args, &deployed, &ssh, printer);
    }
    let path = state.log_path(&args.component);
    if !path.exists() {
        let known: Vec<String> = match Deployed::load(state).ok().flatten() {
            Some(d) => d.components.iter().map(|c| c.name.clone()).collect(),
            None => Vec::new(),
        };
        return Err(user(if known.contains(&args.component) {
            format!(
                "{} has not logged anything yet ({})",
                args.component,
                path.display()
            )
        } else if known.is_empty() {
            format!(
                "no log for {:?} in {}; nothing is deployed there",
                args.component,
                state.root().display()
            )
        } else {
            format!(
                "unknown component {:?}; the deployment has: {}",
                args.component,
                known.join(", ")
            )
        }));
    }
    let mut file = std::fs::File::open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let mut text = String::new();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut position = bytes.len() as u64;
    text.push_str(&String::from_utf8_lossy(&bytes));
    let lines: Vec<&str> = text.lines().collect();
    let start = args.lines.map_or(0, |n| lines.len().saturating_sub(n));
    emit(printer, &args.component, &lines[start..]);
    if !args.follow {
        return Ok(());
    }
    let mut partial = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < position {
            // Truncated or replaced: start over from the top.
            position = 0;
            file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(_) => continue,
            };
        }
        if len == position {
            continue;
        }
        if file.seek(SeekFrom::Start(position)).is_err() {
            continue;
        }
        let mut chunk = Vec::new();
        if file.read_to_end(&mut chunk).is_err() {
            continue;
        }
        position += chunk.len() as u64;
        partial.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(end) = partial.rfind('\n') {
            let complete: String = partial.drain(..=end).collect();
            let lines: Vec<&str> = complete.lines().collect();
            emit(printer, &args.component, &lines);
        }
    }
}

fn emit(printer: &Printer, component: &str, lines: &[&str]) {
    if printer.json() {
        for line in lines {
            printer.json_line(&Line { component, line });
        }
    } else {
        let mut text = lines.join("\n");
        if !lines.is_empty() {
            text.push('\n');
        }
        printer.raw(text.as_bytes());
    }
}

/// The log of a component (or any service, e.g. `gtm-keepalived`) on its
/// host, streamed line by line.
fn remote(
    args: &LogsArgs,
    deployed: &Deployed,
    ssh: &Ssh,
    printer: &Printer,
) -> anyhow::Result<()> {
    let all = deployed.remote_services();
    let matches: Vec<_> = all
        .iter()
        .filter(|(_, s)| {
            s.component.as_deref() == Some(args.component.as_str()) || s.name == args.component
        })
        .collect();
    let [(host, service)] = matches[..] else {
        let known: Vec<String> = all
            .iter()
            .map(|(h, s)| format!("{}@{}", s.component.as_deref().unwrap_or(&s.name), h.name))
            .collect();
        return Err(user(if matches.is_empty() {
            format!(
                "unknown component {:?}; the deployment has: {}",
                args.component,
                known.join(", ")
            )
        } else {
            format!(
                "{:?} runs on several hosts; name its service (e.g. {}@HOST is `gtm logs SERVICE`): {}",
                args.component,
                args.component,
                matches
                    .iter()
                    .map(|(h, s)| format!("{} on {}", s.name, h.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }));
    };
    let script = services::logs(host, &service.name, args.lines, args.follow);
    let mut child = ssh.spawn(&host.ssh, &script).map_err(anyhow::Error::msg)?;
    if let Some(stdout) = child.stdout.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            emit(printer, &args.component, &[&line]);
        }
    }
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(user(format!(
            "cannot read the log of {} on {} (`{script}` exited {status})",
            service.name, host.name
        )))
    }
}
