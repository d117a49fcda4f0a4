//! Printer status: readings from IPP and SNMP (`source`), merged into the
//! protocol's status message (`merge`, pure), published on change and on
//! request (`task`).

pub mod merge;
pub mod source;
pub mod task;

pub use source::StatusSource;
pub use task::{StatusRequest, StatusTask};
