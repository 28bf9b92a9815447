use super::*;
use model::SlotState;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::Row;
use std::str::FromStr;

async fn fk_pool(dir: &std::path::Path) -> sqlx::SqlitePool {
    let opts = SqliteConnectOptions::from_str(&format!("sqlite:{}", dir.join("db").display()))
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap()
}

/// 20261122000005 rebuilds `environments` (and its child tables) to widen
/// the runtime CHECK. Run it over a database filled by the migrations
/// before it: rows, ids, AUTOINCREMENT counters and foreign keys survive.
#[tokio::test]
async fn docker_runtime_migration_keeps_rows_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fk_pool(dir.path()).await;
    let all = sqlx::migrate!("../migrations/sqlite");
    let mut before = sqlx::migrate!("../migrations/sqlite");
    before.migrations = all
        .migrations
        .iter()
        .filter(|m| m.version < 20261122000005)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    let docker_refused = sqlx::query(
        "INSERT INTO environments (name, app_url, runtime, artifact_template, proxy_admin_url, \
         proxy_token_file, created_at) VALUES ('d', 'u', 'docker', 'a', 'p', 't', 'now')",
    )
    .execute(&pool)
    .await;
    assert!(docker_refused.is_err(), "the old CHECK accepts docker?");
    for stmt in [
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('ann', 'x', 'admin', 'now')",
        "INSERT INTO environments (name, app_url, artifact_template, proxy_admin_url, proxy_token_file, \
         active_color, routing_generation, created_at) VALUES ('staging', 'u1', 'a1', 'p1', 't1', 'blue', 7, 'now')",
        "INSERT INTO environments (name, app_url, artifact_template, proxy_admin_url, proxy_token_file, created_at) \
         VALUES ('production', 'u2', 'a2', 'p2', 't2', 'now')",
        "INSERT INTO slots (environment_id, color, version, state, handle, address, updated_at) \
         VALUES (1, 'blue', 'v1', 'healthy', '123', '127.0.0.1:1', 'now'), (1, 'green', NULL, 'stopped', NULL, NULL, 'now')",
        "INSERT INTO deployments (environment_id, kind, status, requested_by, started_at) \
         VALUES (1, 'deploy', 'succeeded', 1, 'now'), (2, 'deploy', 'running', NULL, 'now'), (2, 'deploy', 'failed', NULL, 'now')",
        // The newest deployment id is gone: the counter must not hand it out again.
        "DELETE FROM deployments WHERE id = 3",
    ] {
        sqlx::query(stmt).execute(&pool).await.unwrap();
    }

    all.run(&pool).await.unwrap();

    let envs = list(&Pool::from_sqlite(pool.clone())).await.unwrap();
    assert_eq!(
        envs.iter()
            .map(|e| (
                e.id,
                e.name.as_str(),
                e.runtime.as_str(),
                e.routing_generation
            ))
            .collect::<Vec<_>>(),
        vec![
            (2, "production", "process", 0),
            (1, "staging", "process", 7)
        ]
    );
    assert_eq!(envs[1].active, Some(SlotColor::Blue));
    let s = slot(&Pool::from_sqlite(pool.clone()), 1, SlotColor::Blue).await.unwrap();
    assert_eq!(
        (s.version.as_deref(), s.state, s.handle.as_deref()),
        (Some("v1"), SlotState::Healthy, Some("123"))
    );
    let fk_check = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(fk_check.is_empty());
    // Foreign keys still point at the rebuilt table and are enforced.
    for orphan in [
        "INSERT INTO slots (environment_id, color, updated_at) VALUES (99, 'blue', 'now')",
        "INSERT INTO deployments (environment_id, kind, status, started_at) VALUES (99, 'deploy', 'failed', 'now')",
        "DELETE FROM environments WHERE id = 1",
    ] {
        let err = sqlx::query(orphan).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{orphan}: {err}");
    }
    // The lock index survived: a second running deployment is refused.
    let err = sqlx::query(
        "INSERT INTO deployments (environment_id, kind, status, started_at) VALUES (2, 'deploy', 'running', 'now')",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    let next: i64 = sqlx::query(
        "INSERT INTO deployments (environment_id, kind, status, started_at) \
         VALUES (1, 'deploy', 'failed', 'now') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(next, 4);

    // The new CHECK: docker is accepted, anything else still refused.
    let mut new = NewEnvironment::new("containers", "u", "img:{version}", "p", "t");
    new.runtime = RuntimeKind::Docker;
    assert_eq!(
        create(&Pool::from_sqlite(pool.clone()), &new).await.unwrap().runtime,
        RuntimeKind::Docker
    );
    // A runtime the console does not know cannot even be named.
    assert_eq!(
        "kubernetes".parse::<RuntimeKind>().unwrap_err().to_string(),
        "unknown runtime \"kubernetes\""
    );
    let raw = sqlx::query(
        "INSERT INTO environments (name, app_url, runtime, artifact_template, proxy_admin_url, \
         proxy_token_file, created_at) VALUES ('k', 'u', 'kubernetes', 'a', 'p', 't', 'now')",
    )
    .execute(&pool)
    .await;
    assert!(raw.is_err());
}

/// 20261122000008 rebuilds `environments` under its own name (deferred
/// foreign keys) to widen the router CHECK. Every child table, including
/// the release tables added by 20261122000006, keeps its rows and its
/// enforced foreign key; ids and the AUTOINCREMENT counter survive.
#[tokio::test]
async fn nginx_router_migration_keeps_rows_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fk_pool(dir.path()).await;
    let all = sqlx::migrate!("../migrations/sqlite");
    let mut before = sqlx::migrate!("../migrations/sqlite");
    before.migrations = all
        .migrations
        .iter()
        .filter(|m| m.version < 20261122000008)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    for stmt in [
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('ann', 'x', 'admin', 'now')",
        "INSERT INTO environments (name, app_url, artifact_template, proxy_admin_url, proxy_token_file, \
         active_color, routing_generation, created_at, backup_command, signoff_ttl_secs) \
         VALUES ('staging', 'u1', 'a1', 'p1', 't1', 'blue', 7, 'now', 'true', 60)",
        "INSERT INTO environments (name, app_url, runtime, artifact_template, proxy_admin_url, proxy_token_file, \
         created_at, upstream_environment) VALUES ('production', 'u2', 'docker', 'a2', 'p2', 't2', 'now', 'staging')",
        "INSERT INTO environments (name, app_url, artifact_template, proxy_admin_url, proxy_token_file, created_at) \
         VALUES ('gone', 'u3', 'a3', 'p3', 't3', 'now')",
        // The newest environment id is gone: the counter must not hand it out again.
        "DELETE FROM environments WHERE name = 'gone'",
        "INSERT INTO slots (environment_id, color, version, state, updated_at) \
         VALUES (1, 'blue', 'v1', 'healthy', 'now'), (2, 'green', NULL, 'stopped', 'now')",
        "INSERT INTO checklist_items (environment_id, position, title, required_role, created_at) \
         VALUES (1, 1, 'smoke', 'approver', 'now')",
        "INSERT INTO releases (environment_id, version, artifact, requested_by, created_at, updated_at) \
         VALUES (1, 'v1', 'a', 1, 'now', 'now')",
        "INSERT INTO release_items (release_id, position, title, required_role, required) \
         VALUES (1, 1, 'smoke', 'approver', 1)",
        "INSERT INTO signoffs (release_item_id, release_id, revision, signed_by, signed_at, expires_at) \
         VALUES (1, 1, 1, 1, 'now', 'later')",
        "INSERT INTO deployments (environment_id, kind, status, started_at, release_id) \
         VALUES (1, 'deploy', 'succeeded', 'now', 1), (2, 'deploy', 'running', 'now', NULL)",
    ] {
        sqlx::query(stmt).execute(&pool).await.unwrap();
    }
    let nginx_refused = sqlx::query(
        "INSERT INTO environments (name, app_url, router, artifact_template, proxy_admin_url, \
         proxy_token_file, created_at) VALUES ('n', 'u', 'nginx', 'a', 'p', 't', 'now')",
    )
    .execute(&pool)
    .await;
    assert!(nginx_refused.is_err(), "the old CHECK accepts nginx?");

    all.run(&pool).await.unwrap();

    let envs = list(&Pool::from_sqlite(pool.clone())).await.unwrap();
    assert_eq!(
        envs.iter()
            .map(|e| (
                e.id,
                e.name.as_str(),
                e.runtime.as_str(),
                e.router.as_str(),
                e.routing_generation
            ))
            .collect::<Vec<_>>(),
        vec![
            (2, "production", "docker", "builtin", 0),
            (1, "staging", "process", "builtin", 7)
        ]
    );
    assert!(envs.iter().all(|e| e.nginx.is_none()));
    let kept: (Option<String>, i64, Option<String>) = sqlx::query_as(
        "SELECT a.backup_command, a.signoff_ttl_secs, b.upstream_environment \
         FROM environments a, environments b WHERE a.id = 1 AND b.id = 2",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kept, (Some("true".into()), 60, Some("staging".into())));
    for (table, n) in [
        ("slots", 2),
        ("checklist_items", 1),
        ("releases", 1),
        ("release_items", 1),
        ("signoffs", 1),
        ("deployments", 2),
    ] {
        let count: i64 = sqlx::query(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, n, "{table}");
    }
    assert!(sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap()
        .is_empty());
    for orphan in [
        "INSERT INTO slots (environment_id, color, updated_at) VALUES (99, 'blue', 'now')",
        "INSERT INTO checklist_items (environment_id, position, title, required_role, created_at) \
         VALUES (99, 1, 't', 'admin', 'now')",
        "INSERT INTO releases (environment_id, version, artifact, requested_by, created_at, updated_at) \
         VALUES (99, 'v', 'a', 1, 'now', 'now')",
        "DELETE FROM environments WHERE id = 1",
    ] {
        let err = sqlx::query(orphan).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{orphan}: {err}");
    }
    // The lock index on deployments was not touched.
    let err = sqlx::query(
        "INSERT INTO deployments (environment_id, kind, status, started_at) VALUES (2, 'deploy', 'running', 'now')",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");

    // The new CHECK: nginx with its settings round-trips; nginx without
    // them, or an unknown router, is refused.
    let mut new = NewEnvironment::new("edge", "u", "cmd {version}", "", "");
    new.router = RouterKind::Nginx;
    assert!(matches!(
        create(&Pool::from_sqlite(pool.clone()), &new).await,
        Err(Error::InvalidInput { field: "nginx", .. })
    ));
    let settings = NginxSettings {
        binary: "/usr/sbin/nginx".into(),
        conf: "/etc/nginx/nginx.conf".into(),
        prefix: None,
        include: "/etc/nginx/switchyard/edge.conf".into(),
        pid_file: "/run/nginx.pid".into(),
        upstream: NginxSettings::upstream_for("edge"),
        reload_timeout: Duration::from_secs(4),
    };
    new.nginx = Some(settings.clone());
    let edge = create(&Pool::from_sqlite(pool.clone()), &new).await.unwrap();
    assert_eq!(edge.id, 4, "an id was handed out twice");
    assert_eq!(
        (edge.router, edge.nginx),
        (RouterKind::Nginx, Some(settings))
    );
    // A router the console does not know cannot even be named.
    assert_eq!(
        "envoy".parse::<RouterKind>().unwrap_err().to_string(),
        "unknown router \"envoy\""
    );
    for raw in [
        "INSERT INTO environments (name, app_url, router, artifact_template, proxy_admin_url, \
         proxy_token_file, created_at) VALUES ('n', 'u', 'nginx', 'a', 'p', 't', 'now')",
        "INSERT INTO environments (name, app_url, router, artifact_template, proxy_admin_url, \
         proxy_token_file, created_at) VALUES ('e', 'u', 'envoy', 'a', 'p', 't', 'now')",
    ] {
        let err = sqlx::query(raw).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("CHECK"), "{raw}: {err}");
    }
}
