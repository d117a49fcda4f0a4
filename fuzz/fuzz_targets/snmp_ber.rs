//! Fuzz target `snmp_ber`: see `spoolcast_fuzz::snmp_ber` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spoolcast_fuzz::snmp_ber(data));
