//! Fuzz target `ipp_response`: see `spoolcast_fuzz::ipp_response` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spoolcast_fuzz::ipp_response(data));
