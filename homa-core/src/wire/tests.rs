//! Wire-format tests.
//!
//! * Golden vectors: every packet type written out byte by byte from the
//!   Linux Homa layout (never produced by `emit`); `emit` must reproduce them
//!   exactly and `parse` must read them back.
//! * Properties: round trips for arbitrary field values, `parse` and the
//!   checked views on arbitrary bytes never panic, and `parse`'s errors match
//!   an independent oracle.
//! * Error cases: too short, truncated, unknown type, too many acks.

use super::*;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

// ----- golden vectors ---------------------------------------------------------

/// Common fields used by most golden packets: sport 40001, dport 80,
/// sender_id 0x0102030405060708.
const C: Common = Common {
    sport: 40001,
    dport: 80,
    sender_id: 0x0102_0304_0506_0708,
};

/// DATA, 56-byte header plus the 5-byte payload "hello".
#[rustfmt::skip]
const GOLDEN_DATA: [u8; 61] = [
    0x9c, 0x41,                                     //  0 sport 40001
    0x00, 0x50,                                     //  2 dport 80
    0x00, 0x00, 0x0b, 0x10,                         //  4 sequence = offset 2832
    0x00, 0x00, 0x00,                               //  8 unused
    0x10,                                           // 11 type DATA
    0xe0,                                           // 12 doff: 14 words
    0x00,                                           // 13 flags
    0x00, 0x00,                                     // 14 window
    0x00, 0x00,                                     // 16 checksum
    0x00, 0x00,                                     // 18 urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
    0x00, 0x01, 0x86, 0xa0,                         // 28 message_length 100000
    0x00, 0x00, 0x9c, 0x40,                         // 32 incoming 40000
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // 36 ack.client_id 42
    0x1f, 0x90,                                     // 44 ack.server_port 8080
    0x00, 0x03,                                     // 46 cutoff_version 3
    0x01,                                           // 48 retransmit
    0x01, 0x00, 0x00,                               // 49 pad: flags = INCAST
    0x00, 0x00, 0x0b, 0x10,                         // 52 offset 2832
    0x68, 0x65, 0x6c, 0x6c, 0x6f,                   // 56 payload "hello"
];

/// DATA whose `offset` field is 0xFFFFFFFF: the offset is `sequence` (1416).
#[rustfmt::skip]
const GOLDEN_DATA_OFFSET_IN_SEQUENCE: [u8; 59] = [
    0x80, 0x01,                                     //  0 sport 32769
    0x00, 0x63,                                     //  2 dport 99
    0x00, 0x00, 0x05, 0x88,                         //  4 sequence 1416
    0x00, 0x00, 0x00,                               //  8 unused
    0x10,                                           // 11 type DATA
    0xe0,                                           // 12 doff
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, // 20 sender_id 100
    0x00, 0x00, 0x10, 0x00,                         // 28 message_length 4096
    0x00, 0x00, 0x10, 0x00,                         // 32 incoming 4096
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 36 ack.client_id 0
    0x00, 0x00,                                     // 44 ack.server_port 0
    0x00, 0x01,                                     // 46 cutoff_version 1
    0x00,                                           // 48 retransmit: no
    0x00, 0x00, 0x00,                               // 49 pad
    0xff, 0xff, 0xff, 0xff,                         // 52 offset: "use sequence"
    0x61, 0x62, 0x63,                               // 56 payload "abc"
];

/// GRANT: offset 65536, priority 3.
#[rustfmt::skip]
const GOLDEN_GRANT: [u8; 33] = [
    0x9c, 0x41, 0x00, 0x50,                         //  0 sport, dport
    0x00, 0x00, 0x00, 0x00,                         //  4 sequence 0
    0x00, 0x00, 0x00,                               //  8 unused
    0x11,                                           // 11 type GRANT
    0x50,                                           // 12 doff: 5 words
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
    0x00, 0x01, 0x00, 0x00,                         // 28 offset 65536
    0x03,                                           // 32 priority 3
];

/// RESEND: offset 1416, length 11328, priority 7.
#[rustfmt::skip]
const GOLDEN_RESEND: [u8; 37] = [
    0x9c, 0x41, 0x00, 0x50,                         //  0 sport, dport
    0x00, 0x00, 0x00, 0x00,                         //  4 sequence 0
    0x00, 0x00, 0x00,                               //  8 unused
    0x12,                                           // 11 type RESEND
    0x50,                                           // 12 doff
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
    0x00, 0x00, 0x05, 0x88,                         // 28 offset 1416
    0x00, 0x00, 0x2c, 0x40,                         // 32 length 11328
    0x07,                                           // 36 priority 7
];

/// RPC_UNKNOWN (common header only).
#[rustfmt::skip]
const GOLDEN_RPC_UNKNOWN: [u8; 28] = [
    0x9c, 0x41, 0x00, 0x50,                         //  0 sport, dport
    0x00, 0x00, 0x00, 0x00,                         //  4 sequence 0
    0x00, 0x00, 0x00,                               //  8 unused
    0x13,                                           // 11 type RPC_UNKNOWN
    0x50,                                           // 12 doff
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
];

/// BUSY (common header only).
#[rustfmt::skip]
const GOLDEN_BUSY: [u8; 28] = [
    0x9c, 0x41, 0x00, 0x50,                         //  0 sport, dport
    0x00, 0x00, 0x00, 0x00,                         //  4 sequence 0
    0x00, 0x00, 0x00,                               //  8 unused
    0x14,                                           // 11 type BUSY
    0x50,                                           // 12 doff
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
];

/// FREEZE (common header only).
#[rustfmt::skip]
const GOLDEN_FREEZE: [u8; 28] = [
    0x9c, 0x41, 0x00, 0x50,                         //  0 sport, dport
    0x00, 0x00, 0x00, 0x00,                         //  4 sequence 0
    0x00, 0x00, 0x00,                               //  8 unused
    0x16,                                           // 11 type FREEZE
    0x50,                                           // 12 doff
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
];

/// NEED_ACK (common header only).
#[rustfmt::skip]
const GOLDEN_NEED_ACK: [u8; 28] = [
    0x9c, 0x41, 0x00, 0x50,                         //  0 sport, dport
    0x00, 0x00, 0x00, 0x00,                         //  4 sequence 0
    0x00, 0x00, 0x00,                               //  8 unused
    0x17,                                           // 11 type NEED_ACK
    0x50,                                           // 12 doff
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
];

/// CUTOFFS: the default Linux-like cutoffs, version 0x0102.
#[rustfmt::skip]
const GOLDEN_CUTOFFS: [u8; 62] = [
    0x9c, 0x41, 0x00, 0x50,                         //  0 sport, dport
    0x00, 0x00, 0x00, 0x00,                         //  4 sequence 0
    0x00, 0x00, 0x00,                               //  8 unused
    0x15,                                           // 11 type CUTOFFS
    0x50,                                           // 12 doff
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
    0x00, 0x00, 0x00, 0x00,                         // 28 cutoffs[0] 0
    0x00, 0x00, 0x00, 0x00,                         // 32 cutoffs[1] 0
    0x00, 0x00, 0x00, 0x00,                         // 36 cutoffs[2] 0
    0x00, 0x00, 0x00, 0x00,                         // 40 cutoffs[3] 0
    0xff, 0xff, 0xff, 0xff,                         // 44 cutoffs[4] u32::MAX
    0x00, 0x00, 0x3a, 0x98,                         // 48 cutoffs[5] 15000
    0x00, 0x00, 0x0a, 0xf0,                         // 52 cutoffs[6] 2800
    0x00, 0x00, 0x00, 0xc8,                         // 56 cutoffs[7] 200
    0x01, 0x02,                                     // 60 version 0x0102
];

/// ACK with two acks; the three unused slots are zero.
#[rustfmt::skip]
const GOLDEN_ACK: [u8; 80] = [
    0x9c, 0x41, 0x00, 0x50,                         //  0 sport, dport
    0x00, 0x00, 0x00, 0x00,                         //  4 sequence 0
    0x00, 0x00, 0x00,                               //  8 unused
    0x18,                                           // 11 type ACK
    0x50,                                           // 12 doff
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       // 13 flags .. urgent
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 20 sender_id
    0x00, 0x02,                                     // 28 num_acks 2
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, // 30 acks[0].client_id 16
    0x00, 0x63,                                     // 38 acks[0].server_port 99
    0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, // 40 acks[1].client_id
    0x12, 0x34,                                     // 48 acks[1].server_port 0x1234
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 50 acks[2]
    0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 60 acks[3]
    0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 70 acks[4]
    0x00, 0x00,
];

/// `emit` into a buffer pre-filled with garbage must write exactly the
/// golden header (so every byte, zeros included, is written), and `parse`
/// of the golden bytes must give the `Repr` back.
fn assert_golden(repr: Repr, golden: &[u8]) {
    let len = repr.header_len();
    assert!(golden.len() >= len);
    let mut buf = vec![0xA5u8; len + 4];
    repr.emit(&mut buf);
    assert_eq!(
        &buf[..len],
        &golden[..len],
        "emit of {}",
        repr.packet_type().name()
    );
    assert!(
        buf[len..].iter().all(|&b| b == 0xA5),
        "emit of {} wrote past its header",
        repr.packet_type().name()
    );
    assert_eq!(Repr::parse(golden), Ok(repr), "parse of golden bytes");
    assert_eq!(Repr::parse(&golden[..len]), Ok(repr), "parse of the header");
}

#[test]
fn golden_data_with_payload() {
    let repr = Repr::Data(DataRepr {
        common: C,
        message_length: 100_000,
        incoming: 40_000,
        ack: AckRecord {
            client_id: 42,
            server_port: 8080,
        },
        cutoff_version: 3,
        retransmit: true,
        flags: DATA_FLAG_INCAST,
        offset: 2832,
    });
    assert_eq!(repr.header_len(), 56);
    assert_golden(repr, &GOLDEN_DATA);

    let view = DataPacket::new_checked(&GOLDEN_DATA[..]).unwrap();
    assert_eq!(view.payload(), b"hello");
    assert_eq!(view.common(), C);
    assert_eq!(view.message_length(), 100_000);
    assert_eq!(view.incoming(), 40_000);
    assert_eq!(view.offset(), 2832);
    assert!(view.retransmit());
    assert_eq!(view.flags(), DATA_FLAG_INCAST);
    let header = CommonHeader::new_checked(&GOLDEN_DATA[..]).unwrap();
    assert_eq!(header.sequence(), 2832);
    assert_eq!(header.type_byte(), 0x10);
    assert_eq!(header.packet_type(), Ok(PacketType::Data));
}

#[test]
fn golden_data_offset_ffffffff_takes_sequence() {
    let want = DataRepr {
        common: Common {
            sport: 32769,
            dport: 99,
            sender_id: 100,
        },
        message_length: 4096,
        incoming: 4096,
        ack: AckRecord::default(),
        cutoff_version: 1,
        retransmit: false,
        flags: 0,
        offset: 1416,
    };
    assert_eq!(
        Repr::parse(&GOLDEN_DATA_OFFSET_IN_SEQUENCE),
        Ok(Repr::Data(want))
    );
    let view = DataPacket::new_checked(&GOLDEN_DATA_OFFSET_IN_SEQUENCE[..]).unwrap();
    assert_eq!(view.offset(), 1416);
    assert_eq!(view.payload(), b"abc");

    // Emitting it again writes the offset in both places.
    let mut buf = [0u8; DATA_HEADER_LEN];
    Repr::Data(want).emit(&mut buf);
    assert_eq!(&buf[..52], &GOLDEN_DATA_OFFSET_IN_SEQUENCE[..52]);
    assert_eq!(&buf[52..56], &[0x00, 0x00, 0x05, 0x88]);
}

#[test]
fn golden_data_offset_ffffffff_in_both_fields_round_trips() {
    // An offset of u32::MAX is written to `sequence` too, so the reader's
    // "0xFFFFFFFF means sequence" rule still yields u32::MAX.
    let repr = Repr::Data(DataRepr {
        common: C,
        offset: u32::MAX,
        ..DataRepr::default()
    });
    let mut buf = [0u8; DATA_HEADER_LEN];
    repr.emit(&mut buf);
    assert_eq!(&buf[4..8], &[0xff; 4]);
    assert_eq!(&buf[52..56], &[0xff; 4]);
    assert_eq!(Repr::parse(&buf), Ok(repr));
}

#[test]
fn golden_grant() {
    let repr = Repr::Grant(GrantRepr {
        common: C,
        offset: 65_536,
        priority: 3,
    });
    assert_eq!(repr.header_len(), 33);
    assert_golden(repr, &GOLDEN_GRANT);
    let v = GrantPacket::new_checked(&GOLDEN_GRANT[..]).unwrap();
    assert_eq!((v.offset(), v.priority()), (65_536, 3));
}

#[test]
fn golden_resend() {
    let repr = Repr::Resend(ResendRepr {
        common: C,
        offset: 1416,
        length: 11_328,
        priority: 7,
    });
    assert_eq!(repr.header_len(), 37);
    assert_golden(repr, &GOLDEN_RESEND);
    let v = ResendPacket::new_checked(&GOLDEN_RESEND[..]).unwrap();
    assert_eq!((v.offset(), v.length(), v.priority()), (1416, 11_328, 7));
}

#[test]
fn golden_rpc_unknown() {
    assert_golden(Repr::RpcUnknown(C), &GOLDEN_RPC_UNKNOWN);
}

#[test]
fn golden_busy() {
    assert_golden(Repr::Busy(C), &GOLDEN_BUSY);
}

#[test]
fn golden_freeze() {
    assert_golden(Repr::Freeze(C), &GOLDEN_FREEZE);
}

#[test]
fn golden_need_ack() {
    assert_golden(Repr::NeedAck(C), &GOLDEN_NEED_ACK);
}

#[test]
fn golden_common_only_views() {
    for (golden, ty) in [
        (&GOLDEN_RPC_UNKNOWN, PacketType::RpcUnknown),
        (&GOLDEN_BUSY, PacketType::Busy),
        (&GOLDEN_FREEZE, PacketType::Freeze),
        (&GOLDEN_NEED_ACK, PacketType::NeedAck),
    ] {
        assert_eq!(ty.header_len(), 28);
        let v = ControlPacket::new_checked(&golden[..]).unwrap();
        assert_eq!(v.packet_type(), ty);
        assert_eq!(v.common(), C);
    }
    // A type with a body is not a control packet.
    assert_eq!(
        ControlPacket::new_checked(&GOLDEN_GRANT[..]).map(|_| ()),
        Err(WireError::WrongType(0x11))
    );
}

#[test]
fn golden_cutoffs() {
    let repr = Repr::Cutoffs(CutoffsRepr {
        common: C,
        unsched_cutoffs: [0, 0, 0, 0, u32::MAX, 15_000, 2_800, 200],
        cutoff_version: 0x0102,
    });
    assert_eq!(repr.header_len(), 62);
    assert_golden(repr, &GOLDEN_CUTOFFS);
}

#[test]
fn golden_ack_with_two_acks() {
    let mut acks = [AckRecord::default(); MAX_ACKS];
    acks[0] = AckRecord {
        client_id: 16,
        server_port: 99,
    };
    acks[1] = AckRecord {
        client_id: 0x0a0b_0c0d_0e0f_1011,
        server_port: 0x1234,
    };
    let ack = AckRepr {
        common: C,
        num_acks: 2,
        acks,
    };
    assert_eq!(Repr::Ack(ack).header_len(), 80);
    assert_golden(Repr::Ack(ack), &GOLDEN_ACK);
    assert_eq!(ack.acks(), &acks[..2]);
    let v = AckPacket::new_checked(&GOLDEN_ACK[..]).unwrap();
    assert_eq!(v.num_acks(), 2);
    assert_eq!(v.ack(1), Some(acks[1]));
    assert_eq!(v.ack(4), Some(AckRecord::default()));
    assert_eq!(v.ack(5), None);
}

#[test]
fn ack_slots_past_num_acks_are_ignored_on_parse_and_zeroed_on_emit() {
    let mut bytes = GOLDEN_ACK;
    bytes[29] = 1; // num_acks 1: slot 1 holds leftovers
    let Ok(Repr::Ack(a)) = Repr::parse(&bytes) else {
        panic!("ACK expected")
    };
    assert_eq!(a.num_acks, 1);
    assert_eq!(a.acks[1], AckRecord::default());
    // An AckRepr with junk in unused slots emits zeros there.
    let mut junk = a;
    junk.acks[3] = AckRecord {
        client_id: u64::MAX,
        server_port: u16::MAX,
    };
    let mut buf = [0xEEu8; ACK_LEN];
    Repr::Ack(junk).emit(&mut buf);
    assert!(buf[40..80].iter().all(|&b| b == 0));
}

#[test]
fn trailing_bytes_after_a_control_header_are_ignored() {
    let mut g = GOLDEN_GRANT.to_vec();
    g.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(
        Repr::parse(&g),
        Ok(Repr::Grant(GrantRepr {
            common: C,
            offset: 65_536,
            priority: 3,
        }))
    );
}

// ----- error cases ------------------------------------------------------------

#[test]
fn shorter_than_common_header_is_too_short() {
    for len in [0usize, 1, 11, 12, 27] {
        let bytes = &GOLDEN_DATA[..len];
        assert_eq!(Repr::parse(bytes), Err(WireError::TooShort(len)));
        assert_eq!(
            CommonHeader::new_checked(bytes).map(|_| ()),
            Err(WireError::TooShort(len))
        );
    }
}

#[test]
fn each_type_one_byte_short_is_truncated() {
    let goldens: [(&[u8], PacketType); 9] = [
        (&GOLDEN_DATA, PacketType::Data),
        (&GOLDEN_GRANT, PacketType::Grant),
        (&GOLDEN_RESEND, PacketType::Resend),
        (&GOLDEN_RPC_UNKNOWN, PacketType::RpcUnknown),
        (&GOLDEN_BUSY, PacketType::Busy),
        (&GOLDEN_CUTOFFS, PacketType::Cutoffs),
        (&GOLDEN_FREEZE, PacketType::Freeze),
        (&GOLDEN_NEED_ACK, PacketType::NeedAck),
        (&GOLDEN_ACK, PacketType::Ack),
    ];
    for (golden, ty) in goldens {
        let need = ty.header_len();
        let short = &golden[..need - 1];
        let want = if need == COMMON_HEADER_LEN {
            // Header-only types: one byte short is short of the common header.
            WireError::TooShort(need - 1)
        } else {
            WireError::Truncated {
                ty,
                len: need - 1,
                need,
            }
        };
        assert_eq!(Repr::parse(short), Err(want), "{}", ty.name());
        // Exactly the header is enough.
        assert!(Repr::parse(&golden[..need]).is_ok(), "{}", ty.name());
    }
    // The typed views agree.
    assert_eq!(
        DataPacket::new_checked(&GOLDEN_DATA[..55]).map(|_| ()),
        Err(WireError::Truncated {
            ty: PacketType::Data,
            len: 55,
            need: 56
        })
    );
    assert_eq!(
        GrantPacket::new_checked(&GOLDEN_GRANT[..32]).map(|_| ()),
        Err(WireError::Truncated {
            ty: PacketType::Grant,
            len: 32,
            need: 33
        })
    );
    assert_eq!(
        ResendPacket::new_checked(&GOLDEN_RESEND[..36]).map(|_| ()),
        Err(WireError::Truncated {
            ty: PacketType::Resend,
            len: 36,
            need: 37
        })
    );
    assert_eq!(
        CutoffsPacket::new_checked(&GOLDEN_CUTOFFS[..61]).map(|_| ()),
        Err(WireError::Truncated {
            ty: PacketType::Cutoffs,
            len: 61,
            need: 62
        })
    );
    assert_eq!(
        AckPacket::new_checked(&GOLDEN_ACK[..79]).map(|_| ()),
        Err(WireError::Truncated {
            ty: PacketType::Ack,
            len: 79,
            need: 80
        })
    );
}

#[test]
fn unknown_type_bytes() {
    for bad in [0x00u8, 0x0f, 0x19, 0xff] {
        let mut b = GOLDEN_ACK;
        b[11] = bad;
        assert_eq!(Repr::parse(&b), Err(WireError::UnknownType(bad)));
        assert_eq!(PacketType::from_u8(bad), None);
        assert_eq!(
            ControlPacket::new_checked(&b[..]).map(|_| ()),
            Err(WireError::UnknownType(bad))
        );
        assert_eq!(
            DataPacket::new_checked(&b[..]).map(|_| ()),
            Err(WireError::UnknownType(bad))
        );
    }
    for code in 0x10u8..=0x18 {
        assert_eq!(PacketType::from_u8(code).map(|t| t as u8), Some(code));
    }
}

#[test]
fn ack_with_six_acks_is_too_many() {
    let mut b = GOLDEN_ACK;
    b[29] = 6;
    assert_eq!(Repr::parse(&b), Err(WireError::TooManyAcks(6)));
    b[28] = 0xff;
    b[29] = 0xff;
    assert_eq!(Repr::parse(&b), Err(WireError::TooManyAcks(0xffff)));
    // The view itself still opens (it does not check num_acks) and its
    // getters stay in bounds.
    let v = AckPacket::new_checked(&b[..]).unwrap();
    assert_eq!(v.num_acks(), 0xffff);
    assert_eq!(v.ack(5), None);
    assert_eq!(
        AckRepr::parse(&v),
        Err(WireError::TooManyAcks(0xffff)),
        "AckRepr::parse checks num_acks"
    );
}

#[test]
fn typed_view_of_another_type_is_wrong_type() {
    assert_eq!(
        GrantPacket::new_checked(&GOLDEN_ACK[..]).map(|_| ()),
        Err(WireError::WrongType(0x18))
    );
    assert_eq!(
        DataPacket::new_checked(&GOLDEN_GRANT[..]).map(|_| ()),
        Err(WireError::WrongType(0x11))
    );
    assert_eq!(
        AckPacket::new_checked(&GOLDEN_DATA[..]).map(|_| ()),
        Err(WireError::WrongType(0x10))
    );
}

#[test]
fn errors_display_without_panicking() {
    for e in [
        WireError::TooShort(3),
        WireError::Truncated {
            ty: PacketType::Ack,
            len: 79,
            need: 80,
        },
        WireError::UnknownType(0xff),
        WireError::WrongType(0x10),
        WireError::TooManyAcks(6),
    ] {
        assert!(!e.to_string().is_empty());
    }
}

// ----- properties -------------------------------------------------------------

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1024,
        // Same cases on every run: the suite must be deterministic.
        rng_seed: RngSeed::Fixed(0x486f_6d61),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

prop_compose! {
    fn common()(sport in any::<u16>(), dport in any::<u16>(), sender_id in any::<u64>()) -> Common {
        Common { sport, dport, sender_id }
    }
}

prop_compose! {
    fn ack_record()(client_id in any::<u64>(), server_port in any::<u16>()) -> AckRecord {
        AckRecord { client_id, server_port }
    }
}

prop_compose! {
    fn data_repr()(
        common in common(),
        message_length in any::<u32>(),
        incoming in any::<u32>(),
        ack in ack_record(),
        cutoff_version in any::<u16>(),
        retransmit in any::<bool>(),
        flags in any::<u8>(),
        offset in any::<u32>(),
    ) -> DataRepr {
        DataRepr { common, message_length, incoming, ack, cutoff_version, retransmit, flags, offset }
    }
}

prop_compose! {
    fn ack_repr()(
        common in common(),
        num_acks in 0u8..=5,
        records in proptest::array::uniform5(ack_record()),
    ) -> AckRepr {
        let mut acks = [AckRecord::default(); MAX_ACKS];
        acks[..usize::from(num_acks)].copy_from_slice(&records[..usize::from(num_acks)]);
        AckRepr { common, num_acks, acks }
    }
}

fn any_repr() -> impl Strategy<Value = Repr> {
    prop_oneof![
        data_repr().prop_map(Repr::Data),
        (common(), any::<u32>(), any::<u8>()).prop_map(|(common, offset, priority)| {
            Repr::Grant(GrantRepr {
                common,
                offset,
                priority,
            })
        }),
        (common(), any::<u32>(), any::<u32>(), any::<u8>()).prop_map(
            |(common, offset, length, priority)| {
                Repr::Resend(ResendRepr {
                    common,
                    offset,
                    length,
                    priority,
                })
            }
        ),
        common().prop_map(Repr::RpcUnknown),
        common().prop_map(Repr::Busy),
        (common(), any::<[u32; 8]>(), any::<u16>()).prop_map(
            |(common, unsched_cutoffs, cutoff_version)| {
                Repr::Cutoffs(CutoffsRepr {
                    common,
                    unsched_cutoffs,
                    cutoff_version,
                })
            }
        ),
        common().prop_map(Repr::Freeze),
        common().prop_map(Repr::NeedAck),
        ack_repr().prop_map(Repr::Ack),
    ]
}

/// What `Repr::parse` must answer for `bytes`, decided from the layout
/// alone: `None` for success.
fn oracle_error(bytes: &[u8]) -> Option<WireError> {
    if bytes.len() < 28 {
        return Some(WireError::TooShort(bytes.len()));
    }
    let need = match bytes[11] {
        0x10 => 56,
        0x11 => 33,
        0x12 => 37,
        0x13 | 0x14 | 0x16 | 0x17 => 28,
        0x15 => 62,
        0x18 => 80,
        t => return Some(WireError::UnknownType(t)),
    };
    let ty = PacketType::from_u8(bytes[11]).expect("known type");
    if bytes.len() < need {
        return Some(WireError::Truncated {
            ty,
            len: bytes.len(),
            need,
        });
    }
    if ty == PacketType::Ack {
        let n = u16::from_be_bytes([bytes[28], bytes[29]]);
        if n > 5 {
            return Some(WireError::TooManyAcks(n));
        }
    }
    None
}

/// Bytes of any length in `0..200`; with `forced`, byte 11 (when present) is
/// set to a valid type so that the typed parsers are reached.
fn packet_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::option::of(0x10u8..=0x18),
    )
        .prop_map(|(mut bytes, forced)| {
            if let (Some(t), Some(b)) = (forced, bytes.get_mut(11)) {
                *b = t;
            }
            bytes
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_variant_round_trips(repr in any_repr(), payload in proptest::collection::vec(any::<u8>(), 0..32)) {
        let len = repr.header_len();
        prop_assert_eq!(len, repr.packet_type().header_len());
        let mut buf = vec![0x3Cu8; MAX_HEADER_LEN + 16];
        repr.emit(&mut buf);
        // Exactly header_len() bytes are written.
        prop_assert!(buf[len..].iter().all(|&b| b == 0x3C));
        let mut pkt = buf[..len].to_vec();
        prop_assert_eq!(Repr::parse(&pkt), Ok(repr));
        // DATA carries a payload after the header; other types ignore
        // trailing bytes.
        pkt.extend_from_slice(&payload);
        prop_assert_eq!(Repr::parse(&pkt), Ok(repr));
        if let Repr::Data(_) = repr {
            let view = DataPacket::new_checked(&pkt[..]).unwrap();
            prop_assert_eq!(view.payload(), &payload[..]);
        }
        // The type-specific constants agree with the Repr.
        let specific = match repr {
            Repr::Data(_) => DataRepr::header_len(),
            Repr::Grant(_) => GrantRepr::header_len(),
            Repr::Resend(_) => ResendRepr::header_len(),
            Repr::Cutoffs(_) => CutoffsRepr::header_len(),
            Repr::Ack(_) => AckRepr::header_len(),
            _ => COMMON_HEADER_LEN,
        };
        prop_assert_eq!(len, specific);
        prop_assert_eq!(pkt[11], repr.packet_type() as u8);
    }

    #[test]
    fn parse_of_arbitrary_bytes_never_panics(bytes in packet_bytes()) {
        let parsed = Repr::parse(&bytes);
        prop_assert_eq!(parsed.err(), oracle_error(&bytes));
        if let Ok(repr) = parsed {
            prop_assert!(repr.header_len() <= bytes.len());
            if let Repr::Data(_) = repr {
                let view = DataPacket::new_checked(&bytes[..]).unwrap();
                prop_assert_eq!(repr.header_len() + view.payload().len(), bytes.len());
            }
            // What was parsed emits and parses to itself.
            let mut buf = [0u8; MAX_HEADER_LEN];
            repr.emit(&mut buf);
            prop_assert_eq!(Repr::parse(&buf[..repr.header_len()]), Ok(repr));
        }
    }

    #[test]
    fn checked_views_never_panic(bytes in packet_bytes()) {
        let b = &bytes[..];
        if let Ok(h) = CommonHeader::new_checked(b) {
            let _ = (h.sport(), h.dport(), h.sequence(), h.type_byte(), h.packet_type(), h.sender_id(), h.common());
        }
        if let Ok(p) = DataPacket::new_checked(b) {
            let _ = (p.common(), p.message_length(), p.incoming(), p.ack(), p.cutoff_version(), p.retransmit(), p.flags(), p.offset());
            prop_assert_eq!(p.payload().len() + DATA_HEADER_LEN, b.len());
            let _ = DataRepr::parse(&p);
        }
        if let Ok(p) = GrantPacket::new_checked(b) {
            let _ = (p.common(), p.offset(), p.priority(), GrantRepr::parse(&p));
        }
        if let Ok(p) = ResendPacket::new_checked(b) {
            let _ = (p.common(), p.offset(), p.length(), p.priority(), ResendRepr::parse(&p));
        }
        if let Ok(p) = CutoffsPacket::new_checked(b) {
            let _ = (p.common(), p.unsched_cutoffs(), p.cutoff_version(), CutoffsRepr::parse(&p));
        }
        if let Ok(p) = AckPacket::new_checked(b) {
            let _ = (p.common(), p.num_acks(), AckRepr::parse(&p));
            for i in 0..=MAX_ACKS + 2 {
                prop_assert_eq!(p.ack(i).is_some(), i < MAX_ACKS);
            }
        }
        if let Ok(p) = ControlPacket::new_checked(b) {
            let _ = (p.common(), p.packet_type());
            prop_assert_eq!(p.packet_type().header_len(), COMMON_HEADER_LEN);
        }
    }
}
