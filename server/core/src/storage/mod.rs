//! Storage (being written).
