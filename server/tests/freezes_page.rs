//! The freeze windows on the settings page, through its server functions
//! over real HTTP as the browser calls them: everyone signed in lists them;
//! only admins add (every field checked by the engine, the bad one named,
//! nothing written) and delete; a window holding now refuses the
//! dashboard's deploy with its reason, and a rollback is not refused by it.

mod support;

use model::FreezeView;
use support::*;

fn once<'a>(reason: &'a str, starts: &'a str, ends: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("environment", ENV),
        ("reason", reason),
        ("kind", "once"),
        ("starts", starts),
        ("ends", ends),
        ("days", ""),
        ("start_time", ""),
        ("duration_minutes", ""),
        ("time_zone", "UTC"),
    ]
}

async fn audited(c: &Console, action: &str) -> i64 {
    engine::store::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
        .bind(action)
        .fetch_one(&c.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn admins_add_and_delete_windows_and_everyone_else_changes_nothing() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    c.user("dora", Role::Deployer).await;
    c.user("vera", Role::Viewer).await;
    let (ada, dora, vera) = (
        c.session_for("ada").await,
        c.session_for("dora").await,
        c.session_for("vera").await,
    );
    let window = once(
        "holiday <b>freeze</b>",
        "2000-01-01 00:00",
        "2999-01-01 00:00",
    );

    // Not an admin: refused before the form is read, nothing written.
    for who in [&dora, &vera] {
        let r = c.post("/api/add_freeze", &window, Some(who), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    let r = c.post("/api/add_freeze", &window, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(c.count("freeze_windows").await, 0);

    // Bad input: the field is named, nothing written.
    let bad = [
        (once("x", "someday", "2999-01-01 00:00"), "starts"),
        (once("x", "2001-01-01 00:00", "2000-01-01 00:00"), "ends"),
        (once("", "2000-01-01 00:00", "2999-01-01 00:00"), "reason"),
    ];
    for (form, field) in bad {
        let r = c.post("/api/add_freeze", &form, Some(&ada), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(
            matches!(r.error(), AppError::InvalidInput { field: f, .. } if f == field),
            "{field}: {}",
            r.body
        );
    }
    let mut weekly = once("x", "", "");
    weekly[2] = ("kind", "weekly");
    weekly[5] = ("days", "fri");
    weekly[6] = ("start_time", "18:00");
    weekly[7] = ("duration_minutes", "forever");
    let r = c.post("/api/add_freeze", &weekly, Some(&ada), &[]).await;
    assert!(
        matches!(r.error(), AppError::InvalidInput { field, .. } if field == "duration_minutes"),
        "{}",
        r.body
    );
    let mut kind = once("x", "2000-01-01 00:00", "2999-01-01 00:00");
    kind[2] = ("kind", "sometimes");
    let r = c.post("/api/add_freeze", &kind, Some(&ada), &[]).await;
    assert!(
        matches!(r.error(), AppError::InvalidInput { field, .. } if field == "kind"),
        "{}",
        r.body
    );
    assert_eq!(c.count("freeze_windows").await, 0);

    let added: FreezeView = c
        .post("/api/add_freeze", &window, Some(&ada), &[])
        .await
        .json();
    assert!(added.active_until.is_some(), "{added:?}");
    assert_eq!(audited(&c, "freeze.add").await, 1);

    // Everyone signed in sees it, the reason escaped on the page.
    let listed = c
        .post(
            "/api/load_freezes",
            &[("environment", ENV)],
            Some(&vera),
            &[],
        )
        .await;
    let listed: Vec<FreezeView> = listed.json();
    assert_eq!(listed.len(), 1);
    let page = c
        .get(&format!("/environments/{ENV}/settings"), Some(&vera))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("holiday &lt;b&gt;freeze&lt;/b&gt;"),
        "not listed escaped"
    );
    assert!(!page.body.contains("holiday <b>freeze"));

    // The dashboard's deploy is refused naming the window.
    let r = c
        .post(
            "/api/deploy",
            &[("environment", ENV), ("version", "v2")],
            Some(&dora),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body.contains("holiday <b>freeze</b>") || r.body.contains("holiday \\u003cb"),
        "{}",
        r.body
    );
    // A rollback is not refused by the freeze (here: nothing is live).
    let r = c
        .post(
            "/api/rollback",
            &[("environment", ENV), ("reason", "back")],
            Some(&dora),
            &[],
        )
        .await;
    assert!(!r.body.contains("frozen"), "{}", r.body);

    // Delete: admins only, then gone.
    let id = added.id.to_string();
    let form = [("environment", ENV), ("id", id.as_str())];
    let r = c.post("/api/remove_freeze", &form, Some(&dora), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(c.count("freeze_windows").await, 1);
    let r = c.post("/api/remove_freeze", &form, Some(&ada), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(c.count("freeze_windows").await, 0);
    assert_eq!(audited(&c, "freeze.remove").await, 1);
    let r = c.post("/api/remove_freeze", &form, Some(&ada), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn the_settings_form_turns_the_hold_on_for_admins_only() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    c.user("dora", Role::Deployer).await;
    let (ada, dora) = (c.session_for("ada").await, c.session_for("dora").await);
    let d = model::PipelineSettings::default();
    let fields = [
        ("health_interval_ms", d.health_interval_ms.to_string()),
        ("health_deadline_ms", d.health_deadline_ms.to_string()),
        ("smoke_paths", d.smoke_paths.clone()),
        ("sample_requests", d.sample_requests.to_string()),
        ("p95_ms", d.p95_ms.to_string()),
        ("p99_ms", d.p99_ms.to_string()),
        ("max_error_pct", d.max_error_pct.to_string()),
        ("drain_timeout_ms", d.drain_timeout_ms.to_string()),
        ("watch_window_ms", d.watch_window_ms.to_string()),
        ("standby_window_ms", d.standby_window_ms.to_string()),
    ];
    let form = |hold: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, String)> = vec![("environment", ENV.to_string())];
        f.extend(fields.iter().map(|(k, v)| (*k, v.clone())));
        f.extend(hold.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    fn send<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        f.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
    let on = form(&[("hold_at_preview", "on"), ("hold_timeout_ms", "60000")]);
    let r = c
        .post("/api/save_pipeline_settings", &send(&on), Some(&dora), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let bad = form(&[("hold_at_preview", "on"), ("hold_timeout_ms", "5")]);
    let r = c
        .post("/api/save_pipeline_settings", &send(&bad), Some(&ada), &[])
        .await;
    assert!(
        matches!(r.error(), AppError::InvalidInput { field, .. } if field == "hold_timeout_ms"),
        "{}",
        r.body
    );
    let odd = form(&[("hold_at_preview", "yes please")]);
    let r = c
        .post("/api/save_pipeline_settings", &send(&odd), Some(&ada), &[])
        .await;
    assert!(
        matches!(r.error(), AppError::InvalidInput { field, .. } if field == "hold_at_preview"),
        "{}",
        r.body
    );
    let sys = engine::Actor::system();
    assert!(
        !c.engine
            .pipeline_settings(&sys, ENV)
            .await
            .unwrap()
            .hold_at_preview
    );
    let r = c
        .post("/api/save_pipeline_settings", &send(&on), Some(&ada), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = c.engine.pipeline_settings(&sys, ENV).await.unwrap();
    assert!(s.hold_at_preview && s.hold_timeout_ms == 60_000, "{s:?}");
    // A form without the checkbox turns it off (and the timeout stays given).
    let off = form(&[("hold_timeout_ms", "60000")]);
    let r = c
        .post("/api/save_pipeline_settings", &send(&off), Some(&ada), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        !c.engine
            .pipeline_settings(&sys, ENV)
            .await
            .unwrap()
            .hold_at_preview
    );
}
