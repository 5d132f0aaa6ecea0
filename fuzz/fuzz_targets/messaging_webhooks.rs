//! Every messaging provider's webhook parser (issue #19) on arbitrary bytes: no panic,
//! whatever a provider (or an attacker who got past no signature check yet) sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_messaging::{api, meta, telegram, twilio, whatsapp, x};

fuzz_target!(|data: &[u8]| {
    let _ = whatsapp::parse_webhook(data);
    let _ = meta::parse_webhook(data);
    let _ = telegram::parse_webhook(data);
    let _ = x::parse_webhook(data);
    let _ = api::parse_webhook(data);
    let params = twilio::form_params(data);
    let _ = twilio::parse_webhook(&params);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = twilio::keyword(s);
    }
});
