//! Who may log in, and proving it: users from the configuration, users found
//! with `auth_query` on the server (PgBouncer semantics), and the SCRAM /
//! md5 exchanges with the client.
//!
//! A SCRAM login also yields the client's `ClientKey`, which lets pgpulse log
//! in to the server as that user without ever knowing the password
//! (pass-through): this is what makes `auth_query` users work against a
//! server that itself requires SCRAM.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use futures::{SinkExt, StreamExt};
use pgpulse_wire::auth::{md5_hash, verify_md5};
use pgpulse_wire::frontend::{self, SaslInitialResponse};
use pgpulse_wire::{Message, MessageCodec, ScramServer, ScramVerifier, backend};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::error::ProxyError;
use crate::options::{ClientAuthMethod, PoolMode, UpstreamOptions, UserOptions};
use crate::server::ServerCredentials;

const SCRAM: &str = "SCRAM-SHA-256";

/// A user's stored secret.
#[derive(Clone)]
pub(crate) enum Secret {
    /// Plain text: any method works, and pgpulse can log in to the server.
    Plain {
        password: String,
        /// Derived once: PBKDF2 with 4096 rounds costs milliseconds.
        verifier: Arc<OnceLock<ScramVerifier>>,
    },
    /// `md5` + md5(password || user).
    Md5(String),
    /// A SCRAM verifier.
    Scram(ScramVerifier),
}

impl Secret {
    pub(crate) fn parse(stored: &str) -> Secret {
        if stored.starts_with("SCRAM-SHA-256$")
            && let Ok(verifier) = ScramVerifier::parse(stored)
        {
            return Secret::Scram(verifier);
        }
        if stored.len() == 35 && stored.starts_with("md5") {
            return Secret::Md5(stored.to_owned());
        }
        Secret::Plain {
            password: stored.to_owned(),
            verifier: Arc::new(OnceLock::new()),
        }
    }
}

/// A user that may log in.
#[derive(Clone)]
pub(crate) struct KnownUser {
    pub name: String,
    pub secret: Secret,
    pub pool_mode: Option<PoolMode>,
    pub pool_size: Option<usize>,
}

impl std::fmt::Debug for KnownUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The users pgpulse knows, reloadable on SIGHUP.
#[derive(Debug, Default)]
pub(crate) struct Users {
    map: RwLock<HashMap<String, Arc<KnownUser>>>,
}

impl Users {
    pub(crate) fn new(users: &[UserOptions]) -> Users {
        let u = Users::default();
        u.replace(users);
        u
    }

    /// Replaces the configured users (RELOAD / SIGHUP).
    pub(crate) fn replace(&self, users: &[UserOptions]) {
        let map = users
            .iter()
            .map(|u| {
                let user = KnownUser {
                    name: u.name.clone(),
                    secret: Secret::parse(&u.secret),
                    pool_mode: u.pool_mode,
                    pool_size: u.pool_size,
                };
                (u.name.clone(), Arc::new(user))
            })
            .collect();
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = map;
    }

    /// Finds a user in the configuration, then with `auth_query`.
    pub(crate) async fn lookup(
        &self,
        name: &str,
        upstream: &UpstreamOptions,
        tls: &pgpulse_upstream::Tls,
    ) -> Option<Arc<KnownUser>> {
        if let Some(user) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Some(user.clone());
        }
        match auth_query(name, upstream, tls).await {
            Ok(found) => found.map(Arc::new),
            Err(e) => {
                tracing::warn!(user = name, error = %e, "auth_query failed");
                None
            }
        }
    }
}

/// Runs `auth_query` as the auth user, with the server connections' TLS
/// settings; `None` when the user does not exist or has no password.
async fn auth_query(
    name: &str,
    upstream: &UpstreamOptions,
    tls: &pgpulse_upstream::Tls,
) -> Result<Option<KnownUser>, tokio_postgres::Error> {
    let (Some(query), Some((auth_user, auth_password))) =
        (&upstream.auth_query, &upstream.auth_user)
    else {
        return Ok(None);
    };
    let mut config = tokio_postgres::Config::new();
    config
        .host(&upstream.host)
        .port(upstream.port)
        .user(auth_user)
        .password(auth_password)
        .dbname(&upstream.auth_database)
        .application_name("pgpulse auth_query")
        .connect_timeout(std::time::Duration::from_secs(10));
    let upstream = pgpulse_upstream::Upstream::new(config, tls.clone());
    let (client, connection) = upstream.connect().await?;
    let task = tokio::spawn(connection);
    let row = client.query_opt(query.as_str(), &[&name]).await?;
    drop(client);
    let _ = task.await;
    Ok(row.and_then(|row| {
        let secret: Option<String> = row.try_get(1).ok().flatten();
        secret.map(|s| KnownUser {
            name: name.to_owned(),
            secret: Secret::parse(&s),
            pool_mode: None,
            pool_size: None,
        })
    }))
}

/// Authenticates the client as `user` (or fails it as an unknown user, with
/// the same exchange and message as a wrong password). Returns how pgpulse
/// logs in to the server as that user.
pub(crate) async fn authenticate<S>(
    io: &mut Framed<S, MessageCodec>,
    name: &str,
    user: Option<&KnownUser>,
    method: ClientAuthMethod,
) -> Result<ServerCredentials, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let failed = || ProxyError::AuthFailed(name.to_owned());
    let Some(user) = user else {
        // Unknown user: run a SCRAM exchange that cannot succeed.
        let decoy = ScramVerifier::from_password(&format!("{:x}", rand::random::<u128>()));
        scram(io, decoy).await?;
        return Err(failed());
    };
    match (&user.secret, method) {
        (Secret::Plain { password, verifier }, ClientAuthMethod::ScramSha256) => {
            let verifier = verifier
                .get_or_init(|| ScramVerifier::from_password(password))
                .clone();
            scram(io, verifier).await?.ok_or_else(failed)?;
            Ok(ServerCredentials::Password(Some(password.clone())))
        }
        (Secret::Plain { password, .. }, ClientAuthMethod::Md5) => {
            if md5(io, name, &md5_hash(name, password)).await? {
                Ok(ServerCredentials::Password(Some(password.clone())))
            } else {
                Err(failed())
            }
        }
        (Secret::Md5(hash), _) => {
            if md5(io, name, hash).await? {
                Ok(ServerCredentials::Password(Some(hash.clone())))
            } else {
                Err(failed())
            }
        }
        (Secret::Scram(verifier), _) => {
            let client_key = scram(io, verifier.clone()).await?.ok_or_else(failed)?;
            Ok(ServerCredentials::ScramKeys {
                client_key,
                server_key: verifier.server_key,
            })
        }
    }
}

/// One SCRAM-SHA-256 exchange; the client's key on success.
async fn scram<S>(
    io: &mut Framed<S, MessageCodec>,
    verifier: ScramVerifier,
) -> Result<Option<[u8; 32]>, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.send(backend::authentication_sasl(&[SCRAM])).await?;
    let first = read_password_message(io).await?;
    let initial = SaslInitialResponse::parse(&first)?;
    if initial.mechanism != SCRAM {
        return Err(ProxyError::client(
            "28000",
            format!("unsupported SASL mechanism {:?}", initial.mechanism),
        ));
    }
    let mut server = ScramServer::new(verifier);
    let server_first = server.client_first(initial.data)?;
    io.send(backend::authentication_sasl_continue(&server_first))
        .await?;
    let last = read_password_message(io).await?;
    match server.client_final(last.body()) {
        Ok(server_final) => {
            io.send(backend::authentication_sasl_final(&server_final))
                .await?;
            Ok(server.client_key())
        }
        Err(e) if e.is_auth() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One md5 exchange against a stored md5 hash.
async fn md5<S>(
    io: &mut Framed<S, MessageCodec>,
    user: &str,
    hash: &str,
) -> Result<bool, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let salt: [u8; 4] = rand::random();
    io.send(backend::authentication_md5(salt)).await?;
    let msg = read_password_message(io).await?;
    let response = frontend::password_text(&msg)?;
    Ok(verify_md5(user, hash, salt, response))
}

async fn read_password_message<S>(io: &mut Framed<S, MessageCodec>) -> Result<Message, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match io.next().await {
        Some(Ok(msg)) if msg.tag() == frontend::PASSWORD_TAG => Ok(msg),
        Some(Ok(_)) => Err(ProxyError::client(
            "08P01",
            "expected a password message during authentication",
        )),
        Some(Err(e)) => Err(e.into()),
        None => Err(ProxyError::Desync(
            "client left during authentication".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised_by_form() {
        assert!(matches!(Secret::parse("hunter2"), Secret::Plain { .. }));
        assert!(matches!(
            Secret::parse(&md5_hash("app", "pw")),
            Secret::Md5(_)
        ));
        let verifier = ScramVerifier::from_password("pw").to_string_pg();
        assert!(matches!(Secret::parse(&verifier), Secret::Scram(_)));
        // A plain password that merely looks like a verifier prefix stays plain.
        assert!(matches!(
            Secret::parse("SCRAM-SHA-256$nonsense"),
            Secret::Plain { .. }
        ));
    }
}
