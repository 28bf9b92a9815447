//! A slot's recent output on the dashboard, for deployers and admins: pick
//! a slot, read what its service printed (newest last, secrets masked),
//! following live while it is shown.

use crate::error::AppError;
use leptos::prelude::*;
use model::{SlotColor, SlotOutputView};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{authorized, state};

#[server(endpoint = "slot_output")]
pub async fn slot_output(environment: String, color: String) -> Result<SlotOutputView, AppError> {
    crate::error::respond(
        async move {
            let actor = authorized(engine::Action::Deploy, Some(&environment)).await?;
            let color: SlotColor = crate::fields::choice("color", &color)?;
            Ok(state()?
                .engine
                .slot_output(&actor, &environment, color)
                .await?)
        }
        .await,
    )
}

/// Buttons to show one slot's output, refreshed every two seconds while
/// one is shown: an island (islands mode).
#[island]
pub fn SlotOutputPanel(name: String) -> impl IntoView {
    let (shown, set_shown) = signal(None::<SlotColor>);
    let (tick, set_tick) = signal(0u64);
    Effect::new(move |_| {
        if shown.get().is_none() {
            return;
        }
        if let Ok(handle) = set_interval_with_handle(
            move || set_tick.update(|t| *t += 1),
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let env = name.clone();
    let output = Resource::new(
        move || (shown.get(), tick.get()),
        move |(color, _)| {
            let env = env.clone();
            async move {
                match color {
                    Some(c) => Some(slot_output(env, c.to_string()).await),
                    None => None,
                }
            }
        },
    );
    let button = move |color: SlotColor| {
        view! {
            <button
                type="button"
                data-testid=format!("show-output-{color}")
                aria-pressed=move || (shown.get() == Some(color)).to_string()
                on:click=move |_| set_shown.set(Some(color))
            >
                {format!("{color} slot")}
            </button>
        }
    };
    view! {
        <div class="slot-output">
            <p>
                "Recent output: " {button(SlotColor::Blue)} " " {button(SlotColor::Green)} " "
                <button type="button" on:click=move |_| set_shown.set(None)>"Hide"</button>
            </p>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match output.await {
                        None => ().into_any(),
                        Some(Ok(o)) => view! {
                            // It scrolls (style/main.css): a box that scrolls
                            // must take focus, or a keyboard cannot read it.
                            <pre class="output" tabindex="0" aria-label=format!("Output of the {} slot", o.color)
                                data-testid="slot-output" data-slot=o.color.to_string()>
                                {if o.text.is_empty() { "(nothing printed yet)".to_string() } else { o.text }}
                            </pre>
                            <p class="notice">{format!("The newest {} KiB; secrets are masked.", o.limit_bytes / 1024)}</p>
                        }
                        .into_any(),
                        Some(Err(e)) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
    .into_any()
}
