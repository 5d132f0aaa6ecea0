//! Dialogs (RFC 3261 §12): identity, state, route set, remote target, CSeq
//! bookkeeping and in-dialog request construction.

use crate::error::{Error, Result};
use crate::message::{Headers, MessageExt, Method, NameAddr, Request, Response, Via};
use bytes::Bytes;

/// Dialog identifier (§12): Call-ID and the two tags, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog id an incoming in-dialog request belongs to (we are the UAS of it:
    /// the local tag is in To, the remote tag in From).
    pub fn of_incoming_request(req: &Request) -> Option<DialogId> {
        Some(DialogId {
            call_id: req.call_id().ok()?.to_owned(),
            local_tag: req.to_tag()?,
            remote_tag: req.from_tag()?,
        })
    }

    /// The dialog id a response to our request belongs to.
    pub fn of_incoming_response(resp: &Response) -> Option<DialogId> {
        Some(DialogId {
            call_id: resp.call_id().ok()?.to_owned(),
            local_tag: resp.from_tag()?,
            remote_tag: resp.to_tag()?,
        })
    }
}

/// Dialog state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended (BYE, or a non-2xx final for an early dialog).
    Terminated,
}

/// One dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Identity.
    pub id: DialogId,
    /// State.
    pub state: DialogState,
    /// Our URI with our tag (From of our requests).
    pub local: NameAddr,
    /// The peer's URI with its tag (To of our requests).
    pub remote: NameAddr,
    /// Where our requests go (the peer's Contact URI).
    pub remote_target: String,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<NameAddr>,
    /// Our Contact, put in target-refresh requests.
    pub local_contact: String,
    /// Last CSeq number we used.
    pub local_seq: u32,
    /// Highest CSeq number the peer used, once it sent a request.
    pub remote_seq: Option<u32>,
    /// Whether the dialog was created over sips.
    pub secure: bool,
}

fn remote_contact(contacts: Result<Vec<NameAddr>>) -> Result<String> {
    contacts?
        .into_iter()
        .next()
        .map(|c| c.uri)
        .ok_or(Error::MissingHeader { name: "Contact" })
}

impl Dialog {
    /// UAC side: a dialog created by a response (1xx with To tag → Early, 2xx →
    /// Confirmed) to our INVITE (§12.1.2). The route set is the Record-Route of the
    /// response, reversed.
    pub fn uac(invite: &Request, resp: &Response, local_contact: &str) -> Result<Dialog> {
        let code = resp.code();
        if !(101..300).contains(&code) {
            return Err(Error::InvalidState {
                what: "only 101-299 responses create dialogs",
            });
        }
        let id = DialogId::of_incoming_response(resp).ok_or(Error::InvalidHeader {
            name: "To",
            reason: "no tag in a dialog-creating response",
        })?;
        let mut route_set = resp.record_route()?;
        route_set.reverse();
        Ok(Dialog {
            id,
            state: if code >= 200 {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local: invite.from()?,
            remote: resp.to()?,
            remote_target: remote_contact(resp.contacts())?,
            route_set,
            local_contact: local_contact.to_owned(),
            local_seq: invite.cseq()?.seq,
            remote_seq: None,
            secure: invite.uri().to_ascii_lowercase().starts_with("sips:"),
        })
    }

    /// UAS side: the dialog our response with `local_tag` creates (§12.1.1). The
    /// route set is the Record-Route of the request, in order.
    pub fn uas(
        invite: &Request,
        local_tag: &str,
        local_contact: &str,
        confirmed: bool,
        initial_local_seq: u32,
    ) -> Result<Dialog> {
        let from_tag = invite.from_tag().ok_or(Error::InvalidHeader {
            name: "From",
            reason: "no tag",
        })?;
        let mut local = invite.to()?;
        local.params.set("tag", Some(local_tag));
        Ok(Dialog {
            id: DialogId {
                call_id: invite.call_id()?.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: from_tag,
            },
            state: if confirmed {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local,
            remote: invite.from()?,
            remote_target: remote_contact(invite.contacts())?,
            route_set: invite.record_route()?,
            local_contact: local_contact.to_owned(),
            local_seq: initial_local_seq,
            remote_seq: Some(invite.cseq()?.seq),
            secure: invite.uri().to_ascii_lowercase().starts_with("sips:"),
        })
    }

    /// UAC: a later response in this dialog (§12.1.2, §12.2.1.2). A 2xx confirms an
    /// early dialog; the remote target follows the Contact of 1xx/2xx responses; the
    /// route set is only taken while the dialog is early.
    pub fn on_response(&mut self, resp: &Response) -> Result<()> {
        if DialogId::of_incoming_response(resp).as_ref() != Some(&self.id) {
            return Err(Error::DialogMismatch);
        }
        let code = resp.code();
        let is_invite = resp.cseq()?.method == Method::Invite;
        if is_invite && (101..300).contains(&code) {
            if let Ok(c) = remote_contact(resp.contacts()) {
                self.remote_target = c;
            }
            if self.state == DialogState::Early {
                let mut rs = resp.record_route()?;
                rs.reverse();
                self.route_set = rs;
                if code >= 200 {
                    self.state = DialogState::Confirmed;
                }
            }
        } else if is_invite && code >= 300 && self.state == DialogState::Early {
            self.state = DialogState::Terminated;
        } else if (200..300).contains(&code)
            && resp.cseq()?.method == Method::Update
            && let Ok(c) = remote_contact(resp.contacts())
        {
            self.remote_target = c;
        }
        if matches!(code, 481 | 408) {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// UAS: an in-dialog request (§12.2.2). A CSeq not above the last one is
    /// [`Error::CSeqOutOfOrder`] (answer 500); ACK and CANCEL are not checked.
    /// Target-refresh requests update the remote target; BYE terminates.
    pub fn on_request(&mut self, req: &Request) -> Result<()> {
        if DialogId::of_incoming_request(req).as_ref() != Some(&self.id) {
            return Err(Error::DialogMismatch);
        }
        let cseq = req.cseq()?;
        match req.method() {
            Method::Ack | Method::Cancel => return Ok(()),
            _ => {}
        }
        if let Some(last) = self.remote_seq
            && cseq.seq <= last
        {
            return Err(Error::CSeqOutOfOrder {
                got: cseq.seq,
                last,
            });
        }
        self.remote_seq = Some(cseq.seq);
        match req.method() {
            Method::Invite
            | Method::Update
            | Method::Subscribe
            | Method::Notify
            | Method::Refer => {
                if let Ok(c) = remote_contact(req.contacts()) {
                    self.remote_target = c;
                }
            }
            Method::Bye => self.state = DialogState::Terminated,
            _ => {}
        }
        Ok(())
    }

    fn base_request(&self, method: Method, seq: u32, via: &Via) -> Headers {
        let mut h = Headers::new();
        h.push("Via", via.to_string());
        h.push("Max-Forwards", "70");
        h.push("From", self.local.to_string());
        h.push("To", self.remote.to_string());
        h.push("Call-ID", self.id.call_id.clone());
        h.push("CSeq", format!("{seq} {method}"));
        h
    }

    /// Request-URI and Route headers per §12.2.1.1 (loose and strict routing).
    fn target_and_routes(&self) -> (String, Vec<String>) {
        match self.route_set.first() {
            None => (self.remote_target.clone(), vec![]),
            Some(first) if first.uri.contains(";lr") => (
                self.remote_target.clone(),
                self.route_set.iter().map(|r| r.to_string()).collect(),
            ),
            Some(first) => {
                // Strict router: its URI becomes the Request-URI and the remote
                // target goes last in Route.
                let mut routes: Vec<String> =
                    self.route_set[1..].iter().map(|r| r.to_string()).collect();
                routes.push(format!("<{}>", self.remote_target));
                (first.uri.clone(), routes)
            }
        }
    }

    /// Builds an in-dialog request (BYE, re-INVITE, UPDATE, INFO...) with the next
    /// local CSeq. `via` carries our sent-by and a fresh branch.
    pub fn create_request(
        &mut self,
        method: Method,
        via: &Via,
        body: Option<(&str, Bytes)>,
    ) -> Result<Request> {
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(Error::InvalidState {
                what: "ACK and CANCEL are not built with create_request",
            });
        }
        if self.state == DialogState::Terminated {
            return Err(Error::InvalidState {
                what: "dialog is terminated",
            });
        }
        self.local_seq = self.local_seq.wrapping_add(1) & 0x7fff_ffff;
        let mut h = self.base_request(method.clone(), self.local_seq, via);
        let (uri, routes) = self.target_and_routes();
        for r in routes {
            h.push("Route", r);
        }
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Refer
        ) {
            h.push("Contact", format!("<{}>", self.local_contact));
        }
        let (ct, body) = match body {
            Some((ct, b)) => (Some(ct), b),
            None => (None, Bytes::new()),
        };
        if let Some(ct) = ct {
            h.push("Content-Type", ct);
        }
        Request::new(method, &uri, h, body)
    }

    /// Builds the ACK for a 2xx to the INVITE with CSeq `invite_seq` (§13.2.2.4),
    /// optionally carrying an SDP answer.
    pub fn create_ack(
        &self,
        invite_seq: u32,
        via: &Via,
        body: Option<(&str, Bytes)>,
    ) -> Result<Request> {
        let mut h = self.base_request(Method::Ack, invite_seq, via);
        let (uri, routes) = self.target_and_routes();
        for r in routes {
            h.push("Route", r);
        }
        let body = match body {
            Some((ct, b)) => {
                h.push("Content-Type", ct);
                b
            }
            None => Bytes::new(),
        };
        Request::new(Method::Ack, &uri, h, body)
    }
}

/// A random token for tags and branches, from the caller's RNG (the crate reads no
/// entropy source itself).
pub fn random_token<R: rand::Rng + ?Sized>(rng: &mut R, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new RFC 3261 branch (`z9hG4bK` + random token).
pub fn new_branch<R: rand::Rng + ?Sized>(rng: &mut R) -> String {
    format!("z9hG4bK{}", random_token(rng, 16))
}
