//! `xdpdns serve`: loads the zones, starts the XDP fast path, runs the UDP/TCP server and the
//! control socket (stats, status, reload), and on SIGINT/SIGTERM detaches and exits.

pub mod config;
pub mod control;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use dns_common::counter;
use tokio::signal::unix::{signal, SignalKind};

use crate::daemon::control::ControlSocket;
use crate::engine::{Engine, EngineConfig};
use crate::fastpath::promote::{self, Policy, PromoteStats};
use crate::fastpath::xdp::AttachMode;
use crate::fastpath::FastPath;
use crate::net::udp::Workers;
use crate::net::{self, ServerStats, SharedEngine, TcpLimits};
use crate::zone::load::{load_catalog, ZoneSpec};

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub zones: Vec<ZoneSpec>,
    pub iface: Option<String>,
    /// `None`: no XDP (userspace only).
    pub xdp_mode: Option<AttachMode>,
    pub listen: Vec<SocketAddr>,
    /// Addresses the XDP path answers on besides those `listen` names (anycast addresses that
    /// are not on `lo` or the interface, say).
    pub service_addrs: Vec<IpAddr>,
    pub control: PathBuf,
    pub engine: EngineConfig,
    pub tcp: TcpLimits,
    /// Size of the XDP template cache (`None`: room for everything).
    pub xdp_capacity: Option<u32>,
    pub promote: Policy,
    /// UDP worker threads per service address.
    pub udp_workers: usize,
}

struct State {
    engine: SharedEngine,
    xdp: Option<Mutex<FastPath>>,
    stats: Arc<ServerStats>,
    promote: Arc<PromoteStats>,
    started: Instant,
    opts: ServeOptions,
    /// Held by a reload, so that two at once cannot leave XDP and userspace on different zones.
    reloading: Mutex<()>,
}

/// Locks `m`, also after a panic while it was held: a control command that panics is
/// contained (a panic in the engine comes while a reload compiles, before the maps change),
/// and `stats`, the promoter and detaching at exit must still get at the fast path.
fn held<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Addresses configured on `iface`, and those on `lo` other than the loopback addresses: the
/// anycast service addresses, which sit on `lo` while their queries arrive on `iface`.
fn iface_addrs(iface: &str) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().context("listing interface addresses")? {
        if ifa.interface_name != iface && ifa.interface_name != "lo" {
            continue;
        }
        let Some(a) = ifa.address else { continue };
        let ip = if let Some(v4) = a.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = a.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        // 127.0.0.1 and ::1 never arrive on a NIC, and XDP must not answer spoofs of them.
        if ifa.interface_name == iface || !ip.is_loopback() {
            out.push(ip);
        }
    }
    Ok(out)
}

/// The addresses the XDP path answers on, and the port.
fn service(opts: &ServeOptions, iface: &str) -> Result<(Vec<IpAddr>, u16)> {
    let port = opts.listen[0].port();
    if opts.listen.iter().any(|l| l.port() != port) {
        bail!("all --listen addresses must use the same port for the XDP path");
    }
    let mut addrs: Vec<IpAddr> = opts.service_addrs.clone();
    for a in &opts.service_addrs {
        let heard = |l: &SocketAddr| {
            l.ip() == *a || (l.ip().is_unspecified() && (a.is_ipv4() || l.is_ipv6()))
        };
        if !opts.listen.iter().any(heard) {
            log::warn!(
                "service address {a} is on no --listen address: the queries XDP passes for it \
                 go unanswered"
            );
        }
    }
    for l in &opts.listen {
        if l.ip().is_unspecified() {
            // 0.0.0.0 takes IPv4 only; [::] both (a dual-stack socket).
            let local = iface_addrs(iface)?;
            addrs.extend(local.into_iter().filter(|a| a.is_ipv4() || l.is_ipv6()));
        } else {
            addrs.push(l.ip());
        }
    }
    addrs.sort();
    addrs.dedup();
    Ok((addrs, port))
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(opts: ServeOptions) -> Result<()> {
    if opts.zones.is_empty() {
        bail!("no zones: give at least one --zone");
    }
    if opts.listen.is_empty() {
        bail!("no --listen address");
    }
    net::contain::install_hook();
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
        sockets.push(net::bind(*l).await?);
    }
    let xdp = match (&opts.iface, opts.xdp_mode) {
        (Some(iface), Some(mode)) => {
            let (addrs, port) = service(&opts, iface)?;
            Some(Mutex::new(FastPath::start(
                &engine,
                iface,
                mode,
                &addrs,
                port,
                opts.xdp_capacity,
            )?))
        }
        (None, Some(_)) => return Err(anyhow!("XDP needs --iface (or use --xdp-mode off)")),
        _ => None,
    };
    let state = Arc::new(State {
        engine: Arc::new(RwLock::new(Arc::new(engine))),
        xdp,
        stats: Arc::new(ServerStats::default()),
        promote: Arc::new(PromoteStats::default()),
        started: Instant::now(),
        opts: opts.clone(),
        reloading: Mutex::new(()),
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut udp_sockets = Vec::new();
    for (udp, tcp) in sockets {
        udp_sockets.push(udp);
        tasks.spawn(net::serve_tcp(
            tcp,
            state.engine.clone(),
            opts.tcp,
            state.stats.clone(),
        ));
    }
    let mut udp = Workers::start(
        udp_sockets,
        opts.udp_workers,
        state.engine.clone(),
        state.stats.clone(),
    )?;
    let (st, stats) = (state.clone(), state.stats.clone());
    tasks.spawn(async move { control.serve(move |cmd| command(&st, cmd), stats).await });
    let ring = state
        .xdp
        .as_ref()
        .and_then(|x| held(x).server.take_cold_ring());
    if let Some(ring) = ring {
        let st = state.clone();
        tasks.spawn(promote::run(
            ring,
            opts.promote,
            state.promote.clone(),
            // The lock waits while a reload publishes: off the runtime's other tasks.
            move |ids| match &st.xdp {
                Some(x) => tokio::task::block_in_place(|| held(x).server.promote(ids)),
                None => Ok(0),
            },
        ));
    }
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
    udp.stop();
    if let Some(x) = &state.xdp {
        held(x).server.detach()?;
        log::info!("XDP detached");
    }
    Ok(())
}

/// Handles one control command.
fn command(state: &State, cmd: &str) -> Result<String> {
    match cmd {
        "stats" => stats_text(state),
        "status" => Ok(status_text(state)),
        "reload" => reload(state),
        // Fault injection for the tests (see engine::fault): the control task's panic is
        // contained like any other.
        #[cfg(feature = "test-support")]
        "test-panic" => panic!("fault injected for the tests: control command"),
        other => bail!("unknown command {other:?} (known: stats, status, reload)"),
    }
}

/// Reloads every zone from its file. Any error leaves everything as it was.
fn reload(state: &State) -> Result<String> {
    let _one_at_a_time = held(&state.reloading);
    let (catalog, warnings) = load_catalog(&state.opts.zones)?;
    let engine = Engine::new(catalog, state.opts.engine.clone());
    let mut out = String::new();
    for w in &warnings {
        log::warn!("{w}");
        writeln!(out, "warning: {w}")?;
    }
    if let Some(x) = &state.xdp {
        let p = held(x).publish(&engine)?;
        writeln!(
            out,
            "xdp generation {} with {} entries, {} templates ({} new, {} cached)",
            p.generation, p.entries, p.templates, p.new_templates, p.cached
        )?;
    }
    let zones = engine.catalog.zones().count();
    *state.engine.write().expect("engine lock") = Arc::new(engine);
    writeln!(out, "reloaded {zones} zones")?;
    log::info!("reloaded {zones} zones");
    Ok(out)
}

fn stats_text(state: &State) -> Result<String> {
    let mut out = String::new();
    if let Some(x) = &state.xdp {
        let c = held(x).server.counters()?;
        let answered: u64 = c[..counter::PASS_NOT_DNS as usize].iter().sum();
        let passed: u64 = c[counter::PASS_NOT_DNS as usize..].iter().sum();
        writeln!(out, "xdp.answered {answered}")?;
        writeln!(out, "xdp.passed {passed}")?;
        for (name, v) in counter::NAMES.iter().zip(&c) {
            writeln!(out, "xdp.{name} {v}")?;
        }
    }
    use std::sync::atomic::Ordering::Relaxed;
    if let Some(x) = &state.xdp {
        let (stored, cache) = held(x).server.template_counts();
        writeln!(out, "xdp.templates {stored}")?;
        writeln!(out, "xdp.template_cache {cache}")?;
        let p = &state.promote;
        writeln!(out, "xdp.cold_seen {}", p.cold_seen.load(Relaxed))?;
        writeln!(out, "xdp.promoted {}", p.promoted.load(Relaxed))?;
        writeln!(out, "xdp.promote_deferred {}", p.deferred.load(Relaxed))?;
    }
    let s = &state.stats;
    writeln!(out, "udp.queries {}", s.udp_queries.load(Relaxed))?;
    writeln!(out, "udp.responses {}", s.udp_responses.load(Relaxed))?;
    writeln!(out, "tcp.connections {}", s.tcp_connections.load(Relaxed))?;
    writeln!(out, "tcp.queries {}", s.tcp_queries.load(Relaxed))?;
    let counters = [
        ("tcp.open_connections", &s.tcp_open),
        ("tcp.refused_connections", &s.tcp_refused_connections),
        ("tcp.refused_per_source", &s.tcp_refused_per_source),
        ("tcp.accept_errors", &s.tcp_accept_errors),
        ("tcp.write_timeouts", &s.tcp_write_timeouts),
        ("udp.recv_errors", &s.udp_recv_errors),
        ("control.accept_errors", &s.control_accept_errors),
        ("userspace.panics", &s.panics),
    ];
    for (name, value) in counters {
        writeln!(out, "{name} {}", value.load(Relaxed))?;
    }
    Ok(out)
}

fn status_text(state: &State) -> String {
    let mut out = String::new();
    let engine = state.engine.read().expect("engine lock").clone();
    let _ = writeln!(out, "uptime {}s", state.started.elapsed().as_secs());
    match (&state.opts.iface, state.xdp.is_some()) {
        (Some(i), true) => {
            let (entries, (templates, cache)) = state.xdp.as_ref().map_or((0, (0, 0)), |x| {
                let x = held(x);
                (x.entries, x.server.template_counts())
            });
            let _ = writeln!(
                out,
                "xdp attached {i} ({entries} entries, {templates} templates, cache {cache})"
            );
        }
        _ => {
            let _ = writeln!(out, "xdp off");
        }
    }
    let mut zones: Vec<_> = engine.catalog.zones().collect();
    zones.sort_by(|a, b| a.apex().cmp(b.apex()));
    for z in zones {
        let soa = &z.soa().rdatas[0];
        let serial = crate::wire::record::read_name(soa)
            .and_then(|(_, a)| crate::wire::record::read_name(&soa[a..]).map(|(_, b)| a + b))
            .and_then(|off| soa.get(off..off + 4))
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
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
