//! SNMP printer status (Printer MIB, RFC 3805; Host Resources MIB, RFC 2790).
//!
//! `decode` is pure: a walk in, a reading out. The IO shell that walks a
//! printer lives beside it.

pub mod client;
pub mod decode;
pub mod oids;
#[cfg(test)]
mod snmprec;
