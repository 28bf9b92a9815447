//! API tokens: how a pipeline or the remote CLI acts without a browser.
//!
//! A token always acts for a person, its owner: four-eyes, "who requested
//! this release" and the audit trail all see the owner (the audit entry's
//! actor reads "alice (token ci sy_ab12cd34)"). Its role never exceeds the
//! owner's (checked when made and on every use, so demoting the owner
//! demotes or kills the token), it stops when the owner is disabled, and it
//! may be limited to some environments (`Actor::may_on`). A personal token is
//! made by its owner; a service token by an admin for a pipeline, owned by
//! that admin. The secret is shown once and stored as a SHA-256.

mod secret;
mod store;

use crate::actor::{Actor, TokenGrant};
use crate::audit::Outcome;
use crate::engine::Engine;
use crate::error::{parse_stored, Error, Result};
use crate::rbac::{self, Action};
use crate::users::{self, User};
use model::{IssuedToken, NewToken, Role, TokenKind, TokenView};

/// The longest a token may live.
pub const MAX_DAYS: u32 = 366;
/// A token's last use is written at most this often: a pipeline polling
/// the status should not turn every read into a write.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

fn validate_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        return Err(Error::invalid(
            "name",
            "a token name is 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(())
}

impl Engine {
    /// Makes a token and returns its secret, the only time anyone sees it.
    /// A signed-in person makes personal tokens for themself; admins make
    /// service tokens (owned by them). The command line acts as the system
    /// and names the owner.
    pub async fn create_token(
        &self,
        actor: &Actor,
        owner: Option<&str>,
        new: &NewToken,
    ) -> Result<IssuedToken> {
        if new.kind == TokenKind::Service || owner.is_some() {
            self.authorize(actor, Action::ManageUsers, None).await?;
        } else {
            // Anyone signed in may have personal tokens.
            self.authorize(actor, Action::ViewEnvironments, None)
                .await?;
        }
        if actor.token.is_some() {
            return Err(Error::RuleForbids(
                "a token cannot make tokens: sign in to the console".into(),
            ));
        }
        let owner: User = match (owner, actor.as_user()) {
            (Some(name), _) => users::find_by_name(self.pool(), name)
                .await?
                .ok_or_else(|| Error::invalid("owner", format!("no user named {name:?}")))?,
            (None, Some(me)) => me.clone(),
            (None, None) => return Err(Error::invalid("owner", "name the token's owner")),
        };
        validate_name(&new.name)?;
        if !(1..=MAX_DAYS).contains(&new.expires_in_days) {
            return Err(Error::invalid(
                "expires_in_days",
                format!("a token lives 1 to {MAX_DAYS} days"),
            ));
        }
        if owner.disabled {
            return Err(Error::invalid(
                "owner",
                format!("{} is disabled", owner.username),
            ));
        }
        if !rbac::role_within(new.role, owner.role) {
            return Err(Error::invalid(
                "role",
                format!(
                    "a token's role stays within its owner's: {} is {}, not {}",
                    owner.username, owner.role, new.role
                ),
            ));
        }
        let environments = match &new.environments {
            None => None,
            Some(names) if names.is_empty() => {
                return Err(Error::invalid(
                    "environments",
                    "name at least one environment, or none for all",
                ))
            }
            Some(names) => {
                let mut names = names.clone();
                names.sort();
                names.dedup();
                for name in &names {
                    crate::environments::find(self.pool(), name)
                        .await
                        .map_err(|_| {
                            Error::invalid("environments", format!("no environment named {name:?}"))
                        })?;
                }
                Some(names)
            }
        };
        let (full, stored) = secret::generate();
        let expires_at = crate::now() + chrono::Duration::days(i64::from(new.expires_in_days));
        let created_by = actor.user_id().unwrap_or(owner.id);
        let id = store::insert(
            self.pool(),
            &store::Insert {
                prefix: &stored.prefix,
                secret_sha256: &stored.secret_sha256,
                name: &new.name,
                kind: new.kind,
                owner_id: owner.id,
                role: new.role,
                environments: environments.as_deref(),
                created_by,
                expires_at,
            },
        )
        .await?;
        let row = store::by_id(self.pool(), id)
            .await?
            .ok_or_else(|| Error::Internal("the token just made is gone".into()))?;
        let view = row.view()?;
        let mut ev = actor.event("token.create", Outcome::Ok);
        ev.target = Some(format!("{} {}", view.name, view.prefix));
        ev.details = serde_json::json!({
            "token_id": view.id,
            "kind": view.kind.as_str(),
            "owner": view.owner,
            "role": view.role.as_str(),
            "environments": view.environments,
            "expires_at": view.expires_at,
        });
        self.audit(ev).await?;
        Ok(IssuedToken {
            token: view,
            secret: full,
        })
    }

    /// The tokens a person may see: their own; an admin sees every token.
    pub async fn tokens(&self, actor: &Actor) -> Result<Vec<TokenView>> {
        self.authorize(actor, Action::ViewEnvironments, None)
            .await?;
        let owner = if actor.may(Action::ManageUsers).is_ok() {
            None
        } else {
            Some(actor.user_id().ok_or(Error::Unauthenticated)?)
        };
        store::list(self.pool(), owner)
            .await?
            .iter()
            .map(store::TokenRow::view)
            .collect()
    }

    /// Revokes a token: its owner or an admin. It stops working at once.
    pub async fn revoke_token(&self, actor: &Actor, id: i64) -> Result<TokenView> {
        self.authorize(actor, Action::ViewEnvironments, None)
            .await?;
        let admin = actor.may(Action::ManageUsers).is_ok();
        let row = store::by_id(self.pool(), id).await?;
        // Someone else's token is "not found" to a non-admin, as if it did
        // not exist.
        let row = row
            .filter(|r| admin || Some(r.owner_id) == actor.user_id())
            .ok_or_else(|| Error::NotFound(format!("token {id}")))?;
        if !store::revoke(self.pool(), id, actor.user_id()).await? {
            return Err(Error::Conflict(format!(
                "token {} was revoked already",
                row.name
            )));
        }
        let mut ev = actor.event("token.revoke", Outcome::Ok);
        ev.target = Some(format!("{} {}", row.name, row.prefix));
        ev.details = serde_json::json!({ "token_id": id, "owner": row.owner });
        self.audit(ev).await?;
        let row = store::by_id(self.pool(), id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("token {id}")))?;
        row.view()
    }

    /// The actor a presented token stands for, or why it lets nobody in.
    /// Checked on every request: revocation, expiry, the owner's state and
    /// role take effect at once.
    pub async fn token_actor(&self, presented: &str, source_ip: Option<String>) -> Result<Actor> {
        let presented = secret::parse(presented)?;
        let row = store::by_prefix(self.pool(), &presented.prefix).await?;
        let row = row
            .filter(|r| secret::same_hash(&r.secret_sha256, &presented.secret_sha256))
            .ok_or(Error::BadToken("unknown token"))?;
        let now = crate::now();
        if row.revoked_at.is_some() {
            return Err(Error::BadToken("revoked"));
        }
        if row.expires_at.is_some_and(|t| t <= now) {
            return Err(Error::BadToken("expired"));
        }
        let owner = users::find(self.pool(), row.owner_id)
            .await?
            .ok_or(Error::BadToken("its owner is gone"))?;
        if owner.disabled {
            return Err(Error::BadToken("its owner is disabled"));
        }
        let role: Role = parse_stored(&row.role)?;
        if !rbac::role_within(role, owner.role) {
            return Err(Error::BadToken(
                "its role is above its owner's current role",
            ));
        }
        if row.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
            store::touch(self.pool(), row.id, source_ip.as_deref()).await?;
        }
        let grant = TokenGrant {
            name: row.name.clone(),
            prefix: row.prefix.clone(),
            environments: row.environments()?,
        };
        let mut actor = Actor::user(User { role, ..owner }).from_ip(source_ip);
        actor.token = Some(grant);
        Ok(actor)
    }
}
