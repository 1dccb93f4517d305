//! The XDP program's EDNS settings (`dns_common::EdnsConfig`), made from the engine's: its NSID
//! (with the checksum sum of the NSID option, so that the program sums no buffer) and cookie
//! secrets, and the cookies' clock as an offset from CLOCK_MONOTONIC (which the
//! program reads with `bpf_ktime_get_ns`) to the engine's clock, kept current by `refresh`.

use dns_common::{
    EdnsConfig, EDNS_CONFIGURED, EDNS_COOKIES, EDNS_COOKIE_PREVIOUS, EDNS_NSID, EDNS_NSID_TOO_LONG,
    EDNS_REQUIRE_COOKIE, NSID_MAX,
};

use crate::engine::EngineConfig;

/// Nanoseconds since the epoch and of CLOCK_MONOTONIC, read together.
fn clocks() -> (i128, i128) {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    let mono = t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128;
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    (real, mono)
}

/// Wall clock minus CLOCK_MONOTONIC in nanoseconds, with the seconds of the cookies' `clock`
/// (the system clock, or the tests' clock): the program's second is then the engine's.
pub fn clock_offset(clock_now: u64) -> u64 {
    let (real, mono) = clocks();
    let real_secs = real.div_euclid(1_000_000_000);
    // The system clock may tick between the two reads: a second apart is the same clock.
    let shift = match clock_now as i128 - real_secs {
        -1..=1 => 0,
        d => d * 1_000_000_000,
    };
    (real + shift - mono) as u64
}

/// The program's EDNS settings for an engine configured so.
pub fn config(engine: &EngineConfig) -> EdnsConfig {
    let mut c = EdnsConfig::zeroed();
    c.flags = EDNS_CONFIGURED;
    if let Some(id) = &engine.nsid {
        if id.len() <= NSID_MAX {
            c.flags |= EDNS_NSID;
            c.nsid_len = id.len() as u32;
            c.nsid[..id.len()].copy_from_slice(id);
            c.nsid_sum = dns_common::nsid_option_sum(id);
            c.nsid_words = dns_common::nsid_words(id);
        } else {
            c.flags |= EDNS_NSID_TOO_LONG;
        }
    }
    if let Some(k) = &engine.cookies {
        c.flags |= EDNS_COOKIES;
        c.secret = k.secret;
        c.secret_keyed = dns_common::siphash_keyed(&k.secret);
        if let Some(p) = k.previous {
            c.flags |= EDNS_COOKIE_PREVIOUS;
            c.previous = p;
            c.previous_keyed = dns_common::siphash_keyed(&p);
        }
        if k.require {
            c.flags |= EDNS_REQUIRE_COOKIE;
        }
        c.clock_offset_ns = clock_offset(k.clock.now());
        (c.tick_second, c.tick_ns) = tick(c.clock_offset_ns);
    }
    c
}

/// The second of the cookies' clock (CLOCK_MONOTONIC plus `offset`) now, and the monotonic
/// nanoseconds at which it started (`EdnsConfig::tick_ns`).
fn tick(offset: u64) -> (u32, u64) {
    let (_, mono) = clocks();
    let second = (mono as u64).wrapping_add(offset) / 1_000_000_000;
    (second as u32, (second * 1_000_000_000).wrapping_sub(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_turns_the_monotonic_clock_into_the_cookie_clock() {
        let (real, mono) = clocks();
        let secs = (real / 1_000_000_000) as u64;
        for clock in [secs, secs + 86_400, secs - 7200] {
            let t = (mono as u64).wrapping_add(clock_offset(clock)) / 1_000_000_000;
            assert!(t.abs_diff(clock) <= 1, "{t} for {clock}");
        }
    }

    #[test]
    fn the_nsid_option_is_laid_out_and_summed_as_the_answer_carries_it() {
        for id in [&b"n"[..], b"no", b"edns-node-1", &[0xff; NSID_MAX]] {
            let c = config(&EngineConfig {
                nsid: Some(id.to_vec()),
                ..Default::default()
            });
            let option = [&[0, 3, 0, id.len() as u8][..], id].concat();
            // From the OPT record's octet 8: three octets the program writes, the option.
            let laid: Vec<u8> = c.nsid_words.iter().flat_map(|w| w.to_le_bytes()).collect();
            assert_eq!(laid[..3], [0, 0, 0]);
            assert_eq!(laid[3..3 + option.len()], option[..]);
            assert!(laid[3 + option.len()..].iter().all(|&b| b == 0));
            // RFC 1071 over the option at an even offset, in the program's word order.
            let mut sum: u32 = option
                .chunks(2)
                .map(|p| u16::from_le_bytes([p[0], p.get(1).copied().unwrap_or(0)]) as u32)
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            assert_eq!(c.nsid_sum, sum, "{id:?}");
        }
    }

    #[test]
    fn the_tick_is_the_start_of_the_cookie_clocks_second() {
        let (real, _) = clocks();
        let secs = (real / 1_000_000_000) as u64;
        for clock in [secs, secs + 86_400, secs - 7200] {
            let offset = clock_offset(clock);
            let (second, tick_ns) = tick(offset);
            assert!((second as u64).abs_diff(clock) <= 1, "{second} for {clock}");
            // The division the program saves: at the tick and just before the next second.
            for (at, want) in [
                (0, second),
                (999_999_999, second),
                (1_000_000_000, second + 1),
            ] {
                let ns = tick_ns.wrapping_add(at).wrapping_add(offset);
                assert_eq!((ns / 1_000_000_000) as u32, want);
            }
        }
    }

    #[test]
    fn long_nsids_are_left_to_userspace() {
        let mut e = EngineConfig {
            nsid: Some(vec![b'n'; NSID_MAX + 1]),
            ..Default::default()
        };
        assert_eq!(config(&e).flags, EDNS_CONFIGURED | EDNS_NSID_TOO_LONG);
        e.nsid = Some(b"node".to_vec());
        let c = config(&e);
        assert_eq!(
            (c.flags, c.nsid_len, &c.nsid[..5]),
            (EDNS_CONFIGURED | EDNS_NSID, 4, &b"node\0"[..])
        );
    }
}
