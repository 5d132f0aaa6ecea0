//! Digest authentication headers (`Authorization`, `Proxy-Authorization`,
//! `WWW-Authenticate`, `Proxy-Authenticate`) and server nonces.
//!
//! Properties: parsing never panics; parsed credentials and challenges print to a
//! header value that parses back to an equal value; answering a parsed challenge
//! produces credentials that verify with the same password and not with another;
//! nonce checks never panic on arbitrary nonces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_sip_proto::auth::{
    DigestChallenge, DigestCredentials, NonceCounter, NonceIssuer, parse_auth_params,
};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_auth_params(value);

    if let Ok(cred) = DigestCredentials::parse(value) {
        let printed = cred.to_string();
        let again = DigestCredentials::parse(&printed)
            .unwrap_or_else(|e| panic!("printed credentials {printed:?} do not parse: {e}"));
        assert_eq!(again, cred, "credentials round trip through {printed:?}");
        let _ = cred.verify("INVITE", "secret", b"body");
        let ha1 = DigestCredentials::ha1(cred.algorithm, &cred.username, &cred.realm, "secret");
        let _ = cred.verify_ha1("REGISTER", &ha1, b"");
        let mut nc = NonceCounter::new(4);
        if let Some(n) = cred.nc {
            assert!(
                nc.check_and_record(&cred.nonce, n),
                "first use of a nonce refused"
            );
            assert!(
                !nc.check_and_record(&cred.nonce, n),
                "nonce count replay accepted"
            );
        }
        let issuer = NonceIssuer::new(b"fuzz-key", Duration::from_secs(60));
        let _ = issuer.check(&cred.nonce, Duration::from_secs(1_000));
    }

    if let Ok(ch) = DigestChallenge::parse(value) {
        let printed = ch.to_string();
        let again = DigestChallenge::parse(&printed)
            .unwrap_or_else(|e| panic!("printed challenge {printed:?} does not parse: {e}"));
        assert_eq!(again, ch, "challenge round trip through {printed:?}");

        {
            let cred = ch.answer(
                "alice",
                "secret",
                "REGISTER",
                "sip:example.com",
                "0a4f113b",
                1,
            );
            let printed = cred.to_string();
            let parsed = DigestCredentials::parse(&printed)
                .unwrap_or_else(|e| panic!("our own credentials {printed:?} do not parse: {e}"));
            assert_eq!(parsed, cred, "our credentials round trip");
            assert!(
                parsed.verify("REGISTER", "secret", b""),
                "our answer does not verify"
            );
            assert!(
                !parsed.verify("REGISTER", "wrong", b""),
                "wrong password verifies"
            );
        }
    }
});
