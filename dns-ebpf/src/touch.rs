//! `xdp_touch` (test build only): reads one word of each of N `TEMPLATES` slots, N and the
//! stride between them (in slots) from the frame's first two octets, from the slot its next three
//! give (little-endian), and passes the packet.
//! The bench times it in single TEST_RUN runs for the cost of first touches after the syscall
//! (`--micro-only`: "baseline: touch"): slots a page apart against slots in one page tell a
//! TLB miss from a cache miss, and slots that move with every run a line not read just before.
//! Within the TLB's reach (slots over 5 MB) all of them came to about 10 ns for 8 slots; over a
//! whole array larger than that reach (13 MB at 10k delegations), 4 slots cost about 160 ns:
//! pages read at random, as under varied names, cost more than their instructions.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

use crate::TEMPLATES;

/// Most slots read.
const TOUCH_MAX: u32 = 16;

#[xdp]
pub fn xdp_touch(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + 5 > end {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: five octets checked above.
    let [n, stride, b0, b1, b2] = unsafe { *(start as *const [u8; 5]) };
    let (n, stride) = (n as u32, stride as u32);
    let base = u32::from_le_bytes([b0, b1, b2, 0]);
    let mut sum = 0u32;
    for i in 0..TOUCH_MAX {
        if i >= n {
            break;
        }
        if let Some(a) = TEMPLATES.get_ptr(base + i * stride) {
            // SAFETY: array values stay allocated while the map exists; volatile, so the read
            // stays.
            sum = sum.wrapping_add(unsafe { core::ptr::read_volatile(&(*a).id) });
        }
    }
    // The sum decides nothing: the action is always XDP_PASS.
    xdp_action::XDP_PASS | (sum & 0)
}
