//! People: roles, accounts and the sign-in throttle's locks.

use crate::string_enum::string_enum;
use serde::{Deserialize, Serialize};

string_enum! {
    /// Who may do what. Ordered: each role can do everything the previous one can,
    /// except that approvers sign and deployers deploy (see `engine::rbac`).
    pub enum Role("role") {
        Viewer = "viewer",
        Deployer = "deployer",
        Approver = "approver",
        Admin = "admin",
    }
}

impl Role {
    /// Whether this role may sign a checklist item that requires `required`:
    /// the same role or a higher one (admins sign anything).
    pub fn covers(self, required: Role) -> bool {
        self as u8 >= required as u8
    }
}

/// The signed-in user as the browser may see it: never a password hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

/// A console account as the users page shows it (never a hash).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
}

string_enum! {
    /// What a sign-in throttle counts failures against (see `engine::throttle`).
    pub enum LoginLockKind("login lock kind") {
        /// An attempted username, trimmed and lowercased (whether or not such
        /// an account exists).
        Account = "account",
        /// A source address: an IPv4 address or an IPv6 /64.
        Address = "address",
    }
}

/// A throttled sign-in key as the admin page shows it: how many consecutive
/// failures it has, and until when it is locked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginLockView {
    pub kind: LoginLockKind,
    pub key: String,
    pub failures: u32,
    /// RFC 3339; `None` before the first lock. In the past once the lock
    /// has passed (the failures still count until they are forgotten).
    pub locked_until: Option<String>,
    /// Seconds left in the lock when this view was read (0 when not locked).
    pub locked_secs_left: u64,
    /// RFC 3339, the last failed attempt.
    pub last_failure_at: Option<String>,
}
