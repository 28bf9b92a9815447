//! The proxy started inside the test process with [`proxy::start`]: the
//! tests reach into it ([`RunningProxy::routing`], [`RunningProxy::metrics`]).

use super::TOKEN;
use proxy::token::AdminToken;
use proxy::{ProxyConfig, RunningProxy};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Both listeners on a free loopback port, the state in `state_file`,
/// [`TOKEN`] as the admin token; everything else as the binary's defaults.
pub fn config(state_file: PathBuf) -> ProxyConfig {
    ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        state_file,
        AdminToken::new(TOKEN).unwrap(),
    )
}

/// Started on [`config`] with its state in `dir/routing.json`, draining for
/// at most 5 s on shutdown.
pub async fn start_proxy(dir: &Path) -> RunningProxy {
    start_proxy_with(dir, |_| {}).await
}

/// [`start_proxy`] with `configure` applied to the config last.
pub async fn start_proxy_with(
    dir: &Path,
    configure: impl FnOnce(&mut ProxyConfig),
) -> RunningProxy {
    let mut config = config(dir.join("routing.json"));
    config.drain_timeout = Duration::from_secs(5);
    configure(&mut config);
    proxy::start(config).await.expect("proxy starts")
}
