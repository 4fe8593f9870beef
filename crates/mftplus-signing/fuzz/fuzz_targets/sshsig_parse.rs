//! Untrusted signature input: the armored text and the binary SSHSIG inside it, plus the
//! public-key blob and allowed_signers parsers it leads to. None may panic, and whatever
//! parses must re-serialise to an equivalent signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mftplus_signing::{armor, AllowedSigners, PublicKey, SshSig};

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = SshSig::from_bytes(data) {
        let again = SshSig::from_bytes(&sig.to_bytes()).expect("re-parse own output");
        assert_eq!(again, sig);
        let armored = SshSig::from_armored(&sig.to_armored()).expect("re-parse own armor");
        assert_eq!(armored, sig);
    }
    let _ = PublicKey::from_blob(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SshSig::from_armored(text);
        let _ = armor::decode(armor::SIGNATURE_LABEL, text);
        let _ = AllowedSigners::parse(text);
    }
});
