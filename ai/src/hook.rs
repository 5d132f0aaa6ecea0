//! Triage on the ingestion path: [`Triager`] as the store's
//! [`parley_cases::conversations::Triage`] hook.

use parley_cases::conversations::{Conversation, InboundMessage, Triage, TriageDecision};

use crate::triage::Triager;

impl Triage for Triager {
    fn triage(
        &self,
        tenant_id: &str,
        _conversation: Option<&Conversation>,
        message: &InboundMessage,
    ) -> TriageDecision {
        let text = match &message.subject {
            Some(s) if !s.trim().is_empty() => format!("{s}\n{}", message.text),
            _ => message.text.clone(),
        };
        let result = Triager::triage(self, Some(tenant_id), &text);
        TriageDecision {
            priority: Some(result.priority),
            tags: Vec::new(),
            skip_routing: false,
            result: Some(result),
        }
    }
}
