//! Switchyard's console UI. Each feature module holds its server functions and
//! components; server functions are thin: authenticate, authorize in the
//! engine, call one engine function, map the error.

pub mod audit;
pub mod auth;
pub(crate) mod chart;
pub mod chart_reader;
pub mod checklists;
pub mod components;
pub mod dashboard;
pub mod deployment;
pub mod environments;
pub mod error;
#[cfg(feature = "ssr")]
pub mod fields;
pub mod flash;
pub mod form;
pub mod format;
pub mod freezes;
pub mod hold;
pub mod links;
pub mod live;
pub mod lock;
pub mod releases;
pub mod rollback;
pub mod settings;
pub mod slot_output;
#[cfg(feature = "ssr")]
pub mod state;
pub mod textarea;
pub mod tokens;
pub mod traffic;
pub mod users;
pub mod variables;
pub mod webhooks;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    provide_csp_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.png"/>
                // The stylesheet's name carries its content hash in a release
                // build (cargo-leptos `hash-files`), so it is cached for good.
                <HashedStylesheet options=options.clone() id="leptos"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
                <flash::FlashData/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Hands the nonce the console's security headers put in this response's
/// Content-Security-Policy to Leptos, which writes it on every inline script
/// it emits (hydration, streamed resources): scripts without it do not run.
fn provide_csp_nonce() {
    #[cfg(feature = "ssr")]
    if let Some(nonce) = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<leptos::nonce::Nonce>().cloned())
    {
        provide_context(nonce);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: the marker tells
    // people's tools (and the end-to-end tests) that the page is interactive.
    view! {
        <Title text="Switchyard"/>
        // The first thing a keyboard reaches: past the top bar's links to the
        // page itself. Every page's `<main>` carries the id (`MAIN_ID`).
        <a class="skip-link" href=format!("#{MAIN_ID}")>"Skip to main content"</a>
        // Every page renders whole before its first byte is sent (`Async`):
        // a page's status (403 for a page this person may not see, 404 for a
        // missing deployment) is set by the data it loads, and with streaming
        // it would be 200 or not depending on which finished first. The same
        // full HTML is what a browser without JavaScript gets.
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=auth::LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/") view=dashboard::DashboardPage ssr=SsrMode::Async/>
                <Route path=path!("/deployments/:id") view=deployment::DeploymentPage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=audit::AuditLogPage ssr=SsrMode::Async/>
                <Route path=path!("/users") view=users::UsersPage ssr=SsrMode::Async/>
                <Route path=path!("/tokens") view=tokens::TokensPage ssr=SsrMode::Async/>
                <Route path=path!("/releases") view=releases::ReleasesListPage ssr=SsrMode::Async/>
                <Route path=path!("/releases/:id") view=releases::ReleaseDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/environments") view=environments::EnvironmentsListPage ssr=SsrMode::Async/>
                <Route path=path!("/environments/:name") view=environments::EnvironmentsListPage ssr=SsrMode::Async/>
                <Route path=path!("/environments/:name/checklist") view=checklists::ChecklistTemplatePage ssr=SsrMode::Async/>
                <Route path=path!("/environments/:name/lock") view=lock::LockDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/environments/:name/settings") view=settings::SettingsDetailPage ssr=SsrMode::Async/>
                <Route path=path!("/environments/:name/webhooks") view=webhooks::WebhooksDetailPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
        // Last in the body: the island script hydrates islands in document
        // order, so when this one has run every island above it has too.
        <HydratedMark/>
    }
}

/// Marks the body once the browser has hydrated the page's islands.
#[island]
fn HydratedMark() -> impl IntoView {
    Effect::new(|_| {
        flash::restore_fields();
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}

/// The id of every page's `<main>`: the skip link's target.
pub const MAIN_ID: &str = "main";

/// An address that names no page: 404, so that links checkers and monitors
/// see a missing page as one.
#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        opts.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <main id=MAIN_ID class="not-found">
            <h1>"Page not found"</h1>
            <p class="notice">"No page has this address. " <a href="/">"Go to the dashboard"</a></p>
        </main>
    }
}
