//! WASM entry point: hydrates the islands of the server-rendered page
//! (docs/ARCHITECTURE.md, "Islands"); everything else stays server HTML.
// The console's nested views produce deep types; the default limit is too low
// for the compiler's layout queries on the wasm target.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}

// Each `#[island]` exports its own hydrate function from `app`; the crate
// must be linked in for the island script to find them.
#[allow(unused_imports)]
use app::*;
