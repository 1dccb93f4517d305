//! A third namespace behind the server's: the upstream side of an ISP edge, where a primary
//! runs. It is joined to the server namespace of a `TestNet` by its own veth (198.19.0.1 and
//! fd00:19::1 on the server side, 198.19.0.2 and fd00:19::2 upstream), which a test can cut and
//! restore; removed on drop. The client namespace cannot reach it: only the server can.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Result;

use crate::knot::Site;
use crate::primary::{KnotOptions, TsigKey};
use crate::{ip, veth_pair_with, TestNet, VethEnd};

/// The server's address on the upstream link.
pub const EDGE_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const EDGE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x19, 0, 0, 0, 0, 0, 1);
/// The upstream namespace's address.
pub const UPSTREAM_V4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
pub const UPSTREAM_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x19, 0, 0, 0, 0, 0, 2);
const EDGE_MAC: &str = "02:00:00:00:19:01";
const UPSTREAM_MAC: &str = "02:00:00:00:19:02";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The upstream namespace and its link to the server.
pub struct Upstream {
    pub ns: String,
    /// The server namespace, and the link's interface on each side.
    server_ns: String,
    pub edge_if: String,
    pub upstream_if: String,
}

impl Upstream {
    /// Creates the namespace and its veth to `net`'s server namespace.
    pub fn new(net: &TestNet) -> Result<Upstream> {
        Upstream::behind(&net.server_ns)
    }

    /// Creates the namespace and its veth to the server namespace `server_ns`.
    pub fn behind(server_ns: &str) -> Result<Upstream> {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let up = Upstream {
            ns: format!("xdtu{tag}"),
            server_ns: server_ns.to_owned(),
            edge_if: format!("xe{tag}"),
            upstream_if: format!("xu{tag}"),
        };
        ip(&["netns", "add", &up.ns])?;
        let edge = VethEnd {
            ns: &up.server_ns,
            ifname: &up.edge_if,
            mac: EDGE_MAC,
        };
        let upstream = VethEnd {
            ns: &up.ns,
            ifname: &up.upstream_if,
            mac: UPSTREAM_MAC,
        };
        veth_pair_with(
            &edge,
            &upstream,
            None,
            [(EDGE_V4, EDGE_V6), (UPSTREAM_V4, UPSTREAM_V6)],
        )?;
        Ok(up)
    }

    /// A knotd site in the upstream namespace on `port`, checked from the server namespace.
    pub fn site(&self, port: u16) -> Site {
        Site {
            ns: self.ns.clone(),
            listen: [
                SocketAddr::new(IpAddr::V4(UPSTREAM_V4), port),
                SocketAddr::new(IpAddr::V6(UPSTREAM_V6), port),
            ],
            probe_ns: self.server_ns.clone(),
        }
    }

    /// Cuts the link: the server side goes down, its routes to upstream with it.
    pub fn cut(&self) -> Result<()> {
        ip(&["-n", &self.server_ns, "link", "set", &self.edge_if, "down"])?;
        Ok(())
    }

    /// Restores the link (the addresses and neighbour entries a link-down flushes, too).
    pub fn restore(&self) -> Result<()> {
        let (ns, dev) = (self.server_ns.as_str(), self.edge_if.as_str());
        ip(&["-n", ns, "link", "set", dev, "up"])?;
        #[rustfmt::skip]
        ip(&["-n", ns, "addr", "replace", &format!("{EDGE_V6}/64"), "dev", dev, "nodad"])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "replace",
            &format!("{EDGE_V4}/24"),
            "dev",
            dev,
        ])?;
        for addr in [UPSTREAM_V4.to_string(), UPSTREAM_V6.to_string()] {
            #[rustfmt::skip]
            ip(&["-n", ns, "neigh", "replace", &addr, "lladdr", UPSTREAM_MAC, "dev", dev,
                 "nud", "permanent"])?;
        }
        Ok(())
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Deleting the namespace removes the veth, both ends.
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

/// knotd options for a primary in `up`'s namespace at port 53 with `key` and a journal (so it
/// serves IXFR), sending NOTIFY to the edge.
pub fn primary_options(up: &Upstream, key: TsigKey) -> KnotOptions {
    KnotOptions {
        keys: vec![key],
        journal: true,
        notify: Some(SocketAddr::new(IpAddr::V4(EDGE_V4), 53)),
        site: Some(up.site(53)),
        ..KnotOptions::default()
    }
}

/// `xdpdns serve` arguments for `zone` as a secondary of the upstream primary at port 53,
/// signed with `key`: the wildcard listen address, storage under the test's directory.
pub fn secondary_args(net: &TestNet, zone: &str, key: &TsigKey) -> Vec<String> {
    [
        "--listen".to_owned(),
        "[::]:53".to_owned(),
        "--storage".to_owned(),
        net.dir.join("storage").display().to_string(),
        "--key".to_owned(),
        format!("{}:{}:{}", key.name, key.algorithm, key.secret),
        "--primary".to_owned(),
        format!("{zone}={UPSTREAM_V4}@53,key={}", key.name),
    ]
    .into()
}
