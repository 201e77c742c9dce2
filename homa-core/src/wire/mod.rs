//! The Linux kernel Homa wire format.
//!
//! Every packet starts with a 28-byte common header laid out like a TCP
//! header (so NICs can segment it), followed by a body that depends on the
//! type. All fields are big-endian and packed. Over UDP the same bytes are the
//! UDP payload; over raw IP they follow an IPv4 header with protocol 146.
//!
//! Each type has a checked zero-copy view over `AsRef<[u8]>` (smoltcp style:
//! `new_checked` verifies the length and type once, after which **no getter
//! can panic**) and a `Repr` with `parse` / `emit`. [`Repr`] ties the nine
//! types together.
//!
//! ```
//! use homa_core::wire::{Common, GrantRepr, Repr};
//! let grant = Repr::Grant(GrantRepr {
//!     common: Common { sport: 40000, dport: 80, sender_id: 43 },
//!     offset: 20_000,
//!     priority: 3,
//! });
//! let mut buf = [0u8; 33];
//! grant.emit(&mut buf);
//! assert_eq!(Repr::parse(&buf), Ok(grant));
//! ```

mod ack;
mod common;
mod control;
mod cutoffs;
mod data;
mod grant;
mod resend;

pub use ack::{AckPacket, AckRepr};
pub use common::CommonHeader;
pub use control::ControlPacket;
pub use cutoffs::{CutoffsPacket, CutoffsRepr};
pub use data::{DataPacket, DataRepr};
pub use grant::{GrantPacket, GrantRepr};
pub use resend::{ResendPacket, ResendRepr};

use core::fmt;

/// Length of the common header.
pub const COMMON_HEADER_LEN: usize = 28;
/// Length of a DATA header (the payload follows it).
pub const DATA_HEADER_LEN: usize = 56;
/// Length of a GRANT packet.
pub const GRANT_LEN: usize = 33;
/// Length of a RESEND packet.
pub const RESEND_LEN: usize = 37;
/// Length of a CUTOFFS packet.
pub const CUTOFFS_LEN: usize = 62;
/// Length of an ACK packet.
pub const ACK_LEN: usize = 80;
/// Largest header of any type.
pub const MAX_HEADER_LEN: usize = 80;
/// Acks an ACK packet carries at most.
pub const MAX_ACKS: usize = 5;
/// DATA flag (in `pad[0]`, which Linux ignores): the client has many RPCs
/// outstanding; answer with few unscheduled bytes (incast control).
pub const DATA_FLAG_INCAST: u8 = 0x01;

/// Why bytes are not a valid Homa packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the common header.
    TooShort(usize),
    /// Shorter than its type's header.
    Truncated {
        /// The packet's type.
        ty: PacketType,
        /// Bytes present.
        len: usize,
        /// Bytes its header needs.
        need: usize,
    },
    /// Unknown type byte.
    UnknownType(u8),
    /// A view was asked for on a packet of another type.
    WrongType(u8),
    /// ACK with more than [`MAX_ACKS`] acks.
    TooManyAcks(u16),
}

impl fmt::Display for WireError {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooShort(n) => {
                write!(
                    f,
                    "{n} bytes is shorter than the {COMMON_HEADER_LEN}-byte common header"
                )
            }
            WireError::Truncated { ty, len, need } => {
                write!(
                    f,
                    "{} packet of {len} bytes is shorter than its {need}-byte header",
                    ty.name()
                )
            }
            WireError::UnknownType(t) => write!(f, "unknown packet type {t:#04x}"),
            WireError::WrongType(t) => write!(f, "packet type {t:#04x} is not the expected type"),
            WireError::TooManyAcks(n) => write!(f, "ACK claims {n} acks (at most {MAX_ACKS})"),
        }
    }
}

impl std::error::Error for WireError {}

/// The nine packet types and their codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Message data.
    Data = 0x10,
    /// Permission to send more of a message.
    Grant = 0x11,
    /// Request to retransmit a range.
    Resend = 0x12,
    /// The sender knows no such RPC.
    RpcUnknown = 0x13,
    /// The sender is alive but has nothing to send yet.
    Busy = 0x14,
    /// The receiver's unscheduled priority cutoffs.
    Cutoffs = 0x15,
    /// Debugging aid; ignored.
    Freeze = 0x16,
    /// A server asks a client to acknowledge an RPC.
    NeedAck = 0x17,
    /// A client acknowledges finished RPCs.
    Ack = 0x18,
}

impl PacketType {
    /// All types, in code order.
    pub const ALL: [PacketType; 9] = [
        PacketType::Data,
        PacketType::Grant,
        PacketType::Resend,
        PacketType::RpcUnknown,
        PacketType::Busy,
        PacketType::Cutoffs,
        PacketType::Freeze,
        PacketType::NeedAck,
        PacketType::Ack,
    ];

    /// The type for a code, if it is one.
    #[inline]
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0x10..=0x18 => Some(Self::ALL[(v - 0x10) as usize]),
            _ => None,
        }
    }

    /// Length of this type's header (for DATA, without the payload).
    #[inline]
    pub fn header_len(self) -> usize {
        match self {
            PacketType::Data => DATA_HEADER_LEN,
            PacketType::Grant => GRANT_LEN,
            PacketType::Resend => RESEND_LEN,
            PacketType::Cutoffs => CUTOFFS_LEN,
            PacketType::Ack => ACK_LEN,
            PacketType::RpcUnknown
            | PacketType::Busy
            | PacketType::Freeze
            | PacketType::NeedAck => COMMON_HEADER_LEN,
        }
    }

    /// The Linux name of the type.
    #[inline]
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Data => "DATA",
            PacketType::Grant => "GRANT",
            PacketType::Resend => "RESEND",
            PacketType::RpcUnknown => "RPC_UNKNOWN",
            PacketType::Busy => "BUSY",
            PacketType::Cutoffs => "CUTOFFS",
            PacketType::Freeze => "FREEZE",
            PacketType::NeedAck => "NEED_ACK",
            PacketType::Ack => "ACK",
        }
    }
}

/// The fields of the common header that carry meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Common {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// RPC id as the sender of this packet knows it.
    pub sender_id: u64,
}

/// One acknowledged RPC: `client_id` 0 means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AckRecord {
    /// The client's id of the RPC.
    pub client_id: u64,
    /// The server port the RPC went to.
    pub server_port: u16,
}

/// Any Homa packet header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// DATA (the payload is the rest of the packet).
    Data(DataRepr),
    /// GRANT.
    Grant(GrantRepr),
    /// RESEND.
    Resend(ResendRepr),
    /// RPC_UNKNOWN.
    RpcUnknown(Common),
    /// BUSY.
    Busy(Common),
    /// CUTOFFS.
    Cutoffs(CutoffsRepr),
    /// FREEZE.
    Freeze(Common),
    /// NEED_ACK.
    NeedAck(Common),
    /// ACK.
    Ack(AckRepr),
}

impl Repr {
    /// Parse a packet. For DATA the payload is `packet[DATA_HEADER_LEN..]`;
    /// for the other types bytes past the header are ignored.
    ///
    /// # Errors
    /// A [`WireError`] if the packet is too short, of unknown type, or has a
    /// malformed field. Never panics, whatever the bytes.
    #[inline]
    pub fn parse(packet: &[u8]) -> Result<Repr, WireError> {
        let header = CommonHeader::new_checked(packet)?;
        let ty = header.packet_type()?;
        let need = ty.header_len();
        if packet.len() < need {
            return Err(WireError::Truncated {
                ty,
                len: packet.len(),
                need,
            });
        }
        // Length and type are checked: the typed views need no second check.
        Ok(match ty {
            PacketType::Data => Repr::Data(DataRepr::parse(&DataPacket::new_unchecked(packet))),
            PacketType::Grant => Repr::Grant(GrantRepr::parse(&GrantPacket::new_unchecked(packet))),
            PacketType::Resend => {
                Repr::Resend(ResendRepr::parse(&ResendPacket::new_unchecked(packet)))
            }
            PacketType::Cutoffs => {
                Repr::Cutoffs(CutoffsRepr::parse(&CutoffsPacket::new_unchecked(packet)))
            }
            PacketType::Ack => Repr::Ack(AckRepr::parse(&AckPacket::new_unchecked(packet))?),
            PacketType::RpcUnknown => Repr::RpcUnknown(header.common()),
            PacketType::Busy => Repr::Busy(header.common()),
            PacketType::Freeze => Repr::Freeze(header.common()),
            PacketType::NeedAck => Repr::NeedAck(header.common()),
        })
    }

    /// The packet's type.
    #[inline]
    pub fn packet_type(&self) -> PacketType {
        match self {
            Repr::Data(_) => PacketType::Data,
            Repr::Grant(_) => PacketType::Grant,
            Repr::Resend(_) => PacketType::Resend,
            Repr::RpcUnknown(_) => PacketType::RpcUnknown,
            Repr::Busy(_) => PacketType::Busy,
            Repr::Cutoffs(_) => PacketType::Cutoffs,
            Repr::Freeze(_) => PacketType::Freeze,
            Repr::NeedAck(_) => PacketType::NeedAck,
            Repr::Ack(_) => PacketType::Ack,
        }
    }

    /// The common header fields.
    #[inline]
    pub fn common(&self) -> &Common {
        match self {
            Repr::Data(r) => &r.common,
            Repr::Grant(r) => &r.common,
            Repr::Resend(r) => &r.common,
            Repr::Cutoffs(r) => &r.common,
            Repr::Ack(r) => &r.common,
            Repr::RpcUnknown(c) | Repr::Busy(c) | Repr::Freeze(c) | Repr::NeedAck(c) => c,
        }
    }

    /// Bytes [`emit`](Self::emit) writes.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.packet_type().header_len()
    }

    /// Write the header into `buf[..self.header_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`header_len`](Self::header_len) (a caller bug,
    /// never caused by network input).
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.header_len();
        assert!(
            buf.len() >= len,
            "buffer of {} bytes for a {len}-byte header",
            buf.len()
        );
        let buf = &mut buf[..len];
        match self {
            Repr::Data(r) => r.emit(&mut DataPacket::new_unchecked(buf)),
            Repr::Grant(r) => r.emit(&mut GrantPacket::new_unchecked(buf)),
            Repr::Resend(r) => r.emit(&mut ResendPacket::new_unchecked(buf)),
            Repr::Cutoffs(r) => r.emit(&mut CutoffsPacket::new_unchecked(buf)),
            Repr::Ack(r) => r.emit(&mut AckPacket::new_unchecked(buf)),
            Repr::RpcUnknown(c) | Repr::Busy(c) | Repr::Freeze(c) | Repr::NeedAck(c) => {
                CommonHeader::new_unchecked(buf).emit(c, self.packet_type(), 0)
            }
        }
    }
}

// Big-endian field access. Callers only pass offsets inside a length that
// `new_checked` verified, which is what makes the views' getters panic-free.
#[inline]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(field(b, at))
}
#[inline]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(field(b, at))
}
#[inline]
pub(crate) fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(field(b, at))
}
/// One bounds check per field (not one per byte): a single load.
#[inline]
fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut v = [0u8; N];
    v.copy_from_slice(&b[at..at + N]);
    v
}
#[inline]
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline]
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
#[inline]
pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Check length and type for a typed view.
#[inline]
pub(crate) fn check(buf: &[u8], ty: PacketType) -> Result<(), WireError> {
    let t = CommonHeader::new_checked(buf)?.packet_type()?;
    if t != ty {
        return Err(WireError::WrongType(t as u8));
    }
    let need = ty.header_len();
    if buf.len() < need {
        return Err(WireError::Truncated {
            ty,
            len: buf.len(),
            need,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
