//! The 28-byte common header.

use super::{get_u16, get_u64, put_u16, put_u64, Common, PacketType, WireError, COMMON_HEADER_LEN};

mod field {
    pub const SPORT: usize = 0;
    pub const DPORT: usize = 2;
    pub const SEQUENCE: usize = 4;
    pub const TYPE: usize = 11;
    pub const DOFF: usize = 12;
    pub const SENDER_ID: usize = 20;
}

/// A view of the common header at the start of any packet. After
/// [`new_checked`](Self::new_checked) no getter panics.
#[derive(Debug, Clone)]
pub struct CommonHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> CommonHeader<T> {
    /// Wrap without checking; getters panic if the buffer is shorter than 28 bytes.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        CommonHeader { buffer }
    }

    /// Wrap, checking that the common header is all there.
    ///
    /// # Errors
    /// [`WireError::TooShort`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let len = buffer.as_ref().len();
        if len < COMMON_HEADER_LEN {
            return Err(WireError::TooShort(len));
        }
        Ok(CommonHeader { buffer })
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn sport(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SPORT)
    }
    /// Destination port.
    #[inline]
    pub fn dport(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DPORT)
    }
    /// The `sequence` field (DATA: offset of the first payload byte).
    #[inline]
    pub fn sequence(&self) -> u32 {
        super::get_u32(self.buffer.as_ref(), field::SEQUENCE)
    }
    /// The raw type byte.
    #[inline]
    pub fn type_byte(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    /// The packet type.
    ///
    /// # Errors
    /// [`WireError::UnknownType`].
    #[inline]
    pub fn packet_type(&self) -> Result<PacketType, WireError> {
        PacketType::from_u8(self.type_byte()).ok_or(WireError::UnknownType(self.type_byte()))
    }
    /// The RPC id as the sender knows it.
    #[inline]
    pub fn sender_id(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::SENDER_ID)
    }
    /// The meaningful fields.
    #[inline]
    pub fn common(&self) -> Common {
        Common {
            sport: self.sport(),
            dport: self.dport(),
            sender_id: self.sender_id(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> CommonHeader<T> {
    /// Write the whole common header: ports, `sequence`, type, the data
    /// offset nibble (header length in 4-byte words: 14 for DATA, 5 for the
    /// rest) and zeros everywhere Linux puts zeros.
    #[inline]
    pub fn emit(&mut self, c: &Common, ty: PacketType, sequence: u32) {
        let b = &mut self.buffer.as_mut()[..COMMON_HEADER_LEN];
        b.fill(0);
        put_u16(b, field::SPORT, c.sport);
        put_u16(b, field::DPORT, c.dport);
        super::put_u32(b, field::SEQUENCE, sequence);
        b[field::TYPE] = ty as u8;
        b[field::DOFF] = if ty == PacketType::Data { 0xE0 } else { 0x50 };
        put_u64(b, field::SENDER_ID, c.sender_id);
    }
}
