//! The engine's own time type.
//!
//! The engine never reads a clock: every call that needs the time takes an
//! [`Instant`], nanoseconds since an arbitrary zero chosen by the caller. The
//! simulator starts at zero; the tokio adapter counts from its start; a DPDK
//! datapath may feed a TSC-derived clock.

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time: nanoseconds since an arbitrary, caller-chosen zero.
///
/// ```
/// use homa_core::Instant;
/// use std::time::Duration;
/// let t = Instant::from_nanos(1_000);
/// assert_eq!(t + Duration::from_micros(1), Instant::from_nanos(2_000));
/// assert_eq!(Instant::from_nanos(2_000) - t, Duration::from_micros(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The zero point.
    pub const ZERO: Instant = Instant(0);

    /// An instant `nanos` nanoseconds after zero.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// Nanoseconds since zero.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Saturates at `u64::MAX` nanoseconds (about 584 years), so a huge configured
/// timeout never wraps around.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(nanos(rhs)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an `earlier` that is later gives zero.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}
