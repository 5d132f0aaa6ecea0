//! The SIP runtime on its own: no database and no call application, only a
//! [`Directory`] and a [`CallHandler`] written here. Issue #15: `signaling` depends on
//! none of the application crates; the call application plugs in through these traits.

use std::sync::Arc;
use std::time::Duration;

use parley_signaling::driver::{Cmd, DriverHandle};
use parley_signaling::{
    CallHandler, Directory, IncomingCall, Lookup, SipConfig, SipCredentials, SipServer, TrunkTarget,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A directory that knows nobody.
#[derive(Debug)]
struct Nobody;

impl Directory for Nobody {
    fn sip_credentials<'a>(
        &'a self,
        _realm: &'a str,
        _user: &'a str,
    ) -> Lookup<'a, Option<SipCredentials>> {
        Box::pin(async { Ok(None) })
    }
    fn tenant_by_sip_domain<'a>(&'a self, _domain: &'a str) -> Lookup<'a, Option<String>> {
        Box::pin(async { Ok(None) })
    }
    fn sip_realms(&self) -> Lookup<'_, Vec<String>> {
        Box::pin(async { Ok(vec!["example.test".to_owned()]) })
    }
    fn sip_binding_identity<'a>(
        &'a self,
        _tenant_id: &'a str,
        _user_id: &'a str,
    ) -> Lookup<'a, Option<(String, String)>> {
        Box::pin(async { Ok(None) })
    }
    fn trunk_source_addresses(&self) -> Lookup<'_, Vec<String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn trunk_outbound_targets(&self) -> Lookup<'_, Vec<TrunkTarget>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn identity_changes(&self) -> mpsc::Receiver<(String, String)> {
        mpsc::channel(1).1
    }
}

/// A call application that answers every call 486 Busy Here and ends it.
struct Busy {
    driver: DriverHandle,
}

impl CallHandler for Busy {
    fn incoming(&self, call: IncomingCall) {
        let driver = self.driver.clone();
        tokio::spawn(async move {
            let busy = call.invite.make_response(486, None, Some("busy"));
            driver.send(Cmd::Respond(busy)).await;
            driver.send(Cmd::Ended { call_no: call.no }).await;
        });
    }
}

#[tokio::test]
async fn a_call_reaches_the_call_handler_and_its_answer_goes_out_without_an_application() {
    let sip = SipServer::start(
        SipConfig::new("127.0.0.1:0".parse().unwrap()),
        Arc::new(Nobody),
        |handle| {
            Arc::new(Busy {
                driver: handle.driver,
            })
        },
    )
    .await
    .unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = phone.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:100@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-seam-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:caller@{me}>;tag=seam\r\n\
         To: <sip:100@{sip}>\r\n\
         Call-ID: seam-1@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{me}>\r\n\
         Content-Length: 0\r\n\r\n",
        sip = sip.udp_addr()
    );
    phone
        .send_to(invite.as_bytes(), sip.udp_addr())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let busy = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = phone.recv(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 486") {
                return text;
            }
        }
    })
    .await
    .expect("the call handler's 486 within 10 s");
    assert!(busy.contains("Call-ID: seam-1@127.0.0.1"), "{busy}");
    assert!(busy.contains("tag=busy"), "{busy}");
    let started = sip
        .inspector()
        .counters()
        .into_iter()
        .find(|(name, _)| *name == "sip_calls_started_total")
        .map(|(_, v)| v);
    assert_eq!(started, Some(1));
    sip.drain().await;
    sip.stop().await;
}
