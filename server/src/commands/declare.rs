//! `switchyard apply -f FILE` and `switchyard export`: environments as a
//! TOML file kept in Git. Apply prints what would change, field by field,
//! and writes only with `--yes`, all environments in one transaction.
//! Export writes what the console holds; applying it back changes nothing.

use crate::console::offline_engine;
use anyhow::Context;
use engine::Actor;
use model::{EnvironmentPlan, PlanAction};
use std::path::Path;

/// `switchyard apply -f FILE [--yes]`.
pub async fn apply(data_dir: &Path, file: &Path, yes: bool) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let configs = engine::parse_environment_file(&text)
        .with_context(|| format!("{} is not a valid environment file", file.display()))?;
    // As `env create`: a new environment's proxy addresses are checked free
    // (the plan already refuses one in use) and its proxy started.
    let engine =
        offline_engine(data_dir)
            .await?
            .with_proxy_launcher(crate::proxy_process::launcher(
                data_dir,
                &crate::config::default_bin_dir(),
            ));
    let system = Actor::system();
    let plan = engine.plan_apply(&system, &configs).await?;
    print_plan(&plan);
    let pending = plan
        .iter()
        .filter(|p| matches!(p.action, PlanAction::Create | PlanAction::Change))
        .count();
    if pending == 0 {
        println!("nothing to apply");
        return Ok(());
    }
    if !yes {
        println!("{pending} environment(s) would change; run again with --yes to apply");
        return Ok(());
    }
    engine.apply_environments(&system, &configs).await?;
    println!("applied: {pending} environment(s) changed");
    Ok(())
}

fn print_plan(plan: &[EnvironmentPlan]) {
    for p in plan {
        let what = match p.action {
            PlanAction::Create => "create",
            PlanAction::Change => "change",
            PlanAction::Unchanged => "unchanged",
            PlanAction::NotInFile => "not in the file (kept as it is)",
        };
        println!("{}: {what}", p.name);
        for c in &p.changes {
            match (&c.before, &c.after) {
                (None, Some(a)) => println!("  + {} = {a:?}", c.field),
                (Some(b), None) => println!("  - {} (was {b:?})", c.field),
                (Some(b), Some(a)) => println!("  ~ {}: {b:?} -> {a:?}", c.field),
                (None, None) => {}
            }
            if c.field.starts_with("secrets.") && c.before.is_none() {
                let name = c.field.trim_start_matches("secrets.");
                println!(
                    "    (set its value with `switchyard env secret {} {name}`; until then slots start without it)",
                    p.name
                );
            }
        }
    }
}

/// `switchyard export [-o FILE]`.
pub async fn export(data_dir: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let engine = offline_engine(data_dir).await?;
    let configs = engine.environment_configs(&Actor::system()).await?;
    let text = engine::render_environment_file(&configs)?;
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} environment(s) to {}",
                configs.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}
