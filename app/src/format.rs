//! How the pages write times and durations, in one place so that every page
//! writes them the same way.

/// "2026-11-22T02:15:03.123+00:00" → "2026-11-22 02:15:03 UTC".
pub fn short_time(rfc3339: &str) -> String {
    match rfc3339.get(..19) {
        Some(t) => format!("{} UTC", t.replace('T', " ")),
        None => rfc3339.to_string(),
    }
}

/// "14 min 05 s", "42 s": what is left of a window.
pub fn countdown(secs: i64) -> String {
    match secs {
        s if s >= 60 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

/// "850 ms", "12.3 s"; "—" when there is no duration (yet).
pub fn duration_text(ms: Option<i64>) -> String {
    match ms {
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_cut_to_the_second_in_utc() {
        assert_eq!(
            short_time("2026-11-22T02:15:03.123+00:00"),
            "2026-11-22 02:15:03 UTC"
        );
        // Something that is not a stored time is shown as it is.
        assert_eq!(short_time("soon"), "soon");
    }

    #[test]
    fn countdowns_show_minutes_from_sixty_seconds() {
        assert_eq!(countdown(42), "42 s");
        assert_eq!(countdown(60), "1 min 00 s");
        assert_eq!(countdown(845), "14 min 05 s");
    }

    #[test]
    fn durations_switch_to_seconds_at_one_second() {
        assert_eq!(duration_text(Some(850)), "850 ms");
        assert_eq!(duration_text(Some(1000)), "1.0 s");
        assert_eq!(duration_text(Some(12_345)), "12.3 s");
        assert_eq!(duration_text(None), "—");
    }
}
