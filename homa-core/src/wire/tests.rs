//! Golden byte vectors for every packet type (written out by hand from the
//! Linux Homa layout, not produced by `emit`), property tests, and errors.

use super::*;
use proptest::prelude::*;

const COMMON: Common = Common {
    sport: 0x9c40, // 40000
    dport: 0x0063, // 99
    sender_id: 0x0102_0304_0506_0708,
};

/// The common header bytes for `ty` with `seq` and the right doff nibble.
fn common_bytes(ty: u8, seq: [u8; 4]) -> Vec<u8> {
    let doff = if ty == 0x10 { 0xE0 } else { 0x50 };
    let mut v = vec![0x9c, 0x40, 0x00, 0x63];
    v.extend_from_slice(&seq);
    v.extend_from_slice(&[0, 0, 0, ty, doff, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(v.len(), 28);
    v
}

fn check_golden(repr: Repr, golden: &[u8]) {
    let mut buf = vec![0xAAu8; repr.header_len()];
    repr.emit(&mut buf);
    assert_eq!(buf, golden, "emit of {:?}", repr.packet_type());
    assert_eq!(Repr::parse(golden), Ok(repr));
}

#[test]
fn golden_data() {
    let repr = Repr::Data(DataRepr {
        common: COMMON,
        message_length: 100_000, // 00 01 86 a0
        incoming: 40_000,        // 00 00 9c 40
        ack: AckRecord {
            client_id: 0x22,
            server_port: 0x1f90,
        },
        cutoff_version: 3,
        retransmit: true,
        flags: DATA_FLAG_INCAST,
        offset: 2_832, // 00 00 0b 10
    });
    let mut g = common_bytes(0x10, [0x00, 0x00, 0x0b, 0x10]);
    g.extend_from_slice(&[0x00, 0x01, 0x86, 0xa0]); // message_length
    g.extend_from_slice(&[0x00, 0x00, 0x9c, 0x40]); // incoming
    g.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x22, 0x1f, 0x90]); // ack
    g.extend_from_slice(&[0x00, 0x03]); // cutoff_version
    g.extend_from_slice(&[0x01, 0x01, 0x00, 0x00]); // retransmit, pad[3]
    g.extend_from_slice(&[0x00, 0x00, 0x0b, 0x10]); // offset
    assert_eq!(g.len(), 56);
    check_golden(repr, &g);

    // With a payload: the view sees it, Repr ignores it.
    g.extend_from_slice(b"payload");
    let view = DataPacket::new_checked(&g[..]).unwrap();
    assert_eq!(view.payload(), b"payload");
    assert_eq!(Repr::parse(&g), Ok(repr));
}

#[test]
fn golden_data_offset_in_sequence() {
    // Linux may put 0xFFFFFFFF in `offset`: the offset is then `sequence`.
    let mut g = common_bytes(0x10, [0x00, 0x00, 0x05, 0x88]);
    g.extend_from_slice(&[
        0, 0, 0x10, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
    ]);
    g.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    let Ok(Repr::Data(d)) = Repr::parse(&g) else {
        panic!("DATA")
    };
    assert_eq!(d.offset, 0x588);
    assert_eq!(d.message_length, 4096);
    assert_eq!(d.ack.client_id, 0);
}

#[test]
fn golden_grant() {
    let repr = Repr::Grant(GrantRepr {
        common: COMMON,
        offset: 0x0001_0000,
        priority: 3,
    });
    let mut g = common_bytes(0x11, [0; 4]);
    g.extend_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x03]);
    check_golden(repr, &g);
}

#[test]
fn golden_resend() {
    let repr = Repr::Resend(ResendRepr {
        common: COMMON,
        offset: 1416,
        length: u32::MAX,
        priority: 7,
    });
    let mut g = common_bytes(0x12, [0; 4]);
    g.extend_from_slice(&[0x00, 0x00, 0x05, 0x88, 0xff, 0xff, 0xff, 0xff, 0x07]);
    check_golden(repr, &g);
}

#[test]
fn golden_common_only_types() {
    for (ty, repr) in [
        (0x13, Repr::RpcUnknown(COMMON)),
        (0x14, Repr::Busy(COMMON)),
        (0x16, Repr::Freeze(COMMON)),
        (0x17, Repr::NeedAck(COMMON)),
    ] {
        check_golden(repr, &common_bytes(ty, [0; 4]));
        let bytes = common_bytes(ty, [0; 4]);
        let view = ControlPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(view.packet_type() as u8, ty);
    }
}

#[test]
fn golden_cutoffs() {
    let repr = Repr::Cutoffs(CutoffsRepr {
        common: COMMON,
        unsched_cutoffs: [0, 0, 0, 0, u32::MAX, 15_000, 2_800, 200],
        cutoff_version: 0x0102,
    });
    let mut g = common_bytes(0x15, [0; 4]);
    g.extend_from_slice(&[0; 16]);
    g.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    g.extend_from_slice(&[0x00, 0x00, 0x3a, 0x98]); // 15000
    g.extend_from_slice(&[0x00, 0x00, 0x0a, 0xf0]); // 2800
    g.extend_from_slice(&[0x00, 0x00, 0x00, 0xc8]); // 200
    g.extend_from_slice(&[0x01, 0x02]);
    assert_eq!(g.len(), 62);
    check_golden(repr, &g);
}

#[test]
fn golden_ack_with_two_acks() {
    let mut acks = [AckRecord::default(); MAX_ACKS];
    acks[0] = AckRecord {
        client_id: 0x10,
        server_port: 99,
    };
    acks[1] = AckRecord {
        client_id: 0x0a0b_0c0d_0e0f_1011,
        server_port: 0x1234,
    };
    let repr = Repr::Ack(AckRepr {
        common: COMMON,
        num_acks: 2,
        acks,
    });
    let mut g = common_bytes(0x18, [0; 4]);
    g.extend_from_slice(&[0x00, 0x02]);
    g.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x10, 0x00, 0x63]);
    g.extend_from_slice(&[0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x34]);
    g.extend_from_slice(&[0; 30]);
    assert_eq!(g.len(), 80);
    check_golden(repr, &g);
    let Ok(Repr::Ack(a)) = Repr::parse(&g) else {
        panic!()
    };
    assert_eq!(a.acks().len(), 2);
}

#[test]
fn errors() {
    assert_eq!(Repr::parse(&[]), Err(WireError::TooShort(0)));
    assert_eq!(Repr::parse(&[0u8; 27]), Err(WireError::TooShort(27)));
    for ty in PacketType::ALL {
        let mut b = common_bytes(ty as u8, [0; 4]);
        b.resize(ty.header_len() - 1, 0);
        if ty.header_len() > COMMON_HEADER_LEN {
            assert_eq!(
                Repr::parse(&b),
                Err(WireError::Truncated {
                    ty,
                    len: ty.header_len() - 1,
                    need: ty.header_len()
                })
            );
        }
    }
    for bad in [0x00u8, 0x0f, 0x19, 0xff] {
        let mut b = common_bytes(0x10, [0; 4]);
        b[11] = bad;
        assert_eq!(Repr::parse(&b), Err(WireError::UnknownType(bad)));
    }
    let mut ack = common_bytes(0x18, [0; 4]);
    ack.resize(80, 0);
    ack[29] = 6;
    assert_eq!(Repr::parse(&ack), Err(WireError::TooManyAcks(6)));
    // A typed view refuses another type.
    assert_eq!(
        GrantPacket::new_checked(&ack[..]).map(|_| ()),
        Err(WireError::WrongType(0x18))
    );
}

fn arb_common() -> impl Strategy<Value = Common> {
    (any::<u16>(), any::<u16>(), any::<u64>()).prop_map(|(sport, dport, sender_id)| Common {
        sport,
        dport,
        sender_id,
    })
}

fn arb_ack() -> impl Strategy<Value = AckRecord> {
    (any::<u64>(), any::<u16>()).prop_map(|(client_id, server_port)| AckRecord {
        client_id,
        server_port,
    })
}

fn arb_repr() -> impl Strategy<Value = Repr> {
    prop_oneof![
        (
            arb_common(),
            any::<u32>(),
            any::<u32>(),
            arb_ack(),
            any::<u16>(),
            any::<bool>(),
            any::<u8>(),
            0..u32::MAX
        )
            .prop_map(
                |(
                    common,
                    message_length,
                    incoming,
                    ack,
                    cutoff_version,
                    retransmit,
                    flags,
                    offset,
                )| Repr::Data(DataRepr {
                    common,
                    message_length,
                    incoming,
                    ack,
                    cutoff_version,
                    retransmit,
                    flags,
                    offset
                })
            ),
        (arb_common(), any::<u32>(), any::<u8>()).prop_map(|(common, offset, priority)| {
            Repr::Grant(GrantRepr {
                common,
                offset,
                priority,
            })
        }),
        (arb_common(), any::<u32>(), any::<u32>(), any::<u8>()).prop_map(
            |(common, offset, length, priority)| Repr::Resend(ResendRepr {
                common,
                offset,
                length,
                priority
            })
        ),
        arb_common().prop_map(Repr::RpcUnknown),
        arb_common().prop_map(Repr::Busy),
        arb_common().prop_map(Repr::Freeze),
        arb_common().prop_map(Repr::NeedAck),
        (arb_common(), any::<[u32; 8]>(), any::<u16>()).prop_map(
            |(common, unsched_cutoffs, cutoff_version)| Repr::Cutoffs(CutoffsRepr {
                common,
                unsched_cutoffs,
                cutoff_version
            })
        ),
        (arb_common(), 0..=5u8, proptest::array::uniform5(arb_ack())).prop_map(
            |(common, num_acks, mut acks)| {
                for a in acks.iter_mut().skip(num_acks as usize) {
                    *a = AckRecord::default();
                }
                Repr::Ack(AckRepr {
                    common,
                    num_acks,
                    acks,
                })
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_repr_round_trips(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut buf = vec![0u8; MAX_HEADER_LEN];
        repr.emit(&mut buf);
        let len = repr.header_len();
        prop_assert_eq!(len, repr.packet_type().header_len());
        let mut pkt = buf[..len].to_vec();
        if repr.packet_type() == PacketType::Data {
            pkt.extend_from_slice(&payload);
        }
        prop_assert_eq!(Repr::parse(&pkt), Ok(repr));
        // Emit writes exactly header_len bytes: the rest is untouched.
        let mut guard = vec![0x5Au8; MAX_HEADER_LEN + 8];
        repr.emit(&mut guard);
        prop_assert!(guard[len..].iter().all(|&b| b == 0x5A));
    }

    #[test]
    fn parse_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), ty in 0x10u8..=0x18, force in any::<bool>()) {
        let mut bytes = bytes;
        if force && bytes.len() > 11 {
            bytes[11] = ty;
        }
        if let Ok(repr) = Repr::parse(&bytes) {
            // Every byte is accounted for: header, then payload (DATA) or
            // ignored trailing bytes.
            prop_assert!(repr.header_len() <= bytes.len());
            if let Repr::Data(_) = repr {
                let view = DataPacket::new_checked(&bytes[..]).unwrap();
                prop_assert_eq!(DATA_HEADER_LEN + view.payload().len(), bytes.len());
            }
        }
    }

    #[test]
    fn checked_views_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120), ty in 0x10u8..=0x18) {
        let mut bytes = bytes;
        if bytes.len() > 11 {
            bytes[11] = ty;
        }
        let b = &bytes[..];
        if let Ok(h) = CommonHeader::new_checked(b) {
            let _ = (h.sport(), h.dport(), h.sequence(), h.sender_id(), h.packet_type(), h.common());
        }
        if let Ok(p) = DataPacket::new_checked(b) {
            let _ = (p.common(), p.message_length(), p.incoming(), p.ack(), p.cutoff_version(), p.retransmit(), p.flags(), p.offset(), p.payload().len());
        }
        if let Ok(p) = GrantPacket::new_checked(b) {
            let _ = (p.common(), p.offset(), p.priority());
        }
        if let Ok(p) = ResendPacket::new_checked(b) {
            let _ = (p.common(), p.offset(), p.length(), p.priority());
        }
        if let Ok(p) = CutoffsPacket::new_checked(b) {
            let _ = (p.common(), p.unsched_cutoffs(), p.cutoff_version());
        }
        if let Ok(p) = AckPacket::new_checked(b) {
            let _ = (p.common(), p.num_acks());
            for i in 0..7 {
                let _ = p.ack(i);
            }
        }
        if let Ok(p) = ControlPacket::new_checked(b) {
            let _ = (p.common(), p.packet_type());
        }
    }
}
