//! Transfer, consultation and conference targets given over the API are read like every
//! dialled number: with the tenant's dial-policy country (national formats work).

use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use parley_cases::{Role, Timestamp};
use parley_web::{
    AppState, CallCommand, CallControl, CallControlError, CallTarget, LiveCall, LiveLeg, WebConfig,
    app,
};
use serde_json::json;

use crate::T;

/// `call-1` of one tenant, its agent on it; remembers the commands it was given.
struct Recorder {
    tenant: String,
    agent: String,
    seen: Mutex<Vec<CallCommand>>,
}

impl Recorder {
    fn call(&self) -> LiveCall {
        LiveCall {
            id: "call-1".into(),
            state: "talking".into(),
            direction: "inbound".into(),
            customer_number: "+442079460000".into(),
            started_at: Timestamp(0),
            answered_at: Some(Timestamp(1000)),
            duration_s: 10,
            talk_s: Some(9),
            agent_user_id: Some(self.agent.clone()),
            held: false,
            muted: false,
            recording_paused: false,
            disposition: None,
            legs: vec![LiveLeg {
                role: "agent".into(),
                user_id: Some(self.agent.clone()),
                address: "1001".into(),
                state: "up".into(),
                mode: "full".into(),
            }],
        }
    }
}

impl CallControl for Recorder {
    fn list(&self, tenant_id: &str) -> Vec<LiveCall> {
        self.get(tenant_id, "call-1").into_iter().collect()
    }

    fn get(&self, tenant_id: &str, call_id: &str) -> Option<LiveCall> {
        (tenant_id == self.tenant && call_id == "call-1").then(|| self.call())
    }

    fn originate<'a>(
        &'a self,
        _tenant_id: &'a str,
        _agent_user_id: &'a str,
        _agent_extension: &'a str,
        _number: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, CallControlError>> + Send + 'a>,
    > {
        Box::pin(async { Err(CallControlError::NotFound) })
    }

    fn command<'a>(
        &'a self,
        _tenant_id: &'a str,
        _call_id: &'a str,
        command: CallCommand,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), CallControlError>> + Send + 'a>,
    > {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(command);
        Box::pin(async { Ok(()) })
    }
}

/// Regression (#13): transfer/consult/add-party numbers went through the old
/// hand-written E.164 rule, which refused national formats (`020 7946 0000`) and did
/// not read them with the tenant's country.
#[tokio::test]
async fn transfer_targets_are_read_with_the_tenants_country() {
    let mut t = T::new().await;
    let admin = t.login("acme", Role::Admin).await;
    let agent = t.login("acme", Role::Agent).await;
    let (a, _) = t.store.actor_for_token(&agent).await.unwrap();
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/dial-policy",
            Some(&admin),
            Some(json!({"country": "GB"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let calls = Arc::new(Recorder {
        tenant: a.tenant_id.clone(),
        agent: a.user_id.clone().unwrap(),
        seen: Mutex::new(Vec::new()),
    });
    t.app =
        app(AppState::new(t.store.clone(), WebConfig::default()).with_call_control(calls.clone()));
    let agent = t.login("acme", Role::Agent).await;
    for action in ["transfer", "consult", "add_party"] {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/calls/call-1/actions",
                Some(&agent),
                Some(json!({"action": action, "target": {"number": "020 7946 0000"}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
    }
    // Not a number at all: 422 naming the field.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/calls/call-1/actions",
            Some(&agent),
            Some(json!({"action": "transfer", "target": {"number": "sip:evil@example"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "target.number", "{v}");
    let n = CallTarget::Number("+442079460000".into());
    assert_eq!(
        *calls.seen.lock().unwrap(),
        vec![
            CallCommand::BlindTransfer(n.clone()),
            CallCommand::Consult(n.clone()),
            CallCommand::AddParty(n),
        ]
    );
}
