//! Nanosecond arithmetic on the simulation's calendar (UTC; the synthetic
//! people live on UTC, so local clock time and UTC coincide).

/// Nanoseconds per minute.
pub(crate) const NS_PER_MIN: i64 = 60_000_000_000;
/// Nanoseconds per hour.
pub(crate) const NS_PER_HOUR: i64 = 60 * NS_PER_MIN;
/// Nanoseconds per day.
pub(crate) const NS_PER_DAY: i64 = 24 * NS_PER_HOUR;
/// Minutes per day.
pub(crate) const MIN_PER_DAY: usize = 1440;

/// Days kept free at each end of the i64-nanosecond range, so day arithmetic
/// around the anchor (the nights before it, the first days after it) never
/// overflows. Later days are checked where they are generated.
pub(crate) const ANCHOR_MARGIN_DAYS: i64 = 10;

/// The midnight (UTC) at or before `ns`, moved inside the range where the
/// generator's day arithmetic cannot overflow.
pub(crate) fn safe_anchor(ns: i64) -> i64 {
    let margin = ANCHOR_MARGIN_DAYS * NS_PER_DAY;
    midnight_at_or_before(ns.clamp(i64::MIN + margin, i64::MAX - margin))
}

/// The midnight (UTC) at or before `ns`.
pub(crate) fn midnight_at_or_before(ns: i64) -> i64 {
    ns - ns.rem_euclid(NS_PER_DAY)
}

/// Day of the week of the day starting at midnight `day_start_ns`: 0 = Monday … 6 = Sunday
/// (1970-01-01 was a Thursday).
pub(crate) fn weekday(day_start_ns: i64) -> u32 {
    (day_start_ns.div_euclid(NS_PER_DAY) + 3).rem_euclid(7) as u32
}

/// True for Saturday and Sunday.
pub(crate) fn is_weekend(day_start_ns: i64) -> bool {
    weekday(day_start_ns) >= 5
}

/// The calendar year containing `ns`, to within a day (365.2425-day years);
/// only used to turn ages into birth years.
pub(crate) fn approximate_year(ns: i64) -> i32 {
    let days = ns.div_euclid(NS_PER_DAY) as f64;
    (1970.0 + (days / 365.2425).floor()).clamp(i32::MIN as f64, i32::MAX as f64) as i32
}

/// Hours to nanoseconds, rounded to the minute so every emitted time is on
/// a whole minute.
pub(crate) fn hours_to_ns(hours: f64) -> i64 {
    minutes_to_ns(hours * 60.0)
}

/// Minutes to nanoseconds, rounded to the whole minute.
pub(crate) fn minutes_to_ns(minutes: f64) -> i64 {
    (minutes.round() as i64).saturating_mul(NS_PER_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_and_years_match_the_calendar() {
        // 2024-01-01T00:00:00Z was a Monday.
        let new_year_2024 = 1_704_067_200 * 1_000_000_000;
        assert_eq!(weekday(new_year_2024), 0);
        assert!(is_weekend(new_year_2024 + 5 * NS_PER_DAY));
        assert!(!is_weekend(new_year_2024 + 4 * NS_PER_DAY));
        assert_eq!(approximate_year(new_year_2024 + NS_PER_DAY), 2024);
        assert_eq!(weekday(-NS_PER_DAY), 2);
    }

    #[test]
    fn anchors_stay_clear_of_the_range_ends() {
        assert!(safe_anchor(i64::MAX).checked_add(ANCHOR_MARGIN_DAYS * NS_PER_DAY - NS_PER_DAY).is_some());
        assert!(safe_anchor(i64::MIN).checked_sub(ANCHOR_MARGIN_DAYS * NS_PER_DAY - NS_PER_DAY).is_some());
        assert_eq!(safe_anchor(NS_PER_DAY + 7), NS_PER_DAY);
    }

    #[test]
    fn midnight_floors_negative_times_too() {
        assert_eq!(midnight_at_or_before(NS_PER_DAY + 5), NS_PER_DAY);
        assert_eq!(midnight_at_or_before(-5), -NS_PER_DAY);
    }
}
