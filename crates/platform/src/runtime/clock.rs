//! The time a service acts on. Production reads the system clock; tests set
//! it, so rules about periods (a 7-day public notice, a consent's validity)
//! are tested without waiting.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

/// China's time (UTC+8, no daylight saving): the dates officers write —
/// a consent's signing, a death, a notice — are China's dates.
pub const CHINA: time::UtcOffset = time::macros::offset!(+8);

/// The date in China at `t` (between 16:00 and 24:00 UTC, tomorrow's UTC date).
pub fn china_date(t: OffsetDateTime) -> time::Date {
    t.to_offset(CHINA).date()
}

/// `d` moved by `n` months, the day clamped to the end of a shorter month
/// (2026-01-31 and one month: 2026-02-28).
pub fn add_months(d: time::Date, n: u32) -> time::Date {
    let months = d.year() * 12 + i32::from(d.month() as u8) - 1 + i32::try_from(n).unwrap_or(i32::MAX / 2);
    let (year, month) = (
        months.div_euclid(12),
        time::Month::try_from((months.rem_euclid(12) + 1) as u8).unwrap_or(time::Month::January),
    );
    let day = d.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day).unwrap_or(d)
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    pub fn at(t: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }

    pub fn advance(&self, by: time::Duration) {
        let mut t = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
