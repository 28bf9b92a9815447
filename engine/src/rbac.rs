//! Who may do what. One function answers it, and every server function, route
//! and worker entry calls it with the role read fresh from the database.

use crate::error::{Error, Result};
use model::Role;

/// Every action a person can ask the console for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ViewEnvironments,
    ViewAudit,
    Deploy,
    Rollback,
    ManageUsers,
    /// Request a release (or edit/cancel one's own).
    RequestRelease,
    /// Sign checklist items (the item's required role decides the rest).
    SignChecklist,
    /// Edit checklist templates and approval settings.
    ManageChecklists,
    /// Break an environment's deployment lock (its worker stopped or gone).
    BreakLock,
    /// Change an environment's pipeline settings (health, gates, drain,
    /// watch and standby windows).
    ManageEnvironments,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::ViewEnvironments,
        Action::ViewAudit,
        Action::Deploy,
        Action::Rollback,
        Action::ManageUsers,
        Action::RequestRelease,
        Action::SignChecklist,
        Action::ManageChecklists,
        Action::BreakLock,
        Action::ManageEnvironments,
    ];

    /// The action's name in the audit log.
    pub fn audit_name(self) -> &'static str {
        match self {
            Action::ViewEnvironments => "environment.view",
            Action::ViewAudit => "audit.view",
            Action::Deploy => "deploy.request",
            Action::Rollback => "rollback.request",
            Action::ManageUsers => "user.manage",
            Action::RequestRelease => "release.request",
            Action::SignChecklist => "release.sign",
            Action::ManageChecklists => "checklist.manage",
            Action::BreakLock => "lock.break",
            Action::ManageEnvironments => "environment.settings",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Action::ViewEnvironments => "view environments",
            Action::ViewAudit => "read the audit log",
            Action::Deploy => "deploy",
            Action::Rollback => "roll back",
            Action::ManageUsers => "manage users",
            Action::RequestRelease => "request releases",
            Action::SignChecklist => "sign checklist items",
            Action::ManageChecklists => "manage checklists",
            Action::BreakLock => "break a deployment lock",
            Action::ManageEnvironments => "change environment settings",
        }
    }
}

/// Whether `role` may perform `action`. Approvers sign releases but do not push
/// them (separation of duties); admins can do everything.
pub fn allows(role: Role, action: Action) -> bool {
    match action {
        // Everyone signed in reads the audit log: that is what makes it useful
        // after an incident.
        Action::ViewEnvironments | Action::ViewAudit => true,
        Action::Deploy | Action::Rollback => matches!(role, Role::Deployer | Role::Admin),
        // Breaking a lock overrides a running deployment: admins only.
        Action::ManageUsers
        | Action::ManageChecklists
        | Action::BreakLock
        | Action::ManageEnvironments => role == Role::Admin,
        Action::RequestRelease => role != Role::Viewer,
        // Deployers sign the items that ask for on-call ("rollback plan
        // confirmed"); which items a role may sign is decided per item.
        Action::SignChecklist => role != Role::Viewer,
    }
}

/// Whether `role` stays within `owner`'s powers: every action it allows the
/// owner's role allows too, and every checklist item it may sign the owner
/// may sign. Roles are not a line (deployers deploy, approvers do not), so
/// "lower" means exactly this. A token's role must stay within its owner's.
pub fn role_within(role: Role, owner: Role) -> bool {
    Action::ALL
        .into_iter()
        .all(|a| !allows(role, a) || allows(owner, a))
        && Role::ALL
            .into_iter()
            .all(|item| !role.covers(item) || owner.covers(item))
}

pub fn authorize(role: Role, action: Action) -> Result<()> {
    if allows(role, action) {
        Ok(())
    } else {
        Err(Error::Forbidden {
            role: role.to_string(),
            action: action.describe().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_by_role_matrix() {
        use Role::*;
        // Columns: view environments, view audit, deploy, rollback, manage
        // users, request release, sign checklist, manage checklists, break
        // lock, manage environments.
        let (t, f) = (true, false);
        let expected = [
            (Viewer, [t, t, f, f, f, f, f, f, f, f]),
            (Deployer, [t, t, t, t, f, t, t, f, f, f]),
            (Approver, [t, t, f, f, f, t, t, f, f, f]),
            (Admin, [t; 10]),
        ];
        for (role, row) in expected {
            for (action, allowed) in Action::ALL.into_iter().zip(row) {
                assert_eq!(allows(role, action), allowed, "{role} / {action:?}");
                assert_eq!(authorize(role, action).is_ok(), allowed);
            }
        }
    }

    #[test]
    fn a_role_is_within_itself_and_admin_but_deployer_and_approver_differ() {
        use Role::*;
        for r in Role::ALL {
            assert!(role_within(r, r));
            assert!(role_within(r, Admin));
            assert!(role_within(Viewer, r));
        }
        assert!(!role_within(Deployer, Approver), "approvers do not deploy");
        assert!(!role_within(Approver, Deployer), "deployers sign less");
        assert!(!role_within(Admin, Deployer));
        assert!(!role_within(Deployer, Viewer));
    }

    #[test]
    fn refusal_names_role_and_action() {
        let err = authorize(Role::Viewer, Action::Deploy).unwrap_err();
        assert_eq!(err.to_string(), "viewer may not deploy");
    }
}
