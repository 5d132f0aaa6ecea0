//! SIP messages: parsing with validation, typed accessors, response building, printing.
//!
//! The message model is our own (start line, ordered header list, body) so that
//! extension methods, reason phrases and header order survive a parse/print round
//! trip. [`Request::to_rsip`] / [`Response::to_rsip`] convert to the `rsip` types
//! used elsewhere in the workspace.

mod framing;
mod header;

pub use framing::{Frame, frame};
pub use header::{CSeq, Header, Headers, Method, NameAddr, Params, SentBy, Via, split_comma_list};

use crate::error::{Error, Result};
use bytes::{BufMut, Bytes, BytesMut};
use header::{canonical_name, check_uri, is_token_char};

/// Default maximum message size (bytes), the largest UDP datagram payload.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 65_535;

/// A parsed and validated SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    uri: String,
    /// Header fields.
    pub headers: Headers,
    body: Bytes,
}

/// A parsed and validated SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    code: u16,
    reason: String,
    /// Header fields.
    pub headers: Headers,
    body: Bytes,
}

/// Either a request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl SipMessage {
    /// Parses a message with the default size limit.
    pub fn parse(bytes: &[u8]) -> Result<SipMessage> {
        parse(bytes, DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// Prints the message.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        }
    }
}

impl From<Request> for SipMessage {
    fn from(r: Request) -> Self {
        SipMessage::Request(r)
    }
}

impl From<Response> for SipMessage {
    fn from(r: Response) -> Self {
        SipMessage::Response(r)
    }
}

enum StartLine {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

fn parse_start_line(line: &str) -> Result<StartLine> {
    if line.is_empty() {
        return Err(Error::BadStartLine {
            reason: "empty start line",
        });
    }
    if line.starts_with(char::is_whitespace) {
        return Err(Error::BadStartLine {
            reason: "leading whitespace",
        });
    }
    if line.starts_with("SIP/") || line.starts_with("sip/") {
        let mut it = line.splitn(3, ' ');
        let version = it.next().unwrap_or_default();
        check_version(version)?;
        let code = it.next().ok_or(Error::BadStartLine {
            reason: "missing status code",
        })?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::BadStatusCode { code: code.into() });
        }
        let n: u16 = code
            .parse()
            .map_err(|_| Error::BadStatusCode { code: code.into() })?;
        if !(100..=699).contains(&n) {
            return Err(Error::BadStatusCode { code: code.into() });
        }
        let reason = it.next().unwrap_or_default();
        return Ok(StartLine::Response {
            code: n,
            reason: reason.to_owned(),
        });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(Error::BadStartLine {
            reason: "request line must be 'Method SP Request-URI SP SIP-Version'",
        });
    }
    let method = Method::parse(parts[0]).ok_or(Error::BadStartLine {
        reason: "method is not a token",
    })?;
    let uri = parts[1];
    if uri.starts_with('<') {
        return Err(Error::InvalidRequestUri {
            reason: "Request-URI must not be enclosed in '<>'",
        });
    }
    check_uri(uri).map_err(|reason| Error::InvalidRequestUri { reason })?;
    check_request_uri_headers(uri)?;
    check_version(parts[2])?;
    Ok(StartLine::Request {
        method,
        uri: uri.to_owned(),
    })
}

/// SIP/SIPS Request-URIs must not carry `?headers` (RFC 3261 §19.1.5).
fn check_request_uri_headers(uri: &str) -> Result<()> {
    let lower = uri.get(..5).unwrap_or(uri).to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        let hostpart = match uri.rfind('@') {
            Some(i) => &uri[i + 1..],
            None => uri,
        };
        if hostpart.contains('?') {
            return Err(Error::InvalidRequestUri {
                reason: "headers are not allowed in a SIP Request-URI",
            });
        }
    }
    Ok(())
}

fn check_version(v: &str) -> Result<()> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        Ok(())
    } else {
        Err(Error::BadVersion { version: v.into() })
    }
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one SIP message from a datagram (or a frame cut by [`frame`]).
///
/// Leading CRLFs are skipped (RFC 3261 §7.5, RFC 5626 keep-alives). Bytes beyond
/// `Content-Length` are discarded (RFC 3261 §18.3); a body shorter than declared is
/// an error.
pub fn parse(bytes: &[u8], max_size: usize) -> Result<SipMessage> {
    if bytes.len() > max_size {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: max_size,
        });
    }
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(Error::Empty)?;
    let bytes = &bytes[start..];
    let head_end = find_subslice(bytes, b"\r\n\r\n").ok_or(Error::UnterminatedHeaders)?;
    let head = &bytes[..head_end];
    let body = &bytes[head_end + 4..];

    let mut lines = head.split(|&b| b == b'\n').enumerate();
    let mut raw_lines: Vec<(usize, &str)> = Vec::new();
    for (i, raw) in lines.by_ref() {
        let line_no = i + 1;
        // Every line but the last was followed by '\n'; it must be preceded by '\r'.
        let is_last = raw.as_ptr() as usize + raw.len() == head.as_ptr() as usize + head.len();
        let l = if is_last {
            raw
        } else {
            raw.strip_suffix(b"\r").ok_or(Error::MalformedHeaderLine {
                line: line_no,
                reason: "bare LF",
            })?
        };
        if l.contains(&b'\r') {
            return Err(Error::MalformedHeaderLine {
                line: line_no,
                reason: "bare CR",
            });
        }
        let s = std::str::from_utf8(l).map_err(|_| Error::InvalidUtf8 { line: line_no })?;
        raw_lines.push((line_no, s));
    }
    let (_, first) = raw_lines.first().copied().ok_or(Error::Empty)?;
    let start_line = parse_start_line(first)?;

    // Unfold and split headers.
    let mut headers = Headers::new();
    let mut cur: Option<(String, String)> = None;
    for &(line_no, l) in &raw_lines[1..] {
        if l.starts_with([' ', '\t']) {
            match cur.as_mut() {
                Some((_, v)) => {
                    let t = l.trim();
                    if !t.is_empty() {
                        if !v.is_empty() {
                            v.push(' ');
                        }
                        v.push_str(t);
                    }
                    continue;
                }
                None => {
                    return Err(Error::MalformedHeaderLine {
                        line: line_no,
                        reason: "continuation line without a header",
                    });
                }
            }
        }
        if let Some((n, v)) = cur.take() {
            headers.push(&n, v);
        }
        let (name, value) = l.split_once(':').ok_or(Error::MalformedHeaderLine {
            line: line_no,
            reason: "no ':' in header line",
        })?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(Error::MalformedHeaderLine {
                line: line_no,
                reason: "header name is not a token",
            });
        }
        cur = Some((name.to_owned(), value.trim().to_owned()));
    }
    if let Some((n, v)) = cur.take() {
        headers.push(&n, v);
    }

    let body = check_content_length(&headers, body)?;
    match start_line {
        StartLine::Request { method, uri } => {
            let r = Request {
                method,
                uri,
                headers,
                body: Bytes::copy_from_slice(body),
            };
            r.validate()?;
            Ok(SipMessage::Request(r))
        }
        StartLine::Response { code, reason } => {
            let r = Response {
                code,
                reason,
                headers,
                body: Bytes::copy_from_slice(body),
            };
            r.validate()?;
            Ok(SipMessage::Response(r))
        }
    }
}

pub(crate) fn parse_content_length(v: &str) -> Result<usize> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidHeader {
            name: "Content-Length",
            reason: "not a non-negative integer",
        });
    }
    v.parse().map_err(|_| Error::InvalidHeader {
        name: "Content-Length",
        reason: "too large",
    })
}

fn check_content_length<'a>(headers: &Headers, body: &'a [u8]) -> Result<&'a [u8]> {
    match headers.count("Content-Length") {
        0 => Ok(body),
        1 => {
            let declared = parse_content_length(headers.get("Content-Length").unwrap_or(""))?;
            if declared > body.len() {
                return Err(Error::ContentLengthMismatch {
                    declared,
                    actual: body.len(),
                });
            }
            Ok(&body[..declared])
        }
        _ => Err(Error::DuplicateHeader {
            name: "Content-Length",
        }),
    }
}

fn single<'a>(h: &'a Headers, name: &'static str) -> Result<&'a str> {
    match h.count(name) {
        0 => Err(Error::MissingHeader { name }),
        1 => h.get(name).ok_or(Error::MissingHeader { name }),
        _ => Err(Error::DuplicateHeader { name }),
    }
}

fn validate_common(h: &Headers) -> Result<CSeq> {
    let vias = h.get_list("Via");
    if vias.is_empty() {
        return Err(Error::MissingHeader { name: "Via" });
    }
    for v in &vias {
        Via::parse(v).map_err(|reason| Error::InvalidHeader {
            name: "Via",
            reason,
        })?;
    }
    for name in ["From", "To"] {
        let v = single(h, name)?;
        let na = NameAddr::parse(v).map_err(|reason| Error::InvalidHeader { name, reason })?;
        if let Some(t) = na.params.get("tag") {
            match t {
                Some(t) if !t.is_empty() && t.bytes().all(is_token_char) => {}
                _ => {
                    return Err(Error::InvalidHeader {
                        name,
                        reason: "bad tag parameter",
                    });
                }
            }
        }
    }
    let cid = single(h, "Call-ID")?;
    if cid.is_empty() || cid.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(Error::InvalidHeader {
            name: "Call-ID",
            reason: "empty or contains whitespace",
        });
    }
    let cseq = single(h, "CSeq")?;
    let cseq = CSeq::parse(cseq).map_err(|reason| Error::InvalidHeader {
        name: "CSeq",
        reason,
    })?;
    for name in ["Contact", "Route", "Record-Route"] {
        for v in h.get_list(name) {
            if name == "Contact" && v == "*" {
                continue;
            }
            NameAddr::parse(&v).map_err(|reason| Error::InvalidHeader { name, reason })?;
        }
    }
    if let Some(e) = h.get("Expires")
        && (e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) || e.parse::<u32>().is_err())
    {
        return Err(Error::InvalidHeader {
            name: "Expires",
            reason: "not a delta-seconds value",
        });
    }
    if let Some(d) = h.get("Date")
        && !d.trim_end().ends_with(" GMT")
    {
        return Err(Error::InvalidHeader {
            name: "Date",
            reason: "time zone must be GMT",
        });
    }
    if let Some(ct) = h.get("Content-Type") {
        let mt = ct.split(';').next().unwrap_or_default().trim();
        let ok = mt.split_once('/').is_some_and(|(a, b)| {
            !a.trim().is_empty()
                && !b.trim().is_empty()
                && a.trim().bytes().all(is_token_char)
                && b.trim().bytes().all(is_token_char)
        });
        if !ok {
            return Err(Error::InvalidHeader {
                name: "Content-Type",
                reason: "not a media type",
            });
        }
    }
    Ok(cseq)
}

impl Request {
    /// Builds a request from parts and validates it like a parsed one.
    /// `Content-Length` is set from the body.
    pub fn new(method: Method, uri: &str, mut headers: Headers, body: Bytes) -> Result<Request> {
        check_uri(uri).map_err(|reason| Error::InvalidRequestUri { reason })?;
        headers.set("Content-Length", body.len().to_string());
        let r = Request {
            method,
            uri: uri.to_owned(),
            headers,
            body,
        };
        r.validate()?;
        Ok(r)
    }

    /// Builds a request without validation, for internal builders whose inputs come
    /// from already validated messages.
    pub(crate) fn from_parts_unchecked(
        method: Method,
        uri: &str,
        headers: Headers,
        body: Bytes,
    ) -> Request {
        Request {
            method,
            uri: uri.to_owned(),
            headers,
            body,
        }
    }

    /// Parses bytes that must hold a request.
    pub fn parse(bytes: &[u8]) -> Result<Request> {
        match parse(bytes, DEFAULT_MAX_MESSAGE_SIZE)? {
            SipMessage::Request(r) => Ok(r),
            SipMessage::Response(_) => Err(Error::BadStartLine {
                reason: "expected a request, found a response",
            }),
        }
    }

    fn validate(&self) -> Result<()> {
        let cseq = validate_common(&self.headers)?;
        if cseq.method != self.method {
            return Err(Error::CSeqMethodMismatch {
                method: self.method.to_string(),
                cseq: cseq.method.to_string(),
            });
        }
        let mf = single(&self.headers, "Max-Forwards")?;
        if mf.is_empty() || !mf.bytes().all(|b| b.is_ascii_digit()) || mf.parse::<u8>().is_err() {
            return Err(Error::InvalidHeader {
                name: "Max-Forwards",
                reason: "not an integer in 0..=255",
            });
        }
        Ok(())
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The Request-URI as written.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Replaces the Request-URI.
    pub fn set_uri(&mut self, uri: &str) -> Result<()> {
        check_uri(uri).map_err(|reason| Error::InvalidRequestUri { reason })?;
        self.uri = uri.to_owned();
        Ok(())
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body, setting Content-Type (if given) and Content-Length.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) {
        set_body(&mut self.headers, content_type, body.len());
        self.body = body;
    }

    /// Replaces the topmost Via element (e.g. to add `received`/`rport`, RFC 3261 §18.2.1).
    pub fn set_top_via(&mut self, via: &Via) {
        let Some(first) = self.headers.get("Via") else {
            self.headers.push_front_of("Via", via.to_string());
            return;
        };
        let mut list = split_comma_list(first);
        if list.is_empty() {
            list.push(String::new());
        }
        list[0] = via.to_string();
        self.headers.replace_first("Via", list.join(", "));
    }

    /// Max-Forwards value.
    pub fn max_forwards(&self) -> u8 {
        self.headers
            .get("Max-Forwards")
            .and_then(|v| v.parse().ok())
            .unwrap_or(70)
    }

    /// Prints the message.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(512 + self.body.len());
        b.put_slice(self.method.as_str().as_bytes());
        b.put_u8(b' ');
        b.put_slice(self.uri.as_bytes());
        b.put_slice(b" SIP/2.0\r\n");
        print_rest(&mut b, &self.headers, &self.body);
        b.freeze()
    }

    /// Builds a response per RFC 3261 §8.2.6: copies Via (all, in order), From,
    /// To, Call-ID and CSeq; adds `to_tag` to To when To has no tag and the code is
    /// not 100. `reason` defaults to the standard phrase.
    pub fn make_response(&self, code: u16, reason: Option<&str>, to_tag: Option<&str>) -> Response {
        let mut h = Headers::new();
        for v in self.headers.get_all("Via") {
            h.push("Via", v);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = self.headers.get(name) {
                let mut v = v.to_owned();
                if name == "To"
                    && code != 100
                    && let (Some(tag), Ok(na)) = (to_tag, NameAddr::parse(&v))
                    && na.tag().is_none()
                {
                    v.push_str(";tag=");
                    v.push_str(tag);
                }
                h.push(name, v);
            }
        }
        if code == 100
            && let Some(ts) = self.headers.get("Timestamp")
        {
            h.push("Timestamp", ts);
        }
        h.push("Content-Length", "0");
        Response {
            code,
            reason: reason.unwrap_or(default_reason(code)).to_owned(),
            headers: h,
            body: Bytes::new(),
        }
    }

    /// Converts to an `rsip` request (for crates that speak rsip). Fails where rsip
    /// cannot represent the message (e.g. extension methods).
    pub fn to_rsip(&self) -> Result<rsip::Request> {
        rsip::Request::try_from(self.to_bytes().as_ref()).map_err(|_| Error::InvalidState {
            what: "rsip cannot represent this request",
        })
    }

    /// Converts from an `rsip` request, validating it.
    pub fn from_rsip(r: &rsip::Request) -> Result<Request> {
        let bytes: Vec<u8> = r.clone().into();
        Request::parse(&bytes)
    }
}

fn set_body(headers: &mut Headers, content_type: Option<&str>, len: usize) {
    if let Some(ct) = content_type {
        headers.set("Content-Type", ct);
    }
    headers.set("Content-Length", len.to_string());
}

fn print_rest(b: &mut BytesMut, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        b.put_slice(h.name.as_bytes());
        b.put_slice(b": ");
        b.put_slice(h.value.as_bytes());
        b.put_slice(b"\r\n");
    }
    b.put_slice(b"\r\n");
    b.put_slice(body);
}

impl Response {
    /// Builds a response from parts and validates it. `Content-Length` is set from the body.
    pub fn new(code: u16, reason: &str, mut headers: Headers, body: Bytes) -> Result<Response> {
        if !(100..=699).contains(&code) {
            return Err(Error::BadStatusCode {
                code: code.to_string(),
            });
        }
        headers.set("Content-Length", body.len().to_string());
        let r = Response {
            code,
            reason: reason.to_owned(),
            headers,
            body,
        };
        r.validate()?;
        Ok(r)
    }

    /// Parses bytes that must hold a response.
    pub fn parse(bytes: &[u8]) -> Result<Response> {
        match parse(bytes, DEFAULT_MAX_MESSAGE_SIZE)? {
            SipMessage::Response(r) => Ok(r),
            SipMessage::Request(_) => Err(Error::BadStartLine {
                reason: "expected a response, found a request",
            }),
        }
    }

    fn validate(&self) -> Result<()> {
        validate_common(&self.headers).map(|_| ())
    }

    /// Status code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// Reason phrase as received.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body, setting Content-Type (if given) and Content-Length.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) {
        set_body(&mut self.headers, content_type, body.len());
        self.body = body;
    }

    /// Sets the To tag (replacing any).
    pub fn set_to_tag(&mut self, tag: &str) -> Result<()> {
        let mut na = self.to()?;
        na.params.set("tag", Some(tag));
        self.headers.set("To", na.to_string());
        Ok(())
    }

    /// Prints the message.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(512 + self.body.len());
        b.put_slice(b"SIP/2.0 ");
        b.put_slice(self.code.to_string().as_bytes());
        b.put_u8(b' ');
        b.put_slice(self.reason.as_bytes());
        b.put_slice(b"\r\n");
        print_rest(&mut b, &self.headers, &self.body);
        b.freeze()
    }

    /// Converts to an `rsip` response. rsip replaces the reason phrase by its own.
    pub fn to_rsip(&self) -> Result<rsip::Response> {
        rsip::Response::try_from(self.to_bytes().as_ref()).map_err(|_| Error::InvalidState {
            what: "rsip cannot represent this response",
        })
    }
}

/// Typed accessors shared by requests and responses.
pub trait MessageExt {
    /// The header list.
    fn hdrs(&self) -> &Headers;

    /// All Via elements, topmost first.
    fn vias(&self) -> Result<Vec<Via>> {
        self.hdrs()
            .get_list("Via")
            .iter()
            .map(|v| {
                Via::parse(v).map_err(|reason| Error::InvalidHeader {
                    name: "Via",
                    reason,
                })
            })
            .collect()
    }

    /// The topmost Via.
    fn top_via(&self) -> Result<Via> {
        let list = self.hdrs().get_list("Via");
        let v = list.first().ok_or(Error::MissingHeader { name: "Via" })?;
        Via::parse(v).map_err(|reason| Error::InvalidHeader {
            name: "Via",
            reason,
        })
    }

    /// The From header.
    fn from(&self) -> Result<NameAddr> {
        name_addr(self.hdrs(), "From")
    }

    /// The To header.
    fn to(&self) -> Result<NameAddr> {
        name_addr(self.hdrs(), "To")
    }

    /// The From tag.
    #[allow(clippy::wrong_self_convention)]
    fn from_tag(&self) -> Option<String> {
        self.from().ok().and_then(|n| n.tag().map(str::to_owned))
    }

    /// The To tag.
    fn to_tag(&self) -> Option<String> {
        self.to().ok().and_then(|n| n.tag().map(str::to_owned))
    }

    /// The Call-ID.
    fn call_id(&self) -> Result<&str> {
        self.hdrs()
            .get("Call-ID")
            .ok_or(Error::MissingHeader { name: "Call-ID" })
    }

    /// The CSeq.
    fn cseq(&self) -> Result<CSeq> {
        let v = self
            .hdrs()
            .get("CSeq")
            .ok_or(Error::MissingHeader { name: "CSeq" })?;
        CSeq::parse(v).map_err(|reason| Error::InvalidHeader {
            name: "CSeq",
            reason,
        })
    }

    /// All Contact elements (empty for `Contact: *`).
    fn contacts(&self) -> Result<Vec<NameAddr>> {
        list_name_addrs(self.hdrs(), "Contact")
    }

    /// Whether the message carries `Contact: *` (REGISTER remove-all).
    fn contact_star(&self) -> bool {
        self.hdrs().get_list("Contact").iter().any(|c| c == "*")
    }

    /// All Record-Route elements, in message order.
    fn record_route(&self) -> Result<Vec<NameAddr>> {
        list_name_addrs(self.hdrs(), "Record-Route")
    }

    /// All Route elements, in message order.
    fn route(&self) -> Result<Vec<NameAddr>> {
        list_name_addrs(self.hdrs(), "Route")
    }

    /// The Expires header value in seconds.
    fn expires(&self) -> Option<u32> {
        self.hdrs()
            .get("Expires")
            .and_then(|e| e.trim().parse().ok())
    }

    /// The Authorization header, parsed (see [`crate::auth::DigestCredentials`]).
    fn authorization(&self) -> Option<Result<crate::auth::DigestCredentials>> {
        self.hdrs()
            .get("Authorization")
            .map(crate::auth::DigestCredentials::parse)
    }

    /// The Proxy-Authorization header, parsed.
    fn proxy_authorization(&self) -> Option<Result<crate::auth::DigestCredentials>> {
        self.hdrs()
            .get("Proxy-Authorization")
            .map(crate::auth::DigestCredentials::parse)
    }

    /// The Proxy-Authenticate header, parsed.
    fn proxy_authenticate(&self) -> Option<Result<crate::auth::DigestChallenge>> {
        self.hdrs()
            .get("Proxy-Authenticate")
            .map(crate::auth::DigestChallenge::parse)
    }

    /// The WWW-Authenticate header, parsed (see [`crate::auth::DigestChallenge`]).
    fn www_authenticate(&self) -> Option<Result<crate::auth::DigestChallenge>> {
        self.hdrs()
            .get("WWW-Authenticate")
            .map(crate::auth::DigestChallenge::parse)
    }
}

fn name_addr(h: &Headers, name: &'static str) -> Result<NameAddr> {
    let v = h.get(name).ok_or(Error::MissingHeader { name })?;
    NameAddr::parse(v).map_err(|reason| Error::InvalidHeader { name, reason })
}

fn list_name_addrs(h: &Headers, name: &'static str) -> Result<Vec<NameAddr>> {
    h.get_list(name)
        .iter()
        .filter(|v| v.as_str() != "*")
        .map(|v| NameAddr::parse(v).map_err(|reason| Error::InvalidHeader { name, reason }))
        .collect()
}

impl MessageExt for Request {
    fn hdrs(&self) -> &Headers {
        &self.headers
    }
}

impl MessageExt for Response {
    fn hdrs(&self) -> &Headers {
        &self.headers
    }
}

impl MessageExt for SipMessage {
    fn hdrs(&self) -> &Headers {
        self.headers()
    }
}

/// The standard reason phrase for a status code (RFC 3261 §21 and common extensions).
pub fn default_reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

/// Canonical form of a header name (compact forms expanded).
pub fn canonical_header_name(name: &str) -> String {
    canonical_name(name)
}
