//! Branch conditions, `{{var}}` templates and business-hours calendars.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// Call variables: name → JSON value.
pub type Variables = BTreeMap<String, Value>;

/// A condition of a `branch` rule. Externally tagged in JSON, e.g.
/// `{"equals": {"var": "customer.vip", "value": true}}` or `{"business_hours": "main"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// All conditions hold.
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
    /// The condition does not hold.
    Not(Box<Condition>),
    /// The variable equals the value (strings and numbers compare loosely: `"1"` == `1`).
    Equals {
        /// Variable name.
        var: String,
        /// Value.
        value: Value,
    },
    /// Numeric comparison of a variable with a constant.
    Compare {
        /// Variable name.
        var: String,
        /// Operator.
        op: CompareOp,
        /// Constant.
        value: f64,
    },
    /// The variable's string value matches a regular expression.
    Matches {
        /// Variable name.
        var: String,
        /// Regular expression.
        pattern: String,
    },
    /// The variable is set (and not null). Does not count as a read.
    IsSet(String),
    /// The variable is truthy: `true`, a non-zero number, a non-empty string other than "false"/"0".
    Truthy(String),
    /// The named calendar is open now (within weekly hours and not a holiday).
    BusinessHours(String),
    /// Today is a holiday in the named calendar.
    Holiday(String),
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Condition {
    /// Variables the condition reads (`is_set` does not read).
    pub fn reads(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_reads(&mut out);
        out
    }

    fn collect_reads(&self, out: &mut Vec<String>) {
        match self {
            Condition::All(cs) | Condition::Any(cs) => {
                cs.iter().for_each(|c| c.collect_reads(out));
            }
            Condition::Not(c) => c.collect_reads(out),
            Condition::Equals { var, .. }
            | Condition::Compare { var, .. }
            | Condition::Matches { var, .. } => out.push(var.clone()),
            Condition::Truthy(v) => out.push(v.clone()),
            Condition::IsSet(_) | Condition::BusinessHours(_) | Condition::Holiday(_) => {}
        }
    }

    /// Variables certainly set when the condition holds (from `is_set`, through `all`).
    pub(crate) fn guarantees_set(&self) -> Vec<String> {
        match self {
            Condition::IsSet(v) => vec![v.clone()],
            Condition::All(cs) => cs.iter().flat_map(Condition::guarantees_set).collect(),
            _ => vec![],
        }
    }

    /// Regular expressions used by the condition.
    pub(crate) fn patterns(&self) -> Vec<&str> {
        match self {
            Condition::All(cs) | Condition::Any(cs) => {
                cs.iter().flat_map(Condition::patterns).collect()
            }
            Condition::Not(c) => c.patterns(),
            Condition::Matches { pattern, .. } => vec![pattern.as_str()],
            _ => vec![],
        }
    }

    /// Calendars used by the condition.
    pub(crate) fn calendars(&self) -> Vec<&str> {
        match self {
            Condition::All(cs) | Condition::Any(cs) => {
                cs.iter().flat_map(Condition::calendars).collect()
            }
            Condition::Not(c) => c.calendars(),
            Condition::BusinessHours(c) | Condition::Holiday(c) => vec![c.as_str()],
            _ => vec![],
        }
    }

    /// Evaluates the condition.
    pub fn eval(
        &self,
        vars: &Variables,
        calendars: &BTreeMap<String, Calendar>,
        now: Timestamp,
    ) -> Result<bool, Error> {
        Ok(match self {
            Condition::All(cs) => {
                for c in cs {
                    if !c.eval(vars, calendars, now)? {
                        return Ok(false);
                    }
                }
                true
            }
            Condition::Any(cs) => {
                for c in cs {
                    if c.eval(vars, calendars, now)? {
                        return Ok(true);
                    }
                }
                false
            }
            Condition::Not(c) => !c.eval(vars, calendars, now)?,
            Condition::Equals { var, value } => loose_eq(vars.get(var), value),
            Condition::Compare { var, op, value } => match vars.get(var).and_then(as_number) {
                Some(x) => match op {
                    CompareOp::Lt => x < *value,
                    CompareOp::Le => x <= *value,
                    CompareOp::Gt => x > *value,
                    CompareOp::Ge => x >= *value,
                    CompareOp::Eq => x == *value,
                    CompareOp::Ne => x != *value,
                },
                None => false,
            },
            Condition::Matches { var, pattern } => {
                let re = regex::Regex::new(pattern).map_err(|e| Error::Regex {
                    pattern: pattern.clone(),
                    message: e.to_string(),
                })?;
                re.is_match(&value_to_string(vars.get(var)))
            }
            Condition::IsSet(v) => vars.get(v).is_some_and(|v| !v.is_null()),
            Condition::Truthy(v) => truthy(vars.get(v)),
            Condition::BusinessHours(c) => lookup(calendars, c)?.is_open(now)?,
            Condition::Holiday(c) => lookup(calendars, c)?.is_holiday(now)?,
        })
    }
}

fn lookup<'a>(
    calendars: &'a BTreeMap<String, Calendar>,
    name: &str,
) -> Result<&'a Calendar, Error> {
    calendars.get(name).ok_or_else(|| Error::UnknownCalendar {
        calendar: name.to_owned(),
    })
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn loose_eq(a: Option<&Value>, b: &Value) -> bool {
    let a = a.unwrap_or(&Value::Null);
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => false,
        _ => value_to_string(Some(a)) == value_to_string(Some(b)),
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(Value::String(s)) => !(s.is_empty() || s == "false" || s == "0"),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// String form of a variable for templates: strings raw, null/missing empty, others as JSON.
pub fn value_to_string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Variable names referenced by `{{name}}` placeholders of a template.
///
/// Returns an error message for an unclosed `{{` or an empty name.
pub fn template_vars(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unclosed '{{{{' in {template:?}"));
        };
        let name = after[..end].trim();
        if !is_var_name(name) {
            return Err(format!("bad placeholder '{{{{{name}}}}}' in {template:?}"));
        }
        out.push(name.to_owned());
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Renders a template, replacing `{{name}}` with the variable's value (missing → empty).
/// Malformed placeholders are copied as they are.
pub fn render(template: &str, vars: &Variables) -> String {
    render_with(template, vars, |v, out| out.push_str(&v))
}

/// [`render`] for a URL: substituted values are percent-encoded (everything but RFC 3986
/// unreserved characters), so `+15550123` in a query stays a plus sign and a value can
/// never add a path segment, a parameter or change the host.
pub fn render_url(template: &str, vars: &Variables) -> String {
    render_with(template, vars, |v, out| {
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    })
}

/// [`render`] for a JSON body: substituted values are escaped as the inside of a JSON
/// string (`"{{caller_number}}"` in the template), so a value cannot break the JSON.
pub fn render_json(template: &str, vars: &Variables) -> String {
    render_with(template, vars, |v, out| {
        let quoted = Value::String(v).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
    })
}

fn render_with(template: &str, vars: &Variables, push: impl Fn(String, &mut String)) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                push(value_to_string(vars.get(after[..end].trim())), &mut out);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `name` is a valid variable name: letters, digits, `_`, `.`, `-`; not empty.
pub fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    /// Monday
    Mon,
    /// Tuesday
    Tue,
    /// Wednesday
    Wed,
    /// Thursday
    Thu,
    /// Friday
    Fri,
    /// Saturday
    Sat,
    /// Sunday
    Sun,
}

impl Day {
    fn of(w: jiff::civil::Weekday) -> Day {
        use jiff::civil::Weekday as W;
        match w {
            W::Monday => Day::Mon,
            W::Tuesday => Day::Tue,
            W::Wednesday => Day::Wed,
            W::Thursday => Day::Thu,
            W::Friday => Day::Fri,
            W::Saturday => Day::Sat,
            W::Sunday => Day::Sun,
        }
    }
}

/// Opening hours on some days: `open` inclusive, `close` exclusive, local time. A
/// `close` of `"00:00"` is midnight at the end of the day, so `"00:00"`–`"00:00"` is
/// open all day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hours {
    /// Days these hours apply to.
    pub days: Vec<Day>,
    /// Opening time (`"09:00"`).
    pub open: Time,
    /// Closing time (`"17:30"`; `"00:00"`: midnight, the end of the day).
    pub close: Time,
}

/// Whether local time `t` is within `open` (inclusive) and `close` (exclusive), a
/// `close` of midnight meaning the end of the day.
fn within(open: Time, close: Time, t: Time) -> bool {
    open <= t && (t < close || close == Time::midnight())
}

/// A closed day, or a day with special hours when `open` and `close` are given
/// (e.g. closing early on Christmas Eve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    /// Local date (`"2026-12-25"`).
    pub date: Date,
    /// Name shown to admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Special opening time that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<Time>,
    /// Special closing time that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<Time>,
}

impl Holiday {
    fn special_hours(&self) -> Option<(Time, Time)> {
        self.open.zip(self.close)
    }
}

/// A tenant's business-hours calendar in a time zone, with holidays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// IANA time zone (`"Europe/Paris"`).
    pub time_zone: String,
    /// Weekly opening hours.
    #[serde(default)]
    pub weekly: Vec<Hours>,
    /// Holidays (closed all day).
    #[serde(default)]
    pub holidays: Vec<Holiday>,
}

impl Calendar {
    /// Checks the time zone name and that special hours open before they close.
    pub fn check(&self) -> Result<(), Error> {
        self.local(Timestamp::UNIX_EPOCH)?;
        let bad = self
            .weekly
            .iter()
            .map(|h| (h.open, h.close))
            .chain(self.holidays.iter().filter_map(Holiday::special_hours));
        for (open, close) in bad {
            if open >= close && close != Time::midnight() {
                return Err(Error::Hours {
                    time_zone: self.time_zone.clone(),
                    open,
                    close,
                });
            }
        }
        Ok(())
    }

    fn local(&self, now: Timestamp) -> Result<jiff::Zoned, Error> {
        let tz = TimeZone::get(&self.time_zone).map_err(|e| Error::TimeZone {
            time_zone: self.time_zone.clone(),
            message: e.to_string(),
        })?;
        Ok(now.to_zoned(tz))
    }

    /// Whether `now` falls on a holiday (closed all day) in the calendar's
    /// time zone. Days with special hours are not holidays.
    pub fn is_holiday(&self, now: Timestamp) -> Result<bool, Error> {
        let local = self.local(now)?;
        Ok(self
            .holidays
            .iter()
            .any(|h| h.date == local.date() && h.special_hours().is_none()))
    }

    /// Whether the calendar is open at `now`: holidays close all day, special
    /// days use their own hours, other days the weekly hours.
    pub fn is_open(&self, now: Timestamp) -> Result<bool, Error> {
        let local = self.local(now)?;
        if let Some(h) = self.holidays.iter().find(|h| h.date == local.date()) {
            return Ok(h
                .special_hours()
                .is_some_and(|(open, close)| within(open, close, local.time())));
        }
        let day = Day::of(local.weekday());
        let t = local.time();
        Ok(self
            .weekly
            .iter()
            .any(|h| h.days.contains(&day) && within(h.open, h.close, t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_list_vars() {
        let mut vars = Variables::new();
        vars.insert("name".into(), Value::from("Ada"));
        vars.insert("n".into(), Value::from(3));
        assert_eq!(
            render("Hi {{ name }}, {{n}} {{missing}}!", &vars),
            "Hi Ada, 3 !"
        );
        assert_eq!(template_vars("{{a}} {{ b.c }}").unwrap(), vec!["a", "b.c"]);
        assert!(template_vars("{{a").is_err());
        assert!(template_vars("{{}}").is_err());
        assert_eq!(render("{{a", &vars), "{{a");
    }

    #[test]
    fn url_and_json_templates_escape_values() {
        let mut vars = Variables::new();
        vars.insert("n".into(), Value::from("+1 555/0?x=1&y"));
        vars.insert("q".into(), Value::from("say \"hi\"\n\\"));
        assert_eq!(
            render_url("https://h.example/a?c={{n}}", &vars),
            "https://h.example/a?c=%2B1%20555%2F0%3Fx%3D1%26y"
        );
        let body = render_json(r#"{"q": "{{q}}", "n": "{{n}}"}"#, &vars);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["q"], "say \"hi\"\n\\");
        assert_eq!(v["n"], "+1 555/0?x=1&y");
    }

    #[test]
    fn calendar_hours_and_holidays() {
        let cal: Calendar = serde_json::from_value(serde_json::json!({
            "time_zone": "America/New_York",
            "weekly": [{"days": ["mon","tue","wed","thu","fri"], "open": "09:00", "close": "17:00"}],
            "holidays": [
                {"date": "2026-12-25", "name": "Christmas"},
                {"date": "2026-12-24", "name": "Christmas Eve", "open": "09:00", "close": "12:00"}
            ]
        }))
        .unwrap();
        // Monday 2026-11-23 10:00 New York = 15:00 UTC.
        let open: Timestamp = "2026-11-23T15:00:00Z".parse().unwrap();
        assert!(cal.is_open(open).unwrap());
        // 08:59 local.
        let early: Timestamp = "2026-11-23T13:59:00Z".parse().unwrap();
        assert!(!cal.is_open(early).unwrap());
        // Saturday.
        let sat: Timestamp = "2026-11-21T15:00:00Z".parse().unwrap();
        assert!(!cal.is_open(sat).unwrap());
        // Christmas, a Friday, 10:00 local.
        let xmas: Timestamp = "2026-12-25T15:00:00Z".parse().unwrap();
        assert!(!cal.is_open(xmas).unwrap());
        assert!(cal.is_holiday(xmas).unwrap());
        // 2026-12-26 02:00 UTC is still the 25th in New York.
        let late: Timestamp = "2026-12-26T02:00:00Z".parse().unwrap();
        assert!(cal.is_holiday(late).unwrap());
        // Christmas Eve: open 09:00-12:00 local only, and not a holiday.
        let eve_morning: Timestamp = "2026-12-24T15:00:00Z".parse().unwrap();
        let eve_afternoon: Timestamp = "2026-12-24T18:00:00Z".parse().unwrap();
        assert!(cal.is_open(eve_morning).unwrap());
        assert!(!cal.is_open(eve_afternoon).unwrap());
        assert!(!cal.is_holiday(eve_afternoon).unwrap());
        // Unknown zone is an error, not a panic.
        let bad = Calendar {
            time_zone: "Mars/Olympus".into(),
            ..cal
        };
        assert!(matches!(bad.is_open(open), Err(Error::TimeZone { .. })));
        assert!(matches!(bad.check(), Err(Error::TimeZone { .. })));
        let inverted: Calendar = serde_json::from_value(serde_json::json!({
            "time_zone": "UTC",
            "weekly": [{"days": ["mon"], "open": "17:00", "close": "09:00"}]
        }))
        .unwrap();
        assert!(matches!(inverted.check(), Err(Error::Hours { .. })));
    }

    /// Regression (issue 14): a calendar could not say "open around the clock" (close is
    /// exclusive and there is no 24:00), so the demo line was closed most of the week.
    #[test]
    fn midnight_close_means_end_of_day_so_a_calendar_can_be_always_open() {
        let cal: Calendar = serde_json::from_value(serde_json::json!({
            "time_zone": "UTC",
            "weekly": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "00:00", "close": "00:00"}]
        }))
        .unwrap();
        cal.check().unwrap();
        for at in [
            "2026-12-05T23:59:59.999Z", // Saturday, last instant
            "2026-12-06T00:00:00Z",     // Sunday midnight
            "2026-12-06T03:00:00Z",
            "2026-12-07T12:00:00Z",
        ] {
            let now: Timestamp = at.parse().unwrap();
            assert!(cal.is_open(now).unwrap(), "{at}");
        }
        let evening: Calendar = serde_json::from_value(serde_json::json!({
            "time_zone": "UTC",
            "weekly": [{"days": ["mon"], "open": "18:00", "close": "00:00"}]
        }))
        .unwrap();
        evening.check().unwrap();
        let mon = |t: &str| -> Timestamp { format!("2026-12-07T{t}Z").parse().unwrap() };
        assert!(!evening.is_open(mon("17:59:59")).unwrap());
        assert!(evening.is_open(mon("18:00:00")).unwrap());
        assert!(evening.is_open(mon("23:59:59")).unwrap());
        // Tuesday's midnight belongs to Tuesday, which has no hours.
        let tue: Timestamp = "2026-12-08T00:00:00Z".parse().unwrap();
        assert!(!evening.is_open(tue).unwrap());
    }

    #[test]
    fn conditions() {
        let mut vars = Variables::new();
        vars.insert("customer.vip".into(), Value::Bool(true));
        vars.insert("queue.sales.estimated_wait".into(), Value::from(400));
        vars.insert("caller_number".into(), Value::from("+15550123"));
        let cals = BTreeMap::new();
        let now = Timestamp::UNIX_EPOCH;
        let c: Condition = serde_json::from_value(serde_json::json!({"all": [
            {"truthy": "customer.vip"},
            {"compare": {"var": "queue.sales.estimated_wait", "op": "gt", "value": 300}},
            {"matches": {"var": "caller_number", "pattern": "^\\+1555"}},
            {"not": {"is_set": "nope"}},
            {"equals": {"var": "queue.sales.estimated_wait", "value": "400"}}
        ]}))
        .unwrap();
        assert!(c.eval(&vars, &cals, now).unwrap());
        assert!(matches!(
            Condition::BusinessHours("x".into()).eval(&vars, &cals, now),
            Err(Error::UnknownCalendar { .. })
        ));
    }
}
