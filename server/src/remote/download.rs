//! `audit export --server`: the console's export streamed to a file (whole
//! or not at all) or to standard output.

use super::client::{unreachable, Client, Failure};
use super::exit;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The longest an export may take to arrive (a million entries stream in
/// well under a minute on the test machines).
const LIMIT: Duration = Duration::from_secs(30 * 60);

/// Downloads the export; returns the byte count and where it went.
pub async fn audit_export(
    client: &Client,
    query: &[(String, String)],
    file: Option<&Path>,
) -> Result<(u64, String), Failure> {
    let local = |m: String| Failure {
        code: exit::FAILED,
        message: m,
        problem: None,
    };
    // The base is only a carrier for encoding the query.
    let url = reqwest::Url::parse_with_params("http://console/audit/export", query)
        .map_err(|e| local(e.to_string()))?;
    let path = format!("/audit/export?{}", url.query().unwrap_or(""));
    let mut res = client.open(&path, LIMIT).await?;
    // A file is written under a temporary name and renamed at the end, so a
    // broken transfer never leaves a short file that looks whole.
    let (mut sink, partial): (Box<dyn Write>, Option<std::path::PathBuf>) = match file {
        Some(f) => {
            let partial = f.with_extension("partial");
            let out = std::fs::File::create(&partial)
                .map_err(|e| local(format!("creating {}: {e}", partial.display())))?;
            (Box::new(std::io::BufWriter::new(out)), Some(partial))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let mut bytes = 0u64;
    let outcome = loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                bytes += chunk.len() as u64;
                if let Err(e) = sink.write_all(&chunk) {
                    break Err(local(format!("writing the export: {e}")));
                }
            }
            Ok(None) => {
                break sink
                    .flush()
                    .map_err(|e| local(format!("writing the export: {e}")))
            }
            Err(e) => break Err(unreachable(format!("the export broke off: {e}"))),
        }
    };
    drop(sink);
    match (outcome, partial, file) {
        (Ok(()), Some(partial), Some(f)) => {
            std::fs::rename(&partial, f)
                .map_err(|e| local(format!("renaming to {}: {e}", f.display())))?;
            Ok((bytes, f.display().to_string()))
        }
        (Ok(()), _, _) => Ok((bytes, "standard output".into())),
        (Err(e), partial, _) => {
            if let Some(p) = partial {
                let _ = std::fs::remove_file(p);
            }
            Err(e)
        }
    }
}
