//! `xdpdns serve`: loads the zones, compiles and fills the XDP maps, attaches the program,
//! runs the UDP/TCP server and the control socket, and on SIGINT/SIGTERM detaches and exits.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use dns_common::{counter, Config};
use tokio::signal::unix::{signal, SignalKind};

use crate::compile;
use crate::control::ControlSocket;
use crate::engine::{Engine, EngineConfig};
use crate::load::{load_catalog, ZoneSpec};
use crate::server::{self, ServerStats, SharedEngine, TcpLimits};
use crate::xdp::{AttachMode, XdpServer};

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub zones: Vec<ZoneSpec>,
    pub iface: Option<String>,
    /// `None`: no XDP (userspace only).
    pub xdp_mode: Option<AttachMode>,
    pub listen: Vec<SocketAddr>,
    pub control: PathBuf,
    pub engine: EngineConfig,
    pub tcp: TcpLimits,
}

struct State {
    engine: SharedEngine,
    xdp: Option<Mutex<XdpServer>>,
    stats: Arc<ServerStats>,
    started: Instant,
    opts: ServeOptions,
    xdp_entries: usize,
}

/// Addresses configured on `iface`.
fn iface_addrs(iface: &str) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().context("listing interface addresses")? {
        if ifa.interface_name != iface {
            continue;
        }
        let Some(a) = ifa.address else { continue };
        if let Some(v4) = a.as_sockaddr_in() {
            out.push(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = a.as_sockaddr_in6() {
            out.push(IpAddr::V6(v6.ip()));
        }
    }
    Ok(out)
}

fn setup_xdp(
    opts: &ServeOptions,
    engine: &Engine,
    iface: &str,
    mode: AttachMode,
) -> Result<(XdpServer, usize)> {
    let port = opts.listen[0].port();
    if opts.listen.iter().any(|l| l.port() != port) {
        bail!("all --listen addresses must use the same port for the XDP path");
    }
    let mut addrs: Vec<IpAddr> = Vec::new();
    for l in &opts.listen {
        if l.ip().is_unspecified() {
            addrs.extend(iface_addrs(iface)?);
        } else {
            addrs.push(l.ip());
        }
    }
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        bail!("interface {iface} has no addresses for the XDP path to answer on");
    }
    let generation = 1;
    let mut entries = compile::Entries::default();
    for zone in engine.catalog.zones() {
        let s = compile::compile_zone(engine, zone, generation, &mut entries);
        log::info!(
            "zone {}: {} XDP entries ({} exact, {} NODATA, {} referral, {} NXDOMAIN, {} pass markers), {} answers left to userspace",
            zone.apex(),
            s.entries(),
            s.exact,
            s.nodata,
            s.referral,
            s.negative,
            s.pass,
            s.skipped
        );
    }
    // Room for two generations (a reload fills the new one before the old one goes).
    let mut xdp = XdpServer::load_with_capacity(
        (entries.exact.len() * 2) as u32,
        (entries.suffix.len() * 2) as u32,
    )?;
    for a in &addrs {
        xdp.add_service_addr(*a)?;
    }
    let t = Instant::now();
    xdp.insert(&entries)?;
    log::info!(
        "XDP maps filled: {} exact + {} suffix entries in {:.2}s, about {} MiB of map memory",
        entries.exact.len(),
        entries.suffix.len(),
        t.elapsed().as_secs_f64(),
        entries.memory() >> 20
    );
    xdp.set_config(Config {
        port,
        server_payload: engine.config.server_payload,
        generation,
        _pad: 0,
    })?;
    xdp.attach(iface, mode)?;
    log::info!(
        "XDP attached to {iface} ({mode:?}), answering on {} port {port}",
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((xdp, entries.len()))
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(opts: ServeOptions) -> Result<()> {
    if opts.zones.is_empty() {
        bail!("no zones: give at least one --zone");
    }
    if opts.listen.is_empty() {
        bail!("no --listen address");
    }
    let (catalog, warnings) = load_catalog(&opts.zones)?;
    for w in &warnings {
        log::warn!("{w}");
    }
    for z in catalog.zones() {
        log::info!(
            "loaded zone {} from {} ({} names)",
            z.apex(),
            z.source,
            z.len()
        );
    }
    let engine = Engine::new(catalog, opts.engine.clone());
    let control = ControlSocket::bind(&opts.control)?;
    let mut sockets = Vec::new();
    for l in &opts.listen {
        sockets.push(server::bind(*l).await?);
    }
    let (xdp, xdp_entries) = match (&opts.iface, opts.xdp_mode) {
        (Some(iface), Some(mode)) => {
            let (x, n) = setup_xdp(&opts, &engine, iface, mode)?;
            (Some(Mutex::new(x)), n)
        }
        (None, Some(_)) => return Err(anyhow!("XDP needs --iface (or use --xdp-mode off)")),
        _ => (None, 0),
    };
    let state = Arc::new(State {
        engine: Arc::new(RwLock::new(Arc::new(engine))),
        xdp,
        stats: Arc::new(ServerStats::default()),
        started: Instant::now(),
        opts: opts.clone(),
        xdp_entries,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (udp, tcp) in sockets {
        tasks.spawn(server::serve_udp(
            udp,
            state.engine.clone(),
            state.stats.clone(),
        ));
        tasks.spawn(server::serve_tcp(
            tcp,
            state.engine.clone(),
            opts.tcp,
            state.stats.clone(),
        ));
    }
    let st = state.clone();
    tasks.spawn(async move { control.serve(|cmd| command(&st, cmd)).await });
    log::info!(
        "serving on {}",
        opts.listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM: stopping"),
        _ = int.recv() => log::info!("SIGINT: stopping"),
        r = tasks.join_next() => {
            if let Some(Ok(Err(e))) = r {
                log::error!("{e:#}");
            }
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    if let Some(x) = &state.xdp {
        x.lock().expect("xdp lock").detach()?;
        log::info!("XDP detached");
    }
    Ok(())
}

/// Handles one control command.
fn command(state: &State, cmd: &str) -> Result<String> {
    match cmd {
        "stats" => stats_text(state),
        "status" => Ok(status_text(state)),
        other => bail!("unknown command {other:?} (known: stats, status)"),
    }
}

fn stats_text(state: &State) -> Result<String> {
    let mut out = String::new();
    if let Some(x) = &state.xdp {
        let c = x.lock().expect("xdp lock").counters()?;
        let answered: u64 = c[..counter::PASS_NOT_DNS as usize].iter().sum();
        let passed: u64 = c[counter::PASS_NOT_DNS as usize..].iter().sum();
        writeln!(out, "xdp.answered {answered}")?;
        writeln!(out, "xdp.passed {passed}")?;
        for (name, v) in counter::NAMES.iter().zip(&c) {
            writeln!(out, "xdp.{name} {v}")?;
        }
    }
    use std::sync::atomic::Ordering::Relaxed;
    let s = &state.stats;
    writeln!(out, "udp.queries {}", s.udp_queries.load(Relaxed))?;
    writeln!(out, "udp.responses {}", s.udp_responses.load(Relaxed))?;
    writeln!(out, "tcp.connections {}", s.tcp_connections.load(Relaxed))?;
    writeln!(out, "tcp.queries {}", s.tcp_queries.load(Relaxed))?;
    writeln!(
        out,
        "tcp.refused_connections {}",
        s.tcp_refused_connections.load(Relaxed)
    )?;
    Ok(out)
}

fn status_text(state: &State) -> String {
    let mut out = String::new();
    let engine = state.engine.read().expect("engine lock").clone();
    let _ = writeln!(out, "uptime {}s", state.started.elapsed().as_secs());
    match (&state.opts.iface, state.xdp.is_some()) {
        (Some(i), true) => {
            let _ = writeln!(out, "xdp attached {i} ({} entries)", state.xdp_entries);
        }
        _ => {
            let _ = writeln!(out, "xdp off");
        }
    }
    let mut zones: Vec<_> = engine.catalog.zones().collect();
    zones.sort_by(|a, b| a.apex().cmp(b.apex()));
    for z in zones {
        let soa = &z.soa().rdatas[0];
        let serial = crate::record::read_name(soa)
            .and_then(|(_, a)| crate::record::read_name(&soa[a..]).map(|(_, b)| a + b))
            .map(|off| u32::from_be_bytes(soa[off..off + 4].try_into().expect("soa")))
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "zone {} serial {serial} names {} signed {} file {}",
            z.apex(),
            z.len(),
            z.is_signed(),
            z.source
        );
    }
    out
}
