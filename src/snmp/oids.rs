//! OIDs of the Printer MIB and Host Resources MIB the agent reads.
