//! Time, read through a trait so tests can pin it.

use time::OffsetDateTime;

/// The source of the current time. Production uses [`SystemClock`]; tests use
/// a fake clock from `mandate-testkit`, never sleeps.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Milliseconds since the Unix epoch, the form times take in storage and in
/// audit events' canonical bytes.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The inverse of [`unix_millis`]; out-of-range values clamp to the epoch.
pub fn from_unix_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_drops_sub_millisecond_precision() {
        let t = time::macros::datetime!(2026-11-23 10:00:00.123_456 UTC);
        let back = from_unix_millis(unix_millis(t));
        assert_eq!(back, time::macros::datetime!(2026-11-23 10:00:00.123 UTC));
    }
}
