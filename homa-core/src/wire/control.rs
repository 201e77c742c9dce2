//! RPC_UNKNOWN, BUSY, FREEZE and NEED_ACK: the common header alone.

use super::{Common, CommonHeader, PacketType, WireError, COMMON_HEADER_LEN};

/// A checked view of a packet that is only a common header (RPC_UNKNOWN,
/// BUSY, FREEZE, NEED_ACK). Their `Repr` is [`Common`] inside
/// [`Repr`](super::Repr).
#[derive(Debug, Clone)]
pub struct ControlPacket<T: AsRef<[u8]>> {
    header: CommonHeader<T>,
    ty: PacketType,
}

impl<T: AsRef<[u8]>> ControlPacket<T> {
    /// Wrap, checking the length and that the type is one of the four.
    ///
    /// # Errors
    /// [`WireError`] if too short, of unknown type, or of a type with a body.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let header = CommonHeader::new_checked(buffer)?;
        let ty = header.packet_type()?;
        if ty.header_len() != COMMON_HEADER_LEN {
            return Err(WireError::WrongType(ty as u8));
        }
        Ok(ControlPacket { header, ty })
    }
    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        self.ty
    }
    /// The common header fields.
    pub fn common(&self) -> Common {
        self.header.common()
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.header.into_inner()
    }
}
