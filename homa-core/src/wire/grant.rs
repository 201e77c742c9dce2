//! GRANT: the receiver lets the sender transmit more of a message.

use super::{check, get_u32, put_u32, Common, CommonHeader, PacketType, WireError, GRANT_LEN};

const OFFSET: usize = 28;
const PRIORITY: usize = 32;

/// A checked view of a GRANT packet.
#[derive(Debug, Clone)]
pub struct GrantPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GrantPacket<T> {
    /// Wrap without checking; getters panic on a buffer shorter than 33 bytes.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        GrantPacket { buffer }
    }
    /// Wrap, checking length and type. No getter panics afterwards.
    ///
    /// # Errors
    /// [`WireError`] if too short or not GRANT.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check(buffer.as_ref(), PacketType::Grant)?;
        Ok(GrantPacket { buffer })
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
    /// The sender may transmit every byte below this offset.
    #[inline]
    pub fn offset(&self) -> u32 {
        get_u32(self.buffer.as_ref(), OFFSET)
    }
    /// Priority for the scheduled packets.
    #[inline]
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[PRIORITY]
    }
}

/// A GRANT packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GrantRepr {
    /// Common header fields.
    pub common: Common,
    /// Send everything below this offset.
    pub offset: u32,
    /// Priority for scheduled packets.
    pub priority: u8,
}

impl GrantRepr {
    /// Packet length.
    #[inline]
    pub const fn header_len() -> usize {
        GRANT_LEN
    }
    /// Read the fields of a checked packet.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &GrantPacket<T>) -> Self {
        GrantRepr {
            common: p.common(),
            offset: p.offset(),
            priority: p.priority(),
        }
    }
    /// Write the packet.
    ///
    /// # Panics
    /// If the buffer is shorter than 33 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut GrantPacket<T>) {
        let b = p.buffer.as_mut();
        CommonHeader::new_unchecked(&mut *b).emit(&self.common, PacketType::Grant, 0);
        put_u32(b, OFFSET, self.offset);
        b[PRIORITY] = self.priority;
    }
}
