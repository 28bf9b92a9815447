//! How the console reads a server function's form body before the function
//! sees it.
//!
//! Leptos decodes a server function's arguments itself and reports a bad body
//! as "error deserializing server function arguments: invalid digit found in
//! string" — no field name, and (before this) a 500. Every server function is
//! listed here with its argument type; the console's HTTP layer decodes the
//! body with it first, and refuses a body that does not fit with a 400 naming
//! the field (`field "release": invalid digit found in string`), before the
//! function runs, so nothing changes. A test checks that every registered
//! server function is listed.

use crate::error::AppError;
use serde::de::DeserializeOwned;

/// The only body a server function takes (the console's own forms send it).
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The message a body of another content type gets (answered 415).
pub const UNSUPPORTED_MEDIA_TYPE: &str =
    "unsupported content type: send application/x-www-form-urlencoded";

/// Whether a `Content-Type` header value is a urlencoded form (parameters
/// such as `charset=UTF-8` are allowed).
pub fn is_form(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE))
}

/// Decodes a form body into `T` as Leptos will (serde_qs, depth 5), naming
/// the field that does not fit ("body" when the body as a whole does not).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if std::str::from_utf8(body).is_err() {
        return Err(AppError::invalid("body", "the body is not valid UTF-8"));
    }
    let config = serde_qs::Config::new(5, false);
    let de = serde_qs::Deserializer::with_config(&config, body)
        .map_err(|e| AppError::invalid("body", e.to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            // serde names a missing field only in its message.
            let field = missing_field(&inner).unwrap_or("body").to_string();
            AppError::InvalidInput {
                field,
                message: inner,
            }
        } else {
            let message = format!("field \"{path}\": {inner}");
            AppError::InvalidInput {
                field: path,
                message,
            }
        }
    })
}

/// The name in serde's "missing field `name`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|f| !f.is_empty())
}

/// Checks a body against one server function's arguments.
pub type Check = fn(&[u8]) -> Result<(), AppError>;

#[cfg(feature = "ssr")]
fn check<T: DeserializeOwned>(body: &[u8]) -> Result<(), AppError> {
    decode::<T>(body).map(|_| ())
}

macro_rules! checks {
    ($($args:path),* $(,)?) => {
        /// Every server function's path and the check of its body.
        #[cfg(feature = "ssr")]
        pub fn server_function_checks() -> Vec<(&'static str, Check)> {
            use leptos::server_fn::ServerFn;
            vec![$((<$args as ServerFn>::PATH, check::<$args> as Check)),*]
        }
    };
}

checks![
    crate::audit::LoadAuditPage,
    crate::auth::Whoami,
    crate::auth::Login,
    crate::auth::Logout,
    crate::checklists::LoadChecklist,
    crate::checklists::AddChecklistItem,
    crate::checklists::RemoveChecklistItem,
    crate::checklists::ResetChecklist,
    crate::dashboard::LoadOverview,
    crate::dashboard::EnvironmentStatus,
    crate::dashboard::DeploymentHistory,
    crate::dashboard::Deploy,
    crate::dashboard::PlanDeploy,
    crate::rollback::Rollback,
    crate::rollback::PlanRollback,
    crate::deployment::LoadDeployment,
    crate::deployment::Promote,
    crate::hold::PromoteHold,
    crate::hold::AbortHold,
    crate::hold::SetCanary,
    crate::hold::HeldDeploy,
    crate::environments::LoadEnvironments,
    crate::environments::CreateEnvironment,
    crate::environments::EditEnvironment,
    crate::environments::ArchiveEnvironment,
    crate::lock::EnvironmentLock,
    crate::lock::BreakLock,
    crate::releases::ListReleases,
    crate::releases::LoadRelease,
    crate::releases::RequestRelease,
    crate::releases::SignItem,
    crate::releases::RevokeSignoff,
    crate::releases::EditRelease,
    crate::releases::CancelRelease,
    crate::releases::DeployRelease,
    crate::settings::LoadPipelineSettings,
    crate::settings::SavePipelineSettings,
    crate::slot_output::SlotOutput,
    crate::traffic::SlotTraffic,
    crate::tokens::LoadTokens,
    crate::tokens::CreateToken,
    crate::tokens::RevokeToken,
    crate::users::ListUsers,
    crate::users::ClearLoginLock,
    crate::users::CreateUser,
    crate::users::ChangeRole,
    crate::users::SetUserDisabled,
    crate::users::ResetPassword,
    crate::variables::SetVariable,
    crate::variables::SetSecret,
    crate::variables::UnsetVariable,
    crate::webhooks::LoadWebhooks,
    crate::webhooks::AddWebhook,
    crate::webhooks::RemoveWebhook,
    crate::webhooks::RedeliverWebhook,
    crate::freezes::LoadFreezes,
    crate::freezes::AddFreeze,
    crate::freezes::RemoveFreeze,
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sign {
        release: i64,
        note: String,
    }

    #[test]
    fn a_good_form_decodes() {
        let s: Sign = decode(b"release=7&note=looks+good%21").unwrap();
        assert_eq!(
            s,
            Sign {
                release: 7,
                note: "looks good!".into()
            }
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let field = |body: &[u8]| match decode::<Sign>(body).unwrap_err() {
            AppError::InvalidInput { field, message } => (field, message),
            e => panic!("{e:?}"),
        };
        let (f, m) = field(b"release=seven&note=x");
        assert_eq!(f, "release");
        assert!(m.contains("\"release\""), "{m}");
        let (f, m) = field(b"note=x");
        assert_eq!(f, "release");
        assert!(m.contains("missing field"), "{m}");
        assert_eq!(field(b"release=1&note=\xff").0, "body");
        assert_eq!(field(b"").0, "release");
    }

    #[test]
    fn only_urlencoded_forms_are_forms() {
        assert!(is_form("application/x-www-form-urlencoded"));
        assert!(is_form("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(!is_form("text/plain"));
        assert!(!is_form("application/json"));
        assert!(!is_form("multipart/form-data; boundary=x"));
        assert!(!is_form(""));
    }
}
