//! The Tokens page's server functions over real HTTP, as the browser calls
//! them: a person makes tokens within their own role, sees the secret once
//! (never again in a list or a page), and revokes only their own (an admin
//! any); every refusal names its field and makes nothing.

mod support;

use support::*;

fn token_form<'a>(
    name: &'a str,
    kind: &'a str,
    role: &'a str,
    envs: &'a str,
    days: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("kind", kind),
        ("role", role),
        ("environments", envs),
        ("expires_in_days", days),
    ]
}

#[tokio::test]
async fn a_person_makes_a_token_within_their_role_and_sees_its_secret_once() {
    let c = start().await;
    c.user("vera", Role::Viewer).await;
    let vera = c.session_for("vera").await;

    let made = c
        .post(
            "/api/create_token",
            &token_form("laptop", "personal", "viewer", "", "30"),
            Some(&vera),
            &[],
        )
        .await;
    let issued: model::IssuedToken = made.json();
    assert!(issued.secret.starts_with("sy_"));
    assert_eq!(issued.token.owner, "vera");
    // The secret works against the API.
    let me = c
        .http
        .get(format!("{}/api/v1/me", c.origin))
        .bearer_auth(&issued.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // Never again: not in the list, not in the page.
    let list = c.post("/api/load_tokens", &[], Some(&vera), &[]).await;
    assert!(list.body.contains(&issued.token.prefix));
    assert!(
        !list.body.contains(&issued.secret[12..]),
        "the list carries the secret"
    );
    let page = c.get("/tokens", Some(&vera)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("laptop") && page.body.contains(&format!("sy_{}", issued.token.prefix))
    );
    assert!(
        !page.body.contains(&issued.secret[12..]),
        "the page carries the secret"
    );

    let refusals = [
        (
            token_form("more", "personal", "deployer", "", "30"),
            400,
            "role",
        ),
        (token_form("svc", "service", "viewer", "", "30"), 403, ""),
        (
            token_form("typo", "personal", "viewer", "prod", "30"),
            400,
            "environments",
        ),
        (
            token_form("old", "personal", "viewer", "", "0"),
            400,
            "expires_in_days",
        ),
        (
            token_form("old", "personal", "viewer", "", "many"),
            400,
            "expires_in_days",
        ),
        (
            token_form("<b>x</b>", "personal", "viewer", "", "30"),
            400,
            "name",
        ),
        (
            token_form("laptop", "personal", "viewer", "", "30"),
            409,
            "",
        ),
        (token_form("x", "root", "viewer", "", "30"), 400, "kind"),
    ];
    for (form, status, field) in refusals {
        let r = c.post("/api/create_token", &form, Some(&vera), &[]).await;
        assert_eq!(r.status.as_u16(), status, "{form:?}: {}", r.body);
        if !field.is_empty() {
            match r.error() {
                AppError::InvalidInput { field: f, .. } => assert_eq!(f, field, "{form:?}"),
                e => panic!("{form:?}: {e:?}"),
            }
        }
    }
    assert_eq!(c.count("api_tokens").await, 1, "refusals made nothing");
    // Not signed in: nothing either.
    let r = c
        .post(
            "/api/create_token",
            &token_form("anon", "personal", "viewer", "", "30"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 401);
    assert_eq!(c.count("api_tokens").await, 1);
}

#[tokio::test]
async fn only_the_owner_or_an_admin_revokes_and_admins_see_every_token() {
    let c = start().await;
    c.user("vera", Role::Viewer).await;
    c.user("dora", Role::Deployer).await;
    c.user("ada", Role::Admin).await;
    let (vera, dora, ada) = (
        c.session_for("vera").await,
        c.session_for("dora").await,
        c.session_for("ada").await,
    );
    let make = |cookie: String, name: &'static str, kind: &'static str, role: &'static str| {
        let c = &c;
        async move {
            let r = c
                .post(
                    "/api/create_token",
                    &token_form(name, kind, role, "", "30"),
                    Some(&cookie),
                    &[],
                )
                .await;
            r.json::<model::IssuedToken>()
        }
    };
    let veras = make(vera.clone(), "v", "personal", "viewer").await;
    let doras = make(dora.clone(), "d", "personal", "deployer").await;
    let service = make(ada.clone(), "pipeline", "service", "deployer").await;
    assert_eq!(service.token.kind, model::TokenKind::Service);

    let mine: Vec<String> = {
        let v: serde_json::Value = c
            .post("/api/load_tokens", &[], Some(&dora), &[])
            .await
            .json();
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(mine, ["d"]);
    let all: serde_json::Value = c
        .post("/api/load_tokens", &[], Some(&ada), &[])
        .await
        .json();
    assert_eq!(all["tokens"].as_array().unwrap().len(), 3);

    // Dora cannot revoke Vera's token: "not found", and it keeps working.
    let id = veras.token.id.to_string();
    let r = c
        .post(
            "/api/revoke_token",
            &[("id", id.as_str())],
            Some(&dora),
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    let r = c
        .post("/api/revoke_token", &[("id", "abc")], Some(&dora), &[])
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    // Dora revokes her own, the admin revokes Vera's.
    let own = doras.token.id.to_string();
    let r = c
        .post(
            "/api/revoke_token",
            &[("id", own.as_str())],
            Some(&dora),
            &[],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = c
        .post("/api/revoke_token", &[("id", id.as_str())], Some(&ada), &[])
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    for secret in [&veras.secret, &doras.secret] {
        let me = c
            .http
            .get(format!("{}/api/v1/me", c.origin))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 401);
    }
}
