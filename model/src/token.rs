//! API tokens as people and pipelines see them: never the secret, which is
//! shown once when the token is made.

use crate::people::Role;
use crate::string_enum::string_enum;
use serde::{Deserialize, Serialize};

string_enum! {
    /// A personal token acts for the person who made it; a service token is
    /// made by an admin for a pipeline (and acts for that admin, limited to
    /// its role and environments).
    pub enum TokenKind("token kind") {
        Personal = "personal",
        Service = "service",
    }
}

/// What a person asks for when making a token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub name: String,
    pub kind: TokenKind,
    pub role: Role,
    /// The environments it may act on; `None` for all its role reaches.
    pub environments: Option<Vec<String>>,
    /// Days until it stops working (1 to 366).
    pub expires_in_days: u32,
}

/// A token as lists show it: its prefix tells it apart, its secret is gone.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub kind: TokenKind,
    pub owner: String,
    pub role: Role,
    pub environments: Option<Vec<String>>,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<String>,
}

/// A token just made: the only time its secret is seen. `Debug` leaves the
/// secret out, so a stray log line cannot carry it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: TokenView,
    pub secret: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("secret", &"<shown once>")
            .finish()
    }
}
