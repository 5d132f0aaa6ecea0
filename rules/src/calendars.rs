//! The IVR's business-hours calendars as the rules' [`Env`] (feature `calendars`).

use std::collections::HashMap;

use crate::eval::Env;
use crate::model::Millis;

/// A tenant's calendars by name (`parley_ivr::Calendar`, the documents IVR flows use).
#[derive(Debug, Clone, Default)]
pub struct Calendars(pub HashMap<String, parley_ivr::Calendar>);

impl Calendars {
    /// Reads `(name, JSON document)` pairs; a document that does not read is left out
    /// (a condition on it then does not hold).
    pub fn from_documents<'a>(docs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Calendars {
        Calendars(
            docs.into_iter()
                .filter_map(|(name, doc)| {
                    serde_json::from_str(doc).ok().map(|c| (name.to_owned(), c))
                })
                .collect(),
        )
    }
}

impl Env for Calendars {
    fn calendar_open(&self, name: &str, at: Millis) -> Option<bool> {
        let cal = self.0.get(name)?;
        let t = jiff::Timestamp::from_millisecond(at).ok()?;
        cal.is_open(t).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_ivr_calendar_answers_open_and_closed_in_its_time_zone() {
        let doc = r#"{"time_zone": "Europe/Paris",
            "weekly": [{"days": ["mon","tue","wed","thu","fri"], "open": "09:00", "close": "17:00"}],
            "holidays": [{"date": "2026-12-25"}]}"#;
        let cals = Calendars::from_documents([("office", doc), ("broken", "{")]);
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        // 08:30 UTC is 09:30 in Paris (winter).
        assert_eq!(
            cals.calendar_open("office", at("2026-12-07T08:30:00Z")),
            Some(true)
        );
        assert_eq!(
            cals.calendar_open("office", at("2026-12-07T16:30:00Z")),
            Some(false)
        );
        assert_eq!(
            cals.calendar_open("office", at("2026-12-25T10:00:00Z")),
            Some(false)
        );
        assert_eq!(
            cals.calendar_open("broken", at("2026-12-07T08:30:00Z")),
            None
        );
        assert_eq!(cals.calendar_open("nope", 0), None);
    }
}
