//! A running node with its API: what `run` starts for one home, and `demo` for two.
//!
//! Starting writes `<home>/api-token` (mode 0600, a fresh random token each run) and
//! then `<home>/api.json` (`{"url","pid"}`), which is how the other commands find the
//! node. Stopping finishes API requests, stops the node (whose state is all in the
//! store, committed) and removes both files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use communitas_api::{Keyring, KeyringError};
use communitas_crypto::keystore::KdfParams;
use communitas_crypto::{KeystoreError, KeystorePublic, Secrets, random};
use communitas_net::libp2p::Multiaddr;
use communitas_node::{Handle, Node};
use communitas_store::Store;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::commands::{change_passphrase, init};
use crate::home::{DATABASE, KEYSTORE};

/// `<home>/api.json`.
pub(crate) const API_FILE: &str = "api.json";
/// `<home>/api-token`.
pub(crate) const TOKEN_FILE: &str = "api-token";
/// `<home>/lock`: held while a node runs for the home.
const LOCK_FILE: &str = "lock";

/// The contents of `api.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ApiInfo {
    pub(crate) url: String,
    pub(crate) pid: u32,
}

pub(crate) struct Running {
    home: PathBuf,
    keyring: Arc<HomeKeyring>,
    state: communitas_api::State,
    api: JoinHandle<std::io::Result<()>>,
    shutdown: CancellationToken,
    pub(crate) url: String,
    /// A one-time link that signs a browser in to the web UI.
    pub(crate) login_url: Option<String>,
    _lock: std::fs::File,
}

impl Running {
    /// Starts the node of `home` (its identity unlocked) and its API on `api_addr`.
    pub(crate) async fn start(
        home: &Path,
        secrets: Secrets,
        public: KeystorePublic,
        config: communitas_node::Config,
        api_addr: SocketAddr,
    ) -> Result<Self> {
        Self::open(home, Some((secrets, public)), config, api_addr).await
    }

    /// Starts the API of `home` only: the node starts when the identity is created
    /// (a home without one) or unlocked, from the web UI or `communitas unlock`.
    pub(crate) async fn start_locked(
        home: &Path,
        config: communitas_node::Config,
        api_addr: SocketAddr,
    ) -> Result<Self> {
        crate::home::create(home)?;
        Self::open(home, None, config, api_addr).await
    }

    async fn open(
        home: &Path,
        unlocked: Option<(Secrets, KeystorePublic)>,
        mut config: communitas_node::Config,
        api_addr: SocketAddr,
    ) -> Result<Self> {
        let lock = lock_home(home)?;
        // Received files land in the home; uploads through the API are kept there
        // while they are offered.
        config.files.downloads = home.join("downloads");
        config.files.uploads = home.join("uploads");
        let listener = TcpListener::bind(api_addr)
            .await
            .with_context(|| format!("cannot listen for the API on {api_addr}"))?;
        let local = listener.local_addr()?;
        let keyring =
            Arc::new(HomeKeyring { home: home.to_owned(), config, node: Mutex::new(None) });
        let node = match unlocked {
            Some((secrets, public)) => Some(keyring.start(secrets, public).await?),
            None => None,
        };
        let token = hex::encode(random::bytes::<32>()?);
        let shutdown = CancellationToken::new();
        let state = communitas_api::State::with_keyring(
            keyring.clone(),
            node,
            token.clone(),
            shutdown.clone(),
            local,
        )
        .with_home(home);
        let login_url = state.login_url();
        let api = tokio::spawn(communitas_api::serve(listener, state.clone()));
        let url = format!("http://{local}");
        write_private(&home.join(TOKEN_FILE), token.as_bytes())?;
        let info = ApiInfo { url: url.clone(), pid: std::process::id() };
        write_private(&home.join(API_FILE), serde_json::to_string(&info)?.as_bytes())?;
        Ok(Self {
            home: home.to_owned(),
            keyring,
            state,
            api,
            shutdown,
            url,
            login_url,
            _lock: lock,
        })
    }

    /// The running node, unless the identity is locked.
    pub(crate) fn handle(&self) -> Option<Handle> {
        self.keyring.handle()
    }

    /// The node's dialable multiaddrs, waiting briefly for its listeners to come up.
    pub(crate) async fn dial_addrs(&self) -> Vec<Multiaddr> {
        let Some(handle) = self.handle() else { return Vec::new() };
        for _ in 0..50 {
            match handle.dial_addrs().await {
                Ok(addrs) if !addrs.is_empty() => return addrs,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        Vec::new()
    }

    pub(crate) async fn stop(self) {
        let _ = std::fs::remove_file(self.home.join(API_FILE));
        let _ = std::fs::remove_file(self.home.join(TOKEN_FILE));
        self.shutdown.cancel();
        let abort = self.api.abort_handle();
        match tokio::time::timeout(Duration::from_secs(5), self.api).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "API server stopped with an error"),
            Err(_) => {
                tracing::warn!("API server did not stop within 5 s");
                abort.abort();
            }
            _ => {}
        }
        self.state.lock().await;
        // A node started while the API was stopping is not in the API's hands.
        self.keyring.stop().await;
    }
}

/// The identity of a home, as the API sees it: created, unlocked and locked on
/// request (decision 0013), its passphrase changed (decision 0014). Holds the
/// running node.
struct HomeKeyring {
    home: PathBuf,
    config: communitas_node::Config,
    node: Mutex<Option<Node>>,
}

impl HomeKeyring {
    fn handle(&self) -> Option<Handle> {
        self.node
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(Node::handle)
    }

    async fn start(&self, secrets: Secrets, public: KeystorePublic) -> Result<Handle> {
        let path = self.home.join(DATABASE);
        let store = Store::open(&path, secrets.storage.clone())
            .with_context(|| format!("cannot open the database in {}", self.home.display()))?;
        let node = Node::start(self.config.clone(), secrets, public, store)
            .await
            .context("cannot start the node")?;
        let handle = node.handle();
        let old = self.node.lock().unwrap_or_else(std::sync::PoisonError::into_inner).replace(node);
        if let Some(old) = old {
            old.shutdown().await;
        }
        Ok(handle)
    }

    async fn stop(&self) {
        let node = self.node.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(node) = node {
            node.shutdown().await;
        }
    }

    async fn create_identity(
        &self,
        name: Option<String>,
        passphrase: Zeroizing<String>,
    ) -> Result<Handle, KeyringError> {
        if self.exists() {
            return Err(KeyringError::Exists);
        }
        init::check_fresh(&self.home).map_err(|e| KeyringError::Invalid(e.to_string()))?;
        if let Some(name) = &name {
            init::check_name(name).map_err(|e| KeyringError::Invalid(e.to_string()))?;
        }
        let (secrets, public) =
            init::create(&self.home, name, passphrase.as_bytes(), KdfParams::DEFAULT)
                .await
                .map_err(failed)?;
        self.start(secrets, public).await.map_err(failed)
    }

    async fn unlock_identity(&self, passphrase: Zeroizing<String>) -> Result<Handle, KeyringError> {
        if !self.exists() {
            return Err(KeyringError::Missing);
        }
        let keystore = crate::home::read_keystore(&self.home).map_err(failed)?;
        let public = keystore.public().clone();
        let secrets = tokio::task::spawn_blocking(move || keystore.unlock(passphrase.as_bytes()))
            .await
            .map_err(|e| KeyringError::Failed(e.to_string()))?
            .map_err(|e| match e {
                KeystoreError::WrongPassphrase => KeyringError::WrongPassphrase,
                other => KeyringError::Failed(other.to_string()),
            })?;
        self.start(secrets, public).await.map_err(failed)
    }

    /// Called under the API's turn lock, so no unlock reads the file meanwhile.
    async fn rekey(
        &self,
        old: Zeroizing<String>,
        new: Zeroizing<String>,
    ) -> Result<(), KeyringError> {
        if !self.exists() {
            return Err(KeyringError::Missing);
        }
        let home = self.home.clone();
        tokio::task::spawn_blocking(move || {
            change_passphrase::rekey_file(&home, old.as_bytes(), new.as_bytes())
        })
        .await
        .map_err(|e| KeyringError::Failed(e.to_string()))?
        .map_err(|e| match e.downcast_ref::<KeystoreError>() {
            Some(KeystoreError::WrongPassphrase) => KeyringError::WrongPassphrase,
            _ => {
                tracing::warn!(error = format!("{e:#}"), "passphrase could not be changed");
                KeyringError::Failed(format!("{e:#}"))
            }
        })
    }
}

/// A failure the user cannot fix by typing something else: logged in full.
fn failed(e: anyhow::Error) -> KeyringError {
    tracing::warn!(error = format!("{e:#}"), "identity could not be opened");
    KeyringError::Failed(format!("{e:#}"))
}

impl Keyring for HomeKeyring {
    fn exists(&self) -> bool {
        self.home.join(KEYSTORE).symlink_metadata().is_ok()
    }

    fn create(
        &self,
        name: Option<String>,
        passphrase: Zeroizing<String>,
    ) -> BoxFuture<'_, Result<Handle, KeyringError>> {
        Box::pin(self.create_identity(name, passphrase))
    }

    fn unlock(&self, passphrase: Zeroizing<String>) -> BoxFuture<'_, Result<Handle, KeyringError>> {
        Box::pin(self.unlock_identity(passphrase))
    }

    fn lock(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.stop())
    }

    fn change_passphrase(
        &self,
        old: Zeroizing<String>,
        new: Zeroizing<String>,
    ) -> BoxFuture<'_, Result<(), KeyringError>> {
        Box::pin(self.rekey(old, new))
    }
}

/// One node per home: the database has one writer.
fn lock_home(home: &Path) -> Result<std::fs::File> {
    try_lock_home(home)?
        .ok_or_else(|| anyhow::anyhow!("a node is already running for {}", home.display()))
}

/// The home's lock, held until the file is dropped; `None` while a node (locked or
/// not) runs for the home. Changing the passphrase without a node holds it too, so no
/// node starts meanwhile (decision 0014).
pub(crate) fn try_lock_home(home: &Path) -> Result<Option<std::fs::File>> {
    let path = home.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Writes a file only its owner can read, replacing any old one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// Logs to stderr; `COMMUNITAS_LOG` takes `tracing` filter directives.
pub(crate) fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COMMUNITAS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}

/// The node configuration from `run`'s flags.
pub(crate) fn node_config(
    listen: Vec<Multiaddr>,
    bootstrap: Vec<Multiaddr>,
    server: bool,
    mdns: bool,
) -> communitas_node::Config {
    let listen = if listen.is_empty() {
        ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    } else {
        listen
    };
    // A network on loopback or a LAN has no global addresses; let AutoNAT count them,
    // and dial the private addresses its peers give (issue 16 item 5).
    let only_global_ips = !listen.iter().all(is_local);
    let dial_any_peer_addr = !only_global_ips || mdns || bootstrap.iter().any(is_local);
    communitas_node::Config {
        net: communitas_net::Config {
            listen,
            bootstrap,
            server,
            mdns,
            only_global_ips,
            dial_any_peer_addr,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn is_local(addr: &Multiaddr) -> bool {
    use communitas_net::libp2p::multiaddr::Protocol;
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback() || ip.is_private(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        Protocol::Memory(_) => true,
        _ => false,
    })
}
