//! Switchyard's console UI. Each feature module holds its server functions and
//! components; server functions are thin: authenticate, authorize in the
//! engine, call one engine function, map the error.

pub mod audit;
pub mod auth;
pub mod checklists;
pub mod dashboard;
pub mod deployment;
pub mod error;
pub mod form;
pub mod layout;
pub mod links;
pub mod lock;
pub mod releases;
pub mod settings;
#[cfg(feature = "ssr")]
pub mod state;
pub mod textarea;
pub mod traffic;
pub mod users;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
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
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
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
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/switchyard.css"/>
        <Title text="Switchyard"/>
        <Router>
            <Routes fallback=|| view! { <p class="notice">"Page not found."</p> }>
                <Route path=path!("/login") view=auth::LoginPage/>
                <Route path=path!("/") view=dashboard::DashboardPage/>
                <Route path=path!("/deployments/:id") view=deployment::DeploymentPage/>
                <Route path=path!("/audit") view=audit::AuditLogPage/>
                <Route path=path!("/users") view=users::UsersPage/>
                <Route path=path!("/releases") view=releases::ReleasesListPage/>
                <Route path=path!("/releases/:id") view=releases::ReleaseDetailPage/>
                <Route path=path!("/environments/:name/checklist") view=checklists::ChecklistTemplatePage/>
                <Route path=path!("/environments/:name/lock") view=lock::LockDetailPage/>
                <Route path=path!("/environments/:name/settings") view=settings::SettingsDetailPage/>
            </Routes>
        </Router>
    }
}
