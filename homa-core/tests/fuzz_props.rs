//! The fuzz target's body as a property test: arbitrary packet sequences
//! never panic the engine or push it past its limits.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_packet_sequences_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        homa_core::fuzzing::handle_packet_sequence(&input);
    }

    /// Well-formed headers with random fields reach deeper than random bytes.
    #[test]
    fn typed_packets_with_random_fields_never_panic(
        pkts in proptest::collection::vec((0x10u8..=0x18, any::<u8>(), proptest::collection::vec(any::<u8>(), 28..120)), 1..40)
    ) {
        let mut input = Vec::new();
        for (ty, flags, mut body) in pkts {
            body[11] = ty;
            input.push(body.len() as u8);
            input.push(flags | 2);
            input.extend_from_slice(&body);
        }
        homa_core::fuzzing::handle_packet_sequence(&input);
    }
}
