//! `xdpdns serve`: loads the zones, opens the secondary zones' storage, starts the XDP fast
//! path, runs the UDP/TCP server, the secondary zones' refresh tasks and the control socket
//! (stats, status, reload), and on SIGINT/SIGTERM detaches and exits.
//! - `config`, `remote`: the configuration file, and the secondary zones it or the command line
//!   names;
//! - `served`: what is served, changed on both paths together (reload, secondary refreshes);
//! - `secondary`, `notify_in`, `clock`: the secondary zones' tasks, NOTIFY in, their clock;
//! - `report`: the replies of `stats` and `status`; `control`: the control socket;
//!   `commands`: the control commands; `record` and `changes`: live record changes to zones
//!   served from files, and their journal;
//! - `privilege`: dropping root (`--user`) once everything is bound and attached;
//! - running it at an ISP: `metrics` and `metrics_http` (Prometheus), `health` and
//!   `xdp_probe` (the anycast health check), `sd_notify` and `sighup` (systemd), `logging`.

pub mod changes;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod health;
pub mod logging;
mod metrics;
pub mod metrics_http;
pub mod notify_in;
pub mod privilege;
pub mod record;
pub mod remote;
mod report;
pub mod sd_notify;
pub mod secondary;
pub mod served;
mod sighup;
pub mod transfers;
pub mod watch;
pub mod xdp_probe;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::signal::unix::{signal, SignalKind};

use crate::daemon::clock::DaemonClock;
use crate::daemon::control::ControlSocket;
use crate::daemon::notify_in::NotifyIn;
use crate::daemon::privilege::Account;
use crate::daemon::remote::SecondarySpec;
use crate::daemon::secondary::{XfrStats, ZoneHandle};
use crate::daemon::served::{Served, Sources};
use crate::daemon::transfers::Outgoing;
use crate::engine::EngineConfig;
use crate::fastpath::promote::{self, Policy, PromoteStats};
use crate::fastpath::xdp::AttachMode;
use crate::fastpath::{pin, FastPath};
use crate::net::udp::Workers;
use crate::net::{self, Notifications, ServerStats, Service, TcpLimits, Transfers};
use crate::xfr::tsig::Key;
use crate::zone::load::ZoneSpec;

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Zones served from their files.
    pub zones: Vec<ZoneSpec>,
    pub secondaries: Vec<SecondarySpec>,
    /// Every TSIG key configured (downstreams' transfer requests and signed queries are
    /// verified against these).
    pub keys: Vec<Key>,
    /// Directory of the secondary zones' received versions, one directory per zone.
    pub storage: PathBuf,
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
    /// Address of the Prometheus endpoint (`None`: off).
    pub metrics: Option<SocketAddr>,
    /// The user to run as once everything is bound and attached (`None`: stay as started).
    pub user: Option<String>,
    /// Pin name of the XDP link (`fastpath::pin`): restarts keep the XDP path answering.
    pub xdp_pin: Option<String>,
    /// A clean stop leaves the pinned XDP program attached (for the next start to adopt).
    pub keep_xdp: bool,
    /// How SIGHUP reads the configuration again (`None`: it reloads the zone files only).
    pub reconfigure: Option<commands::Reconfigure>,
    /// No cookie secret is configured: the one in `engine` is random, made for this start
    /// (SIGHUP keeps the one serving).
    pub cookie_secret_random: bool,
}

struct State {
    served: Arc<Served>,
    stats: Arc<ServerStats>,
    promote: Arc<PromoteStats>,
    xfr: Arc<XfrStats>,
    secondaries: Vec<Arc<ZoneHandle>>,
    clock: DaemonClock,
    started: Instant,
    opts: ServeOptions,
    control: commands::Control,
}

/// Locks `m`, also after a panic while it was held: a control command that panics is
/// contained (a panic in the engine comes while a reload compiles, before the maps change),
/// and `stats`, the promoter and detaching at exit must still get at the fast path.
pub(crate) fn held<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

/// Zone names must be unique across files and secondaries.
fn check_unique(opts: &ServeOptions) -> Result<()> {
    let mut seen = HashSet::new();
    let names = opts.zones.iter().map(|z| &z.origin);
    for n in names.chain(opts.secondaries.iter().map(|s| &s.zone)) {
        if !seen.insert(n.clone()) {
            bail!("zone {n} is configured twice");
        }
    }
    Ok(())
}

/// The listen addresses, for the log.
fn listening(listen: &[SocketAddr]) -> String {
    let all: Vec<String> = listen.iter().map(|a| a.to_string()).collect();
    all.join(", ")
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(opts: ServeOptions) -> Result<()> {
    if opts.zones.is_empty() && opts.secondaries.is_empty() {
        bail!("no zones: give at least one --zone or --primary");
    }
    if opts.listen.is_empty() {
        bail!("no --listen address");
    }
    check_unique(&opts)?;
    let account = opts.user.as_deref().map(Account::lookup).transpose()?;
    net::contain::install_hook();
    let (catalog, warnings) = changes::load_files(&opts.zones, &opts.storage)?;
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
    // Secondary zones: what storage holds is served from the start, primaries or not.
    let clock = DaemonClock::from_env()?;
    // Server cookies' timestamps follow the daemon's clock (the test clock in tests).
    let mut opts = opts;
    if let Some(c) = opts.engine.cookies.as_mut() {
        c.clock = clock.clock.clone();
    }
    let opened = secondary::open(&opts.secondaries, &opts.storage, &clock)?;
    if let (Some(a), false) = (&account, opts.secondaries.is_empty()) {
        privilege::own_storage(&opts.storage, a)?;
    }
    let mut sources = Sources {
        files: catalog,
        ..Sources::default()
    };
    for o in &opened {
        let zone = o.handle.spec.zone.clone();
        sources.secondaries.insert(zone, o.serving(&clock));
    }
    let engine = sources.engine(&opts.engine);
    let control = ControlSocket::bind(&opts.control)?;
    privilege::restrict_control_socket(&opts.control)?;
    let metrics = match opts.metrics {
        Some(addr) => Some(metrics_http::bind(addr).await?),
        None => None,
    };
    let notifier = sd_notify::Notifier::from_env()?.map(Arc::new);
    let mut sockets = Vec::new();
    for l in &opts.listen {
        sockets.push(net::bind(*l).await?);
    }
    let xdp = match (&opts.iface, opts.xdp_mode) {
        (Some(iface), Some(mode)) => Some((iface.clone(), mode, service(&opts, iface)?)),
        (None, Some(_)) => return Err(anyhow!("XDP needs --iface (or use --xdp-mode off)")),
        _ => None,
    };
    match (&opts.xdp_pin, &xdp) {
        // Before userspace answers: a pinned program must not answer older zones than it.
        (Some(name), Some(_)) => pin::prepare(&engine, name, &opts.storage)?,
        (Some(name), None) => pin::release(name)?,
        _ => {}
    }
    let xfr = Arc::new(XfrStats::default());
    let state = Arc::new(State {
        served: Arc::new(Served::new(sources, engine, opts.engine.clone())),
        stats: Arc::new(ServerStats::default()),
        promote: Arc::new(PromoteStats::default()),
        xfr: xfr.clone(),
        secondaries: opened.iter().map(|o| o.handle.clone()).collect(),
        clock: clock.clone(),
        started: Instant::now(),
        opts: opts.clone(),
        control: commands::Control::new(opts.zones.clone()),
    });
    let notify: Option<Arc<dyn Notifications>> = (!state.secondaries.is_empty())
        .then(|| Arc::new(NotifyIn::new(&state.secondaries, xfr.clone())) as _);
    let transfers: Option<Arc<dyn Transfers>> = (!state.secondaries.is_empty()).then(|| {
        Arc::new(Outgoing::new(
            &state.secondaries,
            opts.keys.clone(),
            clock.clone(),
            xfr.clone(),
        )) as _
    });
    let service = Service {
        engine: state.served.engine.clone(),
        notify,
        transfers,
        tally: Some(state.control.tally.clone()),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut udp_sockets = Vec::new();
    for (udp, tcp) in sockets {
        udp_sockets.push(udp);
        tasks.spawn(net::serve_tcp(
            tcp,
            service.clone(),
            opts.tcp,
            state.stats.clone(),
        ));
    }
    let mut udp = Workers::start(udp_sockets, opts.udp_workers, service, state.stats.clone())?;
    log::info!(
        "userspace answering on {} after {:.2}s{}",
        listening(&opts.listen),
        state.started.elapsed().as_secs_f64(),
        if xdp.is_some() {
            "; XDP maps filling"
        } else {
            ""
        }
    );
    let (st, stats) = (state.clone(), state.stats.clone());
    tasks.spawn(async move {
        control
            .serve(move |cmd| commands::command(&st, cmd), stats)
            .await
    });
    if let Some(listener) = metrics {
        let st = state.clone();
        tasks.spawn(metrics_http::serve(listener, move |om| {
            metrics::render(&st, om)
        }));
    }
    // A SIGHUP while the maps fill waits for the fill (its default action would end us).
    let mut hup = signal(SignalKind::hangup())?;
    // Userspace and the control socket answer already (from storage too); XDP joins when
    // its maps are filled, off the runtime's threads.
    if let Some((iface, mode, (addrs, port))) = xdp {
        let (st, pin_name, capacity) = (state.clone(), opts.xdp_pin.clone(), opts.xdp_capacity);
        let storage = opts.storage.clone();
        tokio::task::spawn_blocking(move || {
            st.served.start_xdp(|engine| match &pin_name {
                Some(name) => {
                    pin::start(engine, &iface, mode, &addrs, port, capacity, name, &storage)
                }
                None => FastPath::start(engine, &iface, mode, &addrs, port, capacity),
            })
        })
        .await
        .map_err(|e| anyhow!("starting the XDP path: {e}"))??;
        state.control.xdp_started();
    }
    if let (Some(a), Some(name)) = (&account, &opts.xdp_pin) {
        if state.served.xdp().is_some() {
            pin::own(name, &opts.storage, a)?;
        }
    }
    if let Some(a) = &account {
        privilege::drop_to(a)?;
        let files: Vec<&std::path::Path> = opts.zones.iter().map(|z| z.file.as_path()).collect();
        let storage = (!opts.secondaries.is_empty()).then_some(opts.storage.as_path());
        privilege::check_access(storage, &files, a)?;
    }
    let ring = state
        .served
        .xdp()
        .and_then(|x| held(x).server.take_cold_ring());
    if let Some(ring) = ring {
        let (st, renew) = (state.clone(), state.clone());
        tasks.spawn(promote::run(
            ring,
            opts.promote,
            state.promote.clone(),
            // The lock waits while a reload publishes: off the runtime's other tasks.
            move |ids| match st.served.xdp() {
                Some(x) => tokio::task::block_in_place(|| held(x).server.promote(ids)),
                None => Ok(0),
            },
            // Not waiting on a publication in progress: the next window asks again.
            move || {
                let x = renew.served.xdp()?;
                x.try_lock().ok()?.server.take_cold_ring()
            },
        ));
    }
    if state.served.xdp().is_some() {
        // The XDP cookies' clock: CLOCK_MONOTONIC plus an offset to the wall clock, written
        // again every second so that a stepped or slewed wall clock is followed.
        let st = state.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                // Not waiting on a publication in progress: it writes the offset itself.
                let Some(x) = st.served.xdp() else { continue };
                let Ok(mut fp) = x.try_lock() else { continue };
                if let Err(e) = fp.refresh_clock() {
                    log::warn!("{e:#}");
                }
            }
        });
    }
    // The zones' tasks run beside the others; they never end by themselves.
    let mut zone_tasks = tokio::task::JoinSet::new();
    for o in opened {
        zone_tasks.spawn(secondary::run(
            o,
            state.served.clone(),
            xfr.clone(),
            clock.clone(),
        ));
    }
    log::info!("serving on {}", listening(&opts.listen));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    sd_notify::tell(notifier.as_deref(), "READY=1");
    let watchdog = notifier
        .as_ref()
        .and_then(|n| Some((n.clone(), n.watchdog_interval()?)));
    if let Some((n, every)) = watchdog {
        tasks.spawn(sd_notify::watchdog(n, every));
    }
    loop {
        tokio::select! {
            _ = hup.recv() => {
                sighup::reload(state.clone(), notifier.clone());
                continue;
            }
            _ = term.recv() => log::info!("SIGTERM: stopping"),
            _ = int.recv() => log::info!("SIGINT: stopping"),
            r = tasks.join_next() => {
                if let Some(Ok(Err(e))) = r {
                    log::error!("{e:#}");
                }
            }
        }
        break;
    }
    sd_notify::tell(notifier.as_deref(), "STOPPING=1");
    tasks.abort_all();
    zone_tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    while zone_tasks.join_next().await.is_some() {}
    udp.stop();
    if let Some(x) = state.served.xdp() {
        let what = pin::stop(&mut held(x), opts.xdp_pin.as_deref(), opts.keep_xdp)?;
        log::info!("{what}");
    }
    Ok(())
}
