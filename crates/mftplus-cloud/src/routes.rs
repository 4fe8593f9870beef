//! The route table: every endpoint of the cloud with the access it requires. The router is built
//! from this table and nothing else, so a route cannot exist without declaring its access, and
//! the authorization tests iterate the same table.

use crate::handlers::fleet::{
    customers, desired, enroll, events, hosts, keys as host_keys, ops, reports,
};
use crate::handlers::{
    apikeys, audit, auth, certificates, config, grants, health, hubs, keys, passwords, site,
    tokens, transfers, users,
};
use crate::middleware::{guard, RouteCtx};
use crate::state::AppState;
use crate::web;
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use http::Method;
use mftplus_types::routes as paths;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential needed. Kept to health, key discovery and the login exchange.
    Public,
    /// Any valid credential.
    Authenticated,
    /// The role must grant this permission.
    Permission(&'static str),
    /// `all` grants every resource; `own` only the caller's (handlers filter by [`crate::middleware::Scope`]).
    Scoped {
        all: &'static str,
        own: &'static str,
    },
    /// A host key (agent). A `{host_id}` in the path must be the key's own host (else 403).
    Host,
    /// A guest key (controller).
    Guest,
    /// A host key for its own host, or a user whose role grants the permission.
    HostOr(&'static str),
    /// A transfer party (decision 0029): a host key of any host, which the handler confines to
    /// the transfers it sent or receives and to its own customer's hosts (a `{host_id}` in the
    /// path is the host acted on, not the caller), or a user admitted as the inner access says
    /// (`Permission` or `Scoped`). Handlers take a [`crate::principal::Party`].
    TransferParty(&'static Access),
    /// No user credential: the handler checks the customer's retrieval password, rate limited
    /// and audited (enrollment, re-enrollment, controller config).
    RetrievalPassword,
    /// A client certificate from the built-in CA, presented over mutual TLS and not revoked:
    /// the box it names is the caller (renewal).
    Certificate,
    /// An edge hub's deploy key (`mft_dep_…`), never a user credential. A `{hub_id}` in the
    /// path must be a hub registered under this key (else 403); a revoked key is 401
    /// `token_revoked`.
    DeployKey,
}

#[derive(Debug)]
pub struct RouteSpec {
    /// Stable name, used in metrics and tests.
    pub id: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

const TOKENS: Access = Access::Scoped {
    all: "tokens:manage",
    own: "tokens:manage:own",
};
const SEND: Access = Access::Permission("transfers:create");
const READ: Access = Access::Scoped {
    all: "transfers:read",
    own: "transfers:read:own",
};
/// Sending and receiving, for users as above and for hosts' agents (decision 0029).
const PARTY_SEND: Access = Access::TransferParty(&SEND);
const PARTY_READ: Access = Access::TransferParty(&READ);
const CANCEL: Access = Access::Scoped {
    all: "transfers:cancel",
    own: "transfers:cancel:own",
};
const KEYS: Access = Access::Scoped {
    all: "apikeys:manage",
    own: "apikeys:manage:own",
};

const FLEET_READ: Access = Access::Permission("fleet:read");
const FLEET_MANAGE: Access = Access::Permission("fleet:manage");
const HUBS_READ: Access = Access::Permission("hubs:read");
const HUBS_MANAGE: Access = Access::Permission("hubs:manage");

macro_rules! table {
    ($($id:literal $method:ident $path:expr => $access:expr;)*) => {
        pub static ROUTES: &[RouteSpec] = &[
            $(RouteSpec { id: $id, method: Method::$method, path: $path, access: $access },)*
        ];
    };
}

table! {
    "health"              GET    paths::HEALTH => Access::Public;
    "api_health"          GET    paths::API_HEALTH => Access::Public;
    "jwks"                GET    paths::JWKS => Access::Public;
    "openapi"             GET    paths::OPENAPI => Access::Public;
    "auth_login"          POST   paths::AUTH_LOGIN => Access::Public;
    "auth_refresh"        POST   paths::AUTH_REFRESH => Access::Public;
    "auth_logout"         POST   paths::AUTH_LOGOUT => Access::Authenticated;
    "status"              GET    paths::STATUS => Access::Authenticated;
    "auth_whoami"         GET    paths::AUTH_WHOAMI => Access::Authenticated;
    "auth_password"       POST   paths::AUTH_PASSWORD => Access::Authenticated;
    "tokens_list"         GET    paths::AUTH_TOKENS => TOKENS;
    "tokens_create"       POST   paths::AUTH_TOKENS => Access::Permission("tokens:manage");
    "tokens_revoke"       DELETE paths::AUTH_TOKEN => TOKENS;
    "user_tokens_revoke"  DELETE paths::USER_TOKENS => TOKENS;
    "users_list"          GET    paths::USERS => Access::Permission("users:read");
    "users_create"        POST   paths::USERS => Access::Permission("users:manage");
    "users_get"           GET    paths::USER => Access::Scoped { all: "users:read", own: "users:read:own" };
    "users_update"        PATCH  paths::USER => Access::Permission("users:manage");
    "users_delete"        DELETE paths::USER => Access::Permission("users:manage");
    "users_password"      POST   paths::USER_PASSWORD => Access::Permission("users:manage");
    "apikeys_list"        GET    paths::API_KEYS => KEYS;
    "apikeys_create"      POST   paths::API_KEYS => KEYS;
    "apikeys_resolve"     POST   paths::API_KEYS_RESOLVE => KEYS;
    "apikeys_get"         GET    paths::API_KEY => KEYS;
    "apikeys_delete"      DELETE paths::API_KEY => KEYS;
    "apikeys_rotate"      POST   paths::API_KEY_ROTATE => KEYS;
    "server_config_get"   GET    paths::SERVER_CONFIG => Access::Permission("config:read");
    "my_key_put"          PUT    paths::MY_KEY => Access::Authenticated;
    "user_key_get"        GET    paths::USER_KEY => PARTY_SEND;
    // Hosts as transfer parties (decision 0029): the agent registers its key; senders read it.
    "host_transfer_key_put" PUT  paths::HOST_TRANSFER_KEY => Access::Host;
    "host_transfer_key_get" GET  paths::HOST_TRANSFER_KEY => PARTY_SEND;
    "transfers_create"    POST   paths::TRANSFERS => PARTY_SEND;
    "transfer_chunk_put"  PUT    paths::TRANSFER_CHUNK => PARTY_SEND;
    "transfer_chunks"     GET    paths::TRANSFER_CHUNKS => PARTY_SEND;
    "transfer_complete"   POST   paths::TRANSFER_COMPLETE => PARTY_SEND;
    "transfers_list"      GET    paths::TRANSFERS => PARTY_READ;
    "transfer_show"       GET    paths::TRANSFER => PARTY_READ;
    "transfer_header"     GET    paths::TRANSFER_HEADER => PARTY_READ;
    "transfer_chunk_get"  GET    paths::TRANSFER_CHUNK => PARTY_READ;
    "transfer_manifest"   GET    paths::TRANSFER_MANIFEST => PARTY_READ;
    "transfer_stream"     GET    paths::TRANSFER_STREAM => PARTY_READ;
    "transfer_verify"     POST   paths::TRANSFER_VERIFY => READ;
    "transfer_received"   POST   paths::TRANSFER_RECEIVED => PARTY_READ;
    "transfer_cancel"     POST   paths::TRANSFER_CANCEL => CANCEL;
    // Any credential: the caller's own sent transfers only (an mftctl run looks on its own).
    "transfers_pending_grants" GET paths::PENDING_GRANTS => Access::Authenticated;
    "transfer_grant"      POST   paths::TRANSFER_GRANTS => SEND;
    "audit_list"          GET    paths::AUDIT => Access::Permission("logs:read");
    "audit_export"        GET    paths::AUDIT_EXPORT => Access::Permission("logs:read");
    "audit_verify"        POST   paths::AUDIT_VERIFY => Access::Permission("logs:read");
    // Share links (decision 0023): the sender's three, then the public ones a link's page
    // calls (rate limited per address, audited; chunks need the open's ticket).
    "transfer_links_create" POST paths::TRANSFER_LINKS => SEND;
    "transfer_links_list" GET    paths::TRANSFER_LINKS => READ;
    "link_revoke"         POST   paths::LINK_REVOKE => CANCEL;
    "shared_get"          GET    paths::SHARED => Access::Public;
    "shared_open"         POST   paths::SHARED_OPEN => Access::Public;
    "shared_chunk"        GET    paths::SHARED_CHUNK => Access::Public;
    // File requests (decision 0034): the owner's three, then the public ones a request's
    // page calls (the token in the path is the capability; lookups rate limited per address,
    // uploads counted and audited).
    "file_requests_create" POST  paths::FILE_REQUESTS => SEND;
    "file_requests_list"  GET    paths::FILE_REQUESTS => READ;
    "file_request_revoke" POST   paths::FILE_REQUEST_REVOKE => CANCEL;
    "requested_get"       GET    paths::REQUESTED => Access::Public;
    "requested_start"     POST   paths::REQUESTED_TRANSFERS => Access::Public;
    "requested_chunks"    GET    paths::REQUESTED_CHUNKS => Access::Public;
    "requested_chunk_put" PUT    paths::REQUESTED_CHUNK => Access::Public;
    "requested_complete"  POST   paths::REQUESTED_COMPLETE => Access::Public;
    "host_report"         POST   paths::HOST_REPORT => Access::Host;
    "guest_report"        POST   paths::GUEST_REPORT => Access::Guest;
    "host_desired_get"    GET    paths::HOST_DESIRED_STATE => Access::HostOr("fleet:read");
    "host_signed_ops"     GET    paths::HOST_SIGNED_OPS => Access::Host;
    "host_op_status"      POST   paths::HOST_SIGNED_OP_STATUS => Access::Host;
    "host_escrow_put"     PUT    paths::HOST_ESCROW => Access::Host;
    "host_guest_mint"     POST   paths::HOST_GUESTS => Access::Host;
    "host_key_rotate"     POST   paths::HOST_KEY_ROTATE => Access::Host;
    "enroll"              POST   paths::ENROLL => Access::RetrievalPassword;
    "host_re_enroll"      POST   paths::HOST_RE_ENROLL => Access::RetrievalPassword;
    "customer_config"     GET    paths::CUSTOMER_CONFIG => Access::RetrievalPassword;
    "customers_list"      GET    paths::CUSTOMERS => FLEET_READ;
    "customers_create"    POST   paths::CUSTOMERS => FLEET_MANAGE;
    "customers_get"       GET    paths::CUSTOMER => FLEET_READ;
    "customers_update"    PATCH  paths::CUSTOMER => FLEET_MANAGE;
    "customers_delete"    DELETE paths::CUSTOMER => FLEET_MANAGE;
    "customer_block"      POST   paths::CUSTOMER_BLOCK => FLEET_MANAGE;
    "customer_unblock"    POST   paths::CUSTOMER_UNBLOCK => FLEET_MANAGE;
    "customer_retrieval_password_reset" POST paths::CUSTOMER_RETRIEVAL_PASSWORD_RESET => FLEET_MANAGE;
    "customer_trigger_update" POST paths::CUSTOMER_TRIGGER_UPDATE => FLEET_MANAGE;
    "customer_geo_remove_all" POST paths::CUSTOMER_GEO_REMOVE_ALL => FLEET_MANAGE;
    "hosts_list"          GET    paths::HOSTS => FLEET_READ;
    "hosts_get"           GET    paths::HOST => FLEET_READ;
    "host_desired_put"    PUT    paths::HOST_DESIRED_STATE => FLEET_MANAGE;
    "host_desired_diff"   POST   paths::HOST_DESIRED_DIFF => FLEET_READ;
    "host_reports"        GET    paths::HOST_REPORTS => FLEET_READ;
    "host_recovery_arm"   POST   paths::HOST_RECOVERY => FLEET_MANAGE;
    "host_recovery_disarm" DELETE paths::HOST_RECOVERY => FLEET_MANAGE;
    "host_key_rotation_request" POST paths::HOST_KEY_ROTATION => FLEET_MANAGE;
    "guests_list"         GET    paths::GUESTS => FLEET_READ;
    "ops_list"            GET    paths::OPS => FLEET_READ;
    "ops_get"             GET    paths::OP => FLEET_READ;
    "op_sign"             PUT    paths::OP_SIGNATURE => Access::Permission("ops:sign");
    "events_list"         GET    paths::EVENTS => FLEET_READ;
    "notifications_list"  GET    paths::NOTIFICATIONS => FLEET_READ;
    "ca_roots"            GET    paths::CA_ROOTS => Access::Public;
    "ca_crl"              GET    paths::CA_CRL => Access::Public;
    "ca_status"           GET    paths::CA => Access::Permission("certificates:read");
    "ca_rotate"           POST   paths::CA_ROTATE => Access::Permission("certificates:rotate");
    "ca_retire"           POST   paths::CA_RETIRE => Access::Permission("certificates:rotate");
    "certificates_list"   GET    paths::CERTIFICATES => Access::Permission("certificates:read");
    "certificates_issue"  POST   paths::CERTIFICATES => Access::HostOr("certificates:issue");
    "certificates_renew"  POST   paths::CERTIFICATES_RENEW => Access::Certificate;
    "certificate_revoke"  POST   paths::CERTIFICATE_REVOKE => Access::Permission("certificates:revoke");
    "hubs_register"       POST   paths::HUBS_REGISTER => Access::DeployKey;
    "hub_heartbeat"       POST   paths::HUB_HEARTBEAT => Access::DeployKey;
    "hub_certificate"     POST   paths::HUB_CERTIFICATE => Access::DeployKey;
    "hub_validate"        POST   paths::HUB_VALIDATE => Access::DeployKey;
    "hub_site_live"       POST   paths::HUB_SITE_TRANSFERS_LIVE => Access::DeployKey;
    "hubs_list"           GET    paths::HUBS => HUBS_READ;
    "hubs_get"            GET    paths::HUB => HUBS_READ;
    "deploy_keys_list"    GET    paths::DEPLOY_KEYS => HUBS_READ;
    "deploy_keys_create"  POST   paths::DEPLOY_KEYS => HUBS_MANAGE;
    "deploy_keys_revoke"  DELETE paths::DEPLOY_KEY => HUBS_MANAGE;
    "deploy_keys_rotate"  POST   paths::DEPLOY_KEY_ROTATE => HUBS_MANAGE;
    // The dashboard (crate::web): a session cookie is the credential here, never on the API.
    "web_home"            GET    "/" => Access::Authenticated;
    "web_login"           GET    "/login" => Access::Public;
    "web_login_submit"    POST   "/login" => Access::Public;
    "web_logout"          POST   "/logout" => Access::Authenticated;
    "web_asset"           GET    "/static/{name}" => Access::Public;
    "web_hubs"            GET    "/hubs" => HUBS_READ;
    "web_live_hubs"       GET    "/live/hubs" => HUBS_READ;
    "web_hub"             GET    "/hubs/{hub_id}" => HUBS_READ;
    "web_deploy_key_create" POST "/hubs/deploy-keys" => HUBS_MANAGE;
    "web_deploy_key_revoke" POST "/hubs/deploy-keys/{id}/revoke" => HUBS_MANAGE;
    "web_customers"       GET    "/customers" => FLEET_READ;
    "web_live_customers"  GET    "/live/customers" => FLEET_READ;
    "web_hosts"           GET    "/hosts" => FLEET_READ;
    "web_live_hosts"      GET    "/live/hosts" => FLEET_READ;
    "web_host"            GET    "/hosts/{host_id}" => FLEET_READ;
    "web_ops"             GET    "/ops" => FLEET_READ;
    "web_live_ops"        GET    "/live/ops" => FLEET_READ;
    "web_users"           GET    "/users" => Access::Permission("users:read");
    "web_user_create"     POST   "/users" => Access::Permission("users:manage");
    "web_user"            GET    "/users/{user_id}" => Access::Scoped { all: "users:read", own: "users:read:own" };
    "web_user_update"     POST   "/users/{user_id}/role" => Access::Permission("users:manage");
    "web_user_password"   POST   "/users/{user_id}/password" => Access::Permission("users:manage");
    "web_user_delete"     POST   "/users/{user_id}/delete" => Access::Permission("users:manage");
    "web_user_tokens_revoke" POST "/users/{user_id}/tokens/revoke" => TOKENS;
    "web_api_keys"        GET    "/keys" => KEYS;
    "web_api_key_create"  POST   "/keys" => KEYS;
    "web_api_key_rotate"  POST   "/keys/{key_id}/rotate" => KEYS;
    "web_api_key_revoke"  POST   "/keys/{key_id}/revoke" => KEYS;
    "web_sessions"        GET    "/sessions" => Access::Authenticated;
    "web_session_revoke"  POST   "/sessions/{session_id}/revoke" => Access::Authenticated;
    "web_audit"           GET    "/audit" => Access::Permission("logs:read");
    "web_audit_verify"    POST   "/audit/verify" => Access::Permission("logs:read");
    "web_audit_export"    GET    "/audit/export" => Access::Permission("logs:read");
    "web_events"          GET    "/events" => FLEET_READ;
    "web_live_events"     GET    "/live/events" => FLEET_READ;
    "web_desired"         GET    "/hosts/{host_id}/desired" => FLEET_READ;
    "web_desired_preview" POST   "/hosts/{host_id}/desired/preview" => FLEET_READ;
    "web_desired_publish" POST   "/hosts/{host_id}/desired" => FLEET_MANAGE;
    "web_customer_block"  POST   "/hosts/{host_id}/customer/block" => FLEET_MANAGE;
    "web_customer_unblock" POST  "/hosts/{host_id}/customer/unblock" => FLEET_MANAGE;
    "web_retrieval_password_reset" POST "/hosts/{host_id}/customer/retrieval-password" => FLEET_MANAGE;
    "web_recovery_arm"    POST   "/hosts/{host_id}/recovery/arm" => FLEET_MANAGE;
    "web_recovery_disarm" POST   "/hosts/{host_id}/recovery/disarm" => FLEET_MANAGE;
    "web_transfers"       GET    "/transfers" => READ;
    // Browser upload: the page, and the short-lived token its script uploads with.
    "web_upload"          GET    "/transfers/new" => SEND;
    "web_upload_token"    POST   "/transfers/upload-token" => SEND;
    "web_live_transfers"  GET    "/live/transfers" => READ;
    "web_transfer"        GET    "/transfers/{transfer_id}" => READ;
    "web_transfer_verify" POST   "/transfers/{transfer_id}/verify" => READ;
    "web_transfer_cancel" POST   "/transfers/{transfer_id}/cancel" => CANCEL;
    "web_transfer_link_revoke" POST "/transfers/{transfer_id}/links/{link_id}/revoke" => CANCEL;
    // File requests (decision 0034): the list, a new one (its link shown once), revoking one.
    "web_file_requests"   GET    "/requests" => READ;
    "web_file_request_create" POST "/requests" => SEND;
    "web_file_request_revoke" POST "/requests/{request_id}/revoke" => CANCEL;
    // A share link's page and its service worker: no sign-in, the link is the credential.
    "web_link"            GET    "/s/{token}" => Access::Public;
    "web_link_worker"     GET    "/s/sw.js" => Access::Public;
    // A file request's page: no sign-in, the request is the credential.
    "web_request"         GET    "/r/{token}" => Access::Public;
}

/// Benchmark-only routes (feature `bench-routes`): the same handler as `/health`, public and
/// authenticated, so `bench/auth_load.sh` compares authentication and nothing else.
#[cfg(feature = "bench-routes")]
pub static BENCH_ROUTES: &[RouteSpec] = &[
    RouteSpec {
        id: "bench_public",
        method: Method::GET,
        path: "/bench/public",
        access: Access::Public,
    },
    RouteSpec {
        id: "bench_authenticated",
        method: Method::GET,
        path: "/bench/authenticated",
        access: Access::Authenticated,
    },
];
#[cfg(not(feature = "bench-routes"))]
pub static BENCH_ROUTES: &[RouteSpec] = &[];

/// The handler of a route id of the table; a row without one is a programming error, found
/// by the first router built (every test builds one).
fn handler(id: &str) -> MethodRouter<AppState> {
    api_handler(id)
        .or_else(|| page_handler(id))
        .unwrap_or_else(|| panic!("route {id} is in the table but has no handler"))
}

/// People, keys, transfers and the audit log.
fn api_handler(id: &str) -> Option<MethodRouter<AppState>> {
    Some(match id {
        "health" | "bench_public" | "bench_authenticated" => get(health::health),
        "api_health" => get(health::api_health),
        "jwks" => get(health::jwks),
        "openapi" => get(crate::openapi::serve),
        "auth_login" => post(auth::login),
        "auth_refresh" => post(auth::refresh),
        "auth_logout" => post(auth::logout),
        "status" => get(health::status),
        "auth_whoami" => get(health::whoami),
        "auth_password" => post(passwords::change),
        "tokens_list" => get(tokens::index),
        "tokens_create" => post(tokens::create),
        "tokens_revoke" => delete(tokens::revoke),
        "user_tokens_revoke" => delete(tokens::revoke_for_user),
        "users_list" => get(users::index),
        "users_create" => post(users::create),
        "users_get" => get(users::show),
        "users_update" => patch(users::update),
        "users_delete" => delete(users::destroy),
        "users_password" => post(passwords::reset),
        "apikeys_list" => get(apikeys::index),
        "apikeys_create" => post(apikeys::create),
        "apikeys_resolve" => post(apikeys::resolve),
        "apikeys_get" => get(apikeys::show),
        "apikeys_delete" => delete(apikeys::destroy),
        "apikeys_rotate" => post(apikeys::rotate),
        "server_config_get" => get(config::show),
        "my_key_put" => put(keys::put_own),
        "user_key_get" => get(keys::show),
        "host_transfer_key_put" => put(keys::put_host),
        "host_transfer_key_get" => get(keys::show_host),
        "transfers_create" => post(transfers::create),
        "transfer_chunk_put" => put(transfers::upload_chunk),
        "transfer_chunks" => get(transfers::list_chunks),
        "transfer_complete" => post(transfers::complete),
        "transfers_list" => get(transfers::index),
        "transfer_show" => get(transfers::show),
        "transfer_header" => get(transfers::header),
        "transfer_chunk_get" => get(transfers::download_chunk),
        "transfer_manifest" => get(transfers::manifest),
        "transfer_stream" => get(crate::handlers::transfer_stream::stream),
        "transfer_verify" => post(transfers::verify),
        "transfer_received" => post(transfers::received),
        "transfer_cancel" => post(transfers::cancel),
        "transfers_pending_grants" => get(grants::index),
        "transfer_grant" => post(grants::create),
        "audit_list" => get(audit::index),
        "audit_export" => get(audit::export),
        "audit_verify" => post(audit::verify),
        "transfer_links_create" => post(crate::handlers::links::create),
        "transfer_links_list" => get(crate::handlers::links::index),
        "link_revoke" => post(crate::handlers::links::revoke),
        "shared_get" => get(crate::handlers::links::shared),
        "shared_open" => post(crate::handlers::links::open),
        "shared_chunk" => get(crate::handlers::links::chunk),
        "file_requests_create" => post(crate::handlers::requests::create),
        "file_requests_list" => get(crate::handlers::requests::index),
        "file_request_revoke" => post(crate::handlers::requests::revoke),
        "requested_get" => get(crate::handlers::requests::requested),
        "requested_start" => post(crate::handlers::requests::start),
        "requested_chunks" => get(crate::handlers::requests::chunks),
        "requested_chunk_put" => put(crate::handlers::requests::chunk),
        "requested_complete" => post(crate::handlers::requests::complete),
        _ => return fleet_handler(id),
    })
}

/// Boxes, the fleet, certificates and hubs.
fn fleet_handler(id: &str) -> Option<MethodRouter<AppState>> {
    Some(match id {
        "host_report" => post(reports::host_report),
        "guest_report" => post(reports::guest_report),
        "host_desired_get" => get(hosts::desired_state),
        "host_signed_ops" => get(ops::fetch),
        "host_op_status" => post(ops::report_status),
        "host_escrow_put" => put(enroll::put_escrow),
        "host_guest_mint" => post(enroll::mint_guest),
        "host_key_rotate" => post(host_keys::rotate),
        "enroll" => post(enroll::enroll),
        "host_re_enroll" => post(enroll::re_enroll),
        "customer_config" => get(enroll::controller_config),
        "customers_list" => get(customers::index),
        "customers_create" => post(customers::create),
        "customers_get" => get(customers::show),
        "customers_update" => patch(customers::update),
        "customers_delete" => delete(customers::destroy),
        "customer_block" => post(customers::block),
        "customer_unblock" => post(customers::unblock),
        "customer_retrieval_password_reset" => post(customers::reset_retrieval_password),
        "customer_trigger_update" => post(customers::trigger_update),
        "customer_geo_remove_all" => post(crate::fleet::geo::remove_all),
        "hosts_list" => get(hosts::index),
        "hosts_get" => get(hosts::show),
        "host_desired_put" => put(desired::update),
        "host_desired_diff" => post(desired::diff),
        "host_reports" => get(reports::index),
        "host_recovery_arm" => post(enroll::arm_recovery),
        "host_recovery_disarm" => delete(enroll::disarm_recovery),
        "host_key_rotation_request" => post(host_keys::request_rotation),
        "guests_list" => get(hosts::guests),
        "ops_list" => get(ops::index),
        "ops_get" => get(ops::show),
        "op_sign" => put(ops::sign),
        "events_list" => get(events::index),
        "notifications_list" => get(events::notifications),
        "ca_roots" => get(certificates::roots),
        "ca_crl" => get(certificates::crl),
        "ca_status" => get(certificates::ca_status),
        "ca_rotate" => post(certificates::ca_rotate),
        "ca_retire" => post(certificates::ca_retire),
        "certificates_list" => get(certificates::index),
        "certificates_issue" => post(certificates::issue),
        "certificates_renew" => post(certificates::renew),
        "certificate_revoke" => post(certificates::revoke),
        "hubs_register" => post(hubs::register),
        "hub_heartbeat" => post(hubs::heartbeat),
        "hub_certificate" => post(certificates::issue_hub),
        "hub_validate" => post(hubs::validate),
        "hub_site_live" => post(site::live),
        "hubs_list" => get(hubs::index),
        "hubs_get" => get(hubs::show),
        "deploy_keys_list" => get(hubs::deploy_keys_index),
        "deploy_keys_create" => post(hubs::deploy_keys_create),
        "deploy_keys_revoke" => delete(hubs::deploy_keys_revoke),
        "deploy_keys_rotate" => post(hubs::deploy_keys_rotate),
        _ => return None,
    })
}

fn page_handler(id: &str) -> Option<MethodRouter<AppState>> {
    Some(match id {
        "web_home" => get(web::pages::home),
        "web_login" => get(web::pages::login::show),
        "web_login_submit" => post(web::pages::login::submit),
        "web_logout" => post(web::pages::login::sign_out),
        "web_upload" => get(web::pages::upload::show),
        "web_upload_token" => post(web::pages::upload::token),
        "web_asset" => get(web::assets::serve),
        "web_hubs" => get(web::pages::hubs::index),
        "web_live_hubs" => get(web::live::hubs),
        "web_hub" => get(web::pages::hubs::show),
        "web_deploy_key_create" => post(web::pages::hubs::create),
        "web_deploy_key_revoke" => post(web::pages::hubs::revoke),
        "web_customers" => get(web::pages::customers::index),
        "web_live_customers" => get(web::live::customers),
        "web_hosts" => get(web::pages::hosts::index),
        "web_live_hosts" => get(web::live::hosts),
        "web_host" => get(web::pages::hosts::show),
        "web_ops" => get(web::pages::ops::index),
        "web_live_ops" => get(web::live::ops),
        "web_users" => get(web::pages::users::index),
        "web_user_create" => post(web::pages::users::create),
        "web_user" => get(web::pages::users::show),
        "web_user_update" => post(web::pages::users::update),
        "web_user_password" => post(web::pages::users::password),
        "web_user_delete" => post(web::pages::users::delete),
        "web_user_tokens_revoke" => post(web::pages::users::revoke_tokens),
        "web_api_keys" => get(web::pages::api_keys::index),
        "web_api_key_create" => post(web::pages::api_keys::create),
        "web_api_key_rotate" => post(web::pages::api_keys::rotate),
        "web_api_key_revoke" => post(web::pages::api_keys::revoke),
        "web_sessions" => get(web::pages::sessions::index),
        "web_session_revoke" => post(web::pages::sessions::revoke),
        "web_audit" => get(web::pages::audit::index),
        "web_audit_verify" => post(web::pages::audit::verify),
        "web_audit_export" => get(web::pages::audit::export),
        "web_events" => get(web::pages::events::index),
        "web_live_events" => get(web::live::events),
        "web_desired" => get(web::pages::desired::edit),
        "web_desired_preview" => post(web::pages::desired::preview),
        "web_desired_publish" => post(web::pages::desired::publish),
        "web_customer_block" => post(web::pages::customer_actions::block),
        "web_customer_unblock" => post(web::pages::customer_actions::unblock),
        "web_retrieval_password_reset" => post(web::pages::customer_actions::reset_password),
        "web_recovery_arm" => post(web::pages::customer_actions::arm_recovery),
        "web_recovery_disarm" => post(web::pages::customer_actions::disarm_recovery),
        "web_transfers" => get(web::pages::transfers::index),
        "web_live_transfers" => get(web::live::transfers),
        "web_transfer" => get(web::pages::transfers::show),
        "web_transfer_verify" => post(web::pages::transfers::verify),
        "web_transfer_cancel" => post(web::pages::transfers::cancel),
        "web_transfer_link_revoke" => post(web::pages::links::revoke),
        "web_file_requests" => get(web::pages::file_requests::index),
        "web_file_request_create" => post(web::pages::file_requests::create),
        "web_file_request_revoke" => post(web::pages::file_requests::revoke),
        "web_link" => get(web::pages::links::page),
        "web_link_worker" => get(web::assets::link_worker),
        "web_request" => get(web::pages::requests::page),
        _ => return None,
    })
}

pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for spec in ROUTES.iter().chain(BENCH_ROUTES) {
        if web::is_page(spec) && !state.config.config.web.enabled {
            continue;
        }
        let ctx = RouteCtx {
            state: state.clone(),
            spec,
        };
        let mut method_router =
            handler(spec.id).route_layer(axum::middleware::from_fn_with_state(ctx, guard));
        if spec.id == "host_report" {
            method_router = method_router.layer(axum::extract::DefaultBodyLimit::max(
                mftplus_types::fleet::MAX_HOST_REPORT_BYTES,
            ));
        }
        if spec.id == "transfer_chunk_put" || spec.id == "requested_chunk_put" {
            // Sealed chunks are the one body larger than JSON requests; the handler checks the
            // exact bound of the transfer's own chunk size.
            let max_chunk = state.config.config.transfers.max_chunk_size as usize;
            method_router = method_router.layer(axum::extract::DefaultBodyLimit::max(
                max_chunk + max_chunk / 128 + 1024 + 16,
            ));
        }
        router = router.route(spec.path, method_router);
    }
    let router = router
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.config.server.max_body_bytes,
        ))
        .with_state(state);
    crate::seed_paths::wrap(router)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transfer party's user access is a user's (`Permission` or `Scoped`): the guard
    /// resolves it once and would not know another kind there.
    #[test]
    fn transfer_parties_admit_users_by_a_user_access() {
        let parties: Vec<&RouteSpec> = ROUTES
            .iter()
            .filter(|spec| matches!(spec.access, Access::TransferParty(_)))
            .collect();
        assert!(
            parties.len() >= 10,
            "{} transfer party routes",
            parties.len()
        );
        for spec in parties {
            let Access::TransferParty(user) = spec.access else {
                unreachable!()
            };
            assert!(
                matches!(user, Access::Permission(_) | Access::Scoped { .. }),
                "{}: {user:?}",
                spec.id
            );
        }
    }
}
