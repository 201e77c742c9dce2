//! DATA: message bytes, with the metadata a receiver needs.

use super::{
    check, get_u16, get_u32, get_u64, put_u16, put_u32, put_u64, AckRecord, Common, CommonHeader,
    PacketType, WireError, DATA_HEADER_LEN,
};

mod field {
    pub const MESSAGE_LENGTH: usize = 28;
    pub const INCOMING: usize = 32;
    pub const ACK_CLIENT_ID: usize = 36;
    pub const ACK_SERVER_PORT: usize = 44;
    pub const CUTOFF_VERSION: usize = 46;
    pub const RETRANSMIT: usize = 48;
    pub const PAD: usize = 49;
    pub const OFFSET: usize = 52;
}

/// `offset` value that tells the receiver to use `sequence` instead.
const OFFSET_IN_SEQUENCE: u32 = 0xFFFF_FFFF;

/// A checked view of a DATA packet (header and payload).
#[derive(Debug, Clone)]
pub struct DataPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DataPacket<T> {
    /// Wrap without checking; getters panic on a buffer shorter than 56 bytes.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        DataPacket { buffer }
    }
    /// Wrap, checking length and type. No getter panics afterwards.
    ///
    /// # Errors
    /// [`WireError`] if too short or not DATA.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check(buffer.as_ref(), PacketType::Data)?;
        Ok(DataPacket { buffer })
    }
    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    #[inline]
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// The common header.
    #[inline]
    pub fn common(&self) -> Common {
        CommonHeader::new_unchecked(self.b()).common()
    }
    /// Total length of the message.
    #[inline]
    pub fn message_length(&self) -> u32 {
        get_u32(self.b(), field::MESSAGE_LENGTH)
    }
    /// The receiver may expect every byte below this without more grants.
    #[inline]
    pub fn incoming(&self) -> u32 {
        get_u32(self.b(), field::INCOMING)
    }
    /// Piggybacked ack (client_id 0 = none).
    #[inline]
    pub fn ack(&self) -> AckRecord {
        AckRecord {
            client_id: get_u64(self.b(), field::ACK_CLIENT_ID),
            server_port: get_u16(self.b(), field::ACK_SERVER_PORT),
        }
    }
    /// Version of the receiver's cutoffs the sender used.
    #[inline]
    pub fn cutoff_version(&self) -> u16 {
        get_u16(self.b(), field::CUTOFF_VERSION)
    }
    /// True if this is a retransmission.
    #[inline]
    pub fn retransmit(&self) -> bool {
        self.b()[field::RETRANSMIT] != 0
    }
    /// The flag byte (`pad[0]`).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.b()[field::PAD]
    }
    /// Offset of the first payload byte in the message (`offset`, or
    /// `sequence` when `offset` is 0xFFFFFFFF).
    #[inline]
    pub fn offset(&self) -> u32 {
        match get_u32(self.b(), field::OFFSET) {
            OFFSET_IN_SEQUENCE => CommonHeader::new_unchecked(self.b()).sequence(),
            o => o,
        }
    }
    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[DATA_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DataPacket<T> {
    /// Mutable access to the payload.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[DATA_HEADER_LEN..]
    }
}

/// A DATA header. The payload is not part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataRepr {
    /// Common header fields.
    pub common: Common,
    /// Total length of the message.
    pub message_length: u32,
    /// Bytes the receiver may expect without more grants.
    pub incoming: u32,
    /// Piggybacked ack (client_id 0 = none).
    pub ack: AckRecord,
    /// Version of the receiver's cutoffs used by the sender.
    pub cutoff_version: u16,
    /// This is a retransmission.
    pub retransmit: bool,
    /// Flag byte (`pad[0]`): [`DATA_FLAG_INCAST`](super::DATA_FLAG_INCAST).
    pub flags: u8,
    /// Offset of the payload in the message.
    pub offset: u32,
}

impl DataRepr {
    /// Header length.
    #[inline]
    pub const fn header_len() -> usize {
        DATA_HEADER_LEN
    }
    /// Read the fields of a checked packet.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &DataPacket<T>) -> Self {
        DataRepr {
            common: p.common(),
            message_length: p.message_length(),
            incoming: p.incoming(),
            ack: p.ack(),
            cutoff_version: p.cutoff_version(),
            retransmit: p.retransmit(),
            flags: p.flags(),
            offset: p.offset(),
        }
    }
    /// Write the 56-byte header; the offset goes into both `sequence` and `offset`.
    ///
    /// # Panics
    /// If the buffer is shorter than 56 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut DataPacket<T>) {
        let b = p.buffer.as_mut();
        CommonHeader::new_unchecked(&mut *b).emit(&self.common, PacketType::Data, self.offset);
        put_u32(b, field::MESSAGE_LENGTH, self.message_length);
        put_u32(b, field::INCOMING, self.incoming);
        put_u64(b, field::ACK_CLIENT_ID, self.ack.client_id);
        put_u16(b, field::ACK_SERVER_PORT, self.ack.server_port);
        put_u16(b, field::CUTOFF_VERSION, self.cutoff_version);
        b[field::RETRANSMIT] = u8::from(self.retransmit);
        b[field::PAD] = self.flags;
        b[field::PAD + 1] = 0;
        b[field::PAD + 2] = 0;
        put_u32(b, field::OFFSET, self.offset);
    }
}
