//! Where the routing survives restarts of the proxy: the default table and
//! every named route, in one file, replaced atomically on every change.
//!
//! The file is the default table's JSON (`{"generation","active",…}`) with a
//! `"routes"` list beside its fields when there are named routes, so a
//! proxy with none writes exactly what it always wrote.

use crate::route_table::{RouteTable, TableError, TableRules};
use crate::routes::{RouteError, RouteSet, RouteSpec};
use crate::upstream_policy::UpstreamPolicy;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    // Refusing beats starting with no route: an empty table would answer 503
    // to every user while looking "up" to a process supervisor.
    #[error("state file {path} is corrupt ({source}): fix or remove it; refusing to start without knowing where traffic goes")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    // The file may predate the policy (an older proxy, other flags) or have
    // been edited by hand; routing users to where it points unchecked would
    // let the file bypass the checks the admin API makes.
    #[error("state file {path} holds a routing table this proxy refuses: {source}; fix or remove it, refusing to start")]
    Refused { path: PathBuf, source: TableError },
    #[error("state file {path} holds a route {name:?} this proxy refuses: {source}; fix or remove it, refusing to start")]
    RefusedRoute {
        path: PathBuf,
        name: String,
        // Boxed: this error travels inside every admin error.
        source: Box<RouteError>,
    },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything the file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProxyState {
    #[serde(flatten)]
    pub default: RouteTable,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
}

/// The `"routes"` beside the default table's fields. Read apart from the
/// table so the table keeps its own strict decoding (a key given twice is
/// refused), which `#[serde(flatten)]` would lose.
#[derive(Deserialize)]
struct StoredRoutes {
    #[serde(default)]
    routes: Vec<RouteSpec>,
}

#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> StateFile {
        StateFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `Ok(None)` when the file does not exist yet (first start); the table
    /// otherwise, once it passes the same checks as a PUT of it would.
    pub fn load(&self, policy: &UpstreamPolicy) -> Result<Option<RouteTable>, StateFileError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateFileError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        self.decode(&bytes, policy).map(Some)
    }

    /// Like [`StateFile::load`], with the named routes: each is checked as
    /// a PUT of it would be, and a refused one stops the start.
    pub fn load_state(
        &self,
        policy: &UpstreamPolicy,
    ) -> Result<Option<(RouteTable, RouteSet)>, StateFileError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateFileError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        self.decode_state(&bytes, policy).map(Some)
    }

    /// The default table and the routes in `bytes`, checked against `policy`.
    pub fn decode_state(
        &self,
        bytes: &[u8],
        policy: &UpstreamPolicy,
    ) -> Result<(RouteTable, RouteSet), StateFileError> {
        let table = self.decode(bytes, policy)?;
        let stored: StoredRoutes =
            serde_json::from_slice(bytes).map_err(|source| StateFileError::Corrupt {
                path: self.path.clone(),
                source,
            })?;
        let routes = RouteSet::from_specs(stored.routes, policy).map_err(|(name, source)| {
            StateFileError::RefusedRoute {
                path: self.path.clone(),
                name,
                source: Box::new(source),
            }
        })?;
        Ok((table, routes))
    }

    /// The default table in `bytes` (this file's content), checked against
    /// `policy`; named routes are not read.
    pub fn decode(
        &self,
        bytes: &[u8],
        policy: &UpstreamPolicy,
    ) -> Result<RouteTable, StateFileError> {
        let table: RouteTable =
            serde_json::from_slice(bytes).map_err(|source| StateFileError::Corrupt {
                path: self.path.clone(),
                source,
            })?;
        table
            .validate(policy)
            .map_err(|source| StateFileError::Refused {
                path: self.path.clone(),
                source,
            })?;
        Ok(table)
    }

    /// The default table alone (no named routes).
    /// Blocking (fsync): call it from `spawn_blocking` on async paths.
    pub fn store(&self, table: &RouteTable) -> Result<(), StateFileError> {
        self.store_state(&ProxyState {
            default: table.clone(),
            routes: Vec::new(),
        })
    }

    /// Blocking (fsync): call it from `spawn_blocking` on async paths.
    pub fn store_state(&self, state: &ProxyState) -> Result<(), StateFileError> {
        let write_err = |source| StateFileError::Write {
            path: self.path.clone(),
            source,
        };
        let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| write_err(e.into()))?;
        bytes.push(b'\n');
        write_atomically(&self.path, &bytes).map_err(write_err)
    }
}

/// Writes `PATH.tmp`, fsyncs it, renames it over `PATH` and fsyncs the
/// directory, so a crash at any point leaves either the old or the new file
/// complete, never a torn one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp: OsString = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Persisting the rename itself; some filesystems refuse to open a
    // directory for syncing, and the data is already safe in the file then.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{RoutingTable, SlotColor, Upstream};

    #[test]
    fn missing_file_is_a_first_start_and_round_trip_works() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("routing.json"));
        assert_eq!(file.load(&UpstreamPolicy::loopback_only()).unwrap(), None);
        let table = RoutingTable {
            generation: 7,
            active: Some(Upstream {
                slot: SlotColor::Green,
                address: "127.0.0.1:9001".into(),
            }),
            preview: None,
            ..RoutingTable::default()
        };
        let table = RouteTable::from(table);
        file.store(&table).unwrap();
        assert_eq!(
            file.load(&UpstreamPolicy::loopback_only()).unwrap(),
            Some(table)
        );
        assert!(!dir.path().join("routing.json.tmp").exists());
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routing.json");
        std::fs::write(&path, "{\"generation\": ").unwrap();
        let err = StateFile::new(&path)
            .load(&UpstreamPolicy::loopback_only())
            .unwrap_err();
        assert!(matches!(err, StateFileError::Corrupt { .. }));
        assert!(err.to_string().contains("refusing to start"));
    }

    #[test]
    fn a_table_the_policy_refuses_is_an_error_naming_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routing.json");
        std::fs::write(
            &path,
            r#"{"generation": 4, "active": {"slot": "blue", "address": "169.254.169.254:80"}}"#,
        )
        .unwrap();
        let err = StateFile::new(&path)
            .load(&UpstreamPolicy::loopback_only())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                r#"state file {} holds a routing table this proxy refuses: active upstream "169.254.169.254:80": link-local/metadata addresses are never allowed; fix or remove it, refusing to start"#,
                path.display()
            )
        );
        // Structural rules too: the preview must be the idle slot.
        std::fs::write(
            &path,
            r#"{"generation": 4, "active": {"slot": "blue", "address": "127.0.0.1:9001"},
                "preview": {"slot": "blue", "address": "127.0.0.1:9002"}}"#,
        )
        .unwrap();
        let err = StateFile::new(&path)
            .load(&UpstreamPolicy::loopback_only())
            .unwrap_err();
        assert!(matches!(err, StateFileError::Refused { .. }), "{err}");
    }

    #[test]
    fn routes_round_trip_beside_the_default_table_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routing.json");
        let file = StateFile::new(&path);
        let policy = UpstreamPolicy::loopback_only();
        let table = |generation, port: u16| RouteTable {
            generation,
            active: Some(Upstream {
                slot: SlotColor::Blue,
                address: format!("127.0.0.1:{port}"),
            }),
            ..RouteTable::default()
        };
        // Without routes, the file is the table alone, as it always was.
        file.store(&table(2, 9000)).unwrap();
        let alone = std::fs::read_to_string(&path).unwrap();
        assert!(!alone.contains("routes"), "{alone}");
        assert_eq!(
            serde_json::from_str::<RoutingTable>(&alone)
                .unwrap()
                .generation,
            2
        );

        let state = ProxyState {
            default: table(2, 9000),
            routes: vec![RouteSpec {
                name: "shop".into(),
                hosts: vec!["shop.example.com".into(), "*.shop.example.com".into()],
                path_prefix: Some("/api".into()),
                // Persisted with the route: the redirect survives a restart.
                redirect_https: true,
                table: table(7, 9001),
            }],
        };
        file.store_state(&state).unwrap();
        let (default, routes) = file.load_state(&policy).unwrap().unwrap();
        assert_eq!(default, state.default);
        let back: Vec<RouteSpec> = routes.iter().map(|r| r.spec()).collect();
        assert_eq!(back, state.routes);
        // The default table alone still reads from a file with routes.
        assert_eq!(file.load(&policy).unwrap(), Some(table(2, 9000)));

        let mut refused = state.clone();
        refused.routes[0].hosts[1] = "*.Shop.example.com".into();
        file.store_state(&refused).unwrap();
        let err = file.load_state(&policy).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                r#"state file {} holds a route "shop" this proxy refuses: hosts[1] "*.Shop.example.com": must be lowercase; fix or remove it, refusing to start"#,
                path.display()
            )
        );
        let mut twice = state.clone();
        twice.routes.push(twice.routes[0].clone());
        twice.routes[1].hosts = vec!["other.example.com".into()];
        file.store_state(&twice).unwrap();
        assert!(file
            .load_state(&policy)
            .unwrap_err()
            .to_string()
            .contains(r#"route "shop" is listed twice"#),);
        let mut refused = state.clone();
        refused.routes[0].table.active.as_mut().unwrap().address = "10.1.1.1:80".into();
        file.store_state(&refused).unwrap();
        assert!(matches!(
            file.load_state(&policy).unwrap_err(),
            StateFileError::RefusedRoute { .. }
        ));
    }
}
