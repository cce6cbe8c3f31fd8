//! The decision trace for one name and client: where the client was
//! placed, which regions were candidates (distance, health), the rule that
//! chose, and the answer. `gslb explain` prints it; the admin API serves it.

use std::fmt;

use topology::{AllDown, DomainName, RecordType, RegionId, Topology};

use crate::client::Client;
use crate::decide::{ClientLocation, Decision};
use crate::geo::GeoResolver;
use crate::health::{Load, RegionHealth};
use crate::resolve::{GeoAnswer, Outcome, Part, resolve};
use crate::state::ServingState;

/// Everything `explain` found out.
pub struct Explanation {
    question: String,
    client: Client,
    location: String,
    database: String,
    outcome: Outcome,
    answers: Vec<String>,
    decision: Option<Decision>,
    scope: Option<u8>,
    /// The region the decision's order started with, when it spilled a
    /// share of its clients, and its load.
    spilling: Option<(RegionId, Load)>,
    topology: std::sync::Arc<Topology>,
}

/// Explains the answer to `name`/`rtype` for `client` from `state`.
pub fn explain(
    state: &ServingState,
    health: &RegionHealth,
    name: &str,
    rtype: RecordType,
    client: Client,
) -> Result<Explanation, String> {
    let qname = DomainName::parse_absolute(name).map_err(|e| format!("bad name: {e}"))?;
    let geoip = state.geoip.load();
    let mut geo = GeoResolver::new(
        &state.topology,
        &geoip,
        Some(&state.scopes),
        health,
        &client,
    );
    let located = geo.locate();
    let location = describe_location(&located);
    let resolution = resolve(&state.zones, qname.wire(), rtype.code(), &mut geo);
    let answers = resolution
        .answer
        .iter()
        .flat_map(|part| match part {
            Part::Rrset { rrset, owner } => rrset
                .data
                .iter()
                .map(|data| {
                    format!(
                        "{} {} {} {}",
                        owner.as_ref().unwrap_or(rrset.name),
                        rrset.ttl,
                        rrset.rtype,
                        topology::zonefile::presentation(data)
                    )
                })
                .collect::<Vec<_>>(),
            Part::Geo {
                owner,
                rtype,
                answer,
            } => geo_lines(owner, *rtype, answer),
        })
        .collect();
    let spilling = geo.decision.as_ref().and_then(|d| {
        let order: Vec<RegionId> = d.ranked.iter().map(|r| r.region).collect();
        crate::spill::spilling(&order, health)
    });
    Ok(Explanation {
        question: format!("{qname} {rtype}"),
        client,
        location,
        database: geoip.description().to_owned(),
        outcome: resolution.outcome,
        answers,
        decision: geo.decision,
        scope: resolution.client_scope,
        spilling,
        topology: state.topology.clone(),
    })
}

/// A geo answer's records, one per line.
fn geo_lines(owner: &DomainName, rtype: RecordType, answer: &GeoAnswer) -> Vec<String> {
    let addresses = answer
        .addresses
        .iter()
        .map(|ip| format!("{owner} {} {rtype} {ip}", answer.ttl));
    let https = answer
        .https
        .iter()
        .map(|svcb| format!("{owner} {} {rtype} {}", answer.ttl, svcb.presentation()));
    addresses.chain(https).collect()
}

impl Explanation {
    /// The answer records, one per line.
    pub fn answers(&self) -> &[String] {
        &self.answers
    }

    /// The rule that ordered the regions, if a geo decision was made.
    pub fn rule(&self) -> Option<String> {
        self.decision.as_ref().map(|d| d.rule.to_string())
    }

    /// The ECS scope of the answer (0 when it does not depend on the client).
    pub fn scope(&self) -> u8 {
        self.scope.unwrap_or(0)
    }
}

/// `load 1200/s over target 800/s, share 25 %` (the share comes back
/// down by steps, so the load may already be under).
fn describe_load(load: &Load) -> String {
    let unit = load.unit.suffix();
    let relation = if load.current > load.target {
        "over"
    } else {
        "under"
    };
    format!(
        "load {}{unit} {relation} target {}{unit}, share {} %",
        load.current,
        load.target,
        (load.share() * 100.0).round()
    )
}

fn describe_location(located: &ClientLocation<'_>) -> String {
    let Some(location) = located.location else {
        return format!("unknown (no location for {})", located.network);
    };
    let mut parts = Vec::new();
    if let Some(city) = &location.city {
        parts.push(city.clone());
    }
    if let Some(country) = location.country {
        parts.push(country.to_string());
    }
    if let Some(continent) = location.continent {
        parts.push(format!("continent {continent}"));
    }
    if let Some(c) = location.coordinates {
        parts.push(format!("at {c}"));
    }
    format!("{} (same over {})", parts.join(", "), located.network)
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "question: {}", self.question)?;
        let source = if self.client.ecs.is_some() {
            "EDNS client subnet"
        } else {
            "resolver address"
        };
        writeln!(f, "client:   {} (from the {source})", self.client.network)?;
        writeln!(f, "location: {}", self.location)?;
        writeln!(f, "database: {}", self.database)?;
        if let Some(decision) = &self.decision {
            writeln!(f, "rule:     {}", decision.rule)?;
            writeln!(f, "candidates (preference order):")?;
            for (rank, candidate) in decision.ranked.iter().enumerate() {
                let region = self.topology.region(candidate.region);
                let distance = candidate
                    .distance_km
                    .map_or_else(String::new, |km| format!(" {km:>8.0} km"));
                let state = if candidate.healthy {
                    "up"
                } else {
                    "DOWN (skipped)"
                };
                let chosen = if decision.chosen.contains(&candidate.region) {
                    "  <- answered"
                } else {
                    ""
                };
                writeln!(
                    f,
                    "  {}. {:<12}{distance}  {state}{chosen}",
                    rank + 1,
                    region.name
                )?;
            }
            let name = |id: RegionId| &self.topology.region(id).name;
            match (&decision.spill, self.spilling) {
                (Some(spill), _) => writeln!(
                    f,
                    "spilled from {} ({}) to {}",
                    name(spill.from),
                    describe_load(&spill.load),
                    name(spill.to)
                )?,
                (None, Some((region, load))) => writeln!(
                    f,
                    "not spilled: {} spills a share of its clients ({}), but not this client's /{}, or no other region has room",
                    name(region),
                    describe_load(&load),
                    crate::spill::spill_network(self.client.network).len()
                )?,
                (None, None) => {}
            }
            if let Some(all_down) = &decision.all_down {
                let how = match all_down {
                    AllDown::FailOpen => "answered as if up, operator overrides still honoured",
                    AllDown::LastKnownGood => {
                        "answered with the regions in service last (fail static), operator overrides still honoured"
                    }
                    AllDown::FailClosed => "no address answered",
                    AllDown::Fallback(_) => "answered with the fixed fallback addresses",
                };
                writeln!(
                    f,
                    "every candidate is down: all_down = {all_down:?} ({how})"
                )?;
            }
        }
        writeln!(f, "rcode:    {:?}", self.outcome)?;
        if self.answers.is_empty() {
            writeln!(f, "answer:   (none)")?;
        }
        for line in &self.answers {
            writeln!(f, "answer:   {line}")?;
        }
        match self.scope {
            Some(scope) => write!(
                f,
                "ECS scope: /{scope} (the same answer holds for {})",
                geo_data::Prefix::new(self.client.network.addr(), scope)
                    .map_or_else(|_| "?".into(), |p| p.to_string())
            ),
            None => write!(
                f,
                "ECS scope: /0 (the answer does not depend on the client)"
            ),
        }
    }
}
