//! The escrowed backup key: a box's backup-repository key wrapped with the customer's recovery
//! code, so the cloud can keep it for disaster recovery without being able to open it
//! (decision 0026).
//!
//! Format, one line of ASCII (`$`-separated, base64url without padding):
//! `mftplus-escrow-v1$m=<KiB>,t=<passes>,p=<lanes>$<salt 16 B>$<nonce 12 B>$<ciphertext+tag>`.
//! The key is Argon2id(recovery code, salt) with the stated cost; the cipher AES-256-GCM with
//! associated data `mftplus-escrow-v1` ‖ 0 ‖ host id ‖ 0 ‖ repository fingerprint, so a wrapped
//! key copied to another host's record, or pointed at another repository, does not open. The
//! cost travels with the blob, so it can rise later without breaking old escrows; a blob asking
//! for more than [`MAX_MEMORY_KIB`] is refused before any work (a hostile record must not make
//! the box allocate gigabytes).

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

const TAG: &str = "mftplus-escrow-v1";
/// 64 MiB, three passes: a recovery code is typed by a person, so it is the weak link; the
/// cost makes each guess of an offline attack on a stolen record expensive.
const MEMORY_KIB: u32 = 64 * 1024;
const PASSES: u32 = 3;
const LANES: u32 = 1;
/// The most memory an escrow may ask for.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
/// The shortest recovery code accepted: wrapping with a short code would make the escrow as
/// weak as the code.
pub const MIN_RECOVERY_CODE_CHARS: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EscrowError {
    #[error("the recovery code must be at least {MIN_RECOVERY_CODE_CHARS} characters")]
    WeakRecoveryCode,
    #[error("not an escrowed key of a known format: {0}")]
    Malformed(&'static str),
    #[error(
        "the recovery code does not open this escrow (or it belongs to another host or repository)"
    )]
    WrongRecoveryCode,
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

impl EscrowError {
    pub fn code(&self) -> &'static str {
        match self {
            EscrowError::WeakRecoveryCode => "recovery_code_weak",
            EscrowError::Malformed(_) => "escrow_malformed",
            EscrowError::WrongRecoveryCode => "recovery_code_wrong",
            EscrowError::Kdf(_) => "escrow_kdf_failed",
        }
    }
}

/// What the wrapped key is bound to.
#[derive(Debug, Clone, Copy)]
pub struct EscrowBinding<'a> {
    pub host_id: &'a str,
    pub repository_fingerprint: &'a str,
}

impl EscrowBinding<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(TAG.len() + 2 + self.host_id.len() + 64);
        aad.extend_from_slice(TAG.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.host_id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.repository_fingerprint.as_bytes());
        aad
    }
}

/// Wraps `secret` (the repository key) with `recovery_code`.
pub fn wrap(
    secret: &[u8],
    recovery_code: &str,
    binding: EscrowBinding<'_>,
) -> Result<String, EscrowError> {
    check_recovery_code(recovery_code)?;
    let rng = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut nonce))
        .map_err(|_| EscrowError::Kdf("no randomness".into()))?;
    let key = derive(recovery_code, &salt, MEMORY_KIB, PASSES, LANES)?;
    let mut sealed = secret.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(binding.aad()),
        &mut sealed,
    )
    .map_err(|_| EscrowError::Kdf("sealing failed".into()))?;
    Ok(format!(
        "{TAG}$m={MEMORY_KIB},t={PASSES},p={LANES}${}${}${}",
        URL_SAFE_NO_PAD.encode(salt),
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(&sealed)
    ))
}

/// Opens an escrow made by [`wrap`]; the secret is zeroized when dropped.
pub fn unwrap(
    escrow: &str,
    recovery_code: &str,
    binding: EscrowBinding<'_>,
) -> Result<Zeroizing<Vec<u8>>, EscrowError> {
    let parts: Vec<&str> = escrow.trim().split('$').collect();
    let [tag, cost, salt, nonce, sealed] = parts.as_slice() else {
        return Err(EscrowError::Malformed("expected five `$`-separated fields"));
    };
    if *tag != TAG {
        return Err(EscrowError::Malformed("unknown version tag"));
    }
    let (memory, passes, lanes) = parse_cost(cost)?;
    let decode = |field: &str, what: &'static str| {
        URL_SAFE_NO_PAD
            .decode(field)
            .map_err(|_| EscrowError::Malformed(what))
    };
    let salt = decode(salt, "salt is not base64url")?;
    let nonce: [u8; NONCE_LEN] = decode(nonce, "nonce is not base64url")?
        .try_into()
        .map_err(|_| EscrowError::Malformed("nonce is not 12 bytes"))?;
    let mut sealed = Zeroizing::new(decode(sealed, "ciphertext is not base64url")?);
    if salt.len() < 8 || sealed.len() < aead::AES_256_GCM.tag_len() {
        return Err(EscrowError::Malformed("salt or ciphertext too short"));
    }
    let key = derive(recovery_code, &salt, memory, passes, lanes)?;
    let opened = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(binding.aad()),
            &mut sealed,
        )
        .map_err(|_| EscrowError::WrongRecoveryCode)?;
    Ok(Zeroizing::new(opened.to_vec()))
}

fn check_recovery_code(code: &str) -> Result<(), EscrowError> {
    if code.chars().filter(|c| !c.is_whitespace()).count() < MIN_RECOVERY_CODE_CHARS {
        return Err(EscrowError::WeakRecoveryCode);
    }
    Ok(())
}

fn parse_cost(cost: &str) -> Result<(u32, u32, u32), EscrowError> {
    let mut values = [None; 3];
    for pair in cost.split(',') {
        let (name, value) = pair
            .split_once('=')
            .ok_or(EscrowError::Malformed("cost is not name=value pairs"))?;
        let slot = match name {
            "m" => 0,
            "t" => 1,
            "p" => 2,
            _ => return Err(EscrowError::Malformed("unknown cost parameter")),
        };
        values[slot] = Some(
            value
                .parse::<u32>()
                .map_err(|_| EscrowError::Malformed("cost is not a number"))?,
        );
    }
    let [Some(m), Some(t), Some(p)] = values else {
        return Err(EscrowError::Malformed("cost lacks m, t or p"));
    };
    if m > MAX_MEMORY_KIB || t > 16 || p > 16 {
        return Err(EscrowError::Malformed(
            "cost is beyond what a box will spend",
        ));
    }
    Ok((m, t, p))
}

fn derive(
    code: &str,
    salt: &[u8],
    memory_kib: u32,
    passes: u32,
    lanes: u32,
) -> Result<LessSafeKey, EscrowError> {
    let params = Params::new(memory_kib, passes, lanes, Some(32))
        .map_err(|e| EscrowError::Kdf(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    // Whitespace at the ends is how a code read from a file or a prompt differs from the one
    // written down; inside the code it is part of it.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(code.trim().as_bytes(), salt, key.as_mut())
        .map_err(|e| EscrowError::Kdf(e.to_string()))?;
    let unbound = UnboundKey::new(&aead::AES_256_GCM, key.as_ref()).expect("32-byte key");
    // LessSafeKey: each wrap draws a fresh random nonce under a key derived from a fresh salt.
    Ok(LessSafeKey::new(unbound))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BINDING: EscrowBinding<'static> = EscrowBinding {
        host_id: "h-1",
        repository_fingerprint: "12b6f01598af22d4",
    };

    #[test]
    fn round_trip_and_every_refusal() {
        let code = "kert alma szilva korte";
        let escrow = wrap(b"repository key", code, BINDING).unwrap();
        assert!(escrow.starts_with("mftplus-escrow-v1$m=65536,t=3,p=1$"));
        assert!(!escrow.contains("repository"));
        assert_eq!(
            unwrap(&escrow, code, BINDING).unwrap().as_slice(),
            b"repository key"
        );
        // Read from a file with its newline: the same code.
        assert!(unwrap(&escrow, &format!("{code}\n"), BINDING).is_ok());
        assert_eq!(
            unwrap(&escrow, "kert alma szilva korta", BINDING).unwrap_err(),
            EscrowError::WrongRecoveryCode
        );
        let other_host = EscrowBinding {
            host_id: "h-2",
            ..BINDING
        };
        assert_eq!(
            unwrap(&escrow, code, other_host).unwrap_err(),
            EscrowError::WrongRecoveryCode
        );
        let other_repo = EscrowBinding {
            repository_fingerprint: "ffff",
            ..BINDING
        };
        assert_eq!(
            unwrap(&escrow, code, other_repo).unwrap_err().code(),
            "recovery_code_wrong"
        );
        assert_eq!(
            wrap(b"k", "short code", BINDING).unwrap_err(),
            EscrowError::WeakRecoveryCode
        );
    }

    #[test]
    fn malformed_blobs_are_refused_before_any_work() {
        let code = "kert alma szilva korte";
        let escrow = wrap(b"k", code, BINDING).unwrap();
        let greedy = escrow.replace("m=65536", "m=4194304");
        assert!(matches!(
            unwrap(&greedy, code, BINDING),
            Err(EscrowError::Malformed(_))
        ));
        for bad in [
            "",
            "mftplus-escrow-v2$m=1,t=1,p=1$a$b$c",
            "mftplus-escrow-v1$m=1,t=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
            "mftplus-escrow-v1$m=65536,t=3,p=1$!!$AAAAAAAAAAAAAAAA$AAAA",
        ] {
            let err = unwrap(bad, code, BINDING).unwrap_err();
            assert_eq!(err.code(), "escrow_malformed", "{bad}: {err}");
        }
        // A flipped ciphertext byte is a wrong code, not a crash.
        let mut fields: Vec<String> = escrow.split('$').map(str::to_string).collect();
        let mut sealed = URL_SAFE_NO_PAD.decode(&fields[4]).unwrap();
        sealed[0] ^= 1;
        fields[4] = URL_SAFE_NO_PAD.encode(&sealed);
        assert_eq!(
            unwrap(&fields.join("$"), code, BINDING).unwrap_err(),
            EscrowError::WrongRecoveryCode
        );
    }
}
