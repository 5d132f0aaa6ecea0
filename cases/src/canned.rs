//! Canned responses: a tenant's library of reply templates for the agent desktop's reply
//! box (migration 0021 `canned_responses`). A template's body may hold placeholders
//! (`{{customer.name}}`, see [`PLACEHOLDERS`]), checked when it is written — an unknown
//! name is refused, naming it — and filled in by [`render`] (the reply box does the same
//! in the browser, `web/ui/pages/canned.js`). Admins write the library (audited,
//! `canned_response.*` events to every user of the tenant); every user reads it.

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::directory::check_name;
use crate::events::DomainEvent;
use crate::types::{Actor, Timestamp, new_id};
use crate::{Error, Result, Store};

/// The placeholders a template may use, with what each stands for.
pub const PLACEHOLDERS: [(&str, &str); 6] = [
    ("customer.name", "the customer's name"),
    (
        "customer.first_name",
        "the first word of the customer's name",
    ),
    ("customer.email", "the customer's email address"),
    ("customer.phone", "the customer's phone number"),
    ("agent.name", "the replying agent's name"),
    (
        "agent.first_name",
        "the first word of the replying agent's name",
    ),
];

/// The longest body, in characters.
pub const MAX_BODY_CHARS: usize = 10_000;

/// One template of the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CannedResponse {
    /// Id.
    pub id: String,
    /// What an agent types after `/` in the reply box to find it (`[a-z0-9_-]`, unique
    /// in the tenant).
    pub shortcut: String,
    /// A short title shown in the picker.
    pub title: String,
    /// The text, with placeholders like `{{customer.name}}`.
    pub body: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A template as written by an admin (create, or replace).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewCannedResponse {
    /// `[a-z0-9_-]`, 1 to 32 characters, unique in the tenant.
    pub shortcut: String,
    /// 1 to 128 characters.
    pub title: String,
    /// 1 to 10,000 characters; placeholders from the known list only.
    pub body: String,
}

/// The placeholder names in `body`, in order of appearance (`{{ name }}`, spaces
/// allowed inside the braces). An opening `{{` without its `}}` is an error.
pub fn placeholders(body: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(Error::invalid(
                "body",
                "a placeholder opened with {{ is not closed with }}",
            ));
        };
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Checks a template: shortcut, title, body length and placeholder names.
pub fn validate(new: &NewCannedResponse) -> Result<NewCannedResponse> {
    let shortcut = new.shortcut.trim().to_lowercase();
    if shortcut.is_empty()
        || shortcut.len() > 32
        || !shortcut
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(Error::invalid(
            "shortcut",
            "1 to 32 characters among a-z, 0-9, _ and -",
        ));
    }
    let title = check_name("title", &new.title, 128)?;
    let body = new.body.trim();
    if body.is_empty() {
        return Err(Error::invalid("body", "must not be empty"));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(Error::invalid(
            "body",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    for name in placeholders(body)? {
        if !PLACEHOLDERS.iter().any(|(p, _)| *p == name) {
            let known: Vec<&str> = PLACEHOLDERS.iter().map(|(p, _)| *p).collect();
            return Err(Error::invalid(
                "body",
                format!(
                    "unknown placeholder {{{{{name}}}}}; known: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(NewCannedResponse {
        shortcut,
        title,
        body: body.to_owned(),
    })
}

/// Fills the placeholders of `body` from `value(name)`; a placeholder without a value
/// is left as written, so the agent sees what still needs filling in.
pub fn render(body: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match value(after[..end].trim()) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

type Row = (String, String, String, String, i64, i64);

fn from_row((id, shortcut, title, body, created, updated): Row) -> CannedResponse {
    CannedResponse {
        id,
        shortcut,
        title,
        body,
        created_at: Timestamp(created),
        updated_at: Timestamp(updated),
    }
}

const COLS: &str = "id, shortcut, title, body, created_at, updated_at";

impl Store {
    /// The tenant's library, by shortcut.
    pub async fn list_canned_responses(&self, actor: &Actor) -> Result<Vec<CannedResponse>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM canned_responses WHERE tenant_id = $1 ORDER BY shortcut"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// One template.
    pub async fn canned_response(&self, actor: &Actor, id: &str) -> Result<CannedResponse> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM canned_responses WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(from_row)
            .ok_or_else(|| Error::not_found("canned_response"))
    }

    /// Adds a template (a taken shortcut is a conflict on `shortcut`).
    pub async fn create_canned_response(
        &self,
        actor: &Actor,
        new: NewCannedResponse,
    ) -> Result<CannedResponse> {
        let v = validate(&new)?;
        let now = self.now();
        let c = CannedResponse {
            id: new_id(),
            shortcut: v.shortcut,
            title: v.title,
            body: v.body,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO canned_responses (id, tenant_id, shortcut, title, body, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&c.id)
        .bind(&actor.tenant_id)
        .bind(&c.shortcut)
        .bind(&c.title)
        .bind(&c.body)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "canned_response", "shortcut"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "canned_response.create",
                entity_kind: "canned_response",
                entity_id: &c.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&c),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "canned_response.created", &c);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(c)
    }

    /// Replaces a template's shortcut, title and body.
    pub async fn update_canned_response(
        &self,
        actor: &Actor,
        id: &str,
        new: NewCannedResponse,
    ) -> Result<CannedResponse> {
        let v = validate(&new)?;
        let before = self.canned_response(actor, id).await?;
        let now = self.now();
        let after = CannedResponse {
            shortcut: v.shortcut,
            title: v.title,
            body: v.body,
            updated_at: now,
            ..before.clone()
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE canned_responses SET shortcut = $1, title = $2, body = $3, updated_at = $4
             WHERE tenant_id = $5 AND id = $6",
        )
        .bind(&after.shortcut)
        .bind(&after.title)
        .bind(&after.body)
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "canned_response", "shortcut"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "canned_response.update",
                entity_kind: "canned_response",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "canned_response.updated", &after);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    /// Removes a template from the library (the replies it filled are unchanged).
    pub async fn delete_canned_response(&self, actor: &Actor, id: &str) -> Result<()> {
        let before = self.canned_response(actor, id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM canned_responses WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "canned_response.delete",
                entity_kind: "canned_response",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: None,
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "canned_response.deleted",
            &serde_json::json!({ "id": id }),
        );
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }
}

/// The demo tenant's library (`cases::demo`).
pub(crate) async fn seed_demo(store: &Store, system: &Actor) -> Result<()> {
    for (shortcut, title, body) in [
        (
            "welcome",
            "Welcome",
            "Hi {{customer.first_name}}, this is {{agent.first_name}}. How can I help you today?",
        ),
        (
            "thanks",
            "Closing thanks",
            "Thank you for contacting us, {{customer.name}}. Have a good day!",
        ),
    ] {
        store
            .create_canned_response(
                system,
                NewCannedResponse {
                    shortcut: shortcut.into(),
                    title: title.into(),
                    body: body.into(),
                },
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(shortcut: &str, body: &str) -> NewCannedResponse {
        NewCannedResponse {
            shortcut: shortcut.into(),
            title: "Greeting".into(),
            body: body.into(),
        }
    }

    #[test]
    fn placeholders_are_read_and_checked() {
        assert_eq!(
            placeholders("Hi {{customer.name}}, I'm {{ agent.first_name }}.").unwrap(),
            vec!["customer.name", "agent.first_name"]
        );
        assert!(validate(&new("hi", "Hello {{customer.first_name}}")).is_ok());
        for (shortcut, body, field) in [
            ("hi", "Hello {{customer.shoe_size}}", "body"),
            ("hi", "Hello {{customer.name", "body"),
            ("hi", "   ", "body"),
            ("Hi There", "Hello", "shortcut"),
            ("", "Hello", "shortcut"),
        ] {
            match validate(&new(shortcut, body)) {
                Err(Error::Invalid { field: f, reason }) => {
                    assert_eq!(f, field, "{shortcut} {body}: {reason}");
                    if body.contains("shoe") {
                        assert!(reason.contains("{{customer.shoe_size}}"), "{reason}");
                    }
                }
                other => panic!("{shortcut} {body}: {other:?}"),
            }
        }
        let long = "x".repeat(MAX_BODY_CHARS + 1);
        assert!(validate(&new("hi", &long)).is_err());
    }

    #[test]
    fn render_fills_known_values_and_keeps_the_rest() {
        let v = |n: &str| match n {
            "customer.name" => Some("Ann Lee".to_owned()),
            "agent.first_name" => Some("Bo".to_owned()),
            _ => None,
        };
        assert_eq!(
            render(
                "Hi {{customer.name}}, {{ agent.first_name }} here. {{customer.email}}",
                v
            ),
            "Hi Ann Lee, Bo here. {{customer.email}}"
        );
        // A value is inserted as it is, never read again as a template.
        let tricky = |_: &str| Some("{{customer.name}}".to_owned());
        assert_eq!(
            render("a {{customer.name}} b", tricky),
            "a {{customer.name}} b"
        );
        assert_eq!(render("open {{ only", v), "open {{ only");
        assert_eq!(render("no placeholders", v), "no placeholders");
    }
}
