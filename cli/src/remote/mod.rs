//! The deployment's hosts, reached with the operator's OpenSSH client: run
//! a shell command on a host with a deadline, push files through a `tar`
//! pipe, and do one thing on many hosts at once with bounded threads.
//!
//! ssh always runs with `BatchMode=yes` (never a password prompt that would
//! hang a deploy) and a connect timeout, and with `-F FILE` when the
//! operator gives one.
//!
//! # Layout
//! - [`tar`]: the ustar archive a push sends.
//! - [`preflight`]: what each host must offer, and the one-session survey
//!   that checks it.
//! - [`services`]: start/stop/reload/status/logs of a host's services,
//!   under systemd or the bundle's `gtmctl`.

pub mod preflight;
pub mod services;
pub mod tar;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long ssh may take to connect.
const CONNECT_TIMEOUT_S: u32 = 5;
/// ssh's exit status when it could not reach the host (or authenticate).
const SSH_FAILED: i32 = 255;

/// An ssh client with the operator's options.
#[derive(Clone, Debug, Default)]
pub struct Ssh {
    config: Option<PathBuf>,
}

/// What a remote command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Its exit status (`None`: killed, e.g. at the deadline).
    pub code: Option<i32>,
    /// What it printed.
    pub stdout: String,
    /// What it (or ssh) complained about.
    pub stderr: String,
}

impl Output {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The last non-empty line of stderr (ssh's reason, when it failed).
    pub fn last_error(&self) -> &str {
        self.stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
    }
}

/// Why a remote command did not run to completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteError {
    /// ssh could not reach or log in to the host: its own message.
    Unreachable(String),
    /// It ran past its deadline and was killed.
    Timeout(Duration),
    /// The local ssh could not be run.
    Local(String),
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::Unreachable(why) => write!(f, "unreachable over ssh: {why}"),
            RemoteError::Timeout(after) => write!(f, "no result after {after:?} (killed)"),
            RemoteError::Local(why) => write!(f, "cannot run ssh: {why}"),
        }
    }
}

impl Ssh {
    /// A client reading `config` (`ssh -F`) when given.
    pub fn new(config: Option<PathBuf>) -> Ssh {
        Ssh { config }
    }

    /// The ssh config file, if one was given.
    pub fn config(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// The argv of `ssh … DEST SCRIPT`.
    fn argv(&self, dest: &str, script: &str) -> Vec<String> {
        let mut argv: Vec<String> = vec!["ssh".into()];
        if let Some(config) = &self.config {
            argv.extend(["-F".into(), config.display().to_string()]);
        }
        argv.extend([
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={CONNECT_TIMEOUT_S}"),
            "--".into(),
            dest.into(),
            script.into(),
        ]);
        argv
    }

    /// Runs `script` (a POSIX shell command line) on `dest`, killed after
    /// `timeout`. A failing command is an `Ok` with its status; only ssh's
    /// own failure (exit 255), the deadline, or a local problem are errors.
    pub fn run(&self, dest: &str, script: &str, timeout: Duration) -> Result<Output, RemoteError> {
        self.run_with_input(dest, script, &[], timeout)
    }

    /// [`Ssh::run`] with `input` on the command's stdin.
    pub fn run_with_input(
        &self,
        dest: &str,
        script: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<Output, RemoteError> {
        let argv = self.argv(dest, script);
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RemoteError::Local(format!("{}: {e}", argv[0])))?;
        let (mut stdin, mut stdout, mut stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let output = std::thread::scope(|scope| {
            // Pipes are fed and drained in their own threads, so a large
            // push or a chatty command never blocks on a full pipe.
            scope.spawn(move || {
                if let Some(stdin) = stdin.as_mut() {
                    let _ = stdin.write_all(input);
                }
                drop(stdin);
            });
            let out = scope.spawn(move || drain(stdout.as_mut()));
            let err = scope.spawn(move || drain(stderr.as_mut()));
            let begun = Instant::now();
            let code = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status.code()),
                    Ok(None) if begun.elapsed() > timeout => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(RemoteError::Timeout(timeout));
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                    Err(e) => break Err(RemoteError::Local(e.to_string())),
                }
            };
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            code.map(|code| Output {
                code,
                stdout,
                stderr,
            })
        })?;
        if output.code == Some(SSH_FAILED) {
            let why = output.last_error();
            return Err(RemoteError::Unreachable(if why.is_empty() {
                format!("ssh {dest} exited 255")
            } else {
                format!("ssh {dest}: {why}")
            }));
        }
        Ok(output)
    }

    /// Starts `script` on `dest` with its stdout piped to the caller (its
    /// stderr shared with gtm's), for output read as it comes (`logs -f`).
    pub fn spawn(&self, dest: &str, script: &str) -> Result<std::process::Child, RemoteError> {
        let argv = self.argv(dest, script);
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| RemoteError::Local(format!("{}: {e}", argv[0])))
    }

    /// Extracts `entries` under `dir` on `dest` (created if missing), then
    /// runs `then` there (e.g. `chown`), all in one session.
    pub fn push(
        &self,
        dest: &str,
        dir: &Path,
        entries: &[tar::Entry],
        then: &str,
        timeout: Duration,
    ) -> Result<Output, RemoteError> {
        let archive = tar::archive(entries).map_err(RemoteError::Local)?;
        let dir = quote(&dir.display().to_string());
        let mut script = format!("mkdir -p {dir} && tar -x --no-same-owner -C {dir}");
        if !then.is_empty() {
            script.push_str(" && ");
            script.push_str(then);
        }
        self.run_with_input(dest, &script, &archive, timeout)
    }
}

fn drain(pipe: Option<&mut impl Read>) -> String {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `text` as one POSIX shell word.
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `words` quoted and joined by spaces.
pub fn quote_all<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `f` over every item, at most `parallel` at a time; results in the
/// items' order.
pub fn each<T: Sync, R: Send>(items: &[T], parallel: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let workers = parallel.clamp(1, items.len().max(1));
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else { break };
                        done.push((index, f(item)));
                    }
                    done
                })
            })
            .collect();
        jobs.into_iter()
            .flat_map(|j| j.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(quote("/var/lib/gtm"), "/var/lib/gtm");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote_all(&["gtmctl", "start", "x;y"]), "gtmctl start 'x;y'");
    }

    #[test]
    fn ssh_is_batch_mode_with_a_connect_timeout_and_the_config() {
        let argv = Ssh::new(Some("/run/gtm-lab/ssh_config".into())).argv("use-ns", "true");
        assert_eq!(
            argv,
            [
                "ssh",
                "-F",
                "/run/gtm-lab/ssh_config",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "--",
                "use-ns",
                "true"
            ]
        );
        assert!(!Ssh::new(None).argv("h", "true").contains(&"-F".to_owned()));
    }

    #[test]
    fn each_keeps_order_and_bounds_the_threads() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<u32> = (0..20).collect();
        let out = each(&items, 3, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert!(each(&[] as &[u32], 4, |i| *i).is_empty());
    }
}
