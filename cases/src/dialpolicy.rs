//! The outbound dial policy (toll fraud): one pure decision that every path dialling out
//! of Parley consults before a number is dialled or stored as a number to call back —
//! extension calls through the trunk, click-to-call, agent transfers, consultations
//! and conference parties, the browser softphone, IVR transfers, REFER, and callback
//! numbers (typed at an IVR callback node or taken from a caller's From).
//!
//! Numbers are read with `phonenumber` (a port of Google's libphonenumber): national
//! formats with the tenant's country, the region a number belongs to (so `+1 876…`
//! is Jamaica, not the United States), and its type (premium rate, shared cost,
//! personal number…). The policy is data ([`DialPolicy`], stored per tenant) and the
//! decision is [`DialCounters::admit`]: `(policy, number, origin, now)` → the E.164
//! number and its limits, or a [`Refusal`] naming the rule. No clock, no I/O: the SIP
//! runtime owns one [`DialCounters`] and feeds it `now`.
//!
//! Order of the rules: the number must parse; blocked prefixes, then blocked number
//! types (these win over any allowance); then the destination must be the home
//! country, an allowed prefix, or international must be on; numbers the library does
//! not recognise are refused only when `refuse_unrecognised` is set; then the caps
//! (concurrent calls per user and per tenant, calls per minute per tenant).

use std::collections::{HashMap, VecDeque};
use std::str::FromStr;

use phonenumber::country::Id as CountryId;
use phonenumber::{PhoneNumber, Type};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Record, snapshot};
use crate::events::DomainEvent;
use crate::types::{Actor, Role, from_json_text, json_text};
use crate::{Error, Result, Store};

/// How long the per-minute window is, in ms.
const MINUTE_MS: i64 = 60_000;

/// A number type, as libphonenumber classifies numbers (per country metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NumberKind {
    /// Fixed line.
    FixedLine,
    /// Mobile.
    Mobile,
    /// Fixed line or mobile (countries such as the US where the two cannot be told apart).
    FixedLineOrMobile,
    /// Freephone.
    TollFree,
    /// Premium rate (the caller pays a surcharge to the number's owner).
    PremiumRate,
    /// Shared cost.
    SharedCost,
    /// Personal numbers (e.g. UK 070), forwarded anywhere: a classic fraud vector.
    PersonalNumber,
    /// Voice over IP.
    Voip,
    /// Pagers.
    Pager,
    /// Universal access ("company") numbers.
    Uan,
    /// Voicemail access.
    Voicemail,
    /// Recognised by the country but of no particular type, or short codes.
    Other,
    /// Not a valid number for any region the library knows (e.g. fictional `555` numbers).
    Unknown,
}

impl NumberKind {
    fn of(t: Type) -> NumberKind {
        match t {
            Type::FixedLine => NumberKind::FixedLine,
            Type::Mobile => NumberKind::Mobile,
            Type::FixedLineOrMobile => NumberKind::FixedLineOrMobile,
            Type::TollFree => NumberKind::TollFree,
            Type::PremiumRate => NumberKind::PremiumRate,
            Type::SharedCost => NumberKind::SharedCost,
            Type::PersonalNumber => NumberKind::PersonalNumber,
            Type::Voip => NumberKind::Voip,
            Type::Pager => NumberKind::Pager,
            Type::Uan => NumberKind::Uan,
            Type::Voicemail => NumberKind::Voicemail,
            Type::Unknown => NumberKind::Unknown,
            _ => NumberKind::Other,
        }
    }

    /// The name used in the policy and in refusals.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::FixedLine => "fixed_line",
            NumberKind::Mobile => "mobile",
            NumberKind::FixedLineOrMobile => "fixed_line_or_mobile",
            NumberKind::TollFree => "toll_free",
            NumberKind::PremiumRate => "premium_rate",
            NumberKind::SharedCost => "shared_cost",
            NumberKind::PersonalNumber => "personal_number",
            NumberKind::Voip => "voip",
            NumberKind::Pager => "pager",
            NumberKind::Uan => "uan",
            NumberKind::Voicemail => "voicemail",
            NumberKind::Other => "other",
            NumberKind::Unknown => "unknown",
        }
    }
}

/// A per-role or per-user exception to the tenant's policy. A user's own override
/// wins over their role's; fields left out keep the tenant's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DialOverride {
    /// Applies to users of this role (exactly one of `role` and `user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Applies to this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// International calls on or off for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub international: Option<bool>,
    /// Prefixes allowed to them on top of the tenant's `allow_prefixes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_prefixes: Vec<String>,
    /// Their own cap on concurrent outbound calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_per_user: Option<u32>,
}

/// A tenant's outbound dial policy. `Default` is what a tenant gets until an admin
/// changes it: home country only (US), international off, premium/shared-cost/personal
/// numbers and satellite/international-network ranges blocked, modest caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct DialPolicy {
    /// The tenant's country (ISO 3166 alpha-2): national formats are read with it, and
    /// it is the one destination country allowed without `international`.
    pub country: String,
    /// Calls to other countries (outside `allow_prefixes`).
    pub international: bool,
    /// E.164 prefixes allowed even when international is off (e.g. `+44`).
    pub allow_prefixes: Vec<String>,
    /// E.164 prefixes always refused (wins over every allowance).
    pub block_prefixes: Vec<String>,
    /// Number types always refused, in every country.
    pub block_types: Vec<NumberKind>,
    /// Refuse numbers the numbering library does not recognise as valid (fictional or
    /// unallocated ranges). Off by default: such numbers in the home country code are
    /// dialled (the carrier rejects them), since no other region claims them.
    pub refuse_unrecognised: bool,
    /// Concurrent outbound calls one user may have (0: no limit).
    pub max_concurrent_per_user: u32,
    /// Concurrent outbound calls of the whole tenant (0: no limit).
    pub max_concurrent_per_tenant: u32,
    /// Outbound calls the tenant may start per minute (0: no limit).
    pub max_calls_per_minute: u32,
    /// Longest an outbound leg may last, in seconds, before Parley hangs it up (0: no limit).
    pub max_call_secs: u32,
    /// Refusals within `alert_window_secs` that alert the tenant's admins.
    pub alert_refusals: u32,
    /// The burst alert's window, in seconds.
    pub alert_window_secs: u32,
    /// Per-role and per-user exceptions.
    pub overrides: Vec<DialOverride>,
    /// Prices per minute by destination prefix, for the daily spend estimate (the
    /// longest matching prefix wins; a number no prefix matches costs nothing; `+`
    /// alone matches every number).
    pub rates: Vec<DialRate>,
    /// The currency of `rates` and `daily_spend_cap_milli` (ISO 4217, informative).
    pub currency: String,
    /// The most the tenant's outbound calls may cost in one day (UTC), in thousandths
    /// of `currency` (0: no cap). A dial whose first minute would take the day's
    /// estimate over it is refused (`daily_spend`).
    pub daily_spend_cap_milli: u64,
}

/// A price per minute for numbers starting with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DialRate {
    /// E.164 prefix (`+44`, `+4477`), or `+` for every number.
    pub prefix: String,
    /// Price of one started minute, in thousandths of the policy's currency.
    pub per_minute_milli: u64,
}

/// A day (UTC) in ms.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day (days since 1970-01-01) of a time in ms.
pub fn day_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS)
}

/// The estimated cost of a call at `per_minute_milli` that has lasted `elapsed_ms`
/// since it was dialled: every started minute counts (ringing included — an estimate
/// errs on the side of the bill).
pub fn call_cost_milli(per_minute_milli: u64, elapsed_ms: i64) -> u64 {
    let minutes = u64::try_from(elapsed_ms.max(0))
        .unwrap_or(0)
        .div_ceil(60_000)
        .max(1);
    minutes.saturating_mul(per_minute_milli)
}

impl Default for DialPolicy {
    fn default() -> Self {
        DialPolicy {
            country: "US".into(),
            international: false,
            allow_prefixes: Vec::new(),
            // Satellite and international networks (Inmarsat +870, GMSS +881, the
            // international networks +882/+883), international shared cost +808 and
            // international premium rate +979: shared ranges with no country, classic
            // toll-fraud destinations.
            block_prefixes: ["+870", "+881", "+882", "+883", "+808", "+979"]
                .into_iter()
                .map(String::from)
                .collect(),
            block_types: vec![
                NumberKind::PremiumRate,
                NumberKind::SharedCost,
                NumberKind::PersonalNumber,
            ],
            refuse_unrecognised: false,
            max_concurrent_per_user: 2,
            max_concurrent_per_tenant: 20,
            max_calls_per_minute: 30,
            max_call_secs: 4 * 3600,
            alert_refusals: 5,
            alert_window_secs: 60,
            overrides: Vec::new(),
            rates: Vec::new(),
            currency: "USD".into(),
            daily_spend_cap_milli: 0,
        }
    }
}

impl DialPolicy {
    /// Checks an admin's policy: a known country, E.164-shaped prefixes, overrides that
    /// name exactly one of role and user.
    pub fn validate(&self) -> Result<()> {
        country_id(&self.country)?;
        for p in self
            .allow_prefixes
            .iter()
            .chain(&self.block_prefixes)
            .chain(self.overrides.iter().flat_map(|o| &o.allow_prefixes))
        {
            let digits = p.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Error::invalid(
                    "prefixes",
                    "each prefix is + and 1 to 15 digits, e.g. +44",
                ));
            }
        }
        for r in &self.rates {
            let digits = r.prefix.strip_prefix('+').unwrap_or("-");
            if digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::invalid(
                    "rates",
                    "each rate's prefix is + and up to 15 digits, e.g. +44 (or + for every number)",
                ));
            }
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::invalid("currency", "an ISO 4217 code, e.g. USD"));
        }
        if self.alert_window_secs == 0 {
            return Err(Error::invalid("alert_window_secs", "must be at least 1"));
        }
        for o in &self.overrides {
            if o.role.is_some() == o.user_id.is_some() {
                return Err(Error::invalid(
                    "overrides",
                    "each override names exactly one of role and user_id",
                ));
            }
        }
        Ok(())
    }

    /// Reads `raw` (E.164, or a national number of the tenant's country) and returns
    /// it in E.164 (`+15550100`), or the refusal for a string that is no phone number.
    pub fn normalize(&self, raw: &str) -> Result<String, Refusal> {
        parse(&self.country, raw).map(|(_, e164)| e164)
    }

    /// The price per minute (thousandths of `currency`) of calls to `e164`: the rate
    /// with the longest matching prefix, 0 when none matches.
    pub fn rate_for(&self, e164: &str) -> u64 {
        self.rates
            .iter()
            .filter(|r| e164.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
            .map_or(0, |r| r.per_minute_milli)
    }

    /// The policy as it applies to `origin` (its overrides merged in).
    fn effective(&self, origin: &DialOrigin) -> (bool, Vec<&str>, u32) {
        let mut international = self.international;
        let mut allow: Vec<&str> = self.allow_prefixes.iter().map(String::as_str).collect();
        let mut per_user = self.max_concurrent_per_user;
        // Role first, then the user's own (which wins).
        let by_role = self
            .overrides
            .iter()
            .filter(|o| o.role.is_some() && o.role == origin.role);
        let by_user = self
            .overrides
            .iter()
            .filter(|o| o.user_id.is_some() && o.user_id.as_deref() == origin.user_id.as_deref());
        for o in by_role.chain(by_user) {
            if let Some(i) = o.international {
                international = i;
            }
            allow.extend(o.allow_prefixes.iter().map(String::as_str));
            if let Some(c) = o.max_concurrent_per_user {
                per_user = c;
            }
        }
        (international, allow, per_user)
    }

    /// The destination rules alone (no caps): the number in E.164 and its type, or the
    /// refusal. Pure.
    pub fn check_number(
        &self,
        raw: &str,
        origin: &DialOrigin,
    ) -> Result<(String, NumberKind), Refusal> {
        let (number, e164) = parse(&self.country, raw)?;
        if let Some(p) = self.block_prefixes.iter().find(|p| e164.starts_with(*p)) {
            return Err(Refusal::BlockedPrefix { prefix: p.clone() });
        }
        let kind = NumberKind::of(number.number_type(&phonenumber::metadata::DATABASE));
        if self.block_types.contains(&kind) {
            return Err(Refusal::BlockedType { kind });
        }
        let (international, allow, _) = self.effective(origin);
        if allow.iter().any(|p| e164.starts_with(p)) {
            return Ok((e164, kind));
        }
        let home = country_id(&self.country).map_err(|_| Refusal::InvalidNumber)?;
        let home_code = phonenumber::metadata::DATABASE
            .by_id(home.as_ref())
            .map(|m| m.country_code());
        let region = number.country().id();
        let abroad = match region {
            Some(r) => r != home,
            None => Some(number.country().code()) != home_code,
        };
        if abroad && !international {
            return Err(Refusal::International {
                destination: region
                    .map(|r| r.as_ref().to_owned())
                    .unwrap_or_else(|| format!("+{}", number.country().code())),
            });
        }
        if kind == NumberKind::Unknown && self.refuse_unrecognised {
            return Err(Refusal::Unrecognised);
        }
        Ok((e164, kind))
    }
}

/// Who or what is dialling, for overrides, caps and the audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DialOrigin {
    /// The tenant.
    pub tenant_id: String,
    /// The user placing the call, when a user does (an IVR transfer has none).
    pub user_id: Option<String>,
    /// Their role.
    pub role: Option<Role>,
    /// Which path dials.
    pub path: DialPath,
}

/// The paths that dial out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialPath {
    /// A registered phone dials a number: out through the trunk.
    Extension,
    /// Click-to-call from the agent desktop.
    ClickToCall,
    /// The browser softphone dials a number.
    Softphone,
    /// An agent's blind transfer.
    Transfer,
    /// An agent's consultation (warm transfer).
    Consult,
    /// A conference party.
    AddParty,
    /// An IVR flow's transfer node.
    IvrTransfer,
    /// A REFER from a party of the call.
    Refer,
    /// A callback being dialled, or its number being stored.
    Callback,
}

impl DialPath {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DialPath::Extension => "extension",
            DialPath::ClickToCall => "click_to_call",
            DialPath::Softphone => "softphone",
            DialPath::Transfer => "transfer",
            DialPath::Consult => "consult",
            DialPath::AddParty => "add_party",
            DialPath::IvrTransfer => "ivr_transfer",
            DialPath::Refer => "refer",
            DialPath::Callback => "callback",
        }
    }
}

/// Why a number may not be dialled: each variant is one rule of the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// Not a phone number (or no country code and none to assume).
    #[error("not a phone number")]
    InvalidNumber,
    /// The number starts with a blocked prefix.
    #[error("the prefix {prefix} is blocked")]
    BlockedPrefix {
        /// The prefix.
        prefix: String,
    },
    /// The number's type is blocked.
    #[error("{} numbers are blocked", kind.as_str())]
    BlockedType {
        /// The type.
        kind: NumberKind,
    },
    /// Another country, with international calls off.
    #[error("international calls are off (destination {destination})")]
    International {
        /// The destination region (ISO code) or calling code.
        destination: String,
    },
    /// Not recognised as a valid number, and the policy refuses those.
    #[error("the number is not recognised as a valid number")]
    Unrecognised,
    /// The user's concurrent outbound calls are at the cap.
    #[error("at most {limit} concurrent outbound calls per user")]
    UserConcurrency {
        /// The cap.
        limit: u32,
    },
    /// The tenant's concurrent outbound calls are at the cap.
    #[error("at most {limit} concurrent outbound calls for the tenant")]
    TenantConcurrency {
        /// The cap.
        limit: u32,
    },
    /// Too many calls started in the last minute.
    #[error("at most {limit} outbound calls per minute")]
    RateLimit {
        /// The cap.
        limit: u32,
    },
    /// The day's estimated spend (finished and running calls) plus this call's first
    /// minute would exceed the daily cap.
    #[error(
        "the day's outbound spend would exceed {cap_milli}/1000 {currency} (estimated {estimate_milli}/1000 so far)"
    )]
    DailySpend {
        /// The cap, thousandths of the currency.
        cap_milli: u64,
        /// The day's estimate before this call.
        estimate_milli: u64,
        /// The currency.
        currency: String,
    },
}

impl Refusal {
    /// The rule's name (`blocked_prefix`, `international`, …).
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::InvalidNumber => "invalid_number",
            Refusal::BlockedPrefix { .. } => "blocked_prefix",
            Refusal::BlockedType { .. } => "blocked_type",
            Refusal::International { .. } => "international",
            Refusal::Unrecognised => "unrecognised",
            Refusal::UserConcurrency { .. } => "user_concurrency",
            Refusal::TenantConcurrency { .. } => "tenant_concurrency",
            Refusal::RateLimit { .. } => "rate_limit",
            Refusal::DailySpend { .. } => "daily_spend",
        }
    }

    /// The Q.850 cause for a SIP `Reason` header: 21 (call rejected) for destination
    /// rules, 34 (no circuit available) for caps.
    pub fn q850_cause(&self) -> u16 {
        match self {
            Refusal::UserConcurrency { .. }
            | Refusal::TenantConcurrency { .. }
            | Refusal::RateLimit { .. }
            | Refusal::DailySpend { .. } => 34,
            _ => 21,
        }
    }

    /// A SIP `Reason` header value naming the rule.
    pub fn sip_reason(&self) -> String {
        format!(
            "Q.850;cause={};text=\"dial policy: {}: {}\"",
            self.q850_cause(),
            self.rule(),
            self.to_string().replace(['"', '\\'], "")
        )
    }
}

/// What an admitted dial may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The number to dial, E.164.
    pub number: String,
    /// Its type.
    pub kind: NumberKind,
    /// Hang up after this long (ms), if the policy limits it.
    pub max_duration_ms: Option<u64>,
    /// The call's place in the counters, for [`DialCounters::release`].
    pub call: u64,
    /// Its price per minute (thousandths of the policy's currency).
    pub per_minute_milli: u64,
}

/// Loads the numbering metadata (decoded on first use: about a second in a debug
/// build), so that the first dial does not pay for it.
pub fn warm_up() {
    let origin = DialOrigin {
        tenant_id: String::new(),
        user_id: None,
        role: None,
        path: DialPath::Callback,
    };
    let _ = DialPolicy::default().check_number("+12015550123", &origin);
}

fn country_id(code: &str) -> Result<CountryId> {
    CountryId::from_str(&code.to_ascii_uppercase())
        .map_err(|_| Error::invalid("country", "an ISO 3166 alpha-2 code, e.g. US"))
}

fn parse(country: &str, raw: &str) -> Result<(PhoneNumber, String), Refusal> {
    let raw = raw.trim();
    // At most a phone number's worth of characters; digits and the usual punctuation.
    if raw.is_empty()
        || raw.len() > 32
        || !raw
            .bytes()
            .all(|b| b.is_ascii_digit() || b" +-().".contains(&b))
    {
        return Err(Refusal::InvalidNumber);
    }
    let id = country_id(country).ok();
    let number = phonenumber::parse(id, raw).map_err(|_| Refusal::InvalidNumber)?;
    if number.extension().is_some() {
        return Err(Refusal::InvalidNumber);
    }
    let e164 = format!("+{}{}", number.code().value(), number.national());
    let digits = e164.len() - 1;
    if !(6..=15).contains(&digits) {
        return Err(Refusal::InvalidNumber);
    }
    Ok((number, e164))
}

/// How often (ms) the runtime checks a running call with a price against the daily
/// spend cap, and how far ahead the check looks.
pub const SPEND_CHECK_MS: i64 = 5_000;

/// The spend cap's decision for running calls, as a function of `now_ms`, the calls
/// running (when each was dialled, ms, and its price per minute) and the day's tally of
/// ended calls: over the cap when the estimate `SPEND_CHECK_MS` ahead exceeds it (see
/// [`DialCounters::over_spend_cap`]). No cap (0): never.
pub fn spend_over_cap(
    policy: &DialPolicy,
    day_spent_milli: u64,
    running: impl IntoIterator<Item = (i64, u64)>,
    now_ms: i64,
) -> Option<Refusal> {
    let cap = policy.daily_spend_cap_milli;
    if cap == 0 {
        return None;
    }
    let ahead = now_ms.saturating_add(SPEND_CHECK_MS);
    let estimate_milli = running
        .into_iter()
        .map(|(at, rate)| call_cost_milli(rate, ahead - at))
        .fold(day_spent_milli, u64::saturating_add);
    (estimate_milli > cap).then(|| Refusal::DailySpend {
        cap_milli: cap,
        estimate_milli,
        currency: policy.currency.clone(),
    })
}

/// Concurrent and recent outbound calls, per tenant and user; the runtime owns one and
/// feeds it `now` (ms). Every admitted dial must be followed by exactly one
/// [`DialCounters::release`].
#[derive(Debug, Default)]
pub struct DialCounters {
    tenants: HashMap<String, TenantCounters>,
    next_call: u64,
}

#[derive(Debug, Default)]
struct TenantCounters {
    active: u32,
    /// Running calls: when each was dialled (ms) and its price per minute.
    running: HashMap<u64, (i64, u64)>,
    per_user: HashMap<String, u32>,
    started: VecDeque<i64>,
    refusals: VecDeque<i64>,
    alerted_at: Option<i64>,
}

impl DialCounters {
    /// Decides a dial: the destination rules, then the caps. `day_spent_milli` is the
    /// estimated cost of the tenant's outbound calls that ended today (UTC; the runtime
    /// keeps the tally), for the daily spend cap. Admitted, it counts towards the caps
    /// (and, while it runs, the day's spend) until [`DialCounters::release`].
    pub fn admit(
        &mut self,
        policy: &DialPolicy,
        raw: &str,
        origin: &DialOrigin,
        now_ms: i64,
        day_spent_milli: u64,
    ) -> Result<Allowed, Refusal> {
        let (number, kind) = policy.check_number(raw, origin)?;
        self.admit_checked(policy, number, kind, origin, now_ms, day_spent_milli)
    }

    /// The estimated cost of the tenant's running calls at `now_ms`.
    pub fn running_spend_milli(&self, tenant_id: &str, now_ms: i64) -> u64 {
        self.tenants.get(tenant_id).map_or(0, |t| {
            t.running
                .values()
                .map(|(at, rate)| call_cost_milli(*rate, now_ms - at))
                .fold(0, u64::saturating_add)
        })
    }

    /// The daily spend cap on running calls: whether the tenant's estimate (`day_spent_milli`,
    /// the calls that ended today, plus its running calls as they will have cost at
    /// `now_ms + SPEND_CHECK_MS`) exceeds the policy's cap. The runtime checks every
    /// running call with a price at least every [`SPEND_CHECK_MS`] and ends those of a
    /// tenant over its cap (so a call is cut before it starts the minute that would take
    /// the estimate over, or at once when the cap was lowered below what is spent).
    /// `Some` names the rule (a [`Refusal::DailySpend`] with the estimate).
    pub fn over_spend_cap(
        &self,
        policy: &DialPolicy,
        tenant_id: &str,
        day_spent_milli: u64,
        now_ms: i64,
    ) -> Option<Refusal> {
        spend_over_cap(
            policy,
            day_spent_milli,
            self.tenants
                .get(tenant_id)
                .into_iter()
                .flat_map(|t| t.running.values().copied()),
            now_ms,
        )
    }

    /// The caps alone, for a number [`DialPolicy::check_number`] already admitted (so
    /// that a runtime can read numbers outside the lock it keeps the counters under).
    pub fn admit_checked(
        &mut self,
        policy: &DialPolicy,
        number: String,
        kind: NumberKind,
        origin: &DialOrigin,
        now_ms: i64,
        day_spent_milli: u64,
    ) -> Result<Allowed, Refusal> {
        let per_minute_milli = policy.rate_for(&number);
        let cap = policy.daily_spend_cap_milli;
        if cap > 0 {
            let estimate_milli =
                day_spent_milli.saturating_add(self.running_spend_milli(&origin.tenant_id, now_ms));
            if estimate_milli.saturating_add(per_minute_milli) > cap {
                return Err(Refusal::DailySpend {
                    cap_milli: cap,
                    estimate_milli,
                    currency: policy.currency.clone(),
                });
            }
        }
        let (_, _, per_user) = policy.effective(origin);
        let t = self.tenants.entry(origin.tenant_id.clone()).or_default();
        while t.started.front().is_some_and(|s| now_ms - s >= MINUTE_MS) {
            t.started.pop_front();
        }
        if let Some(u) = &origin.user_id {
            let n = t.per_user.get(u).copied().unwrap_or(0);
            if per_user > 0 && n >= per_user {
                return Err(Refusal::UserConcurrency { limit: per_user });
            }
        }
        let cap = policy.max_concurrent_per_tenant;
        if cap > 0 && t.active >= cap {
            return Err(Refusal::TenantConcurrency { limit: cap });
        }
        let rate = policy.max_calls_per_minute;
        if rate > 0 && t.started.len() >= rate as usize {
            return Err(Refusal::RateLimit { limit: rate });
        }
        t.active += 1;
        if let Some(u) = &origin.user_id {
            *t.per_user.entry(u.clone()).or_default() += 1;
        }
        t.started.push_back(now_ms);
        self.next_call += 1;
        let call = self.next_call;
        t.running.insert(call, (now_ms, per_minute_milli));
        Ok(Allowed {
            number,
            kind,
            max_duration_ms: (policy.max_call_secs > 0)
                .then(|| u64::from(policy.max_call_secs) * 1000),
            call,
            per_minute_milli,
        })
    }

    /// An admitted call ended (or was never placed) at `now_ms`: returns its
    /// estimated cost, for the runtime to add to the day's tally.
    pub fn release(
        &mut self,
        tenant_id: &str,
        user_id: Option<&str>,
        call: u64,
        now_ms: i64,
    ) -> u64 {
        let Some(t) = self.tenants.get_mut(tenant_id) else {
            return 0;
        };
        let cost = t
            .running
            .remove(&call)
            .map_or(0, |(at, rate)| call_cost_milli(rate, now_ms - at));
        t.active = t.active.saturating_sub(1);
        if let Some(u) = user_id
            && let Some(n) = t.per_user.get_mut(u)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_user.remove(u);
            }
        }
        cost
    }

    /// The tenant's concurrent outbound calls and those of `user_id`.
    pub fn active(&self, tenant_id: &str, user_id: Option<&str>) -> (u32, u32) {
        let Some(t) = self.tenants.get(tenant_id) else {
            return (0, 0);
        };
        let u = user_id
            .and_then(|u| t.per_user.get(u).copied())
            .unwrap_or(0);
        (t.active, u)
    }

    /// Counts a refusal; returns how many fell in the policy's alert window when this one
    /// makes a burst that should alert the admins (at most one alert per window).
    pub fn refused(&mut self, policy: &DialPolicy, tenant_id: &str, now_ms: i64) -> Option<u32> {
        let t = self.tenants.entry(tenant_id.to_owned()).or_default();
        let window = i64::from(policy.alert_window_secs.max(1)) * 1000;
        while t.refusals.front().is_some_and(|s| now_ms - s >= window) {
            t.refusals.pop_front();
        }
        t.refusals.push_back(now_ms);
        // Bounded: only the window's worth is kept, and never more than the threshold.
        while t.refusals.len() > policy.alert_refusals.max(1) as usize {
            t.refusals.pop_front();
        }
        let n = t.refusals.len() as u32;
        let recently = t.alerted_at.is_some_and(|a| now_ms - a < window);
        if policy.alert_refusals > 0 && n >= policy.alert_refusals && !recently {
            t.alerted_at = Some(now_ms);
            return Some(n);
        }
        None
    }
}

impl Store {
    /// The tenant's dial policy (the default until an admin sets one).
    pub async fn dial_policy(&self, actor: &Actor) -> Result<DialPolicy> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT policy FROM dial_policies WHERE tenant_id = $1")
                .bind(&actor.tenant_id)
                .fetch_optional(self.pool())
                .await?;
        match row {
            Some((text,)) => from_json_text("dial_policies.policy", &text),
            None => Ok(DialPolicy::default()),
        }
    }

    /// Replaces the tenant's dial policy (admins only; audited as `dial_policy.update`
    /// with the old and new documents, published to admins as `dial_policy.changed`).
    pub async fn set_dial_policy(&self, actor: &Actor, policy: DialPolicy) -> Result<DialPolicy> {
        policy.validate()?;
        let mut policy = policy;
        policy.country = policy.country.to_ascii_uppercase();
        let before = self.dial_policy(actor).await?;
        let now = self.now();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO dial_policies (tenant_id, policy, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET policy = $2, updated_at = $3",
        )
        .bind(&actor.tenant_id)
        .bind(json_text(&policy))
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let audited = audit::write(
            &mut tx,
            actor,
            now,
            Record {
                action: "dial_policy.update",
                entity_kind: "dial_policy",
                entity_id: &actor.tenant_id,
                subject_customer_id: None,
                before: snapshot(&before),
                after: snapshot(&policy),
            },
        )
        .await?;
        let mut e = DomainEvent::new(&actor.tenant_id, "dial_policy.changed", &policy);
        e.min_role = Role::Admin;
        self.commit_audited(tx, audited, [e]).await?;
        // The next dial reads the new policy (dials read it from the lookup cache).
        self.lookups_changed();
        Ok(policy)
    }

    /// The estimated cost of the tenant's outbound calls that ended on the UTC day
    /// of `now_ms` (thousandths of the policy's currency).
    pub async fn dial_spend_on(&self, tenant_id: &str, now_ms: i64) -> Result<u64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT spent_milli FROM dial_spend WHERE tenant_id = $1 AND day = $2")
                .bind(tenant_id)
                .bind(day_of(now_ms))
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map_or(0, |(n,)| u64::try_from(n).unwrap_or(0)))
    }

    /// Adds an ended call's estimated cost to the tenant's tally of the UTC day of
    /// `now_ms`.
    pub async fn add_dial_spend(&self, tenant_id: &str, now_ms: i64, milli: u64) -> Result<()> {
        if milli == 0 {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO dial_spend (tenant_id, day, spent_milli) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, day) DO UPDATE SET spent_milli = dial_spend.spent_milli + $3",
        )
        .bind(tenant_id)
        .bind(day_of(now_ms))
        .bind(i64::try_from(milli).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a refused dial in the audit log (`dial.refused`, entity `dial`, the
    /// path as its id): who, which path, the number as given and the rule.
    pub async fn audit_dial_refusal(
        &self,
        origin: &DialOrigin,
        number: &str,
        refusal: &Refusal,
    ) -> Result<()> {
        let actor = Actor {
            tenant_id: origin.tenant_id.clone(),
            user_id: origin.user_id.clone(),
            role: origin.role.unwrap_or(Role::Admin),
        };
        let details = serde_json::json!({
            "path": origin.path,
            "number": number,
            "refusal": refusal,
            "message": refusal.to_string(),
        });
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let audited = audit::write(
            &mut tx,
            &actor,
            now,
            Record {
                action: "dial.refused",
                entity_kind: "dial",
                entity_id: origin.path.as_str(),
                subject_customer_id: None,
                before: None,
                after: Some(details),
            },
        )
        .await?;
        let event = audit::audit_event(&actor, "dial.refused", "dial", origin.path.as_str());
        self.commit_audited(tx, audited, [event]).await?;
        Ok(())
    }

    /// Records that a running outbound call was ended by the policy (`rule`, e.g.
    /// `daily_spend`): audited as `dial.cut` (entity `dial`, the call's id) with the
    /// refusal's details, and published to the tenant's admins as `dial.cut` (the alert,
    /// on the same path as the refusal-burst alert).
    pub async fn record_dial_cut(
        &self,
        tenant_id: &str,
        call_id: &str,
        number: &str,
        refusal: &Refusal,
    ) -> Result<()> {
        let data = serde_json::json!({
            "call_id": call_id,
            "number": number,
            "rule": refusal.rule(),
            "refusal": refusal,
            "message": refusal.to_string(),
        });
        let now = self.now();
        let actor = Actor::system(tenant_id);
        let mut tx = self.write_tx().await?;
        let audited = audit::write(
            &mut tx,
            &actor,
            now,
            Record {
                action: "dial.cut",
                entity_kind: "dial",
                entity_id: call_id,
                subject_customer_id: None,
                before: None,
                after: Some(data.clone()),
            },
        )
        .await?;
        let mut e = DomainEvent::new(tenant_id, "dial.cut", &data);
        e.min_role = Role::Admin;
        self.commit_audited(tx, audited, [e]).await?;
        Ok(())
    }

    /// Alerts the tenant's admins that `count` dials were refused within `window_secs`
    /// (`dial.refusal_burst` on the events WebSocket, admins only), and audits it.
    pub async fn alert_dial_refusals(
        &self,
        tenant_id: &str,
        count: u32,
        window_secs: u32,
        last: &Refusal,
    ) -> Result<()> {
        let data = serde_json::json!({
            "refusals": count,
            "window_secs": window_secs,
            "last_rule": last.rule(),
        });
        let now = self.now();
        let mut tx = self.write_tx().await?;
        let audited = audit::write(
            &mut tx,
            &Actor::system(tenant_id),
            now,
            Record {
                action: "dial.refusal_burst",
                entity_kind: "dial",
                entity_id: "burst",
                subject_customer_id: None,
                before: None,
                after: Some(data.clone()),
            },
        )
        .await?;
        let mut e = DomainEvent::new(tenant_id, "dial.refusal_burst", &data);
        e.min_role = Role::Admin;
        self.commit_audited(tx, audited, [e]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(user: &str) -> DialOrigin {
        DialOrigin {
            tenant_id: "t".into(),
            user_id: Some(user.into()),
            role: Some(Role::Agent),
            path: DialPath::ClickToCall,
        }
    }

    fn check(p: &DialPolicy, n: &str) -> Result<String, &'static str> {
        p.check_number(n, &agent("u"))
            .map(|(e, _)| e)
            .map_err(|r| r.rule())
    }

    /// Destinations as data: number → the E.164 dialled, or the rule that refuses it,
    /// under the default (US) policy.
    #[test]
    fn default_policy_destinations() {
        let p = DialPolicy::default();
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("+1 201-555-0123", Ok("+12015550123")),
            ("(201) 555-0123", Ok("+12015550123")),
            ("+15550100", Ok("+15550100")), // fictional, unrecognised, home code
            ("+1 800 253 0000", Ok("+18002530000")), // toll free
            ("+1 900 555 0100", Err("blocked_type")), // US premium rate
            ("+1 876 555 0100", Err("international")), // Jamaica shares +1
            ("+44 20 7946 0000", Err("international")),
            ("+881 6 1234 5678", Err("blocked_prefix")), // GMSS satellite
            ("+882 1234 5678", Err("blocked_prefix")),
            ("+979 1234 5678", Err("blocked_prefix")),
            ("+44 909 876 5432", Err("blocked_type")), // UK premium rate
            ("+44 70 1234 5678", Err("blocked_type")), // UK personal number
            ("", Err("invalid_number")),
            ("sip:1000@evil", Err("invalid_number")),
            ("12", Err("invalid_number")),
            ("+1 201 555 0123 ext 5", Err("invalid_number")),
        ];
        for (n, want) in cases {
            let got = check(&p, n);
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{n}");
        }
    }

    #[test]
    fn national_formats_read_with_the_tenant_country() {
        let p = DialPolicy {
            country: "GB".into(),
            ..DialPolicy::default()
        };
        assert_eq!(check(&p, "020 7946 0000"), Ok("+442079460000".into()));
        assert_eq!(check(&p, "09098765432"), Err("blocked_type"));
        assert_eq!(check(&p, "+1 201 555 0123"), Err("international"));
        assert_eq!(p.normalize("07700 900123"), Ok("+447700900123".into()));
    }

    #[test]
    fn allowances_and_overrides() {
        let mut p = DialPolicy {
            allow_prefixes: vec!["+44".into()],
            ..DialPolicy::default()
        };
        assert_eq!(check(&p, "+44 20 7946 0000"), Ok("+442079460000".into()));
        // Blocked types win over an allowed prefix.
        assert_eq!(check(&p, "+44 909 876 5432"), Err("blocked_type"));
        p.overrides.push(DialOverride {
            user_id: Some("boss".into()),
            international: Some(true),
            ..DialOverride::default()
        });
        assert!(p.check_number("+33 1 23 45 67 89", &agent("boss")).is_ok());
        assert_eq!(check(&p, "+33 1 23 45 67 89"), Err("international"));
        // Blocked prefixes win over international.
        assert_eq!(
            p.check_number("+881612345678", &agent("boss"))
                .map_err(|r| r.rule()),
            Err("blocked_prefix")
        );
        p.refuse_unrecognised = true;
        assert_eq!(check(&p, "+15550100"), Err("unrecognised"));
    }

    #[test]
    fn caps_count_until_release() {
        let p = DialPolicy {
            max_concurrent_per_user: 1,
            max_concurrent_per_tenant: 2,
            max_calls_per_minute: 3,
            ..DialPolicy::default()
        };
        let mut c = DialCounters::default();
        let n = "+12015550123";
        let a = c.admit(&p, n, &agent("a"), 0, 0).unwrap();
        assert_eq!(
            c.admit(&p, n, &agent("a"), 1, 0),
            Err(Refusal::UserConcurrency { limit: 1 })
        );
        let b = c.admit(&p, n, &agent("b"), 2, 0).unwrap();
        assert_eq!(
            c.admit(&p, n, &agent("c"), 3, 0),
            Err(Refusal::TenantConcurrency { limit: 2 })
        );
        c.release("t", Some("a"), a.call, 3);
        assert_eq!(c.active("t", Some("a")), (1, 0));
        let a = c.admit(&p, n, &agent("a"), 4, 0).unwrap();
        c.release("t", Some("a"), a.call, 5);
        c.release("t", Some("b"), b.call, 5);
        // Three started within the minute: the fourth waits for the window to pass.
        assert_eq!(
            c.admit(&p, n, &agent("d"), 59_999, 0),
            Err(Refusal::RateLimit { limit: 3 })
        );
        assert!(c.admit(&p, n, &agent("d"), 60_000, 0).is_ok());
    }

    /// #13: the daily spend estimate — the day's finished calls (the tally the runtime
    /// keeps) plus the running calls' started minutes plus the new call's first minute
    /// — is held against the cap; rates by longest prefix; in virtual time.
    /// Running calls are cut at the daily spend cap, in virtual time: nothing before
    /// the minute that would take the estimate over, every running call of the tenant
    /// from the check before it, another tenant untouched, a lowered cap at once.
    /// (Regression: the cap only refused new dials; running ones went on spending.)
    #[test]
    fn running_calls_are_over_the_spend_cap_before_the_minute_that_passes_it() {
        let p = DialPolicy {
            max_calls_per_minute: 0,
            max_concurrent_per_user: 0,
            rates: vec![DialRate {
                prefix: "+1".into(),
                per_minute_milli: 100,
            }],
            daily_spend_cap_milli: 1_000,
            ..DialPolicy::default()
        };
        let other = DialOrigin {
            tenant_id: "u".into(),
            ..agent("x")
        };
        let mut c = DialCounters::default();
        // 600 spent today; two calls dialled at 0 and 30 s: 800 with their first minutes.
        let a = c.admit(&p, "+12015550123", &agent("a"), 0, 600).unwrap();
        c.admit(&p, "+12015550124", &agent("b"), 30_000, 600)
            .unwrap();
        c.admit(&p, "+12015550125", &other, 0, 0).unwrap();
        let over = |c: &DialCounters, t: &str, now: i64| c.over_spend_cap(&p, t, 600, now);
        // Each check looks SPEND_CHECK_MS ahead; the first call's second minute (900)
        // and the second call's (1000) fit under the cap.
        for now in (0..=54_000).step_by(1_000) {
            assert_eq!(over(&c, "t", now), None, "{now}");
        }
        // From 90 s minus the look-ahead the second call's second minute would make
        // 1000 (allowed, not over); the first call's third minute at 120 s: 1100.
        assert_eq!(over(&c, "t", 85_000), None);
        assert_eq!(over(&c, "t", 115_000), None);
        assert_eq!(
            over(&c, "t", 115_001),
            Some(Refusal::DailySpend {
                cap_milli: 1_000,
                estimate_milli: 1_100,
                currency: "USD".into()
            })
        );
        // The other tenant has no tally and one call: far from the cap.
        assert_eq!(c.over_spend_cap(&p, "u", 0, 115_000), None);
        // The first call cut: its two minutes go to the tally; the second call alone
        // (800 + 200 at 150 s) fits until its third minute.
        assert_eq!(c.release("t", Some("a"), a.call, 115_000), 200);
        assert_eq!(c.over_spend_cap(&p, "t", 800, 115_000), None);
        assert_eq!(c.over_spend_cap(&p, "t", 800, 145_000), None);
        assert!(c.over_spend_cap(&p, "t", 800, 145_001).is_some());
        // A cap lowered below what is spent: over at once.
        let lowered = DialPolicy {
            daily_spend_cap_milli: 500,
            ..p.clone()
        };
        assert_eq!(
            c.over_spend_cap(&lowered, "t", 600, 31_000)
                .map(|r| r.rule()),
            Some("daily_spend")
        );
        // No cap: never.
        let free = DialPolicy {
            daily_spend_cap_milli: 0,
            ..p.clone()
        };
        assert_eq!(c.over_spend_cap(&free, "t", u64::MAX, 0), None);
        // The pure function alone: no running calls, the tally decides.
        assert!(spend_over_cap(&p, 1_001, [], 0).is_some());
        assert!(spend_over_cap(&p, 1_000, [], 0).is_none());
    }

    #[test]
    fn the_daily_spend_cap_counts_finished_and_running_calls() {
        let p = DialPolicy {
            international: true,
            max_calls_per_minute: 0,
            max_concurrent_per_user: 0,
            rates: vec![
                DialRate {
                    prefix: "+".into(),
                    per_minute_milli: 10,
                },
                DialRate {
                    prefix: "+44".into(),
                    per_minute_milli: 50,
                },
                DialRate {
                    prefix: "+447".into(),
                    per_minute_milli: 200,
                },
            ],
            currency: "EUR".into(),
            daily_spend_cap_milli: 1_000,
            ..DialPolicy::default()
        };
        assert_eq!(p.rate_for("+447700900123"), 200);
        assert_eq!(p.rate_for("+442079460000"), 50);
        assert_eq!(p.rate_for("+12015550123"), 10);
        assert_eq!(
            call_cost_milli(50, 0),
            50,
            "a dialled call costs its first minute"
        );
        assert_eq!(call_cost_milli(50, 60_000), 50);
        assert_eq!(call_cost_milli(50, 60_001), 100);
        let mut c = DialCounters::default();
        let uk_mobile = "+447700900123";
        // 700 spent today already: a mobile call (200/min) fits, 900 with its first minute.
        let call = c.admit(&p, uk_mobile, &agent("a"), 0, 700).unwrap();
        assert_eq!(call.per_minute_milli, 200);
        // While it runs, its first minute counts: 900 + a landline's 50 > 1000? No: 950.
        let land = c
            .admit(&p, "+44 20 7946 0000", &agent("b"), 1_000, 700)
            .unwrap();
        c.release("t", Some("b"), land.call, 30_000);
        // Two minutes into the mobile call: 700 + 400 = 1100 > cap, even a cheap call.
        assert_eq!(
            c.admit(&p, "+1 201 555 0123", &agent("c"), 90_000, 700),
            Err(Refusal::DailySpend {
                cap_milli: 1_000,
                estimate_milli: 1_100,
                currency: "EUR".into()
            })
        );
        // The call ends after 2.5 minutes: three started minutes go to the tally.
        assert_eq!(c.release("t", Some("a"), call.call, 150_000), 600);
        // With the tally the runtime now holds (700 + 50 + 600) the cap is still passed.
        assert_eq!(
            c.admit(&p, "+1 201 555 0123", &agent("c"), 160_000, 1_350)
                .map_err(|r| r.rule()),
            Err("daily_spend")
        );
        // A new day's tally starts at zero.
        assert!(
            c.admit(&p, "+1 201 555 0123", &agent("c"), DAY_MS, 0)
                .is_ok()
        );
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
        // No cap: nothing refused on spend.
        let free = DialPolicy {
            daily_spend_cap_milli: 0,
            ..p.clone()
        };
        assert!(c.admit(&free, uk_mobile, &agent("d"), 0, u64::MAX).is_ok());
        // Validation of rates and the currency.
        let bad = DialPolicy {
            rates: vec![DialRate {
                prefix: "44".into(),
                per_minute_milli: 1,
            }],
            ..p.clone()
        };
        assert!(bad.validate().is_err());
        let bad = DialPolicy {
            currency: "euro".into(),
            ..p
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn a_burst_of_refusals_alerts_once_per_window() {
        let p = DialPolicy {
            alert_refusals: 3,
            alert_window_secs: 10,
            ..DialPolicy::default()
        };
        let mut c = DialCounters::default();
        assert_eq!(c.refused(&p, "t", 0), None);
        assert_eq!(c.refused(&p, "t", 1_000), None);
        assert_eq!(c.refused(&p, "t", 2_000), Some(3));
        assert_eq!(c.refused(&p, "t", 3_000), None);
        // Spread out: never three within ten seconds.
        let mut c = DialCounters::default();
        for i in 0..10 {
            assert_eq!(c.refused(&p, "t", i * 6_000), None);
        }
    }

    #[test]
    fn the_reason_header_names_the_rule() {
        let r = Refusal::BlockedPrefix {
            prefix: "+881".into(),
        };
        assert_eq!(
            r.sip_reason(),
            "Q.850;cause=21;text=\"dial policy: blocked_prefix: the prefix +881 is blocked\""
        );
        assert_eq!(Refusal::RateLimit { limit: 1 }.q850_cause(), 34);
    }

    #[test]
    fn validation() {
        assert!(DialPolicy::default().validate().is_ok());
        let bad = DialPolicy {
            country: "ZZZ".into(),
            ..DialPolicy::default()
        };
        assert!(bad.validate().is_err());
        let bad = DialPolicy {
            block_prefixes: vec!["44".into()],
            ..DialPolicy::default()
        };
        assert!(bad.validate().is_err());
        let bad = DialPolicy {
            overrides: vec![DialOverride::default()],
            ..DialPolicy::default()
        };
        assert!(bad.validate().is_err());
    }
}
