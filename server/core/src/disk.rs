//! Disk abstraction (being written).
