//! Forms posted by a browser without JavaScript: the answer comes back on
//! the page the form was on (post/redirect/get), once; refusals change
//! nothing; a secret shown once is never kept in the session.

mod support;

use support::*;

/// Posts `form` to `path` as a browser does without JavaScript: HTML
/// accepted, from `page` of this console.
async fn plain_post(
    c: &Console,
    path: &str,
    form: &[(&str, &str)],
    cookie: &str,
    page: &str,
) -> Resp {
    let referer = format!("{}{page}", c.origin);
    c.post(
        path,
        form,
        Some(cookie),
        &[
            ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            ("referer", &referer),
        ],
    )
    .await
}

fn location(r: &Resp) -> &str {
    r.headers
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_else(|| panic!("no Location in {}: {}", r.status, r.body))
}

async fn user_id(c: &Console, name: &str) -> i64 {
    engine::users::find_by_name(&c.pool, name)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// A console with `ada`, an admin, signed in (her cookie) and `bob`, a
/// viewer (his id).
async fn ada_and_bob() -> (Console, String, String) {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    c.user("bob", Role::Viewer).await;
    let ada = c.session_for("ada").await;
    let bob = user_id(&c, "bob").await.to_string();
    (c, ada, bob)
}

/// Ada makes Bob a deployer with the users page's form, posted as a page.
async fn ada_makes_bob_deployer(c: &Console, ada: &str, bob: &str) -> Resp {
    plain_post(
        c,
        "/api/change_role",
        &[("user_id", bob), ("role", "deployer")],
        ada,
        "/users",
    )
    .await
}

#[tokio::test]
async fn an_answer_comes_back_on_the_page_once() {
    let (c, ada, bob) = ada_and_bob().await;

    let r = ada_makes_bob_deployer(&c, &ada, &bob).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), "/users");
    assert!(
        r.body.is_empty(),
        "no JSON for the browser to show: {}",
        r.body
    );

    let page = c.get("/users", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("bob is now deployer (enabled)"),
        "the answer is on the page"
    );
    // The browser that hydrates the page reads the same answer.
    assert!(page
        .body
        .contains(r#"<script type="application/json" id="sy-flash">"#));
    let again = c.get("/users", Some(&ada)).await;
    assert!(!again.body.contains("is now deployer"), "shown once");
    assert!(!again.body.contains("sy-flash"));
}

#[tokio::test]
async fn a_refusal_comes_back_escaped_and_changes_nothing() {
    let c = start().await;
    c.user("dana", Role::Deployer).await;
    let dana = c.session_for("dana").await;
    let before = c.count("deployments").await;

    let r = plain_post(
        &c,
        "/api/deploy",
        &[
            ("environment", ENV),
            ("version", "v1<script>alert(1)</script>"),
        ],
        &dana,
        "/?view=x&__err=old",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        location(&r),
        "/?view=x",
        "Leptos's error parameters dropped"
    );
    assert_eq!(c.count("deployments").await, before, "nothing deployed");

    let page = c.get("/", Some(&dana)).await;
    assert!(
        page.body.contains("may only use letters, digits"),
        "the refusal is shown"
    );
    assert!(
        !page.body.contains("<script>alert(1)"),
        "escaped in the page"
    );
    assert!(
        page.body
            .contains(r"v1\u003cscript\u003ealert(1)\u003c/script\u003e"),
        "escaped in the hydration copy"
    );

    // A field the function cannot decode is refused before it runs, by
    // name, and comes back the same way.
    let r = plain_post(&c, "/api/deploy", &[("environment", ENV)], &dana, "/").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = c.get("/", Some(&dana)).await;
    assert!(page.body.contains("version"), "names the missing field");
    assert_eq!(c.count("deployments").await, before);
}

#[tokio::test]
async fn a_secret_shown_once_is_refused_without_javascript() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let ada = c.session_for("ada").await;
    let r = plain_post(
        &c,
        "/api/create_token",
        &[
            ("name", "ci"),
            ("kind", "personal"),
            ("role", "viewer"),
            ("expires_in_days", "7"),
        ],
        &ada,
        "/tokens",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(c.count("api_tokens").await, 0, "nothing created");
    let page = c.get("/tokens", Some(&ada)).await;
    assert!(page.body.contains("turn JavaScript on"), "says why");
}

#[tokio::test]
async fn signing_in_without_javascript_lands_on_the_dashboard_or_says_why_not() {
    let c = start().await;
    c.user("dana", Role::Deployer).await;
    let referer = format!("{}/login", c.origin);
    let headers = [("accept", "text/html"), ("referer", referer.as_str())];
    let wrong = c
        .post(
            "/api/login",
            &[("username", "dana"), ("password", "not the password")],
            None,
            &headers,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&wrong), "/login");
    let page = c.get("/login", Some(&wrong.session())).await;
    assert!(page.body.contains("wrong username or password"));

    let right = c
        .post(
            "/api/login",
            &[("username", "dana"), ("password", PASSWORD)],
            None,
            &headers,
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&right), "/");
    let dashboard = c.get("/", Some(&right.session())).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains("Dashboard"));
}

#[tokio::test]
async fn a_cross_site_form_is_refused_not_redirected() {
    let (c, ada, bob) = ada_and_bob().await;
    let r = c
        .post(
            "/api/change_role",
            &[("user_id", &bob), ("role", "admin")],
            Some(&ada),
            &[
                ("accept", "text/html"),
                ("origin", "http://evil.example"),
                ("referer", "http://evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let bob_now = engine::users::find_by_name(&c.pool, "bob")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_now.role, Role::Viewer);
}

#[tokio::test]
async fn a_release_requested_without_javascript_opens_on_its_own_page() {
    let c = start().await;
    c.user("dana", Role::Deployer).await;
    let dana = c.session_for("dana").await;
    let request = |version: &'static str| {
        [
            ("environment", ENV),
            ("version", version),
            ("notes", "for the weekly train"),
            ("migration_sql", ""),
        ]
    };

    let r = plain_post(
        &c,
        "/api/request_release",
        &request("v3"),
        &dana,
        "/releases",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = location(&r).to_string();
    let id: i64 = to
        .strip_prefix("/releases/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not the new release's page: {to}"));
    assert_eq!(c.count("releases").await, 1);
    let page = c.get(&to, Some(&dana)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("for the weekly train"),
        "release #{id}'s own page, with its notes"
    );

    // A refused request goes back to the form, says why and makes nothing.
    let r = plain_post(&c, "/api/request_release", &request(""), &dana, "/releases").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), "/releases");
    assert_eq!(c.count("releases").await, 1, "nothing made");
    let page = c.get("/releases", Some(&dana)).await;
    assert!(page.body.contains("version is required"), "says why");
}

#[tokio::test]
async fn a_refused_form_keeps_what_was_typed_but_never_a_secret() {
    let c = start().await;
    c.user("ada", Role::Admin).await;
    let ada = c.session_for("ada").await;
    let page = format!("/environments/{ENV}/settings");

    // A bad name: refused, and the page carries what was typed back to the
    // form (in the head's JSON copy, escaped like every answer).
    let r = plain_post(
        &c,
        "/api/set_variable",
        &[
            ("environment", ENV),
            ("name", "MY GREETING"),
            ("value", "hello <b>world</b>"),
        ],
        &ada,
        &page,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let shown = c.get(&page, Some(&ada)).await;
    assert!(shown.body.contains("a letter or _"), "the refusal is shown");
    assert!(
        shown
            .body
            .contains(r#"["value","hello \u003cb\u003eworld\u003c/b\u003e"]"#),
        "the typed value comes back escaped: {}",
        shown.body
    );
    assert!(!shown.body.contains("<b>world"), "never as markup");

    // A refused secret keeps its name, never the secret typed.
    let r = plain_post(
        &c,
        "/api/set_secret",
        &[
            ("environment", ENV),
            ("name", "BAD NAME"),
            ("secret", "typed-s3cret-value"),
        ],
        &ada,
        &page,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let shown = c.get(&page, Some(&ada)).await;
    assert!(
        shown.body.contains(r#"["name","BAD NAME"]"#),
        "{}",
        shown.body
    );
    assert!(
        !shown.body.contains("typed-s3cret-value"),
        "the secret is not kept"
    );

    // An accepted form keeps nothing.
    plain_post(
        &c,
        "/api/set_variable",
        &[
            ("environment", ENV),
            ("name", "GREETING"),
            ("value", "kept-not"),
        ],
        &ada,
        &page,
    )
    .await;
    let shown = c.get(&page, Some(&ada)).await;
    assert!(!shown.body.contains(r#"["value","kept-not"]"#));
}

#[tokio::test]
async fn a_region_refresh_leaves_the_answer_to_the_page_it_belongs_to() {
    let (c, ada, bob) = ada_and_bob().await;
    ada_makes_bob_deployer(&c, &ada, &bob).await;

    // A live region's fetch (this page's, or another tab's) lands between
    // the post and its redirected page load: it neither shows nor takes
    // the answer.
    let refresh = Console::read(
        c.http
            .get(format!("{}/users", c.origin))
            .header("accept", "text/html")
            .header(app::live::REFRESH_HEADER, "1")
            .header("cookie", &ada)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refresh.status, StatusCode::OK);
    assert!(
        !refresh.body.contains("is now deployer"),
        "{}",
        refresh.body
    );

    let page = c.get("/users", Some(&ada)).await;
    assert!(
        page.body.contains("bob is now deployer (enabled)"),
        "the page load still gets the answer"
    );
}
