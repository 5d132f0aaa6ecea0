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
    /// Audit snapshots scrubbed (about them, or holding one of their identities).
    pub audit_records: u64,
    /// Call records whose numbers were blanked and recordings dropped.
    pub call_records: u64,
    /// Callbacks whose number was blanked (open ones cancelled).
    pub callbacks: u64,
    /// Conversation messages whose text was blanked (attachments deleted, unsent
    /// replies cancelled).
    pub messages: u64,
    /// Recording and voicemail files deleted.
    pub files: u64,
    /// TTS cache files deleted (rendered prompts may have spoken their data).
    pub tts_cache_files: u64,
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
    /// titles and custom fields blanked, consent cleared, audit snapshots about them or
    /// holding one of their identities scrubbed, call records' numbers blanked,
    /// callbacks' numbers blanked (open ones cancelled), transcripts deleted; then their
    /// recording and voicemail files and the TTS cache are deleted from the files
    /// directory ([`Store::with_files_dir`]). Rows stay — ids, times, kinds and counts
    /// keep reports and case history whole — and one audit record of the erasure
    /// remains, holding no personal data.
    pub async fn erase_customer(&self, actor: &Actor, id: &str) -> Result<ErasureReceipt> {
        let customer = self.customer(actor, id).await?;
        if customer.merged_into.is_some() {
            return Err(Error::invalid(
                "id",
                "erase the customer this one was merged into",
            ));
        }
        // Refused dials hold the number as it was typed (national formats, spaces), read
        // with the tenant's country to be matched with their numbers.
        let policy = self.dial_policy(actor).await?;
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
        let (mut call_records, mut callbacks, mut messages) = (0, 0, 0);
        let mut attachment_hashes: Vec<String> = Vec::new();
        let mut files: Vec<String> = Vec::new();
        let mut cancelled: Vec<(String, String)> = Vec::new();
        for s in &subjects {
            // What identifies them elsewhere: numbers on call records, values in audit
            // snapshots of other entities.
            let values: Vec<(String, String)> = sqlx::query_as(
                "SELECT kind, value FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .fetch_all(&mut *tx)
            .await?;
            let numbers: Vec<String> = values
                .iter()
                .filter(|(k, _)| k == "phone" || k == "sms" || k == "whatsapp")
                .flat_map(|(_, v)| {
                    let bare = v.trim_start_matches('+').to_owned();
                    [v.clone(), bare]
                })
                .collect();
            // Files their interactions and call records point at.
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT attachments FROM interactions WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .fetch_all(&mut *tx)
            .await?;
            for (json,) in rows {
                let atts: Vec<crate::timeline::Attachment> =
                    serde_json::from_str(&json).unwrap_or_default();
                files.extend(atts.into_iter().filter_map(|a| a.location));
            }
            let recs: Vec<(Option<String>,)> = sqlx::query_as(
                "SELECT recording FROM call_records WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .fetch_all(&mut *tx)
            .await?;
            files.extend(recs.into_iter().filter_map(|(r,)| r));
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
            // Contacts they claimed, transcript requests (an address each) and portal
            // sessions (issue #17).
            for table in ["customer_claims", "transcript_requests", "portal_sessions"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE tenant_id = $1 AND customer_id = $2"
                )))
                .bind(t)
                .bind(s)
                .execute(&mut *tx)
                .await?;
            }
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
            // Audit snapshots of other entities that hold one of their identities (a
            // click-to-call's number, a callback's, an email typed into a case…).
            for (_, v) in &values {
                if v.len() < 4 {
                    continue; // too short to match safely
                }
                let pattern = format!("%{}%", like_escape(v));
                audit_records += sqlx::query(
                    "UPDATE audit_log SET before = NULL, after = NULL
                     WHERE tenant_id = $1 AND (before LIKE $2 ESCAPE '\\' OR after LIKE $2 ESCAPE '\\')",
                )
                .bind(t)
                .bind(&pattern)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            // Refused dials (`dial.refused`) name no customer and hold the number as it
            // was given (`020 7946 0000`, `1 555 0177`): read each with the tenant's
            // country and compare digits; a match keeps the rule but loses the number.
            audit_records += erase_refused_dials(&mut tx, t, &policy, &numbers).await?;
            // Call records: their number goes, the recording reference with the file.
            call_records += sqlx::query(
                "UPDATE call_records SET caller = CASE WHEN direction = 'outbound' THEN caller ELSE '[erased]' END,
                        dialled = CASE WHEN direction = 'outbound' THEN '[erased]' ELSE dialled END,
                        recording = NULL,
                        recording_deleted_at = CASE WHEN recording IS NULL THEN recording_deleted_at ELSE $3 END
                 WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            for n in &numbers {
                for col in ["caller", "dialled"] {
                    call_records += sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE call_records SET {col} = '[erased]' WHERE tenant_id = $1 AND {col} = $2"
                    )))
                    .bind(t)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE live_calls SET {col} = '[erased]' WHERE tenant_id = $1 AND {col} = $2"
                    )))
                    .bind(t)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            // Callbacks: the number goes; open ones are cancelled (nobody should dial
            // an erased customer) and the running router is told below.
            let open: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, item FROM callbacks WHERE tenant_id = $1 AND customer_id = $2 AND state IN ('waiting', 'dialling')",
            )
            .bind(t)
            .bind(s)
            .fetch_all(&mut *tx)
            .await?;
            cancelled.extend(open);
            callbacks += sqlx::query(
                "UPDATE callbacks SET number = '[erased]', last_error = NULL, updated_at = $3,
                        state = CASE WHEN state IN ('waiting', 'dialling') THEN 'cancelled' ELSE state END
                 WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // Conversations (issue #17): messages lose their text, attachments their
            // rows (the files go below when nothing else holds them), unsent replies
            // are cancelled; the conversation loses its thread key (an address, a
            // visitor id), subject, tags and CSAT comment.
            let hashes: Vec<(String,)> = sqlx::query_as(
                "SELECT a.sha256 FROM message_attachments a JOIN conversations c ON c.id = a.conversation_id
                 WHERE c.tenant_id = $1 AND c.customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .fetch_all(&mut *tx)
            .await?;
            attachment_hashes.extend(hashes.into_iter().map(|(h,)| h));
            sqlx::query(
                "DELETE FROM message_attachments WHERE tenant_id = $1 AND conversation_id IN
                   (SELECT id FROM conversations WHERE tenant_id = $1 AND customer_id = $2)",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE message_deliveries SET state = 'failed', last_error = 'customer erased', updated_at = $3
                 WHERE tenant_id = $1 AND state = 'pending' AND message_id IN
                   (SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
                    WHERE c.tenant_id = $1 AND c.customer_id = $2)",
            )
            .bind(t)
            .bind(s)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE message_status_events SET reason = NULL WHERE tenant_id = $1 AND message_id IN
                   (SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
                    WHERE c.tenant_id = $1 AND c.customer_id = $2)",
            )
            .bind(t)
            .bind(s)
            .execute(&mut *tx)
            .await?;
            messages += sqlx::query(
                "UPDATE messages SET text = '', html = NULL, failure_reason = NULL,
                        status = CASE WHEN status = 'queued' THEN 'failed' ELSE status END, updated_at = $3
                 WHERE tenant_id = $1 AND conversation_id IN
                   (SELECT id FROM conversations WHERE tenant_id = $1 AND customer_id = $2)",
            )
            .bind(t)
            .bind(s)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "UPDATE conversations SET thread_key = '[erased]:' || id, subject = NULL, tags = '[]',
                        csat_comment = NULL, updated_at = $3
                 WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            // Routed work items about them: the title (free text) goes.
            sqlx::query(
                "UPDATE work_items SET title = '[erased]', updated_at = $3
                 WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(t)
            .bind(s)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        }
        // Attachment files (stored once per tenant by content hash) that no other
        // message of the tenant holds.
        attachment_hashes.sort();
        attachment_hashes.dedup();
        for h in attachment_hashes {
            let (held,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM message_attachments WHERE tenant_id = $1 AND sha256 = $2",
            )
            .bind(t)
            .bind(&h)
            .fetch_one(&mut *tx)
            .await?;
            if held == 0 {
                files.push(crate::conversations::attachment_location(t, &h));
            }
        }
        let mut receipt = ErasureReceipt {
            customer_id: id.to_owned(),
            identities,
            interactions,
            cases,
            audit_records,
            call_records,
            callbacks,
            messages,
            files: 0,
            tts_cache_files: 0,
            erased_at: now,
        };
        // The files go after the rows that point at them; what cannot be deleted is
        // logged (and counted out of the receipt), never silently kept as "erased".
        files.sort();
        files.dedup();
        if let Some(root) = self.files_dir() {
            for loc in &files {
                match stored_file(root, loc) {
                    Some(p) => match std::fs::remove_file(&p) {
                        Ok(()) => receipt.files += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            tracing::error!(file = %p.display(), error = %e, "erasure: cannot delete a file")
                        }
                    },
                    None => tracing::warn!(location = %loc, "erasure: not a stored file location"),
                }
            }
            receipt.tts_cache_files = clear_dir(&root.join("tts"));
        } else if !files.is_empty() {
            tracing::error!(
                files = files.len(),
                "erasure: no files directory configured; files not deleted"
            );
        }

        // Deliberately no subject_customer_id and only counts: this record must survive
        // any later scrub and holds nothing personal.
        let audited = audit::write(
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
        let mut events = vec![DomainEvent::new(t, "customer.erased", &receipt).customer(id)];
        for (cb, item) in &cancelled {
            // What the ACD follows to drop a cancelled callback from its router (no
            // number: it is erased).
            let mut e = DomainEvent::new(
                t,
                "callback.changed",
                &serde_json::json!({ "id": cb, "item": item, "state": "cancelled" }),
            )
            .customer(id);
            e.min_role = crate::types::Role::Supervisor;
            events.push(e);
        }
        self.commit_audited(tx, audited, events).await?;
        Ok(receipt)
    }
}

/// Redacts the number of each `dial.refused` audit record of tenant `t` that dials
/// one of `numbers` (E.164 and bare digits); returns how many.
async fn erase_refused_dials(
    tx: &mut crate::store::Tx,
    t: &str,
    policy: &crate::dialpolicy::DialPolicy,
    numbers: &[String],
) -> Result<u64> {
    let digits = |v: &str| -> String { v.chars().filter(char::is_ascii_digit).collect() };
    let wanted: Vec<String> = numbers
        .iter()
        .map(|n| digits(n))
        .filter(|d| d.len() >= 4)
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, after FROM audit_log
         WHERE tenant_id = $1 AND action = 'dial.refused' AND after IS NOT NULL",
    )
    .bind(t)
    .fetch_all(&mut **tx)
    .await?;
    let mut n = 0;
    for (id, after) in rows {
        let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&after) else {
            continue;
        };
        let Some(raw) = doc.get("number").and_then(|v| v.as_str()) else {
            continue;
        };
        let as_given = digits(raw);
        let read = policy.normalize(raw).map(|e| digits(&e)).ok();
        let hit = wanted
            .iter()
            .any(|w| *w == as_given || read.as_deref() == Some(w.as_str()));
        if !hit {
            continue;
        }
        doc["number"] = serde_json::Value::from("[erased]");
        n += sqlx::query("UPDATE audit_log SET after = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(doc.to_string())
            .bind(t)
            .bind(&id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(n)
}

/// `loc` (relative to the files directory, as stored) as a path under `root`; `None`
/// for anything absolute or climbing out.
pub(crate) fn stored_file(root: &std::path::Path, loc: &str) -> Option<std::path::PathBuf> {
    let rel = std::path::Path::new(loc);
    let plain = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (plain && !loc.is_empty()).then(|| root.join(rel))
}

/// Deletes the files directly in `dir`; returns how many.
fn clear_dir(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count() as u64
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
