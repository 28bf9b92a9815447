//! The frame around every signed-in page.

use crate::auth::UserBar;
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
                <a href="/audit">"Audit log"</a>
                {is_admin.then(|| view! { <a href="/users">"Users"</a> })}
            </nav>
            <UserBar user/>
        </header>
    }
}
