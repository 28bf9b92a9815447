//! One small run of the audit benchmark, so that the benchmark binary keeps
//! working between the full runs whose figures go into the notes (see the
//! README's "Benchmarks"). It checks what the run reports, not how fast.

#[test]
fn the_audit_benchmark_runs_and_reports_an_intact_chain() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard-bench"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["audit", "--entries", "2000", "--runs", "1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("generated 2000 chained entries"), "{said}");
    assert!(said.contains("first page, no filter"), "{said}");
    assert!(
        said.contains("verify (chain only): Intact { entries: 2000 }"),
        "{said}"
    );
    assert!(
        said.contains("verify-export (offline): 2000 entries, complete: true"),
        "{said}"
    );
}
