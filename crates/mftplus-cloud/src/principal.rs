//! The caller as handlers take it: each principal the guard admits (`middleware.rs`) is an
//! extractor of its own type. A handler names the principal it needs in its signature; one
//! that is missing is a 401 with a stable code, never the 500 an absent request extension
//! would be, and `Option<…>` takes a principal a route admits in more than one way
//! (`Access::HostOr`). A transfer party ([`Party`], decision 0029) is either a user or a host.

use crate::auth::deploy_key::HubKey;
use crate::auth::reporter::Reporter;
use crate::auth::Caller;
use crate::ca::CertifiedBox;
use crate::error::ApiError;
use crate::middleware::{ClientIp, Scope};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use mftplus_store::TransferParty;
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

/// Who acts on an `Access::TransferParty` route (decision 0029): a user with the scope the
/// guard gave it, or a host's agent by its host key. Built from what the guard inserted, so a
/// route that admits both takes one typed principal.
#[derive(Debug, Clone)]
pub enum Party {
    User {
        caller: Caller,
        scope: Scope,
    },
    Host {
        host_id: String,
        customer_id: String,
    },
}

impl Party {
    /// The party as the store keys transfers' senders and recipients.
    pub fn store_party(&self) -> TransferParty {
        match self {
            Party::User { caller, .. } => TransferParty::User(caller.user_id.clone()),
            Party::Host { host_id, .. } => TransferParty::Agent(host_id.clone()),
        }
    }

    /// The audit log's actor: the user's email, or `host:<host_id>`.
    pub fn actor(&self) -> String {
        match self {
            Party::User { caller, .. } => caller.email.clone(),
            Party::Host { host_id, .. } => format!("host:{host_id}"),
        }
    }

    /// What the party may reach: a host only ever its own transfers.
    pub fn scope(&self) -> Scope {
        match self {
            Party::User { scope, .. } => *scope,
            Party::Host { .. } => Scope::Own,
        }
    }

    pub fn caller(&self) -> Option<&Caller> {
        match self {
            Party::User { caller, .. } => Some(caller),
            Party::Host { .. } => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Party {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let extensions = &parts.extensions;
        if let (Some(caller), Some(scope)) = (extensions.get::<Caller>(), extensions.get::<Scope>())
        {
            return Ok(Party::User {
                caller: caller.clone(),
                scope: *scope,
            });
        }
        match extensions.get::<Reporter>() {
            Some(Reporter::Host {
                host_id,
                customer_id,
            }) => Ok(Party::Host {
                host_id: host_id.clone(),
                customer_id: customer_id.clone(),
            }),
            _ => Err(ApiError::unauthenticated(
                "this route needs a user's token, an API key or a host key",
            )),
        }
    }
}

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
        let err = <Party as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::Unauthenticated,
            "a scope alone is no party"
        );
        parts.extensions.insert(Reporter::Guest {
            guest_id: "g".into(),
            host_id: "h".into(),
            customer_id: "c".into(),
        });
        let err = <Party as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthenticated, "a guest is no party");
        parts.extensions.insert(Reporter::Host {
            host_id: "h".into(),
            customer_id: "c".into(),
        });
        let party = <Party as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(party.store_party(), TransferParty::Agent("h".into()));
        assert_eq!(
            (party.actor().as_str(), party.scope()),
            ("host:h", Scope::Own)
        );
    }
}
