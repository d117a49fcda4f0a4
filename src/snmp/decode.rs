//! Decoding a walk of a printer into a reading (pure).
