//! RESEND: the receiver asks for a range again.

use super::{check, get_u32, put_u32, Common, CommonHeader, PacketType, WireError, RESEND_LEN};

const OFFSET: usize = 28;
const LENGTH: usize = 32;
const PRIORITY: usize = 36;

/// A checked view of a RESEND packet.
#[derive(Debug, Clone)]
pub struct ResendPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ResendPacket<T> {
    /// Wrap without checking; getters panic on a buffer shorter than 37 bytes.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        ResendPacket { buffer }
    }
    /// Wrap, checking length and type. No getter panics afterwards.
    ///
    /// # Errors
    /// [`WireError`] if too short or not RESEND.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check(buffer.as_ref(), PacketType::Resend)?;
        Ok(ResendPacket { buffer })
    }
    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// The common header.
    #[inline]
    pub fn common(&self) -> Common {
        CommonHeader::new_unchecked(self.buffer.as_ref()).common()
    }
    /// First byte to resend.
    #[inline]
    pub fn offset(&self) -> u32 {
        get_u32(self.buffer.as_ref(), OFFSET)
    }
    /// Bytes to resend (0xFFFFFFFF: everything sent so far; 0: nothing, the
    /// sender only asks whether we still have the RPC, answered with BUSY).
    #[inline]
    pub fn length(&self) -> u32 {
        get_u32(self.buffer.as_ref(), LENGTH)
    }
    /// Priority for the retransmitted packets.
    #[inline]
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[PRIORITY]
    }
}

/// A RESEND packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResendRepr {
    /// Common header fields.
    pub common: Common,
    /// First byte to resend.
    pub offset: u32,
    /// Bytes to resend (0xFFFFFFFF: everything sent so far; 0: nothing, the
    /// sender only asks whether we still have the RPC, answered with BUSY).
    pub length: u32,
    /// Priority for the retransmitted packets.
    pub priority: u8,
}

impl ResendRepr {
    /// Packet length.
    #[inline]
    pub const fn header_len() -> usize {
        RESEND_LEN
    }
    /// Read the fields of a checked packet.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &ResendPacket<T>) -> Self {
        ResendRepr {
            common: p.common(),
            offset: p.offset(),
            length: p.length(),
            priority: p.priority(),
        }
    }
    /// Write the packet.
    ///
    /// # Panics
    /// If the buffer is shorter than 37 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ResendPacket<T>) {
        let b = p.buffer.as_mut();
        CommonHeader::new_unchecked(&mut *b).emit(&self.common, PacketType::Resend, 0);
        put_u32(b, OFFSET, self.offset);
        put_u32(b, LENGTH, self.length);
        b[PRIORITY] = self.priority;
    }
}
