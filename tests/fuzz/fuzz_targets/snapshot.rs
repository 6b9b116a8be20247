#![no_main]
// See zookeeper::fuzz_targets::snapshot for what the input is.
libfuzzer_sys::fuzz_target!(|data: &[u8]| zookeeper::fuzz_targets::snapshot(data));
