//! When a daemon should re-read its configuration file: when the file
//! changes (polled) or on SIGHUP. Every daemon awaits the same
//! [`ConfigWatch`] and runs its own reload, so they all notice an edit
//! the same way and within the same delay.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Interval, MissedTickBehavior};
use tracing::{info, warn};

/// How often a configuration file is checked for changes. One `stat(2)`
/// per check is cheap, so every daemon checks every second: an edit takes
/// effect everywhere within about a second, which is also the pace
/// `gtm reload` and the reload chaos test expect.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What a file looks like from outside: modification time and length.
/// The length catches a rewrite within the file system's mtime
/// granularity (a second on some), when the time alone stays the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    /// The stamp of the file at `path` now; `None` if it cannot be
    /// `stat`ed (missing, no permission).
    pub fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

/// Why a reload is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The file's [`Stamp`] changed since it was last seen.
    FileChanged,
    /// The process received SIGHUP.
    Hangup,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cause::FileChanged => "the file changed",
            Cause::Hangup => "SIGHUP received",
        })
    }
}

/// Watches one configuration file (and the files it was also read from,
/// [`watch_also`](Self::watch_also)) and SIGHUP; [`next`](Self::next)
/// says when to reload.
///
/// A file that cannot be `stat`ed (an editor between unlink and rename)
/// is not a change: the reload comes when it is back, and only if it is
/// back different from what was last seen.
#[derive(Debug)]
pub struct ConfigWatch {
    path: PathBuf,
    seen: Option<Stamp>,
    /// Files the configuration was also read from (a topology's zone
    /// files), each with its stamp when last seen.
    also: Vec<(PathBuf, Option<Stamp>)>,
    ticks: Interval,
    hangups: Option<Signal>,
}

impl ConfigWatch {
    /// Starts watching `path`, checking it every `every` (use
    /// [`POLL_INTERVAL`]; tests pass less), and SIGHUP. The file as it is
    /// now counts as seen. If SIGHUP cannot be listened for, that is
    /// logged and only file changes are reported.
    pub fn new(path: impl Into<PathBuf>, every: Duration) -> ConfigWatch {
        let path = path.into();
        let hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(e) => {
                warn!(
                    file = %path.display(),
                    "cannot listen for SIGHUP ({e}); reload by changing the file or through the admin API"
                );
                None
            }
        };
        ConfigWatch::watching(path, every, hangups)
    }

    /// [`new`](Self::new) with the SIGHUP stream given (tests give none:
    /// a signal reaches every stream of the process).
    fn watching(path: PathBuf, every: Duration, hangups: Option<Signal>) -> ConfigWatch {
        let mut ticks = tokio::time::interval(every);
        // A slow reload delays the next check instead of bunching them.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first check is one period away, not now.
        ticks.reset();
        ConfigWatch {
            seen: Stamp::of(&path),
            path,
            also: Vec::new(),
            ticks,
            hangups,
        }
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts the file as it is now as seen: call it before a reload
    /// that has another cause (an admin API request), so the poll does
    /// not reload the same contents again.
    pub fn mark_seen(&mut self) {
        self.seen = Stamp::of(&self.path);
        for (path, seen) in &mut self.also {
            *seen = Stamp::of(path);
        }
    }

    /// Also watches `files`, the other files the configuration was read
    /// from, instead of the ones given before: a change to any of them
    /// is a change to the configuration. Call it after each reload, with
    /// the files the configuration now names. A file already watched
    /// keeps the stamp it was last seen with, so an edit made during the
    /// reload still fires; a new one counts as seen now.
    pub fn watch_also<'a>(&mut self, files: impl IntoIterator<Item = &'a Path>) {
        let before = std::mem::take(&mut self.also);
        for file in files {
            let seen = match before.iter().find(|(path, _)| path == file) {
                Some((_, seen)) => *seen,
                None => Stamp::of(file),
            };
            self.also.push((file.to_owned(), seen));
        }
    }

    /// Waits until a reload is due and says why (and logs it). The file
    /// is marked seen first, so a write during the reload that follows is
    /// noticed at the next check. Cancel-safe: usable in `select!`.
    pub async fn next(&mut self) -> Cause {
        let (cause, file) = loop {
            let hangup = async {
                match &mut self.hangups {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => break (Cause::Hangup, self.path.clone()),
                _ = self.ticks.tick() => {
                    if let Some(file) = changed(&self.path, self.seen, &self.also) {
                        break (Cause::FileChanged, file.to_owned());
                    }
                }
            }
        };
        self.mark_seen();
        info!(file = %file.display(), "{cause}: reloading");
        cause
    }
}

/// The first of the files whose stamp differs from the one last seen (a
/// file that cannot be `stat`ed is not a change).
fn changed<'a>(
    path: &'a Path,
    seen: Option<Stamp>,
    also: &'a [(PathBuf, Option<Stamp>)],
) -> Option<&'a Path> {
    std::iter::once((path, seen))
        .chain(also.iter().map(|(path, seen)| (path.as_path(), *seen)))
        .find(|(path, seen)| {
            let now = Stamp::of(path);
            now.is_some() && now != *seen
        })
        .map(|(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// Whether `watch` says "reload" within ten (virtual) periods.
    async fn fires(watch: &mut ConfigWatch) -> Option<Cause> {
        tokio::time::timeout(10 * POLL_INTERVAL, watch.next())
            .await
            .ok()
    }

    #[tokio::test(start_paused = true)]
    async fn an_untouched_file_never_fires() {
        let (_dir, path) = temp_file("same.yaml", "a: 1\n");
        let mut watch = ConfigWatch::watching(path.clone(), POLL_INTERVAL, None);
        assert_eq!(fires(&mut watch).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rewrite_fires_once() {
        let (_dir, path) = temp_file("edit.yaml", "a: 1\n");
        let mut watch = ConfigWatch::watching(path.clone(), POLL_INTERVAL, None);
        std::fs::write(&path, "a: 12\n").unwrap();
        assert_eq!(fires(&mut watch).await, Some(Cause::FileChanged));
        assert_eq!(
            fires(&mut watch).await,
            None,
            "the same contents fired again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rewrite_within_the_mtime_granularity_fires() {
        let (_dir, path) = temp_file("quick.yaml", "a: 1\n");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let mut watch = ConfigWatch::watching(path.clone(), POLL_INTERVAL, None);
        std::fs::write(&path, "a: 100\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(before)
            .unwrap();
        assert_eq!(fires(&mut watch).await, Some(Cause::FileChanged));
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_file_waits_for_its_return() {
        let (_dir, path) = temp_file("gone.yaml", "a: 1\n");
        let mut watch = ConfigWatch::watching(path.clone(), POLL_INTERVAL, None);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(fires(&mut watch).await, None, "a vanished file fired");
        std::fs::write(&path, "a: 2, b: 3\n").unwrap();
        assert_eq!(fires(&mut watch).await, Some(Cause::FileChanged));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_seen_by_another_reload_does_not_fire() {
        let (_dir, path) = temp_file("api.yaml", "a: 1\n");
        let mut watch = ConfigWatch::watching(path.clone(), POLL_INTERVAL, None);
        std::fs::write(&path, "a: 12\n").unwrap();
        watch.mark_seen();
        assert_eq!(fires(&mut watch).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_to_a_file_also_read_fires() {
        let (dir, path) = temp_file("topology.yaml", "a: 1\n");
        let zone = dir.path().join("example.com.zone");
        std::fs::write(&zone, "@ A 192.0.2.1\n").unwrap();
        let mut watch = ConfigWatch::watching(path.clone(), POLL_INTERVAL, None);
        watch.watch_also([zone.as_path()]);
        assert_eq!(fires(&mut watch).await, None);
        std::fs::write(&zone, "@ A 192.0.2.22\n").unwrap();
        assert_eq!(fires(&mut watch).await, Some(Cause::FileChanged));
        assert_eq!(
            fires(&mut watch).await,
            None,
            "the same contents fired again"
        );
        // Kept across a reload that names it again: an edit made during
        // the reload is not lost.
        std::fs::write(&zone, "@ A 192.0.2.3\n").unwrap();
        watch.watch_also([zone.as_path()]);
        assert_eq!(fires(&mut watch).await, Some(Cause::FileChanged));
        // No longer named: no longer watched.
        watch.watch_also([]);
        std::fs::write(&zone, "@ A 192.0.2.44\n").unwrap();
        assert_eq!(fires(&mut watch).await, None);
    }

    #[tokio::test]
    async fn sighup_fires() {
        let (_dir, path) = temp_file("hup.yaml", "a: 1\n");
        // A long period: only the signal can end the wait.
        let mut watch = ConfigWatch::new(&path, Duration::from_secs(3600));
        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let cause = tokio::time::timeout(Duration::from_secs(10), watch.next()).await;
        assert_eq!(cause, Ok(Cause::Hangup));
    }
}
