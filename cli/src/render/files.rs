//! The topology text and the files it references (L7 certificates, keys
//! and shared ticket keys, pools' backend TLS files, demo backends'
//! certificates and keys, the GeoIP database),
//! each for the hosts whose services read it,
//! at the same path relative to the topology as on the operator's side.

use std::path::{Component, Path, PathBuf};

use topology::hosts::Host;
use topology::tiers::l7::BackendTrust;
use topology::{GeoIpSource, Topology};

use super::BundleFile;
use crate::error::user;

/// The topology's path in a bundle; services run `--config {dir}/topology.yaml`.
pub const TOPOLOGY: &str = "topology.yaml";

/// The files `host`'s services read besides the topology: its regions' L7
/// certificates, keys and ticket keys, and its pools' backend CA files and
/// client certificates and keys (keys secret) on hosts with an L7 node, a
/// demo backend's certificate and key on its host, the GeoIP
/// database on hosts with a DNS node. Absolute paths are the operator's to
/// provide on the host and are not bundled.
pub fn referenced(
    topology: &Topology,
    topology_path: &Path,
    host: &Host,
) -> anyhow::Result<Vec<BundleFile>> {
    let base = topology_path.parent().unwrap_or(Path::new(""));
    let on_host = |h: &Option<String>| h.as_deref() == Some(host.name.as_str());
    // (field path, path as written, secret)
    let mut wanted: Vec<(String, PathBuf, bool)> = Vec::new();
    for region in &topology.regions {
        for (index, backend) in region.backends.iter().enumerate() {
            let Some(tls) = backend.tls.as_ref().filter(|_| on_host(&backend.host)) else {
                continue;
            };
            let field = format!("regions.{}.backends[{index}].tls", region.name);
            wanted.push((format!("{field}.cert"), tls.cert.cert.clone(), false));
            wanted.push((format!("{field}.key"), tls.cert.key.clone(), true));
        }
        let Some(l7) = &region.l7 else { continue };
        if !l7.nodes.iter().any(|node| on_host(&node.host)) {
            continue;
        }
        if let Some(tls) = &l7.tls {
            for (index, cert) in tls.certs.iter().enumerate() {
                let field = format!("regions.{}.l7.tls.certs[{index}]", region.name);
                wanted.push((format!("{field}.cert"), cert.cert.clone(), false));
                wanted.push((format!("{field}.key"), cert.key.clone(), true));
            }
            if let Some(keys) = &tls.ticket_keys {
                let field = format!("regions.{}.l7.tls.ticket_keys", region.name);
                wanted.push((field, keys.clone(), true));
            }
        }
        for pool in &l7.pools {
            let Some(tls) = &pool.tls else { continue };
            let field = format!("regions.{}.l7.pools.{}.tls", region.name, pool.name);
            if let BackendTrust::CaFile(ca) = &tls.trust {
                wanted.push((format!("{field}.ca"), ca.clone(), false));
            }
            if let Some(client) = &tls.client_cert {
                wanted.push((format!("{field}.cert"), client.cert.clone(), false));
                wanted.push((format!("{field}.key"), client.key.clone(), true));
            }
        }
    }
    if topology.dns.nodes.iter().any(|node| on_host(&node.host)) {
        // Loading made both relative to the topology file's directory.
        let written = |path: &Path| path.strip_prefix(base).unwrap_or(path).to_path_buf();
        if let GeoIpSource::File(db) = &topology.dns.geoip {
            wanted.push(("dns.geoip".into(), written(db), false));
        }
        if let Some(key) = &topology.dns.peer_key {
            wanted.push(("dns.peer_key".into(), written(key), true));
        }
    }
    let mut files: Vec<BundleFile> = Vec::new();
    for (field, path, secret) in wanted {
        if path.is_absolute() || files.iter().any(|f| f.path == path) {
            continue;
        }
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(user(format!(
                "{field}: {} leaves the topology's directory, so it has no place in the host's bundle; \
                 copy the file beside the topology (or below it), or give an absolute path that exists on host {}",
                path.display(),
                host.name
            )));
        }
        let contents = std::fs::read(base.join(&path)).map_err(|e| {
            user(format!(
                "{field}: cannot read {} (relative to the topology file): {e}",
                base.join(&path).display()
            ))
        })?;
        files.push(BundleFile {
            path,
            contents,
            mode: if secret { 0o600 } else { 0o644 },
            secret,
        });
    }
    Ok(files)
}
