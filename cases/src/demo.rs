//! The demo tenant: a small, realistic world so the UI and API are not empty.

use rand::Rng as _;
use rand::distr::Alphanumeric;

use crate::case_types::FieldDef;
use crate::cases::NewCase;
use crate::customers::{Consent, NewCustomer, RawIdentity};
use crate::directory::{NewUser, User};
use crate::queues::{PresenceInput, QueueInput};
use crate::routing::{MaxWaitAction, SkillRequirement, Strategy};
use crate::sla::{CaseStatus, Priority, SlaPolicy};
use crate::telephony::{NewPhoneNumber, SipAccountPatch, TrunkInput};
use crate::timeline::NewInteraction;
use crate::types::{Actor, Role, Timestamp};
use crate::{Result, Store};

/// Name of the demo tenant.
pub const DEMO_TENANT: &str = "demo";

/// A login created for the demo, with its generated password (shown once).
#[derive(Debug, Clone)]
pub struct DemoLogin {
    /// The user.
    pub user: User,
    /// The generated password.
    pub password: String,
    /// The SIP extension and its generated SIP password, for agents with a phone.
    pub sip: Option<(String, String)>,
}

/// Name of the demo tenant's trunk.
pub const DEMO_TRUNK: &str = "Demo trunk (loopback)";

/// The source address the demo trunk trusts without authentication, in demo mode only.
pub const DEMO_TRUNK_SOURCE: &str = "127.0.0.1";

/// The demo tenant's phone number, on the demo trunk.
pub const DEMO_NUMBER: &str = "+15550100";

/// The demo's queues, named as the demo flow's `enqueue` nodes name them (menu 1 and 2),
/// each requiring the skill of the same name.
pub const DEMO_QUEUES: [&str; 2] = ["sales", "support"];

/// The demo's chat queue: the web chat channel routes visitors' conversations through
/// it to the demo agents (both hold its skill), so a demo chat reaches an agent's inbox.
pub const DEMO_CHAT_QUEUE: &str = "chat";

/// The key a caller waiting in a demo queue presses to be called back instead.
pub const DEMO_CALLBACK_KEY: &str = "9";

/// Generates a password strong enough for the demo (20 alphanumerics, ~119 bits).
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

/// Default SLA targets (minutes): P0 15 / 4 h, P1 1 h / 8 h, P2 4 h / 24 h, P3 8 h / 72 h.
pub const DEFAULT_SLA: [(Priority, i64, i64); 4] = [
    (Priority::P0, 15, 240),
    (Priority::P1, 60, 480),
    (Priority::P2, 240, 1440),
    (Priority::P3, 480, 4320),
];

/// Creates the demo tenant with users, SLA policies, a case type, customers, cases,
/// timeline entries, the `sales` and `support` queues with their skills (both agents in
/// both, available), the `chat` queue and the web chat channel routed through it and the demo IVR open around the clock. Returns `None` if it already exists (seeding is idempotent).
pub async fn seed_demo(store: &Store) -> Result<Option<Vec<DemoLogin>>> {
    if store.tenant_by_name(DEMO_TENANT).await?.is_some() {
        return Ok(None);
    }
    let tenant = store.create_tenant(DEMO_TENANT).await?;
    let system = Actor::system(&tenant.id);
    let mut logins = Vec::new();
    for (email, name, role) in [
        ("admin@demo.parley.test", "Ada Admin", Role::Admin),
        (
            "supervisor@demo.parley.test",
            "Sam Supervisor",
            Role::Supervisor,
        ),
        ("agent1@demo.parley.test", "Alice Agent", Role::Agent),
        ("agent2@demo.parley.test", "Bob Agent", Role::Agent),
    ] {
        let password = generate_password();
        let user = store
            .create_user(
                &system,
                NewUser {
                    email: email.into(),
                    name: name.into(),
                    role,
                    password: password.clone(),
                },
            )
            .await?;
        logins.push(DemoLogin {
            user,
            password,
            sip: None,
        });
    }
    // Telephony: the two agents get extensions 1001/1002 with their own SIP passwords;
    // the demo trunk accepts calls from 127.0.0.1 without authentication and owns the
    // demo number.
    for (login, ext) in logins.iter_mut().skip(2).zip(["1001", "1002"]) {
        let sip_password = generate_password();
        store
            .set_sip_account(
                &system,
                &login.user.id,
                SipAccountPatch {
                    extension: Some(ext.into()),
                    password: Some(sip_password.clone()),
                    current_password: None,
                    srtp: None,
                },
            )
            .await?;
        login.sip = Some((ext.into(), sip_password));
    }
    let trunk = store
        .create_trunk(
            &system,
            TrunkInput {
                name: DEMO_TRUNK.into(),
                inbound_addresses: vec![DEMO_TRUNK_SOURCE.into()],
                transport: Some("udp".into()),
                caller_id: Some(DEMO_NUMBER.into()),
                ..TrunkInput::default()
            },
        )
        .await?;
    store
        .create_number(
            &system,
            NewPhoneNumber {
                number: DEMO_NUMBER.into(),
                trunk_id: trunk.id,
            },
        )
        .await?;
    for (priority, first_response_minutes, resolution_minutes) in DEFAULT_SLA {
        store
            .set_sla_policy(
                &system,
                SlaPolicy {
                    priority,
                    first_response_minutes,
                    resolution_minutes,
                },
            )
            .await?;
    }
    let support = store.create_team(&system, "Support").await?;
    let sales = store.create_team(&system, "Sales").await?;
    for (i, l) in logins.iter().enumerate().skip(2) {
        let team = if i == 2 { &support.id } else { &sales.id };
        store
            .set_team_member(&system, team, &l.user.id, true)
            .await?;
    }
    let english = store.create_skill(&system, "english").await?;
    let billing = store.create_skill(&system, "billing").await?;
    let spanish = store.create_skill(&system, "spanish").await?;
    // The skills the demo flow's `enqueue` nodes ask for. Both agents have both, so a
    // first call to either queue rings whichever agent is logged in; each is the
    // stronger in their own team's queue (`most_skilled` picks them first).
    let sales_skill = store.create_skill(&system, DEMO_QUEUES[0]).await?;
    let support_skill = store.create_skill(&system, DEMO_QUEUES[1]).await?;
    for (l, skill, p) in [
        (&logins[2], &english, 5),
        (&logins[2], &billing, 4),
        (&logins[2], &support_skill, 5),
        (&logins[2], &sales_skill, 3),
        (&logins[3], &english, 4),
        (&logins[3], &spanish, 5),
        (&logins[3], &sales_skill, 5),
        (&logins[3], &support_skill, 3),
    ] {
        store
            .set_user_skill(&system, &l.user.id, &skill.id, Some(p))
            .await?;
    }
    // The queues the demo flow names (`sales` for 1, `support` for 2), requiring their
    // skill; a caller may press 9 while waiting to be called back instead, and after
    // three minutes goes to voicemail (the flow's timeout exit).
    for skill in [&sales_skill, &support_skill] {
        store
            .create_queue(
                &system,
                QueueInput {
                    name: skill.name.clone(),
                    strategy: Strategy::MostSkilled,
                    skills: vec![SkillRequirement {
                        skill: skill.id.clone(),
                        min_proficiency: 1,
                    }],
                    sl_threshold_s: Some(20),
                    overflow_queue_id: None,
                    overflow_after_s: None,
                    max_wait_s: Some(180),
                    max_wait_action: MaxWaitAction::Voicemail,
                    wrap_up_s: Some(10),
                    ring_timeout_s: Some(20),
                    max_missed_offers: Some(3),
                    priority_aging_per_min: Some(0),
                    announce_interval_s: Some(30),
                    callback_key: Some(DEMO_CALLBACK_KEY.into()),
                    auto_assign: false,
                    sticky_window_s: None,
                    channel: None,
                },
            )
            .await?;
    }
    // The chat queue, with both agents in it (they hold its skill), created before the
    // web chat channel so the channel routes through it: a visitor's first message is
    // offered to whichever agent is free (issue #17).
    let chat_skill = store.create_skill(&system, DEMO_CHAT_QUEUE).await?;
    for l in &logins[2..] {
        store
            .set_user_skill(&system, &l.user.id, &chat_skill.id, Some(3))
            .await?;
    }
    store
        .create_queue(
            &system,
            QueueInput {
                name: DEMO_CHAT_QUEUE.into(),
                strategy: Strategy::LongestIdle,
                skills: vec![SkillRequirement {
                    skill: chat_skill.id.clone(),
                    min_proficiency: 1,
                }],
                sl_threshold_s: Some(60),
                overflow_queue_id: None,
                overflow_after_s: None,
                max_wait_s: None,
                max_wait_action: MaxWaitAction::Voicemail,
                wrap_up_s: Some(0),
                ring_timeout_s: Some(30),
                max_missed_offers: Some(3),
                priority_aging_per_min: Some(1),
                announce_interval_s: None,
                callback_key: None,
                auto_assign: false,
                sticky_window_s: Some(3600),
                channel: None,
            },
        )
        .await?;
    store.web_chat_channel(&system).await?;
    // The agents start available, so the first call rings them as soon as they log in
    // (their browser is a phone) or register a SIP phone.
    for l in &logins[2..] {
        store
            .set_presence(
                &system,
                &l.user.id,
                PresenceInput {
                    status: "available".into(),
                    reason: None,
                },
            )
            .await?;
    }
    let fields: Vec<FieldDef> = serde_json::from_value(serde_json::json!([
        {"key": "invoice_number", "label": "Invoice number", "type": "text", "required": true},
        {"key": "amount", "label": "Disputed amount", "type": "number"},
        {"key": "reason", "label": "Reason", "type": "enum", "values": ["double_charge", "wrong_amount", "not_received"]}
    ]))
    .map_err(|source| crate::Error::Corrupt { what: "demo case type", source })?;
    let billing_type = store
        .create_case_type(&system, "Billing dispute", fields)
        .await?;
    let agent = Actor {
        tenant_id: tenant.id.clone(),
        user_id: Some(logins[2].user.id.clone()),
        role: Role::Agent,
    };

    let people = [
        (
            "Maria Garcia",
            "+34911234567",
            "maria.garcia@example.com",
            true,
        ),
        (
            "John Smith",
            "+14155550123",
            "john.smith@example.com",
            false,
        ),
        ("Aiko Tanaka", "+81312345678", "aiko@example.jp", true),
    ];
    let base = store.now().0 - 3 * 86_400_000;
    for (n, (name, phone, email, consent)) in people.into_iter().enumerate() {
        let c = store
            .create_customer(
                &system,
                NewCustomer {
                    name: name.into(),
                    identities: vec![
                        RawIdentity {
                            kind: "phone".into(),
                            value: phone.into(),
                        },
                        RawIdentity {
                            kind: "email".into(),
                            value: email.into(),
                        },
                    ],
                    consent: Consent {
                        recording: consent,
                        marketing: false,
                    },
                },
            )
            .await?;
        let at = |h: i64| Some(Timestamp(base + (n as i64) * 3_600_000 + h * 3_600_000));
        let msg = |kind: &str, channel: &str, direction: &str, body: &str, when| NewInteraction {
            kind: kind.into(),
            channel: channel.into(),
            direction: direction.into(),
            body: body.into(),
            attachments: vec![],
            case_id: None,
            occurred_at: when,
            sentiment: None,
            intent: None,
            tags: vec![],
        };
        let case = match n {
            0 => Some(
                store
                    .create_case(&agent, NewCase {
                        title: "Charged twice for November".into(),
                        customer_id: Some(c.id.clone()),
                        case_type_id: Some(billing_type.id.clone()),
                        priority: Some(Priority::P1),
                        assignee_id: Some(logins[2].user.id.clone()),
                        team_id: Some(support.id.clone()),
                        custom_fields: serde_json::json!({"invoice_number": "INV-2026-1107", "amount": 49.0, "reason": "double_charge"})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                        tags: vec!["billing".into()],
                    })
                    .await?,
            ),
            1 => Some(
                store
                    .create_case(&agent, NewCase {
                        title: "Router keeps dropping connection".into(),
                        customer_id: Some(c.id.clone()),
                        case_type_id: None,
                        priority: Some(Priority::P2),
                        assignee_id: Some(logins[3].user.id.clone()),
                        team_id: None,
                        custom_fields: Default::default(),
                        tags: vec!["hardware".into()],
                    })
                    .await?,
            ),
            _ => None,
        };
        let case_id = case.as_ref().map(|c| c.id.clone());
        let mut first = msg(
            "email",
            "email",
            "inbound",
            "Hello, I was charged twice on my last invoice. Can you help?",
            at(0),
        );
        first.case_id = case_id.clone();
        store.add_interaction(&system, &c.id, first).await?;
        let mut reply = msg(
            "email",
            "email",
            "outbound",
            "Sorry about that! We are looking into the duplicate charge now.",
            at(1),
        );
        reply.case_id = case_id.clone();
        store.add_interaction(&agent, &c.id, reply).await?;
        store
            .add_interaction(
                &system,
                &c.id,
                msg(
                    "message",
                    "whatsapp",
                    "inbound",
                    "Any update on my refund?",
                    at(20),
                ),
            )
            .await?;
        store
            .add_interaction(
                &agent,
                &c.id,
                msg(
                    "note",
                    "internal",
                    "internal",
                    "Refund approved, @supervisor please sign off.",
                    at(21),
                ),
            )
            .await?;
        if let Some(case) = case {
            store
                .transition_case(&agent, &case.id, CaseStatus::Open, None)
                .await?;
            if n == 1 {
                store
                    .transition_case(
                        &agent,
                        &case.id,
                        CaseStatus::PendingCustomer,
                        Some("asked for router model"),
                    )
                    .await?;
            }
        }
    }
    // The inbox's canned responses.
    crate::canned::seed_demo(store, &system).await?;
    // The knowledge base (published) and its web-chat bot.
    crate::kb::seed_demo(store, &system).await?;
    // The demo IVR: its flow published and routed from the demo number.
    crate::flows::seed_demo_ivr(store, &system).await?;
    // Speech: the first demo call shows a live transcript. The demo's callers consent
    // (its greeting is the call notice), so no per-customer consent is required.
    store
        .set_speech_settings(
            &system,
            crate::transcripts::SpeechSettings {
                transcription: true,
                require_consent: false,
                ..Default::default()
            },
        )
        .await?;
    Ok(Some(logins))
}

/// `days` days of contact history before today for the demo tenant's dashboards
/// (issue #22): calls to the demo queues answered by the demo agents, web chats and
/// emails with replies, resolutions, reopens and CSAT, replayed through the store's own
/// paths ([`crate::analytics::history`]) and folded into the analytics rollups. The
/// conversations go to unrouted channels (no work item is left for the router). Run on
/// a freshly seeded demo tenant only; 0 days: nothing.
pub async fn seed_demo_history(store: &Store, days: u32) -> Result<usize> {
    const DAY: i64 = 86_400_000;
    if days == 0 {
        return Ok(0);
    }
    let Some(tenant) = store.tenant_by_name(DEMO_TENANT).await? else {
        return Ok(0);
    };
    let system = Actor::system(&tenant.id);
    let chat = store.web_chat_channel(&system).await?;
    let email = match store
        .channels(&system)
        .await?
        .into_iter()
        .find(|c| c.kind == crate::conversations::ChannelKind::Email)
    {
        Some(c) => c,
        None => {
            store
                .create_channel(
                    &system,
                    crate::conversations::NewChannel {
                        kind: "email".into(),
                        name: "Support email".into(),
                        queue: None,
                        team_id: None,
                        settings: None,
                    },
                )
                .await?
        }
    };
    let now = store.now().0;
    let end = now - now.rem_euclid(DAY);
    let history = crate::analytics::history::demo_history(
        Timestamp(end),
        days,
        DEMO_QUEUES,
        ["agent1@demo.parley.test", "agent2@demo.parley.test"],
        &chat.name,
        &email.name,
    );
    let clock = crate::ManualClock::new(Timestamp(end - i64::from(days) * DAY));
    let n = store.replay_history(&system, &clock, &history).await?;
    // Folded now: the relay prunes published outbox rows older than a week.
    store.analytics_catch_up().await?;
    Ok(n)
}

/// Demo mode on or off for an existing demo tenant: its trunk ([`DEMO_TRUNK`]) accepts
/// unauthenticated calls from [`DEMO_TRUNK_SOURCE`] only in demo mode (`parley serve
/// --demo`), so that on a server started without `--demo` nothing on the machine (any
/// local process, anything a proxy forwards) can call in as that trunk. Returns whether
/// the trunk changed (an audited trunk update by the system); nothing happens without a
/// demo tenant or when its trunk was renamed or deleted.
pub async fn set_demo_mode(store: &Store, on: bool) -> Result<bool> {
    let Some(tenant) = store.tenant_by_name(DEMO_TENANT).await? else {
        return Ok(false);
    };
    let system = Actor::system(&tenant.id);
    let Some(trunk) = store
        .list_trunks(&system)
        .await?
        .into_iter()
        .find(|t| t.name == DEMO_TRUNK)
    else {
        return Ok(false);
    };
    let trusted = trunk
        .inbound_addresses
        .iter()
        .any(|a| a == DEMO_TRUNK_SOURCE);
    if trusted == on {
        return Ok(false);
    }
    let mut addresses = trunk.inbound_addresses;
    if on {
        addresses.push(DEMO_TRUNK_SOURCE.into());
    } else {
        addresses.retain(|a| a != DEMO_TRUNK_SOURCE);
    }
    store
        .update_trunk(
            &system,
            &trunk.id,
            TrunkInput {
                name: trunk.name,
                inbound_addresses: addresses,
                inbound_username: trunk.inbound_username,
                inbound_password: None,
                outbound_target: trunk.outbound_target,
                transport: Some(trunk.transport),
                tls_ca_pem: trunk.tls_ca_pem,
                caller_id: trunk.caller_id,
                srtp: Some(trunk.srtp),
            },
        )
        .await?;
    Ok(true)
}
