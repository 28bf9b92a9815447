//! WASM entry point: attaches the reactive UI to the server-rendered page.
// The console's nested views produce deep types; the default limit is too low
// for the compiler's layout queries on the wasm target.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
