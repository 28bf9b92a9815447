//! The two ways a routing table comes in from outside, the admin API's PUT
//! body (`parse_routing_table`) and the state file read at start
//! (`StateFile::decode`), fed arbitrary bytes and mutated tables: neither
//! panics, and whatever either accepts obeys the rules the data path relies
//! on, checked here by a second implementation written from the rules, not
//! from the code. Plus the seed corpus in `tests/corpus/routing/`.

use proptest::prelude::*;
use proxy::admin::parse_routing_table;
use proxy::route_table::RouteTable;
use proxy::state_file::StateFile;
use proxy::upstream_policy::UpstreamPolicy;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// Allowed: 172.17.0.0/16 and fd00::/8 besides loopback. Own listeners:
/// public 127.0.0.1:8080, admin 127.0.0.1:8081, preview on every address at
/// port 8082.
fn policy() -> UpstreamPolicy {
    UpstreamPolicy::new(vec![
        "172.17.0.0/16".parse().unwrap(),
        "fd00::/8".parse().unwrap(),
    ])
    .with_own_listener("public", "127.0.0.1:8080".parse().unwrap())
    .with_own_listener("admin", "127.0.0.1:8081".parse().unwrap())
    .with_own_listener("preview", "0.0.0.0:8082".parse().unwrap())
}

/// The rules, restated for [`policy`].
fn assert_obeys_the_rules(table: &RouteTable) {
    for (field, upstream) in [("active", &table.active), ("preview", &table.preview)] {
        let Some(upstream) = upstream else { continue };
        let address = &upstream.address;
        let addr: SocketAddr = address
            .parse()
            .unwrap_or_else(|_| panic!("{field} {address:?} accepted but not ip:port"));
        assert_eq!(
            &addr.to_string(),
            address,
            "{field}: only the canonical form"
        );
        assert_ne!(addr.port(), 0, "{field} {address}: port 0");
        if let SocketAddr::V6(v6) = addr {
            assert_eq!(v6.scope_id(), 0, "{field} {address}: zone id");
        }
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let loopback = match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                assert_ne!(v4.octets(), [0; 4], "{field} {address}: unspecified");
                assert!(!(a == 169 && b == 254), "{field} {address}: link-local");
                assert!(!(224..=239).contains(&a), "{field} {address}: multicast");
                assert_ne!(v4.octets(), [255; 4], "{field} {address}: broadcast");
                assert!(
                    a == 127 || (a == 172 && b == 17),
                    "{field} {address}: not allowed"
                );
                a == 127
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                assert_ne!(v6, Ipv6Addr::UNSPECIFIED, "{field} {address}: unspecified");
                assert_ne!(first & 0xffc0, 0xfe80, "{field} {address}: link-local");
                assert_ne!(first & 0xff00, 0xff00, "{field} {address}: multicast");
                assert!(
                    v6 == Ipv6Addr::LOCALHOST || first & 0xff00 == 0xfd00,
                    "{field} {address}: not allowed"
                );
                v6 == Ipv6Addr::LOCALHOST
            }
        };
        assert!(
            !(loopback && [8080, 8081, 8082].contains(&addr.port())),
            "{field} {address}: the proxy's own listener"
        );
    }
    if let (Some(active), Some(preview)) = (&table.active, &table.preview) {
        assert_ne!(active.slot, preview.slot, "preview must be the idle slot");
    }
    if let Some(canary) = table.canary {
        assert!(canary.percent <= 100, "canary over 100 %");
        assert!(table.active.is_some(), "canary without an active slot");
        assert_eq!(
            table.preview.as_ref().map(|p| p.slot),
            Some(canary.slot),
            "canary slot must be the preview slot"
        );
    }
}

/// A route's name, hosts and prefix, restated from the rules.
fn assert_route_claims_obey_the_rules(route: &proxy::routes::RouteSpec) {
    let name = &route.name;
    assert!((1..=63).contains(&name.len()), "name {name:?}");
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "name {name:?}"
    );
    assert!(!route.hosts.is_empty(), "{name}: no hosts");
    for host in &route.hosts {
        let bare = host.strip_prefix("*.").unwrap_or(host);
        assert!(bare.len() <= 253, "{host:?}");
        for label in bare.split('.') {
            assert!((1..=63).contains(&label.len()), "{host:?}");
            assert!(!label.starts_with('-') && !label.ends_with('-'), "{host:?}");
            assert!(
                label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{host:?}"
            );
        }
    }
    if let Some(prefix) = &route.path_prefix {
        assert!(prefix.starts_with('/'), "{prefix:?}");
        assert!(prefix == "/" || !prefix.ends_with('/'), "{prefix:?}");
        assert!(
            !prefix.contains("//") && !prefix.contains('?') && !prefix.contains('%'),
            "{prefix:?}"
        );
    }
}

/// A state file with named routes beside `valid_table`, their claims drawn
/// from good and bad hosts and prefixes, and any table.
fn state_with_routes() -> impl Strategy<Value = serde_json::Value> {
    let host = prop_oneof![
        4 => prop::sample::select(vec!["shop.test", "*.test", "a-b.c1", "*.eu.shop.test", "docs.test"]),
        1 => prop::sample::select(vec!["Shop.test", "shop.test:80", "*.*.test", "-a.test", "a..b", "", "*", "x.test."]),
    ];
    let prefix = prop_oneof![
        4 => prop::sample::select(vec![None, Some("/"), Some("/api"), Some("/api/v2")]),
        1 => prop::sample::select(vec![Some("api"), Some("/api/"), Some("/a//b"), Some("/%41")]),
    ];
    let name = prop_oneof![
        4 => prop::sample::select(vec!["shop", "docs", "api-2"]),
        1 => prop::sample::select(vec!["Shop", "", "a_b"]),
    ];
    let table = prop_oneof![4 => valid_table(), 1 => table()];
    let route = (name, prop::collection::vec(host, 1..3), prefix, table).prop_map(
        |(name, hosts, prefix, table)| {
            let mut r = serde_json::json!({"name": name, "hosts": hosts, "table": table});
            if let Some(prefix) = prefix {
                r["path_prefix"] = prefix.into();
            }
            r
        },
    );
    (valid_table(), prop::collection::vec(route, 0..3)).prop_map(|(mut t, routes)| {
        t["routes"] = routes.into();
        t
    })
}

/// Both entry points on the same bytes: no panic, accepted tables obey the
/// rules, and the state file takes whatever the admin API takes (it differs
/// only in letting `active` be left out).
fn check_both(bytes: &[u8]) -> Option<RouteTable> {
    let policy = policy();
    let from_admin = parse_routing_table(bytes, &policy).ok();
    let from_file = StateFile::new("fuzz-routing.json")
        .decode(bytes, &policy)
        .ok();
    if let Some(table) = &from_admin {
        assert_obeys_the_rules(table);
        assert_eq!(from_file.as_ref(), Some(table), "the state file agrees");
    }
    if let Some(table) = &from_file {
        assert_obeys_the_rules(table);
    }
    // Read with its named routes, the file never panics either, and the
    // default table it accepts is the one read alone.
    if let Ok((table, routes)) = StateFile::new("fuzz-routing.json").decode_state(bytes, &policy) {
        assert_eq!(from_file.as_ref(), Some(&table));
        for route in routes.iter() {
            assert_obeys_the_rules(route.table());
            assert_route_claims_obey_the_rules(&route.spec());
        }
    }
    from_admin
}

/// Addresses from every class the rules name, plus noise.
fn address() -> impl Strategy<Value = String> {
    let port = prop_oneof![
        Just(0u16),
        Just(8080u16),
        Just(8081),
        Just(8082),
        1u16..=65535,
    ];
    let ipv4 = prop_oneof![
        any::<[u8; 4]>(),
        any::<[u8; 3]>().prop_map(|[b, c, d]| [127, b, c, d]),
        any::<[u8; 2]>().prop_map(|[c, d]| [172, 17, c, d]),
        any::<[u8; 2]>().prop_map(|[c, d]| [169, 254, c, d]),
        Just([0, 0, 0, 0]),
        Just([255, 255, 255, 255]),
        (224u8..=239, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| [a, b, c, d]),
    ];
    let ipv6 = prop_oneof![
        any::<[u16; 8]>(),
        Just([0, 0, 0, 0, 0, 0, 0, 1]),
        Just([0; 8]),
        any::<[u16; 7]>().prop_map(|s| [
            0xfe80 | (s[0] & 0x3f),
            s[1],
            s[2],
            s[3],
            s[4],
            s[5],
            s[6],
            1
        ]),
        any::<[u16; 7]>().prop_map(|s| [
            0xfd00 | (s[0] & 0xff),
            s[1],
            s[2],
            s[3],
            s[4],
            s[5],
            s[6],
            1
        ]),
        any::<[u16; 7]>().prop_map(|s| [
            0xff00 | (s[0] & 0xff),
            s[1],
            s[2],
            s[3],
            s[4],
            s[5],
            s[6],
            1
        ]),
        any::<[u8; 4]>().prop_map(|[a, b, c, d]| [
            0,
            0,
            0,
            0,
            0,
            0xffff,
            u16::from_be_bytes([a, b]),
            u16::from_be_bytes([c, d])
        ]),
    ];
    prop_oneof![
        4 => (ipv4, port.clone()).prop_map(|(ip, port)| SocketAddr::from((ip, port)).to_string()),
        3 => (ipv6, port.clone()).prop_map(|(s, port)| {
            SocketAddr::from((Ipv6Addr::from(s), port)).to_string()
        }),
        1 => port.clone().prop_map(|p| format!("localhost:{p}")),
        1 => port.clone().prop_map(|p| format!("127.0.0.1:0{p}")),
        1 => port.prop_map(|p| format!("[::1%1]:{p}")),
        1 => "[a-z0-9.:\\[\\]@%/-]{0,24}",
    ]
}

/// An address the rules allow under [`policy`] (ports of the proxy's own
/// listeners left out: 8082 is refused wherever this host has an address,
/// and 172.17.0.1 may be one).
fn allowed_address() -> impl Strategy<Value = String> {
    let ip = prop_oneof![
        any::<[u8; 3]>().prop_map(|[b, c, d]| IpAddr::from([127, b, c, d])),
        any::<[u8; 2]>().prop_map(|[c, d]| IpAddr::from([172, 17, c, d])),
        Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        any::<[u16; 7]>().prop_map(|s| {
            IpAddr::V6(Ipv6Addr::from([
                0xfd00 | (s[0] & 0xff),
                s[1],
                s[2],
                s[3],
                s[4],
                s[5],
                s[6],
                1,
            ]))
        }),
    ];
    let port = (1u16..=65535).prop_filter("own listener port", |p| ![8080, 8081, 8082].contains(p));
    (ip, port).prop_map(|(ip, port)| SocketAddr::new(ip, port).to_string())
}

/// A table the rules allow: an active slot, maybe the other slot as
/// preview, maybe a canary to it.
fn valid_table() -> impl Strategy<Value = serde_json::Value> {
    (
        any::<u64>(),
        any::<bool>(),
        allowed_address(),
        proptest::option::of(allowed_address()),
        proptest::option::of(0u8..=100),
    )
        .prop_map(|(generation, blue_active, active, preview, percent)| {
            let (on, off) = if blue_active {
                ("blue", "green")
            } else {
                ("green", "blue")
            };
            let mut t = serde_json::json!({
                "generation": generation,
                "active": {"slot": on, "address": active},
            });
            if let Some(preview) = preview {
                t["preview"] = serde_json::json!({"slot": off, "address": preview});
                if let Some(percent) = percent {
                    t["canary"] = serde_json::json!({"slot": off, "percent": percent});
                }
            }
            t
        })
}

/// A change to one field of a table, towards each way it can go wrong.
#[derive(Clone, Debug)]
enum Edit {
    Address(&'static str, String),
    Slot(&'static str, serde_json::Value),
    Remove(&'static str),
    Null(&'static str),
    Generation(serde_json::Value),
    CanaryPercent(i64),
    Unknown,
}

fn edit() -> impl Strategy<Value = Edit> {
    let upstream = prop::sample::select(vec!["active", "preview"]);
    let key = prop::sample::select(vec!["generation", "active", "preview", "canary"]);
    let slot = prop::sample::select(vec![
        serde_json::json!("blue"),
        serde_json::json!("green"),
        serde_json::json!("purple"),
        serde_json::json!(1),
    ]);
    let generation = prop::sample::select(vec![
        serde_json::json!(0),
        serde_json::json!(-1),
        serde_json::json!(1.5),
        serde_json::json!("7"),
        serde_json::json!(u64::MAX),
    ]);
    prop_oneof![
        6 => (upstream.clone(), address()).prop_map(|(f, a)| Edit::Address(f, a)),
        2 => (upstream.clone(), slot).prop_map(|(f, s)| Edit::Slot(f, s)),
        1 => key.clone().prop_map(Edit::Remove),
        1 => key.prop_map(Edit::Null),
        1 => generation.prop_map(Edit::Generation),
        1 => (-1i64..=300).prop_map(Edit::CanaryPercent),
        1 => Just(Edit::Unknown),
    ]
}

fn apply(t: &mut serde_json::Value, edit: &Edit) {
    let fields = t.as_object_mut().expect("tables are objects");
    match edit {
        Edit::Address(field, address) => {
            fields
                .entry(*field)
                .or_insert_with(|| serde_json::json!({"slot": "green"}))["address"] =
                address.as_str().into();
        }
        Edit::Slot(field, slot) => {
            fields
                .entry(*field)
                .or_insert_with(|| serde_json::json!({"address": "127.0.0.1:1"}))["slot"] =
                slot.clone();
        }
        Edit::Remove(key) => {
            fields.remove(*key);
        }
        Edit::Null(key) => {
            fields.insert(key.to_string(), serde_json::Value::Null);
        }
        Edit::Generation(g) => {
            fields.insert("generation".into(), g.clone());
        }
        Edit::CanaryPercent(p) => {
            fields
                .entry("canary")
                .or_insert_with(|| serde_json::json!({"slot": "green"}))["percent"] = (*p).into();
        }
        Edit::Unknown => {
            fields.insert("unknown".into(), serde_json::json!({"x": [1, 2]}));
        }
    }
}

/// Valid tables, left as they are about a third of the time, otherwise
/// with a few fields edited.
fn table() -> impl Strategy<Value = serde_json::Value> {
    (valid_table(), prop::collection::vec(edit(), 0..3)).prop_map(|(mut t, edits)| {
        for e in &edits {
            apply(&mut t, e);
        }
        t
    })
}

/// Byte-level damage to a serialized table: what a torn write, a bad hand
/// edit or a hostile client produces.
#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        3 => prop::sample::select(b"{}[]\":,0-9 \\nulltrue.e%@".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0usize..16).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: usize| i % bytes.len();
    match *m {
        Mutation::Delete(i) => {
            bytes.remove(at(i));
        }
        Mutation::Insert(i, b) => bytes.insert(at(i), b),
        Mutation::Replace(i, b) => {
            let i = at(i);
            bytes[i] = b;
        }
        Mutation::Truncate(i) => bytes.truncate(at(i)),
        Mutation::Duplicate(i, n) => {
            let start = at(i);
            let end = (start + n).min(bytes.len());
            let copy = bytes[start..end].to_vec();
            bytes.splice(start..start, copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_tables_obey_the_rules(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        check_both(&bytes);
    }

    #[test]
    fn json_like_text_never_panics_and_accepted_tables_obey_the_rules(
        text in "[{}\\[\\]\":, 0-9a-z.\\-]{0,96}"
    ) {
        check_both(text.as_bytes());
    }

    #[test]
    fn generated_tables_are_judged_by_the_rules(t in table()) {
        check_both(&serde_json::to_vec(&t).unwrap());
    }

    #[test]
    fn damaged_tables_never_panic_and_accepted_ones_obey_the_rules(
        t in table(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = serde_json::to_vec_pretty(&t).unwrap();
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        check_both(&bytes);
    }

    #[test]
    fn state_files_with_routes_never_panic_and_accepted_routes_obey_the_rules(
        t in state_with_routes(),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let mut bytes = serde_json::to_vec_pretty(&t).unwrap();
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        check_both(&bytes);
    }

    /// The other direction: the rules do not refuse what they allow.
    #[test]
    fn tables_within_the_rules_are_accepted(t in valid_table()) {
        let accepted = check_both(&serde_json::to_vec(&t).unwrap());
        prop_assert!(accepted.is_some(), "refused: {}", t);
    }
}

/// Why each `bad-*` seed must be refused: a fragment of the error, so a
/// seed cannot pass by failing for some other reason.
const BAD_SEEDS: &[(&str, &str)] = &[
    ("bad-array", "field `active` is required"),
    (
        "bad-broadcast",
        "multicast/broadcast addresses are never allowed",
    ),
    ("bad-canary-not-preview", "must be the preview slot"),
    // A key given twice is ambiguous: refused, never "the last one wins".
    ("bad-duplicate-active", "duplicate field `active`"),
    ("bad-canary-over-100", "canary percent 101 is over 100"),
    ("bad-canary-percent-256", "invalid value: integer `256`"),
    ("bad-credentials", "expected ip:port"),
    ("bad-dns-name", "host names are not allowed"),
    ("bad-empty", "EOF while parsing"),
    (
        "bad-link-local-v6",
        "link-local/metadata addresses are never allowed",
    ),
    (
        "bad-mapped-metadata",
        "link-local/metadata addresses are never allowed",
    ),
    (
        "bad-metadata",
        "link-local/metadata addresses are never allowed",
    ),
    ("bad-missing-active", "field `active` is required"),
    (
        "bad-multicast",
        "multicast/broadcast addresses are never allowed",
    ),
    ("bad-negative-generation", "invalid value: integer `-1`"),
    ("bad-non-canonical", r#"write it as "127.0.0.1:9001""#),
    ("bad-not-utf8", "invalid unicode"),
    (
        "bad-outside-allow-list",
        "not inside any --allow-upstream network",
    ),
    ("bad-own-admin-listener", "this proxy's own admin listener"),
    (
        "bad-own-preview-listener-any-address",
        "preview upstream \"[::1]:8082\": that is this proxy's own preview listener",
    ),
    ("bad-port-zero", "port 0 is never allowed"),
    ("bad-preview-is-active", "is the active slot"),
    ("bad-truncated", "EOF while parsing"),
    ("bad-unknown-slot", "unknown variant `purple`"),
    (
        "bad-unspecified",
        "unspecified addresses (0.0.0.0, ::) are never allowed",
    ),
    (
        "bad-unspecified-v6",
        "unspecified addresses (0.0.0.0, ::) are never allowed",
    ),
    ("bad-url", "expected ip:port"),
    ("bad-zone-id", "IPv6 zone ids are not allowed"),
];

#[test]
fn every_seed_in_the_corpus_is_judged_as_its_name_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/routing");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    seeds.sort();
    let (mut ok, mut bad) = (0, 0);
    for path in &seeds {
        let name = path.file_stem().unwrap().to_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let verdict = parse_routing_table(&bytes, &policy());
        check_both(&bytes);
        if name.starts_with("ok-") {
            let table = verdict.unwrap_or_else(|e| panic!("{name} refused: {e}"));
            assert_obeys_the_rules(&table);
            ok += 1;
        } else if name.starts_with("bad-") {
            let err = verdict
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"))
                .to_string();
            let (_, why) = BAD_SEEDS
                .iter()
                .find(|(seed, _)| *seed == name)
                .unwrap_or_else(|| panic!("{name}: add why it is refused to BAD_SEEDS"));
            assert!(err.contains(why), "{name}: {err:?} does not say {why:?}");
            bad += 1;
        } else {
            panic!("{name}: corpus files are named ok-*.json or bad-*.json");
        }
    }
    assert!(
        ok >= 5 && bad >= 20,
        "corpus went missing: {ok} ok, {bad} bad"
    );
    assert_eq!(bad, BAD_SEEDS.len(), "every listed seed is in the corpus");
}
