//! Who is calling: resolves an API key or a JWT to a [`Caller`], and issues tokens.
//! Authorization (what the caller may do) is in `crate::middleware` and `crate::rbac`.

pub mod cache;
pub mod deploy_key;
pub mod jwt;
pub mod keyring;
pub mod reporter;

use crate::error::ApiError;
use crate::state::AppState;
use jwt::{Claims, JwtError};
use mftplus_store::{ApiKeyRow, TokenRow, UserRow};
use mftplus_types::ErrorCode;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    Jwt {
        jti: String,
        family: String,
        expires_at: i64,
    },
    ApiKey {
        id: String,
        expires_at_ms: Option<i64>,
    },
    /// A dashboard session (`crate::web::session`): the cookie's row and the CSRF token its
    /// forms must carry.
    Session { jti: String, csrf: String },
}

/// An authenticated principal: a user acting through a JWT or one of its API keys.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub email: String,
    /// Effective role: the credential's, capped by the owner's current role.
    pub role: String,
    pub kind: CallerKind,
}

impl Caller {
    /// The subject of per-credential rate limiting: the user for JWTs, the key for API keys.
    pub fn credential_id(&self) -> (&'static str, &str) {
        match &self.kind {
            CallerKind::Jwt { .. } | CallerKind::Session { .. } => ("user", &self.user_id),
            CallerKind::ApiKey { id, .. } => ("key", id),
        }
    }
}

/// Where a credential was found, if anywhere.
pub enum Presented<'a> {
    None,
    ApiKey(&'a str),
    Jwt(&'a str),
}

pub fn presented(headers: &http::HeaderMap) -> Presented<'_> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Presented::ApiKey(key.trim());
    }
    let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Presented::None;
    };
    let token = match auth.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Presented::Jwt(""),
    };
    if token.starts_with(mftplus_types::API_KEY_PREFIX) {
        Presented::ApiKey(token)
    } else {
        Presented::Jwt(token)
    }
}

fn denied(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(code, message)
}

impl AppState {
    /// `Ok(None)` when no credential was presented; an error when one was and it is not good.
    pub async fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<Caller>, ApiError> {
        match presented(headers) {
            Presented::None => Ok(None),
            Presented::ApiKey(key) => self.authenticate_api_key(key).await.map(Some),
            Presented::Jwt(token) => self.authenticate_jwt(token).await.map(Some),
        }
    }

    async fn authenticate_api_key(&self, key: &str) -> Result<Caller, ApiError> {
        if !self.config.config.api_keys.enabled {
            return Err(denied(
                ErrorCode::Unauthenticated,
                "API keys are disabled on this server",
            ));
        }
        let digest = mftplus_crypto::api_key_digest(key);
        let row = match self.cache.keys.get(&digest) {
            Some(row) => row,
            None => {
                let row = self.store.get_api_key_by_hash(&hex::encode(digest)).await?;
                let Some(row) = row else {
                    return Err(denied(ErrorCode::Unauthenticated, "unknown API key"));
                };
                let row = Arc::new(row);
                self.cache.keys.insert(digest, row.clone());
                row
            }
        };
        let now = self.clock.now_ms();
        check_api_key_usable(&row, now)?;
        let user = self.user_for_credential(&row.owner_id).await?;
        self.record_key_use(&row.id, now);
        Ok(Caller {
            role: crate::rbac::effective_role(
                &row.role,
                &self.rbac.user_role(&user.email, &user.role),
            ),
            user_id: user.id.clone(),
            email: user.email.clone(),
            kind: CallerKind::ApiKey {
                id: row.id.clone(),
                expires_at_ms: row.expires_at_ms,
            },
        })
    }

    async fn authenticate_jwt(&self, token: &str) -> Result<Caller, ApiError> {
        if token.is_empty() {
            return Err(denied(
                ErrorCode::Unauthenticated,
                "use Authorization: Bearer <token> or X-API-Key",
            ));
        }
        let claims = self.verified_claims(token)?;
        if claims.typ != "access" {
            return Err(denied(
                ErrorCode::Unauthenticated,
                "a refresh token cannot be used as an access token",
            ));
        }
        let record = self.token_record(&claims.jti).await?;
        if record.revoked_at_ms.is_some() {
            return Err(denied(ErrorCode::TokenRevoked, "token has been revoked"));
        }
        if record.user_id != claims.sub {
            return Err(denied(
                ErrorCode::Unauthenticated,
                "token does not match its record",
            ));
        }
        let user = self.user_for_credential(&claims.sub).await?;
        Ok(Caller {
            role: crate::rbac::effective_role(
                &claims.role,
                &self.rbac.user_role(&user.email, &user.role),
            ),
            user_id: user.id.clone(),
            email: user.email.clone(),
            kind: CallerKind::Jwt {
                jti: claims.jti.clone(),
                family: claims.fam.clone(),
                expires_at: claims.exp,
            },
        })
    }

    /// Signature verification costs microseconds; a token already verified by this process is
    /// recognised by its exact bytes and only its time window is checked again.
    fn verified_claims(&self, token: &str) -> Result<Arc<Claims>, ApiError> {
        let now = self.clock.now_secs();
        let keys = self.jwt.current();
        if let Some(cached) = self.cache.verified.get(token) {
            let (claims, verified_by) = &*cached;
            if verified_by
                .upgrade()
                .is_some_and(|by| Arc::ptr_eq(&by, &keys))
            {
                keys.check_times(claims, now).map_err(jwt_error)?;
                return Ok(claims.clone());
            }
        }
        let claims = Arc::new(keys.verify(token, now).map_err(jwt_error)?);
        self.cache.verified.insert(
            token.to_string(),
            Arc::new((claims.clone(), Arc::downgrade(&keys))),
        );
        Ok(claims)
    }

    async fn token_record(&self, jti: &str) -> Result<Arc<TokenRow>, ApiError> {
        let jti = jti.to_string();
        if let Some(row) = self.cache.tokens.get(&jti) {
            return Ok(row);
        }
        let row =
            self.store.get_token(&jti).await?.ok_or_else(|| {
                denied(ErrorCode::TokenRevoked, "token is not known to this server")
            })?;
        let row = Arc::new(row);
        self.cache.tokens.insert(jti.to_string(), row.clone());
        Ok(row)
    }

    async fn user_for_credential(&self, user_id: &str) -> Result<Arc<UserRow>, ApiError> {
        if let Some(user) = self.cache.users.get(user_id) {
            return Ok(user);
        }
        let user = self.store.get_user(user_id).await?.ok_or_else(|| {
            denied(
                ErrorCode::Unauthenticated,
                "the credential's user no longer exists",
            )
        })?;
        let user = Arc::new(user);
        self.cache.users.insert(user_id.to_string(), user.clone());
        Ok(user)
    }

    /// Only allocates the first time a key is seen between two flushes.
    fn record_key_use(&self, id: &str, now_ms: i64) {
        let mut uses = mftplus_base::sync::lock(&self.key_uses);
        match uses.get_mut(id) {
            Some(stamp) => *stamp = now_ms,
            None => {
                uses.insert(id.to_string(), now_ms);
            }
        }
    }

    /// Writes the batched last-use stamps of API keys.
    pub async fn flush_key_uses(&self) -> Result<(), mftplus_store::StoreError> {
        let batch: Vec<(String, i64)> = {
            let mut uses = mftplus_base::sync::lock(&self.key_uses);
            uses.drain().collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        self.store.touch_api_keys(&batch).await
    }

    /// Issues and records a signed token.
    pub async fn issue_token(
        &self,
        user: &UserRow,
        role: &str,
        kind: &str,
        family: &str,
        created_via: &str,
        ttl_secs: u64,
    ) -> Result<(String, TokenRow), ApiError> {
        let now_ms = self.clock.now_ms();
        let now = now_ms.div_euclid(1000);
        let claims = Claims {
            sub: user.id.clone(),
            iss: self.jwt.current().issuer().to_string(),
            aud: self.jwt.current().audience().to_string(),
            exp: now + ttl_secs as i64,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            role: role.to_string(),
            typ: kind.to_string(),
            fam: family.to_string(),
        };
        let row = TokenRow {
            jti: claims.jti.clone(),
            user_id: user.id.clone(),
            kind: kind.to_string(),
            role: role.to_string(),
            family_id: family.to_string(),
            created_via: created_via.to_string(),
            issued_at_ms: now_ms,
            expires_at_ms: claims.exp * 1000,
            revoked_at_ms: None,
            used_at_ms: None,
        };
        self.store.insert_token(&row).await?;
        let token = self
            .jwt
            .current()
            .sign(&claims)
            .map_err(ApiError::internal)?;
        Ok((token, row))
    }

    /// Forgets a revoked key at once (the cache is keyed by the raw digest of the stored hash).
    pub fn forget_api_key(&self, key_hash_hex: &str) {
        match hex::decode(key_hash_hex)
            .ok()
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
        {
            Some(digest) => self.cache.keys.remove(&digest),
            None => self.cache.keys.clear(),
        }
    }

    /// Forgets cached credential state after a change made through this process.
    pub fn invalidate_user(&self, user_id: &str) {
        self.cache.users.remove(&user_id.to_string());
        // Token and key rows of this user may have been revoked in bulk.
        self.cache.tokens.clear();
        self.cache.keys.clear();
    }
}

pub fn check_api_key_usable(row: &ApiKeyRow, now_ms: i64) -> Result<(), ApiError> {
    if row.revoked_at_ms.is_some() {
        return Err(denied(ErrorCode::TokenRevoked, "API key has been revoked"));
    }
    if row.expires_at_ms.is_some_and(|at| at <= now_ms) {
        return Err(denied(ErrorCode::TokenExpired, "API key has expired"));
    }
    Ok(())
}

fn jwt_error(err: JwtError) -> ApiError {
    match err {
        JwtError::Expired => denied(ErrorCode::TokenExpired, "token has expired"),
        other => denied(ErrorCode::Unauthenticated, &other.to_string()),
    }
}
