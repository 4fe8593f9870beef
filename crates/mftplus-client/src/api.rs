//! One method per API route. Bodies and answers are the wire types of `mftplus_types::api`.

use mftplus_types::api::{
    ApiKey, AuditPage, ChangePasswordRequest, ConfigValue, CreateApiKeyRequest, CreateTokenRequest,
    CreateUserRequest, CreatedApiKey, CreatedToken, CreatedUser, Health, Jwks, LoginRequest,
    PasswordChanged, PasswordReset, RefreshRequest, ResetPasswordRequest, ResolveApiKeyRequest,
    RevokedCount, Status, TokenInfo, TokenPair, UpdateUserRequest, User,
};
use mftplus_types::routes::{self, fill};

use crate::{Client, ClientError, Method};

impl Client {
    /// `GET /health`: liveness, no credential needed.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.fetch(self.builder(Method::GET, routes::HEALTH)).await
    }

    /// `GET /api/v1/health`: liveness plus the database's state.
    pub async fn api_health(&self) -> Result<Health, ClientError> {
        self.fetch(self.builder(Method::GET, routes::API_HEALTH))
            .await
    }

    pub async fn jwks(&self) -> Result<Jwks, ClientError> {
        self.fetch(self.builder(Method::GET, routes::JWKS)).await
    }

    /// `GET /api/v1/status`: server facts and who the credential belongs to.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.fetch(self.builder(Method::GET, routes::STATUS)).await
    }

    pub async fn login(&self, request: LoginRequest) -> Result<TokenPair, ClientError> {
        self.fetch(
            self.builder(Method::POST, routes::AUTH_LOGIN)
                .json(&request),
        )
        .await
    }

    pub async fn refresh(&self, request: RefreshRequest) -> Result<TokenPair, ClientError> {
        self.fetch(
            self.builder(Method::POST, routes::AUTH_REFRESH)
                .json(&request),
        )
        .await
    }

    /// Revokes the session of the bearer token this client uses.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.fetch_nothing(self.builder(Method::POST, routes::AUTH_LOGOUT))
            .await
    }

    /// `POST /api/v1/auth/password`: the signed-in person's own password. Needs a session
    /// (bearer token); an API key is refused with 403.
    pub async fn change_password(
        &self,
        request: ChangePasswordRequest,
    ) -> Result<PasswordChanged, ClientError> {
        self.fetch(
            self.builder(Method::POST, routes::AUTH_PASSWORD)
                .json(&request),
        )
        .await
    }

    /// Tokens of one user (email or id), or of every user when `None` (admins only).
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, ClientError> {
        let mut builder = self.builder(Method::GET, routes::AUTH_TOKENS);
        if let Some(user) = user {
            builder = builder.query(&[("user", user)]);
        }
        self.fetch(builder).await
    }

    pub async fn create_token(
        &self,
        request: CreateTokenRequest,
    ) -> Result<CreatedToken, ClientError> {
        self.fetch(
            self.builder(Method::POST, routes::AUTH_TOKENS)
                .json(&request),
        )
        .await
    }

    pub async fn revoke_token(&self, token_id: &str) -> Result<(), ClientError> {
        let path = fill(routes::AUTH_TOKEN, "token_id", token_id);
        self.fetch_nothing(self.builder(Method::DELETE, &path))
            .await
    }

    /// Revokes every token of a user (email or id).
    pub async fn revoke_user_tokens(&self, user: &str) -> Result<RevokedCount, ClientError> {
        let path = fill(routes::USER_TOKENS, "user", user);
        self.fetch(self.builder(Method::DELETE, &path)).await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, ClientError> {
        self.fetch(self.builder(Method::GET, routes::USERS)).await
    }

    pub async fn create_user(
        &self,
        request: CreateUserRequest,
    ) -> Result<CreatedUser, ClientError> {
        self.fetch(self.builder(Method::POST, routes::USERS).json(&request))
            .await
    }

    /// `user` is an id or an email.
    pub async fn get_user(&self, user: &str) -> Result<User, ClientError> {
        let path = fill(routes::USER, "user", user);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    pub async fn update_user(
        &self,
        user: &str,
        request: UpdateUserRequest,
    ) -> Result<User, ClientError> {
        let path = fill(routes::USER, "user", user);
        self.fetch(self.builder(Method::PATCH, &path).json(&request))
            .await
    }

    /// Sets a user's (email or id) password, or has the server generate one when
    /// `request.password` is `None`; the generated one is in the answer, once.
    pub async fn reset_password(
        &self,
        user: &str,
        request: ResetPasswordRequest,
    ) -> Result<PasswordReset, ClientError> {
        let path = fill(routes::USER_PASSWORD, "user", user);
        self.fetch(self.builder(Method::POST, &path).json(&request))
            .await
    }

    pub async fn delete_user(&self, user: &str) -> Result<(), ClientError> {
        let path = fill(routes::USER, "user", user);
        self.fetch_nothing(self.builder(Method::DELETE, &path))
            .await
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, ClientError> {
        self.fetch(self.builder(Method::GET, routes::API_KEYS))
            .await
    }

    pub async fn create_api_key(
        &self,
        request: CreateApiKeyRequest,
    ) -> Result<CreatedApiKey, ClientError> {
        self.fetch(self.builder(Method::POST, routes::API_KEYS).json(&request))
            .await
    }

    /// Finds a key by its full secret. The secret travels in the body so it never lands in an
    /// access log the way a URL would.
    pub async fn resolve_api_key(&self, key: &str) -> Result<ApiKey, ClientError> {
        let body = ResolveApiKeyRequest {
            key: key.to_string(),
        };
        self.fetch(
            self.builder(Method::POST, routes::API_KEYS_RESOLVE)
                .json(&body),
        )
        .await
    }

    pub async fn get_api_key(&self, id: &str) -> Result<ApiKey, ClientError> {
        let path = fill(routes::API_KEY, "id", id);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    pub async fn delete_api_key(&self, id: &str) -> Result<(), ClientError> {
        let path = fill(routes::API_KEY, "id", id);
        self.fetch_nothing(self.builder(Method::DELETE, &path))
            .await
    }

    /// Replaces a key's secret; the answer holds the new one, shown this once.
    pub async fn rotate_api_key(&self, id: &str) -> Result<CreatedApiKey, ClientError> {
        let path = fill(routes::API_KEY_ROTATE, "id", id);
        self.fetch(self.builder(Method::POST, &path)).await
    }

    /// The effective server setting `key` (dotted, e.g. `rbac.enabled`); secrets come back
    /// without their value.
    pub async fn server_config(&self, key: &str) -> Result<ConfigValue, ClientError> {
        let path = fill(routes::SERVER_CONFIG, "key", key);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    /// Entries with `seq > after_seq`, oldest first, at most `limit` of them.
    pub async fn audit_page(&self, after_seq: i64, limit: u32) -> Result<AuditPage, ClientError> {
        let builder = self.builder(Method::GET, routes::AUDIT).query(&[
            ("after_seq", after_seq.to_string()),
            ("limit", limit.to_string()),
        ]);
        self.fetch(builder).await
    }

    /// The whole audit log as the server renders it; `format` is `csv` or `json`.
    pub async fn audit_export(&self, format: &str) -> Result<String, ClientError> {
        let builder = self
            .builder(Method::GET, routes::AUDIT_EXPORT)
            .query(&[("format", format)]);
        let body = self.exchange(builder).await?;
        String::from_utf8(body).map_err(|e| ClientError::Decode(e.to_string()))
    }
}
