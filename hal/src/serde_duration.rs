//! Durations stored as whole nanoseconds: lossless and readable from any language.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Serialize as integer nanoseconds.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    let ns = u64::try_from(d.as_nanos()).map_err(|_| serde::ser::Error::custom("duration exceeds u64 ns"))?;
    s.serialize_u64(ns)
}

/// Deserialize from integer nanoseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_nanos)
}
