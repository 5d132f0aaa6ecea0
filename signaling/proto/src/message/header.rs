//! Header storage and the typed views of the headers the core needs.

use std::fmt;

/// A SIP request method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO
    Info,
    /// MESSAGE
    Message,
    /// NOTIFY
    Notify,
    /// SUBSCRIBE
    Subscribe,
    /// REFER
    Refer,
    /// PRACK
    Prack,
    /// UPDATE
    Update,
    /// PUBLISH
    Publish,
    /// Any other method token.
    Extension(String),
}

impl Method {
    /// Parses a method token (case-sensitive). Returns `None` when `s` is not a token.
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.bytes().all(is_token_char) {
            return None;
        }
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "MESSAGE" => Method::Message,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "REFER" => Method::Refer,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_owned()),
        })
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Message => "MESSAGE",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Refer => "REFER",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Compact header forms (RFC 3261 §7.3.3 and later RFCs) to full names.
const COMPACT: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
    ("u", "Allow-Events"),
    ("x", "Session-Expires"),
];

/// Canonical spellings of the headers we care about.
const CANONICAL: &[&str] = &[
    "Call-ID",
    "Contact",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "From",
    "To",
    "Via",
    "Max-Forwards",
    "Route",
    "Record-Route",
    "Expires",
    "Authorization",
    "Proxy-Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
];

/// Expands a compact header name (without allocating).
fn expand(name: &str) -> &str {
    if name.len() == 1 {
        for (short, long) in COMPACT {
            if name.eq_ignore_ascii_case(short) {
                return long;
            }
        }
    }
    name
}

/// Expands a compact header name and canonicalises well-known names; other names
/// are kept as written.
pub(crate) fn canonical_name(name: &str) -> String {
    let name = expand(name);
    for c in CANONICAL {
        if name.eq_ignore_ascii_case(c) {
            return (*c).to_owned();
        }
    }
    name.to_owned()
}

fn names_equal(a: &str, b: &str) -> bool {
    expand(a).eq_ignore_ascii_case(expand(b))
}

/// One header field as it appears in the message (unfolded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name, expanded from compact form and canonicalised for well-known headers.
    pub name: String,
    /// Value with surrounding whitespace removed and folded lines joined.
    pub value: String,
}

/// Ordered list of header fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// Empty list.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(Header {
            name: canonical_name(name),
            value: value.into(),
        });
    }

    /// Inserts a header before all others of the same name (or at the end if none).
    pub fn push_front_of(&mut self, name: &str, value: impl Into<String>) {
        let h = Header {
            name: canonical_name(name),
            value: value.into(),
        };
        match self.0.iter().position(|x| names_equal(&x.name, name)) {
            Some(i) => self.0.insert(i, h),
            None => self.0.push(h),
        }
    }

    /// Replaces all headers of this name by one (appended where the first was).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let pos = self.0.iter().position(|x| names_equal(&x.name, name));
        self.remove(name);
        let h = Header {
            name: canonical_name(name),
            value: value.into(),
        };
        match pos {
            Some(i) if i <= self.0.len() => self.0.insert(i, h),
            _ => self.0.push(h),
        }
    }

    /// Replaces the value of the first header of this name (appends if none).
    pub fn replace_first(&mut self, name: &str, value: impl Into<String>) {
        match self.0.iter_mut().find(|h| names_equal(&h.name, name)) {
            Some(h) => h.value = value.into(),
            None => self.push(name, value),
        }
    }

    /// Removes all headers of this name.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !names_equal(&h.name, name));
    }

    /// The first value of this header (name case-insensitive, compact forms accepted).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| names_equal(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// All header field values of this name, in order (comma lists not split).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| names_equal(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// All values of a comma-separated list header, split into elements, in order.
    pub fn get_list(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .flat_map(split_comma_list)
            .collect::<Vec<_>>()
    }

    /// Number of header fields with this name.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// Iterates over all header fields.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of header fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no header fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub fn split_comma_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut in_angle = false;
    let mut escaped = false;
    for ch in value.chars() {
        if escaped {
            escaped = false;
            cur.push(ch);
            continue;
        }
        match ch {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_quote && !in_angle => {
                let t = cur.trim();
                if !t.is_empty() {
                    out.push(t.to_owned());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    let t = cur.trim();
    if !t.is_empty() {
        out.push(t.to_owned());
    }
    out
}

/// Header or URI parameters `;name[=value]`, in order. Names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (leading `;` optional). Returns an error reason on malformed input.
    pub(crate) fn parse(s: &str) -> Result<Params, &'static str> {
        let mut out = Vec::new();
        let s = s.trim();
        if s.is_empty() {
            return Ok(Params(out));
        }
        let s = s.strip_prefix(';').unwrap_or(s);
        for part in split_outside_quotes(s, ';') {
            let part = part.trim();
            if part.is_empty() {
                return Err("empty parameter");
            }
            match part.split_once('=') {
                Some((n, v)) => {
                    let n = n.trim();
                    let v = v.trim();
                    if n.is_empty() || !n.bytes().all(is_token_char) {
                        return Err("bad parameter name");
                    }
                    if v.starts_with('"') && (v.len() < 2 || !v.ends_with('"')) {
                        return Err("unbalanced quotes in parameter");
                    }
                    out.push((n.to_owned(), Some(v.to_owned())));
                }
                None => {
                    if !part.bytes().all(is_token_char) {
                        return Err("bad parameter name");
                    }
                    out.push((part.to_owned(), None));
                }
            }
        }
        Ok(Params(out))
    }

    /// `Some(value)` if the parameter is present (`Some(None)` when it has no value).
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The parameter's value if present with a value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    /// Sets (replaces) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        if let Some(e) = self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            e.1 = value.map(str::to_owned);
        } else {
            self.0.push((name.to_owned(), value.map(str::to_owned)));
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut escaped = false;
    for (i, ch) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            c if c == sep && !in_quote => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The `sent-by` of a Via: host and optional port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentBy {
    /// Host name or IP address (IPv6 in brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
}

impl fmt::Display for SentBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{}", self.host, p),
            None => f.write_str(&self.host),
        }
    }
}

fn parse_host_port(s: &str) -> Result<SentBy, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Err("missing host");
    }
    let (host, rest) = if s.starts_with('[') {
        let end = s.find(']').ok_or("unterminated IPv6 reference")?;
        let host = &s[..=end];
        if !host[1..end]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("bad IPv6 reference");
        }
        (host, &s[end + 1..])
    } else {
        match s.find(':') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return Err("bad host");
    }
    let rest = rest.trim();
    let port = if rest.is_empty() {
        None
    } else {
        let p = rest.strip_prefix(':').ok_or("junk after host")?.trim();
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err("bad port");
        }
        Some(p.parse::<u16>().map_err(|_| "port out of range")?)
    };
    Ok(SentBy {
        host: host.to_owned(),
        port,
    })
}

/// A parsed Via header value (one element of the list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, ...).
    pub transport: String,
    /// The sent-by host and port.
    pub sent_by: SentBy,
    /// Via parameters (branch, received, rport, ...).
    pub params: Params,
}

impl Via {
    /// A Via for a request we send: `SIP/2.0/{transport} host[:port];branch=...`.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(branch));
        Via {
            transport: transport.to_ascii_uppercase(),
            sent_by: SentBy {
                host: host.to_owned(),
                port,
            },
            params,
        }
    }

    /// Parses one Via element such as `SIP/2.0/UDP host:5060;branch=z9hG4bK1`.
    pub fn parse(s: &str) -> Result<Via, &'static str> {
        let s = s.trim();
        let (proto, rest) = s.split_once('/').ok_or("missing sent-protocol")?;
        if !proto.trim().eq_ignore_ascii_case("SIP") {
            return Err("protocol is not SIP");
        }
        let (ver, rest) = rest.split_once('/').ok_or("missing transport")?;
        if ver.trim() != "2.0" {
            return Err("version is not 2.0");
        }
        let rest = rest.trim_start();
        let tend = rest
            .find(|c: char| c.is_ascii_whitespace())
            .ok_or("missing sent-by")?;
        let transport = &rest[..tend];
        if transport.is_empty() || !transport.bytes().all(is_token_char) {
            return Err("bad transport");
        }
        let rest = rest[tend..].trim_start();
        let (hp, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        // A trailing comment "(...)" is allowed by the grammar; drop it.
        let hp = match hp.find('(') {
            Some(i) => &hp[..i],
            None => hp,
        };
        let sent_by = parse_host_port(hp)?;
        let params = Params::parse(params)?;
        if let Some(b) = params.get("branch") {
            match b {
                Some(v) if !v.is_empty() && v.bytes().all(is_token_char) => {}
                _ => return Err("bad branch parameter"),
            }
        }
        if let Some(Some(p)) = params.get("rport")
            && p.parse::<u16>().is_err()
        {
            return Err("bad rport parameter");
        }
        if let Some(Some(ttl)) = params.get("ttl")
            && ttl.parse::<u8>().is_err()
        {
            return Err("bad ttl parameter");
        }
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            sent_by,
            params,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// The received parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// The rport parameter (RFC 3581): `None` if absent, `Some(None)` if present
    /// without a value (a request for symmetric response routing).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SIP/2.0/{} {}{}",
            self.transport, self.sent_by, self.params
        )
    }
}

/// A name-addr or addr-spec with header parameters (From, To, Contact, Route...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes, if any.
    pub display_name: Option<String>,
    /// The URI, as written.
    pub uri: String,
    /// Header parameters after the address (tag, expires, q, lr...).
    pub params: Params,
}

impl NameAddr {
    /// Parses `"Name" <sip:x@y>;tag=1` or `sip:x@y;tag=1`.
    pub fn parse(s: &str) -> Result<NameAddr, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty address");
        }
        // Find '<' outside quotes.
        let mut in_quote = false;
        let mut escaped = false;
        let mut lt = None;
        for (i, ch) in s.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match ch {
                '\\' if in_quote => escaped = true,
                '"' => in_quote = !in_quote,
                '<' if !in_quote => {
                    lt = Some(i);
                    break;
                }
                _ => {}
            }
        }
        if in_quote {
            return Err("unbalanced quotes");
        }
        if let Some(lt) = lt {
            let gt = s[lt..].find('>').ok_or("missing '>'")? + lt;
            let dn = s[..lt].trim();
            let display_name = if dn.is_empty() {
                None
            } else if let Some(inner) = dn.strip_prefix('"') {
                let inner = inner.strip_suffix('"').ok_or("bad quoted display name")?;
                Some(inner.to_owned())
            } else {
                // token LWS token ...
                if !dn
                    .split_ascii_whitespace()
                    .all(|t| t.bytes().all(is_token_char))
                {
                    return Err("bad display name");
                }
                Some(dn.to_owned())
            };
            let uri = &s[lt + 1..gt];
            check_uri(uri)?;
            let rest = s[gt + 1..].trim();
            if !rest.is_empty() && !rest.starts_with(';') {
                return Err("junk after '>'");
            }
            Ok(NameAddr {
                display_name,
                uri: uri.to_owned(),
                params: Params::parse(rest)?,
            })
        } else {
            let (uri, params) = match s.find(';') {
                Some(i) => (&s[..i], &s[i..]),
                None => (s, ""),
            };
            let uri = uri.trim();
            check_uri(uri)?;
            if uri.contains(['?', ',']) {
                return Err("addr-spec with '?' or ',' must be in angle brackets");
            }
            Ok(NameAddr {
                display_name: None,
                uri: uri.to_owned(),
                params: Params::parse(params)?,
            })
        }
    }

    /// The tag parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "\"{d}\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// Minimal URI syntax check: `scheme:rest`, no whitespace or angle brackets.
pub(crate) fn check_uri(uri: &str) -> Result<(), &'static str> {
    let (scheme, rest) = uri.split_once(':').ok_or("URI has no scheme")?;
    let mut sb = scheme.bytes();
    match sb.next() {
        Some(b) if b.is_ascii_alphabetic() => {}
        _ => return Err("bad URI scheme"),
    }
    if !sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
        return Err("bad URI scheme");
    }
    if rest.is_empty() {
        return Err("empty URI");
    }
    if uri
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'<' || b == b'>' || b.is_ascii_control())
    {
        return Err("whitespace or angle bracket in URI");
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        // host part: after '@' if any, up to ';' '?' ; must not be empty.
        let hostpart = match rest.rfind('@') {
            Some(i) => &rest[i + 1..],
            None => rest,
        };
        let host = hostpart.split([';', '?']).next().unwrap_or("");
        parse_host_port(host).map_err(|_| "bad host in SIP URI")?;
    }
    Ok(())
}

/// A parsed CSeq value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// Sequence number (< 2^31, RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `123 INVITE`.
    pub fn parse(s: &str) -> Result<CSeq, &'static str> {
        let mut it = s.split_ascii_whitespace();
        let n = it.next().ok_or("empty")?;
        let m = it.next().ok_or("missing method")?;
        if it.next().is_some() {
            return Err("junk after method");
        }
        if !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err("sequence number is not a number");
        }
        let seq: u32 = n.parse().map_err(|_| "sequence number too large")?;
        if seq >= 1 << 31 {
            return Err("sequence number too large");
        }
        let method = Method::parse(m).ok_or("bad method")?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_parses_with_lws_and_params() {
        let v =
            Via::parse("SIP / 2.0 / UDP  192.0.2.1:5060 ;branch=z9hG4bK1;rport;received=10.0.0.1")
                .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.sent_by.host, "192.0.2.1");
        assert_eq!(v.sent_by.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("10.0.0.1"));
    }

    #[test]
    fn via_ipv6() {
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bKx").unwrap();
        assert_eq!(v.sent_by.host, "[2001:db8::9:1]");
        assert_eq!(v.sent_by.port, Some(5061));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bKx"
        );
    }

    #[test]
    fn via_rejects_bad() {
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP host:99999").is_err());
        assert!(Via::parse("SIP/3.0/UDP host").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let a = NameAddr::parse("\"Bob \\\"B\\\"\" <sip:bob@example.com>;tag=abc").unwrap();
        assert_eq!(a.uri, "sip:bob@example.com");
        assert_eq!(a.tag(), Some("abc"));
        let b = NameAddr::parse("sip:alice@example.com;tag=1").unwrap();
        assert_eq!(b.uri, "sip:alice@example.com");
        assert_eq!(b.tag(), Some("1"));
        assert!(NameAddr::parse("<sip:alice@example.com").is_err());
        assert!(NameAddr::parse("\"unbalanced <sip:a@b>").is_err());
    }

    #[test]
    fn comma_split_respects_quotes_and_brackets() {
        let v = split_comma_list("\"a, b\" <sip:x@y;a=1,2>, <sip:z@w>");
        assert_eq!(v, vec!["\"a, b\" <sip:x@y;a=1,2>", "<sip:z@w>"]);
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(CSeq::parse("1 INVITE").unwrap().seq, 1);
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }

    #[test]
    fn compact_names_expand() {
        assert_eq!(canonical_name("i"), "Call-ID");
        assert_eq!(canonical_name("call-id"), "Call-ID");
        assert_eq!(canonical_name("X-Foo"), "X-Foo");
    }
}
