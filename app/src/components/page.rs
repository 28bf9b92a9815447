//! The frame around every signed-in page: the top bar, `<main>`, the
//! loading line and what the page shows when its data could not be loaded.

use crate::auth::UserBar;
use crate::error::AppError;
use leptos::prelude::*;
use model::SessionUser;
use serde::{de::DeserializeOwned, Serialize};

#[component]
pub fn TopBar(user: SessionUser) -> impl IntoView {
    let is_admin = user.role == model::Role::Admin;
    view! {
        <header class="top">
            <nav aria-label="Console">
                <a class="brand" href="/">"Switchyard"</a>
                <a href="/">"Dashboard"</a>
                <a href="/releases">"Releases"</a>
                <a href="/audit">"Audit log"</a>
                {is_admin.then(|| view! { <a href="/environments" data-testid="nav-environments">"Environments"</a> })}
                {is_admin.then(|| view! { <a href="/users">"Users"</a> })}
                <a href="/tokens">"Tokens"</a>
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

/// A signed-in page: waits for `page`, then shows the top bar for the user
/// and `<main>` (with `main_class`, if any) holding what `render` makes of
/// the data; `render` returns the signed-in user and the page's contents.
/// A failed load shows `page_error` instead.
pub fn page_shell<T, V>(
    page: Resource<Result<T, AppError>>,
    main_class: Option<&'static str>,
    render: impl Fn(T) -> (SessionUser, V) + Clone + Send + Sync + 'static,
) -> AnyView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: IntoView + 'static,
{
    let body = move || {
        let render = render.clone();
        Suspend::new(async move {
            match page.await {
                Ok(data) => {
                    let (user, contents) = render(data);
                    view! {
                        <TopBar user/>
                        <main id=crate::MAIN_ID class=main_class>{contents}</main>
                    }
                    .into_any()
                }
                Err(e) => view! { <main id=crate::MAIN_ID>{page_error(e)}</main> }.into_any(),
            }
        })
    };
    // Every route renders whole before its first byte (`SsrMode::Async`),
    // and pages are server HTML (islands), so nothing is ever shown while
    // the data loads.
    view! { <Suspense fallback=|| ()>{body}</Suspense> }.into_any()
}
