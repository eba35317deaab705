//! The registry of connected clients: what `SHOW CLIENTS` lists, and the map
//! from the cancel keys pgpulse issued to the server a client is linked to,
//! so that a CancelRequest reaches the right backend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pgpulse_wire::startup::encode_cancel;
use tokio::io::AsyncWriteExt;

use crate::pool::lock;

/// What a client is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientState {
    /// Logged in, no server linked.
    Idle = 0,
    /// Linked to a server.
    Active = 1,
    /// Waiting for a server.
    Waiting = 2,
}

impl ClientState {
    /// PgBouncer's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientState::Idle => "idle",
            ClientState::Active => "active",
            ClientState::Waiting => "waiting",
        }
    }
}

/// The backend a client is linked to, for cancels.
#[derive(Debug, Clone)]
pub(crate) struct CancelTarget {
    pub addr: SocketAddr,
    pub pid: i32,
    pub key: i32,
}

/// One connected client.
#[derive(Debug)]
pub struct ClientInfo {
    /// Unique id.
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// User.
    pub user: String,
    /// Database.
    pub database: String,
    /// `application_name` at login.
    pub application_name: String,
    /// Login time.
    pub connected_at: SystemTime,
    /// The cancel key pair pgpulse issued.
    pub cancel_key: (i32, i32),
    state: AtomicU8,
    linked: Mutex<Option<CancelTarget>>,
    /// Wakes the client's wait for a server when it is cancelled.
    pub(crate) cancel_wait: tokio::sync::Notify,
    /// A cancel was forwarded to the server linked to this client: before
    /// that server serves anyone else, a stray second signal must be
    /// absorbed (see [`ClientRegistry::cancel`]).
    pub(crate) cancel_sent: std::sync::atomic::AtomicBool,
    /// Cancels still being delivered by the postmaster.
    pub(crate) cancels_in_flight: std::sync::atomic::AtomicUsize,
    /// Signalled when a cancel's delivery completes.
    pub(crate) cancel_done: tokio::sync::Notify,
    /// Statements run.
    pub queries: AtomicU64,
}

impl ClientInfo {
    /// The current state.
    pub fn state(&self) -> ClientState {
        match self.state.load(Ordering::Relaxed) {
            1 => ClientState::Active,
            2 => ClientState::Waiting,
            _ => ClientState::Idle,
        }
    }

    pub(crate) fn set_state(&self, state: ClientState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub(crate) fn link(&self, target: Option<CancelTarget>) {
        *lock(&self.linked) = target;
    }
}

/// All connected clients.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    by_key: Mutex<HashMap<(i32, i32), Arc<ClientInfo>>>,
    next_id: AtomicU64,
}

/// Fields of a new client.
#[derive(Debug)]
pub(crate) struct NewClient {
    pub addr: SocketAddr,
    pub user: String,
    pub database: String,
    pub application_name: String,
}

impl ClientRegistry {
    /// Registers a client under fresh random cancel keys.
    pub(crate) fn register(self: &Arc<Self>, new: NewClient) -> ClientHandle {
        let mut map = lock(&self.by_key);
        let key = loop {
            let candidate = (rand::random::<i32>() & i32::MAX, rand::random::<i32>());
            if !map.contains_key(&candidate) {
                break candidate;
            }
        };
        let info = Arc::new(ClientInfo {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            addr: new.addr,
            user: new.user,
            database: new.database,
            application_name: new.application_name,
            connected_at: SystemTime::now(),
            cancel_key: key,
            state: AtomicU8::new(ClientState::Idle as u8),
            linked: Mutex::new(None),
            cancel_wait: tokio::sync::Notify::new(),
            cancel_sent: std::sync::atomic::AtomicBool::new(false),
            cancels_in_flight: std::sync::atomic::AtomicUsize::new(0),
            cancel_done: tokio::sync::Notify::new(),
            queries: AtomicU64::new(0),
        });
        map.insert(key, info.clone());
        ClientHandle {
            registry: self.clone(),
            info,
        }
    }

    /// Every client, oldest first.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        let mut v: Vec<_> = lock(&self.by_key).values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Forwards a CancelRequest for the client holding `key` to its server;
    /// a client still waiting for a server has its wait cancelled instead.
    /// Unknown keys and idle clients are ignored, as PostgreSQL does.
    pub(crate) async fn cancel(&self, key: (i32, i32)) {
        let Some(client) = lock(&self.by_key).get(&key).cloned() else {
            return;
        };
        // Marked under the link's lock: the session unlinks (under the same
        // lock) before it checks the mark, so a server this cancel targets is
        // never handed to another client before the cancel is settled.
        let target = {
            let linked = lock(&client.linked);
            if linked.is_some() {
                client.cancel_sent.store(true, Ordering::SeqCst);
                client.cancels_in_flight.fetch_add(1, Ordering::SeqCst);
            }
            linked.clone()
        };
        let Some(target) = target else {
            // Only futures created before this call are woken: a cancel never
            // lingers to hit a later query.
            client.cancel_wait.notify_waiters();
            return;
        };
        // The postmaster signals the backend twice (the process and its
        // group); a signal landing after the statement ended stays pending
        // and cancels the backend's next statement, which with pooling may
        // be another client's. The session therefore absorbs it before the
        // server is reused, once the postmaster has closed this connection
        // (it closes after signalling).
        if let Err(e) = forward_cancel(&target).await {
            tracing::warn!(error = %e, "forwarding a cancel request failed");
        }
        client.cancels_in_flight.fetch_sub(1, Ordering::SeqCst);
        client.cancel_done.notify_waiters();
    }
}

/// Sends the CancelRequest and waits (up to 5 s) for the postmaster to close
/// the connection, which it does after signalling the backend.
async fn forward_cancel(target: &CancelTarget) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(target.addr).await?;
    stream
        .write_all(&encode_cancel(target.pid, target.key))
        .await?;
    let mut sink = [0u8; 16];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
    Ok(())
}

impl ClientInfo {
    /// If a cancel was forwarded while this client held its server, waits
    /// until the postmaster has delivered it and returns true: the caller
    /// must then absorb a possible stray signal before reusing the server.
    pub(crate) async fn settle_cancel(&self) -> bool {
        if !self.cancel_sent.swap(false, Ordering::SeqCst) {
            return false;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let done = self.cancel_done.notified();
            if self.cancels_in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                return true;
            }
        }
    }
}

/// Removes the client from the registry when dropped.
#[derive(Debug)]
pub(crate) struct ClientHandle {
    registry: Arc<ClientRegistry>,
    pub info: Arc<ClientInfo>,
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        lock(&self.registry.by_key).remove(&self.info.cancel_key);
    }
}
