//! Customers and their identities: one person, however they reach us.

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::directory::check_name;
use crate::events::DomainEvent;
use crate::identity::IdentityKind;
use crate::store::Tx;
use crate::types::{Actor, Cursor, Page, Timestamp, flag, into_page, new_id, page_limit};
use crate::{Error, Result, Store};

/// One way to recognise a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Identity {
    /// Kind.
    pub kind: IdentityKind,
    /// Normalised value (E.164 phone, lowercased email, …).
    pub value: String,
}

/// Consent flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Consent {
    /// The customer agreed to calls being recorded.
    #[serde(default)]
    pub recording: bool,
    /// The customer agreed to marketing contact.
    #[serde(default)]
    pub marketing: bool,
}

/// A customer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Customer {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Every identity resolving to this customer.
    pub identities: Vec<Identity>,
    /// Consent flags.
    pub consent: Consent,
    /// Set when this customer was merged into another; reads should follow it.
    pub merged_into: Option<String>,
    /// Set when personal data was erased (GDPR).
    pub erased_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Input for [`Store::create_customer`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewCustomer {
    /// Display name.
    pub name: String,
    /// Identities as typed; normalised on write.
    #[serde(default)]
    pub identities: Vec<RawIdentity>,
    /// Consent flags (default: none given).
    #[serde(default)]
    pub consent: Consent,
}

/// An identity as supplied by a client, before validation.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RawIdentity {
    /// Kind name (`phone`, `email`, …).
    pub kind: String,
    /// Value as typed.
    pub value: String,
}

/// Changes for [`Store::update_customer`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CustomerPatch {
    /// New display name.
    pub name: Option<String>,
    /// New consent flags.
    pub consent: Option<Consent>,
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: String,
    name: String,
    consent_recording: i64,
    consent_marketing: i64,
    merged_into: Option<String>,
    erased_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const CUSTOMER_COLS: &str = "id, name, consent_recording, consent_marketing, merged_into, erased_at, created_at, updated_at";

pub(crate) fn validate_identities(raw: &[RawIdentity]) -> Result<Vec<Identity>> {
    let mut out: Vec<Identity> = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let kind = IdentityKind::parse(&format!("identities[{i}].kind"), &r.kind)?;
        let value = kind.normalize(&format!("identities[{i}].value"), &r.value)?;
        let id = Identity { kind, value };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

impl Store {
    async fn insert_identities(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        customer_id: &str,
        ids: &[Identity],
        now: Timestamp,
    ) -> Result<()> {
        for (i, ident) in ids.iter().enumerate() {
            let owner: Option<(String,)> = sqlx::query_as(
                "SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
            )
            .bind(&actor.tenant_id)
            .bind(ident.kind.as_str())
            .bind(&ident.value)
            .fetch_optional(&mut **tx)
            .await?;
            match owner {
                Some((owner,)) if owner == customer_id => continue,
                Some((owner,)) => {
                    return Err(Error::Conflict {
                        entity: "customer",
                        field: format!("identities[{i}]").into(),
                        detail: Some(format!(
                            "{} {} already belongs to customer {owner}",
                            ident.kind.as_str(),
                            ident.value
                        )),
                    });
                }
                None => {}
            }
            sqlx::query(
                "INSERT INTO customer_identities (id, tenant_id, customer_id, kind, value, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new_id())
            .bind(&actor.tenant_id)
            .bind(customer_id)
            .bind(ident.kind.as_str())
            .bind(&ident.value)
            .bind(now.0)
            .execute(&mut **tx)
            .await
            .map_err(|e| Error::from_unique(e, "customer", "identities"))?;
        }
        Ok(())
    }

    /// Creates a customer with its identities. An identity already owned by another
    /// customer is a conflict (resolve it with a merge, never silently).
    pub async fn create_customer(&self, actor: &Actor, new: NewCustomer) -> Result<Customer> {
        let name = check_name("name", &new.name, 256)?;
        let identities = validate_identities(&new.identities)?;
        let now = self.now();
        let customer = Customer {
            id: new_id(),
            name,
            identities,
            consent: new.consent,
            merged_into: None,
            erased_at: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO customers (id, tenant_id, name, consent_recording, consent_marketing, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&customer.id)
        .bind(&actor.tenant_id)
        .bind(&customer.name)
        .bind(flag(customer.consent.recording))
        .bind(flag(customer.consent.marketing))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        self.insert_identities(&mut tx, actor, &customer.id, &customer.identities, now)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "customer.create",
                entity_kind: "customer",
                entity_id: &customer.id,
                subject_customer_id: Some(&customer.id),
                before: None,
                after: snapshot(&customer),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [
                DomainEvent::new(&actor.tenant_id, "customer.created", &customer)
                    .customer(&customer.id),
            ],
        )
        .await?;
        Ok(customer)
    }

    /// A customer of the actor's tenant (merged and erased ones included, flagged).
    pub async fn customer(&self, actor: &Actor, id: &str) -> Result<Customer> {
        let row: Option<CustomerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLS} FROM customers WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let row = row.ok_or_else(|| Error::not_found("customer"))?;
        let identities = self.identities_of(actor, id).await?;
        Ok(row.into_customer(identities))
    }

    async fn identities_of(&self, actor: &Actor, id: &str) -> Result<Vec<Identity>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT kind, value FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2
             ORDER BY created_at, kind, value",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(k, value)| {
                Ok(Identity {
                    kind: IdentityKind::parse("kind", &k)?,
                    value,
                })
            })
            .collect()
    }

    async fn identities_of_many<'a>(
        &self,
        actor: &Actor,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<std::collections::HashMap<String, Vec<Identity>>> {
        let ids: Vec<&str> = ids.collect();
        let mut out: std::collections::HashMap<String, Vec<Identity>> =
            std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT customer_id, kind, value FROM customer_identities
             WHERE tenant_id = $1 AND customer_id IN ({}) ORDER BY created_at, kind, value",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(sql))
            .bind(&actor.tenant_id);
        for id in ids {
            q = q.bind(id);
        }
        for (customer_id, kind, value) in q.fetch_all(self.pool()).await? {
            let kind = IdentityKind::parse("kind", &kind)?;
            out.entry(customer_id)
                .or_default()
                .push(Identity { kind, value });
        }
        Ok(out)
    }

    /// The live customer behind `id`, following merges.
    pub(crate) async fn live_customer_id(&self, actor: &Actor, id: &str) -> Result<String> {
        let mut current = id.to_owned();
        // Merge chains are short; the bound protects against a cycle in corrupted data.
        for _ in 0..16 {
            let row: Option<(Option<String>,)> = sqlx::query_as(
                "SELECT merged_into FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&actor.tenant_id)
            .bind(&current)
            .fetch_optional(self.pool())
            .await?;
            match row {
                None => return Err(Error::not_found("customer")),
                Some((None,)) => return Ok(current),
                Some((Some(next),)) => current = next,
            }
        }
        Err(Error::not_found("customer"))
    }

    /// Resolves an identity (normalised first) to its customer.
    pub async fn lookup_customer(
        &self,
        actor: &Actor,
        kind: &str,
        value: &str,
    ) -> Result<Customer> {
        let kind = IdentityKind::parse("kind", kind)?;
        let value = kind.normalize("value", value)?;
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT customer_id FROM customer_identities WHERE tenant_id = $1 AND kind = $2 AND value = $3",
        )
        .bind(&actor.tenant_id)
        .bind(kind.as_str())
        .bind(&value)
        .fetch_optional(self.pool())
        .await?;
        let (id,) = row.ok_or_else(|| Error::not_found("customer"))?;
        self.customer(actor, &id).await
    }

    /// Customers, newest first; `query` filters by name (case-insensitive substring).
    pub async fn list_customers(
        &self,
        actor: &Actor,
        query: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Customer>> {
        let limit = page_limit(limit);
        let cursor = cursor.map(Cursor::decode).transpose()?;
        let pattern =
            query.map(|q| format!("%{}%", q.trim().to_lowercase().replace(['%', '_'], "")));
        let rows: Vec<CustomerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLS} FROM customers
             WHERE tenant_id = $1 AND merged_into IS NULL
               AND ($2 IS NULL OR LOWER(name) LIKE $2)
               AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4))
             ORDER BY created_at DESC, id DESC LIMIT $5"
        )))
        .bind(&actor.tenant_id)
        .bind(pattern)
        .bind(cursor.as_ref().map(|c| c.at))
        .bind(cursor.as_ref().map(|c| c.id.clone()))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        // One query for the whole page's identities rather than one per customer.
        let mut identities = self
            .identities_of_many(actor, rows.iter().map(|r| r.id.as_str()))
            .await?;
        let items = rows
            .into_iter()
            .map(|r| {
                let ids = identities.remove(&r.id).unwrap_or_default();
                r.into_customer(ids)
            })
            .collect();
        Ok(into_page(items, limit, |c| Cursor {
            at: c.created_at.0,
            id: c.id.clone(),
        }))
    }

    /// Renames a customer or changes consent.
    pub async fn update_customer(
        &self,
        actor: &Actor,
        id: &str,
        patch: CustomerPatch,
    ) -> Result<Customer> {
        let before = self.customer(actor, id).await?;
        if before.erased_at.is_some() {
            return Err(Error::invalid("id", "this customer's data was erased"));
        }
        let mut after = before.clone();
        if let Some(n) = &patch.name {
            after.name = check_name("name", n, 256)?;
        }
        if let Some(c) = patch.consent {
            after.consent = c;
        }
        let now = self.now();
        after.updated_at = now;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE customers SET name = $1, consent_recording = $2, consent_marketing = $3, updated_at = $4
             WHERE tenant_id = $5 AND id = $6",
        )
        .bind(&after.name)
        .bind(flag(after.consent.recording))
        .bind(flag(after.consent.marketing))
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
                action: "customer.update",
                entity_kind: "customer",
                entity_id: id,
                subject_customer_id: Some(id),
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [DomainEvent::new(&actor.tenant_id, "customer.updated", &after).customer(id)],
        )
        .await?;
        Ok(after)
    }

    /// Adds identities to a customer.
    pub async fn add_identities(
        &self,
        actor: &Actor,
        id: &str,
        raw: &[RawIdentity],
    ) -> Result<Customer> {
        let ids = validate_identities(raw)?;
        let id = self.live_customer_id(actor, id).await?;
        let before = self.customer(actor, &id).await?;
        if before.erased_at.is_some() {
            return Err(Error::invalid("id", "this customer's data was erased"));
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        self.insert_identities(&mut tx, actor, &id, &ids, now)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "customer.add_identities",
                entity_kind: "customer",
                entity_id: &id,
                subject_customer_id: Some(&id),
                before: snapshot(&before.identities),
                after: snapshot(&ids),
            },
        )
        .await?;
        let mut after = before.clone();
        for i in &ids {
            if !after.identities.contains(i) {
                after.identities.push(i.clone());
            }
        }
        after.updated_at = now;
        let e = DomainEvent::new(&actor.tenant_id, "customer.updated", &after).customer(&id);
        self.commit_audited(tx, audited, [e]).await?;
        self.customer(actor, &id).await
    }

    /// Merges `source` into `target`: identities, timeline and cases move to the target,
    /// the source stays (flagged `merged_into`) so old links still resolve, and a system
    /// entry on the target's timeline records it. Explicit and audited, never automatic.
    pub async fn merge_customers(
        &self,
        actor: &Actor,
        source: &str,
        target: &str,
    ) -> Result<Customer> {
        if source == target {
            return Err(Error::invalid(
                "into",
                "cannot merge a customer into itself",
            ));
        }
        let src = self.customer(actor, source).await?;
        let dst = self.customer(actor, target).await?;
        if src.merged_into.is_some() || dst.merged_into.is_some() {
            return Err(Error::Conflict {
                entity: "customer",
                field: "merged_into".into(),
                detail: Some("already merged; merge into the surviving customer".into()),
            });
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        for table in ["customer_identities", "interactions", "cases"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET customer_id = $1 WHERE tenant_id = $2 AND customer_id = $3"
            )))
            .bind(target)
            .bind(&actor.tenant_id)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE customers SET merged_into = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(target)
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE customers SET updated_at = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(now.0)
            .bind(&actor.tenant_id)
            .bind(target)
            .execute(&mut *tx)
            .await?;
        let body = format!(
            "Customer {} ({}) merged into this customer",
            src.name, src.id
        );
        crate::timeline::insert_system_entry(&mut tx, actor, target, None, &body, now).await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "customer.merge",
                entity_kind: "customer",
                entity_id: target,
                subject_customer_id: Some(target),
                before: snapshot(&serde_json::json!({ "source": src, "target": dst })),
                after: snapshot(&serde_json::json!({ "merged": source, "into": target })),
            },
        )
        .await?;
        // The surviving customer as it now reads: the source's identities joined.
        let mut merged = dst.clone();
        merged.identities.extend(src.identities.iter().cloned());
        merged.updated_at = now;
        let e = DomainEvent::new(&actor.tenant_id, "customer.merged", &merged).customer(target);
        self.commit_audited(tx, audited, [e]).await?;
        self.customer(actor, target).await
    }
}

impl CustomerRow {
    fn into_customer(self, identities: Vec<Identity>) -> Customer {
        Customer {
            id: self.id,
            name: self.name,
            identities,
            consent: Consent {
                recording: self.consent_recording != 0,
                marketing: self.consent_marketing != 0,
            },
            merged_into: self.merged_into,
            erased_at: self.erased_at.map(Timestamp),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        }
    }
}
