use super::*;

fn table(generation: u64, active: Option<(SlotColor, &str)>) -> RoutingTable {
    RoutingTable {
        generation,
        active: active.map(|(slot, a)| Upstream {
            slot,
            address: a.into(),
        }),
        preview: None,
        ..RoutingTable::default()
    }
}

#[test]
fn the_marker_reads_back_what_was_rendered() {
    for t in [
        table(7, Some((SlotColor::Green, "127.0.0.1:4321"))),
        table(1, Some((SlotColor::Blue, "[::1]:80"))),
        table(3, None),
    ] {
        for listen in [None, Some("127.0.0.1:8082")] {
            let text = render("switchyard_prod", listen, &t).unwrap();
            assert_eq!(
                parse_marker(&text),
                Some(Marker {
                    generation: t.generation,
                    active: t.active.clone(),
                    preview: None,
                }),
                "{text}"
            );
        }
    }
    assert_eq!(parse_marker("upstream x { server a:1; }"), None);
}

#[test]
fn the_preview_block_serves_the_preview_slot_or_answers_503() {
    let mut t = table(4, Some((SlotColor::Blue, "127.0.0.1:4001")));
    t.preview = Some(Upstream {
        slot: SlotColor::Green,
        address: "127.0.0.1:4002".into(),
    });
    let text = render("switchyard_prod", Some("127.0.0.1:8082"), &t).unwrap();
    assert_eq!(
        parse_marker(&text),
        Some(Marker {
            generation: 4,
            active: t.active.clone(),
            preview: t.preview.clone(),
        }),
        "{text}"
    );
    for line in [
        "upstream switchyard_prod {\n    server 127.0.0.1:4001;\n}",
        "upstream switchyard_prod_preview {\n    server 127.0.0.1:4002;\n}",
        "listen 127.0.0.1:8082;",
        "add_header X-Switchyard-Slot green always;",
        "proxy_pass http://switchyard_prod_preview;",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    t.preview = None;
    let text = render("switchyard_prod", Some("127.0.0.1:8082"), &t).unwrap();
    assert!(text.contains("return 503"), "{text}");
    assert!(!text.contains("_preview"), "{text}");

    // A preview needs a listen address; it is never the active slot; the
    // listen address cannot inject directives either.
    t.preview = Some(Upstream {
        slot: SlotColor::Green,
        address: "127.0.0.1:4002".into(),
    });
    assert!(render("switchyard_prod", None, &t).is_err());
    assert!(render("switchyard_prod", Some("127.0.0.1:1; } server {"), &t).is_err());
    t.preview.as_mut().unwrap().slot = SlotColor::Blue;
    assert!(render("switchyard_prod", Some("127.0.0.1:8082"), &t).is_err());
    // Includes from before previews existed still read back.
    let old = "# switchyard-routing generation=3 active=blue address=127.0.0.1:1\n";
    assert_eq!(parse_marker(old).unwrap().preview, None);
}

#[test]
fn addresses_and_names_cannot_inject_directives() {
    for bad in [
        "127.0.0.1:1; } server { listen 80",
        "a:1\ninclude /etc/passwd",
        "",
        "a b:1",
    ] {
        let err = render(
            "switchyard_prod",
            None,
            &table(2, Some((SlotColor::Blue, bad))),
        )
        .unwrap_err();
        assert!(matches!(err, RouterError::Rejected(_)), "{bad:?}");
    }
    assert!(render("x { }", None, &table(2, None)).is_err());
}
