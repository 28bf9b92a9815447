//! Account administration on the engine: sign-in and sign-out records, and
//! what admins do to users. Every change is authorized here and audited; the
//! console never edits the users table itself.

use crate::actor::Actor;
use crate::audit::Outcome;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::rbac::Action;
use crate::users::{self, User};
use model::{Role, UserView};

impl Engine {
    /// The account behind a signed-in session, if it still stands: it
    /// exists, is enabled, and its password was not reset since the session
    /// began (`auth_epoch`, as the session recorded it). The console asks on
    /// every request, so disabling an account or resetting its password ends
    /// its sessions at once.
    pub async fn session_user(
        &self,
        user_id: i64,
        auth_epoch: Option<i64>,
    ) -> Result<Option<User>> {
        Ok(users::find(self.pool(), user_id)
            .await?
            .filter(|u| !u.disabled && auth_epoch == Some(u.auth_epoch)))
    }

    /// Whether any account exists: the console creates the first admin on
    /// an empty table only.
    pub async fn has_accounts(&self) -> Result<bool> {
        Ok(users::count(self.pool()).await? > 0)
    }

    /// Checks a password and records the attempt, through the sign-in
    /// throttle (see [`crate::throttle`]): a username or address with too
    /// many recent failures is refused with `Throttled` without its password
    /// being checked. Every failure is the same `BadCredentials`; a login
    /// that cannot be audited does not happen.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source_ip: Option<String>,
    ) -> Result<User> {
        crate::throttle::LoginThrottle::shared()
            .login(self, username, password, source_ip)
            .await
    }

    pub async fn logout(&self, actor: &Actor) -> Result<()> {
        self.audit(actor.event("auth.logout", Outcome::Ok)).await
    }

    /// Creates a user (admins only; the command line acts as the system).
    pub async fn create_user(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        role: model::Role,
    ) -> Result<User> {
        self.authorize(actor, Action::ManageUsers, None).await?;
        let user = crate::users::create(self.pool(), username, password, role).await?;
        let mut ev = actor.event("user.create", Outcome::Ok);
        ev.target = Some(user.username.clone());
        ev.details = serde_json::json!({ "user_id": user.id, "role": role.as_str() });
        self.audit(ev).await?;
        Ok(user)
    }

    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<UserView>> {
        self.authorize(actor, Action::ManageUsers, None).await?;
        Ok(users::list(self.pool())
            .await?
            .iter()
            .map(User::to_view)
            .collect())
    }

    async fn target_user(&self, id: i64) -> Result<User> {
        users::find(self.pool(), id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {id}")))
    }

    /// Refuses a change that would leave the console without an enabled admin.
    async fn keep_an_admin(&self, target: &User, still_admin: bool) -> Result<()> {
        if target.role == Role::Admin
            && !still_admin
            && users::other_enabled_admins(self.pool(), target.id).await? == 0
        {
            return Err(Error::Conflict(format!(
                "{} is the last enabled admin; make someone else admin first",
                target.username
            )));
        }
        Ok(())
    }

    async fn audit_user_change(
        &self,
        actor: &Actor,
        action: &'static str,
        target: &User,
        details: serde_json::Value,
    ) -> Result<()> {
        let mut ev = actor.event(action, Outcome::Ok);
        ev.target = Some(target.username.clone());
        ev.details = details;
        self.audit(ev).await
    }

    /// Changes a role; the user's sessions get a new id under the new role on
    /// their next request.
    pub async fn change_role(&self, actor: &Actor, user_id: i64, role: Role) -> Result<UserView> {
        self.authorize(actor, Action::ManageUsers, None).await?;
        let target = self.target_user(user_id).await?;
        self.keep_an_admin(&target, role == Role::Admin || target.disabled)
            .await?;
        let details = serde_json::json!({ "user_id": user_id, "from": target.role.as_str(), "to": role.as_str() });
        self.audit_user_change(actor, "user.role", &target, details)
            .await?;
        users::set_role(self.pool(), user_id, role).await?;
        Ok(self.target_user(user_id).await?.to_view())
    }

    /// Disables (ending every session) or re-enables an account.
    pub async fn set_user_disabled(
        &self,
        actor: &Actor,
        user_id: i64,
        disabled: bool,
    ) -> Result<UserView> {
        self.authorize(actor, Action::ManageUsers, None).await?;
        let target = self.target_user(user_id).await?;
        if disabled {
            self.keep_an_admin(&target, false).await?;
        }
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.audit_user_change(
            actor,
            action,
            &target,
            serde_json::json!({ "user_id": user_id }),
        )
        .await?;
        users::set_disabled(self.pool(), user_id, disabled).await?;
        Ok(self.target_user(user_id).await?.to_view())
    }

    /// Sets a new password (ending the user's sessions). The password itself
    /// is never recorded.
    pub async fn reset_password(
        &self,
        actor: &Actor,
        user_id: i64,
        password: &str,
    ) -> Result<UserView> {
        self.authorize(actor, Action::ManageUsers, None).await?;
        crate::password::validate_new_password(password)?;
        let target = self.target_user(user_id).await?;
        self.audit_user_change(
            actor,
            "user.password_reset",
            &target,
            serde_json::json!({ "user_id": user_id }),
        )
        .await?;
        users::set_password(self.pool(), user_id, password).await?;
        Ok(target.to_view())
    }
}
