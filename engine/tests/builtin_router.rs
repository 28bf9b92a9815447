//! The builtin router over switchyard-proxy's unix admin socket
//! (`--admin-socket`, an `admin_url` of `unix:/path`): the same contract as
//! over loopback TCP, against the real proxy binary.
//!
//! Needs the sibling binaries: `cargo build -p proxy` first.

use engine::router::{BuiltinRouter, RouterError, TrafficRouter};
use engine::{Actor, Engine, Error};
use model::{ChecklistSource, RoutingTable, SlotColor, Upstream};
use std::sync::Arc;

mod support;

const TOKEN: &str = "builtin-router-test-token";

fn table(generation: u64, slot: SlotColor, port: u16) -> RoutingTable {
    RoutingTable {
        generation,
        active: Some(Upstream {
            slot,
            address: format!("127.0.0.1:{port}"),
        }),
        preview: None,
        ..RoutingTable::default()
    }
}

#[tokio::test]
async fn switches_over_the_proxys_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("proxy-token"), TOKEN).unwrap();
    let socket = dir.path().join("admin.sock");
    let (mut child, _info) =
        support::spawn_proxy_args(dir.path(), &["--admin-socket", socket.to_str().unwrap()]);
    let router = BuiltinRouter::new(&format!("unix:{}", socket.display()), TOKEN.into());

    let applied = router
        .apply(&table(1, SlotColor::Blue, 9101))
        .await
        .unwrap();
    assert_eq!(applied.generation, 1);
    assert_eq!(
        router.current().await.unwrap(),
        table(1, SlotColor::Blue, 9101)
    );
    assert_eq!(router.in_flight(SlotColor::Blue).await.unwrap(), Some(0));
    let stale = router.apply(&table(1, SlotColor::Green, 9102)).await;
    assert!(
        matches!(stale, Err(RouterError::StaleGeneration(_))),
        "{stale:?}"
    );

    let wrong_token = BuiltinRouter::new(&format!("unix:{}", socket.display()), "nope".into());
    assert!(matches!(
        wrong_token.current().await,
        Err(RouterError::Rejected(m)) if m.starts_with("401")
    ));
    let _ = child.kill();
    let _ = child.wait();
    let gone = router.current().await;
    assert!(matches!(gone, Err(RouterError::Unreachable(_))), "{gone:?}");
}

/// An environment names the socket as `unix:/absolute/path`; a relative one
/// is refused naming the field.
#[tokio::test]
async fn an_environment_may_name_the_admin_socket() {
    let dir = tempfile::tempdir().unwrap();
    let pool = engine::store::open("sqlite::memory:").await.unwrap();
    let engine = Engine::new(
        pool,
        Arc::new(engine::ProcessRuntime::new(dir.path().join("logs"))),
    );
    let file = |admin: &str| {
        engine::parse_environment_file(&format!(
            r#"
[[environment]]
name = "shop"
artifact = "/opt/shop/{{version}}/shop"
app_url = "http://127.0.0.1:8300/"

[environment.router]
admin_url = "{admin}"
token_file = "/var/lib/switchyard/proxy.token"
"#
        ))
        .unwrap()
        .remove(0)
    };
    let system = Actor::system();
    let err = engine
        .create_environment(
            &system,
            &file("unix:run/proxy.sock"),
            &ChecklistSource::Empty,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidInput {
                field: "admin_url",
                ..
            }
        ),
        "{err:?}"
    );
    let created = engine
        .create_environment(
            &system,
            &file("unix:/run/switchyard/proxy.sock"),
            &ChecklistSource::Empty,
        )
        .await
        .unwrap();
    assert_eq!(created.router.admin_url, "unix:/run/switchyard/proxy.sock");
}
