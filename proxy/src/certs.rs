//! The TLS listener's certificates, one per host name, chosen by SNI.
//!
//! Where they come from ([`CertSources`]):
//! * `--tls-cert HOST=CERT.pem:KEY.pem`, repeatable;
//! * `--tls-dir DIR`: `DIR/<host>.crt` + `DIR/<host>.key`, or a directory
//!   `DIR/<host>/` holding `fullchain.pem` + `privkey.pem` (certbot's
//!   `/etc/letsencrypt/live` layout). `_wildcard.example.com` stands for
//!   `*.example.com` in either form.
//!
//! The certificates in force are one immutable [`CertTable`] behind an
//! `ArcSwap`: a handshake costs one atomic load and a hash lookup or two.
//! [`CertStore::reload`] (a timer and SIGHUP) re-reads every file and swaps
//! a new table in when something changed. A file that cannot be read or
//! parsed, or a key that does not match its certificate, keeps the host's
//! previous certificate serving and is logged once per change of the file,
//! so a half-written renewal (new certificate, old key) just waits for the
//! next round. A host whose files disappear keeps its last certificate
//! until a restart: a renewal tool briefly replacing files must not take a
//! site down.

use crate::host_match::{self, BadHost, HostPattern, MAX_HOST_LEN};
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// How a file in `--tls-dir` names a wildcard host (`*` is awkward in file
/// names and shells).
const WILDCARD_FILE_PREFIX: &str = "_wildcard.";

/// Why a certificate source or file is refused. Every message names the
/// host and the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("--tls-cert {0:?}: expected HOST=CERT.pem:KEY.pem")]
    Syntax(String),
    #[error("host {host:?}: {reason}")]
    Host { host: String, reason: BadHost },
    #[error("host {host:?}: cannot read {}: {source}", path.display())]
    Read {
        host: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("host {host:?}: {}: no PEM certificate in it", path.display())]
    NoCertificate { host: String, path: PathBuf },
    #[error("host {host:?}: {}: {reason}", path.display())]
    Pem {
        host: String,
        path: PathBuf,
        reason: String,
    },
    #[error("host {host:?}: key {} does not fit certificate {}: {reason}", key.display(), cert.display())]
    Key {
        host: String,
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("cannot list --tls-dir {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS listener has no certificate (give --tls-cert or --tls-dir)")]
    Empty,
    #[error("--tls-default {0:?}: no certificate is loaded for that host")]
    NoDefault(String),
}

/// One `--tls-cert HOST=CERT.pem:KEY.pem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPair {
    /// `shop.example.com` or `*.example.com`, lowercase.
    pub host: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl FromStr for CertPair {
    type Err = CertError;

    /// `HOST=CERT:KEY`; the paths split at the last `:`, so only the key's
    /// path may not contain one.
    fn from_str(s: &str) -> Result<CertPair, CertError> {
        let syntax = || CertError::Syntax(s.to_string());
        let (host, paths) = s.split_once('=').ok_or_else(syntax)?;
        let (cert, key) = paths.rsplit_once(':').ok_or_else(syntax)?;
        if cert.is_empty() || key.is_empty() {
            return Err(syntax());
        }
        let host = host.to_ascii_lowercase();
        HostPattern::parse(&host).map_err(|reason| CertError::Host {
            host: host.clone(),
            reason,
        })?;
        Ok(CertPair {
            host,
            cert: cert.into(),
            key: key.into(),
        })
    }
}

/// Every place certificates are read from, re-read on each reload.
#[derive(Clone, Debug, Default)]
pub struct CertSources {
    pub pairs: Vec<CertPair>,
    pub dirs: Vec<PathBuf>,
    /// The host whose certificate clients without SNI, or with a name no
    /// certificate covers, get. Without it their handshake fails.
    pub default_host: Option<String>,
}

impl CertSources {
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty() && self.dirs.is_empty()
    }

    /// The explicit pairs, then whatever the directories hold now.
    fn list(&self) -> Result<Vec<CertPair>, CertError> {
        let mut all = self.pairs.clone();
        for dir in &self.dirs {
            all.extend(scan_dir(dir)?);
        }
        Ok(all)
    }
}

/// `<host>.crt` + `<host>.key` files and `<host>/{fullchain,privkey}.pem`
/// directories; anything else (certbot's README, a lone `.crt`, a name that
/// is no host) is skipped.
fn scan_dir(dir: &Path) -> Result<Vec<CertPair>, CertError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CertError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (stem, cert, key) = if path.is_dir() {
            let (cert, key) = (path.join("fullchain.pem"), path.join("privkey.pem"));
            (name, cert, key)
        } else if let Some(stem) = name.strip_suffix(".crt") {
            (stem, path.clone(), dir.join(format!("{stem}.key")))
        } else {
            continue;
        };
        if !cert.is_file() || !key.is_file() {
            continue;
        }
        let host = match stem.strip_prefix(WILDCARD_FILE_PREFIX) {
            Some(suffix) => format!("*.{suffix}"),
            None => stem.to_string(),
        }
        .to_ascii_lowercase();
        if HostPattern::parse(&host).is_err() {
            tracing::debug!(path = %path.display(), "not a host name; skipped");
            continue;
        }
        found.push(CertPair { host, cert, key });
    }
    // Directory order is arbitrary; a stable order makes logs comparable.
    found.sort_by(|a, b| a.host.cmp(&b.host));
    Ok(found)
}

/// The certificates in force. Immutable; a reload builds a new one.
#[derive(Default)]
pub(crate) struct CertTable {
    /// By host pattern key: the name, or `.example.com` for `*.example.com`.
    by_host: HashMap<Box<[u8]>, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl CertTable {
    /// The certificate for a server name: the exact name, else the wildcard
    /// one label up (a TLS wildcard covers exactly one label), else the
    /// default. Allocation-free.
    fn find(&self, server_name: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let mut buf = [0u8; MAX_HOST_LEN];
        let host = server_name.and_then(|name| host_match::normalize(name.as_bytes(), &mut buf));
        if let Some(host) = host {
            if let Some(key) = self.by_host.get(host) {
                return Some(key);
            }
            if let Some(dot) = host.iter().position(|&b| b == b'.') {
                if let Some(key) = self.by_host.get(&host[dot..]) {
                    return Some(key);
                }
            }
        }
        self.default.as_ref()
    }
}

/// What the last reload saw of one host's files: a file unchanged since
/// is neither parsed again nor logged again.
struct Seen {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// The certificates, their sources and what the reloads saw. Shared by the
/// TLS listeners of every data-plane thread.
pub struct CertStore {
    sources: CertSources,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertTable>,
    /// Only reloads take it (never a handshake): they run one at a time.
    seen: Mutex<ReloadState>,
}

#[derive(Default)]
struct ReloadState {
    seen: HashMap<String, Seen>,
    /// Every host's certificate last loaded, kept when its files vanish.
    loaded: HashMap<String, Arc<CertifiedKey>>,
    /// The last error logged per host (or directory), to log it once.
    failing: HashMap<String, String>,
}

/// What one reload did, for logs and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Hosts whose certificate was (re)loaded.
    pub loaded: Vec<String>,
    /// Hosts whose new files were refused; their previous certificate stays.
    pub refused: Vec<String>,
}

impl CertStore {
    /// Loads every certificate. At start there is nothing to fall back on,
    /// so any bad file refuses the start (the error names it).
    pub fn load(
        sources: CertSources,
        provider: Arc<CryptoProvider>,
    ) -> Result<CertStore, CertError> {
        let mut state = ReloadState::default();
        for pair in sources.list()? {
            let (cert, key) = read_pair(&pair)?;
            let certified = parse_pair(&pair, &cert, &key, &provider)?;
            state.loaded.insert(pair.host.clone(), Arc::new(certified));
            state.seen.insert(pair.host, Seen { cert, key });
        }
        if state.loaded.is_empty() {
            return Err(CertError::Empty);
        }
        let table = build_table(&state.loaded, sources.default_host.as_deref());
        if let Some(host) = &sources.default_host {
            if table.default.is_none() {
                return Err(CertError::NoDefault(host.clone()));
            }
        }
        let mut hosts: Vec<&String> = state.loaded.keys().collect();
        hosts.sort();
        tracing::info!(hosts = ?hosts, default = ?sources.default_host, "TLS certificates loaded");
        Ok(CertStore {
            sources,
            provider,
            current: ArcSwap::from_pointee(table),
            seen: Mutex::new(state),
        })
    }

    /// Re-reads every source; swaps in a new table when a certificate
    /// changed. Blocking file IO: call it off the data plane
    /// (`spawn_blocking`).
    pub fn reload(&self) -> ReloadReport {
        let mut report = ReloadReport::default();
        // A panic elsewhere while holding it cannot leave it half-updated
        // in a way that matters: every field is rebuilt from the files.
        let mut state = match self.seen.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut pairs = self.sources.pairs.clone();
        for dir in &self.sources.dirs {
            let what = format!("dir:{}", dir.display());
            match scan_dir(dir) {
                Ok(found) => {
                    state.failing.remove(&what);
                    pairs.extend(found);
                }
                Err(err) => log_once(&mut state.failing, what, &err),
            }
        }
        for pair in pairs {
            let (cert, key) = match read_pair(&pair) {
                Ok(files) => files,
                Err(err) => {
                    log_once(&mut state.failing, pair.host.clone(), &err);
                    continue;
                }
            };
            if let Some(seen) = state.seen.get(&pair.host) {
                if seen.cert == cert && seen.key == key {
                    continue;
                }
            }
            match parse_pair(&pair, &cert, &key, &self.provider) {
                Ok(certified) => {
                    tracing::info!(host = %pair.host, cert = %pair.cert.display(), "TLS certificate reloaded");
                    state.failing.remove(&pair.host);
                    state.loaded.insert(pair.host.clone(), Arc::new(certified));
                    report.loaded.push(pair.host.clone());
                }
                Err(err) => {
                    tracing::warn!(host = %pair.host, error = %err, "new TLS certificate refused; the previous one keeps serving");
                    state.failing.insert(pair.host.clone(), err.to_string());
                    report.refused.push(pair.host.clone());
                }
            }
            state.seen.insert(pair.host, Seen { cert, key });
        }
        if !report.loaded.is_empty() {
            let table = build_table(&state.loaded, self.sources.default_host.as_deref());
            self.current.store(Arc::new(table));
        }
        report
    }

    /// A resolver for rustls reading this store's current table.
    pub(crate) fn resolver(self: &Arc<Self>) -> Arc<CertResolver> {
        Arc::new(CertResolver {
            store: Arc::clone(self),
        })
    }
}

/// Logs an error once until it changes or goes away: a missing file is
/// looked at every couple of seconds.
fn log_once(failing: &mut HashMap<String, String>, what: String, err: &CertError) {
    let text = err.to_string();
    if failing.get(&what) != Some(&text) {
        tracing::warn!(error = %text, "TLS certificate source unusable; the previous certificate keeps serving");
        failing.insert(what, text);
    }
}

fn read_pair(pair: &CertPair) -> Result<(Vec<u8>, Vec<u8>), CertError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CertError::Read {
            host: pair.host.clone(),
            path: path.to_path_buf(),
            source,
        })
    };
    Ok((read(&pair.cert)?, read(&pair.key)?))
}

/// The chain (leaf first) and the key, checked to belong together.
fn parse_pair(
    pair: &CertPair,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertError> {
    let pem = |path: &Path, err: rustls::pki_types::pem::Error| CertError::Pem {
        host: pair.host.clone(),
        path: path.to_path_buf(),
        reason: err.to_string(),
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(&pair.cert, e))?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate {
            host: pair.host.clone(),
            path: pair.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem(&pair.key, e))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| CertError::Key {
        host: pair.host.clone(),
        cert: pair.cert.clone(),
        key: pair.key.clone(),
        reason: e.to_string(),
    })
}

fn build_table(loaded: &HashMap<String, Arc<CertifiedKey>>, default: Option<&str>) -> CertTable {
    let mut table = CertTable::default();
    for (host, key) in loaded {
        if let Ok(pattern) = HostPattern::parse(host) {
            table
                .by_host
                .insert(pattern.key().as_bytes().into(), Arc::clone(key));
        }
    }
    table.default = default.and_then(|host| loaded.get(host)).cloned();
    table
}

/// rustls asks it for each handshake's certificate.
pub(crate) struct CertResolver {
    store: Arc<CertStore>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.store.current.load();
        let found = table.find(hello.server_name()).cloned();
        if found.is_none() {
            // rustls then fails the handshake with an alert; the client
            // sees an error, nothing else is affected.
            tracing::debug!(server_name = ?hello.server_name(), "no certificate for this server name");
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_pair_flag_parses_host_and_paths() {
        let pair: CertPair = "Shop.example.com=/etc/a:b/fullchain.pem:/etc/k.pem"
            .parse()
            .unwrap();
        assert_eq!(pair.host, "shop.example.com");
        assert_eq!(pair.cert, PathBuf::from("/etc/a:b/fullchain.pem"));
        assert_eq!(pair.key, PathBuf::from("/etc/k.pem"));
        assert!("*.example.com=c.pem:k.pem".parse::<CertPair>().is_ok());
        for bad in [
            "shop.example.com",
            "h=c.pem",
            "h=:k",
            "h=c:",
            "bad host=c:k",
        ] {
            assert!(bad.parse::<CertPair>().is_err(), "{bad}");
        }
    }

    #[test]
    fn dir_scan_finds_flat_and_certbot_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("a.example.com.crt"), "x").unwrap();
        std::fs::write(p.join("a.example.com.key"), "x").unwrap();
        std::fs::write(p.join("_wildcard.example.com.crt"), "x").unwrap();
        std::fs::write(p.join("_wildcard.example.com.key"), "x").unwrap();
        std::fs::write(p.join("lonely.example.com.crt"), "x").unwrap();
        std::fs::write(p.join("README"), "x").unwrap();
        std::fs::create_dir(p.join("b.example.com")).unwrap();
        std::fs::write(p.join("b.example.com/fullchain.pem"), "x").unwrap();
        std::fs::write(p.join("b.example.com/privkey.pem"), "x").unwrap();
        let hosts: Vec<String> = scan_dir(p).unwrap().into_iter().map(|c| c.host).collect();
        assert_eq!(hosts, ["*.example.com", "a.example.com", "b.example.com"]);
    }
}
