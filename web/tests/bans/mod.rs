//! The SIP ban list is server-wide, but each tenant's admins see and lift only the bans
//! of sources that attacked their tenant (#13: any tenant's admin could list every
//! ban and lift one protecting another tenant).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use parley_cases::{Role, Timestamp};
use parley_web::{AppState, SipBanRecord, SipBans, WebConfig, app};

use crate::T;

struct FakeBans(Mutex<Vec<SipBanRecord>>);

impl SipBans for FakeBans {
    fn list(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<SipBanRecord>>> + Send + '_>>
    {
        let v = self.0.lock().unwrap().clone();
        Box::pin(async move { Some(v) })
    }

    fn lift(
        &self,
        address: IpAddr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<bool>> + Send + '_>> {
        let mut g = self.0.lock().unwrap();
        let before = g.len();
        g.retain(|b| b.address != address);
        let lifted = g.len() < before;
        Box::pin(async move { Some(lifted) })
    }
}

fn ban(addr: &str, tenants: &[(&str, &str)]) -> SipBanRecord {
    SipBanRecord {
        address: addr.parse().unwrap(),
        expires_at: Timestamp(3_600_000),
        failures: 10,
        tenants: tenants
            .iter()
            .map(|(t, u)| ((*t).to_owned(), (*u).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[tokio::test]
async fn an_admin_sees_and_lifts_only_the_bans_of_sources_that_attacked_their_tenant() {
    let mut t = T::new().await;
    let acme_admin = t.login("acme", Role::Admin).await;
    let globex_admin = t.login("globex", Role::Admin).await;
    let acme = t
        .store
        .actor_for_token(&acme_admin)
        .await
        .unwrap()
        .0
        .tenant_id;
    let globex = t
        .store
        .actor_for_token(&globex_admin)
        .await
        .unwrap()
        .0
        .tenant_id;
    let bans = Arc::new(FakeBans(Mutex::new(vec![
        ban("192.0.2.1", &[(&acme, "1001")]),
        ban("192.0.2.2", &[(&acme, "1002"), (&globex, "2002")]),
        ban("192.0.2.3", &[(&globex, "2003")]),
        ban("192.0.2.4", &[]),
    ])));
    t.app = app(AppState::new(t.store.clone(), WebConfig::default()).with_sip_bans(bans.clone()));
    let listed = |v: &serde_json::Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["address"].as_str().unwrap().to_owned(),
                    b["last_user"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (s, v) = t
        .call(Method::GET, "/api/v1/sip/bans", Some(&acme_admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        listed(&v),
        vec![
            ("192.0.2.1".to_owned(), "1001".to_owned()),
            ("192.0.2.2".to_owned(), "1002".to_owned()),
        ],
        "only acme's, each with the user claimed in acme"
    );
    let (_, v) = t
        .call(Method::GET, "/api/v1/sip/bans", Some(&globex_admin), None)
        .await;
    assert_eq!(
        listed(&v),
        vec![
            ("192.0.2.2".to_owned(), "2002".to_owned()),
            ("192.0.2.3".to_owned(), "2003".to_owned()),
        ]
    );
    let del = |addr: &str| format!("/api/v1/sip/bans/{addr}");
    // Another tenant's ban, and one that concerns no tenant, do not exist for acme.
    for other in ["192.0.2.3", "192.0.2.4"] {
        let (s, v) = t
            .call(Method::DELETE, &del(other), Some(&acme_admin), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{other}: {v}");
    }
    // A source that attacked acme and globex is not acme's alone to release.
    let (s, v) = t
        .call(Method::DELETE, &del("192.0.2.2"), Some(&acme_admin), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = t
        .call(Method::DELETE, &del("192.0.2.1"), Some(&acme_admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let left: Vec<String> = bans
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|b| b.address.to_string())
        .collect();
    assert_eq!(left, ["192.0.2.2", "192.0.2.3", "192.0.2.4"]);
}
