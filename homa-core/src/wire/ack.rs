//! ACK: a client tells a server it may forget finished RPCs.

use super::{
    check, get_u16, get_u64, put_u16, put_u64, AckRecord, Common, CommonHeader, PacketType,
    WireError, ACK_LEN, MAX_ACKS,
};

const NUM_ACKS: usize = 28;
const ACKS: usize = 30;
const ACK_SIZE: usize = 10;

/// A checked view of an ACK packet.
#[derive(Debug, Clone)]
pub struct AckPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AckPacket<T> {
    /// Wrap without checking; getters panic on a buffer shorter than 80 bytes.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        AckPacket { buffer }
    }
    /// Wrap, checking length and type (not `num_acks`: see
    /// [`AckRepr::parse`]). No getter panics afterwards.
    ///
    /// # Errors
    /// [`WireError`] if too short or not ACK.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check(buffer.as_ref(), PacketType::Ack)?;
        Ok(AckPacket { buffer })
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
    /// The `num_acks` field as sent (may exceed 5 in a malformed packet).
    #[inline]
    pub fn num_acks(&self) -> u16 {
        get_u16(self.buffer.as_ref(), NUM_ACKS)
    }
    /// Ack slot `i` (0..5), whether or not `num_acks` covers it; `None` past 5.
    #[inline]
    pub fn ack(&self, i: usize) -> Option<AckRecord> {
        if i >= MAX_ACKS {
            return None;
        }
        let at = ACKS + i * ACK_SIZE;
        Some(AckRecord {
            client_id: get_u64(self.buffer.as_ref(), at),
            server_port: get_u16(self.buffer.as_ref(), at + 8),
        })
    }
}

/// An ACK packet. The RPC in `common.sender_id` is acknowledged as well as
/// those listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckRepr {
    /// Common header fields.
    pub common: Common,
    /// How many of `acks` are used (at most 5).
    pub num_acks: u8,
    /// The acks; slots past `num_acks` are zero.
    pub acks: [AckRecord; MAX_ACKS],
}

impl AckRepr {
    /// Packet length.
    #[inline]
    pub const fn header_len() -> usize {
        ACK_LEN
    }
    /// The acks in use.
    #[inline]
    pub fn acks(&self) -> &[AckRecord] {
        &self.acks[..usize::from(self.num_acks).min(MAX_ACKS)]
    }
    /// Read the fields of a checked packet. Unused slots read as zero.
    ///
    /// # Errors
    /// [`WireError::TooManyAcks`] if `num_acks` exceeds 5.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &AckPacket<T>) -> Result<Self, WireError> {
        let n = p.num_acks();
        if usize::from(n) > MAX_ACKS {
            return Err(WireError::TooManyAcks(n));
        }
        let mut acks = [AckRecord::default(); MAX_ACKS];
        for (i, slot) in acks.iter_mut().enumerate().take(usize::from(n)) {
            *slot = p.ack(i).unwrap_or_default();
        }
        Ok(AckRepr {
            common: p.common(),
            num_acks: n as u8,
            acks,
        })
    }
    /// Write the packet; slots past `num_acks` are written as zeros.
    ///
    /// # Panics
    /// If the buffer is shorter than 80 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut AckPacket<T>) {
        let b = p.buffer.as_mut();
        CommonHeader::new_unchecked(&mut *b).emit(&self.common, PacketType::Ack, 0);
        let n = usize::from(self.num_acks).min(MAX_ACKS);
        put_u16(b, NUM_ACKS, n as u16);
        for i in 0..MAX_ACKS {
            let a = if i < n {
                self.acks[i]
            } else {
                AckRecord::default()
            };
            let at = ACKS + i * ACK_SIZE;
            put_u64(b, at, a.client_id);
            put_u16(b, at + 8, a.server_port);
        }
    }
}
