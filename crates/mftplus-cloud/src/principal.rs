//! The caller as handlers take it: each principal the guard admits (`middleware.rs`) is an
//! extractor of its own type. A handler names the principal it needs in its signature; one
//! that is missing is a 401 with a stable code, never the 500 an absent request extension
//! would be, and `Option<…>` takes a principal a route admits in more than one way
//! (`Access::HostOr`).

use crate::auth::deploy_key::HubKey;
use crate::auth::reporter::Reporter;
use crate::auth::Caller;
use crate::ca::CertifiedBox;
use crate::error::ApiError;
use crate::middleware::{ClientIp, Scope};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use std::convert::Infallible;

macro_rules! admitted_by_the_guard {
    ($principal:ty, $needs:literal) => {
        impl<S: Send + Sync> FromRequestParts<S> for $principal {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
                parts
                    .extensions
                    .get::<$principal>()
                    .cloned()
                    .ok_or_else(|| ApiError::unauthenticated(concat!("this route needs ", $needs)))
            }
        }

        impl<S: Send + Sync> OptionalFromRequestParts<S> for $principal {
            type Rejection = Infallible;

            async fn from_request_parts(
                parts: &mut Parts,
                _: &S,
            ) -> Result<Option<Self>, Infallible> {
                Ok(parts.extensions.get::<$principal>().cloned())
            }
        }
    };
}

admitted_by_the_guard!(Caller, "a user's token or an API key");
admitted_by_the_guard!(Reporter, "a host or guest key");
admitted_by_the_guard!(HubKey, "an edge hub's deploy key or certificate");
admitted_by_the_guard!(CertifiedBox, "a box's client certificate");
admitted_by_the_guard!(Scope, "a user's token or an API key");
admitted_by_the_guard!(ClientIp, "the client's address");

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_types::ErrorCode;

    #[tokio::test]
    async fn a_missing_principal_is_401_and_an_optional_one_is_none() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let err = <Caller as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthenticated);
        let err = <Reporter as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthenticated);
        let none = <Caller as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert!(none.is_none());
        parts.extensions.insert(Scope::Own);
        let scope = <Scope as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(scope, Scope::Own);
    }
}
