//! GDPR: export everything held about one customer; erase their personal data.

use serde::Serialize;

use crate::audit::{self, AuditEntry, Record};
use crate::cases::Case;
use crate::customers::Customer;
use crate::events::DomainEvent;
use crate::timeline::Interaction;
use crate::types::{Actor, Timestamp};
use crate::{Error, Result, Store};

/// Everything Parley holds about one customer (Art. 15 / Art. 20).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CustomerExport {
    /// Format version of this document.
    pub format: &'static str,
    /// When it was produced.
    pub exported_at: Timestamp,
    /// The customer with identities and consent.
    pub customer: Customer,
    /// Every interaction on their timeline, oldest first.
    pub interactions: Vec<Interaction>,
    /// Their cases.
    pub cases: Vec<Case>,
    /// Audit records about them.
    pub audit: Vec<AuditEntry>,
}

/// What an erasure removed (counts only: the receipt itself holds no personal data).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ErasureReceipt {
    /// The customer id (kept: it identifies nobody without the erased data).
    pub customer_id: String,
    /// Identities deleted.
    pub identities: u64,
    /// Interaction bodies and attachments blanked.
    pub interactions: u64,
    /// Cases whose title and custom fields were blanked.
    pub cases: u64,
    /// Audit snapshots scrubbed.
    pub audit_records: u64,
    /// When.
    pub erased_at: Timestamp,
}

/// The name an erased customer keeps.
pub const ERASED_NAME: &str = "Erased customer";

impl Store {
    /// Exports one customer's complete data as a JSON-serialisable document.
    pub async fn export_customer(&self, actor: &Actor, id: &str) -> Result<CustomerExport> {
        let customer = self.customer(actor, id).await?;
        let mut interactions = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .timeline(actor, id, Some(200), cursor.as_deref())
                .await?;
            interactions.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        interactions.reverse();
        let case_ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM cases WHERE tenant_id = $1 AND customer_id = $2 ORDER BY created_at",
        )
        .bind(&actor.tenant_id)
        .bind(&customer.id)
        .fetch_all(self.pool())
        .await?;
        let mut cases = Vec::with_capacity(case_ids.len());
        for (cid,) in case_ids {
            cases.push(self.case(actor, &cid).await?);
        }
        let audit = self.audit_about_customer(actor, &customer.id).await?;
        Ok(CustomerExport {
            format: "parley.customer-export.v1",
            exported_at: self.now(),
            customer,
            interactions,
            cases,
            audit,
        })
    }

    /// Erases a customer's personal data (Art. 17): name anonymised, identities deleted,
    /// interaction bodies and attachments blanked (the full-text index follows), case
    /// titles and custom fields blanked, consent cleared, audit snapshots about them
    /// scrubbed. Rows stay — ids, times, kinds and counts keep reports and case history
    /// whole — and one audit record of the erasure remains, holding no personal data.
    pub async fn erase_customer(&self, actor: &Actor, id: &str) -> Result<ErasureReceipt> {
        let customer = self.customer(actor, id).await?;
        if customer.merged_into.is_some() {
            return Err(Error::invalid(
                "id",
                "erase the customer this one was merged into",
            ));
        }
        let now = self.now();
        let t = &actor.tenant_id;
        let mut tx = self.write_tx().await?;
        // Customers merged into this one are the same person.
        let merged: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM customers WHERE tenant_id = $1 AND merged_into = $2")
                .bind(t)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let mut subjects: Vec<String> = merged.into_iter().map(|(m,)| m).collect();
        subjects.push(id.to_owned());
        let (mut identities, mut interactions, mut cases, mut audit_records) = (0, 0, 0, 0);
        for s in &subjects {
            sqlx::query(
                "UPDATE customers SET name = $1, consent_recording = 0, consent_marketing = 0, erased_at = $2, updated_at = $2
                 WHERE tenant_id = $3 AND id = $4",
            )
            .bind(ERASED_NAME)
            .bind(now.0)
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?;
            identities += sqlx::query(
                "DELETE FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "DELETE FROM transcript_segments WHERE tenant_id = $1 AND interaction_id IN
                   (SELECT id FROM interactions WHERE tenant_id = $1 AND customer_id = $2)",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?;
            interactions += sqlx::query(
                "UPDATE interactions SET body = '', attachments = '[]', intent = NULL WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            cases += sqlx::query("UPDATE cases SET title = '[erased]', custom_fields = '{}' WHERE tenant_id = $1 AND customer_id = $2")
                .bind(t)
                .bind(s)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Case history keeps its shape; edits that carried titles or field values are blanked.
            sqlx::query(
                "UPDATE case_events SET data = '{}' WHERE tenant_id = $1 AND kind = 'updated'
                 AND case_id IN (SELECT id FROM cases WHERE tenant_id = $1 AND customer_id = $2)",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?;
            audit_records += sqlx::query(
                "UPDATE audit_log SET before = NULL, after = NULL WHERE tenant_id = $1 AND subject_customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let receipt = ErasureReceipt {
            customer_id: id.to_owned(),
            identities,
            interactions,
            cases,
            audit_records,
            erased_at: now,
        };
        // Deliberately no subject_customer_id and only counts: this record must survive
        // any later scrub and holds nothing personal.
        audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "customer.erase",
                entity_kind: "customer",
                entity_id: id,
                subject_customer_id: None,
                before: None,
                after: audit::snapshot(&receipt),
            },
        )
        .await?;
        tx.commit().await?;
        self.publish([DomainEvent::new(t, "customer.erased", &receipt).customer(id)]);
        Ok(receipt)
    }
}
