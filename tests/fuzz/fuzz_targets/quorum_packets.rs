#![no_main]
// See zookeeper::fuzz_targets::quorum_packets for what the input is.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zookeeper::fuzz_targets::quorum_packets(data));
