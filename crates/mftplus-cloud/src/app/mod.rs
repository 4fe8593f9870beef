//! The application layer: business flows that the API handlers and the dashboard both call,
//! so a rule (a throttle, an audit record, a validation) is written once. A flow takes typed
//! input and the acting principal and answers with store rows or an `ApiError`; the callers
//! only translate to and from their wire (JSON or HTML).

pub mod api_keys;
pub mod audit;
pub mod customers;
pub mod deploy_keys;
pub mod desired;
pub mod events;
pub mod fleet;
pub mod grants;
pub mod links;
pub mod recovery;
pub mod requests;
pub mod sign_in;
pub mod tokens;
pub mod transfers;
pub mod users;
