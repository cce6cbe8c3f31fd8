//! A systemd unit per service: the components run as the `gtm` system user
//! with only CAP_NET_BIND_SERVICE (ports 53, 80 and 443) and a read-only
//! view of the system; keepalived and BIRD run as root, as they must to
//! move addresses and routes.

use std::fmt::Write as _;

use topology::hosts::Host;

use super::{Reload, Unit};

/// The unit file of `unit`, one of `host`'s `units` (for the ordering
/// between them).
pub fn unit(host: &Host, unit: &Unit, units: &[Unit]) -> String {
    let dir = host.dir.display();
    let mut text = format!(
        "# Rendered by `gtm render` for host {}; edits are overwritten.\n[Unit]\nDescription={}\n\
         After=network-online.target\nWants=network-online.target\n",
        host.name, unit.description
    );
    // At boot, this host's earlier stages first (across hosts, `gtm deploy`
    // orders the start).
    let earlier: Vec<String> = units
        .iter()
        .filter(|u| u.service.stage < unit.service.stage)
        .map(|u| format!("{}.service", u.service.name))
        .collect();
    if !earlier.is_empty() {
        let _ = writeln!(text, "After={}", earlier.join(" "));
    }
    for need in &unit.needs {
        let _ = writeln!(text, "After={need}.service\nWants={need}.service");
    }
    text.push_str("\n[Service]\nType=simple\n");
    if !unit.root {
        text.push_str(
            "User=gtm\nGroup=gtm\n\
             AmbientCapabilities=CAP_NET_BIND_SERVICE\n\
             CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n\
             NoNewPrivileges=yes\n\
             ProtectSystem=strict\n\
             ProtectHome=yes\n\
             PrivateTmp=yes\n\
             PrivateDevices=yes\n\
             ProtectKernelTunables=yes\n\
             ProtectKernelModules=yes\n\
             ProtectControlGroups=yes\n\
             RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\n\
             RestrictNamespaces=yes\n\
             LockPersonality=yes\n\
             MemoryDenyWriteExecute=yes\n\
             SystemCallArchitectures=native\n",
        );
    } else {
        // Root, for CAP_NET_ADMIN and raw sockets; still kept out of /home
        // and /tmp.
        text.push_str("ProtectHome=yes\nPrivateTmp=yes\n");
    }
    for dir in &unit.writes {
        // `+`: as root, before the sandbox exists; the directory must be
        // there for ReadWritePaths and owned by whoever writes it.
        let owner = if unit.root { "root" } else { "gtm" };
        let _ = writeln!(
            text,
            "ExecStartPre=+/usr/bin/install -d -o {owner} -g {owner} -m 0750 {}",
            dir.display()
        );
        if !unit.root {
            let _ = writeln!(text, "ReadWritePaths={}", dir.display());
        }
    }
    for command in &unit.pre {
        let _ = writeln!(text, "ExecStartPre=+{}", command.join(" "));
    }
    let _ = write!(
        text,
        "EnvironmentFile=-{dir}/env\n\
         ExecStart={}\n{}\
         Restart=on-failure\n\
         RestartSec=1\n\
         LimitNOFILE=1048576\n\
         TimeoutStopSec={}\n\
         \n[Install]\nWantedBy=multi-user.target\n",
        unit.service.argv.join(" "),
        // Without a reload, `systemctl reload` fails rather than ending a
        // process that SIGHUP would kill; deploy restarts those.
        if unit.service.reload == Reload::Sighup {
            "ExecReload=/bin/kill -HUP $MAINPID\n"
        } else {
            ""
        },
        unit.stop_timeout.as_secs(),
    );
    text
}
