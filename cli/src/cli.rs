//! The command line: every subcommand, flag and help text, and nothing
//! else. The commands themselves live in [`crate::commands`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The topology `gtm up` and `gtm validate` read when given no file.
pub const DEFAULT_TOPOLOGY: &str = "examples/three-regions.yaml";

/// Deploy, inspect and rehearse failures of a global DNS traffic manager:
/// the GeoDNS nodes, and each region's L4 and L7 tiers and demo backends,
/// all described by one topology file and run on this machine's loopback
/// addresses.
#[derive(Parser, Debug)]
#[command(
    name = "gtm",
    version,
    about,
    long_about,
    after_help = EXAMPLES,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Where pids, logs and the deployed topology are kept
    /// [default: $XDG_STATE_HOME/gtm, else ~/.local/state/gtm].
    #[arg(long, global = true, env = "GTM_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// When to colour the output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  gtm up                                   # the three-region example, on loopback
  dig @127.0.0.1 -p 5353 www.example.com +subnet=8.8.8.0/24
  gtm dig www.example.com --from 81.2.69.160
  gtm status --watch
  gtm fail us-east                         # stop its L4 tier, measure the failover
  gtm recover us-east
  gtm down

Exit codes: 0 ok, 1 user or configuration error, 2 unexpected failure.
Admin API token: GTM_ADMIN_TOKEN (else the topology's dns.admin_token).";

/// When to colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When printing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start everything a topology file describes, wait until it is ready,
    /// and print where to point dig and curl.
    #[command(after_help = UP_EXAMPLES)]
    Up(UpArgs),
    /// Deploy a topology onto its hosts over SSH: check every host, push
    /// binaries and each host's files, start everything in dependency
    /// order across hosts and wait until it serves.
    #[command(after_help = DEPLOY_EXAMPLES)]
    Deploy(DeployArgs),
    /// Show each region (VIP, GSLB verdict and vantage views, override,
    /// tiers' health, traffic) and the DNS nodes.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Rehearse a region failure for real and print the measured timeline.
    #[command(after_help = FAIL_EXAMPLES)]
    Fail(FailArgs),
    /// Undo `gtm fail`: restart what it stopped or clear the override, and
    /// measure the time until the region is answered again.
    #[command(after_help = RECOVER_EXAMPLES)]
    Recover(RecoverArgs),
    /// Ask the GSLB a real DNS question on behalf of a client (EDNS Client
    /// Subnet), and show its explanation.
    #[command(after_help = DIG_EXAMPLES)]
    Dig(DigArgs),
    /// Check a topology file and print every problem with its field path.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate(ValidateArgs),
    /// Write each host's bundle (topology, systemd units or gtmctl,
    /// keepalived/BIRD configuration) for your own configuration management.
    #[command(after_help = RENDER_EXAMPLES)]
    Render(RenderArgs),
    /// Print a Prometheus configuration that scrapes every component's
    /// `/metrics` (jobs `gslb`, `edge-l4`, `edge-l7`; labels node, region,
    /// host), with the alerting rules of `dashboards/alerts.yml`.
    #[command(after_help = PROMETHEUS_EXAMPLES)]
    Prometheus(PrometheusArgs),
    /// Validate the deployed topology file again, then reload every running
    /// component (the GSLB through its admin API, edge nodes with SIGHUP).
    #[command(after_help = RELOAD_EXAMPLES)]
    Reload(ReloadArgs),
    /// Print a component's log (`-f` to follow).
    #[command(after_help = LOGS_EXAMPLES)]
    Logs(LogsArgs),
    /// Stop everything `gtm up` started: SIGTERM, then SIGKILL after the
    /// grace period.
    #[command(after_help = DOWN_EXAMPLES)]
    Down(DownArgs),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Create a zone's DNSSEC signing key, or show the DS record for one.
    #[command(after_help = DNSSEC_EXAMPLES)]
    Dnssec(DnssecArgs),
    /// Drain one backend server of an L7 pool (requests in flight finish,
    /// no new ones), return it, or set its weight, on every L7 node of the
    /// region.
    #[command(after_help = SERVER_EXAMPLES)]
    Server(ServerArgs),
}

const SERVER_EXAMPLES: &str = "\
Examples:
  gtm server drain us-east web 127.0.1.101:9000     # no new requests; in-flight ones finish
  gtm server undrain us-east web 127.0.1.101:9000
  gtm server weight us-east web 127.0.1.101:9000 5  # balance with weight 5 from now on
  gtm server weight us-east web 127.0.1.101:9000 --reset

Applied through each L7 node's admin API (GTM_ADMIN_TOKEN); shown by `gtm
status`. Kept across reloads, not across a node's restart.";

/// `gtm server`.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ServerCommand,
}

/// Which server of which pool of which region.
#[derive(Args, Debug, Clone)]
pub struct ServerTarget {
    /// The region whose L7 nodes to change.
    pub region: String,
    /// The pool, as the topology names it.
    pub pool: String,
    /// The server's address, as the topology writes it.
    pub server: String,
}

/// `gtm server drain | undrain | weight`.
#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Stop sending new requests to the server; requests in flight finish
    /// (the deregistration delay is theirs).
    Drain(ServerTarget),
    /// Send it requests again.
    Undrain(ServerTarget),
    /// Set the weight it balances with.
    Weight {
        /// The server.
        #[command(flatten)]
        target: ServerTarget,
        /// The weight, at least 1.
        #[arg(
            required_unless_present = "reset",
            value_parser = clap::value_parser!(u32).range(1..)
        )]
        weight: Option<u32>,
        /// Return to the weight in the topology.
        #[arg(long, conflicts_with = "weight")]
        reset: bool,
    },
}

const DNSSEC_EXAMPLES: &str = "\
Examples:
  gtm dnssec keygen example.com --dir keys/
  gtm dnssec ds example.com --key keys/Kexample.com.+013+12345.pem

keygen writes one key (a CSK: flags 257) as PKCS#8 PEM, readable by its
owner only, and prints its DNSKEY and DS records. List the file under the
zone's `dnssec.keys` in the topology, and give the DS record to the parent.";

/// `gtm dnssec`.
#[derive(Args, Debug)]
pub struct DnssecArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DnssecCommand,
}

/// `gtm dnssec keygen | ds`.
#[derive(Subcommand, Debug)]
pub enum DnssecCommand {
    /// Create a signing key for ZONE and print its DNSKEY and DS records
    /// (a CSK unless --ksk or --zsk).
    Keygen {
        /// The zone, e.g. `example.com`.
        zone: String,
        /// 13 (ECDSAP256SHA256) or 15 (ED25519).
        #[arg(long, default_value_t = 13)]
        algorithm: u8,
        /// A key signing key: signs only the DNSKEY RRset; the parent's DS
        /// names it.
        #[arg(long, conflicts_with = "zsk")]
        ksk: bool,
        /// A zone signing key: signs everything but the DNSKEY RRset; no DS.
        #[arg(long)]
        zsk: bool,
        /// Where to write the key file.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Print the DS record (SHA-256) of ZONE's key in FILE, for the parent.
    Ds {
        /// The zone, e.g. `example.com`.
        zone: String,
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

const UP_EXAMPLES: &str = "\
Examples:
  gtm up
  gtm up my-topology.yaml --state-dir /tmp/gtm-lab
  gtm up --json | jq .dns

Components start in dependency order: backends, L7 nodes, L4 nodes, then the
GSLB nodes. `gslb` and `edge` are looked up next to gtm, then on PATH.
Running `up` again (FILE defaults to the deployed one) starts only what is
not running.";

const DEPLOY_EXAMPLES: &str = "\
Examples:
  export GTM_ADMIN_TOKEN=$(openssl rand -hex 16)
  gtm deploy examples/multi-host.yaml --ssh-config /run/gtm-lab/ssh_config
  gtm deploy prod.yaml --bin-dir target/release --parallel 32

Every host is checked first (ssh, packages, addresses, interfaces); nothing
starts unless all pass. Deploying the same file again updates the hosts:
changed files are pushed and the services using them reloaded or restarted.";

const STATUS_EXAMPLES: &str = "\
Examples:
  gtm status
  gtm status --watch --interval 1s
  gtm status --matrix                # each vantage point's view of each region, and the quorum
  gtm status --json | jq '.regions[] | {name, in_service}'";

const FAIL_EXAMPLES: &str = "\
Examples:
  gtm fail us-east                   # SIGKILL its L4 node(s): the VIP stops answering
  gtm fail us-east --mode drain      # planned maintenance: GSLB override, nothing killed
  gtm fail eu-west --from 81.2.69.160 --name www.example.com
  gtm fail us-east eu-west --dry-run --client 203.0.113.7   # what would move; nothing changed

The drill watches the answers a client of the region gets, and prints: failure
injected, first probe failure, region marked down, first query answered
elsewhere, and where that traffic goes now.";

const RENDER_EXAMPLES: &str = "\
Examples:
  gtm render examples/multi-host.yaml out/
  gtm render my-topology.yaml out/ --json | jq '.hosts[] | {host, services}'

Writes OUT/HOST/ for every host of the topology's `hosts:` section: the files
to place under the host's `dir`, and a README listing its services in start
order and how to install them. `gtm deploy` pushes the same files over SSH.";

const RECOVER_EXAMPLES: &str = "\
Examples:
  gtm recover us-east
  gtm recover us-east --dry-run --client 8.8.8.8 --json";

const DIG_EXAMPLES: &str = "\
Examples:
  gtm dig www.example.com --from 8.8.8.8
  gtm dig www.example.com --from 2a02:8800::1 --type AAAA
  gtm dig www --from 49.44.0.1 --server 127.0.0.1:5353";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  gtm validate examples/three-regions.yaml
  gtm validate my.yaml --json";

const RELOAD_EXAMPLES: &str = "\
Examples:
  $EDITOR examples/three-regions.yaml && gtm reload";

const LOGS_EXAMPLES: &str = "\
Examples:
  gtm logs ns1
  gtm logs us-east-l4 -f
  gtm logs us-east-web1 -n 20";

const DOWN_EXAMPLES: &str = "\
Examples:
  gtm down
  gtm down --grace 2s";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  gtm completions bash > ~/.local/share/bash-completion/completions/gtm
  gtm completions zsh > ~/.zfunc/_gtm
  gtm completions fish > ~/.config/fish/completions/gtm.fish";

/// `gtm up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// The topology file [default: the one already deployed in the state
    /// directory, else examples/three-regions.yaml].
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How long each component may take to become ready.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub timeout: Duration,
}

/// `gtm deploy`.
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The topology file (with a `hosts:` section).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The ssh config file to use (`ssh -F FILE`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Where the `gslb` and `edge` binaries to push are [default: next to
    /// gtm, else on PATH].
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// How many hosts to work on at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub parallel: usize,
    /// How long each stage may take to become ready.
    #[arg(long, value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub timeout: Duration,
}

/// `gtm status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Refresh until interrupted (with --json: one JSON document per line).
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// Time between refreshes with --watch.
    #[arg(long, value_parser = parse_duration, default_value = "2s", value_name = "DURATION")]
    pub interval: Duration,
    /// Only the health matrix: rows regions, columns vantage points (each
    /// GSLB node), cells their view and probe latency, then the quorum.
    #[arg(long)]
    pub matrix: bool,
}

/// How `gtm fail` takes a region out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailMode {
    /// Kill the region's L4 node(s): the VIP stops answering and the GSLB's
    /// probes must notice.
    Kill,
    /// Set the GSLB override `drain` through the admin API: planned
    /// maintenance, nothing is stopped.
    Drain,
}

/// `gtm fail`.
#[derive(Args, Debug)]
pub struct FailArgs {
    /// The region to fail (several with --dry-run).
    #[arg(required = true, value_name = "REGION")]
    pub regions: Vec<String>,
    /// What-if instead of the drill.
    #[command(flatten)]
    pub what_if: DryRunArgs,
    /// How to take it out.
    #[arg(long, value_enum, default_value_t = FailMode::Kill)]
    pub mode: FailMode,
    /// A client of the region to watch (default: a well-known network near
    /// the region, checked against the GSLB's answer).
    #[arg(long, value_name = "IP")]
    pub from: Option<IpAddr>,
    /// The geo name to watch (default: the first one serving the region).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long to wait for the answers to move [default: the region's
    /// detection time plus 10s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Reason recorded with a drain override.
    #[arg(long, default_value = "gtm fail")]
    pub reason: String,
    /// Watch DNS only: send no HTTP requests. By default a client of the
    /// watched network also sends one every 200 ms to the address it holds
    /// (re-resolved when the answer's TTL runs out, as a caching resolver
    /// does), and the drill waits until they land in the new region.
    #[arg(long)]
    pub dns_only: bool,
}

/// `--dry-run` of `gtm fail` and `gtm recover`.
#[derive(Args, Debug)]
pub struct DryRunArgs {
    /// Change nothing: print the answers that would change (per continent
    /// and country, and for each --client) as the GSLB's own decision gives
    /// them; a recovered region counts as back in service.
    #[arg(long)]
    pub dry_run: bool,
    /// A client address whose answer to show before and after, with
    /// --dry-run (repeatable).
    #[arg(long = "client", value_name = "IP", requires = "dry_run")]
    pub clients: Vec<IpAddr>,
}

/// `gtm recover`.
#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// The region to bring back (several with --dry-run).
    #[arg(required = true, value_name = "REGION")]
    pub regions: Vec<String>,
    /// What-if instead of the drill.
    #[command(flatten)]
    pub what_if: DryRunArgs,
    /// How long to wait for the region to be answered again [default: the
    /// region's rise time plus 20s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Watch DNS only: send no HTTP requests. By default a client of the
    /// watched network also sends one every 200 ms to the address it holds
    /// (re-resolved when the answer's TTL runs out, as a caching resolver
    /// does), and the drill waits until they land in the new region.
    #[arg(long)]
    pub dns_only: bool,
}

/// `gtm dig`.
#[derive(Args, Debug)]
pub struct DigArgs {
    /// The name to ask (`www` is completed with the zone's origin).
    pub name: String,
    /// The client to ask for, sent as EDNS Client Subnet (/24 or /56).
    #[arg(long, value_name = "IP")]
    pub from: Option<IpAddr>,
    /// The record type.
    #[arg(long = "type", short = 't', default_value = "A", value_name = "TYPE")]
    pub rtype: String,
    /// The DNS server [default: the deployed GSLB's first address].
    #[arg(long, value_name = "ADDR:PORT")]
    pub server: Option<SocketAddr>,
    /// Ask over TCP.
    #[arg(long)]
    pub tcp: bool,
    /// A topology file to explain with when nothing is deployed.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Skip the GSLB's explanation.
    #[arg(long)]
    pub no_explain: bool,
}

/// `gtm validate`.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The topology file.
    #[arg(value_name = "FILE", default_value = DEFAULT_TOPOLOGY)]
    pub file: PathBuf,
}

/// `gtm render`.
#[derive(Args, Debug)]
pub struct RenderArgs {
    /// The topology file (with a `hosts:` section).
    #[arg(value_name = "TOPOLOGY")]
    pub file: PathBuf,
    /// Where to write one directory per host.
    #[arg(value_name = "DIR")]
    pub out: PathBuf,
}

const PROMETHEUS_EXAMPLES: &str = "\
Examples:
  gtm prometheus > prometheus.yml
  gtm prometheus examples/multi-host.yaml --interval 5s --rules /etc/prometheus/gtm-alerts.yml

The Grafana dashboard (dashboards/gtm.json) and the alerting rules
(dashboards/alerts.yml) query the labels this configuration sets.";

/// `gtm prometheus`.
#[derive(Args, Debug)]
pub struct PrometheusArgs {
    /// The topology file.
    #[arg(value_name = "FILE", default_value = DEFAULT_TOPOLOGY)]
    pub file: PathBuf,
    /// How often Prometheus scrapes and evaluates the rules.
    #[arg(long, value_parser = parse_duration, default_value = "15s", value_name = "DURATION")]
    pub interval: Duration,
    /// A rules file to load (repeatable), e.g. `dashboards/alerts.yml`.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
}

/// `gtm reload`.
#[derive(Args, Debug)]
pub struct ReloadArgs {}

/// `gtm logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The component (a DNS node, L4 or L7 node, or backend name).
    pub component: String,
    /// Keep printing what it logs until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print only the last N lines.
    #[arg(long, short = 'n', value_name = "N")]
    pub lines: Option<usize>,
}

/// `gtm down`.
#[derive(Args, Debug)]
pub struct DownArgs {
    /// How long each component may take to stop after SIGTERM before it
    /// gets SIGKILL.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub grace: Duration,
}

/// `gtm completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Durations are written as in the topology file: `500ms`, `2s`, `1m30s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    topology::duration::parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_carry_units() {
        let cli = Cli::try_parse_from(["gtm", "status", "--watch", "--interval", "500ms"]).unwrap();
        let Command::Status(args) = cli.command else {
            panic!("status")
        };
        assert_eq!(args.interval, Duration::from_millis(500));
        assert!(Cli::try_parse_from(["gtm", "down", "--grace", "5"]).is_err());
    }

    #[test]
    fn up_takes_an_optional_file() {
        let cli = Cli::try_parse_from(["gtm", "up", "--json"]).unwrap();
        assert!(cli.json);
        let Command::Up(args) = cli.command else {
            panic!("up")
        };
        assert_eq!(args.file, None);
    }

    #[test]
    fn a_server_weight_is_a_number_from_1_or_a_reset() {
        let weight = |args: &[&str]| {
            let mut all = vec![
                "gtm",
                "server",
                "weight",
                "us-east",
                "web",
                "127.0.1.101:9000",
            ];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).map(|cli| match cli.command {
                Command::Server(ServerArgs {
                    command: ServerCommand::Weight { weight, reset, .. },
                }) => (weight, reset),
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(weight(&["5"]).unwrap(), (Some(5), false));
        assert_eq!(weight(&["--reset"]).unwrap(), (None, true));
        for refused in [&["0"][..], &[], &["5", "--reset"], &["-1"]] {
            assert!(weight(refused).is_err(), "{refused:?}");
        }
        let cli = Cli::try_parse_from([
            "gtm",
            "server",
            "drain",
            "us-east",
            "web",
            "127.0.1.101:9000",
        ])
        .unwrap();
        let Command::Server(ServerArgs {
            command: ServerCommand::Drain(target),
        }) = cli.command
        else {
            panic!("drain")
        };
        assert_eq!(
            (
                target.region.as_str(),
                target.pool.as_str(),
                target.server.as_str()
            ),
            ("us-east", "web", "127.0.1.101:9000")
        );
    }
}
