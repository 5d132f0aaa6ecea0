//! Tenants, users (with roles and passwords), API tokens, teams and skills.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::types::{Actor, Role, Timestamp, flag, new_id};
use crate::{Error, Result, Store};

/// A tenant: one contact center's isolated world.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Tenant {
    /// Id.
    pub id: String,
    /// Unique short name used at login (e.g. `demo`).
    pub name: String,
    /// Created.
    pub created_at: Timestamp,
}

/// A person who logs in.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct User {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Login, lowercased.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Deactivated users cannot log in and their tokens stop working.
    pub active: bool,
    /// Created.
    pub created_at: Timestamp,
}

/// Input for [`Store::create_user`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewUser {
    /// Login.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Initial password (at least 10 characters).
    pub password: String,
}

/// Changes for [`Store::update_user`]; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct UserPatch {
    /// New display name.
    pub name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// Activate or deactivate.
    pub active: Option<bool>,
    /// New password (at least 10 characters); revokes the user's tokens.
    pub password: Option<String>,
}

/// A team of users.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Team {
    /// Id.
    pub id: String,
    /// Unique name in the tenant.
    pub name: String,
    /// Member user ids.
    pub members: Vec<String>,
}

/// A skill and, in a user's list, its proficiency.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Skill {
    /// Id.
    pub id: String,
    /// Unique name in the tenant (e.g. `spanish`, `billing`).
    pub name: String,
}

/// A user's proficiency in a skill, 1 (novice) to 5 (expert).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct UserSkill {
    /// Skill id.
    pub skill_id: String,
    /// Skill name.
    pub name: String,
    /// 1..=5.
    pub proficiency: i64,
}

/// A freshly issued bearer token. The secret is shown once; only its hash is stored.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct IssuedToken {
    /// The bearer secret.
    pub token: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    tenant_id: String,
    email: String,
    name: String,
    role: String,
    active: i64,
    created_at: i64,
}

impl UserRow {
    fn into_user(self) -> Result<User> {
        Ok(User {
            role: Role::parse(&self.role)?,
            id: self.id,
            tenant_id: self.tenant_id,
            email: self.email,
            name: self.name,
            active: self.active != 0,
            created_at: Timestamp(self.created_at),
        })
    }
}

const USER_COLS: &str = "id, tenant_id, email, name, role, active, created_at";

fn normalize_email(field: &'static str, email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && !e.contains(char::is_whitespace)
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if valid {
        Ok(e)
    } else {
        Err(Error::invalid(field, "not an email address"))
    }
}

pub(crate) fn check_name(field: &'static str, name: &str, max: usize) -> Result<String> {
    let n = name.trim();
    if n.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if n.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(n.to_owned())
}

fn check_password(p: &str) -> Result<()> {
    if p.chars().count() < 10 {
        return Err(Error::invalid("password", "must be at least 10 characters"));
    }
    if p.len() > 1024 {
        return Err(Error::invalid("password", "must be at most 1024 bytes"));
    }
    Ok(())
}

/// Hashes a password with Argon2id (default parameters). CPU-heavy: call off the async
/// executor's hot path (the store does it in `spawn_blocking`).
fn hash_password(p: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::PasswordHash(e.to_string()))?;
    Argon2::default()
        .hash_password(p.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::PasswordHash(e.to_string()))
}

fn verify_password(p: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| Argon2::default().verify_password(p.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

async fn hash_blocking(p: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&p))
        .await
        .map_err(|e| Error::PasswordHash(e.to_string()))?
}

fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Creates a tenant (system operation; names are unique).
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let name = check_name("name", name, 64)?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid("name", "only letters, digits, '-' and '_'"));
        }
        let now = self.now();
        let tenant = Tenant {
            id: new_id(),
            name,
            created_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::from_unique(e, "tenant", "name"))?;
        let audited = audit::write(
            &mut tx,
            &Actor::system(&tenant.id),
            now,
            Record {
                action: "tenant.create",
                entity_kind: "tenant",
                entity_id: &tenant.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&tenant),
            },
        )
        .await?;
        let event =
            DomainEvent::redacted(&tenant.id, "tenant.created", &tenant).min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(tenant)
    }

    /// Finds a tenant by its login name.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(id, name, at)| Tenant {
            id,
            name,
            created_at: Timestamp(at),
        }))
    }

    /// Number of tenants (zero on a fresh database).
    pub async fn tenant_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tenants")
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Creates a user in the actor's tenant.
    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User> {
        let email = normalize_email("email", &new.email)?;
        let name = check_name("name", &new.name, 128)?;
        check_password(&new.password)?;
        let hash = hash_blocking(new.password).await?;
        let now = self.now();
        let user = User {
            id: new_id(),
            tenant_id: actor.tenant_id.clone(),
            email,
            name,
            role: new.role,
            active: true,
            created_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO users (id, tenant_id, email, name, role, password_hash, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(&user.id)
        .bind(&user.tenant_id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(&hash)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "user", "email"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "user.create",
                entity_kind: "user",
                entity_id: &user.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&user),
            },
        )
        .await?;
        let event = DomainEvent::redacted(&actor.tenant_id, "user.created", &user)
            .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(user)
    }

    /// A user of the actor's tenant.
    pub async fn user(&self, actor: &Actor, id: &str) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or_else(|| Error::not_found("user"))?.into_user()
    }

    /// All users of the actor's tenant, by email.
    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 ORDER BY email"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    /// Updates a user. Changing the password or deactivating revokes their tokens.
    pub async fn update_user(&self, actor: &Actor, id: &str, patch: UserPatch) -> Result<User> {
        let before = self.user(actor, id).await?;
        let name = patch
            .name
            .as_deref()
            .map(|n| check_name("name", n, 128))
            .transpose()?;
        let hash = match patch.password {
            Some(p) => {
                check_password(&p)?;
                Some(hash_blocking(p).await?)
            }
            None => None,
        };
        let now = self.now();
        let mut after = before.clone();
        if let Some(n) = name {
            after.name = n;
        }
        if let Some(r) = patch.role {
            after.role = r;
        }
        if let Some(a) = patch.active {
            after.active = a;
        }
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE users SET name = $1, role = $2, active = $3, updated_at = $4,
                    password_hash = COALESCE($5, password_hash)
             WHERE tenant_id = $6 AND id = $7",
        )
        .bind(&after.name)
        .bind(after.role.as_str())
        .bind(flag(after.active))
        .bind(now.0)
        .bind(hash.as_deref())
        .bind(&actor.tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if hash.is_some() || !after.active {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now.0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: if hash.is_some() {
                    "user.update_password"
                } else {
                    "user.update"
                },
                entity_kind: "user",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [crate::queues::agent_changed(&actor.tenant_id, id)],
        )
        .await?;
        self.lookups_changed();
        Ok(after)
    }

    /// Checks a login. Unknown tenant, unknown user, inactive user and wrong password all
    /// give the same [`Error::Unauthenticated`], after the same amount of hashing work.
    pub async fn authenticate(&self, tenant: &str, email: &str, password: &str) -> Result<User> {
        let email = email.trim().to_lowercase();
        let row: Option<(String, String, i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT u.id, u.password_hash, u.active, u.tenant_id, u.name, u.role, u.created_at
             FROM users u JOIN tenants t ON t.id = u.tenant_id
             WHERE t.name = $1 AND u.email = $2",
        )
        .bind(tenant)
        .bind(&email)
        .fetch_optional(self.pool())
        .await?;
        // A fixed, valid hash to verify against when the user does not exist, so response
        // time does not reveal which emails are registered.
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$yqW6ydWZcwTOnD3N1bIbv6SGwDpFq+h5T2EDZPUUn2w";
        let hash = row.as_ref().map_or(DUMMY.to_owned(), |r| r.1.clone());
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .map_err(|e| Error::PasswordHash(e.to_string()))?;
        match row {
            Some((id, _, active, tenant_id, name, role, created_at)) if ok && active != 0 => {
                Ok(User {
                    id,
                    tenant_id,
                    email,
                    name,
                    role: Role::parse(&role)?,
                    active: true,
                    created_at: Timestamp(created_at),
                })
            }
            _ => Err(Error::Unauthenticated),
        }
    }

    /// Whether `password` is the acting user's own login password (re-authentication
    /// before a sensitive change of their own account). The system actor has none.
    pub async fn confirm_password(&self, actor: &Actor, password: &str) -> Result<bool> {
        let Some(user_id) = actor.user_id.as_deref() else {
            return Ok(false);
        };
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT password_hash FROM users WHERE tenant_id = $1 AND id = $2 AND active = 1",
        )
        .bind(&actor.tenant_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        let Some((hash,)) = row else {
            return Ok(false);
        };
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .map_err(|e| Error::PasswordHash(e.to_string()))
    }

    /// Issues a bearer token for `user`, valid for `ttl_secs`.
    pub async fn issue_token(&self, user: &User, ttl_secs: u64) -> Result<IssuedToken> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = format!(
            "pt_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let now = self.now();
        let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires_at = Timestamp(now.0.saturating_add(ttl_ms));
        sqlx::query(
            "INSERT INTO api_tokens (id, tenant_id, user_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new_id())
        .bind(&user.tenant_id)
        .bind(&user.id)
        .bind(token_hash(&token))
        .bind(now.0)
        .bind(expires_at.0)
        .execute(self.pool())
        .await?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Resolves a bearer token to its acting user; expired, revoked or deactivated → error.
    pub async fn actor_for_token(&self, token: &str) -> Result<(Actor, User)> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.tenant_id, u.email, u.name, u.role, u.active, u.created_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 AND u.active = 1",
        )
        .bind(token_hash(token))
        .bind(self.now().0)
        .fetch_optional(self.pool())
        .await?;
        let user = row.ok_or(Error::Unauthenticated)?.into_user()?;
        let actor = Actor {
            tenant_id: user.tenant_id.clone(),
            user_id: Some(user.id.clone()),
            role: user.role,
        };
        Ok((actor, user))
    }

    /// Revokes one token (logout).
    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(self.now().0)
        .bind(token_hash(token))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes the tokens that can never be used again — expired (by the store's clock)
    /// or revoked — and returns how many. Run periodically by the server, so a leaked
    /// database holds only live token hashes and the table does not grow with every
    /// login.
    pub async fn purge_expired_tokens(&self) -> Result<u64> {
        let r =
            sqlx::query("DELETE FROM api_tokens WHERE expires_at <= $1 OR revoked_at IS NOT NULL")
                .bind(self.now().0)
                .execute(self.pool())
                .await?;
        Ok(r.rows_affected())
    }

    /// Creates a team.
    pub async fn create_team(&self, actor: &Actor, name: &str) -> Result<Team> {
        let name = check_name("name", name, 128)?;
        let now = self.now();
        let team = Team {
            id: new_id(),
            name,
            members: vec![],
        };
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO teams (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&team.id)
            .bind(&actor.tenant_id)
            .bind(&team.name)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::from_unique(e, "team", "name"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "team.create",
                entity_kind: "team",
                entity_id: &team.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&team),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "team.created", &team);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(team)
    }

    /// Teams with their members.
    pub async fn list_teams(&self, actor: &Actor) -> Result<Vec<Team>> {
        let teams: Vec<(String, String)> =
            sqlx::query_as("SELECT id, name FROM teams WHERE tenant_id = $1 ORDER BY name")
                .bind(&actor.tenant_id)
                .fetch_all(self.pool())
                .await?;
        let members: Vec<(String, String)> = sqlx::query_as(
            "SELECT team_id, user_id FROM team_members WHERE tenant_id = $1 ORDER BY user_id",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(teams
            .into_iter()
            .map(|(id, name)| Team {
                members: members
                    .iter()
                    .filter(|(t, _)| *t == id)
                    .map(|(_, u)| u.clone())
                    .collect(),
                id,
                name,
            })
            .collect())
    }

    /// Adds (`member = true`) or removes a user from a team.
    pub async fn set_team_member(
        &self,
        actor: &Actor,
        team_id: &str,
        user_id: &str,
        member: bool,
    ) -> Result<()> {
        self.require(actor, "teams", "team", team_id).await?;
        self.require(actor, "users", "user", user_id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        if member {
            sqlx::query(
                "INSERT INTO team_members (tenant_id, team_id, user_id) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&actor.tenant_id)
            .bind(team_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "DELETE FROM team_members WHERE tenant_id = $1 AND team_id = $2 AND user_id = $3",
            )
            .bind(&actor.tenant_id)
            .bind(team_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: if member {
                    "team.add_member"
                } else {
                    "team.remove_member"
                },
                entity_kind: "team",
                entity_id: team_id,
                subject_customer_id: None,
                before: None,
                after: Some(serde_json::json!({ "user_id": user_id })),
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            if member {
                "team.member_added"
            } else {
                "team.member_removed"
            },
            &serde_json::json!({ "team_id": team_id, "user_id": user_id }),
        )
        .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }

    /// Creates a skill.
    pub async fn create_skill(&self, actor: &Actor, name: &str) -> Result<Skill> {
        let name = check_name("name", name, 64)?;
        let now = self.now();
        let skill = Skill { id: new_id(), name };
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO skills (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&skill.id)
            .bind(&actor.tenant_id)
            .bind(&skill.name)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::from_unique(e, "skill", "name"))?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "skill.create",
                entity_kind: "skill",
                entity_id: &skill.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&skill),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "skill.created", &skill);
        self.commit_audited(tx, audited, [event]).await?;
        Ok(skill)
    }

    /// The tenant's skills.
    pub async fn list_skills(&self, actor: &Actor) -> Result<Vec<Skill>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, name FROM skills WHERE tenant_id = $1 ORDER BY name")
                .bind(&actor.tenant_id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| Skill { id, name })
            .collect())
    }

    /// Sets a user's proficiency (1..=5) in a skill, or removes it with `None`.
    pub async fn set_user_skill(
        &self,
        actor: &Actor,
        user_id: &str,
        skill_id: &str,
        proficiency: Option<i64>,
    ) -> Result<()> {
        if let Some(p) = proficiency
            && !(1..=5).contains(&p)
        {
            return Err(Error::invalid("proficiency", "must be between 1 and 5"));
        }
        self.require(actor, "users", "user", user_id).await?;
        self.require(actor, "skills", "skill", skill_id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        match proficiency {
            Some(p) => {
                sqlx::query(
                    "INSERT INTO user_skills (tenant_id, user_id, skill_id, proficiency) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id, skill_id) DO UPDATE SET proficiency = excluded.proficiency",
                )
                .bind(&actor.tenant_id)
                .bind(user_id)
                .bind(skill_id)
                .bind(p)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM user_skills WHERE tenant_id = $1 AND user_id = $2 AND skill_id = $3")
                    .bind(&actor.tenant_id)
                    .bind(user_id)
                    .bind(skill_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "user.set_skill",
                entity_kind: "user",
                entity_id: user_id,
                subject_customer_id: None,
                before: None,
                after: Some(
                    serde_json::json!({ "skill_id": skill_id, "proficiency": proficiency }),
                ),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [crate::queues::agent_changed(&actor.tenant_id, user_id)],
        )
        .await?;
        Ok(())
    }

    /// A user's skills.
    pub async fn user_skills(&self, actor: &Actor, user_id: &str) -> Result<Vec<UserSkill>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT s.id, s.name, us.proficiency FROM user_skills us JOIN skills s ON s.id = us.skill_id
             WHERE us.tenant_id = $1 AND us.user_id = $2 ORDER BY s.name",
        )
        .bind(&actor.tenant_id)
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(skill_id, name, proficiency)| UserSkill {
                skill_id,
                name,
                proficiency,
            })
            .collect())
    }

    /// Fails with NotFound unless `id` exists in `table` within the actor's tenant.
    pub(crate) async fn require(
        &self,
        actor: &Actor,
        table: &'static str,
        entity: &'static str,
        id: &str,
    ) -> Result<()> {
        let found: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM {table} WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        found.map(|_| ()).ok_or_else(|| Error::not_found(entity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("e", "  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in ["", "ann", "@x", "a@", "a b@c", "a@b@c"] {
            assert!(normalize_email("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_hash_verifies() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
