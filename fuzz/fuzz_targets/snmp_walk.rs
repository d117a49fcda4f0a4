//! Fuzz target `snmp_walk`: see `spoolcast_fuzz::snmp_walk` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spoolcast_fuzz::snmp_walk(data));
