//! Fuzz the engine's packet input: `cargo fuzz run handle_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    homa_core::fuzzing::handle_packet_sequence(data);
});
