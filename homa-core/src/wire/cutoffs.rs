//! CUTOFFS: a receiver tells a sender its unscheduled priority cutoffs.

use super::{
    check, get_u16, get_u32, put_u16, put_u32, Common, CommonHeader, PacketType, WireError,
    CUTOFFS_LEN,
};

const CUTOFFS: usize = 28;
const VERSION: usize = 60;

/// A checked view of a CUTOFFS packet.
#[derive(Debug, Clone)]
pub struct CutoffsPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> CutoffsPacket<T> {
    /// Wrap without checking; getters panic on a buffer shorter than 62 bytes.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        CutoffsPacket { buffer }
    }
    /// Wrap, checking length and type. No getter panics afterwards.
    ///
    /// # Errors
    /// [`WireError`] if too short or not CUTOFFS.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check(buffer.as_ref(), PacketType::Cutoffs)?;
        Ok(CutoffsPacket { buffer })
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
    /// Largest message size for each priority level (0 = level unused).
    #[inline]
    pub fn unsched_cutoffs(&self) -> [u32; 8] {
        core::array::from_fn(|i| get_u32(self.buffer.as_ref(), CUTOFFS + 4 * i))
    }
    /// Version of these cutoffs.
    #[inline]
    pub fn cutoff_version(&self) -> u16 {
        get_u16(self.buffer.as_ref(), VERSION)
    }
}

/// A CUTOFFS packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CutoffsRepr {
    /// Common header fields.
    pub common: Common,
    /// Largest message size for each priority level (0 = level unused).
    pub unsched_cutoffs: [u32; 8],
    /// Version of these cutoffs.
    pub cutoff_version: u16,
}

impl CutoffsRepr {
    /// Packet length.
    #[inline]
    pub const fn header_len() -> usize {
        CUTOFFS_LEN
    }
    /// Read the fields of a checked packet.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &CutoffsPacket<T>) -> Self {
        CutoffsRepr {
            common: p.common(),
            unsched_cutoffs: p.unsched_cutoffs(),
            cutoff_version: p.cutoff_version(),
        }
    }
    /// Write the packet.
    ///
    /// # Panics
    /// If the buffer is shorter than 62 bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut CutoffsPacket<T>) {
        let b = p.buffer.as_mut();
        CommonHeader::new_unchecked(&mut *b).emit(&self.common, PacketType::Cutoffs, 0);
        for (i, c) in self.unsched_cutoffs.iter().enumerate() {
            put_u32(b, CUTOFFS + 4 * i, *c);
        }
        put_u16(b, VERSION, self.cutoff_version);
    }
}
