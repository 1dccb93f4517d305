//! `xdpdns`: the operator's command line — serve, status, stats, reload, health and checks.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use anyhow::Context as _;
use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use xdpdns::daemon::config::ConfigFile;
use xdpdns::daemon::control;
use xdpdns::daemon::health;
use xdpdns::daemon::logging::{self, LogFormat};
use xdpdns::daemon::remote::{self, CliAllow, CliKey, CliNotify, CliPrimary};
use xdpdns::daemon::{self, ServeOptions};
use xdpdns::engine::EngineConfig;
use xdpdns::fastpath::xdp::AttachMode;
use xdpdns::net::TcpLimits;
use xdpdns::xfr::timers::ExpirePolicy;
use xdpdns::zone::load::ZoneSpec;

mod check;
mod ctl;
use ctl::{Ctl, MapCommand, RecordOp, ZoneCommand};

#[derive(Parser)]
#[command(
    name = "xdpdns",
    version,
    about = "Authoritative DNS server with an XDP fast path",
    after_help = "Examples:
  xdpdns serve --config /etc/xdpdns/xdpdns.toml
  xdpdns serve --iface eth0 --zone example.=zones/example.zone --metrics 127.0.0.1:9153
  xdpdns status; xdpdns stats; xdpdns reload
  xdpdns health || echo 'withdraw the anycast prefix'
  xdpdns check --config /etc/xdpdns/xdpdns.toml

Each command's --help has more (`xdpdns serve --help`)."
)]
struct Cli {
    /// Log line format on stderr: text, json (one object a line: ts, level, target, msg) or
    /// kv (logfmt). Default: [server] log-format of --config, else text.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum XdpModeArg {
    Native,
    Generic,
    Auto,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    Honour,
    ServeStale,
}

/// `serve` options; each overrides the configuration file's setting.
#[derive(Args, Clone)]
struct ServeArgs {
    /// Configuration file (TOML, see the README): server settings and zones.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Zone to serve: FILE (zone name = file name without `.zone`) or NAME=FILE. Repeatable;
    /// added to the configuration file's zones. For a --primary zone, the version to start
    /// from when storage holds none.
    #[arg(long = "zone")]
    zones: Vec<ZoneSpec>,
    /// Makes ZONE a secondary zone transferred from ADDRESS (IP, IP@PORT, IPv4:PORT or
    /// [IPv6]:PORT; port 53 by default), with the --key named by `key=`. Repeatable: a zone's
    /// primaries are tried in order, and may NOTIFY it.
    #[arg(long = "primary", value_name = "ZONE=ADDRESS[,key=NAME]")]
    primaries: Vec<CliPrimary>,
    /// Sends NOTIFY for the --primary zone ZONE to the downstream secondary at ADDRESS after
    /// each new version, signed with the --key named by `key=`. Repeatable.
    #[arg(long = "notify", value_name = "ZONE=ADDRESS[,key=NAME]")]
    notify: Vec<CliNotify>,
    /// Lets downstream secondaries in PREFIX (an address or ADDRESS/LEN) transfer the --primary
    /// zone ZONE from us (AXFR, IXFR from the journal), their requests signed with the --key
    /// named by `key=` (unsigned without it). Repeatable; the first matching rule decides, and
    /// nobody may transfer a zone without one.
    #[arg(long = "allow-transfer", value_name = "ZONE=PREFIX[,key=NAME]")]
    allow_transfer: Vec<CliAllow>,
    /// TSIG key for --primary (or a [[key]] of the configuration file): NAME:ALGORITHM:SECRET,
    /// the secret in base64, ALGORITHM one of hmac-sha1, hmac-sha256, hmac-sha384,
    /// hmac-sha512. Repeatable.
    #[arg(long = "key", value_name = "NAME:ALGORITHM:SECRET")]
    keys: Vec<CliKey>,
    /// What the --primary zones do once EXPIRE passes with no primary reached: `honour` stops
    /// serving them (SERVFAIL), `serve-stale` keeps answering from the last copy while it
    /// retries. Default: honour.
    #[arg(long, value_enum)]
    expire_policy: Option<PolicyArg>,
    /// Directory for the secondary zones' received versions and timers (one directory per
    /// zone). Default: /var/lib/xdpdns.
    #[arg(long)]
    storage: Option<PathBuf>,
    /// Interface to attach the XDP program to.
    #[arg(long)]
    iface: Option<String>,
    /// XDP attach mode; `off` serves from userspace only. Default: native.
    #[arg(long, value_enum)]
    xdp_mode: Option<XdpModeArg>,
    /// Address and port to serve on (UDP and TCP). Repeatable. An unspecified address makes
    /// the XDP path answer on every address of --iface and every address on `lo` other than
    /// 127.0.0.0/8 and ::1 (anycast: put the service addresses on `lo`). `[::]` takes IPv4 too;
    /// `0.0.0.0` IPv4 only. Userspace answers from the address each query was sent to.
    /// Default: [::]:53.
    #[arg(long)]
    listen: Vec<SocketAddr>,
    /// Another address the XDP path answers on (besides those --listen names or finds on
    /// --iface and `lo`), e.g. one in a `local` route without an interface address (AnyIP) or
    /// on another interface. Repeatable.
    #[arg(long = "service-addr", value_name = "ADDR")]
    service_addrs: Vec<IpAddr>,
    /// Control socket for `xdpdns stats`, `status` and `reload`.
    #[arg(long)]
    control: Option<PathBuf>,
    /// Largest UDP payload sent (EDNS). Default: 1232.
    #[arg(long)]
    server_payload: Option<u16>,
    /// Server identity for CH TXT id.server / hostname.bind.
    #[arg(long)]
    identity: Option<String>,
    /// Version for CH TXT version.bind; omitted = refused.
    #[arg(long = "version-string")]
    version_string: Option<String>,
    /// NSID (RFC 5001) sent to clients that ask.
    #[arg(long)]
    nsid: Option<String>,
    /// DNS Cookie secret (RFC 9018 SipHash-2-4 key, 32 hex digits), the same on every
    /// anycast instance of the zones. Default: a random one per start.
    #[arg(long, value_name = "HEX")]
    cookie_secret: Option<String>,
    /// The secret before the last rollover: cookies made with it are still accepted.
    #[arg(long, value_name = "HEX")]
    cookie_secret_previous: Option<String>,
    /// BADCOOKIE to UDP queries that send a COOKIE without a valid server cookie (BIND's
    /// require-server-cookie).
    #[arg(long)]
    require_cookie: bool,
    /// Seconds a TCP connection may wait for (the rest of) a query. Default: 10.
    #[arg(long)]
    tcp_idle_timeout: Option<u64>,
    /// Seconds a TCP client may take to accept one answer before the connection is closed.
    /// Default: 5.
    #[arg(long)]
    tcp_write_timeout: Option<u64>,
    /// Most concurrent TCP connections. Default: 1024.
    #[arg(long)]
    tcp_max_connections: Option<usize>,
    /// Most concurrent TCP connections from one source (an IPv4 address or an IPv6 /64).
    /// Default: 64.
    #[arg(long)]
    tcp_max_per_source: Option<usize>,
    /// Templates the XDP cache holds (about 0.7 KiB each, preallocated). When the zones have
    /// more answers, the most recently used stay cached and userspace promotes the ones it sees
    /// passed often. Default: every answer of two generations.
    #[arg(long)]
    xdp_capacity: Option<u32>,
    /// Cold misses of one answer within a second that promote it into the XDP cache. Default: 2.
    #[arg(long)]
    xdp_promote_after: Option<u32>,
    /// UDP worker threads per listen address (SO_REUSEPORT sockets). Default: one per CPU the
    /// process may run on.
    #[arg(long)]
    udp_workers: Option<usize>,
    /// Pin the XDP program's link at /sys/fs/bpf/xdpdns/NAME/link: the XDP path keeps
    /// answering while the daemon is down (even after SIGKILL), and the next start takes the
    /// link over atomically once its maps are filled. Default: no pinning.
    #[arg(long, value_name = "NAME")]
    xdp_pin: Option<String>,
    /// With --xdp-pin: a clean stop leaves the program attached and pinned, for the next
    /// start (an upgrade, say) to take over.
    #[arg(long)]
    keep_xdp: bool,
    /// Serve Prometheus metrics on ADDR (http://ADDR/metrics), e.g. 127.0.0.1:9153. Default:
    /// off.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Once XDP is attached and every socket bound, run as this user (its group, no
    /// supplementary groups) with only CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, no_new_privs.
    /// The storage directory is given to the user. Default: stay as started.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
}

/// The cookie settings from the secrets as written (32 hex digits each); without a secret, a
/// random one (logged: anycast instances need a shared one).
fn cookie_settings(
    secret: Option<String>,
    previous: Option<String>,
    require: bool,
) -> Result<xdpdns::engine::cookie::Cookies> {
    use xdpdns::engine::cookie;
    let secret = match secret {
        Some(s) => cookie::parse_secret(&s).context("cookie-secret")?,
        None => {
            log::info!(
                "no cookie-secret configured: DNS Cookies use a random secret until restart \
                 (anycast instances of a zone need one shared secret, --cookie-secret)"
            );
            cookie::random_secret()?
        }
    };
    let previous = previous
        .map(|p| cookie::parse_secret(&p).context("cookie-secret-previous"))
        .transpose()?;
    Ok(cookie::Cookies {
        secret,
        previous,
        require,
        clock: std::sync::Arc::new(xdpdns::xfr::timers::SystemClock),
    })
}

impl ServeArgs {
    /// Merges the command line over the configuration file.
    fn options(self) -> Result<ServeOptions> {
        let file = self.config_file()?;
        let srv = &file.server;
        let mut secondaries = file.secondaries()?;
        let mut keys = remote::keys_from(&file.key)?;
        keys.extend(self.keys.into_iter().map(|k| k.0));
        let policy = match self.expire_policy {
            Some(PolicyArg::ServeStale) => ExpirePolicy::ServeStale,
            Some(PolicyArg::Honour) | None => ExpirePolicy::Honour,
        };
        let cli_zones = self.zones;
        let is_secondary = |z: &ZoneSpec| self.primaries.iter().any(|p| p.zone == z.origin);
        let seed = |zone: &xdpdns::wire::name::Name| {
            let spec = cli_zones.iter().find(|z| z.origin == *zone);
            spec.map(|z| z.file.clone())
        };
        secondaries.extend(remote::from_cli_with(
            &self.primaries,
            &self.notify,
            &self.allow_transfer,
            &keys,
            policy,
            seed,
        )?);
        let mut zones = file.zones()?;
        zones.extend(cli_zones.iter().filter(|z| !is_secondary(z)).cloned());
        if zones.is_empty() && secondaries.is_empty() {
            bail!("no zones: give --zone, --primary or [[zone]] entries in --config");
        }
        let mode = match self.xdp_mode {
            Some(m) => m,
            None => match srv.xdp_mode.as_deref() {
                None | Some("native") => XdpModeArg::Native,
                Some("generic") => XdpModeArg::Generic,
                Some("auto") => XdpModeArg::Auto,
                Some("off") => XdpModeArg::Off,
                Some(other) => bail!("xdp-mode {other:?}: expected native, generic, auto or off"),
            },
        };
        let xdp_mode = match mode {
            XdpModeArg::Native => Some(AttachMode::Native),
            XdpModeArg::Generic => Some(AttachMode::Generic),
            XdpModeArg::Auto => Some(AttachMode::Auto),
            XdpModeArg::Off => None,
        };
        let iface = self.iface.or_else(|| srv.iface.clone());
        let xdp_pin = self.xdp_pin.or_else(|| srv.xdp_pin.clone());
        if self.keep_xdp && xdp_pin.is_none() {
            bail!("--keep-xdp needs --xdp-pin: without a pin the program goes with the daemon");
        }
        let mut listen = self.listen;
        if listen.is_empty() {
            listen = srv.listen.clone().unwrap_or_default();
        }
        if listen.is_empty() {
            listen.push("[::]:53".parse()?);
        }
        let cookie_secret = self.cookie_secret.or_else(|| srv.cookie_secret.clone());
        Ok(ServeOptions {
            cookie_secret_random: cookie_secret.is_none(),
            zones,
            secondaries,
            keys,
            storage: self
                .storage
                .or_else(|| srv.storage.clone())
                .unwrap_or_else(|| remote::DEFAULT_STORAGE.into()),
            xdp_mode: if iface.is_some() { xdp_mode } else { None },
            iface,
            listen,
            service_addrs: if self.service_addrs.is_empty() {
                srv.service_addrs.clone().unwrap_or_default()
            } else {
                self.service_addrs
            },
            control: self
                .control
                .or_else(|| srv.control.clone())
                .unwrap_or_else(|| control::DEFAULT_PATH.into()),
            engine: EngineConfig {
                server_payload: self
                    .server_payload
                    .or(srv.server_payload)
                    .unwrap_or(dns_common::DEFAULT_SERVER_PAYLOAD),
                nsid: self
                    .nsid
                    .or_else(|| srv.nsid.clone())
                    .map(String::into_bytes),
                identity: self.identity.or_else(|| srv.identity.clone()),
                version: self.version_string.or_else(|| srv.version.clone()),
                cookies: Some(cookie_settings(
                    cookie_secret,
                    self.cookie_secret_previous
                        .or_else(|| srv.cookie_secret_previous.clone()),
                    self.require_cookie || srv.require_cookie.unwrap_or(false),
                )?),
                rrl: file.rrl.as_ref().map(|r| r.limiter()).transpose()?,
            },
            tcp: TcpLimits {
                idle_timeout: Duration::from_secs(
                    self.tcp_idle_timeout
                        .or(srv.tcp_idle_timeout)
                        .unwrap_or(TcpLimits::DEFAULT_IDLE_TIMEOUT_SECS),
                ),
                write_timeout: Duration::from_secs(
                    self.tcp_write_timeout
                        .or(srv.tcp_write_timeout)
                        .unwrap_or(TcpLimits::DEFAULT_WRITE_TIMEOUT_SECS),
                ),
                max_connections: self
                    .tcp_max_connections
                    .or(srv.tcp_max_connections)
                    .unwrap_or(TcpLimits::DEFAULT_MAX_CONNECTIONS),
                max_per_source: self
                    .tcp_max_per_source
                    .or(srv.tcp_max_per_source)
                    .unwrap_or(TcpLimits::DEFAULT_MAX_PER_SOURCE),
            },
            xdp_capacity: self.xdp_capacity.or(srv.xdp_capacity),
            promote: xdpdns::fastpath::promote::Policy {
                threshold: self
                    .xdp_promote_after
                    .or(srv.xdp_promote_after)
                    .unwrap_or(2)
                    .max(1),
                ..Default::default()
            },
            udp_workers: self
                .udp_workers
                .or(srv.udp_workers)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
            metrics: self.metrics.or(srv.metrics),
            user: self.user.or_else(|| srv.user.clone()),
            xdp_pin,
            keep_xdp: self.keep_xdp,
            reconfigure: None,
        })
    }

    fn config_file(&self) -> Result<ConfigFile> {
        match &self.config {
            Some(p) => ConfigFile::load(p),
            None => Ok(ConfigFile::default()),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Load zones, attach XDP and serve DNS until SIGINT/SIGTERM.
    #[command(after_help = "Examples:
  xdpdns serve --iface eth0 --zone example.=zones/example.zone
  xdpdns serve --iface eth0 --key xfr:hmac-sha256:c2VjcmV0 \\
      --primary tld.=198.18.0.1@53,key=xfr --expire-policy serve-stale --storage /var/lib/xdpdns
  xdpdns serve --config /etc/xdpdns/xdpdns.toml   (keys, remotes and zones: see the README)
  xdpdns serve --iface eth0 --zone example.=zones/example.zone --metrics 127.0.0.1:9153 \\
      --log-format json

SIGHUP reloads the zone files (as `xdpdns reload`); SIGINT/SIGTERM stop. Under systemd
(Type=notify) it sends READY=1 once the zones are served, and watchdog pings when
WatchdogSec= is set.")]
    Serve(Box<ServeArgs>),
    /// Print the XDP and server counters of a running server.
    #[command(after_help = "Examples:
  xdpdns stats --control /run/xdpdns/xdpdns.sock | grep ^xdp.answered
  xdpdns stats --json | jq '.\"udp.queries\"'
  xdpdns stats --watch --interval 2   # rates per second: paths, answers by kind, passes by reason")]
    Stats {
        #[command(flatten)]
        ctl: Ctl,
        /// Print rates every --interval seconds instead (per path, XDP answers by kind and
        /// passes by reason), until interrupted or --count lines.
        #[arg(long)]
        watch: bool,
        /// Seconds between --watch lines.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Stop --watch after this many lines.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Print the zones and XDP state of a running server.
    #[command(after_help = "Examples:
  xdpdns status   # uptime, XDP, last reload, each zone's serial; secondary zones' refreshes
  xdpdns status --json | jq '.zones[].serial'")]
    Status {
        #[command(flatten)]
        ctl: Ctl,
    },
    /// Reload every zone of a running server from its file; on any error nothing changes.
    #[command(after_help = "Examples:
  xdpdns reload
  systemctl reload xdpdns   (sends SIGHUP, which also reads the configuration file again)")]
    Reload {
        #[command(flatten)]
        ctl: Ctl,
    },
    /// Zones served from files: reload one or all, add one, remove one.
    #[command(after_help = "Examples:
  xdpdns zone reload example.
  xdpdns zone add example.net. /etc/xdpdns/example.net.zone
  xdpdns zone remove example.net.

`zone add` and `zone remove` last until the next restart or SIGHUP (which read the
configuration file): put the zone in the configuration file to keep it.")]
    Zone {
        #[command(subcommand)]
        what: ZoneCommand,
        #[command(flatten)]
        ctl: Ctl,
    },
    /// Add or delete one record of a zone served from a file, on both paths at once.
    ///
    /// The SOA serial is incremented and the change written to the zone's journal (under
    /// --storage), which every load of the zone file replays. Refused on signed zones and
    /// secondary zones; a refused change changes nothing and says why.
    #[command(after_help = "Examples:
  xdpdns record add example. www 300 A 192.0.2.80
  xdpdns record add example. @ 3600 MX 10 mail.example.
  xdpdns record del example. www 300 A 192.0.2.80
  xdpdns record add example. txt 300 TXT '\"v=spf1 -all\"'")]
    Record {
        /// add or del.
        op: RecordOp,
        /// The zone.
        zone: String,
        /// NAME (relative to the zone unless it ends in a dot; @: the apex).
        name: String,
        /// TTL in seconds (ignored by del).
        ttl: u32,
        /// Record type (A, AAAA, NS, MX, TXT, ...).
        rtype: String,
        /// RDATA, in zone-file syntax (several words are joined by blanks).
        #[arg(required = true, num_args = 1..)]
        rdata: Vec<String>,
        #[command(flatten)]
        ctl: Ctl,
    },
    /// The names userspace is asked most often, with the reason XDP left them to it.
    ///
    /// Counted in the userspace path (one query in 4 sampled into a bounded table: the counts
    /// are estimates, the ± column the most each may be over). Reasons: tcp, xdp_off, class,
    /// edns_version, edns_option, not_query, no_xdp_answer (a name XDP has no answer for —
    /// wildcards, DNAME, ANY, NSEC3 denial —, a cold template, or an answer too big).
    #[command(after_help = "Examples:
  xdpdns top
  xdpdns top 5 --json")]
    Top {
        /// How many names.
        #[arg(default_value_t = 20)]
        n: usize,
        #[command(flatten)]
        ctl: Ctl,
    },
    /// Compare every XDP map entry with what the engine answers now (`map check`).
    ///
    /// Lists each difference (an entry missing, unexpected, or with another answer) and exits
    /// 1 when there is one; templates not in the kernel's cache are passed, never wrong, and
    /// only counted.
    #[command(after_help = "Example:
  xdpdns map check || echo 'the fast path differs from the engine'")]
    Map {
        #[command(subcommand)]
        what: MapCommand,
        #[command(flatten)]
        ctl: Ctl,
    },
    /// Detach the XDP program: userspace answers every query until the next start.
    #[command(after_help = "Example:
  xdpdns detach   # e.g. to rule the fast path out while debugging an answer")]
    Detach {
        #[command(flatten)]
        ctl: Ctl,
    },
    /// Say whether this instance may be announced (anycast health check).
    ///
    /// Exits 0 with `ok ...`, or 1 with the reason (no zone served, a zone SERVFAIL, XDP
    /// detached), or 2 if the server does not answer; one line on stdout either way.
    #[command(after_help = "Examples:
  xdpdns health
  xdpdns health --control /run/xdpdns/xdpdns.sock --timeout 2 || birdc disable anycast_dns")]
    Health {
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
        /// One JSON object instead of the line: {"healthy": bool, "verdict": line}.
        #[arg(long)]
        json: bool,
        /// Seconds to wait for the server's answer.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// Check zone files, or a configuration file and its zone files, without serving.
    ///
    /// Both are read as `serve` reads them.
    #[command(after_help = "Examples:
  xdpdns check zones/example.zone
  xdpdns check --compile example.=zones/example.zone
  xdpdns check --config /etc/xdpdns/xdpdns.toml")]
    Check {
        /// FILE or NAME=FILE.
        #[arg(required_unless_present = "config")]
        zones: Vec<ZoneSpec>,
        /// A configuration file: checked as `serve --config` reads it, and its zone files
        /// loaded.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also compile the XDP map entries and report their number and memory.
        #[arg(long)]
        compile: bool,
    },
}

/// mimalloc: zone loading and compiling make millions of small allocations, and glibc's
/// allocator spent a quarter of a 1M-delegation load in malloc and free.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    // The configuration file's log-format, for `serve --config`; the file's errors come later.
    let from_file = match &cli.command {
        Command::Serve(args) => args.config_file().ok().and_then(|f| f.server.log_format),
        _ => None,
    };
    logging::init(cli.log_format.or(from_file).unwrap_or_default());
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => {
            let again = (*args).clone();
            let mut opts = args.options()?;
            if again.config.is_some() {
                let again = std::sync::Arc::new(move || again.clone().options());
                opts.reconfigure = Some(daemon::commands::Reconfigure(again));
            }
            let r = rt.block_on(daemon::serve(opts));
            // A transfer still running on the blocking pool does not hold up the exit.
            rt.shutdown_timeout(Duration::from_secs(2));
            r
        }
        Command::Stats {
            ctl, watch: false, ..
        } => ctl.run(&rt, "stats"),
        Command::Stats {
            ctl,
            interval,
            count,
            ..
        } => xdpdns::daemon::watch::run(&rt, &ctl.control, ctl.json, interval, count),
        Command::Status { ctl } => ctl.run(&rt, "status"),
        Command::Top { n, ctl } => ctl.run(&rt, &format!("top {n}")),
        Command::Detach { ctl } => ctl.run(&rt, "detach"),
        Command::Map {
            what: MapCommand::Check,
            ctl,
        } => ctl.run(&rt, "map check"),
        Command::Reload { ctl } => ctl.run(&rt, "reload"),
        Command::Zone { what, ctl } => ctl.run(&rt, &ctl::zone_line(what)?),
        Command::Record {
            op,
            zone,
            name,
            ttl,
            rtype,
            rdata,
            ctl,
        } => ctl.run(
            &rt,
            &ctl::record_line(op, &zone, &name, ttl, &rtype, &rdata)?,
        ),
        Command::Health {
            control,
            timeout,
            json,
        } => {
            let wait = Duration::try_from_secs_f64(timeout)?;
            let verdict = rt.block_on(health::ask(&control, wait));
            ctl::print_health(&verdict, json);
            std::process::exit(verdict.exit_code());
        }
        Command::Check {
            mut zones,
            config,
            compile,
        } => {
            if let Some(path) = config {
                zones.extend(check_config(&path)?);
            }
            if !check::zones(&zones, compile) {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// Reads `path` as `serve --config` would (servers settings, keys, remotes, zones); prints
/// what it configures and returns its zone files, for checking.
fn check_config(path: &std::path::Path) -> Result<Vec<ZoneSpec>> {
    let cli = Cli::try_parse_from([
        "xdpdns".as_ref(),
        "serve".as_ref(),
        "--config".as_ref(),
        path.as_os_str(),
    ])?;
    let Command::Serve(args) = cli.command else {
        bail!("internal error: not a serve command line");
    };
    let opts = args.options()?;
    println!(
        "config {}: OK, {} zone files, {} secondary zones, listen {}, xdp {}",
        path.display(),
        opts.zones.len(),
        opts.secondaries.len(),
        opts.listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        match (&opts.iface, opts.xdp_mode) {
            (Some(i), Some(m)) => format!("{m:?} on {i}").to_lowercase(),
            _ => "off".to_owned(),
        }
    );
    for s in &opts.secondaries {
        let primaries: Vec<String> = s.primaries.iter().map(|r| r.describe()).collect();
        println!(
            "secondary zone {}: primaries {}",
            s.zone,
            primaries.join(", ")
        );
    }
    Ok(opts.zones)
}
