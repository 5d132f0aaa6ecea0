//! Callers without a usable number (anonymous, withheld, not E.164): their calls are
//! filed on one "Unknown callers" customer per tenant, created on first use, so every
//! call still has a timeline entry (the interaction model requires a customer).

use crate::audit::{self, Record, snapshot};
use crate::customers::Customer;
use crate::events::DomainEvent;
use crate::types::{Actor, flag, new_id};
use crate::{Result, Store};

/// Name of the per-tenant customer that collects calls from unknown numbers.
pub const UNKNOWN_CALLERS: &str = "Unknown callers";

impl Store {
    /// The id of the tenant's "Unknown callers" customer, created (audited) on first
    /// use; concurrent first calls agree on one.
    pub async fn unknown_caller_customer(&self, actor: &Actor) -> Result<String> {
        for _ in 0..3 {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT customer_id FROM unknown_callers WHERE tenant_id = $1")
                    .bind(&actor.tenant_id)
                    .fetch_optional(self.pool())
                    .await?;
            if let Some((id,)) = found {
                return Ok(id);
            }
            let now = self.now();
            let customer = Customer {
                id: new_id(),
                name: UNKNOWN_CALLERS.to_owned(),
                identities: vec![],
                consent: Default::default(),
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
            .bind(flag(false))
            .bind(flag(false))
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO unknown_callers (tenant_id, customer_id) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(&actor.tenant_id)
            .bind(&customer.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                // Another call created it first: ours rolls back with the transaction.
                drop(tx);
                continue;
            }
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
            return Ok(customer.id);
        }
        Err(crate::Error::not_found("unknown callers customer"))
    }
}
