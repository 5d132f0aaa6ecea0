//! Telephony configuration: users' extensions and SIP digest credentials, SIP trunks and
//! the phone numbers (DIDs) they own.
//!
//! This module stores configuration only; it parses no SIP. The one piece of SIP
//! knowledge here is [`digest_ha1`]: the digest "HA1" is `H(username:realm:password)`
//! (RFC 7616 §3.4.2), a plain hash of three strings. Computing it here, at the moment the
//! password is set, is what lets the database hold HA1 values instead of SIP passwords
//! (which digest auth otherwise needs in clear text); the signaling runtime verifies
//! digest responses from the stored HA1 alone.

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::types::{Actor, Role, Timestamp, from_json_text, json_text, new_id};
use crate::{Error, Result, Store};

/// Lower-case hex `H(username:realm:password)` for `MD5` or `SHA-256` (RFC 7616 §3.4.2).
pub fn digest_ha1(algorithm: HashAlgorithm, username: &str, realm: &str, password: &str) -> String {
    let data = format!("{username}:{realm}:{password}");
    match algorithm {
        HashAlgorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
        HashAlgorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
    }
}

/// The digest hash functions credentials are stored for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// MD5 (RFC 2617; what most phones use).
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SDES-SRTP (RFC 4568) policy of a trunk or a user's phones (migration 0013).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only: `RTP/SAVP` offers are declined.
    Off,
    /// SRTP answered when the peer offers it; Parley's own offers are plain RTP (the
    /// default).
    #[default]
    Optional,
    /// SRTP only: an offer without usable `a=crypto` gets 488, Parley's offers are
    /// `RTP/SAVP`. Use it with SIP over TLS: SDES keys travel in the SDP.
    Required,
}

impl SrtpPolicy {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Required => "required",
        }
    }

    /// The stored word read back (the column's CHECK allows only these; anything
    /// else reads as the default).
    pub fn from_db(s: &str) -> SrtpPolicy {
        match s {
            "off" => SrtpPolicy::Off,
            "required" => SrtpPolicy::Required,
            _ => SrtpPolicy::Optional,
        }
    }
}

/// A user's SIP identity (no secrets).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SipAccount {
    /// The user.
    pub user_id: String,
    /// Extension (the SIP user name), digits.
    pub extension: Option<String>,
    /// Digest realm the credentials were made for (the tenant's SIP domain).
    pub realm: String,
    /// Whether a SIP password is set.
    pub has_password: bool,
    /// SRTP policy for calls from and to this user's phones.
    pub srtp: SrtpPolicy,
}

/// Changes for [`Store::set_sip_account`]; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SipAccountPatch {
    /// New extension: 2 to 10 digits, unique in the tenant.
    pub extension: Option<String>,
    /// New SIP password (at least 10 characters). Only its HA1 digests are stored.
    pub password: Option<String>,
    /// Your web (login) password: required when you change your own SIP password, so
    /// that a stolen session token cannot take over your phone line. Not needed by an
    /// admin setting someone else's.
    #[serde(default)]
    pub current_password: Option<String>,
    /// SRTP policy for this user's phones (admins only).
    #[serde(default)]
    pub srtp: Option<SrtpPolicy>,
}

/// What the registrar needs to check a user's digest response.
#[derive(Debug, Clone)]
pub struct SipCredentials {
    /// Tenant.
    pub tenant_id: String,
    /// User.
    pub user_id: String,
    /// Extension (digest user name).
    pub extension: String,
    /// Realm the HA1 values were computed with.
    pub realm: String,
    /// `MD5(extension:realm:password)`, hex.
    pub ha1_md5: String,
    /// `SHA-256(extension:realm:password)`, hex.
    pub ha1_sha256: String,
    /// The user's SRTP policy.
    pub srtp: SrtpPolicy,
}

/// A SIP trunk to a carrier or PBX.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Trunk {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Unique name in the tenant.
    pub name: String,
    /// Source IP addresses whose calls are accepted without authentication.
    pub inbound_addresses: Vec<String>,
    /// Digest user name inbound calls may authenticate with instead.
    pub inbound_username: Option<String>,
    /// Whether an inbound digest password is set.
    pub has_inbound_password: bool,
    /// Where outbound calls go, `host:port`.
    pub outbound_target: Option<String>,
    /// `udp`, `tcp` or `tls` (SIP over TLS, certificate verified; port 5061 by default).
    pub transport: String,
    /// With `tls`: the PEM certificate(s) of the CA the trunk's certificate must chain
    /// to, instead of the system's roots.
    pub tls_ca_pem: Option<String>,
    /// Caller-ID number (E.164) presented on outbound calls.
    pub caller_id: Option<String>,
    /// SRTP policy for calls from and to this trunk.
    pub srtp: SrtpPolicy,
    /// Created.
    pub created_at: Timestamp,
}

/// Input for [`Store::create_trunk`] and [`Store::update_trunk`] (a full replacement;
/// `inbound_password` absent keeps the current one on update).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TrunkInput {
    /// Unique name in the tenant.
    pub name: String,
    /// Source IP addresses accepted without authentication.
    #[serde(default)]
    pub inbound_addresses: Vec<String>,
    /// Digest user name for inbound calls.
    pub inbound_username: Option<String>,
    /// Digest password for inbound calls (stored as HA1 only).
    pub inbound_password: Option<String>,
    /// Outbound target, `host:port`.
    pub outbound_target: Option<String>,
    /// `udp` (default), `tcp` or `tls`.
    pub transport: Option<String>,
    /// With `tls`: PEM certificate(s) of the CA to verify the trunk's certificate with
    /// instead of the system's roots (a private CA pinned for this trunk).
    #[serde(default)]
    pub tls_ca_pem: Option<String>,
    /// Outbound caller-ID number (E.164).
    pub caller_id: Option<String>,
    /// SRTP policy; absent: `optional` on create, unchanged on update.
    #[serde(default)]
    pub srtp: Option<SrtpPolicy>,
}

/// A trunk's inbound digest credentials.
#[derive(Debug, Clone)]
pub struct TrunkCredentials {
    /// Digest user name.
    pub username: String,
    /// Realm the HA1 values were computed with.
    pub realm: String,
    /// MD5 HA1.
    pub ha1_md5: String,
    /// SHA-256 HA1.
    pub ha1_sha256: String,
}

/// A phone number (DID) owned by a trunk.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PhoneNumber {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// The trunk calls to it arrive on.
    pub trunk_id: String,
    /// E.164, e.g. `+15550100`.
    pub number: String,
    /// Created.
    pub created_at: Timestamp,
}

/// Input for [`Store::create_number`].
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewPhoneNumber {
    /// E.164 (`+` and 3 to 15 digits; spaces, dashes, dots and parentheses are ignored).
    pub number: String,
    /// Owning trunk.
    pub trunk_id: String,
}

/// Where an inbound call to a dialled number goes: the owning tenant and trunk.
#[derive(Debug, Clone)]
pub struct InboundRoute {
    /// The number, normalised.
    pub number: PhoneNumber,
    /// Its trunk.
    pub trunk: Trunk,
    /// The trunk's inbound digest credentials, if any.
    pub trunk_credentials: Option<TrunkCredentials>,
}

/// Normalises an E.164 number (`+1 555-0100` → `+15550100`) by the same rule as a
/// customer's phone identity, so a DID, a caller ID and a customer lookup always agree on
/// how one number is written.
pub fn normalize_e164(field: &'static str, raw: &str) -> Result<String> {
    crate::identity::IdentityKind::Phone.normalize(field, raw)
}

fn check_extension(ext: &str) -> Result<String> {
    let e = ext.trim();
    if !(2..=10).contains(&e.len()) || !e.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("extension", "must be 2 to 10 digits"));
    }
    Ok(e.to_owned())
}

fn check_sip_password(field: &'static str, p: &str) -> Result<()> {
    if p.chars().count() < 10 {
        return Err(Error::invalid(field, "must be at least 10 characters"));
    }
    if p.len() > 256 {
        return Err(Error::invalid(field, "must be at most 256 bytes"));
    }
    Ok(())
}

fn check_transport(t: Option<&str>) -> Result<String> {
    match t.map(str::to_ascii_lowercase).as_deref() {
        None | Some("udp") => Ok("udp".into()),
        Some("tcp") => Ok("tcp".into()),
        Some("tls") => Ok("tls".into()),
        Some(_) => Err(Error::invalid("transport", "must be udp, tcp or tls")),
    }
}

/// The default port of SIP over TLS (RFC 3261 §26.2).
pub const SIPS_PORT: u16 = 5061;

/// A CA pinned for a TLS trunk: PEM certificate blocks only (base64 bodies), at most
/// 16 of them and 64 KiB. The certificates themselves are parsed by the SIP layer when
/// it connects.
fn check_tls_ca(transport: &str, pem: Option<&str>) -> Result<Option<String>> {
    const FIELD: &str = "tls_ca_pem";
    let Some(pem) = pem.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if transport != "tls" {
        return Err(Error::invalid(FIELD, "is only for transport tls"));
    }
    if pem.len() > 64 * 1024 {
        return Err(Error::invalid(FIELD, "must be at most 64 KiB"));
    }
    let mut blocks = 0;
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let Some(end) = body.find("-----END CERTIFICATE-----") else {
            return Err(Error::invalid(FIELD, "a certificate block is not closed"));
        };
        let b64: String = body[..end].split_whitespace().collect();
        use base64::Engine as _;
        if b64.is_empty()
            || base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .is_err()
        {
            return Err(Error::invalid(FIELD, "a certificate block is not base64"));
        }
        blocks += 1;
        rest = &body[end + "-----END CERTIFICATE-----".len()..];
    }
    if blocks == 0 || blocks > 16 {
        return Err(Error::invalid(
            FIELD,
            "must hold 1 to 16 PEM certificates (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(Some(pem.to_owned()))
}

fn check_target_for(t: &str, transport: &str) -> Result<String> {
    let t = t.trim();
    // TLS: a host alone means the sips default port.
    if transport == "tls" && !t.is_empty() && !t.contains(':') {
        return check_target(&format!("{t}:{SIPS_PORT}"));
    }
    check_target(t)
}

fn check_target(t: &str) -> Result<String> {
    let t = t.trim();
    let ok = t.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty() && !h.contains(char::is_whitespace) && p.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if ok {
        Ok(t.to_owned())
    } else {
        Err(Error::invalid("outbound_target", "must be host:port"))
    }
}

fn check_addresses(list: &[String]) -> Result<Vec<String>> {
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            a.trim()
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|_| Error::invalid(format!("inbound_addresses[{i}]"), "not an IP address"))
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct TrunkRow {
    id: String,
    tenant_id: String,
    name: String,
    inbound_addresses: String,
    inbound_username: Option<String>,
    inbound_realm: Option<String>,
    inbound_ha1_md5: Option<String>,
    inbound_ha1_sha256: Option<String>,
    outbound_target: Option<String>,
    transport: String,
    caller_id: Option<String>,
    srtp: String,
    created_at: i64,
    tls: i64,
    tls_ca: Option<String>,
}

const TRUNK_COLS: &str = "id, tenant_id, name, inbound_addresses, inbound_username, inbound_realm, \
     inbound_ha1_md5, inbound_ha1_sha256, outbound_target, transport, caller_id, srtp, created_at, \
     tls, tls_ca";

/// The stored form of a transport: (`transport` column, `tls` column). TLS is stored
/// as `tcp` with `tls` set (migration 0023).
fn transport_columns(transport: &str) -> (&str, i64) {
    if transport == "tls" {
        ("tcp", 1)
    } else {
        (transport, 0)
    }
}

impl TrunkRow {
    fn split(self) -> Result<(Trunk, Option<TrunkCredentials>)> {
        let creds = match (
            &self.inbound_username,
            self.inbound_realm,
            self.inbound_ha1_md5,
            self.inbound_ha1_sha256,
        ) {
            (Some(u), Some(realm), Some(ha1_md5), Some(ha1_sha256)) => Some(TrunkCredentials {
                username: u.clone(),
                realm,
                ha1_md5,
                ha1_sha256,
            }),
            _ => None,
        };
        Ok((
            Trunk {
                inbound_addresses: from_json_text(
                    "trunk.inbound_addresses",
                    &self.inbound_addresses,
                )?,
                id: self.id,
                tenant_id: self.tenant_id,
                name: self.name,
                inbound_username: self.inbound_username,
                has_inbound_password: creds.is_some(),
                outbound_target: self.outbound_target,
                transport: if self.tls != 0 {
                    "tls".to_owned()
                } else {
                    self.transport
                },
                tls_ca_pem: self.tls_ca,
                caller_id: self.caller_id,
                srtp: SrtpPolicy::from_db(&self.srtp),
                created_at: Timestamp(self.created_at),
            },
            creds,
        ))
    }
}

type NumberRow = (String, String, String, String, i64);

fn number_of(r: NumberRow) -> PhoneNumber {
    PhoneNumber {
        id: r.0,
        tenant_id: r.1,
        trunk_id: r.2,
        number: r.3,
        created_at: Timestamp(r.4),
    }
}

/// The one answer to adding or routing a number the tenant may not have (held by
/// another tenant, or already its own): it does not say which.
pub const NUMBER_NOT_AVAILABLE: &str = "number not available";

impl Store {
    /// The tenant's SIP domain (digest realm): its `sip_domain`, else its name.
    /// Cached (see [`crate::lookups`]).
    pub async fn sip_realm(&self, actor: &Actor) -> Result<String> {
        self.sip_realm_cached(actor).await
    }

    pub(crate) async fn sip_realm_db(&self, actor: &Actor) -> Result<String> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT COALESCE(sip_domain, name) FROM tenants WHERE id = $1")
                .bind(&actor.tenant_id)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| r.0).ok_or_else(|| Error::not_found("tenant"))
    }

    /// The tenant whose SIP domain (or, without one, name) is `domain` (case-insensitive).
    pub async fn tenant_by_sip_domain(&self, domain: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM tenants WHERE LOWER(COALESCE(sip_domain, name)) = LOWER($1)",
        )
        .bind(domain)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// A user's SIP identity.
    pub async fn sip_account(&self, actor: &Actor, user_id: &str) -> Result<SipAccount> {
        type Row = (Option<String>, Option<String>, Option<String>, String);
        let row: Option<Row> = sqlx::query_as(
            "SELECT extension, sip_realm, sip_ha1_md5, srtp FROM users WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        let (extension, realm, ha1, srtp) = row.ok_or_else(|| Error::not_found("user"))?;
        let realm = match realm {
            Some(r) => r,
            None => self.sip_realm(actor).await?,
        };
        Ok(SipAccount {
            user_id: user_id.to_owned(),
            extension,
            realm,
            has_password: ha1.is_some(),
            srtp: SrtpPolicy::from_db(&srtp),
        })
    }

    /// The SRTP policy of a user's phones, from the database (see
    /// [`Store::user_srtp_cached`]).
    pub(crate) async fn user_srtp_db(&self, tenant_id: &str, user_id: &str) -> Result<SrtpPolicy> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT srtp FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(user_id)
                .fetch_optional(self.pool())
                .await?;
        let (srtp,) = row.ok_or_else(|| Error::not_found("user"))?;
        Ok(SrtpPolicy::from_db(&srtp))
    }

    /// Sets a user's extension and/or SIP password. The password is turned into HA1
    /// digests (MD5 and SHA-256) for `extension:realm:password` and discarded, so changing
    /// the extension requires the password again (the old HA1 would no longer match).
    pub async fn set_sip_account(
        &self,
        actor: &Actor,
        user_id: &str,
        patch: SipAccountPatch,
    ) -> Result<SipAccount> {
        let before = self.sip_account(actor, user_id).await?;
        let extension = patch
            .extension
            .as_deref()
            .map(check_extension)
            .transpose()?;
        if let Some(p) = &patch.password {
            check_sip_password("password", p)?;
        }
        let ext_changed = extension.is_some() && extension != before.extension;
        if ext_changed && before.has_password && patch.password.is_none() {
            return Err(Error::invalid(
                "password",
                "is required when the extension changes (credentials are bound to it)",
            ));
        }
        let new_ext = extension.or(before.extension.clone());
        let realm = self.sip_realm(actor).await?;
        let ha1 = match (&patch.password, &new_ext) {
            (Some(p), Some(ext)) => Some((
                digest_ha1(HashAlgorithm::Md5, ext, &realm, p),
                digest_ha1(HashAlgorithm::Sha256, ext, &realm, p),
            )),
            (Some(_), None) => {
                return Err(Error::invalid(
                    "extension",
                    "is required to set a SIP password",
                ));
            }
            _ => None,
        };
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let srtp = patch.srtp.unwrap_or(before.srtp);
        sqlx::query(
            "UPDATE users SET extension = $1, srtp = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5",
        )
        .bind(new_ext.as_deref())
        .bind(srtp.as_str())
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "user", "extension"))?;
        if let Some((md5, sha256)) = &ha1 {
            sqlx::query(
                "UPDATE users SET sip_realm = $1, sip_ha1_md5 = $2, sip_ha1_sha256 = $3
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(&realm)
            .bind(md5)
            .bind(sha256)
            .bind(&actor.tenant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        let after = SipAccount {
            user_id: user_id.to_owned(),
            extension: new_ext,
            realm: if ha1.is_some() {
                realm
            } else {
                before.realm.clone()
            },
            has_password: before.has_password || ha1.is_some(),
            srtp,
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: if ha1.is_some() {
                    "user.set_sip_password"
                } else if srtp != before.srtp && after.extension == before.extension {
                    "user.set_srtp"
                } else {
                    "user.set_extension"
                },
                entity_kind: "user",
                entity_id: user_id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        self.commit_audited(
            tx,
            audited,
            [crate::queues::agent_changed(&actor.tenant_id, user_id)],
        )
        .await?;
        self.lookups_changed();
        Ok(after)
    }

    /// Digest credentials of the active user with `extension` in the tenant whose SIP
    /// domain is `domain`; when no tenant has that domain (phones often put the server's
    /// IP address there), the extension is looked up across tenants and used only if
    /// exactly one active user has it.
    pub async fn sip_credentials(
        &self,
        domain: &str,
        extension: &str,
    ) -> Result<Option<SipCredentials>> {
        type Row = (String, String, String, String, String, String, String);
        const COLS: &str = "u.tenant_id, u.id, u.extension, u.sip_realm, u.sip_ha1_md5, \
             u.sip_ha1_sha256, u.srtp";
        let by_domain: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM users u JOIN tenants t ON t.id = u.tenant_id
             WHERE LOWER(COALESCE(t.sip_domain, t.name)) = LOWER($1) AND u.extension = $2
               AND u.active = 1 AND u.sip_ha1_md5 IS NOT NULL AND u.sip_realm IS NOT NULL"
        )))
        .bind(domain)
        .bind(extension)
        .fetch_all(self.pool())
        .await?;
        let rows = if by_domain.is_empty() && self.tenant_by_sip_domain(domain).await?.is_none() {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM users u
                 WHERE u.extension = $1 AND u.active = 1
                   AND u.sip_ha1_md5 IS NOT NULL AND u.sip_realm IS NOT NULL
                 LIMIT 2"
            )))
            .bind(extension)
            .fetch_all(self.pool())
            .await?
        } else {
            by_domain
        };
        if rows.len() != 1 {
            return Ok(None);
        }
        Ok(rows.into_iter().next().map(
            |(tenant_id, user_id, extension, realm, ha1_md5, ha1_sha256, srtp)| SipCredentials {
                tenant_id,
                user_id,
                extension,
                realm,
                ha1_md5,
                ha1_sha256,
                srtp: SrtpPolicy::from_db(&srtp),
            },
        ))
    }

    /// Every tenant's digest realm (its SIP domain, else its name), sorted
    /// (system-wide: the SIP registrar challenges unknown user names with one of them,
    /// so that a challenge does not tell whether a name exists).
    pub async fn sip_realms(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT COALESCE(sip_domain, name) AS realm FROM tenants ORDER BY realm",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The SIP identity a registration of user `user_id` must still match to stay
    /// bound (system-wide, for the registrar): `(extension, SHA-256 HA1)` of the user
    /// when active with credentials, `None` when deactivated, without an extension or
    /// password, or gone. A password or extension change gives a different pair.
    pub async fn sip_binding_identity(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Option<(String, String)>> {
        let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT extension, sip_ha1_sha256 FROM users
             WHERE tenant_id = $1 AND id = $2 AND active = 1",
        )
        .bind(tenant_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some((Some(ext), Some(ha1))) => Some((ext, ha1)),
            _ => None,
        })
    }

    /// Active users of the actor's tenant that have an extension and SIP credentials,
    /// as `(user id, extension)`, by extension.
    /// Cached (see [`crate::lookups`]).
    pub async fn sip_users(&self, actor: &Actor) -> Result<Vec<(String, String)>> {
        self.sip_users_cached(actor).await
    }

    pub(crate) async fn sip_users_db(&self, actor: &Actor) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, extension FROM users
             WHERE tenant_id = $1 AND active = 1 AND extension IS NOT NULL
               AND sip_ha1_md5 IS NOT NULL
             ORDER BY extension",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?)
    }

    fn trunk_secret(input: &TrunkInput, realm: &str) -> Result<Option<(String, String, String)>> {
        match (&input.inbound_username, &input.inbound_password) {
            (Some(u), Some(p)) => {
                check_sip_password("inbound_password", p)?;
                let u = check_name_plain("inbound_username", u)?;
                Ok(Some((
                    u.clone(),
                    digest_ha1(HashAlgorithm::Md5, &u, realm, p),
                    digest_ha1(HashAlgorithm::Sha256, &u, realm, p),
                )))
            }
            (None, Some(_)) => Err(Error::invalid(
                "inbound_username",
                "is required with inbound_password",
            )),
            _ => Ok(None),
        }
    }

    /// Creates a trunk.
    pub async fn create_trunk(&self, actor: &Actor, input: TrunkInput) -> Result<Trunk> {
        let name = crate::directory::check_name("name", &input.name, 64)?;
        let addresses = check_addresses(&input.inbound_addresses)?;
        let transport = check_transport(input.transport.as_deref())?;
        let target = input
            .outbound_target
            .as_deref()
            .map(|t| check_target_for(t, &transport))
            .transpose()?;
        let tls_ca = check_tls_ca(&transport, input.tls_ca_pem.as_deref())?;
        let caller_id = input
            .caller_id
            .as_deref()
            .map(|c| normalize_e164("caller_id", c))
            .transpose()?;
        let realm = self.sip_realm(actor).await?;
        let secret = Self::trunk_secret(&input, &realm)?;
        let username = match (&secret, &input.inbound_username) {
            (Some(s), _) => Some(s.0.clone()),
            (None, Some(u)) => Some(check_name_plain("inbound_username", u)?),
            (None, None) => None,
        };
        let srtp = input.srtp.unwrap_or_default();
        let now = self.now();
        let id = new_id();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO trunks (id, tenant_id, name, inbound_addresses, inbound_username, inbound_realm,
                                 inbound_ha1_md5, inbound_ha1_sha256, outbound_target, transport,
                                 caller_id, srtp, created_at, updated_at, tls, tls_ca)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15)",
        )
        .bind(&id)
        .bind(&actor.tenant_id)
        .bind(&name)
        .bind(json_text(&addresses))
        .bind(username.as_deref())
        .bind(secret.as_ref().map(|_| realm.as_str()))
        .bind(secret.as_ref().map(|s| s.1.as_str()))
        .bind(secret.as_ref().map(|s| s.2.as_str()))
        .bind(target.as_deref())
        .bind(transport_columns(&transport).0)
        .bind(caller_id.as_deref())
        .bind(srtp.as_str())
        .bind(now.0)
        .bind(transport_columns(&transport).1)
        .bind(tls_ca.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "trunk", "name"))?;
        let trunk = Trunk {
            id: id.clone(),
            tenant_id: actor.tenant_id.clone(),
            name,
            inbound_addresses: addresses,
            inbound_username: username,
            has_inbound_password: secret.is_some(),
            outbound_target: target,
            transport,
            tls_ca_pem: tls_ca,
            caller_id,
            srtp,
            created_at: now,
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "trunk.create",
                entity_kind: "trunk",
                entity_id: &id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&trunk),
            },
        )
        .await?;
        let event =
            DomainEvent::redacted(&actor.tenant_id, "trunk.created", &trunk).min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(trunk)
    }

    /// One trunk of the actor's tenant.
    pub async fn trunk(&self, actor: &Actor, id: &str) -> Result<Trunk> {
        let row: Option<TrunkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TRUNK_COLS} FROM trunks WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.ok_or_else(|| Error::not_found("trunk"))?.split()?.0)
    }

    /// All trunks of the actor's tenant, by name.
    pub async fn list_trunks(&self, actor: &Actor) -> Result<Vec<Trunk>> {
        let rows: Vec<TrunkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TRUNK_COLS} FROM trunks WHERE tenant_id = $1 ORDER BY name"
        )))
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(|r| Ok(r.split()?.0)).collect()
    }

    /// Replaces a trunk's settings (`inbound_password` absent keeps the stored digest
    /// when the user name is unchanged; a removed user name removes it).
    pub async fn update_trunk(&self, actor: &Actor, id: &str, input: TrunkInput) -> Result<Trunk> {
        let before = self.trunk(actor, id).await?;
        let name = crate::directory::check_name("name", &input.name, 64)?;
        let addresses = check_addresses(&input.inbound_addresses)?;
        let transport = check_transport(input.transport.as_deref())?;
        let target = input
            .outbound_target
            .as_deref()
            .map(|t| check_target_for(t, &transport))
            .transpose()?;
        let tls_ca = check_tls_ca(&transport, input.tls_ca_pem.as_deref())?;
        let caller_id = input
            .caller_id
            .as_deref()
            .map(|c| normalize_e164("caller_id", c))
            .transpose()?;
        let realm = self.sip_realm(actor).await?;
        let secret = Self::trunk_secret(&input, &realm)?;
        let username = input
            .inbound_username
            .as_deref()
            .map(|u| check_name_plain("inbound_username", u))
            .transpose()?;
        let keep_secret = secret.is_none()
            && username.is_some()
            && username == before.inbound_username
            && before.has_inbound_password;
        if secret.is_none() && username.is_some() && !keep_secret {
            return Err(Error::invalid(
                "inbound_password",
                "is required with a new inbound_username",
            ));
        }
        let srtp = input.srtp.unwrap_or(before.srtp);
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE trunks SET name = $1, inbound_addresses = $2, inbound_username = $3,
                    outbound_target = $4, transport = $5, caller_id = $6, srtp = $7, updated_at = $8,
                    tls = $11, tls_ca = $12
             WHERE tenant_id = $9 AND id = $10",
        )
        .bind(&name)
        .bind(json_text(&addresses))
        .bind(username.as_deref())
        .bind(target.as_deref())
        .bind(transport_columns(&transport).0)
        .bind(caller_id.as_deref())
        .bind(srtp.as_str())
        .bind(now.0)
        .bind(&actor.tenant_id)
        .bind(id)
        .bind(transport_columns(&transport).1)
        .bind(tls_ca.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::from_unique(e, "trunk", "name"))?;
        if !keep_secret {
            sqlx::query(
                "UPDATE trunks SET inbound_realm = $1, inbound_ha1_md5 = $2, inbound_ha1_sha256 = $3
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(secret.as_ref().map(|_| realm.as_str()))
            .bind(secret.as_ref().map(|s| s.1.as_str()))
            .bind(secret.as_ref().map(|s| s.2.as_str()))
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let after = Trunk {
            name,
            inbound_addresses: addresses,
            inbound_username: username,
            has_inbound_password: keep_secret || secret.is_some(),
            outbound_target: target,
            transport,
            tls_ca_pem: tls_ca,
            caller_id,
            srtp,
            ..before.clone()
        };
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "trunk.update",
                entity_kind: "trunk",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&after),
            },
        )
        .await?;
        let event =
            DomainEvent::redacted(&actor.tenant_id, "trunk.updated", &after).min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(after)
    }

    /// Deletes a trunk and the numbers it owns.
    pub async fn delete_trunk(&self, actor: &Actor, id: &str) -> Result<()> {
        let before = self.trunk(actor, id).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM phone_numbers WHERE tenant_id = $1 AND trunk_id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM trunks WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "trunk.delete",
                entity_kind: "trunk",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: None,
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "trunk.deleted",
            &serde_json::json!({ "id": id }),
        )
        .min_role(Role::Admin);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(())
    }

    /// Adds a phone number to a trunk of the actor's tenant.
    pub async fn create_number(&self, actor: &Actor, new: NewPhoneNumber) -> Result<PhoneNumber> {
        let number = normalize_e164("number", &new.number)?;
        self.require(actor, "trunks", "trunk", &new.trunk_id)
            .await?;
        let now = self.now();
        let n = PhoneNumber {
            id: new_id(),
            tenant_id: actor.tenant_id.clone(),
            trunk_id: new.trunk_id,
            number,
            created_at: now,
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO phone_numbers (id, tenant_id, trunk_id, number, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&n.id)
        .bind(&n.tenant_id)
        .bind(&n.trunk_id)
        .bind(&n.number)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| match Error::from_unique(e, "phone_number", "number") {
            // One message whether this tenant or another holds the number: an admin
            // must not learn another tenant's numbers by trying them.
            Error::Conflict { entity, field, .. } => Error::Conflict {
                entity,
                field,
                detail: Some(NUMBER_NOT_AVAILABLE.into()),
            },
            other => other,
        })?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "phone_number.create",
                entity_kind: "phone_number",
                entity_id: &n.id,
                subject_customer_id: None,
                before: None,
                after: snapshot(&n),
            },
        )
        .await?;
        let event = DomainEvent::new(&actor.tenant_id, "phone_number.created", &n)
            .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(n)
    }

    /// The tenant's phone numbers, by number.
    pub async fn list_numbers(&self, actor: &Actor) -> Result<Vec<PhoneNumber>> {
        let rows: Vec<NumberRow> = sqlx::query_as(
            "SELECT id, tenant_id, trunk_id, number, created_at FROM phone_numbers
             WHERE tenant_id = $1 ORDER BY number",
        )
        .bind(&actor.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(number_of).collect())
    }

    /// Removes a phone number.
    pub async fn delete_number(&self, actor: &Actor, id: &str) -> Result<()> {
        let row: Option<NumberRow> = sqlx::query_as(
            "SELECT id, tenant_id, trunk_id, number, created_at FROM phone_numbers
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&actor.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let before = number_of(row.ok_or_else(|| Error::not_found("phone_number"))?);
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM phone_numbers WHERE tenant_id = $1 AND id = $2")
            .bind(&actor.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "phone_number.delete",
                entity_kind: "phone_number",
                entity_id: id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: None,
            },
        )
        .await?;
        let event = DomainEvent::new(
            &actor.tenant_id,
            "phone_number.deleted",
            &serde_json::json!({ "id": id }),
        )
        .min_role(Role::Supervisor);
        self.commit_audited(tx, audited, [event]).await?;
        self.lookups_changed();
        Ok(())
    }

    /// Inbound routing (system-wide, no actor: the tenant is what is being found): the
    /// number and trunk for a dialled number, given as E.164 with or without the `+`.
    /// `None` when the number is unknown, or owned by more than one tenant (ambiguous).
    /// Cached (see [`crate::lookups`]).
    pub async fn route_number(&self, dialled: &str) -> Result<Option<InboundRoute>> {
        self.route_number_cached(dialled).await
    }

    pub(crate) async fn route_number_db(&self, dialled: &str) -> Result<Option<InboundRoute>> {
        let d = dialled.trim();
        let plus = if d.starts_with('+') {
            d.to_owned()
        } else {
            format!("+{d}")
        };
        let Ok(number) = normalize_e164("number", &plus) else {
            return Ok(None);
        };
        let rows: Vec<NumberRow> = sqlx::query_as(
            "SELECT id, tenant_id, trunk_id, number, created_at FROM phone_numbers
             WHERE number = $1 LIMIT 2",
        )
        .bind(&number)
        .fetch_all(self.pool())
        .await?;
        if rows.len() != 1 {
            return Ok(None);
        }
        let Some(n) = rows.into_iter().next().map(number_of) else {
            return Ok(None);
        };
        let row: Option<TrunkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TRUNK_COLS} FROM trunks WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(&n.tenant_id)
        .bind(&n.trunk_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (trunk, trunk_credentials) = row.split()?;
        Ok(Some(InboundRoute {
            number: n,
            trunk,
            trunk_credentials,
        }))
    }

    /// Tenants owning a trunk whose inbound addresses include `ip` (system-wide: the
    /// tenant is what is being found), for services such as the echo test that any
    /// trusted trunk may reach. Sorted, without duplicates.
    pub async fn trunk_tenants_for_source(&self, ip: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .trunks_for_source(ip)
            .await?
            .into_iter()
            .map(|t| t.tenant_id)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The SRTP policy for a call from `ip` as a trunk source (system-wide): the
    /// strictest of the trunks with that inbound address (`required` over `optional`
    /// over `off`); `None` when no trunk has it.
    pub async fn trunk_srtp_for_source(&self, ip: &str) -> Result<Option<SrtpPolicy>> {
        let rank = |p: SrtpPolicy| match p {
            SrtpPolicy::Off => 0,
            SrtpPolicy::Optional => 1,
            SrtpPolicy::Required => 2,
        };
        Ok(self
            .trunks_for_source(ip)
            .await?
            .into_iter()
            .map(|t| t.srtp)
            .max_by_key(|p| rank(*p)))
    }

    async fn trunks_for_source(&self, ip: &str) -> Result<Vec<Trunk>> {
        let rows: Vec<TrunkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {TRUNK_COLS} FROM trunks WHERE inbound_addresses LIKE $1"
        )))
        .bind(format!("%{}%", ip.replace(['%', '_'], "")))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let (trunk, _) = row.split()?;
            if trunk.inbound_addresses.iter().any(|a| a == ip) {
                out.push(trunk);
            }
        }
        Ok(out)
    }

    /// Trunks (names) not on TLS and the number of active users whose SRTP policy is
    /// `required` (system-wide): the server warns at start that their SDES keys need
    /// SIP over TLS.
    pub async fn srtp_required_peers(&self) -> Result<(Vec<String>, i64)> {
        let trunks: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM trunks WHERE srtp = 'required' AND tls = 0 ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        let (users,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM users WHERE srtp = 'required' AND active = 1")
                .fetch_one(self.pool())
                .await?;
        Ok((trunks.into_iter().map(|t| t.0).collect(), users))
    }
}

impl Store {
    /// Every trunk with an outbound target, system-wide, as (id, target, transport,
    /// pinned TLS CA): the SIP layer pings them with OPTIONS to know which are up.
    pub async fn trunk_outbound_targets(
        &self,
    ) -> Result<Vec<(String, String, String, Option<String>)>> {
        type Row = (String, Option<String>, String, i64, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, outbound_target, transport, tls, tls_ca FROM trunks \
             WHERE outbound_target IS NOT NULL ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, t, tr, tls, ca)| {
                let tr = if tls != 0 { "tls".to_owned() } else { tr };
                t.map(|t| (id, t, tr, ca))
            })
            .collect())
    }

    /// Every source address any tenant's trunk accepts calls from (system-wide: the SIP
    /// layer exempts them from the unauthenticated-request throttle).
    pub async fn trunk_source_addresses(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT inbound_addresses FROM trunks")
            .fetch_all(self.pool())
            .await?;
        let mut out: Vec<String> = Vec::new();
        for (json,) in rows {
            let list: Vec<String> = from_json_text("trunk.inbound_addresses", &json)?;
            out.extend(list);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

fn check_name_plain(field: &'static str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty()
        || v.len() > 64
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c))
    {
        return Err(Error::invalid(
            field,
            "must be 1 to 64 characters of a SIP user name",
        ));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_matches_rfc_2617_example() {
        // RFC 2617 §3.5: HA1 of Mufasa:testrealm@host.com:Circle Of Life.
        assert_eq!(
            digest_ha1(
                HashAlgorithm::Md5,
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life"
            ),
            "939e7578ed9e3c518a452acee763bce9"
        );
        // RFC 7616 §3.9.1 example user and realm, SHA-256.
        assert_eq!(
            digest_ha1(
                HashAlgorithm::Sha256,
                "Mufasa",
                "http-auth@example.org",
                "Circle of Life"
            ),
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }

    #[test]
    fn e164_is_normalised() {
        assert_eq!(normalize_e164("n", " +1 555-0100 ").unwrap(), "+15550100");
        for bad in [
            "15550100",
            "+",
            "+12",
            "+0123456",
            "+1555x",
            "+1234567890123456",
        ] {
            assert!(normalize_e164("n", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extensions_are_digits() {
        assert_eq!(check_extension(" 1001 ").unwrap(), "1001");
        for bad in ["1", "10a1", "12345678901", ""] {
            assert!(check_extension(bad).is_err(), "{bad}");
        }
    }
}
