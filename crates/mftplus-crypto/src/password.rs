//! Argon2id password hashing (PHC string format) and the password policy.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Hashes with Argon2id at the library's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| PasswordError::Hash(err.to_string()))
}

/// False for a wrong password and for a malformed stored hash alike.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, used to spend the same time on an unknown email as on a known
/// one so login timing does not reveal which accounts exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&crate::secrets::random_token(24)).expect("argon2 with default params")
    })
}

/// Minimum policy: 12 characters, and not a single repeated character. Long passphrases are
/// encouraged over composition rules (NIST SP 800-63B).
pub fn check_password_policy(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < 12 {
        return Err("password must be at least 12 characters".into());
    }
    if chars > 1024 {
        return Err("password must be at most 1024 characters".into());
    }
    let first = password.chars().next();
    if password.chars().all(|c| Some(c) == first) {
        return Err("password must not be one repeated character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn policy() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("aaaaaaaaaaaaaaaa").is_err());
        assert!(check_password_policy("a long enough passphrase").is_ok());
    }
}
