//! Malformed requests to every server function: a clear 4xx that names what
//! is wrong, never a 500, and nothing changed.
//!
//! The functions are not listed by hand: every one the app registers is
//! tried, so a new server function is covered the day it is written.

mod support;

use support::*;

/// Row counts of every table that a request could change.
async fn snapshot(pool: &Pool) -> Vec<(String, i64)> {
    let tables: Vec<String> = store::tables(pool)
        .await
        .into_iter()
        .filter(|t| t != "tower_sessions")
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = engine::store::query_scalar(&format!("SELECT COUNT(*) FROM \"{t}\""))
            .fetch_one(pool)
            .await
            .unwrap();
        out.push((t, n));
    }
    out
}

fn server_functions() -> Vec<String> {
    let mut paths: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(p, _)| p.to_string())
        .collect();
    paths.sort();
    paths.dedup();
    // Signing out with an empty form is a valid request: it goes last, so
    // the others are still tried signed in.
    paths.sort_by_key(|p| p.ends_with("/logout"));
    paths
}

struct Case {
    what: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let form = "application/x-www-form-urlencoded";
    vec![
        Case {
            what: "plain text",
            content_type: "text/plain",
            body: b"release=1".to_vec(),
        },
        Case {
            what: "JSON",
            content_type: "application/json",
            body: br#"{"release": 1}"#.to_vec(),
        },
        Case {
            what: "multipart",
            content_type: "multipart/form-data; boundary=X",
            body: b"--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--X--\r\n"
                .to_vec(),
        },
        Case {
            what: "no content type",
            content_type: "",
            body: b"a=1".to_vec(),
        },
        Case {
            what: "invalid UTF-8",
            content_type: form,
            body: b"release=\xff\xfe&environment=\xc3\x28".to_vec(),
        },
        Case {
            what: "non-numeric ids",
            content_type: form,
            body: b"release=abc&item=abc&revision=abc&id=abc&user_id=abc&deployment=abc".to_vec(),
        },
        Case {
            what: "duplicate keys",
            content_type: form,
            body: b"release=1&release=2&environment=a&environment=b".to_vec(),
        },
        Case {
            what: "empty body",
            content_type: form,
            body: Vec::new(),
        },
        Case {
            what: "deeply nested keys",
            content_type: form,
            body: b"filter[a][b][c][d][e][f][g]=1".to_vec(),
        },
        Case {
            what: "over the size limit",
            content_type: form,
            body: vec![b'a'; 16 * 1024 * 1024],
        },
    ]
}

#[tokio::test]
async fn every_server_function_answers_malformed_bodies_with_a_named_4xx_and_changes_nothing() {
    let c = start().await;
    c.user("root", Role::Admin).await;
    c.protected_release("dev").await;
    let admin = c.session_for("root").await;
    let functions = server_functions();
    assert!(
        functions.len() >= 30,
        "only {} server functions registered",
        functions.len()
    );
    let before = snapshot(&c.pool).await;

    let mut failures = Vec::new();
    for path in &functions {
        if path.ends_with("/logout") {
            // Signing out with an empty form is valid (and audited): what
            // came before must have changed nothing.
            assert_eq!(
                snapshot(&c.pool).await,
                before,
                "a malformed request changed something"
            );
        }
        for case in cases() {
            let mut req = c
                .http
                .post(format!("{}{path}", c.origin))
                .header(ACCEPT, "application/json")
                .header(ORIGIN, &c.origin)
                .header(COOKIE, &admin)
                .body(case.body.clone());
            if !case.content_type.is_empty() {
                req = req.header("content-type", case.content_type);
            }
            let r = Console::read(req.send().await.unwrap()).await;
            let s = r.status.as_u16();
            let expected: &[u16] = match case.what {
                "plain text" | "JSON" | "multipart" | "no content type" => &[415],
                "over the size limit" => &[413],
                "invalid UTF-8" => &[400],
                // Valid for some functions (none of these fields, or all of
                // them optional), refused for others; never a crash.
                _ => &[200, 400, 403, 404, 409],
            };
            if !expected.contains(&s) {
                failures.push(format!("{path} with {}: {} {}", case.what, s, r.body));
                continue;
            }
            if s == 400 || s == 415 {
                match serde_json::from_str::<AppError>(&r.body) {
                    Ok(AppError::InvalidInput { field, message })
                        if s == 415 || mentions_a_field_or_body(&field, &message) => {}
                    other => failures.push(format!(
                        "{path} with {}: {s} does not say what is wrong: {other:?} ({})",
                        case.what, r.body
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The answer names the field (or the body as a whole) both for programs
/// (`field`) and for people (the message).
fn mentions_a_field_or_body(field: &str, message: &str) -> bool {
    !field.is_empty()
        && (message.contains("field") || message.contains("body") || message.contains("UTF-8"))
}

#[tokio::test]
async fn a_bad_field_is_named_in_the_answer() {
    let c = start().await;
    c.user("root", Role::Admin).await;
    let (release, ..) = c.protected_release("dev").await;
    let admin = c.session_for("root").await;

    let r = c
        .post(
            "/api/sign_item",
            &[
                ("release", "seven"),
                ("item", "1"),
                ("revision", "1"),
                ("note", "x"),
            ],
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    match r.error() {
        AppError::InvalidInput { field, message } => {
            assert_eq!(field, "release");
            assert!(message.contains("\"release\""), "{message}");
        }
        e => panic!("{e:?}"),
    }

    let release = release.to_string();
    let r = c
        .post(
            "/api/sign_item",
            &[("release", release.as_str())],
            Some(&admin),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    match r.error() {
        AppError::InvalidInput { field, message } => {
            assert_eq!(field, "item", "{message}");
            assert!(message.contains("missing field"), "{message}");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn every_server_function_has_its_body_checked_before_it_runs() {
    let checked: Vec<&str> = app::form::server_function_checks()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    let missing: Vec<String> = server_functions()
        .into_iter()
        .filter(|p| !checked.contains(&p.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "server functions not listed in app/src/form.rs (their bad fields would not be named): {missing:?}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 2000, ..Default::default() })]

    /// Every server function's body check, fed arbitrary bytes and
    /// form-shaped text: it answers (accept or a message), never panics.
    #[test]
    fn form_checks_never_panic_on_arbitrary_bodies(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
        form in "([a-z_\\[\\]%0-9]{0,12}=[^&]{0,16}&?){0,8}",
    ) {
        for (_, check) in app::form::server_function_checks() {
            let _ = check(&bytes);
            let _ = check(form.as_bytes());
        }
    }
}
