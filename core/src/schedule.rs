//! Cron schedules: the crontab dialect users write, translated to the `cron` crate's.
//!
//! Users write standard 5-field crontab (`min hour dom month dow`), optionally with a leading
//! seconds field for sub-minute schedules, or a macro (`@hourly`, `@daily`, `@weekly`,
//! `@monthly`, `@yearly`). The `cron` crate wants `sec min hour dom month dow` with Sunday = 1, so
//! the day-of-week field is expanded here from crontab's numbering (Sunday = 0 or 7) into names.
//!
//! Next ticks are computed from a time the caller passes in, never from the real clock, so the
//! same code runs under simulation.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed, validated schedule in a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    timezone: Tz,
    inner: cron::Schedule,
}

/// Why a schedule or time zone was rejected. The message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule `{expr}` has {count} fields; expected 5 (min hour dom month dow), 6 with a leading seconds field, or a macro such as @daily")]
    FieldCount { expr: String, count: usize },
    #[error("schedule `{expr}`: {field} field `{value}` is invalid: {reason}")]
    Field { expr: String, field: &'static str, value: String, reason: String },
    #[error("schedule `{expr}`: unknown macro; expected @hourly, @daily, @weekly, @monthly or @yearly")]
    Macro { expr: String },
    #[error("unknown time zone `{0}`: expected an IANA name such as UTC or Europe/Kyiv")]
    TimeZone(String),
    #[error("schedule `{expr}` never fires")]
    NeverFires { expr: String },
}

const FIELD_NAMES: [&str; 6] = ["seconds", "minute", "hour", "day-of-month", "month", "day-of-week"];
const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Parses an IANA time zone name.
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::TimeZone(name.to_string()))
}

impl CronSchedule {
    /// Parses `expr` in time zone `timezone` (an IANA name).
    pub fn parse(expr: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let tz = parse_timezone(timezone)?;
        let translated = translate(expr)?;
        let inner = cron::Schedule::from_str(&translated).map_err(|e| ScheduleError::Field {
            expr: expr.to_string(),
            field: "schedule",
            value: expr.to_string(),
            reason: e.to_string(),
        })?;
        let schedule = CronSchedule { expr: expr.to_string(), timezone: tz, inner };
        // A schedule such as `0 0 30 2 *` parses but never fires; say so now, not at midnight.
        let probe = Utc.timestamp_millis_opt(0).single().map(|t| t.with_timezone(&tz));
        if probe.and_then(|t| schedule.inner.after(&t).next()).is_none() {
            return Err(ScheduleError::NeverFires { expr: expr.to_string() });
        }
        Ok(schedule)
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first tick strictly after `after_ms` (Unix milliseconds), in Unix milliseconds.
    pub fn next_after_ms(&self, after_ms: i64) -> Option<i64> {
        let after: DateTime<Utc> = Utc.timestamp_millis_opt(after_ms).single()?;
        let local = after.with_timezone(&self.timezone);
        self.inner.after(&local).next().map(|t| t.timestamp_millis())
    }
}

/// Turns user crontab text into the `cron` crate's 6-field form, naming the field at fault.
fn translate(expr: &str) -> Result<String, ScheduleError> {
    let trimmed = expr.trim();
    if let Some(name) = trimmed.strip_prefix('@') {
        let fields = match name {
            "yearly" | "annually" => "0 0 0 1 1 *",
            "monthly" => "0 0 0 1 * *",
            "weekly" => "0 0 0 * * sun",
            "daily" | "midnight" => "0 0 0 * * *",
            "hourly" => "0 0 * * * *",
            _ => return Err(ScheduleError::Macro { expr: expr.to_string() }),
        };
        return Ok(fields.to_string());
    }
    let mut fields: Vec<String> = trimmed.split_whitespace().map(str::to_string).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_string()),
        6 => {}
        count => return Err(ScheduleError::FieldCount { expr: expr.to_string(), count }),
    }
    fields[5] = translate_day_of_week(&fields[5]).map_err(|reason| ScheduleError::Field {
        expr: expr.to_string(),
        field: FIELD_NAMES[5],
        value: fields[5].clone(),
        reason,
    })?;
    let joined = fields.join(" ");
    if cron::Schedule::from_str(&joined).is_ok() {
        return Ok(joined);
    }
    // Parse each field on its own so that the error names the one at fault.
    for (i, value) in fields.iter().enumerate() {
        let mut probe: Vec<&str> = vec!["0", "*", "*", "*", "*", "*"];
        probe[i] = value;
        if let Err(e) = cron::Schedule::from_str(&probe.join(" ")) {
            let original = if i == 5 { original_dow(trimmed) } else { value.clone() };
            return Err(ScheduleError::Field {
                expr: expr.to_string(),
                field: FIELD_NAMES[i],
                value: original,
                reason: e.to_string(),
            });
        }
    }
    Ok(joined)
}

fn original_dow(expr: &str) -> String {
    expr.split_whitespace().last().unwrap_or_default().to_string()
}

/// Expands a crontab day-of-week field (0-7, Sunday = 0 or 7, names, lists, ranges, steps) into
/// a list of day names, which means the same in the `cron` crate.
fn translate_day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_string());
    }
    let mut days = BTreeSet::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| format!("step `{step}` is not a number"))?;
                if step == 0 {
                    return Err("step must be at least 1".to_string());
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (day_number(a)?, day_number(b)?)
        } else {
            let day = day_number(range)?;
            // `5/2` means "from 5 to the end, every 2nd", as in crontab.
            if part.contains('/') {
                (day, 7)
            } else {
                (day, day)
            }
        };
        if start > end {
            return Err(format!("range `{range}` runs backwards"));
        }
        let mut day = start;
        while day <= end {
            days.insert(day % 7);
            day += step;
        }
    }
    Ok(days.iter().map(|d| DAY_NAMES[*d as usize]).collect::<Vec<_>>().join(","))
}

fn day_number(text: &str) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        return if n <= 7 { Ok(n) } else { Err(format!("day `{n}` is out of range 0-7")) };
    }
    let lower = text.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|name| lower.starts_with(name) && lower.len() >= 3)
        .map(|p| p as u32)
        .ok_or_else(|| format!("`{text}` is not a day of the week"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    #[test]
    fn five_fields_fire_on_the_minute() {
        let s = CronSchedule::parse("30 6 * * *", "UTC").unwrap();
        assert_eq!(s.next_after_ms(ms("2026-01-01T00:00:00Z")), Some(ms("2026-01-01T06:30:00Z")));
    }

    #[test]
    fn six_fields_have_leading_seconds() {
        let s = CronSchedule::parse("*/2 * * * * *", "UTC").unwrap();
        assert_eq!(s.next_after_ms(ms("2026-01-01T00:00:01Z")), Some(ms("2026-01-01T00:00:02Z")));
    }

    #[test]
    fn sunday_is_zero_and_seven_as_in_crontab() {
        // 2026-01-04 is a Sunday.
        for dow in ["0", "7", "sun"] {
            let s = CronSchedule::parse(&format!("0 12 * * {dow}"), "UTC").unwrap();
            assert_eq!(s.next_after_ms(ms("2026-01-01T00:00:00Z")), Some(ms("2026-01-04T12:00:00Z")));
        }
        // Monday to Friday.
        let s = CronSchedule::parse("0 9 * * 1-5", "UTC").unwrap();
        assert_eq!(s.next_after_ms(ms("2026-01-03T00:00:00Z")), Some(ms("2026-01-05T09:00:00Z")));
        // Friday to Sunday, written with 7.
        let s = CronSchedule::parse("0 9 * * 5-7", "UTC").unwrap();
        assert_eq!(s.next_after_ms(ms("2026-01-03T10:00:00Z")), Some(ms("2026-01-04T09:00:00Z")));
    }

    #[test]
    fn macros_and_time_zones() {
        let s = CronSchedule::parse("@daily", "Europe/Kyiv").unwrap();
        // Midnight in Kyiv (UTC+2 in winter) is 22:00 UTC.
        assert_eq!(s.next_after_ms(ms("2026-01-01T12:00:00Z")), Some(ms("2026-01-01T22:00:00Z")));
        assert!(CronSchedule::parse("@hourly", "UTC").is_ok());
        assert!(CronSchedule::parse("@fortnightly", "UTC").is_err());
    }

    #[test]
    fn daylight_saving_time_keeps_local_time_and_fires_once() {
        // Kyiv moves from UTC+2 to UTC+3 on 2026-03-29 and back on 2026-10-25.
        let nine = CronSchedule::parse("0 9 * * *", "Europe/Kyiv").unwrap();
        assert_eq!(nine.next_after_ms(ms("2026-03-28T00:00:00Z")), Some(ms("2026-03-28T07:00:00Z")));
        assert_eq!(nine.next_after_ms(ms("2026-03-29T12:00:00Z")), Some(ms("2026-03-30T06:00:00Z")));
        // 03:30 happens twice on 2026-10-25 (03:00-04:00 repeats): the schedule fires once that day.
        let s = CronSchedule::parse("30 3 * * *", "Europe/Kyiv").unwrap();
        let first = s.next_after_ms(ms("2026-10-24T12:00:00Z")).unwrap();
        let second = s.next_after_ms(first).unwrap();
        let third = s.next_after_ms(second).unwrap();
        let day = |t: i64| Utc.timestamp_millis_opt(t).unwrap().with_timezone(&chrono_tz::Europe::Kyiv).date_naive();
        assert_eq!(day(first), chrono::NaiveDate::from_ymd_opt(2026, 10, 25).unwrap());
        assert_eq!(
            day(second),
            chrono::NaiveDate::from_ymd_opt(2026, 10, 26).unwrap(),
            "fired twice on the repeated hour"
        );
        assert_eq!(day(third), chrono::NaiveDate::from_ymd_opt(2026, 10, 27).unwrap());
        // 03:30 does not exist on 2026-03-29 (03:00 jumps to 04:00): no tick that day, none lost after.
        let spring = s.next_after_ms(ms("2026-03-28T12:00:00Z")).unwrap();
        assert_ne!(day(spring), chrono::NaiveDate::from_ymd_opt(2026, 3, 28).unwrap());
        assert!(day(spring) <= chrono::NaiveDate::from_ymd_opt(2026, 3, 30).unwrap());
    }

    #[test]
    fn errors_name_the_field() {
        let err = CronSchedule::parse("61 * * * *", "UTC").unwrap_err().to_string();
        assert!(err.contains("minute field `61`"), "{err}");
        let err = CronSchedule::parse("0 25 * * *", "UTC").unwrap_err().to_string();
        assert!(err.contains("hour field `25`"), "{err}");
        let err = CronSchedule::parse("0 0 * * 9", "UTC").unwrap_err().to_string();
        assert!(err.contains("day-of-week field `9`"), "{err}");
        let err = CronSchedule::parse("* * *", "UTC").unwrap_err().to_string();
        assert!(err.contains("3 fields"), "{err}");
        let err = CronSchedule::parse("0 0 30 2 *", "UTC").unwrap_err().to_string();
        assert!(err.contains("never fires"), "{err}");
        let err = CronSchedule::parse("@daily", "Mars/Olympus").unwrap_err().to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
    }
}
