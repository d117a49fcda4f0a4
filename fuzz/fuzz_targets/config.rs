//! Fuzz target `config`: see `spoolcast_fuzz::config` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spoolcast_fuzz::config(data));
