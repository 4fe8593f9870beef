//! Roles, permissions and how a granted permission satisfies a required one.
//!
//! Grammar: `resource:action` or `resource:action:own`. A grant satisfies a requirement when it
//! is `*`, equal to it, a `resource:*` wildcard over it, or the unscoped form of an `:own`
//! requirement (holding `transfers:read` covers `transfers:read:own`).

use crate::config::RbacSection;
use crate::routes::{Access, ROUTES};
use std::collections::{BTreeMap, BTreeSet};

/// The fixed order of the built-in roles, used to stop anyone from minting a credential above
/// their own role. Custom roles have no rank and can only be granted to themselves.
fn rank(role: &str) -> Option<u8> {
    match role {
        "readonly" => Some(0),
        "user" => Some(1),
        "operator" => Some(2),
        "admin" => Some(3),
        _ => None,
    }
}

/// Whether a principal with role `holder` may issue a credential carrying role `requested`.
pub fn may_grant(holder: &str, requested: &str) -> bool {
    if holder == requested {
        return true;
    }
    matches!((rank(holder), rank(requested)), (Some(h), Some(r)) if r < h)
}

/// The role a credential acts with: its own, unless its owner has since been demoted below it.
pub fn effective_role(credential_role: &str, owner_role: &str) -> String {
    if may_grant(owner_role, credential_role) {
        credential_role.to_string()
    } else {
        owner_role.to_string()
    }
}

pub fn grant_satisfies(granted: &str, required: &str) -> bool {
    if granted == "*" || granted == required {
        return true;
    }
    if let Some(prefix) = granted.strip_suffix('*') {
        if prefix.ends_with(':') && required.starts_with(prefix) {
            return true;
        }
    }
    if let Some(unscoped) = required.strip_suffix(":own") {
        return grant_satisfies(granted, unscoped);
    }
    false
}

/// Every permission a route checks: all a role can usefully grant (the route table is the only
/// place permissions are required).
pub fn known_permissions() -> BTreeSet<&'static str> {
    let mut known = BTreeSet::new();
    for route in ROUTES {
        let access = match route.access {
            Access::TransferParty(user) => *user,
            access => access,
        };
        match access {
            Access::Permission(permission) | Access::HostOr(permission) => {
                known.insert(permission);
            }
            Access::Scoped { all, own } => {
                known.extend([all, own]);
            }
            _ => {}
        }
    }
    known
}

/// Whether a grant in `rbac.roles` means something: `*`, a permission some route checks, or
/// `resource:*` over a resource some route checks.
pub fn grant_is_known(grant: &str, known: &BTreeSet<&str>) -> bool {
    if grant == "*" || known.contains(grant) {
        return true;
    }
    grant
        .strip_suffix(":*")
        .filter(|resource| !resource.is_empty() && !resource.contains(':'))
        .is_some_and(|resource| known.iter().any(|p| p.split(':').next() == Some(resource)))
}

#[derive(Debug, Clone)]
pub struct Rbac {
    enabled: bool,
    roles: BTreeMap<String, Vec<String>>,
    admin_users: Vec<String>,
    pub default_role: String,
}

impl Rbac {
    pub fn new(section: &RbacSection) -> Rbac {
        Rbac {
            enabled: section.enabled,
            roles: section
                .roles
                .iter()
                .map(|(name, spec)| (name.clone(), spec.permissions.clone()))
                .collect(),
            admin_users: section
                .admin_users
                .iter()
                .map(|e| e.to_ascii_lowercase())
                .collect(),
            default_role: section.default_role.clone(),
        }
    }

    pub fn role_exists(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    pub fn role_names(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// The role stored for a user, overridden to `admin` for `rbac.admin_users`.
    pub fn user_role(&self, email: &str, stored_role: &str) -> String {
        if self
            .admin_users
            .iter()
            .any(|admin| admin.eq_ignore_ascii_case(email))
        {
            "admin".into()
        } else {
            stored_role.to_string()
        }
    }

    pub fn permissions(&self, role: &str) -> Vec<String> {
        if !self.enabled {
            return vec!["*".into()];
        }
        self.roles.get(role).cloned().unwrap_or_default()
    }

    pub fn allows(&self, role: &str, required: &str) -> bool {
        if !self.enabled {
            return true;
        }
        self.roles
            .get(role)
            .is_some_and(|grants| grants.iter().any(|g| grant_satisfies(g, required)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        assert!(grant_satisfies("*", "users:manage"));
        assert!(grant_satisfies("transfers:*", "transfers:read:own"));
        assert!(grant_satisfies("transfers:read", "transfers:read:own"));
        assert!(!grant_satisfies("transfers:read:own", "transfers:read"));
        assert!(!grant_satisfies("transfers:read", "transfers:create"));
        assert!(!grant_satisfies("trans*", "transfers:read"));
        assert!(!grant_satisfies("users:*", "usersx:read"));
    }

    #[test]
    fn default_matrix_follows_seed() {
        let rbac = Rbac::new(&RbacSection::default());
        assert!(rbac.allows("admin", "anything:at:all"));
        assert!(rbac.allows("operator", "logs:read"));
        assert!(!rbac.allows("operator", "users:manage"));
        assert!(rbac.allows("user", "transfers:read:own"));
        assert!(!rbac.allows("user", "transfers:read"));
        assert!(rbac.allows("readonly", "transfers:read"));
        assert!(!rbac.allows("readonly", "transfers:create"));
        assert!(!rbac.allows("ghost", "transfers:read"));
    }

    #[test]
    fn known_grants_come_from_the_route_table() {
        let known = known_permissions();
        for grant in [
            "*",
            "transfers:*",
            "transfers:read",
            "transfers:read:own",
            "fleet:manage",
            "certificates:issue",
        ] {
            assert!(grant_is_known(grant, &known), "{grant}");
        }
        for grant in [
            "transfers:retry",
            "config:edit",
            "users:manage:own",
            "nothing:*",
            "trans*",
            ":*",
            "transfers:read:*",
            "",
        ] {
            assert!(!grant_is_known(grant, &known), "{grant}");
        }
        // The built-in roles grant only what exists.
        for (role, spec) in RbacSection::default().roles {
            for grant in spec.permissions {
                assert!(grant_is_known(&grant, &known), "{role}: {grant}");
            }
        }
    }

    #[test]
    fn no_escalation() {
        assert!(may_grant("admin", "readonly"));
        assert!(!may_grant("user", "admin"));
        assert!(!may_grant("custom", "readonly"));
        assert_eq!(effective_role("admin", "user"), "user");
        assert_eq!(effective_role("readonly", "admin"), "readonly");
    }
}
