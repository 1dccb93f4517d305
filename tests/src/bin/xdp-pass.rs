//! `xdp-pass --iface IF`: attaches the object's pass-everything program to IF until SIGTERM or
//! SIGINT. Test helper: XDP_TX replies on veth reach a peer only when the peer runs an XDP
//! program. Prints "attached" once it is.

use std::io::Write as _;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, iface] = args.as_slice() else {
        bail!("usage: xdp-pass --iface IFACE");
    };
    if flag != "--iface" {
        bail!("usage: xdp-pass --iface IFACE");
    }
    let ebpf = xdpdns::fastpath::xdp::attach_pass(iface)?;
    println!("attached");
    std::io::stdout().flush()?;
    let mut signals = signal_hook_wait()?;
    signals.wait();
    drop(ebpf);
    Ok(())
}

/// Blocks SIGTERM and SIGINT and returns a set to wait on.
fn signal_hook_wait() -> Result<SignalWait> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block()?;
    Ok(SignalWait(set))
}

struct SignalWait(nix::sys::signal::SigSet);

impl SignalWait {
    fn wait(&mut self) {
        let _ = self.0.wait();
    }
}
