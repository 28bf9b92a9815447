//! When a freeze window holds: its rule read from what an admin wrote
//! (checked, naming the field), and whether a moment falls inside it.

use crate::error::{Error, Result};
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use model::{FreezeKind, NewFreeze};

/// The longest weekly window: a whole week.
const MAX_MINUTES: u32 = 7 * 24 * 60;

/// A freeze window's rule, checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Rule {
    Once {
        starts: NaiveDateTime,
        ends: NaiveDateTime,
    },
    Weekly {
        days: Vec<Weekday>,
        start: NaiveTime,
        minutes: u32,
    },
}

/// A rule in its time zone.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Schedule {
    pub(crate) rule: Rule,
    pub(crate) zone: Tz,
}

fn local_time(field: &'static str, raw: &str) -> Result<NaiveDateTime> {
    NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%d %H:%M")
        .map_err(|_| Error::invalid(field, format!("{field}: {raw:?} is not YYYY-MM-DD HH:MM")))
}

fn weekday(raw: &str) -> Result<Weekday> {
    raw.trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| Error::invalid("days", format!("days: {raw:?} is not a day (mon … sun)")))
}

fn zone(raw: Option<&str>) -> Result<Tz> {
    let raw = raw
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .unwrap_or("UTC");
    raw.parse().map_err(|_| {
        Error::invalid(
            "time_zone",
            format!("time_zone: {raw:?} is not an IANA time zone (e.g. Europe/Berlin, UTC)"),
        )
    })
}

impl Schedule {
    /// Reads and checks what an admin wrote.
    pub(crate) fn parse(new: &NewFreeze) -> Result<Schedule> {
        let zone = zone(new.time_zone.as_deref())?;
        let rule = match new.kind {
            FreezeKind::Once => {
                let starts = local_time("starts", new.starts.as_deref().unwrap_or(""))?;
                let ends = local_time("ends", new.ends.as_deref().unwrap_or(""))?;
                if ends <= starts {
                    return Err(Error::invalid("ends", "ends must be after starts"));
                }
                Rule::Once { starts, ends }
            }
            FreezeKind::Weekly => {
                let days = new
                    .days
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .filter(|d| !d.trim().is_empty())
                    .map(weekday)
                    .collect::<Result<Vec<_>>>()?;
                if days.is_empty() {
                    return Err(Error::invalid(
                        "days",
                        "days: name at least one (mon … sun)",
                    ));
                }
                let raw = new.start_time.as_deref().unwrap_or("");
                let start = NaiveTime::parse_from_str(raw.trim(), "%H:%M").map_err(|_| {
                    Error::invalid("start_time", format!("start_time: {raw:?} is not HH:MM"))
                })?;
                let minutes = new.duration_minutes.unwrap_or(0);
                if !(1..=MAX_MINUTES).contains(&minutes) {
                    return Err(Error::invalid(
                        "duration_minutes",
                        format!("duration_minutes: 1 to {MAX_MINUTES} (a week)"),
                    ));
                }
                Rule::Weekly {
                    days,
                    start,
                    minutes,
                }
            }
        };
        Ok(Schedule { rule, zone })
    }

    /// A local time as an instant. In a daylight-saving gap the first
    /// valid moment after it counts, so a window never silently vanishes.
    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let mut t = local;
        for _ in 0..180 {
            if let Some(at) = self.zone.from_local_datetime(&t).earliest() {
                return at.with_timezone(&Utc);
            }
            t += Duration::minutes(1);
        }
        Utc.from_utc_datetime(&local)
    }

    /// When the window holding `now` ends, if one does.
    pub(crate) fn holds_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Once { starts, ends } => {
                let (s, e) = (self.instant(*starts), self.instant(*ends));
                (s <= now && now < e).then_some(e)
            }
            Rule::Weekly {
                days,
                start,
                minutes,
            } => {
                let today: NaiveDate = now.with_timezone(&self.zone).date_naive();
                // A window that started up to a week ago may still hold; the
                // latest-ending one that holds wins.
                (0..=7)
                    .filter_map(|back| today.checked_sub_days(chrono::Days::new(back)))
                    .filter(|d| days.contains(&d.weekday()))
                    .map(|d| {
                        let s = self.instant(d.and_time(*start));
                        (s, s + Duration::minutes(i64::from(*minutes)))
                    })
                    .filter(|(s, e)| *s <= now && now < *e)
                    .map(|(_, e)| e)
                    .max()
            }
        }
    }

    /// When the window next begins after `now`, if it does again (a once
    /// window that began already does not).
    pub(crate) fn next_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.rule {
            Rule::Once { starts, .. } => Some(self.instant(*starts)).filter(|s| *s > now),
            Rule::Weekly { days, start, .. } => {
                let today: NaiveDate = now.with_timezone(&self.zone).date_naive();
                (0..=7)
                    .filter_map(|ahead| today.checked_add_days(chrono::Days::new(ahead)))
                    .filter(|d| days.contains(&d.weekday()))
                    .map(|d| self.instant(d.and_time(*start)))
                    .find(|s| *s > now)
            }
        }
    }

    /// How people read it.
    pub(crate) fn describe(&self) -> String {
        match &self.rule {
            Rule::Once { starts, ends } => format!(
                "{} → {} ({})",
                starts.format("%Y-%m-%d %H:%M"),
                ends.format("%Y-%m-%d %H:%M"),
                self.zone
            ),
            Rule::Weekly {
                days,
                start,
                minutes,
            } => {
                let days: Vec<String> = days.iter().map(|d| d.to_string().to_lowercase()).collect();
                let length = if minutes % 60 == 0 {
                    format!("{} h", minutes / 60)
                } else {
                    format!("{minutes} min")
                };
                format!(
                    "every {} {} for {length} ({})",
                    days.join(","),
                    start.format("%H:%M"),
                    self.zone
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(days: &str, start: &str, minutes: u32, tz: &str) -> Schedule {
        Schedule::parse(&NewFreeze {
            reason: "r".into(),
            kind: FreezeKind::Weekly,
            starts: None,
            ends: None,
            days: Some(days.into()),
            start_time: Some(start.into()),
            duration_minutes: Some(minutes),
            time_zone: Some(tz.into()),
        })
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_weekend_freeze_in_berlin_holds_from_friday_evening_to_monday_morning() {
        // Fri 18:00 for 62 h: until Mon 08:00, Berlin time.
        let s = weekly("fri", "18:00", 62 * 60, "Europe/Berlin");
        // 2026-12-04 is a Friday; Berlin is UTC+1 in December.
        assert_eq!(s.holds_until(at("2026-12-04T16:59:00Z")), None);
        let end = at("2026-12-07T07:00:00Z");
        assert_eq!(s.holds_until(at("2026-12-04T17:00:00Z")), Some(end));
        assert_eq!(s.holds_until(at("2026-12-06T12:00:00Z")), Some(end));
        assert_eq!(s.holds_until(at("2026-12-07T07:00:00Z")), None);
        // In summer Berlin is UTC+2: the same local times, other instants.
        assert_eq!(
            s.holds_until(at("2026-07-03T16:30:00Z")),
            Some(at("2026-07-06T06:00:00Z"))
        );
        assert_eq!(s.describe(), "every fri 18:00 for 62 h (Europe/Berlin)");
    }

    #[test]
    fn the_next_start_is_the_next_local_start_after_now() {
        let s = weekly("fri", "18:00", 62 * 60, "Europe/Berlin");
        // Friday 2026-12-04 is a Friday; 17:00 UTC is 18:00 in Berlin.
        assert_eq!(
            s.next_start(at("2026-12-04T12:00:00Z")),
            Some(at("2026-12-04T17:00:00Z"))
        );
        assert_eq!(
            s.next_start(at("2026-12-04T17:00:00Z")),
            Some(at("2026-12-11T17:00:00Z"))
        );
    }

    #[test]
    fn a_once_window_holds_between_its_ends_only() {
        let s = Schedule::parse(&NewFreeze {
            reason: "holidays".into(),
            kind: FreezeKind::Once,
            starts: Some("2026-12-24 00:00".into()),
            ends: Some("2026-12-27 00:00".into()),
            days: None,
            start_time: None,
            duration_minutes: None,
            time_zone: None,
        })
        .unwrap();
        assert_eq!(s.holds_until(at("2026-12-23T23:59:59Z")), None);
        assert_eq!(
            s.holds_until(at("2026-12-25T10:00:00Z")),
            Some(at("2026-12-27T00:00:00Z"))
        );
        assert_eq!(s.holds_until(at("2026-12-27T00:00:00Z")), None);
    }

    #[test]
    fn what_an_admin_writes_is_checked_naming_the_field() {
        let base = NewFreeze {
            reason: "r".into(),
            kind: FreezeKind::Weekly,
            starts: None,
            ends: None,
            days: Some("fri".into()),
            start_time: Some("18:00".into()),
            duration_minutes: Some(60),
            time_zone: Some("UTC".into()),
        };
        let field = |f: NewFreeze| match Schedule::parse(&f) {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(NewFreeze {
                days: Some("friday-ish".into()),
                ..base.clone()
            }),
            "days"
        );
        assert_eq!(
            field(NewFreeze {
                days: Some(" ".into()),
                ..base.clone()
            }),
            "days"
        );
        assert_eq!(
            field(NewFreeze {
                start_time: Some("25:00".into()),
                ..base.clone()
            }),
            "start_time"
        );
        assert_eq!(
            field(NewFreeze {
                duration_minutes: Some(0),
                ..base.clone()
            }),
            "duration_minutes"
        );
        assert_eq!(
            field(NewFreeze {
                duration_minutes: Some(10081),
                ..base.clone()
            }),
            "duration_minutes"
        );
        assert_eq!(
            field(NewFreeze {
                time_zone: Some("Mars/Olympus".into()),
                ..base.clone()
            }),
            "time_zone"
        );
        let once = NewFreeze {
            kind: FreezeKind::Once,
            starts: Some("2026-12-24 00:00".into()),
            ends: Some("2026-12-23 00:00".into()),
            ..base.clone()
        };
        assert_eq!(field(once.clone()), "ends");
        assert_eq!(
            field(NewFreeze {
                starts: Some("tomorrow".into()),
                ..once
            }),
            "starts"
        );
    }
}
