//! A `<textarea>` that shows user-written text safely, by construction.
//!
//! Leptos renders a textarea's children as raw text on the server (like
//! `<script>` and `<style>`), so `<textarea>{notes}</textarea>` lets notes such
//! as `</textarea><script>…` close the element and inject markup. This
//! component never passes the value as children: it escapes it and hands it
//! over as the element's inner HTML, which the HTML parser reads back as plain
//! text (a textarea's content is "escapable raw text": entities decode, tags
//! do not exist). The same string works in both renderers — written into the
//! server's HTML, and assigned as `innerHTML` when the browser renders the form
//! itself after a client-side navigation.

use leptos::prelude::*;

/// `text` with the characters that could end the element or start markup
/// replaced by their entities.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A multi-line field holding `value`. Other attributes (`data-testid`,
/// `placeholder`, …) are spread onto the element with `attr:`.
#[component]
pub fn TextArea(
    name: &'static str,
    rows: u32,
    #[prop(into, optional)] value: String,
    #[prop(optional)] readonly: bool,
) -> impl IntoView {
    view! { <textarea name=name rows=rows readonly=readonly inner_html=escape_text(&value)></textarea> }
}

#[cfg(test)]
mod tests {
    use super::escape_text;

    #[test]
    fn nothing_that_closes_the_element_survives() {
        let s = escape_text(r#"</textarea><script>alert('x')</script> & "q""#);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('"') && !s.contains('\''));
        assert_eq!(escape_text("a &amp; b"), "a &amp;amp; b");
        assert_eq!(escape_text("plain"), "plain");
    }
}
