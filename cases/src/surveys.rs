//! Post-call surveys: the caller's CSAT answer (from an IVR survey node) stored on the
//! call's interaction, next to the call on the customer's timeline.

use crate::audit::{self, Record};
use crate::events::DomainEvent;
use crate::timeline::Csat;
use crate::types::Actor;
use crate::{Error, Result, Store};

/// (customer id, kind, case id, current survey, current score)
type CsatRow = (String, String, Option<String>, Option<String>, Option<i64>);

impl Store {
    /// Stores a survey answer on a call interaction (a second answer replaces the
    /// first). `score` must be 1..=10 and the interaction a call of the actor's tenant.
    pub async fn set_interaction_csat(
        &self,
        actor: &Actor,
        interaction_id: &str,
        csat: &Csat,
    ) -> Result<()> {
        if !(1..=10).contains(&csat.score) {
            return Err(Error::invalid("score", "must be between 1 and 10"));
        }
        if csat.survey.is_empty() || csat.survey.len() > 64 {
            return Err(Error::invalid("survey", "must be 1 to 64 characters"));
        }
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let row: Option<CsatRow> = sqlx::query_as(
            "SELECT customer_id, kind, case_id, csat_survey, csat_score FROM interactions
                 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(interaction_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((customer_id, kind, case_id, old_survey, old_score)) = row else {
            return Err(Error::not_found("interaction"));
        };
        if kind != "call" {
            return Err(Error::invalid("interaction_id", "not a call"));
        }
        sqlx::query(
            "UPDATE interactions SET csat_survey = $1, csat_score = $2
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(&csat.survey)
        .bind(i64::from(csat.score))
        .bind(&actor.tenant_id)
        .bind(interaction_id)
        .execute(&mut *tx)
        .await?;
        let before = old_survey
            .zip(old_score)
            .map(|(s, n)| serde_json::json!({"survey": s, "score": n}));
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "interaction.csat",
                entity_kind: "interaction",
                entity_id: interaction_id,
                subject_customer_id: Some(&customer_id),
                before,
                after: Some(serde_json::json!({"survey": csat.survey, "score": csat.score})),
            },
        )
        .await?;
        let mut ev = DomainEvent::new(
            &actor.tenant_id,
            "interaction.csat",
            &serde_json::json!({"interaction_id": interaction_id, "survey": csat.survey, "score": csat.score}),
        )
        .customer(&customer_id);
        if let Some(c) = &case_id {
            ev = ev.case(c);
        }
        self.commit_audited(tx, audited, [ev]).await?;
        Ok(())
    }
}
