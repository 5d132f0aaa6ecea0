//! Each agent's routing capacity: how many items of each channel they handle at once
//! (defaults: 1 call, 3 chats, 5 async items — emails, messages, tasks) and whether a
//! call blocks other work (a *blended* agent, with it off, keeps their chats and async
//! work during a call). Admins set it (`PUT /api/v1/users/{id}/capacity`, audited as
//! `agent.capacity`); the router reloads the agent at once (`agent.profile_changed`).

use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::queues::agent_changed;
use crate::routing::Channel;
use crate::types::{Actor, Timestamp};
use crate::{Error, Result, Store};

/// The largest capacity per channel: one call (a second would be a call waiting), 20
/// chats, 50 async items.
pub const MAX_CAPACITY: [(Channel, u32); 3] = [
    (Channel::Voice, 1),
    (Channel::Chat, 20),
    (Channel::Async, 50),
];

/// An agent's capacity per channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AgentCapacity {
    /// The agent.
    pub user_id: String,
    /// Calls at once (0 or 1).
    pub voice: u32,
    /// Chats at once (0 to 20).
    pub chat: u32,
    /// Async items (emails, messages, tasks) at once (0 to 50).
    #[serde(rename = "async")]
    pub async_items: u32,
    /// While on a call the agent is offered nothing else (false: blended — chats and
    /// async work go on during a call; a live chat still keeps calls away).
    pub call_blocks_other_work: bool,
    /// Last set (`None`: never set, the defaults).
    pub updated_at: Option<Timestamp>,
}

impl AgentCapacity {
    /// The defaults: 1 call, 3 chats, 5 async items, a call blocks other work.
    pub fn default_for(user_id: &str) -> AgentCapacity {
        AgentCapacity {
            user_id: user_id.to_owned(),
            voice: 1,
            chat: 3,
            async_items: 5,
            call_blocks_other_work: true,
            updated_at: None,
        }
    }

    /// Capacity of one channel.
    pub fn of(&self, c: Channel) -> u32 {
        match c {
            Channel::Voice => self.voice,
            Channel::Chat => self.chat,
            Channel::Async => self.async_items,
        }
    }
}

/// Input of [`Store::set_agent_capacity`] (a full replacement; absent fields take the
/// defaults).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentCapacityInput {
    /// Default 1.
    pub voice: Option<u32>,
    /// Default 3.
    pub chat: Option<u32>,
    /// Default 5.
    #[serde(rename = "async")]
    pub async_items: Option<u32>,
    /// Default true.
    pub call_blocks_other_work: Option<bool>,
}

type Row = (i64, i64, i64, i64, i64);

fn of_row(user_id: &str, (voice, chat, async_items, blocks, at): Row) -> AgentCapacity {
    let n = |v: i64| u32::try_from(v.max(0)).unwrap_or(0);
    AgentCapacity {
        user_id: user_id.to_owned(),
        voice: n(voice),
        chat: n(chat),
        async_items: n(async_items),
        call_blocks_other_work: blocks != 0,
        updated_at: Some(Timestamp(at)),
    }
}

impl Store {
    /// An agent's capacity (the defaults when never set).
    pub async fn agent_capacity(&self, actor: &Actor, user_id: &str) -> Result<AgentCapacity> {
        self.require(actor, "users", "user", user_id).await?;
        let row: Option<Row> = sqlx::query_as(
            "SELECT voice_capacity, chat_capacity, async_capacity, call_blocks_other_work, updated_at
             FROM agent_capacity WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map_or_else(
            || AgentCapacity::default_for(user_id),
            |r| of_row(user_id, r),
        ))
    }

    /// Sets an agent's capacity (audited as `agent.capacity`; the router reloads the
    /// agent). A value above the channel's maximum ([`MAX_CAPACITY`]) is refused.
    pub async fn set_agent_capacity(
        &self,
        actor: &Actor,
        user_id: &str,
        input: AgentCapacityInput,
    ) -> Result<AgentCapacity> {
        let d = AgentCapacity::default_for(user_id);
        let mut cap = AgentCapacity {
            user_id: user_id.to_owned(),
            voice: input.voice.unwrap_or(d.voice),
            chat: input.chat.unwrap_or(d.chat),
            async_items: input.async_items.unwrap_or(d.async_items),
            call_blocks_other_work: input
                .call_blocks_other_work
                .unwrap_or(d.call_blocks_other_work),
            updated_at: None,
        };
        for (c, max) in MAX_CAPACITY {
            if cap.of(c) > max {
                return Err(Error::invalid(
                    c.as_str(),
                    format!("must be between 0 and {max}"),
                ));
            }
        }
        let before = self.agent_capacity(actor, user_id).await?;
        let now = self.now();
        cap.updated_at = Some(now);
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO agent_capacity (user_id, tenant_id, voice_capacity, chat_capacity,
                async_capacity, call_blocks_other_work, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (user_id) DO UPDATE SET voice_capacity = excluded.voice_capacity,
                chat_capacity = excluded.chat_capacity, async_capacity = excluded.async_capacity,
                call_blocks_other_work = excluded.call_blocks_other_work,
                updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(&actor.tenant_id)
        .bind(i64::from(cap.voice))
        .bind(i64::from(cap.chat))
        .bind(i64::from(cap.async_items))
        .bind(i64::from(cap.call_blocks_other_work))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "agent.capacity",
                entity_kind: "user",
                entity_id: user_id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&cap),
            },
        )
        .await?;
        self.commit_audited(tx, audited, [agent_changed(&actor.tenant_id, user_id)])
            .await?;
        Ok(cap)
    }
}
