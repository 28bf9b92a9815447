//! The frame around every signed-in page.

use crate::auth::UserBar;
use leptos::prelude::*;
use model::SessionUser;

#[component]
pub fn TopBar(user: SessionUser) -> impl IntoView {
    view! {
        <header class="top">
            <nav>
                <a class="brand" href="/">"Switchyard"</a>
                <a href="/">"Environments"</a>
                <a href="/audit">"Audit log"</a>
            </nav>
            <UserBar user/>
        </header>
    }
}
