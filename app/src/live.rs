//! Live regions in islands mode: parts of a server-rendered page that the
//! browser keeps current by fetching the page again and swapping the
//! regions' HTML, so the WASM carries no code to render them.

use leptos::prelude::*;

/// The header a region refresh sends with its fetch of the page: the
/// console then leaves a form's answer (the flash) in the session for the
/// page load it belongs to (`server/src/plain_forms.rs`). Without it, a
/// refresh landing between a plain post and its redirect — or one from
/// another tab of the same person — would take the answer away.
pub const REFRESH_HEADER: &str = "x-switchyard-refresh";

/// Every `every_ms`, fetches this page again and replaces each region (by
/// element id) whose HTML changed. A region with the keyboard's focus in it
/// (someone reading a chart, typing) is left alone until it has none.
#[island]
pub fn LiveRefresh(regions: Vec<String>, every_ms: u32) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let regions: std::rc::Rc<[String]> = regions.clone().into();
        let tick = move || browser::spawn_refresh(regions.clone());
        if let Ok(handle) =
            set_interval_with_handle(tick, std::time::Duration::from_millis(every_ms.into()))
        {
            on_cleanup(move || handle.clear());
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (regions, every_ms);
}

/// Follows a server-sent event stream (`events`, a deployment's): each
/// event fetches the page again and swaps `regions`; the stream's `done`
/// ends it after one last fetch. When the stream cannot be opened or
/// breaks, the page is fetched every second instead, until no fresh region
/// says `data-follow="true"` any more (the deployment and its watch ended).
#[island]
pub fn LiveFollow(regions: Vec<String>, events: String) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| browser::follow(regions.clone(), &events));
    #[cfg(not(feature = "hydrate"))]
    let _ = (regions, events);
}

/// A button that fetches the page again and swaps the regions `regions`
/// (a delivery log): the rest of the page, a secret shown once among it,
/// stays as it is.
#[island]
pub fn RefreshButton(regions: Vec<String>, label: String, testid: String) -> impl IntoView {
    let on_click = move |_| {
        let ids: Vec<&str> = regions.iter().map(String::as_str).collect();
        refresh_now(&ids);
    };
    view! { <button type="button" data-testid=testid on:click=on_click>{label}</button> }
}

/// Fetches the page once now and swaps the regions `ids`: an island whose
/// action changed what the server renders around it (a new row in a table)
/// shows it without reloading the page.
pub fn refresh_now(ids: &[&str]) {
    #[cfg(feature = "hydrate")]
    browser::spawn_refresh(ids.iter().map(|s| s.to_string()).collect());
    #[cfg(not(feature = "hydrate"))]
    let _ = ids;
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::{document, window};
    use leptos::wasm_bindgen::JsCast;
    use std::rc::Rc;
    use wasm_bindgen_futures::JsFuture;

    /// The page fetched every second, until it says it has ended.
    const POLL_MS: i32 = 1000;

    /// Fetches the page and swaps `regions`, in the background.
    pub(super) fn spawn_refresh(regions: Rc<[String]>) {
        leptos::task::spawn_local(async move {
            let _ = refresh(&regions).await;
        });
    }

    pub(super) fn follow(regions: Vec<String>, events: &str) {
        use leptos::wasm_bindgen::closure::Closure;
        let regions: Rc<[String]> = regions.into();
        let fetch = {
            let regions = regions.clone();
            move || spawn_refresh(regions.clone())
        };
        let poll = {
            let regions = regions.clone();
            move || start_polling(regions.clone())
        };
        let Ok(source) = web_sys::EventSource::new(events) else {
            poll();
            return;
        };
        // The callbacks live as long as the page: in islands mode every
        // navigation loads a new document, so nothing outlives it.
        let on_message = Closure::<dyn FnMut()>::new(fetch.clone());
        let on_done = {
            let source = source.clone();
            Closure::<dyn FnMut()>::new(move || {
                source.close();
                fetch();
            })
        };
        // A stream that ends without `done` (refused, the console restarted,
        // its lifetime is up) would reconnect on its own: close it and ask
        // every second instead, so the page never stands still.
        let on_error = {
            let source = source.clone();
            Closure::<dyn FnMut()>::new(move || {
                source.close();
                poll();
            })
        };
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let _ = source.add_event_listener_with_callback("done", on_done.as_ref().unchecked_ref());
        on_message.forget();
        on_done.forget();
        on_error.forget();
    }

    fn start_polling(regions: Rc<[String]>) {
        use leptos::wasm_bindgen::closure::Closure;
        use std::cell::Cell;
        let handle = Rc::new(Cell::new(None::<i32>));
        let tick = {
            let handle = handle.clone();
            Closure::<dyn FnMut()>::new(move || {
                let (regions, handle) = (regions.clone(), handle.clone());
                leptos::task::spawn_local(async move {
                    if refresh(&regions).await == Some(false) {
                        if let Some(h) = handle.take() {
                            window().clear_interval_with_handle(h);
                        }
                    }
                });
            })
        };
        if let Ok(h) = window().set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            POLL_MS,
        ) {
            handle.set(Some(h));
        }
        tick.forget();
    }

    /// Fetches the page and swaps each region whose HTML changed; `true`
    /// when a fresh region still says it follows something.
    pub(super) async fn refresh(regions: &[String]) -> Option<bool> {
        let href = window().location().href().ok()?;
        let headers = web_sys::Headers::new().ok()?;
        headers.set(super::REFRESH_HEADER, "1").ok()?;
        let init = web_sys::RequestInit::new();
        init.set_headers_headers(&headers);
        let request = web_sys::Request::new_with_str_and_init(&href, &init).ok()?;
        let resp: web_sys::Response = JsFuture::from(window().fetch_with_request(&request))
            .await
            .ok()?
            .dyn_into()
            .ok()?;
        if !resp.ok() {
            return None;
        }
        let text = JsFuture::from(resp.text().ok()?).await.ok()?.as_string()?;
        let fresh = web_sys::DomParser::new()
            .ok()?
            .parse_from_string(&text, web_sys::SupportedType::TextHtml)
            .ok()?;
        let doc = document();
        let active = doc.active_element();
        let mut following = false;
        for id in regions {
            let (Some(old), Some(new)) = (doc.get_element_by_id(id), fresh.get_element_by_id(id))
            else {
                continue;
            };
            following |= new.get_attribute("data-follow").as_deref() == Some("true");
            if active
                .as_ref()
                .is_some_and(|a| old.contains(Some(a.as_ref())))
            {
                continue;
            }
            let html = new.inner_html();
            if old.inner_html() != html {
                old.set_inner_html(&html);
                hydrate_islands_in(&old);
            }
        }
        Some(following)
    }

    /// Hydrates the islands a swap brought in, through the function Leptos's
    /// island script leaves on `window` for this (`__hydrateIsland`).
    fn hydrate_islands_in(region: &web_sys::Element) {
        use leptos::wasm_bindgen::JsValue;
        let Ok(hydrate) = js_sys::Reflect::get(&window(), &JsValue::from_str("__hydrateIsland"))
        else {
            return;
        };
        let Some(hydrate) = hydrate.dyn_ref::<js_sys::Function>() else {
            return;
        };
        let Ok(islands) = region.query_selector_all("leptos-island") else {
            return;
        };
        for i in 0..islands.length() {
            let Some(el) = islands.item(i) else { continue };
            let Some(el) = el.dyn_ref::<web_sys::HtmlElement>() else {
                continue;
            };
            if let Some(component) = el.dataset().get("component") {
                let _ = hydrate.call2(&JsValue::NULL, el, &JsValue::from_str(&component));
            }
        }
    }
}
