//! Every call into DPDK, and the only `unsafe` code of the crate.
//!
//! DPDK is reached through the C shim in `csrc/shim.c` (DPDK's fast-path
//! calls are static inline, and its structs are large and change between
//! releases), so Rust sees only opaque pointers. This module turns those
//! into owned types whose `Drop` releases them: an [`Mbuf`] is freed
//! exactly once on every path (dropped, or handed to the driver by a
//! successful [`tx_burst`]); a [`Mempool`] and a [`RingPair`] are freed
//! when dropped. Safe code elsewhere cannot create a dangling or aliased
//! DPDK pointer.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CStr, CString};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::ptr::NonNull;

/// Opaque DPDK types.
#[repr(C)]
pub(crate) struct RteMempool {
    _p: [u8; 0],
    _m: PhantomData<(*mut u8, std::marker::PhantomPinned)>,
}
#[repr(C)]
pub(crate) struct RteMbuf {
    _p: [u8; 0],
    _m: PhantomData<(*mut u8, std::marker::PhantomPinned)>,
}
#[repr(C)]
pub(crate) struct RteRing {
    _p: [u8; 0],
    _m: PhantomData<(*mut u8, std::marker::PhantomPinned)>,
}

extern "C" {
    fn homa_dpdk_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
    fn homa_dpdk_eal_cleanup() -> c_int;
    fn homa_dpdk_runtime_dir() -> *const c_char;
    fn homa_dpdk_strerror(e: c_int) -> *const c_char;
    fn homa_dpdk_errno() -> c_int;
    fn homa_dpdk_thread_register() -> c_int;
    fn homa_dpdk_thread_unregister();
    fn homa_dpdk_pool_create(
        name: *const c_char,
        n: u32,
        cache: u32,
        data_room: u16,
    ) -> *mut RteMempool;
    fn homa_dpdk_pool_free(mp: *mut RteMempool);
    fn homa_dpdk_pool_in_use(mp: *const RteMempool) -> u32;
    fn homa_dpdk_port_by_name(name: *const c_char, port: *mut u16) -> c_int;
    fn homa_dpdk_port_valid(port: u16) -> c_int;
    fn homa_dpdk_port_setup(
        port: u16,
        mp: *mut RteMempool,
        nb_rxd: u16,
        nb_txd: u16,
        mtu: u16,
    ) -> c_int;
    fn homa_dpdk_port_mac(port: u16, out: *mut u8) -> c_int;
    fn homa_dpdk_port_link(port: u16, speed_mbps: *mut u32) -> c_int;
    fn homa_dpdk_port_stats(port: u16, out: *mut u64) -> c_int;
    fn homa_dpdk_port_close(port: u16);
    fn homa_dpdk_ring_pair(
        name_a: *const c_char,
        name_b: *const c_char,
        size: u32,
        rings: *mut *mut RteRing,
        port_a: *mut u16,
        port_b: *mut u16,
    ) -> c_int;
    fn homa_dpdk_ring_free(r: *mut RteRing);
    fn homa_dpdk_rx_burst(port: u16, pkts: *mut *mut RteMbuf, n: u16) -> u16;
    fn homa_dpdk_tx_burst(port: u16, pkts: *mut *mut RteMbuf, n: u16) -> u16;
    fn homa_dpdk_mbuf_alloc(mp: *mut RteMempool) -> *mut RteMbuf;
    fn homa_dpdk_mbuf_free(m: *mut RteMbuf);
    fn homa_dpdk_mbuf_data(m: *const RteMbuf, len: *mut u32, segs: *mut u32) -> *const u8;
    fn homa_dpdk_mbuf_append(m: *mut RteMbuf, len: u16) -> *mut u8;
}

/// A negative DPDK return code as an error number.
pub(crate) type Errno = i32;

/// DPDK's text for an error number.
pub(crate) fn strerror(e: Errno) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a
    // static or thread-local NUL-terminated string, which we copy at once.
    let p = unsafe { homa_dpdk_strerror(e.abs()) };
    if p.is_null() {
        return format!("error {e}");
    }
    // SAFETY: `p` is non-null and NUL-terminated (see above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn check(r: c_int) -> Result<c_int, Errno> {
    if r < 0 {
        Err(r)
    } else {
        Ok(r)
    }
}

/// `rte_eal_init` with `args` (the program name first). The strings and
/// the argument vector are leaked: EAL may keep pointers into them for the
/// life of the process, and this runs once per process.
pub(crate) fn eal_init(args: &[String]) -> Result<(), Errno> {
    let mut argv: Vec<*mut c_char> = Vec::with_capacity(args.len() + 1);
    for a in args {
        let c = CString::new(a.as_str()).map_err(|_| -libc_einval())?;
        argv.push(c.into_raw());
    }
    argv.push(std::ptr::null_mut());
    let argc = c_int::try_from(args.len()).map_err(|_| -libc_einval())?;
    let argv = Box::leak(argv.into_boxed_slice());
    // SAFETY: argv holds argc valid NUL-terminated strings followed by a
    // NULL, all leaked, so they outlive EAL's use of them; rte_eal_init may
    // permute the array, which is ours alone.
    let r = unsafe { homa_dpdk_eal_init(argc, argv.as_mut_ptr()) };
    check(r).map(|_| ())
}

fn libc_einval() -> Errno {
    nix::errno::Errno::EINVAL as i32
}

/// `rte_eal_cleanup`: releases EAL's memory and devices. The caller makes
/// sure that nothing of DPDK is used afterwards.
pub(crate) fn eal_cleanup() -> Result<(), Errno> {
    // SAFETY: called once, after every port, pool and ring of ours is
    // released (the `Dpdk` value that calls it outlives them all).
    check(unsafe { homa_dpdk_eal_cleanup() }).map(|_| ())
}

/// EAL's runtime directory (`/var/run/dpdk/<prefix>` as root).
pub(crate) fn runtime_dir() -> Option<PathBuf> {
    // SAFETY: returns a pointer to EAL's static buffer (NUL-terminated),
    // valid after rte_eal_init; copied at once.
    let p = unsafe { homa_dpdk_runtime_dir() };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated (above).
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// Give the calling thread an lcore id, so that mempool caches work on it.
pub(crate) fn thread_register() -> bool {
    // SAFETY: rte_thread_register only touches the calling thread's state.
    unsafe { homa_dpdk_thread_register() == 0 }
}

/// Undo [`thread_register`].
pub(crate) fn thread_unregister() {
    // SAFETY: as above; harmless on an unregistered thread.
    unsafe { homa_dpdk_thread_unregister() }
}

/// A packet-buffer pool.
pub(crate) struct Mempool(NonNull<RteMempool>);

// SAFETY: DPDK mempools are safe to use from several threads at once
// (their rings are multi-producer, multi-consumer).
unsafe impl Send for Mempool {}
// SAFETY: as above.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// `n` mbufs with `data_room` bytes of buffer each.
    pub(crate) fn create(name: &str, n: u32, cache: u32, data_room: u16) -> Result<Self, Errno> {
        let c = CString::new(name).map_err(|_| -libc_einval())?;
        // SAFETY: `c` is a valid C string for the duration of the call.
        let p = unsafe { homa_dpdk_pool_create(c.as_ptr(), n, cache, data_room) };
        NonNull::new(p).map(Mempool).ok_or_else(|| {
            // SAFETY: reads the thread's rte_errno, set by the failed call.
            -unsafe { homa_dpdk_errno() }
        })
    }

    /// Mbufs of this pool not in the pool (in use somewhere).
    pub(crate) fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive while `self` is.
        unsafe { homa_dpdk_pool_in_use(self.0.as_ptr()) }
    }

    /// Allocate an empty mbuf.
    pub(crate) fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is alive; the returned mbuf (if any) is ours.
        NonNull::new(unsafe { homa_dpdk_mbuf_alloc(self.0.as_ptr()) }).map(Mbuf)
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: owned pointer, freed once. Every mbuf of this pool has
        // been freed by then: pools are dropped by `Dpdk` after the ports
        // and rings that could hold its mbufs.
        unsafe { homa_dpdk_pool_free(self.0.as_ptr()) }
    }
}

/// One packet buffer (single segment), freed when dropped.
pub(crate) struct Mbuf(NonNull<RteMbuf>);

// SAFETY: an mbuf is owned by exactly one `Mbuf`; DPDK lets any thread
// free an mbuf to its (multi-consumer) pool.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// The frame in the first segment, and the number of segments.
    pub(crate) fn data(&self) -> (&[u8], u32) {
        let mut len = 0u32;
        let mut segs = 0u32;
        // SAFETY: the mbuf is alive and ours; the shim only reads it.
        let p = unsafe { homa_dpdk_mbuf_data(self.0.as_ptr(), &mut len, &mut segs) };
        if p.is_null() || len == 0 {
            return (&[], segs);
        }
        // SAFETY: DPDK guarantees `len` (data_len) readable bytes at `p` in
        // the first segment; they live as long as the mbuf, which `&self`
        // borrows, and nothing writes them meanwhile.
        (unsafe { std::slice::from_raw_parts(p, len as usize) }, segs)
    }

    /// Grow the packet by `len` bytes and return them to be written, or
    /// `None` if the buffer has no room.
    pub(crate) fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: the mbuf is alive and exclusively ours.
        let p = unsafe { homa_dpdk_mbuf_append(self.0.as_ptr(), len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: rte_pktmbuf_append returned `len` writable bytes inside
        // the buffer; `&mut self` makes this the only reference to them.
        Some(unsafe { std::slice::from_raw_parts_mut(p, usize::from(len)) })
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: owned, never handed out (tx_burst forgets the `Mbuf`s it
        // passes to the driver), so freed exactly once.
        unsafe { homa_dpdk_mbuf_free(self.0.as_ptr()) }
    }
}

const BURST: usize = 64;

/// Receive up to `max` (at most 64) packets from queue 0 of `port` into
/// `out`; returns how many.
pub(crate) fn rx_burst(port: u16, out: &mut Vec<Mbuf>, max: usize) -> usize {
    let mut raw: [*mut RteMbuf; BURST] = [std::ptr::null_mut(); BURST];
    let n = max.min(BURST) as u16;
    // SAFETY: `raw` has room for `n` pointers; the driver fills the first
    // `got` with mbufs whose ownership passes to us.
    let got = unsafe { homa_dpdk_rx_burst(port, raw.as_mut_ptr(), n) };
    for &p in &raw[..usize::from(got)] {
        if let Some(p) = NonNull::new(p) {
            out.push(Mbuf(p));
        }
    }
    usize::from(got)
}

/// Hand a prefix of `pkts` to queue 0 of `port`; the mbufs taken are
/// removed from `pkts` (the driver owns and frees them), the rest stay
/// (freed when dropped if the caller gives up). Returns how many went.
pub(crate) fn tx_burst(port: u16, pkts: &mut Vec<Mbuf>) -> usize {
    let mut total = 0;
    while !pkts.is_empty() {
        let n = pkts.len().min(BURST);
        let mut raw: [*mut RteMbuf; BURST] = [std::ptr::null_mut(); BURST];
        for (r, m) in raw.iter_mut().zip(pkts.iter()) {
            *r = m.0.as_ptr();
        }
        // SAFETY: the first `n` entries are valid mbufs we own; the driver
        // takes ownership of the first `sent` of them.
        let sent = usize::from(unsafe { homa_dpdk_tx_burst(port, raw.as_mut_ptr(), n as u16) });
        // The driver owns those now: forget them without freeing.
        for m in pkts.drain(..sent.min(n)) {
            std::mem::forget(m);
        }
        total += sent;
        if sent < n {
            break;
        }
    }
    total
}

/// The port named `name` (a vdev or PCI device given to EAL).
pub(crate) fn port_by_name(name: &str) -> Result<u16, Errno> {
    let c = CString::new(name).map_err(|_| -libc_einval())?;
    let mut port = 0u16;
    // SAFETY: valid C string and out-pointer for the duration of the call.
    check(unsafe { homa_dpdk_port_by_name(c.as_ptr(), &mut port) })?;
    Ok(port)
}

/// Whether `port` is a port id in use.
pub(crate) fn port_valid(port: u16) -> bool {
    // SAFETY: plain lookup by value.
    unsafe { homa_dpdk_port_valid(port) != 0 }
}

/// Configure one rx and one tx queue, start the port, promiscuous mode.
pub(crate) fn port_setup(
    port: u16,
    pool: &Mempool,
    nb_rxd: u16,
    nb_txd: u16,
    mtu: u16,
) -> Result<(), Errno> {
    // SAFETY: the pool is alive and outlives the port (see `Mempool`'s
    // drop order); the rest are plain values.
    check(unsafe { homa_dpdk_port_setup(port, pool.0.as_ptr(), nb_rxd, nb_txd, mtu) }).map(|_| ())
}

/// The port's MAC address.
pub(crate) fn port_mac(port: u16) -> Result<[u8; 6], Errno> {
    let mut mac = [0u8; 6];
    // SAFETY: `mac` has the 6 bytes the shim writes.
    check(unsafe { homa_dpdk_port_mac(port, mac.as_mut_ptr()) })?;
    Ok(mac)
}

/// Link up?, and its speed in Mbit/s (0 if unknown).
pub(crate) fn port_link(port: u16) -> Result<(bool, u32), Errno> {
    let mut speed = 0u32;
    // SAFETY: valid out-pointer.
    let up = check(unsafe { homa_dpdk_port_link(port, &mut speed) })?;
    Ok((up == 1, speed))
}

/// The NIC's counters (see the shim for the order).
pub(crate) fn port_stats(port: u16) -> Result<[u64; 8], Errno> {
    let mut s = [0u64; 8];
    // SAFETY: `s` has the 8 slots the shim writes.
    check(unsafe { homa_dpdk_port_stats(port, s.as_mut_ptr()) })?;
    Ok(s)
}

/// Stop and close the port (freeing the mbufs in its queues).
pub(crate) fn port_close(port: u16) {
    // SAFETY: by value; no mbuf of ours refers to the port.
    unsafe { homa_dpdk_port_close(port) }
}

/// Two rings joined as two back-to-back ports; freed (with any mbufs left
/// in them) when dropped, which must happen after both ports are closed.
pub(crate) struct RingPair([NonNull<RteRing>; 2]);

// SAFETY: the rings are only touched by their ports' queues and by `Drop`.
unsafe impl Send for RingPair {}
// SAFETY: no method takes `&self`.
unsafe impl Sync for RingPair {}

impl RingPair {
    /// Ports named `a` and `b`, joined back to back by rings of `size`
    /// slots (a power of two).
    pub(crate) fn create(a: &str, b: &str, size: u32) -> Result<(RingPair, u16, u16), Errno> {
        let ca = CString::new(a).map_err(|_| -libc_einval())?;
        let cb = CString::new(b).map_err(|_| -libc_einval())?;
        let mut rings: [*mut RteRing; 2] = [std::ptr::null_mut(); 2];
        let (mut pa, mut pb) = (0u16, 0u16);
        // SAFETY: valid C strings and out-pointers; on failure the shim
        // frees whatever it created.
        check(unsafe {
            homa_dpdk_ring_pair(
                ca.as_ptr(),
                cb.as_ptr(),
                size,
                rings.as_mut_ptr(),
                &mut pa,
                &mut pb,
            )
        })?;
        match (NonNull::new(rings[0]), NonNull::new(rings[1])) {
            (Some(r0), Some(r1)) => Ok((RingPair([r0, r1]), pa, pb)),
            _ => Err(-libc_einval()),
        }
    }
}

impl Drop for RingPair {
    fn drop(&mut self) {
        for r in self.0 {
            // SAFETY: owned rings, freed once, after their ports closed;
            // the mbufs left in them go back to their pools, still alive.
            unsafe { homa_dpdk_ring_free(r.as_ptr()) }
        }
    }
}
