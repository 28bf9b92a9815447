//! The REST API over real HTTP: every documented route is served and
//! refuses callers without a token; the route × role × token-scope matrix,
//! decided by the same engine checks as the pages; refused tokens (missing,
//! malformed, forged, revoked, expired, owner disabled) answered 401 with
//! nothing changed; malformed requests answered 4xx naming the field; and
//! the OpenAPI document listing exactly what is served.
//!
//! The console is the real one (`support::start`); its environment's proxy
//! is not running, so an allowed deploy starts and then fails at the
//! preflight — after every decision this file is about was made.

mod support;

use model::{NewToken, TokenKind};
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const STAGING: &str = "staging";

/// Every route the API serves, as the OpenAPI document must list it.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/me"),
    ("get", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/environments"),
    ("get", "/api/v1/environments/{name}"),
    ("get", "/api/v1/environments/{name}/deployments"),
    ("post", "/api/v1/environments/{name}/deployments"),
    ("post", "/api/v1/environments/{name}/rollback"),
    ("get", "/api/v1/environments/{name}/freezes"),
    ("post", "/api/v1/environments/{name}/freezes"),
    ("delete", "/api/v1/environments/{name}/freezes/{id}"),
    ("get", "/api/v1/deployments/{id}"),
    ("post", "/api/v1/deployments/{id}/promote"),
    ("post", "/api/v1/deployments/{id}/hold/promote"),
    ("post", "/api/v1/deployments/{id}/hold/abort"),
    ("put", "/api/v1/deployments/{id}/canary"),
    ("get", "/api/v1/releases"),
    ("post", "/api/v1/releases"),
    ("get", "/api/v1/releases/{id}"),
    ("patch", "/api/v1/releases/{id}"),
    ("post", "/api/v1/releases/{id}/cancel"),
    ("post", "/api/v1/releases/{id}/items/{item}/sign"),
    ("post", "/api/v1/releases/{id}/deploy"),
    ("get", "/api/v1/deployments/{id}/events"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/audit/export"),
    ("get", "/api/v1/environments/{name}/webhooks"),
    ("post", "/api/v1/environments/{name}/webhooks"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    ("post", "/api/v1/deliveries/{id}/redeliver"),
];

struct Api<'a> {
    c: &'a Console,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl Api<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .c
            .http
            .request(method, format!("{}{path}", self.c.origin));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 {
            let ct = headers.get("content-type").unwrap().to_str().unwrap();
            assert_eq!(ct, "application/problem+json", "{path}: {body}");
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
}

async fn add_staging(c: &Console) {
    environments::create(
        &c.pool,
        &NewEnvironment::new(
            STAGING,
            "http://127.0.0.1:2/",
            "/bin/true {version}",
            "http://127.0.0.1:3",
            "/nonexistent",
        ),
    )
    .await
    .unwrap();
}

/// Waits for a deployment the API started to end (it fails at the
/// preflight: the proxy is not running).
async fn finished(api: &Api<'_>, token: &str, id: i64) -> Value {
    for _ in 0..200 {
        let d = api.get(&format!("/api/v1/deployments/{id}"), token).await;
        assert_eq!(d.status, 200, "{}", d.body);
        if d.body["deployment"]["status"] != "running" {
            return d.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployment {id} did not end");
}

#[tokio::test]
async fn the_document_lists_exactly_the_served_routes_and_each_refuses_no_token() {
    let c = start().await;
    let api = Api { c: &c };
    let doc = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.body["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc.body["openapi"]
    );
    assert_eq!(
        doc.body["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    let mut documented: Vec<(String, String)> = doc.body["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(
        documented, expected,
        "the document and the served routes differ"
    );

    for (method, path) in ROUTES {
        let concrete = path
            .replace("{name}", ENV)
            .replace("{id}", "1")
            .replace("{item}", "1");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (method != Method::GET).then(|| json!({}));
        let a = api.call(method.clone(), &concrete, None, body).await;
        assert_eq!(
            a.status, 401,
            "{method} {concrete} without a token: {}",
            a.body
        );
        assert_eq!(a.code(), "unauthenticated");
        assert_eq!(
            a.headers.get("www-authenticate").unwrap(),
            "Bearer realm=\"switchyard\""
        );
    }
    let unknown = api
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
}

#[tokio::test]
async fn each_role_and_scope_gets_what_the_console_would_give_it() {
    let c = start().await;
    add_staging(&c).await;
    let api = Api { c: &c };
    for (name, role) in [
        ("vera", Role::Viewer),
        ("dora", Role::Deployer),
        ("abe", Role::Approver),
        ("ada", Role::Admin),
    ] {
        c.user(name, role).await;
    }
    let viewer = c.token_for("vera", Role::Viewer, None).await;
    let deployer = c.token_for("dora", Role::Deployer, None).await;
    let approver = c.token_for("abe", Role::Approver, None).await;
    let admin = c.token_for("ada", Role::Admin, None).await;
    let staging_only = c.token_for("ada", Role::Deployer, Some(&[STAGING])).await;
    // A deployer's token with a viewer's role is a viewer.
    let weak = {
        let owner = engine::users::find_by_name(&c.pool, "dora")
            .await
            .unwrap()
            .unwrap();
        c.engine
            .create_token(
                &engine::Actor::user(owner),
                None,
                &NewToken {
                    name: "read-only".into(),
                    kind: TokenKind::Personal,
                    role: Role::Viewer,
                    environments: None,
                    expires_in_days: 1,
                },
            )
            .await
            .unwrap()
            .secret
    };

    let me = api.get("/api/v1/me", &staging_only).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["username"], "ada");
    assert_eq!(me.body["role"], "deployer");
    assert_eq!(me.body["environments"], json!([STAGING]));

    // Reading: everyone, within scope.
    for t in [&viewer, &deployer, &approver, &admin] {
        let all = api.get("/api/v1/environments", t).await;
        assert_eq!(all.status, 200);
        assert_eq!(all.body.as_array().unwrap().len(), 2);
        assert_eq!(
            api.get("/api/v1/environments/production", t).await.status,
            200
        );
        assert_eq!(
            api.get("/api/v1/environments/production/deployments", t)
                .await
                .status,
            200
        );
    }
    let scoped = api.get("/api/v1/environments", &staging_only).await;
    assert_eq!(scoped.body.as_array().unwrap().len(), 1);
    assert_eq!(scoped.body[0]["name"], STAGING);
    let outside = api
        .get("/api/v1/environments/production", &staging_only)
        .await;
    assert_eq!((outside.status, outside.code()), (403, "forbidden"));
    let audit_all = api.get("/api/v1/audit", &staging_only).await;
    assert_eq!(
        (audit_all.status, audit_all.body["field"].as_str()),
        (400, Some("environment"))
    );
    assert_eq!(
        api.get("/api/v1/audit?environment=staging", &staging_only)
            .await
            .status,
        200
    );
    assert_eq!(api.get("/api/v1/audit", &viewer).await.status, 200);

    // Deploying and rolling back: deployers and admins, within scope.
    let deploy = json!({ "version": "v2" });
    for t in [&viewer, &approver, &weak, &staging_only] {
        let a = api
            .post(
                "/api/v1/environments/production/deployments",
                t,
                deploy.clone(),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.body);
        let a = api
            .post(
                "/api/v1/environments/production/rollback",
                t,
                json!({ "reason": "x" }),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.body);
    }
    let history = |t: &str| {
        let t = t.to_string();
        let api = &api;
        async move {
            api.get("/api/v1/environments/production/deployments", &t)
                .await
                .body
        }
    };
    assert_eq!(history(&admin).await, json!([]), "refusals started nothing");

    let started = api
        .post(
            "/api/v1/environments/production/deployments",
            &deployer,
            deploy.clone(),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let id = started.body["deployment"]["id"].as_i64().unwrap();
    assert_eq!(
        started.headers.get("location").unwrap(),
        &format!("/api/v1/deployments/{id}")
    );
    let done = finished(&api, &deployer, id).await;
    assert_eq!(
        done["deployment"]["status"], "failed",
        "no proxy runs: {done}"
    );
    // The scoped token does not see production's deployment.
    let hidden = api
        .get(&format!("/api/v1/deployments/{id}"), &staging_only)
        .await;
    assert_eq!(hidden.status, 404);
    // Its event stream: the ended deployment's detail as one `done` event;
    // outside the token's scope, not found before the first byte.
    let events = format!("/api/v1/deployments/{id}/events");
    let stream = api.get(&events, &viewer).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    let text = stream.body.as_str().unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("event: done"), "{text}");
    let data: Value =
        serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(data["deployment"]["id"], id);
    assert_eq!(data["deployment"]["status"], "failed");
    let hidden = api.get(&events, &staging_only).await;
    assert_eq!((hidden.status, hidden.code()), (404, "not_found"));
    // No standby to roll back to: a conflict with its own code.
    let a = api
        .post(
            "/api/v1/environments/production/rollback",
            &deployer,
            json!({ "reason": "x" }),
        )
        .await;
    assert_eq!((a.status, a.code()), (409, "no_standby"), "{}", a.body);

    // The audit log names the token, never its secret.
    let page = api
        .get(
            "/api/v1/audit?environment=production&action=deploy.start",
            &admin,
        )
        .await;
    let entries = page.body["entries"].as_array().unwrap();
    assert!(!entries.is_empty(), "{}", page.body);
    assert_eq!(entries[0]["actor_kind"], "token");
    assert!(entries[0]["actor_name"]
        .as_str()
        .unwrap()
        .starts_with("dora (token dora-deployer-all sy_"));
    let everything = api
        .get("/api/v1/audit?limit=500", &admin)
        .await
        .body
        .to_string();
    for secret in [&viewer, &deployer, &approver, &admin, &staging_only] {
        assert!(
            !everything.contains(&secret[12..]),
            "a token's secret is in the audit log"
        );
    }

    // The export: the search's scope rules, decided before the first byte.
    let export = api
        .get("/api/v1/audit/export?environment=production", &viewer)
        .await;
    assert_eq!(export.status, 200);
    assert_eq!(export.headers["content-type"], "application/x-ndjson");
    let text = export.body.as_str().unwrap_or_default().to_string();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 1, "{text}");
    assert!(text.contains("\"deploy.start\""), "{text}");
    for secret in [&viewer, &deployer, &approver, &admin, &staging_only] {
        assert!(
            !text.contains(&secret[12..]),
            "a token's secret is exported"
        );
    }
    let csv = api.get("/api/v1/audit/export?format=csv", &admin).await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .body
        .as_str()
        .unwrap()
        .starts_with("id,at,actor_kind,actor_name,"));
    let unscoped = api.get("/api/v1/audit/export", &staging_only).await;
    assert_eq!(
        (unscoped.status, unscoped.body["field"].as_str()),
        (400, Some("environment"))
    );
    let outside = api
        .get("/api/v1/audit/export?environment=production", &staging_only)
        .await;
    assert_eq!(outside.status, 403);
    let bad = api.get("/api/v1/audit/export?format=xml", &admin).await;
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (400, Some("format"))
    );
}

#[tokio::test]
async fn tokens_hold_four_eyes_and_releases_follow_the_checklist() {
    let c = start().await;
    let (release, code_reviewed, _rollback_plan, _) = c.protected_release("rita").await;
    let revision = 1;
    let api = Api { c: &c };
    c.user("abe", Role::Approver).await;
    let requester = c.token_for("rita", Role::Deployer, None).await;
    let approver = c.token_for("abe", Role::Approver, None).await;

    let r = api
        .get(&format!("/api/v1/releases/{release}"), &approver)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["requested_by"], "rita");
    let own = api
        .post(
            &format!("/api/v1/releases/{release}/items/{code_reviewed}/sign"),
            &requester,
            json!({ "revision": revision }),
        )
        .await;
    assert_eq!((own.status, own.code()), (403, "forbidden"), "{}", own.body);
    let not_ready = api
        .post(
            &format!("/api/v1/releases/{release}/deploy"),
            &requester,
            json!({ "revision": revision }),
        )
        .await;
    assert_eq!(
        (not_ready.status, not_ready.code()),
        (409, "not_approved"),
        "{}",
        not_ready.body
    );

    let listed = api
        .get("/api/v1/releases?environment=production", &approver)
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let created = api
        .post(
            "/api/v1/releases",
            &approver,
            json!({ "environment": ENV, "version": "v9", "notes": "from CI" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["requested_by"], "abe");

    // Editing: the requester (or an admin) only, at the revision read;
    // what is left out stays, and the edit is a new revision.
    let path = format!("/api/v1/releases/{release}");
    let patch = |token: &str, body: Value| {
        let (api, path, token) = (&api, path.clone(), token.to_string());
        async move {
            api.call(Method::PATCH, &path, Some(&token), Some(body))
                .await
        }
    };
    let before = api.get(&path, &requester).await.body;
    let a = patch(
        &approver,
        json!({ "revision": revision, "notes": "mine now" }),
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.body);
    let a = patch(&requester, json!({ "revision": revision, "notes": 5 })).await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("notes")));
    let edited = patch(
        &requester,
        json!({ "revision": revision, "notes": "fixed typo" }),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["notes"], "fixed typo");
    assert_eq!(edited.body["migration_sql"], before["migration_sql"]);
    assert_eq!(edited.body["revision"], revision + 1);
    let stale = patch(
        &requester,
        json!({ "revision": revision, "notes": "again" }),
    )
    .await;
    assert_eq!(stale.status, 409, "{}", stale.body);

    // Cancelling: a reason is required; the approver may not cancel rita's.
    let cancel = format!("/api/v1/releases/{release}/cancel");
    let now = revision + 1;
    let a = api
        .post(
            &cancel,
            &approver,
            json!({ "revision": now, "reason": "no" }),
        )
        .await;
    assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.body);
    let a = api
        .post(
            &cancel,
            &requester,
            json!({ "revision": now, "reason": " " }),
        )
        .await;
    assert_eq!((a.status, a.body["field"].as_str()), (400, Some("reason")));
    let cancelled = api
        .post(
            &cancel,
            &requester,
            json!({ "revision": now, "reason": "superseded by v9" }),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);
    let audit = api
        .get("/api/v1/audit?action=release.cancel", &approver)
        .await;
    assert_eq!(audit.body["entries"][0]["reason"], "superseded by v9");
}

#[tokio::test]
async fn refused_tokens_get_401_and_change_nothing() {
    let c = start().await;
    let api = Api { c: &c };
    c.user("ada", Role::Admin).await;
    c.user("dora", Role::Deployer).await;
    let live = c.token_for("dora", Role::Deployer, None).await;
    let forged = format!("{}{}", &live[..12], "0".repeat(64));
    let revoked = c.token_for("ada", Role::Deployer, None).await;
    let expired = {
        let t = c.token_for("ada", Role::Viewer, None).await;
        engine::store::query(
            "UPDATE api_tokens SET expires_at = '2001-01-01T00:00:00Z' WHERE name = 'ada-viewer-all'",
        )
        .execute(&c.pool)
        .await
        .unwrap();
        t
    };
    let list = api
        .get(
            "/api/v1/tokens",
            &c.token_for("ada", Role::Admin, None).await,
        )
        .await;
    let revoked_id = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ada-deployer-all")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let admin_token = c.token_for("ada", Role::Approver, None).await;
    let r = api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{revoked_id}"),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let deploy = json!({ "version": "v2" });
    for (what, token, why) in [
        ("malformed", "not-a-token".to_string(), "malformed token"),
        ("forged", forged, "unknown token"),
        ("revoked", revoked, "revoked"),
        ("expired", expired, "expired"),
    ] {
        let a = api
            .post(
                "/api/v1/environments/production/deployments",
                &token,
                deploy.clone(),
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (401, "invalid_token"),
            "{what}: {}",
            a.body
        );
        assert!(
            a.body["detail"].as_str().unwrap().ends_with(why),
            "{what}: {}",
            a.body
        );
    }
    let basic = c
        .http
        .get(format!("{}/api/v1/me", c.origin))
        .header("authorization", "Basic YWRhOnB3")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    // A signed-in browser session is not an API credential.
    let cookie = c.session_for("ada").await;
    let r = c
        .http
        .get(format!("{}/api/v1/me", c.origin))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The owner disabled: the live token dies with them.
    assert_eq!(api.get("/api/v1/me", &live).await.status, 200);
    let dora = engine::users::find_by_name(&c.pool, "dora")
        .await
        .unwrap()
        .unwrap();
    c.engine
        .set_user_disabled(&engine::Actor::system(), dora.id, true)
        .await
        .unwrap();
    let a = api
        .post("/api/v1/environments/production/deployments", &live, deploy)
        .await;
    assert_eq!((a.status, a.code()), (401, "invalid_token"), "{}", a.body);
    assert_eq!(c.count("deployments").await, 0, "nothing was started");
}

#[tokio::test]
async fn malformed_requests_are_refused_naming_the_field() {
    let c = start().await;
    let api = Api { c: &c };
    c.user("dora", Role::Deployer).await;
    let t = c.token_for("dora", Role::Deployer, None).await;
    let path = "/api/v1/environments/production/deployments";

    let form = c
        .http
        .post(format!("{}{path}", c.origin))
        .bearer_auth(&t)
        .form(&[("version", "v2")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let body: Value = form.json().await.unwrap();
    assert_eq!(body["field"], "content-type");

    for (body, field) in [
        (json!({}), "version"),
        (json!({ "version": 5 }), "version"),
        (json!({ "version": "v2", "force": true }), "force"),
        (json!(["v2"]), "body"),
    ] {
        let a = api.post(path, &t, body.clone()).await;
        assert_eq!(
            (a.status, a.code()),
            (400, "invalid_input"),
            "{body}: {}",
            a.body
        );
        assert_eq!(a.body["field"], field, "{body}: {}", a.body);
    }
    let garbage = c
        .http
        .post(format!("{}{path}", c.origin))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    // The engine's own checks name their field too.
    let a = api
        .post(path, &t, json!({ "version": "v2; rm -rf /" }))
        .await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("version")),
        "{}",
        a.body
    );
    let a = api.get("/api/v1/deployments/not-a-number", &t).await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("path")),
        "{}",
        a.body
    );
    let a = api.get("/api/v1/audit?limit=0", &t).await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("limit")),
        "{}",
        a.body
    );
    let a = api.get("/api/v1/audit?colour=blue", &t).await;
    assert_eq!(
        (a.status, a.body["field"].as_str()),
        (400, Some("colour")),
        "{}",
        a.body
    );
    let a = api
        .call(
            Method::PUT,
            "/api/v1/environments/production",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(a.status, 405, "{}", a.body);
    assert_eq!(c.count("deployments").await, 0, "nothing was started");
}

#[tokio::test]
async fn an_address_presenting_bad_tokens_is_slowed_down() {
    let c = start().await;
    let api = Api { c: &c };
    let bad = format!("sy_abcdefgh_{}", "0".repeat(64));
    for _ in 0..server::api::BAD_TOKEN_LIMIT {
        assert_eq!(api.get("/api/v1/me", &bad).await.status, 401);
    }
    let a = api.get("/api/v1/me", &bad).await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"), "{}", a.body);
    assert!(a.headers.get("retry-after").is_some());
    // Someone else behind the same address (a load balancer) with a good
    // token is not held back.
    c.user("dora", Role::Deployer).await;
    let good = c.token_for("dora", Role::Viewer, None).await;
    assert_eq!(api.get("/api/v1/me", &good).await.status, 200);
    assert_eq!(api.get("/api/v1/me", &bad).await.status, 429);
}

#[tokio::test]
async fn a_freeze_refuses_deploys_with_its_own_code_until_an_admin_overrides_it() {
    let c = start().await;
    let api = Api { c: &c };
    c.user("dora", Role::Deployer).await;
    c.user("ada", Role::Admin).await;
    let deployer = c.token_for("dora", Role::Deployer, None).await;
    let admin = c.token_for("ada", Role::Admin, None).await;
    let freeze = json!({
        "reason": "holiday freeze",
        "kind": "once",
        "starts": "2000-01-01 00:00",
        "ends": "2999-01-01 00:00",
        "time_zone": "UTC",
    });
    let refused = api
        .post(
            "/api/v1/environments/production/freezes",
            &deployer,
            freeze.clone(),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (403, "forbidden"));
    let bad = api
        .post(
            "/api/v1/environments/production/freezes",
            &admin,
            json!({ "reason": "x", "kind": "weekly", "days": "someday", "start_time": "10:00", "duration_minutes": 5 }),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (400, Some("days")),
        "{}",
        bad.body
    );
    let added = api
        .post("/api/v1/environments/production/freezes", &admin, freeze)
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert!(added.body["active_until"].is_string());

    let path = "/api/v1/environments/production/deployments";
    let frozen = api.post(path, &deployer, json!({ "version": "v2" })).await;
    assert_eq!(
        (frozen.status, frozen.code()),
        (409, "frozen"),
        "{}",
        frozen.body
    );
    assert!(frozen.body["detail"]
        .as_str()
        .unwrap()
        .ends_with("holiday freeze"));
    let not_theirs = api
        .post(
            path,
            &deployer,
            json!({ "version": "v2", "override_freeze": "urgent" }),
        )
        .await;
    assert_eq!(not_theirs.status, 403, "{}", not_theirs.body);
    assert_eq!(c.count("deployments").await, 0, "nothing was started");
    let overridden = api
        .post(
            path,
            &admin,
            json!({ "version": "v2", "override_freeze": "security fix" }),
        )
        .await;
    assert_eq!(overridden.status, 202, "{}", overridden.body);

    let id = added.body["id"].as_i64().unwrap();
    let listed = api
        .get("/api/v1/environments/production/freezes", &deployer)
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let gone = api
        .call(
            Method::DELETE,
            &format!("/api/v1/environments/production/freezes/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(gone.status, 204);
}

#[tokio::test]
async fn webhooks_are_an_admins_and_bad_ones_name_the_field() {
    let c = start().await;
    add_staging(&c).await;
    let api = Api { c: &c };
    c.user("vera", Role::Viewer).await;
    c.user("ada", Role::Admin).await;
    c.user("al", Role::Admin).await;
    let viewer = c.token_for("vera", Role::Viewer, None).await;
    let admin = c.token_for("ada", Role::Admin, None).await;
    let limited = c.token_for("al", Role::Admin, Some(&[ENV])).await;
    let path = format!("/api/v1/environments/{ENV}/webhooks");
    let hook = json!({ "url": "http://127.0.0.1:9/hook", "allow_private": true });

    // Refused before the environment is looked up.
    for t in [&viewer, &limited] {
        let a = api.post(&path, t, hook.clone()).await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.body);
        let a = api.get("/api/v1/environments/nowhere/webhooks", t).await;
        assert_eq!(a.status, 403, "{}", a.body);
    }
    // Bad input: 400 naming the field, nothing stored.
    for (body, field) in [
        (json!({ "url": "http://127.0.0.1:9/hook" }), "url"),
        (json!({ "url": "gopher://example.com/" }), "url"),
        (
            json!({ "url": "http://127.0.0.1:9/", "events": ["deploy.exploded"] }),
            "events[0]",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "format": "xml" }),
            "format",
        ),
        (
            json!({ "url": "http://127.0.0.1:9/", "secret": "mine" }),
            "secret",
        ),
    ] {
        let a = api.post(&path, &admin, body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert!(
            a.body["field"].as_str().unwrap_or("").contains(field),
            "{body}: {}",
            a.body
        );
    }
    assert_eq!(api.get(&path, &admin).await.body, json!([]));

    let made = api.post(&path, &admin, hook).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert!(made.body["secret"].as_str().unwrap().starts_with("whsec_"));
    let id = made.body["webhook"]["id"].as_i64().unwrap();
    let listed = api.get(&path, &admin).await;
    assert_eq!(listed.body[0]["url"], "http://127.0.0.1:9/hook");
    assert!(listed.body[0].get("secret").is_none(), "{}", listed.body);
    let log = api
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), &admin)
        .await;
    assert_eq!((log.status, log.body.clone()), (200, json!([])));
    let none = api
        .post("/api/v1/deliveries/999/redeliver", &admin, json!({}))
        .await;
    assert_eq!((none.status, none.code()), (404, "not_found"));
    let gone = api
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(gone.status, 403);
    let gone = api
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(api.get(&path, &admin).await.body, json!([]));
}
