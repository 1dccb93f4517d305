//! The XDP program loaded for BPF_PROG_TEST_RUN as `xdpdns serve` fills it: an engine's
//! answers (REFUSED outside its zones, CHAOS identity, every zone) in one generation, the
//! test service addresses (198.18.0.1, fd00::1), `CONFIG_NO_DNSSEC` when no zone is signed,
//! and the EDNS settings (NSID, cookie secrets, cookie clock) from the engine's configuration.

use anyhow::{Context as _, Result};
use dns_common::{Config, CONFIG_NO_DNSSEC};
use xdpdns::engine::{Engine, EngineConfig};
use xdpdns::fastpath::compile;
use xdpdns::fastpath::xdp::{Capacity, XdpServer};
use xdpdns::wire::name::Name;
use xdpdns::zone::load::{load_catalog, ZoneSpec};

/// An engine serving the example zone (`zones/example.zone`) with `config`.
pub fn example_engine(config: EngineConfig) -> Engine {
    let spec: ZoneSpec = crate::zone_file("example.zone").parse().unwrap();
    let (catalog, _) = load_catalog(&[spec]).unwrap();
    Engine::new(catalog, config)
}

/// The loaded program, and the names of every node of the engine's zones, sorted.
pub fn load(
    engine: &Engine,
    capacity: Capacity,
    generation: u16,
) -> Result<(XdpServer, Vec<Name>)> {
    load_with(engine, Some(capacity), generation)
}

/// `load` with the maps sized for the engine's zones as `xdpdns serve` sizes them (two
/// generations of the index, every template cached twice over): for zones too big for the
/// default capacities.
pub fn load_sized(engine: &Engine, generation: u16) -> Result<(XdpServer, Vec<Name>)> {
    load_with(engine, None, generation)
}

fn load_with(
    engine: &Engine,
    capacity: Option<Capacity>,
    generation: u16,
) -> Result<(XdpServer, Vec<Name>)> {
    let mut entries = compile::Entries::default();
    compile::compile_chaos(engine, generation, &mut entries);
    compile::compile_refused(engine, generation, &mut entries);
    let mut names = Vec::new();
    for z in engine.catalog.zones() {
        let st = compile::compile_zone(engine, z, generation, &mut entries);
        log::debug!("compiled {}: {st:?}", z.apex());
        names.extend(z.nodes().map(|(n, _)| n.clone()));
    }
    let capacity = capacity.unwrap_or_else(|| xdpdns::fastpath::capacity_for(&entries, None));
    let mut xdp = XdpServer::load_with_capacity(capacity)?;
    xdp.add_service_addr(crate::SERVER_V4.into())?;
    xdp.add_service_addr(crate::SERVER_V6.into())?;
    xdp.insert(&entries).context("filling the maps")?;
    let unsigned = engine.catalog.zones().all(|z| !z.is_signed());
    xdp.set_config(Config {
        port: 53,
        server_payload: engine.config.server_payload,
        generation,
        flags: if unsigned { CONFIG_NO_DNSSEC } else { 0 },
        ..Default::default()
    })?;
    xdp.set_edns(xdpdns::fastpath::edns::config(&engine.config))?;
    names.sort();
    Ok((xdp, names))
}
