use super::*;

async fn log_with(pool: Pool, n: usize) -> (Pool, AuditLog) {
    let log = AuditLog::default();
    for i in 0..n {
        let mut ev = Event::new(
            AuditActor::User {
                id: 1,
                name: "dana".into(),
            },
            "deploy.start",
            Outcome::Ok,
        );
        ev.environment = Some("production".into());
        ev.target = Some(format!("v{i}"));
        log.append(&pool, ev).await.unwrap();
    }
    (pool, log)
}

/// Tampering needs the triggers out of the way, as an attacker with raw
/// database access would do.
async fn drop_guards(pool: &Pool) {
    crate::store::testing::drop_audit_guards(pool).await
}

async fn search_filters_and_pages_newest_first(pool: Pool) {
    let (pool, log) = log_with(pool, 7).await;
    let mut other = Event::new(AuditActor::System, "rollback.start", Outcome::Ok);
    other.environment = Some("staging".into());
    other.reason = Some("checkout is throwing 500s".into());
    log.append(&pool, other).await.unwrap();

    let all = search(&pool, &AuditFilter::default(), 3).await.unwrap();
    assert_eq!(
        all.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        [8, 7, 6]
    );
    assert_eq!(all.next_before, Some(6));
    let next = AuditFilter {
        before: all.next_before,
        ..Default::default()
    };
    let page2 = search(&pool, &next, 3).await.unwrap();
    assert_eq!(
        page2.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        [5, 4, 3]
    );
    let last = AuditFilter {
        before: Some(3),
        ..Default::default()
    };
    let page3 = search(&pool, &last, 3).await.unwrap();
    assert_eq!(page3.entries.len(), 2);
    assert_eq!(page3.next_before, None);

    let by = |f: AuditFilter| {
        let pool = pool.clone();
        async move {
            search(&pool, &f, 100)
                .await
                .unwrap()
                .entries
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by(AuditFilter {
            actor: Some("system".into()),
            ..Default::default()
        })
        .await,
        [8]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("rollback".into()),
            ..Default::default()
        })
        .await,
        [8]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("deploy.start".into()),
            ..Default::default()
        })
        .await
        .len(),
        7
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("deploy.st".into()),
            ..Default::default()
        })
        .await
        .len(),
        0
    );
    assert_eq!(
        by(AuditFilter {
            environment: Some("staging".into()),
            ..Default::default()
        })
        .await,
        [8]
    );
    assert_eq!(
        by(AuditFilter {
            text: Some("throwing checkout".into()),
            ..Default::default()
        })
        .await,
        [8]
    );
    assert_eq!(
        by(AuditFilter {
            text: Some("v3".into()),
            ..Default::default()
        })
        .await,
        [4]
    );
    // FTS syntax in user input is taken literally, not as an operator.
    assert!(by(AuditFilter {
        text: Some("\"v3\" OR *".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    let today = Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        by(AuditFilter {
            since: Some(today.clone()),
            until: Some(today),
            ..Default::default()
        })
        .await
        .len(),
        8
    );
    assert!(by(AuditFilter {
        until: Some("2000-01-01".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    // A date-time picker's minute (UTC): the entries were written in the
    // last seconds, so all are after two minutes ago and none after two
    // minutes from now.
    let minute = |d: i64| {
        (Utc::now() + chrono::Duration::minutes(d))
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let since = |m: String| AuditFilter {
        since: Some(m),
        ..Default::default()
    };
    assert_eq!(by(since(minute(-2))).await.len(), 8);
    assert!(by(since(minute(2))).await.is_empty());
    // Anything else is refused, naming the field, rather than compared
    // as text and quietly matching nothing.
    for (since, until, field) in [
        ("yesterday", "", "since"),
        ("2026-13-01", "", "since"),
        ("", "2026-11-22 18:00", "until"),
        ("", "2026-11-22T18", "until"),
    ] {
        let f = AuditFilter {
            since: Some(since.into()),
            until: Some(until.into()),
            ..Default::default()
        };
        match search(&pool, &f, 10).await {
            Err(crate::error::Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{since:?} {until:?}: {other:?}"),
        }
    }
}

async fn an_untouched_chain_verifies(pool: Pool) {
    let (pool, _) = log_with(pool, 5).await;
    assert_eq!(verify(&pool).await.unwrap(), Verdict::Intact { entries: 5 });
    let rows = recent(&pool, 10).await.unwrap();
    assert_eq!(rows[0].id, 5);
    assert_eq!(rows[4].prev_hash, GENESIS);
    assert_eq!(rows[0].prev_hash, rows[1].hash);
}

/// Three consoles appending at once (each its own `AuditLog`, so nothing
/// in this process orders them; on PostgreSQL each append on its own
/// connection) stay one linear chain: the store's write lock orders them.
async fn appends_from_three_consoles_at_once_stay_one_chain(pool: Pool) {
    let consoles: Vec<_> = (0..3)
        .map(|_| tokio::spawn(log_with(pool.clone(), 40)))
        .collect();
    for c in consoles {
        c.await.unwrap();
    }
    assert_eq!(verify(&pool).await.unwrap(), Verdict::Intact { entries: 120 });
    let rows = recent(&pool, 200).await.unwrap();
    assert_eq!(rows.len(), 120);
    for pair in rows.windows(2) {
        assert_eq!(pair[0].prev_hash, pair[1].hash, "entry {}", pair[0].id);
    }
}

async fn the_database_refuses_update_and_delete(pool: Pool) {
    let (pool, _) = log_with(pool, 2).await;
    let upd = crate::store::query("UPDATE audit_log SET actor_name = 'mallory' WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(upd.to_string().contains("append-only"), "{upd}");
    let del = crate::store::query("DELETE FROM audit_log WHERE id = 2")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(del.to_string().contains("append-only"), "{del}");
    assert_eq!(verify(&pool).await.unwrap(), Verdict::Intact { entries: 2 });
}

async fn a_modified_entry_is_found(pool: Pool) {
    let (pool, _) = log_with(pool, 4).await;
    drop_guards(&pool).await;
    crate::store::query("UPDATE audit_log SET actor_name = 'mallory' WHERE id = 3")
        .execute(&pool)
        .await
        .unwrap();
    match verify(&pool).await.unwrap() {
        Verdict::Broken { id, why, .. } => {
            assert_eq!(id, 3);
            assert!(why.contains("content"), "{why}");
        }
        v => panic!("tampering not found: {v:?}"),
    }
}

async fn a_deleted_entry_is_found(pool: Pool) {
    let (pool, _) = log_with(pool, 4).await;
    drop_guards(&pool).await;
    crate::store::query("DELETE FROM audit_log WHERE id = 2")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        verify(&pool).await.unwrap(),
        Verdict::Broken {
            id: 3,
            position: 2,
            ..
        }
    ));
}

async fn reordered_entries_are_found(pool: Pool) {
    let (pool, _) = log_with(pool, 4).await;
    drop_guards(&pool).await;
    // Swap the contents of entries 2 and 3, hashes and all.
    crate::store::query(
        "UPDATE audit_log SET id = CASE id WHEN 2 THEN -3 WHEN 3 THEN -2 END WHERE id IN (2, 3)",
    )
    .execute(&pool)
    .await
    .unwrap();
    crate::store::query("UPDATE audit_log SET id = -id WHERE id < 0")
        .execute(&pool)
        .await
        .unwrap();
    match verify(&pool).await.unwrap() {
        Verdict::Broken { id, .. } => assert_eq!(id, 2),
        v => panic!("reordering not found: {v:?}"),
    }
}

async fn a_rehashed_forgery_still_breaks_the_next_link(pool: Pool) {
    let (pool, _) = log_with(pool, 3).await;
    drop_guards(&pool).await;
    // Edit entry 2 and fix up its own hash: entry 3 still points to the old one.
    let mut e: Entry = crate::store::query_as("SELECT * FROM audit_log WHERE id = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    e.reason = Some("nothing to see".into());
    let forged = e.compute_hash();
    crate::store::query("UPDATE audit_log SET reason = ?, hash = ? WHERE id = 2")
        .bind(&e.reason)
        .bind(&forged)
        .execute(&pool)
        .await
        .unwrap();
    match verify(&pool).await.unwrap() {
        Verdict::Broken { id, why, .. } => {
            assert_eq!(id, 3);
            assert!(why.contains("point"), "{why}");
        }
        v => panic!("forgery not found: {v:?}"),
    }
}

crate::store::testing::on_both_stores!(
    search_filters_and_pages_newest_first,
    an_untouched_chain_verifies,
    appends_from_three_consoles_at_once_stay_one_chain,
    the_database_refuses_update_and_delete,
    a_modified_entry_is_found,
    a_deleted_entry_is_found,
    reordered_entries_are_found,
    a_rehashed_forgery_still_breaks_the_next_link,
);
