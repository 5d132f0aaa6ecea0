//! Channel configuration as data: the fields each channel kind takes
//! ([`fields`]), checked when a channel is created or changed ([`validate`]), and the
//! secrets among them (access tokens, app secrets, passwords: [`SECRET_NAMES`]),
//! which are write-only. A channel's configuration is stored in two parts:
//! `channels.settings` (what may be shown) and `channels.secrets` (the secret values,
//! as one JSON object `{path: value}` sealed with the store's key ring,
//! [`Store::with_secret_keys`](crate::Store::with_secret_keys)). What the API shows
//! is [`redacted`]: the settings with `"has_<field>": true` where a secret is set.
//!
//! A secret is recognised by its name at any depth (email's `imap.password` and
//! `smtp_out.password` as much as WhatsApp's `access_token`); its path is the dotted
//! path of its key.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ChannelKind;
use crate::{Error, Result};

/// Names of configuration keys whose values are secrets, wherever they appear.
pub const SECRET_NAMES: &[&str] = &[
    "access_token",
    "app_secret",
    "verify_token",
    "bot_token",
    "secret_token",
    "auth_token",
    "password",
    "signing_secret",
    "consumer_secret",
    "api_key",
    "client_secret",
];

/// Keys every kind accepts (limits shared by all channels; see
/// [`super::attachments`]).
pub const COMMON_FIELDS: &[&str] = &[
    "max_attachment_bytes",
    "attachment_types",
    "max_chars",
    "max_attempts",
    "api_base_url",
];

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A non-empty string (at most 2,000 characters).
    Text,
    /// An `http://` or `https://` URL without a trailing slash needed.
    Url,
    /// A whole number.
    Integer,
    /// A JSON object (its own fields are checked by the kind's worker).
    Object,
    /// A list.
    List,
    /// `true` or `false`.
    Bool,
}

/// One configuration field of a kind.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The key.
    pub name: &'static str,
    /// Must be given when the channel is created.
    pub required: bool,
    /// What it holds.
    pub ty: FieldType,
}

const fn req(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        required: true,
        ty,
    }
}

const fn opt(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        required: false,
        ty,
    }
}

use FieldType::{Bool, Integer, List, Object, Text, Url};

const WHATSAPP: &[Field] = &[
    req("phone_number_id", Text),
    req("access_token", Text),
    req("app_secret", Text),
    req("verify_token", Text),
    opt("api_base_url", Url),
    opt("api_version", Text),
    opt("business_account_id", Text),
    opt("templates", List),
    opt("mark_read", Bool),
];

const META: &[Field] = &[
    req("page_id", Text),
    req("access_token", Text),
    req("app_secret", Text),
    req("verify_token", Text),
    opt("api_base_url", Url),
    opt("api_version", Text),
    opt("human_agent_tag", Bool),
];

const TELEGRAM: &[Field] = &[
    req("bot_token", Text),
    req("secret_token", Text),
    opt("api_base_url", Url),
];

const SMS: &[Field] = &[
    opt("provider", Text),
    opt("account_sid", Text),
    opt("auth_token", Text),
    opt("from", Text),
    opt("messaging_service_sid", Text),
    opt("api_base_url", Url),
    opt("signature", Text),
    opt("trunk_id", Text),
];

const X: &[Field] = &[
    req("user_id", Text),
    req("consumer_secret", Text),
    req("access_token", Text),
    opt("api_base_url", Url),
];

const API: &[Field] = &[
    req("signing_secret", Text),
    opt("outbound_url", Url),
    opt("api_base_url", Url),
    opt("max_attempts", Integer),
];

/// The email channel's fields (`parley_email::config::EmailConfig` reads them).
const EMAIL: &[Field] = &[
    opt("address", Text),
    opt("imap", Object),
    opt("smtp_in", Bool),
    opt("smtp_out", Object),
    opt("signature", Text),
    opt("aliases", List),
    opt("thread_window_minutes", Integer),
    opt("auto_replies_per_hour", Integer),
];

/// The fields of `kind`, or `None` where the configuration is free-form (web chat's
/// greeting and colours).
pub fn fields(kind: ChannelKind) -> Option<&'static [Field]> {
    match kind {
        ChannelKind::WebChat => None,
        ChannelKind::Email => Some(EMAIL),
        ChannelKind::Sms => Some(SMS),
        ChannelKind::Whatsapp => Some(WHATSAPP),
        ChannelKind::Messenger | ChannelKind::Instagram => Some(META),
        ChannelKind::Telegram => Some(TELEGRAM),
        ChannelKind::X => Some(X),
        ChannelKind::Api => Some(API),
    }
}

/// Whether a key names a secret.
pub fn is_secret(name: &str) -> bool {
    SECRET_NAMES.contains(&name)
}

/// Checks a complete configuration (settings and secrets merged) of `kind`: it is an
/// object, every required field is there, every field has its type, no key is
/// unknown. Errors name the field as `config.<name>`.
pub fn validate(kind: ChannelKind, config: &Value) -> Result<()> {
    let Some(obj) = config.as_object() else {
        return Err(Error::invalid("config", "must be a JSON object"));
    };
    let Some(spec) = fields(kind) else {
        return Ok(());
    };
    for f in spec {
        match obj.get(f.name) {
            None | Some(Value::Null) if f.required => {
                return Err(Error::invalid(
                    format!("config.{}", f.name),
                    format!("is required for a {} channel", kind.as_str()),
                ));
            }
            None | Some(Value::Null) => {}
            Some(v) => check_type(f, v)?,
        }
    }
    for key in obj.keys() {
        if !spec.iter().any(|f| f.name == key) && !COMMON_FIELDS.contains(&key.as_str()) {
            let known: Vec<&str> = spec.iter().map(|f| f.name).collect();
            return Err(Error::invalid(
                format!("config.{key}"),
                format!(
                    "is not a field of a {} channel (fields: {})",
                    kind.as_str(),
                    known.join(", ")
                ),
            ));
        }
    }
    if let Some(v) = obj.get("api_base_url")
        && !v.is_null()
    {
        check_type(&opt("api_base_url", Url), v)?;
    }
    Ok(())
}

fn check_type(f: &Field, v: &Value) -> Result<()> {
    let field = || format!("config.{}", f.name);
    let ok = match f.ty {
        Text => v
            .as_str()
            .is_some_and(|s| !s.trim().is_empty() && s.len() <= 2000),
        Url => v.as_str().is_some_and(|s| {
            (s.starts_with("http://") || s.starts_with("https://"))
                && s.len() <= 2000
                && !s.contains(char::is_whitespace)
        }),
        Integer => v.is_i64() || v.is_u64(),
        Object => v.is_object(),
        List => v.is_array(),
        Bool => v.is_boolean(),
    };
    if ok {
        return Ok(());
    }
    let what = match f.ty {
        Text => "must be a non-empty string",
        Url => "must be an http:// or https:// URL",
        Integer => "must be a whole number",
        Object => "must be a JSON object",
        List => "must be a list",
        Bool => "must be true or false",
    };
    Err(Error::invalid(field(), what))
}

/// Splits a configuration into what may be shown and the secrets (`{path: value}`,
/// path dotted). Secret values must be strings.
pub fn split_secrets(config: &Value) -> Result<(Value, BTreeMap<String, String>)> {
    let mut secrets = BTreeMap::new();
    let public = strip(config, "", &mut secrets)?;
    Ok((public, secrets))
}

fn strip(v: &Value, prefix: &str, secrets: &mut BTreeMap<String, String>) -> Result<Value> {
    let Some(obj) = v.as_object() else {
        return Ok(v.clone());
    };
    let mut out = Map::new();
    for (k, val) in obj {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if is_secret(k) {
            match val {
                Value::String(s) => {
                    secrets.insert(path, s.clone());
                }
                Value::Null => {}
                _ => return Err(Error::invalid(format!("config.{path}"), "must be a string")),
            }
        } else if val.is_object() {
            out.insert(k.clone(), strip(val, &path, secrets)?);
        } else {
            out.insert(k.clone(), val.clone());
        }
    }
    Ok(Value::Object(out))
}

/// Puts the secrets back into the shown settings: the complete configuration an
/// adapter works with.
pub fn merge_secrets(public: &Value, secrets: &BTreeMap<String, String>) -> Value {
    let mut out = public.clone();
    for (path, value) in secrets {
        set_path(&mut out, path, Value::String(value.clone()));
    }
    out
}

/// The settings as the API shows them: each set secret as `"has_<name>": true` beside
/// where it would be.
pub fn redacted<'a>(public: &Value, secret_paths: impl IntoIterator<Item = &'a String>) -> Value {
    let mut out = public.clone();
    for path in secret_paths {
        let (parent, name) = match path.rsplit_once('.') {
            Some((p, n)) => (Some(p), n),
            None => (None, path.as_str()),
        };
        let flag = match parent {
            Some(p) => format!("{p}.has_{name}"),
            None => format!("has_{name}"),
        };
        set_path(&mut out, &flag, Value::Bool(true));
    }
    out
}

fn set_path(v: &mut Value, path: &str, value: Value) {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let mut cur = v;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let Value::Object(obj) = cur else { return };
        if parts.peek().is_none() {
            obj.insert(p.to_owned(), value);
            return;
        }
        let next = obj
            .entry(p.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        cur = next;
    }
}

/// Applies a JSON merge patch (RFC 7396) `patch` to `target`: keys with `null` are
/// removed, objects merged, anything else replaced.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_split_at_any_depth_and_show_as_flags() {
        let config = json!({"address": "help@acme.test",
            "imap": {"host": "127.0.0.1", "user": "help", "password": "pw"},
            "smtp_out": {"host": "127.0.0.1", "password": "pw2"}});
        let (public, secrets) = split_secrets(&config).unwrap();
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets["imap.password"], "pw");
        assert!(!public.to_string().contains("pw"));
        assert_eq!(merge_secrets(&public, &secrets), config);
        let shown = redacted(&public, secrets.keys());
        assert_eq!(shown["imap"]["has_password"], json!(true));
        assert_eq!(shown["smtp_out"]["has_password"], json!(true));
        assert!(shown["imap"].get("password").is_none());
    }

    #[test]
    fn each_kind_names_what_is_missing_or_unknown() {
        let wa = json!({"phone_number_id": "1", "access_token": "t", "app_secret": "s",
            "verify_token": "v", "api_base_url": "http://127.0.0.1:9"});
        validate(ChannelKind::Whatsapp, &wa).unwrap();
        let mut missing = wa.clone();
        missing.as_object_mut().unwrap().remove("app_secret");
        let e = validate(ChannelKind::Whatsapp, &missing).unwrap_err();
        assert!(
            matches!(e, Error::Invalid { ref field, .. } if field == "config.app_secret"),
            "{e}"
        );
        let mut unknown = wa.clone();
        unknown["colour"] = json!("red");
        let e = validate(ChannelKind::Whatsapp, &unknown).unwrap_err();
        assert!(
            matches!(e, Error::Invalid { ref field, .. } if field == "config.colour"),
            "{e}"
        );
        let mut bad_url = wa;
        bad_url["api_base_url"] = json!("ftp://x");
        assert!(validate(ChannelKind::Whatsapp, &bad_url).is_err());
        validate(ChannelKind::WebChat, &json!({"greeting": "hi"})).unwrap();
        validate(
            ChannelKind::Email,
            &json!({"address": "a@b", "imap": {"password": "x"}}),
        )
        .unwrap();
        assert!(validate(ChannelKind::Telegram, &json!({"bot_token": "1:x"})).is_err());
    }

    #[test]
    fn merge_patch_replaces_merges_and_removes() {
        let mut t = json!({"a": 1, "imap": {"host": "h", "port": 1}, "b": 2});
        merge_patch(&mut t, &json!({"imap": {"port": 2}, "b": null, "c": 3}));
        assert_eq!(t, json!({"a": 1, "imap": {"host": "h", "port": 2}, "c": 3}));
    }
}
