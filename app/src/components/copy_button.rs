//! A Copy button for text shown once (a token's secret): it says whether
//! the browser really took the text, since a refused clipboard (no
//! permission, an insecure origin) would otherwise leave someone believing
//! they saved a secret they can never see again.

use leptos::prelude::*;

#[derive(Clone, Copy, PartialEq, Eq)]
// `Yes` comes only from the browser's clipboard (the hydrate build).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Copied {
    NotYet,
    Yes,
    Refused,
}

#[component]
pub fn CopyButton(
    /// What goes to the clipboard.
    text: String,
    /// The button's `data-testid`.
    testid: &'static str,
) -> impl IntoView {
    let state = RwSignal::new(Copied::NotYet);
    view! {
        <button type="button" data-testid=testid on:click=move |_| copy(&text, state)>
            {move || match state.get() {
                Copied::NotYet => "Copy",
                Copied::Yes => "Copied",
                Copied::Refused => "Copy again",
            }}
        </button>
        <span class="copy-outcome" role="status" aria-live="polite">
            {move || match state.get() {
                Copied::NotYet => "",
                Copied::Yes => "Copied to the clipboard.",
                Copied::Refused => "The browser refused the clipboard: select the text and copy it.",
            }}
        </span>
    }
}

#[cfg(feature = "hydrate")]
fn copy(text: &str, state: RwSignal<Copied>) {
    let promise = window().navigator().clipboard().write_text(text);
    leptos::task::spawn_local(async move {
        let done = wasm_bindgen_futures::JsFuture::from(promise).await;
        state.set(if done.is_ok() {
            Copied::Yes
        } else {
            Copied::Refused
        });
    });
}

/// Without the browser build there is no clipboard to reach.
#[cfg(not(feature = "hydrate"))]
fn copy(_text: &str, state: RwSignal<Copied>) {
    state.set(Copied::Refused);
}
