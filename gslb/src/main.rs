//! The `gslb` binary: parse arguments, set up logging, run the server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Authoritative GeoDNS server: serves the zones of a topology file and
/// answers geo names with the nearest healthy region's VIP.
#[derive(Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Args {
    /// The topology file (YAML).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// Validate the file, print every problem, and exit (non-zero on error).
    #[arg(long)]
    check: bool,

    /// Print the static data of zone ORIGIN as a master file and exit (to
    /// check it with kzonecheck or load it into another server).
    #[arg(long, value_name = "ORIGIN")]
    zone_file: Option<String>,

    /// With --zone-file, a signed zone as signed now: its DNSKEY RRset, an
    /// RRSIG over every RRset and an NSEC chain (for ldns-verify-zone).
    #[arg(long, requires = "zone_file")]
    signed: bool,

    /// Which of the file's `dns.nodes` this process is (needed when there
    /// are several).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,

    /// Listen here instead of the node's configured addresses (repeatable;
    /// port 0 picks a free port shared by UDP and TCP).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,

    /// Serve the admin API here instead of the node's configured `admin`.
    #[arg(long, value_name = "ADDR:PORT")]
    admin: Option<SocketAddr>,

    /// Where operator overrides and this node's last probe verdicts are
    /// persisted (default $XDG_STATE_HOME/gslb/NODE.json, or
    /// ~/.local/state/gslb/NODE.json).
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Explain the answer a client would get, without starting a server:
    /// where the client is placed, the candidate regions with distances and
    /// health, the rule that chose, and the ECS scope.
    Explain {
        /// The name asked, e.g. www.example.com.
        name: String,
        /// The client (or resolver) address.
        #[arg(long)]
        client: IpAddr,
        /// The record type asked.
        #[arg(long = "type", default_value = "A")]
        rtype: String,
    },
}

const EXAMPLES: &str = "Examples:
  gslb --config examples/three-regions.yaml
  gslb --config examples/three-regions.yaml --check
  gslb --config examples/three-regions.yaml explain www.example.com --client 81.2.69.160
  dig @127.0.0.1 -p 5353 www.example.com

Logging: RUST_LOG=debug (default info).";

/// The serving state of `topology`, for the commands that answer without
/// serving; on failure, says why and gives the exit code.
fn offline_state(topology: topology::Topology) -> Result<gslb::ServingState, ExitCode> {
    let geoip = match gslb::open_geoip(&topology) {
        Ok(geoip) => std::sync::Arc::new(geoip),
        Err(error) => {
            eprintln!("gslb: {error:#}");
            return Err(ExitCode::from(1));
        }
    };
    gslb::ServingState::new(std::sync::Arc::new(topology), geoip, None).map_err(|error| {
        eprintln!("gslb: {error}");
        ExitCode::from(1)
    })
}

/// Prints the zone at `origin` signed, or says why it cannot.
fn signed_zone_file(topology: topology::Topology, origin: topology::DomainName) -> ExitCode {
    let state = match offline_state(topology) {
        Ok(state) => state,
        Err(code) => return code,
    };
    match gslb::dns::signed_zone_file(&state, &origin, gslb::dnssec::unix_now()) {
        Some(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "gslb: zone {origin} is not signed; add a `dnssec:` block with its keys, or drop --signed"
            );
            ExitCode::from(1)
        }
    }
}

/// Exit codes: 0 ok, 1 configuration or usage error, 2 runtime failure.
fn main() -> ExitCode {
    let args = Args::parse();
    lifecycle::init_logging();
    let Some(config) = args.config.clone() else {
        eprintln!("gslb: --config FILE is required (try examples/three-regions.yaml)");
        return ExitCode::from(1);
    };
    let topology = match topology::load(&config) {
        Ok(topology) => topology,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(1);
        }
    };
    if args.check {
        let records: usize = topology.dns.zones.iter().map(|z| z.records.len()).sum();
        println!(
            "{}: ok ({} zone(s), {} record(s), {} region(s), {} node(s))",
            config.display(),
            topology.dns.zones.len(),
            records,
            topology.regions.len(),
            topology.dns.nodes.len()
        );
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Explain {
        name,
        client,
        rtype,
    }) = &args.command
    {
        return explain(topology, name, *client, rtype);
    }
    if let Some(origin) = &args.zone_file {
        let wanted = topology::DomainName::parse_absolute(origin).ok();
        let Some(zone) = topology
            .dns
            .zones
            .iter()
            .find(|z| Some(&z.origin) == wanted.as_ref())
        else {
            let origins: Vec<String> = topology
                .dns
                .zones
                .iter()
                .map(|z| z.origin.to_string())
                .collect();
            eprintln!(
                "gslb: no zone {origin:?} in the file; it has: {}",
                origins.join(", ")
            );
            return ExitCode::from(1);
        };
        if !args.signed {
            print!("{}", topology::zonefile::zone_file(&topology, zone));
            return ExitCode::SUCCESS;
        }
        let origin = zone.origin.clone();
        return signed_zone_file(topology, origin);
    }
    let node = match node_of(&topology, &args) {
        Ok(node) => node,
        Err(error) => {
            eprintln!("gslb: {error:#}");
            return ExitCode::from(1);
        }
    };
    let listen = if args.listen.is_empty() {
        node.listen.clone()
    } else {
        args.listen.clone()
    };
    let admin = args.admin.or(node.admin);
    let options = gslb::Options {
        node: node.name.clone(),
        config_path: Some(config.clone()),
        state_file: args
            .state_file
            .clone()
            .or_else(|| lifecycle::files::default_state_file("gslb", &node.name)),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gslb: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(topology, listen, admin, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!("{error:#}");
            eprintln!("gslb: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn explain(topology: topology::Topology, name: &str, client: IpAddr, rtype: &str) -> ExitCode {
    let rtype: topology::RecordType = match rtype.parse() {
        Ok(rtype) => rtype,
        Err(error) => {
            eprintln!("gslb: --type: {error}");
            return ExitCode::from(1);
        }
    };
    let health = gslb::health::RegionHealth::all_up(topology.regions.len());
    let state = match offline_state(topology) {
        Ok(state) => state,
        Err(code) => return code,
    };
    let client = gslb::client::Client::new(client, None).expect("no ECS option to reject");
    match gslb::explain::explain(&state, &health, name, rtype, client) {
        Ok(explanation) => {
            println!("{explanation}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gslb: {error}");
            ExitCode::from(1)
        }
    }
}

fn node_of(topology: &topology::Topology, args: &Args) -> anyhow::Result<topology::DnsNode> {
    let nodes = &topology.dns.nodes;
    let names = || {
        nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(match &args.node {
        Some(name) => nodes
            .iter()
            .find(|n| &n.name == name)
            .with_context(|| format!("no node {name:?} in dns.nodes; the file has: {}", names()))?
            .clone(),
        None if nodes.len() == 1 => nodes[0].clone(),
        None => anyhow::bail!(
            "the file has {} nodes ({}); say which this is with --node NAME",
            nodes.len(),
            names()
        ),
    })
}

async fn serve(
    topology: topology::Topology,
    listen: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    options: gslb::Options,
) -> anyhow::Result<()> {
    let listeners = gslb::Listeners::bind(&listen, admin).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(lifecycle::stop_on_signal(shutdown.clone()));
    gslb::run(topology, listeners, options, shutdown).await?;
    info!("stopped");
    Ok(())
}
