//! Signing in and out, and who the current user is.

use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::prelude::*;
use model::SessionUser;

#[cfg(feature = "ssr")]
pub mod ssr {
    use crate::error::AppError;
    use crate::state::AppState;
    use engine::Actor;
    use leptos::prelude::*;
    use tower_sessions::Session;

    const USER_ID: &str = "user_id";
    const LOGIN_AT: &str = "login_at";
    const AUTH_EPOCH: &str = "auth_epoch";
    const ROLE_EPOCH: &str = "role_epoch";

    /// The console's state, which every server-side render and server
    /// function call gets through Leptos context. Its absence is a bug in
    /// how the call was made: the log names the caller to find it by.
    ///
    /// Call it before the function's first wait (as `actor`, `signed_in`,
    /// `authorized` and the pages' load functions do): a server-side render
    /// may drop a pass while its calls are in flight, and the context goes
    /// with the pass.
    #[track_caller]
    pub fn state() -> Result<AppState, AppError> {
        let caller = std::panic::Location::caller();
        use_context::<AppState>().ok_or_else(|| {
            tracing::error!(%caller, "AppState missing from Leptos context");
            AppError::Internal
        })
    }

    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>().await.map_err(|e| {
            tracing::error!(error = %e, "no session layer on this request");
            AppError::Internal
        })
    }

    fn internal(e: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %e, "session store");
        AppError::Internal
    }

    /// Starts an authenticated session under a fresh id (no fixation).
    pub async fn begin(session: &Session, user: &engine::User) -> Result<(), AppError> {
        session.cycle_id().await.map_err(internal)?;
        session.insert(USER_ID, user.id).await.map_err(internal)?;
        session
            .insert(AUTH_EPOCH, user.auth_epoch)
            .await
            .map_err(internal)?;
        session
            .insert(ROLE_EPOCH, user.role_epoch)
            .await
            .map_err(internal)?;
        session
            .insert(LOGIN_AT, chrono::Utc::now().timestamp())
            .await
            .map_err(internal)?;
        Ok(())
    }

    /// The signed-in user, read fresh from the database on every call so that
    /// a role change or a disabled account takes effect at once.
    pub async fn current_user() -> Result<Option<engine::User>, AppError> {
        user_of(&state()?, &session().await?).await
    }

    /// The user a session belongs to, if it is still valid: within its
    /// absolute lifetime, and the account exists and is enabled. Usable from
    /// plain axum handlers too (no Leptos context needed).
    pub async fn user_of(
        st: &AppState,
        session: &Session,
    ) -> Result<Option<engine::User>, AppError> {
        let Some(id) = session.get::<i64>(USER_ID).await.map_err(internal)? else {
            return Ok(None);
        };
        let login_at = session
            .get::<i64>(LOGIN_AT)
            .await
            .map_err(internal)?
            .unwrap_or(0);
        let age = chrono::Utc::now().timestamp() - login_at;
        if age < 0 || age as u64 > st.session_absolute_timeout.as_secs() {
            session.flush().await.map_err(internal)?;
            return Ok(None);
        }
        let auth_epoch = session.get::<i64>(AUTH_EPOCH).await.map_err(internal)?;
        let user = match st.engine.session_user(id, auth_epoch).await? {
            Some(u) => u,
            // Gone, disabled, or the password was reset since this session began.
            None => {
                session.flush().await.map_err(internal)?;
                return Ok(None);
            }
        };
        let role_epoch = session.get::<i64>(ROLE_EPOCH).await.map_err(internal)?;
        if role_epoch != Some(user.role_epoch) {
            // The role changed: same person, new privileges, new session id.
            session.cycle_id().await.map_err(internal)?;
            session
                .insert(ROLE_EPOCH, user.role_epoch)
                .await
                .map_err(internal)?;
        }
        Ok(Some(user))
    }

    /// The client's address, for the audit log.
    pub async fn source_ip() -> Option<String> {
        leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .await
            .ok()
            .map(|info| info.0.ip().to_string())
    }

    /// The signed-in user as an engine actor, or `Unauthenticated`.
    ///
    /// Everything it needs from the request's context (the address, the
    /// state, the session) is read before its first real wait, the
    /// database's: a server-side render may drop a pass it rendered while
    /// a call is in flight, and after that the call's context is gone.
    pub async fn actor() -> Result<Actor, AppError> {
        let ip = source_ip().await;
        let user = current_user().await?.ok_or(AppError::Unauthenticated)?;
        Ok(Actor::user(user).from_ip(ip))
    }

    /// The signed-in user twice over: as the engine authorizes them, and as
    /// a page shows them (name and role for the top bar and its buttons).
    pub async fn signed_in() -> Result<(Actor, model::SessionUser), AppError> {
        // The context first, as in `actor`.
        let ip = source_ip().await;
        let user = current_user().await?.ok_or(AppError::Unauthenticated)?;
        let me = user.to_session_user();
        Ok((Actor::user(user).from_ip(ip), me))
    }

    /// The signed-in actor, once the engine has allowed them `action` (on
    /// `environment`): for server functions that read a form before their
    /// one engine call, so that a refused role learns nothing from it.
    pub async fn authorized(
        action: engine::Action,
        environment: Option<&str>,
    ) -> Result<Actor, AppError> {
        let engine = state()?.engine;
        let actor = actor().await?;
        engine.authorize(&actor, action, environment).await?;
        Ok(actor)
    }
}

#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Option<SessionUser>, AppError> {
    crate::error::respond(
        async move { Ok(ssr::current_user().await?.map(|u| u.to_session_user())) }.await,
    )
}

#[server(endpoint = "login")]
pub async fn login(username: String, password: String) -> Result<(), AppError> {
    crate::error::respond(
        async move {
            let st = ssr::state()?;
            let user = st
                .engine
                .login(username.trim(), &password, ssr::source_ip().await)
                .await?;
            let session = ssr::session().await?;
            ssr::begin(&session, &user).await?;
            tracing::info!(user = %user.username, "signed in");
            leptos_axum::redirect("/");
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    crate::error::respond(
        async move {
            if let Ok(actor) = ssr::actor().await {
                ssr::state()?.engine.logout(&actor).await?;
            }
            let session = ssr::session().await?;
            session.flush().await.map_err(|e| {
                tracing::error!(error = %e, "session store");
                AppError::Internal
            })?;
            leptos_axum::redirect("/login");
            Ok(())
        }
        .await,
    )
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = crate::flash::action::<Login>();
    let error = move || match login.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <main id=crate::MAIN_ID class="login">
            <h1>"Switchyard"</h1>
            <p class="subtitle">"Blue-green deployments you can trust with production."</p>
            <ActionForm action=login>
                <label>
                    "Username" <input type="text" name="username" autocomplete="username" required/>
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                <button type="submit" disabled=move || login.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
            {move || error().map(|e| view! { <p class="error" role="alert" data-testid="login-error">{e}</p> })}
        </main>
    }
}

/// The header's user badge and sign-out button.
#[component]
pub fn UserBar(user: SessionUser) -> impl IntoView {
    let logout = crate::flash::action::<Logout>();
    view! {
        <div class="userbar">
            <span data-testid="current-user">{user.username}</span>
            <span class="role">{user.role.to_string()}</span>
            <ActionForm action=logout>
                <button type="submit" class="link">"Sign out"</button>
            </ActionForm>
        </div>
    }
}
