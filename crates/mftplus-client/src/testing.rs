//! For integration tests of other crates: the people a test acts as, made through the API as an
//! administrator would make them.

use crate::{Client, ClientError, Credential};
use mftplus_types::api::{
    CreateApiKeyRequest, CreateUserRequest, CreatedApiKey, LoginRequest, TokenPair,
};

/// Creates `email` (role `user`) with `password` through `admin`, then signs them in.
pub async fn new_signed_in_user(
    admin: &Client,
    email: &str,
    password: &str,
) -> Result<TokenPair, ClientError> {
    admin
        .create_user(CreateUserRequest {
            email: email.into(),
            name: String::new(),
            role: Some("user".into()),
            user_type: None,
            password: Some(password.into()),
        })
        .await?;
    admin
        .with_credential(Credential::None)
        .login(LoginRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
}

/// [`new_signed_in_user`], then an API key of theirs named `key_name`, valid for a day.
pub async fn new_user_with_api_key(
    admin: &Client,
    email: &str,
    password: &str,
    key_name: &str,
) -> Result<CreatedApiKey, ClientError> {
    let session = new_signed_in_user(admin, email, password).await?;
    admin
        .with_credential(Credential::Bearer(session.access_token))
        .create_api_key(CreateApiKeyRequest {
            name: key_name.into(),
            role: None,
            expires: Some("1d".into()),
        })
        .await
}
