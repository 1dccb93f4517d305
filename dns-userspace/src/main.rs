//! `xdpdns`: the operator's command line — serve, status, stats and zone checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use xdpdns::control;
use xdpdns::daemon::{self, ServeOptions};
use xdpdns::engine::EngineConfig;
use xdpdns::load::{load_zone, ZoneSpec};
use xdpdns::server::TcpLimits;
use xdpdns::xdp::AttachMode;

#[derive(Parser)]
#[command(
    name = "xdpdns",
    version,
    about = "Authoritative DNS server with an XDP fast path"
)]
struct Cli {
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

#[derive(Subcommand)]
enum Command {
    /// Load zones, attach XDP and serve DNS until SIGINT/SIGTERM.
    Serve {
        /// Zone to serve: FILE (zone name = file name without `.zone`) or NAME=FILE. Repeatable.
        #[arg(long = "zone", required = true)]
        zones: Vec<ZoneSpec>,
        /// Interface to attach the XDP program to.
        #[arg(long)]
        iface: Option<String>,
        /// XDP attach mode; `off` serves from userspace only.
        #[arg(long, value_enum, default_value = "native")]
        xdp_mode: XdpModeArg,
        /// Address and port to serve on (UDP and TCP). Repeatable. An unspecified address makes
        /// the XDP path answer on every address of --iface.
        #[arg(long, default_value = "[::]:53")]
        listen: Vec<SocketAddr>,
        /// Control socket for `xdpdns stats` and `status`.
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
        /// Largest UDP payload sent (EDNS).
        #[arg(long, default_value_t = dns_common::DEFAULT_SERVER_PAYLOAD)]
        server_payload: u16,
        /// Server identity for CH TXT id.server / hostname.bind.
        #[arg(long)]
        identity: Option<String>,
        /// Version for CH TXT version.bind; omitted = refused.
        #[arg(long = "version-string")]
        version_string: Option<String>,
        /// NSID (RFC 5001) sent to clients that ask.
        #[arg(long)]
        nsid: Option<String>,
        /// TCP idle timeout in seconds.
        #[arg(long, default_value_t = 10)]
        tcp_idle_timeout: u64,
        /// Most concurrent TCP connections.
        #[arg(long, default_value_t = 1024)]
        tcp_max_connections: usize,
    },
    /// Print the XDP and server counters of a running server.
    Stats {
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Print the zones and XDP state of a running server.
    Status {
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Reload every zone of a running server from its file; on any error nothing changes.
    Reload {
        #[arg(long, default_value = control::DEFAULT_PATH)]
        control: PathBuf,
    },
    /// Attach a pass-everything XDP program to IFACE until SIGTERM/SIGINT (test helper: XDP_TX
    /// replies on veth reach a peer only when the peer runs an XDP program).
    #[command(hide = true)]
    XdpPass {
        #[arg(long)]
        iface: String,
    },
    /// Check zone files as the server would load them, without serving.
    Check {
        /// FILE or NAME=FILE.
        #[arg(required = true)]
        zones: Vec<ZoneSpec>,
    },
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve {
            zones,
            iface,
            xdp_mode,
            listen,
            control,
            server_payload,
            identity,
            version_string,
            nsid,
            tcp_idle_timeout,
            tcp_max_connections,
        } => {
            let xdp_mode = match xdp_mode {
                XdpModeArg::Native => Some(AttachMode::Native),
                XdpModeArg::Generic => Some(AttachMode::Generic),
                XdpModeArg::Auto => Some(AttachMode::Auto),
                XdpModeArg::Off => None,
            };
            let opts = ServeOptions {
                zones,
                xdp_mode: if iface.is_some() { xdp_mode } else { None },
                iface,
                listen,
                control,
                engine: EngineConfig {
                    server_payload,
                    nsid: nsid.map(String::into_bytes),
                    identity,
                    version: version_string,
                },
                tcp: TcpLimits {
                    idle_timeout: Duration::from_secs(tcp_idle_timeout),
                    max_connections: tcp_max_connections,
                },
            };
            rt.block_on(daemon::serve(opts))
        }
        Command::Stats { control } => {
            print!("{}", rt.block_on(control::request(&control, "stats"))?);
            Ok(())
        }
        Command::Status { control } => {
            print!("{}", rt.block_on(control::request(&control, "status"))?);
            Ok(())
        }
        Command::Reload { control } => {
            print!("{}", rt.block_on(control::request(&control, "reload"))?);
            Ok(())
        }
        Command::XdpPass { iface } => {
            let ebpf = xdpdns::xdp::attach_pass(&iface)?;
            println!("attached");
            std::io::Write::flush(&mut std::io::stdout())?;
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate())?;
                let mut int = signal(SignalKind::interrupt())?;
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                anyhow::Ok(())
            })?;
            drop(ebpf);
            Ok(())
        }
        Command::Check { zones } => {
            let mut failed = false;
            for z in &zones {
                match load_zone(z) {
                    Ok((zone, warnings)) => {
                        for w in warnings {
                            eprintln!("warning: {w}");
                        }
                        println!("zone {}: OK, {} names", zone.apex(), zone.len());
                    }
                    Err(e) => {
                        eprintln!("zone {}: {e:#}", z.origin);
                        failed = true;
                    }
                }
            }
            if failed {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
