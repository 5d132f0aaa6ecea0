//! Customer identity kinds and their normalisation: the same person typed two ways must
//! resolve to the same customer.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a customer can be reached or recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// A phone number, E.164 (`+15550100`).
    Phone,
    /// An email address, lowercased.
    Email,
    /// A web-chat visitor id.
    WebChat,
    /// A WhatsApp number, E.164.
    Whatsapp,
    /// A Messenger page-scoped id.
    Messenger,
    /// An Instagram id.
    Instagram,
    /// An X (Twitter) user id or handle.
    X,
    /// An SMS number, E.164.
    Sms,
    /// A Telegram user or chat id.
    Telegram,
}

impl IdentityKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Phone => "phone",
            IdentityKind::Email => "email",
            IdentityKind::WebChat => "web_chat",
            IdentityKind::Whatsapp => "whatsapp",
            IdentityKind::Messenger => "messenger",
            IdentityKind::Instagram => "instagram",
            IdentityKind::X => "x",
            IdentityKind::Sms => "sms",
            IdentityKind::Telegram => "telegram",
        }
    }

    /// Parses a stored or user-supplied name.
    pub fn parse(field: &str, s: &str) -> Result<IdentityKind> {
        Ok(match s {
            "phone" => IdentityKind::Phone,
            "email" => IdentityKind::Email,
            "web_chat" => IdentityKind::WebChat,
            "whatsapp" => IdentityKind::Whatsapp,
            "messenger" => IdentityKind::Messenger,
            "instagram" => IdentityKind::Instagram,
            "x" => IdentityKind::X,
            "sms" => IdentityKind::Sms,
            "telegram" => IdentityKind::Telegram,
            _ => {
                return Err(Error::invalid(
                    field.to_owned(),
                    "must be one of phone, email, web_chat, whatsapp, messenger, instagram, x, sms, telegram",
                ));
            }
        })
    }

    /// Normalises a value of this kind, or explains why it is not one.
    ///
    /// Phone-like kinds accept E.164 with common punctuation (`+1 (555) 010-0100`) and
    /// the international prefix `00`; a number without a country code is rejected rather
    /// than guessed. Emails are trimmed and lowercased. Other ids are trimmed.
    pub fn normalize(self, field: &str, value: &str) -> Result<String> {
        let v = value.trim();
        match self {
            IdentityKind::Phone | IdentityKind::Whatsapp | IdentityKind::Sms => e164(field, v),
            IdentityKind::Email => {
                let e = v.to_lowercase();
                let ok = e.len() <= 254
                    && !e.contains(char::is_whitespace)
                    && e.split_once('@')
                        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
                if ok {
                    Ok(e)
                } else {
                    Err(Error::invalid(field.to_owned(), "not an email address"))
                }
            }
            IdentityKind::X => {
                let h = v.trim_start_matches('@').to_lowercase();
                plain_id(field, &h)
            }
            IdentityKind::WebChat
            | IdentityKind::Messenger
            | IdentityKind::Instagram
            | IdentityKind::Telegram => plain_id(field, v),
        }
    }
}

fn plain_id(field: &str, v: &str) -> Result<String> {
    if v.is_empty() {
        Err(Error::invalid(field.to_owned(), "must not be empty"))
    } else if v.len() > 256 || v.chars().any(char::is_control) {
        Err(Error::invalid(
            field.to_owned(),
            "must be at most 256 printable characters",
        ))
    } else {
        Ok(v.to_owned())
    }
}

/// `+<country code><number>`, 6 to 15 digits (ITU-T E.164 allows at most 15).
fn e164(field: &str, v: &str) -> Result<String> {
    let rest = if let Some(r) = v.strip_prefix('+') {
        r
    } else if let Some(r) = v.strip_prefix("00") {
        r
    } else {
        return Err(Error::invalid(
            field.to_owned(),
            "phone numbers must be in E.164 form with a country code, e.g. +15550100",
        ));
    };
    let mut digits = String::with_capacity(16);
    digits.push('+');
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => {
                return Err(Error::invalid(
                    field.to_owned(),
                    format!("unexpected character {c:?} in a phone number"),
                ));
            }
        }
    }
    let n = digits.len() - 1;
    if !(6..=15).contains(&n) || digits.as_bytes().get(1) == Some(&b'0') {
        return Err(Error::invalid(
            field.to_owned(),
            "phone numbers must have 6 to 15 digits after '+' and not start with 0",
        ));
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(kind: IdentityKind, v: &str) -> Result<String> {
        kind.normalize("value", v)
    }

    #[test]
    fn phones_normalise_to_e164() {
        for (input, want) in [
            ("+15550100", "+15550100"),
            ("+1 (555) 010-0100", "+15550100100"),
            ("0044 20 7946 0018", "+442079460018"),
            ("  +49.30.1234567 ", "+49301234567"),
        ] {
            assert_eq!(n(IdentityKind::Phone, input).unwrap(), want, "{input}");
        }
        for bad in [
            "5550100",
            "+",
            "+0123456",
            "+1234567890123456",
            "+1555x0100",
            "",
        ] {
            assert!(n(IdentityKind::Phone, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_lowercase_and_x_handles_drop_the_at() {
        assert_eq!(
            n(IdentityKind::Email, " Ann@Example.com").unwrap(),
            "ann@example.com"
        );
        assert!(n(IdentityKind::Email, "ann@localhost").is_err());
        assert_eq!(n(IdentityKind::X, "@Parley").unwrap(), "parley");
        assert!(n(IdentityKind::WebChat, " ").is_err());
    }

    #[test]
    fn kinds_round_trip() {
        for k in [
            IdentityKind::Phone,
            IdentityKind::Email,
            IdentityKind::WebChat,
            IdentityKind::Whatsapp,
            IdentityKind::Messenger,
            IdentityKind::Instagram,
            IdentityKind::X,
            IdentityKind::Sms,
        ] {
            assert_eq!(IdentityKind::parse("kind", k.as_str()).unwrap(), k);
        }
        assert!(IdentityKind::parse("kind", "fax").is_err());
    }
}
