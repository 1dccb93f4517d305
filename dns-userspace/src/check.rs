//! `xdpdns check`: zone files loaded as `serve` loads them, and with `--compile` the XDP
//! entries they make.

use xdpdns::engine::EngineConfig;
use xdpdns::zone::load::{load_zone, ZoneSpec};

/// Checks each zone, printing what it found; false when one failed.
pub fn zones(zones: &[ZoneSpec], compile: bool) -> bool {
    let mut failed = false;
    for z in zones {
        match load_zone(z) {
            Ok((zone, warnings)) => {
                for w in warnings {
                    eprintln!("warning: {w}");
                }
                println!("zone {}: OK, {} names", zone.apex(), zone.len());
                if compile {
                    let mut catalog = xdpdns::engine::Catalog::new();
                    catalog.insert(std::sync::Arc::new(zone));
                    let engine = xdpdns::engine::Engine::new(catalog, EngineConfig::default());
                    let t = std::time::Instant::now();
                    let mut entries = xdpdns::fastpath::compile::Entries::default();
                    let zone = engine.catalog.zones().next().expect("one zone");
                    let st =
                        xdpdns::fastpath::compile::compile_zone(&engine, zone, 1, &mut entries);
                    println!(
                        "  XDP: {} entries ({} exact, {} NODATA, {} referral, {} NXDOMAIN, {} pass markers), \
                         {} answers left to userspace; compiled in {:.2}s; map memory about {} MiB \
                         ({} bytes per entry)",
                        st.entries(),
                        st.exact,
                        st.nodata,
                        st.referral,
                        st.negative,
                        st.pass,
                        st.skipped,
                        t.elapsed().as_secs_f64(),
                        entries.memory() >> 20,
                        entries.memory() / entries.len().max(1)
                    );
                }
            }
            Err(e) => {
                eprintln!("zone {}: {e:#}", z.origin);
                failed = true;
            }
        }
    }
    !failed
}
