//! Untrusted ssh-agent answers: whatever process sits behind `SSH_AUTH_SOCK` may send anything.
//! Neither parser may panic, and every key an identities answer yields must re-encode to a blob
//! that parses back to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mftplus_signing::agent::{parse_identities_answer, parse_sign_answer};
use mftplus_signing::PublicKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(answer) = parse_identities_answer(data) {
        for identity in answer.supported {
            let again = PublicKey::from_blob(&identity.key.to_blob()).expect("re-parse own blob");
            assert_eq!(again, identity.key);
        }
    }
    let _ = parse_sign_answer(data);
});
