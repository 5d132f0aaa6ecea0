//! What triage reads from the text without a model: language (whatlang), sentiment
//! (VADER's lexicon), entities (rules), and the keyword rules behind priority, noise and
//! the rules-only intent.

use std::sync::LazyLock;

use parley_cases::triage::{Entity, Sentiment};
use regex::Regex;

/// Text longer than this (in characters) is cut before analysis: a 1 MB message is
/// triaged on its first 8,000 characters.
pub const MAX_ANALYSED_CHARS: usize = 8_000;

/// Entities returned per message at most.
pub const MAX_ENTITIES: usize = 32;

/// The language of `text` as an ISO 639-1 code where there is one (`en`, `de`, …; else
/// ISO 639-3), or `und` when it cannot be told (too short, no letters).
pub fn language(text: &str) -> String {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters < 3 {
        return "und".into();
    }
    let Some(info) = whatlang::detect(text) else {
        return "und".into();
    };
    // Short texts are mostly English here, and whatlang guesses wildly on them: trust
    // a non-English guess only when it is confident — and not at all for a text whose
    // function words are English (whatlang took "Our hospital's phone lines are all
    // down, patients cannot reach us." for French, from its Latin-rooted nouns).
    let code = info.lang().code();
    if code != "eng"
        && (english_words(text) >= 3
            || ((letters < 20 || info.confidence() < 0.5) && english_words(text) >= 1))
    {
        return "en".into();
    }
    iso639_1(code).map_or_else(|| code.to_owned(), str::to_owned)
}

/// How many distinct English function words the text has.
fn english_words(text: &str) -> usize {
    const COMMON: &[&str] = &[
        "the", "my", "i", "is", "to", "you", "it", "ok", "thanks", "thank", "please", "and", "not",
        "no", "a", "yes", "hi", "hello", "great", "cheers", "bye", "of", "for", "in", "our", "are",
        "all", "us", "we", "cannot", "can", "have", "has", "was", "be", "this", "that", "with",
        "on", "at", "your", "me", "what", "how", "why", "when", "there",
    ];
    let mut seen: Vec<String> = Vec::new();
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = w.to_lowercase();
        if COMMON.contains(&w.as_str()) && !seen.contains(&w) {
            seen.push(w);
        }
    }
    seen.len()
}

fn iso639_1(code: &str) -> Option<&'static str> {
    Some(match code {
        "eng" => "en",
        "deu" => "de",
        "fra" => "fr",
        "spa" => "es",
        "ita" => "it",
        "por" => "pt",
        "nld" => "nl",
        "pol" => "pl",
        "rus" => "ru",
        "ukr" => "uk",
        "tur" => "tr",
        "ara" => "ar",
        "heb" => "he",
        "hin" => "hi",
        "cmn" => "zh",
        "jpn" => "ja",
        "kor" => "ko",
        "swe" => "sv",
        "dan" => "da",
        "nob" => "nb",
        "fin" => "fi",
        "ces" => "cs",
        "ell" => "el",
        "ron" => "ro",
        "hun" => "hu",
        "vie" => "vi",
        "ind" => "id",
        "tha" => "th",
        _ => return None,
    })
}

/// Sentiment from VADER's compound score: ≤ −0.05 negative, ≥ 0.05 positive.
pub fn sentiment(text: &str) -> (Sentiment, f32) {
    static VADER: LazyLock<vader_sentiment::SentimentIntensityAnalyzer<'static>> =
        LazyLock::new(vader_sentiment::SentimentIntensityAnalyzer::new);
    // VADER is quadratic-ish in the number of words of a sentence; 2,000 characters say
    // enough about the mood.
    let clipped = crate::embed::clip_chars(text, 2_000);
    let score = VADER
        .polarity_scores(&clipped)
        .get("compound")
        .copied()
        .unwrap_or(0.0) as f32;
    let label = if score <= -0.05 {
        Sentiment::Negative
    } else if score >= 0.05 {
        Sentiment::Positive
    } else {
        Sentiment::Neutral
    };
    (label, score)
}

struct EntityRule {
    kind: &'static str,
    re: Regex,
    /// The capture group holding the value (0: the whole match).
    group: usize,
}

#[allow(clippy::unwrap_used)] // fixed patterns, checked by the tests
static ENTITY_RULES: LazyLock<Vec<EntityRule>> = LazyLock::new(|| {
    let r = |kind, pattern: &str, group| EntityRule {
        kind,
        re: Regex::new(pattern).unwrap(),
        group,
    };
    vec![
        r("email", r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b", 0),
        r(
            "invoice_number",
            r"(?i)\b(?:invoice|inv|bill)(?:\s*(?:no\.?|number|nr\.?|#))?\s*[:#]?\s*((?:INV-?)?[A-Z]{0,4}-?\d[A-Z0-9-]{3,})\b",
            1,
        ),
        r("invoice_number", r"\b(INV-?\d{3,}[A-Z0-9-]*)\b", 1),
        r(
            "order_number",
            r"(?i)\border(?:\s*(?:no\.?|number|nr\.?|id|#))?\s*[:#]?\s*((?:ORD-?)?[A-Z]{0,4}-?\d[A-Z0-9-]{3,})\b",
            1,
        ),
        r("order_number", r"\b(ORD-?\d{3,}[A-Z0-9-]*)\b", 1),
        r(
            "account_number",
            r"(?i)\b(?:account|acct|customer|contract)(?:\s*(?:no\.?|number|nr\.?|id|#))\s*[:#]?\s*([A-Z]{0,4}-?\d[A-Z0-9-]{3,})\b",
            1,
        ),
        r("account_number", r"\b(ACC-?\d{3,}[A-Z0-9-]*)\b", 1),
        r(
            "amount",
            r"(?i)(?:[€$£]\s?\d{1,3}(?:[.,\s]?\d{3})*(?:[.,]\d{1,2})?|\b\d{1,3}(?:[.,]?\d{3})*(?:[.,]\d{1,2})?\s?(?:€|\$|£|eur\b|euros?\b|usd\b|dollars?\b|gbp\b|pounds?\b|chf\b))",
            0,
        ),
        r(
            "address",
            r"\b\d{1,5}[a-zA-Z]?\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St\.?|Road|Rd\.?|Avenue|Ave\.?|Lane|Ln\.?|Way|Drive|Dr\.?|Close|Court|Place|Square|Boulevard|Blvd\.?|Hill|Gardens|Terrace|Crescent|Park)\b",
            0,
        ),
        r(
            "product",
            r"(?i)\b(?:fib(?:re|er)(?:\s+broadband)?|broadband|set-top box|tv box|decoder|router|modem|wifi extender|mesh wifi|sim(?:\s+card)?|esim|landline|voicemail|iphone(?:\s+\d+)?|samsung galaxy(?:\s+\w+)?|tv package|sports channels|static ip|leased line|5g home internet|mobile plan|unlimited data)\b",
            0,
        ),
        r("phone", r"(?:\+|\b00)?\d[\d ()./-]{6,}\d\b", 0),
    ]
});

/// Entities found in `text`: emails, invoice/order/account numbers, amounts, street
/// addresses, product names, phone numbers (at most [`MAX_ENTITIES`], each value once;
/// a span already taken by an earlier rule is not read again).
pub fn entities(text: &str) -> Vec<Entity> {
    let text = crate::embed::clip_chars(text, MAX_ANALYSED_CHARS);
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut out: Vec<Entity> = Vec::new();
    for rule in ENTITY_RULES.iter() {
        for caps in rule.re.captures_iter(&text) {
            let (Some(whole), Some(m)) = (caps.get(0), caps.get(rule.group)) else {
                continue;
            };
            if taken
                .iter()
                .any(|&(s, e)| whole.start() < e && s < whole.end())
            {
                continue;
            }
            let mut value = m.as_str().trim().to_owned();
            if rule.kind == "phone" {
                let digits = value.chars().filter(char::is_ascii_digit).count();
                // Dates, times, amounts and counts are not phone numbers.
                if !(7..=15).contains(&digits)
                    || value.contains(['.', '/']) && !value.starts_with('+')
                {
                    continue;
                }
            }
            if rule.kind == "product" {
                value = value.to_lowercase();
            }
            taken.push((whole.start(), whole.end()));
            if !out.iter().any(|e| e.kind == rule.kind && e.value == value) {
                out.push(Entity {
                    kind: rule.kind.to_owned(),
                    value,
                });
                if out.len() >= MAX_ENTITIES {
                    return out;
                }
            }
        }
    }
    out
}

/// The lower-cased words of `text`, joined by single spaces and padded with one space
/// at each end, so that phrases match on word boundaries with `contains(" x y ")`.
pub(crate) fn normalise(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push(' ');
    for w in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
    {
        s.push_str(&w.to_lowercase().replace('\'', ""));
        s.push(' ');
    }
    s
}

/// Whether the normalised text contains any of `phrases` (each on word boundaries; a
/// trailing `*` matches any word ending).
pub(crate) fn has_any(norm: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| {
        if let Some(stem) = p.strip_suffix('*') {
            norm.contains(&format!(" {stem}"))
        } else {
            norm.contains(&format!(" {p} "))
        }
    })
}

/// Critical: many people or a business/critical service fully down; fraud or
/// account compromise causing ongoing loss.
const P0_SCOPE: &[&str] = &[
    "whole town",
    "whole area",
    "whole street",
    "whole building",
    "whole company",
    "whole office",
    "entire",
    "everyone in",
    "everybody in",
    "all our",
    "all the shops",
    "all sites",
    "all three sites",
    "all branches",
    "every branch",
    "every office",
    "every store",
    "all stores",
    "all 40",
    "hundreds of",
    "thousands of",
    "nobody in our",
    "nobody here",
    "no one in",
    "call center of",
    "call centre of",
    "agents have no",
    "across every",
    "at all",
    "all of our",
    "our building",
];
const P0_CRITICAL: &[&str] = &[
    "hospital",
    "clinic",
    "pharmacy",
    "emergency department",
    "ambulance",
    "patients",
    "care home",
    "payment terminals",
    "card payments",
    "payment processing",
    "tills",
    "booking system",
    "ordering system",
    "nobody can reach us",
    "customers cant reach us",
    "cant reach us",
    "cannot reach us",
];
const DOWN: &[&str] = &[
    "down",
    "offline",
    "no service",
    "no phone service",
    "no internet",
    "no connection",
    "lost connection",
    "lost all",
    "not working",
    "stopped working",
    "dead",
    "no phone",
    "cant take",
    "cannot take",
    "has no",
    "have no",
    "is out",
    "are out",
    "outage",
    "cant reach",
    "cannot reach",
    "unreachable",
];
const FRAUD: &[&str] = &[
    "fraud*",
    "nobody here made",
    "nobody made",
    "we didnt make",
    "i didnt make",
    "didnt make",
    "hacked",
    "hackers",
    "attackers",
    "premium numbers",
    "premium-rate",
    "premium rate",
    "stolen",
    "scammed",
];
const ONGOING: &[&str] = &[
    "right now",
    "still going",
    "keep appearing",
    "keeps",
    "every hour",
    "by the minute",
    "overnight",
    "last night",
    "already",
    "thousands",
    "is being used",
    "being used",
    "growing",
    "porting",
    "still happening",
    "4000",
    "are inside",
];
/// High: this customer's service down with no workaround or unusable because of us;
/// legal or regulator threats; account taken over; angry immediate cancellation.
const P1_DOWN: &[&str] = &[
    "not working at all",
    "no internet at all",
    "no connection at all",
    "no service",
    "dead",
    "no dial tone",
    "no tone",
    "no signal",
    "total outage",
    "completely down",
    "nothing works",
    "zero internet",
    "no broadband",
    "no internet",
    "cant make calls",
    "cannot make calls",
    "cant call",
    "no phone",
    "died",
    "all lights off",
    "cut off",
    "barred",
    "suspended",
    "blocked",
    "cant work",
    "cannot work",
];
const P1_LEGAL: &[&str] = &[
    "ombudsman",
    "regulator",
    "lawyer",
    "solicitor",
    "legal action",
    "court",
    "sue",
    "trading standards",
    "consumer protection",
    "attorney",
];
const P1_TAKEOVER: &[&str] = &[
    "hacked",
    "hijacked",
    "taken over",
    "took over",
    "someone logged",
    "somebody logged",
    "logged into my account",
    "changed my password",
    "changed the password",
    "didnt do this",
    "didnt ask for",
    "changed my email",
    "changed my pin",
    "locked out",
    "someone changed",
    "somebody changed",
    "ordered a new sim",
];
const P1_ANGRY_NOW: &[&str] = &[
    "immediately",
    "right now",
    "today",
    "had enough",
    "im done",
    "i am done",
    "done with",
    "terrible",
    "out today",
];

/// The priority the wording alone demands, if any: `Some(0)` for P0, `Some(1)` for P1.
/// `intent` is the intent decided so far (rules apply per intent family).
pub fn severity(text: &str, intent: &str) -> Option<u8> {
    let norm = normalise(&crate::embed::clip_chars(text, MAX_ANALYSED_CHARS));
    if matches!(intent, "how_to" | "sales" | "feedback_thanks" | "spam") {
        return None;
    }
    let down = has_any(&norm, DOWN);
    let scope = has_any(&norm, P0_SCOPE);
    let critical = has_any(&norm, P0_CRITICAL);
    let fraud = has_any(&norm, FRAUD);
    let ongoing = has_any(&norm, ONGOING);
    let business = has_any(
        &norm,
        &[
            "our company",
            "our business",
            "our account",
            "business account",
            "company account",
            "our numbers",
            "our network",
        ],
    );
    if (down && (scope || critical)) || (critical && scope) {
        return Some(0);
    }
    if fraud && ongoing && (business || scope || has_any(&norm, &["calls", "charges", "bill"])) {
        return Some(0);
    }
    if intent == "account_change"
        && business
        && has_any(
            &norm,
            &["hacked", "hackers", "took over", "taken over", "porting"],
        )
    {
        return Some(0);
    }
    if has_any(&norm, P1_LEGAL) {
        return Some(1);
    }
    if matches!(intent, "account_change" | "billing" | "technical_support")
        && has_any(&norm, P1_TAKEOVER)
    {
        return Some(1);
    }
    if intent == "cancellation" && has_any(&norm, P1_ANGRY_NOW) {
        return Some(1);
    }
    if matches!(intent, "technical_support" | "billing") && has_any(&norm, P1_DOWN) {
        // "slow", "drops", "sometimes": degraded, not down.
        if !has_any(
            &norm,
            &[
                "slow",
                "sometimes",
                "drops",
                "dropping",
                "keeps dropping",
                "a few times",
                "upstairs",
            ],
        ) {
            return Some(1);
        }
    }
    None
}

/// Keyword cues per default intent, for the rules-only triage (no embedding model).
const INTENT_CUES: &[(&str, &[&str])] = &[
    (
        "spam",
        &[
            "click here",
            "win",
            "won",
            "winner",
            "prize",
            "free iphone",
            "crypto",
            "bitcoin",
            "guaranteed",
            "invest",
            "get rich",
            "viagra",
            "pills",
            "unsubscribe",
            "seo",
            "backlinks",
            "followers",
            "singles",
            "gift card",
            "lottery",
            "prince",
            "claim",
            "customs",
            "pay the fee",
            "verify your password",
            "cheap",
            "loan",
            "reply yes",
            "limited offer",
            "casino",
            "leads",
        ],
    ),
    (
        "feedback_thanks",
        &[
            "thank*",
            "thanks",
            "thx",
            "cheers",
            "great",
            "perfect",
            "sorted",
            "all good",
            "works now",
            "working now",
            "appreciate*",
            "brilliant",
            "lovely",
            "ok",
            "okay",
            "solved",
            "resolved",
            "awesome",
        ],
    ),
    (
        "cancellation",
        &[
            "cancel*",
            "terminate",
            "termination",
            "end my contract",
            "close my account",
            "leave",
            "leaving",
            "notice period",
            "switch provider",
            "port my number",
            "end my",
            "stop my service",
        ],
    ),
    (
        "complaint",
        &[
            "complain*",
            "rude",
            "unacceptable",
            "disgrace",
            "ombudsman",
            "nobody called",
            "never called",
            "promised",
            "no one called",
            "waiting for hours",
            "on hold",
            "poor service",
            "terrible service",
            "late",
            "different answer",
            "manager",
            "lied",
            "disappointed",
            "regulator",
        ],
    ),
    (
        "billing",
        &[
            "bill",
            "billed",
            "invoice*",
            "charge*",
            "refund*",
            "payment*",
            "paid",
            "pay",
            "fee*",
            "owe",
            "receipt",
            "direct debit",
            "overcharged",
            "card expired",
            "credit",
            "debit",
            "price on",
            "premium numbers",
        ],
    ),
    (
        "technical_support",
        &[
            "not working",
            "doesnt work",
            "slow",
            "down",
            "outage",
            "no internet",
            "no service",
            "error",
            "crackles",
            "dead",
            "restarts",
            "disconnect*",
            "buffer*",
            "no signal",
            "dropping",
            "drops",
            "fails",
            "failing",
            "broken",
            "offline",
            "lights",
            "router",
            "wifi",
            "connection",
        ],
    ),
    (
        "account_change",
        &[
            "change my address",
            "moving",
            "move",
            "update my",
            "change my",
            "add my",
            "authorised",
            "authorized",
            "password",
            "locked",
            "log in",
            "login",
            "downgrade",
            "reduce",
            "cheaper plan",
            "on hold",
            "pause",
            "name on the account",
            "remove",
        ],
    ),
    (
        "sales",
        &[
            "price",
            "how much",
            "quote",
            "buy",
            "order",
            "upgrade",
            "offer*",
            "deal*",
            "available",
            "availability",
            "bundle",
            "plan",
            "fastest",
            "new line",
            "extra number",
            "discount",
        ],
    ),
    (
        "how_to",
        &[
            "how do i",
            "how can i",
            "how to",
            "where do i",
            "where can i",
            "what time",
            "open",
            "opening hours",
            "is there an app",
            "find",
            "set up",
            "setup",
            "what is my",
            "can i",
        ],
    ),
];

/// The rules-only intent: the default intent whose cues match most (ties: the order of
/// [`INTENT_CUES`]), with a confidence from the margin; `how_to` when nothing matches
/// a question, `technical_support` otherwise.
pub fn rules_intent(text: &str) -> (&'static str, f32) {
    let norm = normalise(&crate::embed::clip_chars(text, MAX_ANALYSED_CHARS));
    let mut best = ("", 0usize);
    let mut second = 0usize;
    for (intent, cues) in INTENT_CUES {
        let n = cues.iter().filter(|c| has_any(&norm, &[c])).count();
        if n > best.1 {
            second = best.1;
            best = (intent, n);
        } else if n > second {
            second = n;
        }
    }
    if best.1 == 0 {
        if norm.trim().is_empty() {
            return ("feedback_thanks", 0.2);
        }
        return if text.contains('?') {
            ("how_to", 0.2)
        } else {
            ("technical_support", 0.15)
        };
    }
    let conf = 0.4 + 0.1 * (best.1 - second).min(4) as f32;
    (best.0, conf)
}

/// Whether a message the classifier calls thanks really only thanks or closes: a
/// question, a problem word or a long text means the customer still needs someone.
pub fn still_needs_someone(text: &str) -> bool {
    let norm = normalise(&crate::embed::clip_chars(text, MAX_ANALYSED_CHARS));
    let words = norm.split_whitespace().count();
    text.contains('?')
        || words > 25
        || has_any(
            &norm,
            &[
                "but", "still", "not", "doesnt", "didnt", "isnt", "wont", "cant", "again",
                "however", "problem", "issue", "broken", "help me", "need",
            ],
        )
}
