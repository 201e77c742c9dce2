//! Ethernet, 802.1Q, IPv4 and ARP: just what the datapath needs to frame
//! Homa packets (IP protocol 146) and find its neighbours. Parsing never
//! panics: every length is checked before it is used.

use std::net::Ipv4Addr;

/// An Ethernet (MAC) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Whether the group (multicast/broadcast) bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;
    /// `aa:bb:cc:dd:ee:ff`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts
                .next()
                .ok_or_else(|| format!("bad MAC address {s:?}"))?;
            *b = u8::from_str_radix(p, 16).map_err(|_| format!("bad MAC address {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("bad MAC address {s:?}"));
        }
        Ok(MacAddr(out))
    }
}

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// IP protocol number of Homa.
pub const IPPROTO_HOMA: u8 = 146;
/// Ethernet header length.
pub const ETH_LEN: usize = 14;
/// 802.1Q tag length.
pub const VLAN_LEN: usize = 4;
/// IPv4 header length without options.
pub const IPV4_LEN: usize = 20;
/// ARP packet length (Ethernet/IPv4).
pub const ARP_LEN: usize = 28;
/// Shortest Ethernet frame without its FCS; shorter frames are padded.
pub const MIN_FRAME: usize = 60;

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An 802.1Q tag to put on sent frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    /// VLAN id (0–4095; 0 means priority tagging only).
    pub vid: u16,
}

/// Write Ethernet [+ 802.1Q] + IPv4 headers for a Homa packet of
/// `payload_len` bytes into `buf`, which must hold `frame_header_len(vlan)`
/// bytes. Priority 0–7 goes into DSCP (class selector `priority << 3`) and,
/// when tagged, into the PCP bits. Returns the header length.
#[allow(clippy::too_many_arguments)]
pub fn write_headers(
    buf: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    vlan: Option<VlanTag>,
    priority: u8,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    ident: u16,
    payload_len: usize,
) -> usize {
    let prio = priority.min(7);
    buf[0..6].copy_from_slice(&dst.0);
    buf[6..12].copy_from_slice(&src.0);
    let mut off = 12;
    if let Some(tag) = vlan {
        buf[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        let tci = (u16::from(prio) << 13) | (tag.vid & 0x0fff);
        buf[14..16].copy_from_slice(&tci.to_be_bytes());
        off += VLAN_LEN;
    }
    buf[off..off + 2].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    off += 2;
    let ip = &mut buf[off..off + IPV4_LEN];
    let total = (IPV4_LEN + payload_len) as u16;
    ip[0] = 0x45;
    ip[1] = (prio << 3) << 2; // DSCP class selector, ECN 0
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
    ip[8] = 64;
    ip[9] = IPPROTO_HOMA;
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&src_ip.octets());
    ip[16..20].copy_from_slice(&dst_ip.octets());
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    off + IPV4_LEN
}

/// Header bytes before the Homa packet.
pub fn frame_header_len(vlan: Option<VlanTag>) -> usize {
    ETH_LEN + if vlan.is_some() { VLAN_LEN } else { 0 } + IPV4_LEN
}

/// Why a received frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Shorter than its headers say.
    Truncated,
    /// Neither IPv4 nor ARP.
    Ethertype,
    /// IPv4 but not protocol 146.
    Protocol,
    /// IPv4 header: bad version, header length or total length.
    IpHeader,
    /// IPv4 header checksum wrong.
    Checksum,
    /// A fragment (Homa packets fit a frame; fragments are not reassembled).
    Fragment,
    /// Not addressed to us (MAC or IP).
    NotForUs,
}

/// A received frame, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A Homa packet: the IPv4 source and destination and the Homa bytes.
    Homa {
        /// Sender's IP address.
        src: Ipv4Addr,
        /// Our IP address (checked by the caller).
        dst: Ipv4Addr,
        /// The Homa packet (IP payload, Ethernet padding removed).
        packet: &'a [u8],
    },
    /// An ARP packet.
    Arp(Arp),
}

/// Parse an Ethernet frame. Checks the destination MAC against `mac`
/// (broadcast accepted for ARP), the EtherType, and for IPv4 the version,
/// header and total lengths, the header checksum and fragmentation.
pub fn parse(frame: &[u8], mac: MacAddr) -> Result<Frame<'_>, Drop> {
    if frame.len() < ETH_LEN {
        return Err(Drop::Truncated);
    }
    let dst = MacAddr([frame[0], frame[1], frame[2], frame[3], frame[4], frame[5]]);
    let mut ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let mut off = ETH_LEN;
    if ethertype == ETHERTYPE_VLAN {
        if frame.len() < ETH_LEN + VLAN_LEN {
            return Err(Drop::Truncated);
        }
        ethertype = u16::from_be_bytes([frame[16], frame[17]]);
        off += VLAN_LEN;
    }
    let body = &frame[off..];
    match ethertype {
        ETHERTYPE_ARP => {
            if dst != mac && dst != MacAddr::BROADCAST {
                return Err(Drop::NotForUs);
            }
            Arp::parse(body).map(Frame::Arp)
        }
        ETHERTYPE_IPV4 => {
            if dst != mac {
                return Err(Drop::NotForUs);
            }
            if body.len() < IPV4_LEN {
                return Err(Drop::Truncated);
            }
            if body[0] >> 4 != 4 {
                return Err(Drop::IpHeader);
            }
            let ihl = usize::from(body[0] & 0x0f) * 4;
            if ihl < IPV4_LEN {
                return Err(Drop::IpHeader);
            }
            if body.len() < ihl {
                return Err(Drop::Truncated);
            }
            let total = usize::from(u16::from_be_bytes([body[2], body[3]]));
            if total < ihl {
                return Err(Drop::IpHeader);
            }
            if total > body.len() {
                return Err(Drop::Truncated);
            }
            if checksum(&body[..ihl]) != 0 {
                return Err(Drop::Checksum);
            }
            let frag = u16::from_be_bytes([body[6], body[7]]);
            if frag & 0x3fff != 0 {
                return Err(Drop::Fragment);
            }
            if body[9] != IPPROTO_HOMA {
                return Err(Drop::Protocol);
            }
            let src = Ipv4Addr::new(body[12], body[13], body[14], body[15]);
            let dst = Ipv4Addr::new(body[16], body[17], body[18], body[19]);
            Ok(Frame::Homa {
                src,
                dst,
                packet: &body[ihl..total],
            })
        }
        _ => Err(Drop::Ethertype),
    }
}

/// An ARP packet for Ethernet and IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

/// ARP request.
pub const ARP_REQUEST: u16 = 1;
/// ARP reply.
pub const ARP_REPLY: u16 = 2;

impl Arp {
    /// Parse an ARP body (after the Ethernet header).
    pub fn parse(b: &[u8]) -> Result<Arp, Drop> {
        if b.len() < ARP_LEN {
            return Err(Drop::Truncated);
        }
        if b[0..2] != [0, 1] || b[2..4] != ETHERTYPE_IPV4.to_be_bytes() || b[4] != 6 || b[5] != 4 {
            return Err(Drop::Ethertype);
        }
        let mac = |o: usize| MacAddr([b[o], b[o + 1], b[o + 2], b[o + 3], b[o + 4], b[o + 5]]);
        let ip = |o: usize| Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]);
        Ok(Arp {
            op: u16::from_be_bytes([b[6], b[7]]),
            sha: mac(8),
            spa: ip(14),
            tha: mac(18),
            tpa: ip(24),
        })
    }

    /// A whole frame carrying this ARP packet from `src` to `dst`
    /// (padded to the minimum frame size).
    pub fn frame(&self, dst: MacAddr, src: MacAddr, vlan: Option<VlanTag>) -> Vec<u8> {
        let mut f = Vec::with_capacity(MIN_FRAME);
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        if let Some(tag) = vlan {
            f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            f.extend_from_slice(&(tag.vid & 0x0fff).to_be_bytes());
        }
        f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        f.extend_from_slice(&[0, 1]);
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f.extend_from_slice(&[6, 4]);
        f.extend_from_slice(&self.op.to_be_bytes());
        f.extend_from_slice(&self.sha.0);
        f.extend_from_slice(&self.spa.octets());
        f.extend_from_slice(&self.tha.0);
        f.extend_from_slice(&self.tpa.octets());
        if f.len() < MIN_FRAME {
            f.resize(MIN_FRAME, 0);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const THEM: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn homa_frame(vlan: Option<VlanTag>, prio: u8, payload: &[u8]) -> Vec<u8> {
        let hl = frame_header_len(vlan);
        let mut f = vec![0u8; hl + payload.len()];
        let n = write_headers(
            &mut f,
            US,
            THEM,
            vlan,
            prio,
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
            7,
            payload.len(),
        );
        assert_eq!(n, hl);
        f[hl..].copy_from_slice(payload);
        f
    }

    #[test]
    fn round_trip_with_and_without_vlan() {
        for vlan in [None, Some(VlanTag { vid: 42 })] {
            let mut f = homa_frame(vlan, 5, b"homa packet bytes");
            // Ethernet padding after the IP packet is ignored.
            f.extend_from_slice(&[0; 20]);
            match parse(&f, US) {
                Ok(Frame::Homa { src, dst, packet }) => {
                    assert_eq!(src, Ipv4Addr::new(10, 0, 0, 2));
                    assert_eq!(dst, Ipv4Addr::new(10, 0, 0, 1));
                    assert_eq!(packet, b"homa packet bytes");
                }
                other => panic!("{other:?}"),
            }
            let ip = if vlan.is_some() { 18 } else { 14 };
            assert_eq!(f[ip + 1] >> 2, 5 << 3, "DSCP carries the priority");
            if vlan.is_some() {
                assert_eq!(f[14] >> 5, 5, "PCP carries the priority");
                assert_eq!(u16::from_be_bytes([f[14], f[15]]) & 0xfff, 42);
            }
        }
    }

    #[test]
    fn bad_frames_are_classified() {
        let good = homa_frame(None, 0, b"0123456789abcdef0123456789abcdef");
        assert!(parse(&good, US).is_ok());
        assert_eq!(parse(&good[..10], US), Err(Drop::Truncated));
        assert_eq!(parse(&good[..30], US), Err(Drop::Truncated));
        assert_eq!(parse(&good, THEM), Err(Drop::NotForUs));
        let mut f = good.clone();
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(parse(&f, US), Err(Drop::Ethertype));
        let mut f = good.clone();
        f[14] = 0x65; // version 6
        assert_eq!(parse(&f, US), Err(Drop::IpHeader));
        let mut f = good.clone();
        f[14] = 0x44; // header length 16
        assert_eq!(parse(&f, US), Err(Drop::IpHeader));
        let mut f = good.clone();
        f[17] = 0xff; // total length past the frame
        assert_eq!(parse(&f, US), Err(Drop::Truncated));
        let mut f = good.clone();
        f[22] ^= 1; // TTL changed, checksum not
        assert_eq!(parse(&f, US), Err(Drop::Checksum));
        let mut f = good.clone();
        f[23] = 17; // UDP
        let c = {
            f[24] = 0;
            f[25] = 0;
            checksum(&f[14..34])
        };
        f[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&f, US), Err(Drop::Protocol));
        for len in 0..good.len() {
            let _ = parse(&good[..len], US);
        }
    }

    #[test]
    fn arp_round_trip() {
        let a = Arp {
            op: ARP_REQUEST,
            sha: THEM,
            spa: Ipv4Addr::new(10, 0, 0, 2),
            tha: MacAddr::default(),
            tpa: Ipv4Addr::new(10, 0, 0, 1),
        };
        let f = a.frame(MacAddr::BROADCAST, THEM, None);
        assert_eq!(f.len(), MIN_FRAME);
        assert_eq!(parse(&f, US), Ok(Frame::Arp(a)));
        assert_eq!("02:00:00:00:00:01".parse::<MacAddr>(), Ok(US));
        assert_eq!(US.to_string(), "02:00:00:00:00:01");
    }
}
