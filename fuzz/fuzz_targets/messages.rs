//! Fuzz target `messages`: see `spoolcast_fuzz::messages` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spoolcast_fuzz::messages(data));
