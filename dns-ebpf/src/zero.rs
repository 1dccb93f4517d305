//! Zero-filling by 8-byte words. The compiler turns a zero-filled array into a call to the
//! runtime's `memset`, which stores one byte per loop turn (about five instructions a byte):
//! buffers on the packet path are zeroed here instead, with one store per word.

/// Zeroes `N` 8-byte words at `p`, which must be 8-byte aligned and hold them.
#[inline(always)]
pub fn words<const N: usize>(p: *mut u8) {
    let p = p as *mut u64;
    for i in 0..N {
        // SAFETY: the caller's buffer holds N aligned words; volatile, so that the stores are
        // not merged back into a `memset` call.
        unsafe { core::ptr::write_volatile(p.add(i), 0) };
    }
}

/// A zeroed 16-byte buffer, 8-byte aligned (an IPv6 address, a map key).
#[repr(C, align(8))]
pub struct Buf16(pub [u8; 16]);

impl Buf16 {
    /// Zeroes `b` in place (by words: a zeroed value moved into place becomes a `memset` call)
    /// and returns its bytes.
    #[inline(always)]
    pub fn zeroed(b: &mut core::mem::MaybeUninit<Buf16>) -> &mut [u8; 16] {
        words::<2>(b.as_mut_ptr() as *mut u8);
        // SAFETY: both words were written just now.
        unsafe { &mut (*b.as_mut_ptr()).0 }
    }
}
