//! The shell commands that start, stop, reload, list and read the logs of
//! a host's services, for either way a host runs them: systemd units, or
//! the bundle's `gtmctl` script on hosts without systemd. Pure: the
//! commands are text, run by [`super::Ssh`].

use std::path::Path;

use topology::hosts::{Host, Init};

use super::{quote, quote_all};

/// `{dir}/gtmctl`.
fn gtmctl(dir: &Path) -> String {
    quote(&dir.join("gtmctl").display().to_string())
}

fn units(services: &[&str]) -> String {
    quote_all(
        &services
            .iter()
            .map(|s| format!("{s}.service"))
            .collect::<Vec<_>>(),
    )
}

/// Starts `services` (a running one is left alone) and enables them at
/// boot on systemd hosts.
pub fn start(host: &Host, services: &[&str]) -> String {
    match host.init {
        Init::Process => format!("{} start {}", gtmctl(&host.dir), quote_all(services)),
        Init::Systemd => format!("systemctl enable --now {}", units(services)),
    }
}

/// Stops `services` (and disables them at boot on systemd hosts), in the
/// reverse of the order given.
pub fn stop(host: &Host, services: &[&str]) -> String {
    let reversed: Vec<&str> = services.iter().rev().copied().collect();
    match host.init {
        Init::Process => format!("{} stop {}", gtmctl(&host.dir), quote_all(&reversed)),
        Init::Systemd => format!("systemctl disable --now {}", units(&reversed)),
    }
}

/// Kills `services` with SIGKILL, as a crash would (`gtm fail`), and keeps
/// them down: systemd's `Restart=` must not undo a drill, so the units are
/// stopped right after (their processes are already gone).
pub fn kill(host: &Host, services: &[&str]) -> String {
    match host.init {
        Init::Process => format!("{} kill {}", gtmctl(&host.dir), quote_all(services)),
        Init::Systemd => format!(
            "systemctl kill --signal=SIGKILL {0}; systemctl stop {0}",
            units(services)
        ),
    }
}

/// Makes running `services` take their new files: `restart` for a new
/// binary or unit, else each one's own way (SIGHUP or restart).
pub fn reload(host: &Host, services: &[&str], restart: bool) -> String {
    match (host.init, restart) {
        (Init::Process, false) => format!("{} reload {}", gtmctl(&host.dir), quote_all(services)),
        (Init::Process, true) => format!(
            "{0} stop {1} && {0} start {1}",
            gtmctl(&host.dir),
            quote_all(services)
        ),
        (Init::Systemd, false) => format!("systemctl reload-or-restart {}", units(services)),
        (Init::Systemd, true) => format!("systemctl restart {}", units(services)),
    }
}

/// Prints `service`'s log (the last `lines` lines, else all of it), then
/// follows it if asked.
pub fn logs(host: &Host, service: &str, lines: Option<usize>, follow: bool) -> String {
    let follow = if follow { " -f" } else { "" };
    match host.init {
        Init::Process => format!(
            "tail -n {}{follow} {}",
            lines.map_or_else(|| "+1".to_owned(), |n| n.to_string()),
            quote(
                &host
                    .dir
                    .join("log")
                    .join(format!("{service}.log"))
                    .display()
                    .to_string()
            )
        ),
        Init::Systemd => format!(
            "journalctl --no-pager -o short-iso -n {}{follow} -u {}",
            lines.map_or_else(|| "all".to_owned(), |n| n.to_string()),
            quote(&format!("{service}.service"))
        ),
    }
}

/// Prints one `NAME STATE` line per service; see [`parse_status`].
pub fn status(host: &Host, services: &[&str]) -> String {
    match host.init {
        // Before the first push there is no gtmctl: nothing runs.
        Init::Process => format!(
            "if [ -x {0} ]; then {0} status; fi; true",
            gtmctl(&host.dir)
        ),
        Init::Systemd => format!(
            "for s in {}; do printf '%s ' \"$s\"; systemctl is-active \"$s.service\"; done; true",
            quote_all(services)
        ),
    }
}

/// The services [`status`]'s output says run.
pub fn parse_status(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            // gtmctl: `NAME running PID`; systemctl is-active: `active`.
            matches!(words.next(), Some("running" | "active" | "reloading"))
                .then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(init: Init) -> Host {
        Host {
            name: "use-l4a".into(),
            ssh: "root@198.51.100.11".into(),
            addresses: vec!["198.51.100.11".parse().unwrap()],
            interface: "eth0".into(),
            dir: "/var/lib/gtm".into(),
            init,
        }
    }

    #[test]
    fn process_hosts_use_gtmctl_and_systemd_hosts_their_units() {
        let (p, s) = (host(Init::Process), host(Init::Systemd));
        let both = ["gtm-l4-a", "gtm-keepalived"];
        assert_eq!(
            start(&p, &both),
            "/var/lib/gtm/gtmctl start gtm-l4-a gtm-keepalived"
        );
        assert_eq!(
            start(&s, &both),
            "systemctl enable --now gtm-l4-a.service gtm-keepalived.service"
        );
        assert_eq!(
            stop(&p, &both),
            "/var/lib/gtm/gtmctl stop gtm-keepalived gtm-l4-a"
        );
        assert_eq!(
            stop(&s, &both),
            "systemctl disable --now gtm-keepalived.service gtm-l4-a.service"
        );
        assert_eq!(
            reload(&s, &both[..1], false),
            "systemctl reload-or-restart gtm-l4-a.service"
        );
        assert_eq!(
            reload(&p, &both[..1], true),
            "/var/lib/gtm/gtmctl stop gtm-l4-a && /var/lib/gtm/gtmctl start gtm-l4-a"
        );
        assert_eq!(
            logs(&p, "gtm-l4-a", Some(20), false),
            "tail -n 20 /var/lib/gtm/log/gtm-l4-a.log"
        );
        assert_eq!(
            logs(&p, "gtm-l4-a", None, true),
            "tail -n +1 -f /var/lib/gtm/log/gtm-l4-a.log"
        );
        assert!(logs(&s, "gtm-l4-a", Some(5), true).ends_with("-n 5 -f -u gtm-l4-a.service"));
    }

    #[test]
    fn running_services_are_read_from_either_status() {
        let gtmctl = "gtm-a running 412\ngtm-b stopped\n";
        assert_eq!(parse_status(gtmctl), ["gtm-a"]);
        let systemd = "gtm-a active\ngtm-b inactive\ngtm-c failed\ngtm-d reloading\n";
        assert_eq!(parse_status(systemd), ["gtm-a", "gtm-d"]);
    }
}
