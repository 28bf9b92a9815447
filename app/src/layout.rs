//! The frame around every signed-in page.

use crate::auth::UserBar;
use crate::error::AppError;
use leptos::prelude::*;
use model::SessionUser;

#[component]
pub fn TopBar(user: SessionUser) -> impl IntoView {
    let is_admin = user.role == model::Role::Admin;
    view! {
        <header class="top">
            <nav>
                <a class="brand" href="/">"Switchyard"</a>
                <a href="/">"Environments"</a>
                <a href="/releases">"Releases"</a>
                <a href="/audit">"Audit log"</a>
                {is_admin.then(|| view! { <a href="/users">"Users"</a> })}
            </nav>
            <UserBar user/>
        </header>
    }
}

/// What a page shows when loading it failed: a way back in for a session that
/// ended, the error's message otherwise.
pub fn page_error(e: AppError) -> AnyView {
    match e {
        AppError::Unauthenticated => view! {
            <p class="notice">"You are signed out. " <a href="/login">"Sign in"</a></p>
        }
        .into_any(),
        e => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
    }
}
