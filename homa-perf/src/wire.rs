//! How homa-perf's clients tell servers the response size, per protocol.
//!
//! * Homa: the request message starts with a big-endian `u32` response code.
//! * TCP: a request frame is `[len u32][code u32]` then `len` bytes; a
//!   response frame is `[len u32]` then `len` bytes.
//! * UDP: a request datagram is `[id u64][code u32]` then padding; the
//!   response datagram starts with the same `id`.
//!
//! The code is the response length, or [`SAME`] for "as long as the request".

use std::sync::OnceLock;

use bytes::Bytes;

use crate::load::{ResponseSpec, MAX_MESSAGE};

/// Response code: answer with as many bytes as the request had.
pub const SAME: u32 = u32::MAX;

/// Largest UDP payload that fits one Ethernet-MTU packet (1500 − 20 − 8).
pub const UDP_MAX: u64 = 1472;

/// Bytes of header inside a UDP request (id + code).
pub const UDP_HEADER: usize = 12;

/// The response code for a response spec.
pub fn code(spec: ResponseSpec) -> u32 {
    match spec {
        ResponseSpec::Same => SAME,
        ResponseSpec::Fixed(n) => n as u32,
    }
}

/// The response length for a request of `len` bytes carrying `code`.
pub fn response_len(code: u32, len: usize) -> usize {
    if code == SAME {
        len
    } else {
        (code as usize).min(MAX_MESSAGE as usize)
    }
}

/// A shared buffer of zeros, long enough for any message plus headers;
/// bodies are cheap slices of it.
pub fn zeros() -> &'static Bytes {
    static Z: OnceLock<Bytes> = OnceLock::new();
    Z.get_or_init(|| Bytes::from(vec![0u8; MAX_MESSAGE as usize + 64]))
}
