//! Untrusted op blobs. `Op::parse` must never panic, and anything it accepts must be exactly
//! the canonical encoding of what it returns (one op, one byte string).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mftplus_signing::Op;

fuzz_target!(|data: &[u8]| {
    if let Ok(op) = Op::parse(data) {
        assert_eq!(op.to_canonical_bytes(), data);
    }
});
