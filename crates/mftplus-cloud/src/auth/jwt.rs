//! JWT signing and verification: HS256 or RS256, several verification keys selected by `kid` so
//! a signing key is rotated without logging everyone out, and the JWKS of the RS256 public keys.
//!
//! `jsonwebtoken` checks the signature only; every claim (`iss`, `aud`, `exp`, `nbf`, `iat`,
//! `jti`, `typ`) is checked here against the injected clock.

use crate::config::{JwtAlgorithm, JwtSection};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mftplus_types::api::Jwk;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub role: String,
    /// `access` or `refresh`: a refresh token is never accepted as an access token.
    pub typ: String,
    /// Token family: one login and all its refreshes.
    pub fam: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is malformed")]
    Malformed,
    #[error("token was signed by an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued for another issuer or audience")]
    WrongAudience,
}

struct VerifyKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

pub struct JwtKeys {
    algorithm: Algorithm,
    signing: EncodingKey,
    signing_kid: String,
    verifying: HashMap<String, VerifyKey>,
    jwks: Vec<Jwk>,
    issuer: String,
    audience: String,
    leeway: i64,
}

impl JwtKeys {
    pub fn from_config(jwt: &JwtSection) -> Result<JwtKeys, String> {
        let keys = match jwt.algorithm {
            JwtAlgorithm::HS256 => hs256_keys(jwt)?,
            JwtAlgorithm::RS256 => rs256_keys(jwt)?,
        };
        Ok(JwtKeys {
            algorithm: keys.algorithm,
            signing: keys.signing,
            signing_kid: keys.signing_kid,
            verifying: keys.verifying,
            jwks: keys.jwks,
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            leeway: jwt.leeway as i64,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    pub fn audience(&self) -> &str {
        &self.audience
    }
    pub fn jwks(&self) -> &[Jwk] {
        &self.jwks
    }
    /// The `kid` new tokens carry.
    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).map_err(|e| e.to_string())
    }

    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let kid = header.kid.ok_or(JwtError::UnknownKey)?;
        let key = self.verifying.get(&kid).ok_or(JwtError::UnknownKey)?;
        if header.alg != key.algorithm {
            // Refuses algorithm confusion (e.g. an HS256 token "signed" with an RS256 public key).
            return Err(JwtError::BadSignature);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(
                |err| match err.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::BadSignature,
                    _ => JwtError::Malformed,
                },
            )?;
        let claims = data.claims;
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(JwtError::WrongAudience);
        }
        if claims.jti.is_empty() || claims.sub.is_empty() {
            return Err(JwtError::Malformed);
        }
        self.check_times(&claims, now_secs)?;
        Ok(claims)
    }
}

impl JwtKeys {
    /// The time checks alone, for claims whose signature was verified earlier.
    pub fn check_times(&self, claims: &Claims, now_secs: i64) -> Result<(), JwtError> {
        if now_secs > claims.exp + self.leeway {
            return Err(JwtError::Expired);
        }
        if now_secs + self.leeway < claims.nbf || now_secs + self.leeway < claims.iat {
            return Err(JwtError::NotYetValid);
        }
        Ok(())
    }
}

/// The keys of one algorithm: what signs, and every key that verifies by its `kid`.
struct KeySet {
    algorithm: Algorithm,
    signing: EncodingKey,
    signing_kid: String,
    verifying: HashMap<String, VerifyKey>,
    jwks: Vec<Jwk>,
}

fn hs256_keys(jwt: &JwtSection) -> Result<KeySet, String> {
    let secret = jwt.secret.as_ref().ok_or("auth.jwt.secret is not set")?;
    // An empty previous secret means none: an empty HMAC key would let anyone sign.
    let previous = jwt
        .previous_secret
        .as_ref()
        .filter(|p| !p.expose().is_empty());
    let verifying = std::iter::once(secret)
        .chain(previous)
        .map(|secret| {
            let key = VerifyKey {
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
            };
            (hs256_kid(secret.expose().as_bytes()), key)
        })
        .collect();
    Ok(KeySet {
        algorithm: Algorithm::HS256,
        signing: EncodingKey::from_secret(secret.expose().as_bytes()),
        signing_kid: hs256_kid(secret.expose().as_bytes()),
        verifying,
        jwks: Vec::new(),
    })
}

/// The private key signs; the public key and every previous one verify and are published.
fn rs256_keys(jwt: &JwtSection) -> Result<KeySet, String> {
    let private_path = jwt
        .private_key
        .as_ref()
        .ok_or("auth.jwt.private_key is not set")?;
    let public_path = jwt
        .public_key
        .as_ref()
        .ok_or("auth.jwt.public_key is not set")?;
    let private_pem = std::fs::read(private_path)
        .map_err(|e| format!("cannot read {}: {e}", private_path.display()))?;
    let signing = EncodingKey::from_rsa_pem(&private_pem)
        .map_err(|e| format!("{} is not an RSA private key: {e}", private_path.display()))?;
    let mut set = KeySet {
        algorithm: Algorithm::RS256,
        signing,
        signing_kid: String::new(),
        verifying: HashMap::new(),
        jwks: Vec::new(),
    };
    for path in std::iter::once(public_path).chain(&jwt.previous_public_keys) {
        let (kid, key, jwk) = rs256_public(path)?;
        if set.signing_kid.is_empty() {
            set.signing_kid = kid.clone();
        }
        set.verifying.insert(kid, key);
        set.jwks.push(jwk);
    }
    Ok(set)
}

fn rs256_public(path: &std::path::Path) -> Result<(String, VerifyKey, Jwk), String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (n, e) = rsa_public_components(&pem)
        .ok_or_else(|| format!("{} is not an RSA public key", path.display()))?;
    let kid = mftplus_crypto::sha256_hex(&[n.as_slice(), e.as_slice()].concat())[..16].to_string();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let key = DecodingKey::from_rsa_components(&b64(&n), &b64(&e))
        .map_err(|e| format!("bad RSA key {}: {e}", path.display()))?;
    let jwk = Jwk {
        kty: "RSA".into(),
        kid: kid.clone(),
        use_: "sig".into(),
        alg: "RS256".into(),
        n: b64(&n),
        e: b64(&e),
    };
    let key = VerifyKey {
        algorithm: Algorithm::RS256,
        key,
    };
    Ok((kid, key, jwk))
}

pub(crate) fn hs256_kid(secret: &[u8]) -> String {
    let mut material = b"mftplus-hs256-kid:".to_vec();
    material.extend_from_slice(secret);
    mftplus_crypto::sha256_hex(&material)[..16].to_string()
}

/// Modulus and exponent of an RSA public key in PEM: `PUBLIC KEY` (SubjectPublicKeyInfo) or
/// `RSA PUBLIC KEY` (PKCS#1). A minimal DER walk: only what these two structures need.
pub fn rsa_public_components(pem: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (label, der) = pem_decode(pem)?;
    let pkcs1 = match label.as_str() {
        "RSA PUBLIC KEY" => der,
        "PUBLIC KEY" => {
            let (spki, _) = der_read(&der, 0x30)?;
            let (_algorithm, rest) = der_read(spki, 0x30)?;
            let (bits, _) = der_read(rest, 0x03)?;
            let (&unused, key) = bits.split_first()?;
            if unused != 0 {
                return None;
            }
            key.to_vec()
        }
        _ => return None,
    };
    let (seq, _) = der_read(&pkcs1, 0x30)?;
    let (n, rest) = der_read(seq, 0x02)?;
    let (e, _) = der_read(rest, 0x02)?;
    let strip = |bytes: &[u8]| {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        bytes[start..].to_vec()
    };
    Some((strip(n), strip(e)))
}

fn pem_decode(pem: &str) -> Option<(String, Vec<u8>)> {
    let begin = pem.find("-----BEGIN ")?;
    let rest = &pem[begin + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end = rest.find("-----END ")?;
    let body: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    Some((label, der))
}

/// Reads one TLV with the expected tag; returns its content and what follows it.
fn der_read(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&actual, rest) = input.split_first()?;
    if actual != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((&rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_base::Secret;

    fn hs_keys(secret: &str) -> JwtKeys {
        let section = JwtSection {
            secret: Some(Secret::new(secret)),
            ..JwtSection::default()
        };
        JwtKeys::from_config(&section).unwrap()
    }

    fn claims(now: i64) -> Claims {
        Claims {
            sub: "u1".into(),
            iss: "mftplus-server".into(),
            aud: "mftplus-api".into(),
            exp: now + 60,
            nbf: now,
            iat: now,
            jti: "j1".into(),
            role: "admin".into(),
            typ: "access".into(),
            fam: "f1".into(),
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let keys = hs_keys("a-development-secret-of-some-length");
        let token = keys.sign(&claims(1000)).unwrap();
        assert_eq!(keys.verify(&token, 1000).unwrap().sub, "u1");
        assert_eq!(keys.verify(&token, 1000 + 60 + 31), Err(JwtError::Expired));
        assert_eq!(keys.verify(&token, 1000 - 31), Err(JwtError::NotYetValid));
    }

    #[test]
    fn other_secret_is_unknown_key_and_tampering_breaks_signature() {
        let keys = hs_keys("a-development-secret-of-some-length");
        let other = hs_keys("another-development-secret-here!");
        let token = other.sign(&claims(1000)).unwrap();
        assert_eq!(keys.verify(&token, 1000), Err(JwtError::UnknownKey));

        let token = keys.sign(&claims(1000)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut forged = claims(1000);
        forged.role = "root".into();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            keys.verify(&parts.join("."), 1000),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn previous_secret_still_verifies() {
        let old = hs_keys("the-old-secret-that-was-rotated");
        let section = JwtSection {
            secret: Some(Secret::new("the-new-secret-after-rotation")),
            previous_secret: Some(Secret::new("the-old-secret-that-was-rotated")),
            ..JwtSection::default()
        };
        let new = JwtKeys::from_config(&section).unwrap();
        let token = old.sign(&claims(1000)).unwrap();
        assert!(new.verify(&token, 1000).is_ok());
    }
}
