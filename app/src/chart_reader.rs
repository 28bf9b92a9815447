//! The traffic charts' readout in islands mode: a behaviour-only island.
//! The server draws the chart, its hover titles, a hidden cursor line and
//! the newest step's figures; this island, placed in the chart's `<figure>`,
//! moves the cursor and the readout when the pointer is over a step or the
//! arrow keys (Home, End) move through the steps of the focused chart. It
//! renders nothing, so no chart view code enters the WASM.

use leptos::prelude::*;

#[island]
pub fn ChartReader(xs: Vec<f64>, texts: Vec<String>) -> impl IntoView {
    let anchor: NodeRef<leptos::html::Span> = NodeRef::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(span) = anchor.get() {
            browser::attach(&span, xs.clone(), texts.clone());
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (xs, texts);
    view! { <span hidden node_ref=anchor></span> }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::wasm_bindgen::{closure::Closure, JsCast};
    use std::cell::Cell;
    use std::rc::Rc;

    struct Chart {
        cursor_line: web_sys::Element,
        readout: web_sys::Element,
        xs: Vec<f64>,
        texts: Vec<String>,
        at: Cell<Option<usize>>,
    }

    impl Chart {
        fn show(&self, at: Option<usize>) {
            self.at.set(at);
            let shown = at.or(self.texts.len().checked_sub(1));
            let text = shown
                .and_then(|i| self.texts.get(i).cloned())
                .unwrap_or_else(|| "no figures yet".into());
            self.readout.set_text_content(Some(&text));
            match at.and_then(|i| self.xs.get(i)) {
                Some(x) => {
                    let x = x.to_string();
                    let _ = self.cursor_line.set_attribute("x1", &x);
                    let _ = self.cursor_line.set_attribute("x2", &x);
                    let _ = self.cursor_line.set_attribute("visibility", "visible");
                }
                None => {
                    let _ = self.cursor_line.set_attribute("visibility", "hidden");
                }
            }
        }
    }

    fn listen(target: &web_sys::Element, event: &str, f: impl FnMut(web_sys::Event) + 'static) {
        let cb = Closure::<dyn FnMut(web_sys::Event)>::new(f);
        let _ = target.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
        // The listener lives as long as the element: the page owns it.
        cb.forget();
    }

    pub(super) fn attach(anchor: &web_sys::HtmlSpanElement, xs: Vec<f64>, texts: Vec<String>) {
        let Some(figure) = anchor.closest("figure").ok().flatten() else {
            return;
        };
        let (Some(svg), Some(cursor_line), Some(readout)) = (
            figure.query_selector("svg").ok().flatten(),
            figure.query_selector("line.cursor").ok().flatten(),
            figure.query_selector(".chart-readout").ok().flatten(),
        ) else {
            return;
        };
        let chart = Rc::new(Chart {
            cursor_line,
            readout,
            xs,
            texts,
            at: Cell::new(None),
        });
        if let Ok(hovers) = figure.query_selector_all("rect.hover") {
            for i in 0..hovers.length() {
                if let Some(rect) = hovers
                    .item(i)
                    .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
                {
                    let chart = Rc::clone(&chart);
                    listen(&rect, "mouseenter", move |_| chart.show(Some(i as usize)));
                }
            }
        }
        for event in ["mouseleave", "blur"] {
            let chart = Rc::clone(&chart);
            listen(&svg, event, move |_| chart.show(None));
        }
        let keys = Rc::clone(&chart);
        listen(&svg, "keydown", move |ev| {
            let Some(ev) = ev.dyn_ref::<web_sys::KeyboardEvent>() else {
                return;
            };
            let Some(last) = keys.texts.len().checked_sub(1) else {
                return;
            };
            let at = keys.at.get().unwrap_or(last);
            let next = match ev.key().as_str() {
                "ArrowLeft" => at.saturating_sub(1),
                "ArrowRight" => (at + 1).min(last),
                "Home" => 0,
                "End" => last,
                _ => return,
            };
            ev.prevent_default();
            keys.show(Some(next));
        });
    }
}
