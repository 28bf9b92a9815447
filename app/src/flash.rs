//! Forms that work before the WASM arrives (docs/ARCHITECTURE.md, "Pages
//! without JavaScript").
//!
//! Every form is an `ActionForm`: a `<form method="post">` to its server
//! function. With JavaScript, the action answers in place. Without it, the
//! browser posts the form itself; the console (`server/src/plain_forms.rs`)
//! keeps the answer in the session as a [`Flash`] and redirects back to the
//! page the form was on (post/redirect/get, so a reload does not post again).
//! The next page render takes the flash out of the session, and every action
//! of that server function on the page starts with the answer as its value:
//! the page shows it exactly where the action would have shown it.
//!
//! The islands that hydrate on the page must start with the same value, or
//! the page would change under the reader: the server writes the flash into
//! the document's head as JSON ([`FlashData`]), and the browser reads it
//! from there. A refusal also carries what was typed (never a password or a
//! secret), and the browser puts it back into the form ([`restore_fields`]).

use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A server function's answer to a plain form post, kept for the page it
/// redirects back to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// The server function's path (`/api/deploy`): which actions it belongs to.
    pub path: String,
    /// The form's `environment` field, when it had one: on a page with a
    /// form per environment (the dashboard), only that environment's action
    /// shows the answer ([`action_in`]).
    pub environment: Option<String>,
    /// Whether the body is the function's value (`true`) or its error.
    pub ok: bool,
    /// The answer as the function's JSON encoding wrote it.
    pub body: String,
    /// What was typed into a refused form (name, value), so the page can
    /// put it back for a second try; never a password or a secret
    /// ([`keeps_field`]). Empty when the form was accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

/// Whether a refused form's field `name` is kept for the page to put back:
/// everything but passwords and secrets, which are never written to the
/// session store or into a page.
pub fn keeps_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !(name.contains("password") || name.contains("secret"))
}

/// The id of the element that carries the flash to the browser.
pub const ELEMENT_ID: &str = "sy-flash";

/// Server functions whose answer holds a secret shown once (a new token, a
/// webhook's signing secret, a one-time password). Their answer is never
/// stored in the session: without JavaScript they are refused before they
/// run, and nothing is created.
pub const SHOWN_ONCE: &[&str] = &[
    "/api/create_token",
    "/api/add_webhook",
    "/api/create_user",
    "/api/reset_password",
];

/// Why a shown-once function refuses a plain form post.
pub const NEEDS_JAVASCRIPT: &str =
    "this answer holds a secret shown only once, which this page can show only with JavaScript: turn JavaScript on and try again (nothing was created)";

/// A server action that starts with the flash's answer when the page was
/// reached by posting its form without JavaScript.
pub fn action<S>() -> ServerAction<S>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    seeded(ServerAction::<S>::new(), None)
}

/// [`action`] for the form of one environment's panel: it shows the answer
/// only when the form posted was this environment's.
pub fn action_in<S>(environment: &str) -> ServerAction<S>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    seeded(ServerAction::<S>::new(), Some(environment))
}

fn seeded<S>(action: ServerAction<S>, environment: Option<&str>) -> ServerAction<S>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: DeserializeOwned + Send + Sync + 'static,
{
    let answer = current().filter(|f| {
        f.path == S::PATH && environment.is_none_or(|e| f.environment.as_deref() == Some(e))
    });
    if let Some(flash) = answer {
        action.value().set(Some(decode::<S::Output>(&flash)));
    }
    action
}

/// The answer in `flash`, as the action would have received it. An answer
/// that does not decode (the console was upgraded between the post and the
/// page) says so rather than vanishing.
///
/// `from_slice`, as the server functions' own JSON codec decodes: the
/// WASM then shares one decoder per answer type with it instead of
/// carrying a second one per type.
fn decode<T: DeserializeOwned>(flash: &Flash) -> Result<T, AppError> {
    if flash.ok {
        serde_json::from_slice(flash.body.as_bytes()).map_err(|e| {
            AppError::Transport(format!("the form's answer could not be read back: {e}"))
        })
    } else {
        Err(
            serde_json::from_slice(flash.body.as_bytes()).unwrap_or_else(|_| {
                AppError::Transport(format!("the form was refused: {}", flash.body))
            }),
        )
    }
}

/// The flash this render answers to: on the server, the one the request
/// took out of the session; in the browser, the one the page carried, until
/// the first navigation.
fn current() -> Option<Flash> {
    #[cfg(feature = "ssr")]
    {
        use_context::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Flash>().cloned())
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        browser::current()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        None
    }
}

/// The flash as JSON a `<script type="application/json">` can hold: `<`,
/// `>` and `&` escaped as `\u00XX`, so no text in an answer can close the
/// element or open a comment.
pub fn script_json(flash: &Flash) -> String {
    serde_json::to_string(flash)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The document head's copy of this request's flash, for the browser that
/// hydrates the page; nothing when there is none.
#[component]
pub fn FlashData() -> impl IntoView {
    #[cfg(feature = "ssr")]
    let json = current().map(|f| script_json(&f));
    #[cfg(not(feature = "ssr"))]
    let json: Option<String> = None;
    json.map(
        |json| view! { <script type="application/json" id=ELEMENT_ID inner_html=json></script> },
    )
}

/// Puts a refused plain post's typed values back into its form, once the
/// page is in the browser's hands (the server renders forms empty).
pub fn restore_fields() {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    let _ = browser::restore_fields();
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
mod browser {
    use super::{Flash, ELEMENT_ID};
    use std::cell::RefCell;

    thread_local! {
        /// Read once from the document. Every navigation loads a new
        /// document (islands: there is no client-side router), so a page
        /// reached by a link starts without it.
        static FLASH: RefCell<Option<Option<Flash>>> = const { RefCell::new(None) };
    }

    pub(super) fn current() -> Option<Flash> {
        FLASH.with(|cell| {
            cell.borrow_mut()
                .get_or_insert_with(|| {
                    leptos::prelude::document()
                        .get_element_by_id(ELEMENT_ID)
                        .and_then(|el| el.text_content())
                        .and_then(|json| serde_json::from_slice(json.as_bytes()).ok())
                })
                .clone()
        })
    }

    /// Puts a refused form's typed values back into the forms posting to
    /// its function (on the dashboard, only the environment's own form).
    pub(super) fn restore_fields() -> Option<()> {
        use leptos::wasm_bindgen::JsCast;
        use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
        let flash = current().filter(|f| !f.ok && !f.fields.is_empty())?;
        let doc = leptos::prelude::document();
        let forms = doc
            .query_selector_all(&format!("form[action=\"{}\"]", flash.path))
            .ok()?;
        let posted = |name: &str| -> Vec<String> {
            flash
                .fields
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        for i in 0..forms.length() {
            let Some(form) = forms
                .item(i)
                .and_then(|f| f.dyn_into::<web_sys::Element>().ok())
            else {
                continue;
            };
            if let Some(env) = &flash.environment {
                let own = form
                    .query_selector("input[name=environment]")
                    .ok()
                    .flatten()
                    .and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
                    .map(|e| e.value());
                if own.as_ref().is_some_and(|own| own != env) {
                    continue;
                }
            }
            let Ok(controls) = form.query_selector_all("input[name], select[name], textarea[name]")
            else {
                continue;
            };
            for j in 0..controls.length() {
                let Some(node) = controls.item(j) else {
                    continue;
                };
                if let Some(input) = node.dyn_ref::<HtmlInputElement>() {
                    let name = input.name();
                    match input.type_().as_str() {
                        "hidden" | "password" | "submit" | "button" | "file" => {}
                        "checkbox" | "radio" => {
                            let value = input.value();
                            input.set_checked(posted(&name).contains(&value));
                        }
                        _ => {
                            if let Some(v) = posted(&name).first() {
                                input.set_value(v);
                            }
                        }
                    }
                } else if let Some(select) = node.dyn_ref::<HtmlSelectElement>() {
                    if let Some(v) = posted(&select.name()).first() {
                        select.set_value(v);
                    }
                } else if let Some(area) = node.dyn_ref::<HtmlTextAreaElement>() {
                    if let Some(v) = posted(&area.name()).first() {
                        area.set_value(v);
                    }
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_copy_cannot_close_its_element_and_reads_back_the_same() {
        let flash = Flash {
            path: "/api/deploy".into(),
            environment: Some("production".into()),
            ok: false,
            body: r#"{"InvalidInput":{"field":"version","message":"</script><!-- & >"}}"#.into(),
            fields: vec![("version".into(), "</script><b>".into())],
        };
        let json = script_json(&flash);
        assert!(
            !json.contains('<') && !json.contains('>') && !json.contains('&'),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Flash>(&json).unwrap(), flash);
    }

    #[test]
    fn answers_decode_as_the_action_would_have_received_them() {
        let ok = Flash {
            path: "/api/x".into(),
            environment: None,
            ok: true,
            body: "\"v2 is live\"".into(),
            fields: vec![],
        };
        assert_eq!(decode::<String>(&ok).unwrap(), "v2 is live");
        let refused = Flash {
            path: "/api/x".into(),
            environment: None,
            ok: false,
            body: serde_json::to_string(&AppError::invalid("version", "bad version")).unwrap(),
            fields: vec![],
        };
        let err = decode::<String>(&refused).unwrap_err();
        assert!(err.to_string().contains("bad version"), "{err}");
        let garbled = Flash {
            path: "/api/x".into(),
            environment: None,
            ok: true,
            body: "{".into(),
            fields: vec![],
        };
        assert!(matches!(
            decode::<String>(&garbled),
            Err(AppError::Transport(_))
        ));
    }
}
