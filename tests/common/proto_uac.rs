//! A minimal SIP user agent client for the integration tests that start the real binary
//! (shared by `tests/sip.rs` and `tests/speech.rs` through `#[path]`).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use parley_sip_proto::dialog::{Dialog, new_branch, random_token};
use parley_sip_proto::message::{Headers, MessageExt as _, Method, Request, SipMessage, Via};
use parley_sip_proto::offer_answer::{LocalCapabilities, build_offer, parse_sdp, sdp_to_bytes};

/// A minimal UAC built on parley-sip-proto over real UDP sockets: an INVITE with a
/// PCMU + telephone-event offer, ACK and BYE from the dialog, RTP on its own socket.
pub(crate) struct ProtoUac {
    pub(crate) sip: UdpSocket,
    pub(crate) rtp: UdpSocket,
    pub(crate) me: SocketAddr,
    pub(crate) to: SocketAddr,
}

impl ProtoUac {
    pub(crate) fn new(to: SocketAddr) -> ProtoUac {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        rtp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let me = sip.local_addr().unwrap();
        ProtoUac { sip, rtp, me, to }
    }

    pub(crate) fn via(&self) -> Via {
        Via::new(
            "UDP",
            &self.me.ip().to_string(),
            Some(self.me.port()),
            &new_branch(&mut rand::rng()),
        )
    }

    pub(crate) fn send(&self, r: &Request) {
        self.sip
            .send_to(&SipMessage::Request(r.clone()).to_bytes(), self.to)
            .unwrap();
    }

    pub(crate) fn recv(&self) -> SipMessage {
        let mut buf = vec![0u8; 65535];
        let (n, _) = self.sip.recv_from(&mut buf).unwrap();
        SipMessage::parse(&buf[..n]).unwrap()
    }

    /// Calls `number`; returns the dialog and the RTP address from the 200's SDP answer.
    pub(crate) fn call(&self, number: &str) -> (Dialog, SocketAddr) {
        self.call_as("+15550123", number)
    }

    /// [`ProtoUac::call`] with `from` as the caller's number (the From user part).
    pub(crate) fn call_as(&self, from: &str, number: &str) -> (Dialog, SocketAddr) {
        let (invite, ok, remote) = self.invite_as(from, number);
        let dialog = Dialog::uac(&invite, &ok, &format!("sip:caller@{}", self.me)).unwrap();
        self.send(&dialog.create_ack(1, &self.via(), None).unwrap());
        (dialog, remote)
    }

    /// Sends an INVITE to `number` (our offer names the `rtp` socket) and waits for its
    /// 200 without acknowledging it; returns the INVITE, the 200 and the RTP address
    /// of the answer.
    pub(crate) fn invite(
        &self,
        number: &str,
    ) -> (Request, parley_sip_proto::message::Response, SocketAddr) {
        self.invite_as("+15550123", number)
    }

    /// [`ProtoUac::invite`] with `from` as the caller's number.
    pub(crate) fn invite_as(
        &self,
        from: &str,
        number: &str,
    ) -> (Request, parley_sip_proto::message::Response, SocketAddr) {
        let mut rng = rand::rng();
        let mut h = Headers::new();
        h.push("Via", self.via().to_string());
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:{from}@{}>;tag={}",
                self.me.ip(),
                random_token(&mut rng, 10)
            ),
        );
        h.push("To", format!("<sip:{number}@{}>", self.to));
        h.push(
            "Call-ID",
            format!("{}@uac.test", random_token(&mut rng, 16)),
        );
        h.push("CSeq", "1 INVITE");
        h.push("Contact", format!("<sip:caller@{}>", self.me));
        h.push("Content-Type", "application/sdp");
        let mut caps = LocalCapabilities::new(self.me.ip(), self.rtp.local_addr().unwrap().port());
        caps.codecs
            .retain(|c| c.clock_rate == 8000 && c.name != "PCMA");
        let body = sdp_to_bytes(&build_offer(&caps));
        let uri = format!("sip:{number}@{}", self.to);
        let invite = Request::new(Method::Invite, &uri, h, body).unwrap();
        self.send(&invite);
        let ok = loop {
            match self.recv() {
                SipMessage::Response(r) if r.code() >= 200 => break r,
                _ => {}
            }
        };
        assert_eq!(ok.code(), 200, "{ok:?}");
        let sdp = parse_sdp(ok.body()).unwrap();
        let m = &sdp.media_descriptions[0];
        assert!(
            m.media_name.formats.first().map(String::as_str) == Some("0"),
            "PCMU answered: {:?}",
            m.media_name
        );
        let ip = sdp.connection_information.as_ref().unwrap();
        let ip = ip.address.as_ref().unwrap().address.parse().unwrap();
        let remote = SocketAddr::new(ip, u16::try_from(m.media_name.port.value).unwrap());
        (invite, ok, remote)
    }

    pub(crate) fn hang_up(&self, dialog: &mut Dialog) {
        let bye = dialog
            .create_request(Method::Bye, &self.via(), None)
            .unwrap();
        self.send(&bye);
        loop {
            if let SipMessage::Response(r) = self.recv()
                && r.cseq().unwrap().method == Method::Bye
            {
                assert_eq!(r.code(), 200);
                return;
            }
        }
    }
}
