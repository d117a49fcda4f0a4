//! Fuzz target `offer`: see `spoolcast_fuzz::offer` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spoolcast_fuzz::offer(data));
