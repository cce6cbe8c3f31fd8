//! `gtmctl`, the POSIX sh script that runs a host's services where there
//! is no systemd (`init: process`: containers, the network lab): each
//! service a daemon in its own session, its output in `{dir}/log/NAME.log`,
//! its pid in `{dir}/run/NAME.pid`.
//!
//! ```text
//! gtmctl start [SERVICE...]    in start order; a running one is left alone;
//!                              fails with the log of one that dies within 1 s
//! gtmctl stop [SERVICE...]     in reverse: TERM, KILL after its stop timeout
//! gtmctl reload [SERVICE...]   SIGHUP, or a restart for those without reload
//! gtmctl status                NAME running PID | NAME stopped; 0 iff all run
//! gtmctl logs SERVICE [N]      the last N (50) lines of its log
//! ```
//!
//! A pid file counts only while its process carries `GTM_SERVICE=NAME` in
//! its environment, so a pid reused after a reboot is never signalled.

use std::fmt::Write as _;

use topology::hosts::Host;

use super::{Reload, Unit};

/// The script's path in a bundle.
pub const SCRIPT: &str = "gtmctl";

/// The script for `host`'s `units` (in start order).
pub fn script(host: &Host, units: &[Unit]) -> String {
    let names: Vec<&str> = units.iter().map(|u| u.service.name.as_str()).collect();
    let mut run = String::new();
    for unit in units {
        let _ = writeln!(run, "  {})", unit.service.name);
        for dir in &unit.writes {
            let _ = writeln!(
                run,
                "    mkdir -p {} || exit 1",
                quote(&dir.display().to_string())
            );
        }
        for command in &unit.pre {
            let _ = writeln!(run, "    {} || exit 1", words(command));
        }
        let _ = writeln!(run, "    exec {} ;;", words(&unit.service.argv));
    }
    let restart: Vec<&str> = units
        .iter()
        .filter(|u| u.service.reload == Reload::Restart)
        .map(|u| u.service.name.as_str())
        .collect();
    let mut stop_wait = String::new();
    for unit in units {
        let _ = writeln!(
            stop_wait,
            "  {}) echo {} ;;",
            unit.service.name,
            unit.stop_timeout.as_secs()
        );
    }
    let restart_case = if restart.is_empty() {
        String::new()
    } else {
        format!("  {}) echo restart ;;\n", restart.join("|"))
    };
    TEMPLATE
        .replace("@HOST@", &host.name)
        .replace("@DIR@", &quote(&host.dir.display().to_string()))
        .replace("@SERVICES@", &names.join(" "))
        .replace("@RUN@", &run)
        .replace("@RESTART@", &restart_case)
        .replace("@STOP_WAIT@", &stop_wait)
}

/// `argv` as shell words.
fn words(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// `word` quoted for sh when it needs it.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@,+[]".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

const TEMPLATE: &str = r#"#!/bin/sh
# gtmctl for host @HOST@, rendered by `gtm render`; edits are overwritten.
# Runs this host's gtm services as daemons (no systemd here).
#   gtmctl start|stop|reload [SERVICE...] | status | logs SERVICE [N]
set -u
DIR=@DIR@
# In start order; stop goes in reverse.
SERVICES="@SERVICES@"

case $0 in /*) SELF=$0 ;; *) SELF=$(pwd)/$0 ;; esac
cd "$DIR" || exit 1
# GTM_ADMIN_TOKEN and the like, for every service.
if [ -r "$DIR/env" ]; then set -a; . "$DIR/env"; set +a; fi

# In the service's own session: what it needs, then the service itself.
run() {
  case "$1" in
@RUN@  *) echo "gtmctl: unknown service $1" >&2; exit 2 ;;
  esac
}

reload_mode() {
  case "$1" in
@RESTART@  *) echo hup ;;
  esac
}

# Seconds a stop may take before KILL (an L4 node's drain, plus margin).
stop_wait() {
  case "$1" in
@STOP_WAIT@  *) echo 10 ;;
  esac
}

# Whether process $2 is alive, not a zombie, and service $1.
ours() {
  kill -0 "$2" 2>/dev/null || return 1
  state=$(sed 's/.*) \(.\).*/\1/' "/proc/$2/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  # It may exit meanwhile: the redirection's error is not news.
  { tr '\0' '\n' <"/proc/$2/environ"; } 2>/dev/null | grep -qx "GTM_SERVICE=$1"
}

# The pid of service $1 if it runs; nothing otherwise.
pid_of() {
  f="$DIR/run/$1.pid"
  [ -s "$f" ] || return 0
  read -r p <"$f" || return 0
  if ours "$1" "$p"; then echo "$p"; fi
}

# The services named in $@ (all when none), in start order.
pick() {
  if [ $# -eq 0 ]; then echo "$SERVICES"; return 0; fi
  for want in "$@"; do
    case " $SERVICES " in *" $want "*) ;; *)
      echo "gtmctl: no service $want on @HOST@; services: $SERVICES" >&2; return 1 ;;
    esac
  done
  out=""
  for s in $SERVICES; do
    for want in "$@"; do [ "$s" = "$want" ] && out="$out $s"; done
  done
  echo "$out"
}

start() {
  list=$(pick "$@") || return 1
  mkdir -p "$DIR/run" "$DIR/log" || return 1
  started=""
  for s in $list; do
    [ -n "$(pid_of "$s")" ] && continue
    rm -f "$DIR/run/$s.pid"
    GTM_SERVICE=$s setsid "$SELF" __run "$s" </dev/null >>"$DIR/log/$s.log" 2>&1 &
    started="$started $s"
  done
  [ -n "$started" ] || return 0
  # One that dies at once (a bad flag, a taken port) is reported here.
  sleep 1
  rc=0
  for s in $started; do
    p=$(pid_of "$s")
    if [ -n "$p" ]; then
      echo "$s started ($p)"
    else
      echo "gtmctl: $s on @HOST@ exited at once; the end of $DIR/log/$s.log:" >&2
      tail -n 20 "$DIR/log/$s.log" | sed 's/^/  /' >&2
      rm -f "$DIR/run/$s.pid"
      rc=1
    fi
  done
  return $rc
}

stop_one() {
  p=$(pid_of "$1")
  if [ -z "$p" ]; then rm -f "$DIR/run/$1.pid"; return 0; fi
  # TERM to the service alone: it drains, withdraws, stops its children.
  kill -TERM "$p" 2>/dev/null
  n=$(( $(stop_wait "$1") * 10 ))
  while [ "$n" -gt 0 ] && ours "$1" "$p"; do sleep 0.1; n=$((n - 1)); done
  if ours "$1" "$p"; then
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
    echo "$1 killed after $(stop_wait "$1") s"
  else
    echo "$1 stopped"
  fi
  rm -f "$DIR/run/$1.pid"
}

stop() {
  list=$(pick "$@") || return 1
  reverse=""
  for s in $list; do reverse="$s $reverse"; done
  for s in $reverse; do stop_one "$s"; done
}

# SIGKILL, as a crash would (gtm fail): no drain, no withdrawal.
kill_services() {
  list=$(pick "$@") || return 1
  for s in $list; do
    p=$(pid_of "$s")
    if [ -z "$p" ]; then echo "$s not running"; continue; fi
    kill -KILL "$p" 2>/dev/null && echo "$s killed ($p)"
    n=50
    while [ "$n" -gt 0 ] && ours "$s" "$p"; do sleep 0.1; n=$((n - 1)); done
    rm -f "$DIR/run/$s.pid"
  done
}

reload() {
  list=$(pick "$@") || return 1
  rc=0
  for s in $list; do
    if [ "$(reload_mode "$s")" = restart ]; then
      stop_one "$s"
      start "$s" || rc=1
    else
      p=$(pid_of "$s")
      if [ -z "$p" ]; then
        echo "gtmctl: $s is not running; gtmctl start $s" >&2
        rc=1
      else
        kill -HUP "$p" && echo "$s reloaded"
      fi
    fi
  done
  return $rc
}

status() {
  rc=0
  for s in $SERVICES; do
    p=$(pid_of "$s")
    if [ -n "$p" ]; then echo "$s running $p"; else echo "$s stopped"; rc=1; fi
  done
  return $rc
}

logs() {
  [ $# -ge 1 ] || { echo "usage: gtmctl logs SERVICE [N]" >&2; return 1; }
  pick "$1" >/dev/null || return 1
  tail -n "${2:-50}" "$DIR/log/$1.log"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  __run) echo $$ >"$DIR/run/$1.pid"; run "$1" ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  kill) kill_services "$@" ;;
  reload) reload "$@" ;;
  status) status ;;
  logs) logs "$@" ;;
  *) echo "usage: gtmctl start|stop|kill|reload [SERVICE...] | status | logs SERVICE [N]" >&2; exit 1 ;;
esac
"#;
