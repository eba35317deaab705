//! [`ClientAuth`]: the proxy's side of logging in to a PostgreSQL server —
//! cleartext, md5 and SCRAM-SHA-256 (without channel binding), from a
//! password or, for SCRAM pass-through, from a client's recovered keys.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use subtle::ConstantTimeEq;

use super::scram::SCRAM_SHA_256;
use super::{hi, hmac_sha256, md5_response, random_bytes, saslprep, sha256};
use crate::backend::AuthRequest;
use crate::error::WireError;
use crate::frontend;
use crate::message::Message;

/// Highest SCRAM iteration count accepted from a server: bounds the work a
/// hostile server can make the proxy do (PostgreSQL's default is 4096).
const MAX_ITERATIONS: u32 = 1_000_000;
const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

enum Secret {
    None,
    Password(String),
    ScramKeys {
        client_key: [u8; 32],
        server_key: [u8; 32],
    },
}

enum Phase {
    Start,
    ScramFirstSent {
        gs2_header: &'static str,
        client_first_bare: String,
        nonce: String,
    },
    ScramFinalSent {
        server_signature: [u8; 32],
    },
    Done,
}

/// State machine for one login of the proxy to a server.
///
/// Feed every `Authentication*` request to [`ClientAuth::respond`] and send
/// back the message it returns, until the server sends `AuthenticationOk`.
///
/// Transitions: `Start` → (cleartext/md5 answered, stays `Start`) →
/// `AuthenticationOk` → `Done`; or `Start` → SASL → `ScramFirstSent` →
/// SASLContinue → `ScramFinalSent` → SASLFinal (signature checked) → `Done`.
pub struct ClientAuth {
    user: String,
    secret: Secret,
    phase: Phase,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password or keys.
        f.debug_struct("ClientAuth")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ClientAuth {
    /// Logs in as `user` with an optional password (plaintext, or a stored
    /// `md5...` hash, which works for md5 authentication only).
    pub fn new(user: &str, password: Option<&str>) -> Self {
        let secret = match password {
            Some(p) => Secret::Password(p.to_owned()),
            None => Secret::None,
        };
        ClientAuth {
            user: user.to_owned(),
            secret,
            phase: Phase::Start,
        }
    }

    /// Logs in with SCRAM keys instead of a password (PgBouncer-style
    /// pass-through): `client_key` from [`crate::ScramServer::client_key`]
    /// and `server_key` from the verifier. Works only when the server stores
    /// the same verifier (same salt and iterations); only SCRAM is possible.
    pub fn with_scram_keys(user: &str, client_key: [u8; 32], server_key: [u8; 32]) -> Self {
        ClientAuth {
            user: user.to_owned(),
            secret: Secret::ScramKeys {
                client_key,
                server_key,
            },
            phase: Phase::Start,
        }
    }

    /// True after `AuthenticationOk`.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Given an `Authentication*` request, the message to send back (`None`
    /// for `AuthenticationOk` and a verified `AuthenticationSASLFinal`).
    ///
    /// Errors ([`WireError::Auth`]): a password is required but missing, the
    /// method is unsupported, the server's SCRAM signature is invalid, or the
    /// server broke the exchange.
    pub fn respond(&mut self, req: &AuthRequest<'_>) -> Result<Option<Message>, WireError> {
        match req {
            AuthRequest::Ok => self.on_ok().map(|()| None),
            AuthRequest::Cleartext => match &self.secret {
                Secret::Password(p) => Ok(Some(frontend::password(p))),
                _ => Err(self.password_required("cleartext")),
            },
            AuthRequest::Md5 { salt } => match &self.secret {
                Secret::Password(p) => Ok(Some(frontend::password(&md5_response(
                    &self.user, p, *salt,
                )))),
                _ => Err(self.password_required("md5")),
            },
            AuthRequest::Sasl { mechanisms } => self.scram_start(mechanisms).map(Some),
            AuthRequest::SaslContinue { data } => self.scram_continue(data).map(Some),
            AuthRequest::SaslFinal { data } => self.scram_final(data).map(|()| None),
            AuthRequest::Other(code) => Err(WireError::auth(format!(
                "server requested unsupported authentication method {code}"
            ))),
        }
    }

    fn password_required(&self, method: &str) -> WireError {
        WireError::auth(format!(
            "server requires {method} password authentication for user \"{}\" but no password is configured",
            self.user
        ))
    }

    fn on_ok(&mut self) -> Result<(), WireError> {
        match self.phase {
            Phase::ScramFirstSent { .. } | Phase::ScramFinalSent { .. } => Err(WireError::auth(
                "server completed authentication without proving its SCRAM signature",
            )),
            _ => {
                self.phase = Phase::Done;
                Ok(())
            }
        }
    }

    fn scram_start(&mut self, mechanisms: &[&str]) -> Result<Message, WireError> {
        if !mechanisms.contains(&SCRAM_SHA_256) {
            return Err(WireError::auth(format!(
                "server offered no supported SASL mechanism: {mechanisms:?}"
            )));
        }
        match &self.secret {
            Secret::None => return Err(self.password_required("SCRAM-SHA-256")),
            Secret::Password(p) if p.starts_with("md5") && p.len() == 35 => {
                return Err(WireError::auth(
                    "an md5 password hash cannot be used for SCRAM authentication",
                ));
            }
            _ => {}
        }
        // Flag 'n' ("client does not support binding") when the server
        // offers -PLUS: 'y' would make it suspect a downgrade and refuse.
        let gs2_header = if mechanisms.contains(&SCRAM_SHA_256_PLUS) {
            "n,,"
        } else {
            "y,,"
        };
        let nonce = B64.encode(random_bytes::<18>());
        let client_first_bare = format!("n=,r={nonce}");
        let data = format!("{gs2_header}{client_first_bare}");
        self.phase = Phase::ScramFirstSent {
            gs2_header,
            client_first_bare,
            nonce,
        };
        Ok(frontend::sasl_initial_response(
            SCRAM_SHA_256,
            data.as_bytes(),
        ))
    }

    fn scram_continue(&mut self, data: &[u8]) -> Result<Message, WireError> {
        let Phase::ScramFirstSent {
            gs2_header,
            client_first_bare,
            nonce,
        } = std::mem::replace(&mut self.phase, Phase::Start)
        else {
            return Err(WireError::auth("unexpected AuthenticationSASLContinue"));
        };
        let server_first = std::str::from_utf8(data)
            .map_err(|_| WireError::auth("SCRAM server-first-message is not UTF-8"))?;
        let (server_nonce, salt, iterations) = parse_server_first(server_first)?;
        if !server_nonce.starts_with(nonce.as_str()) || server_nonce.len() == nonce.len() {
            return Err(WireError::auth("SCRAM server nonce does not extend ours"));
        }
        let (client_key, server_key) = match &self.secret {
            Secret::Password(p) => {
                let salted = hi(&saslprep(p.as_bytes()), &salt, iterations);
                (
                    hmac_sha256(&salted, b"Client Key"),
                    hmac_sha256(&salted, b"Server Key"),
                )
            }
            Secret::ScramKeys {
                client_key,
                server_key,
            } => (*client_key, *server_key),
            Secret::None => return Err(self.password_required("SCRAM-SHA-256")),
        };
        let without_proof = format!("c={},r={server_nonce}", B64.encode(gs2_header));
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sha256(&sha256(&client_key), auth_message.as_bytes());
        let mut proof = client_key;
        proof.iter_mut().zip(signature).for_each(|(p, s)| *p ^= s);
        self.phase = Phase::ScramFinalSent {
            server_signature: hmac_sha256(&server_key, auth_message.as_bytes()),
        };
        let client_final = format!("{without_proof},p={}", B64.encode(proof));
        Ok(frontend::sasl_response(client_final.as_bytes()))
    }

    fn scram_final(&mut self, data: &[u8]) -> Result<(), WireError> {
        let Phase::ScramFinalSent { server_signature } =
            std::mem::replace(&mut self.phase, Phase::Start)
        else {
            return Err(WireError::auth("unexpected AuthenticationSASLFinal"));
        };
        let msg = std::str::from_utf8(data)
            .map_err(|_| WireError::auth("SCRAM server-final-message is not UTF-8"))?;
        if let Some(err) = msg.strip_prefix("e=") {
            return Err(WireError::auth(format!(
                "server rejected SCRAM exchange: {err}"
            )));
        }
        let sig = msg
            .split(',')
            .next()
            .and_then(|v| v.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| WireError::auth("malformed SCRAM server-final-message"))?;
        let ok: bool = sig.as_slice().ct_eq(&server_signature).into();
        if !ok {
            return Err(WireError::auth("invalid SCRAM server signature"));
        }
        // Stay out of `Done` until AuthenticationOk arrives.
        self.phase = Phase::Start;
        Ok(())
    }
}

/// Parses `r=<nonce>,s=<salt>,i=<iterations>[,ext...]`.
fn parse_server_first(msg: &str) -> Result<(&str, Vec<u8>, u32), WireError> {
    let bad = || WireError::auth("malformed SCRAM server-first-message");
    let mut attrs = msg.split(',');
    let mut next = |prefix: &str| attrs.next().and_then(|a| a.strip_prefix(prefix));
    let nonce = next("r=").ok_or_else(bad)?;
    let salt = next("s=")
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(bad)?;
    let iterations: u32 = next("i=").and_then(|i| i.parse().ok()).ok_or_else(bad)?;
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(WireError::auth("SCRAM iteration count out of range"));
    }
    Ok((nonce, salt, iterations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{ScramServer, ScramVerifier, verify_md5};
    use crate::backend;
    use crate::frontend::SaslInitialResponse;

    /// Runs a full SCRAM login of `client` against a `ScramServer`, with the
    /// messages going through their wire encodings.
    fn scram_login(client: &mut ClientAuth, server: &mut ScramServer) -> Result<(), WireError> {
        let offer = backend::authentication_sasl(&[SCRAM_SHA_256]);
        let init = client.respond(&AuthRequest::parse(&offer)?)?.unwrap();
        let init = SaslInitialResponse::parse(&init)?;
        assert_eq!(init.mechanism, SCRAM_SHA_256);
        let cont = backend::authentication_sasl_continue(&server.client_first(init.data)?);
        let resp = client.respond(&AuthRequest::parse(&cont)?)?.unwrap();
        let fin = server.client_final(frontend::sasl_response_data(&resp)?)?;
        let fin = backend::authentication_sasl_final(&fin);
        assert!(client.respond(&AuthRequest::parse(&fin)?)?.is_none());
        let ok = backend::authentication_ok();
        assert!(client.respond(&AuthRequest::parse(&ok)?)?.is_none());
        assert!(client.is_done());
        Ok(())
    }

    #[test]
    fn scram_against_scram_server() {
        let v = ScramVerifier::from_password("correct horse");
        scram_login(
            &mut ClientAuth::new("app", Some("correct horse")),
            &mut ScramServer::new(v.clone()),
        )
        .unwrap();
        let err = scram_login(
            &mut ClientAuth::new("app", Some("wrong")),
            &mut ScramServer::new(v),
        );
        assert!(matches!(err, Err(WireError::Auth(_))));
    }

    #[test]
    fn scram_pass_through_with_recovered_keys() {
        let v = ScramVerifier::from_password("pw");
        let mut front = ScramServer::new(v.clone());
        scram_login(&mut ClientAuth::new("u", Some("pw")), &mut front).unwrap();
        let client_key = front.client_key().unwrap();
        let mut back = ClientAuth::with_scram_keys("u", client_key, v.server_key);
        scram_login(&mut back, &mut ScramServer::new(v)).unwrap();
    }

    #[test]
    fn rejects_forged_server_signature_and_skipped_final() {
        let v = ScramVerifier::from_password("pw");
        let mut server = ScramServer::new(v);
        let mut c = ClientAuth::new("u", Some("pw"));
        let init = c
            .respond(&AuthRequest::Sasl {
                mechanisms: vec![SCRAM_SHA_256],
            })
            .unwrap()
            .unwrap();
        let init = SaslInitialResponse::parse(&init).unwrap();
        let first = server.client_first(init.data).unwrap();
        c.respond(&AuthRequest::SaslContinue { data: &first })
            .unwrap();
        let forged = format!("v={}", B64.encode([7u8; 32]));
        let r = c.respond(&AuthRequest::SaslFinal {
            data: forged.as_bytes(),
        });
        assert!(matches!(r, Err(WireError::Auth(_))));

        let mut c = ClientAuth::new("u", Some("pw"));
        c.respond(&AuthRequest::Sasl {
            mechanisms: vec![SCRAM_SHA_256],
        })
        .unwrap();
        assert!(c.respond(&AuthRequest::Ok).is_err());
    }

    #[test]
    fn md5_cleartext_and_errors() {
        let salt = [1, 2, 3, 4];
        let mut c = ClientAuth::new("alice", Some("pw"));
        let m = c.respond(&AuthRequest::Md5 { salt }).unwrap().unwrap();
        let resp = frontend::password_text(&m).unwrap();
        assert!(verify_md5("alice", "pw", salt, resp));
        assert!(!verify_md5("alice", "other", salt, resp));
        let m = c.respond(&AuthRequest::Cleartext).unwrap().unwrap();
        assert_eq!(frontend::password_text(&m).unwrap(), "pw");
        assert!(c.respond(&AuthRequest::Ok).unwrap().is_none());
        assert!(c.is_done());

        let mut none = ClientAuth::new("alice", None);
        assert!(none.respond(&AuthRequest::Md5 { salt }).is_err());
        assert!(
            none.respond(&AuthRequest::Sasl {
                mechanisms: vec![SCRAM_SHA_256]
            })
            .is_err()
        );
        assert!(none.respond(&AuthRequest::Ok).unwrap().is_none());
        let mut c = ClientAuth::new("alice", Some("pw"));
        assert!(c.respond(&AuthRequest::Other(7)).is_err());
        assert!(
            c.respond(&AuthRequest::Sasl {
                mechanisms: vec!["OAUTHBEARER"]
            })
            .is_err()
        );
        assert!(
            c.respond(&AuthRequest::SaslContinue { data: b"r=x" })
                .is_err()
        );
    }

    #[test]
    fn md5_hash_as_password_and_plus_offer() {
        let salt = [5, 6, 7, 8];
        let hash = crate::auth::md5_hash("bob", "pw");
        let mut c = ClientAuth::new("bob", Some(&hash));
        let m = c.respond(&AuthRequest::Md5 { salt }).unwrap().unwrap();
        assert!(verify_md5(
            "bob",
            "pw",
            salt,
            frontend::password_text(&m).unwrap()
        ));
        assert!(
            c.respond(&AuthRequest::Sasl {
                mechanisms: vec![SCRAM_SHA_256]
            })
            .is_err()
        );

        let mut c = ClientAuth::new("bob", Some("pw"));
        let offer = AuthRequest::Sasl {
            mechanisms: vec![SCRAM_SHA_256_PLUS, SCRAM_SHA_256],
        };
        let m = c.respond(&offer).unwrap().unwrap();
        assert!(
            SaslInitialResponse::parse(&m)
                .unwrap()
                .data
                .starts_with(b"n,,n=,r=")
        );
    }
}
