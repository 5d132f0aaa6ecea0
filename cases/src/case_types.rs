//! Case types and their custom fields, validated on every write.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::{self, Record, snapshot};
use crate::directory::check_name;
use crate::events::DomainEvent;
use crate::types::{Actor, Timestamp, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

/// The type of a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text (at most 10,000 characters).
    Text,
    /// A JSON number.
    Number,
    /// true / false.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of `values`.
    Enum,
}

/// One custom field of a case type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct FieldDef {
    /// Key in `custom_fields` (`[a-z][a-z0-9_]*`).
    pub key: String,
    /// Label shown in forms.
    #[serde(default)]
    pub label: String,
    /// Value type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Must be present on every case of this type.
    #[serde(default)]
    pub required: bool,
    /// Allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A case type (e.g. "Billing dispute") with its form.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CaseType {
    /// Id.
    pub id: String,
    /// Unique name in the tenant.
    pub name: String,
    /// Custom fields.
    pub fields: Vec<FieldDef>,
    /// Created.
    pub created_at: Timestamp,
}

/// Checks field definitions themselves.
pub fn validate_defs(defs: &[FieldDef]) -> Result<()> {
    for (i, d) in defs.iter().enumerate() {
        let key_ok = d.key.len() <= 64
            && d.key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && d.key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            return Err(Error::invalid(
                format!("fields[{i}].key"),
                "must match [a-z][a-z0-9_]* (max 64)",
            ));
        }
        if defs[..i].iter().any(|o| o.key == d.key) {
            return Err(Error::invalid(format!("fields[{i}].key"), "duplicate key"));
        }
        if (d.field_type == FieldType::Enum) == d.values.is_empty() {
            return Err(Error::invalid(
                format!("fields[{i}].values"),
                "enum fields need values; other types take none",
            ));
        }
    }
    Ok(())
}

/// Validates `values` against `defs`: unknown keys, missing required fields, wrong
/// types and values outside an enum are errors naming the field (`custom_fields.<key>`).
/// `null` clears an optional field.
pub fn validate_values(
    defs: &[FieldDef],
    values: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    let field = |k: &str| format!("custom_fields.{k}");
    for k in values.keys() {
        if !defs.iter().any(|d| &d.key == k) {
            return Err(Error::invalid(field(k), "no such field on this case type"));
        }
    }
    let mut out = Map::new();
    for d in defs {
        match values.get(&d.key) {
            None | Some(Value::Null) => {
                if d.required {
                    return Err(Error::invalid(field(&d.key), "is required"));
                }
            }
            Some(v) => {
                let ok = match d.field_type {
                    FieldType::Text => v.as_str().is_some_and(|s| s.chars().count() <= 10_000),
                    FieldType::Number => v.is_number(),
                    FieldType::Boolean => v.is_boolean(),
                    FieldType::Date => v
                        .as_str()
                        .is_some_and(|s| s.parse::<jiff::civil::Date>().is_ok()),
                    FieldType::Enum => v.as_str().is_some_and(|s| d.values.iter().any(|e| e == s)),
                };
                if !ok {
                    let want = match d.field_type {
                        FieldType::Text => "text (at most 10,000 characters)".to_owned(),
                        FieldType::Number => "a number".to_owned(),
                        FieldType::Boolean => "true or false".to_owned(),
                        FieldType::Date => "a date YYYY-MM-DD".to_owned(),
                        FieldType::Enum => format!("one of {}", d.values.join(", ")),
                    };
                    return Err(Error::invalid(field(&d.key), format!("must be {want}")));
                }
                out.insert(d.key.clone(), v.clone());
            }
        }
    }
    Ok(out)
}

impl Store {
    /// Creates a case type.
    pub async fn create_case_type(
        &self,
        actor: &Actor,
        name: &str,
        fields: Vec<FieldDef>,
    ) -> Result<CaseType> {
        let name = check_name("name", name, 128)?;
        validate_defs(&fields)?;
        let now = self.now();
        let ct = CaseType {
            id: new_id(),
            name,
            fields,
            created_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO case_types (id, tenant_id, name, fields, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&ct.id)
        .bind(&actor.tenant_id)
        .bind(&ct.name)
        .bind(json_text(&ct.fields))
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "case_type", "name"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "case_type.create",
                entity_kind: "case_type",
                entity_id: &ct.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&ct),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "case_type.created", &ct);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(ct)
    }

    /// Replaces a case type's fields. Existing cases keep their values; they are checked
    /// against the new form on their next write.
    pub async fn update_case_type(
        &self,
        actor: &Actor,
        id: &str,
        fields: Vec<FieldDef>,
    ) -> Result<CaseType> {
        validate_defs(&fields)?;
        let before = self.case_type(actor, id).await?;
        let now = self.now();
        let after = CaseType {
            fields,
            ..before.clone()
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE case_types SET fields = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(json_text(&after.fields))
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "case_type.update",
                entity_kind: "case_type",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "case_type.updated", &after);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(after)
    }

    /// One case type.
    pub async fn case_type(&self, actor: &Actor, id: &str) -> Result<CaseType> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, fields, created_at FROM case_types WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let (id, name, fields, at) = row.ok_or_else(|| Error::not_found("case_type"))?;
        Ok(CaseType {
            id,
            name,
            fields: from_json_text("case_type.fields", &fields)?,
            created_at: Timestamp(at),
        })
    }

    /// All case types.
    pub async fn list_case_types(&self, actor: &Actor) -> Result<Vec<CaseType>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, fields, created_at FROM case_types WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(id, name, fields, at)| {
                Ok(CaseType {
                    id,
                    name,
                    fields: from_json_text("case_type.fields", &fields)?,
                    created_at: Timestamp(at),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Vec<FieldDef> {
        serde_json::from_value(json!([
            {"key": "order_id", "type": "text", "required": true},
            {"key": "amount", "type": "number"},
            {"key": "channel", "type": "enum", "values": ["web", "store"]},
            {"key": "due", "type": "date"},
            {"key": "vip", "type": "boolean"}
        ]))
        .unwrap()
    }

    #[test]
    fn values_are_checked_field_by_field() {
        let d = defs();
        validate_defs(&d).unwrap();
        let ok = json!({"order_id": "A-1", "amount": 12.5, "channel": "web", "due": "2026-12-01", "vip": true});
        assert_eq!(
            validate_values(&d, ok.as_object().unwrap()).unwrap().len(),
            5
        );
        for (bad, field) in [
            (json!({}), "custom_fields.order_id"),
            (
                json!({"order_id": "A", "amount": "12"}),
                "custom_fields.amount",
            ),
            (
                json!({"order_id": "A", "channel": "phone"}),
                "custom_fields.channel",
            ),
            (
                json!({"order_id": "A", "due": "2026-13-01"}),
                "custom_fields.due",
            ),
            (
                json!({"order_id": "A", "colour": "red"}),
                "custom_fields.colour",
            ),
        ] {
            match validate_values(&d, bad.as_object().unwrap()) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_definitions_are_rejected() {
        let mk = |v: Value| serde_json::from_value::<Vec<FieldDef>>(v).unwrap();
        assert!(validate_defs(&mk(json!([{"key": "Bad Key", "type": "text"}]))).is_err());
        assert!(validate_defs(&mk(json!([{"key": "a", "type": "enum"}]))).is_err());
        assert!(
            validate_defs(&mk(
                json!([{"key": "a", "type": "text"}, {"key": "a", "type": "number"}])
            ))
            .is_err()
        );
    }
}
