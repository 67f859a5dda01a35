//! AUTH (RFC 4954) on an open session: choosing the mechanism, refusing
//! cleartext to a remote host, the initial response and the challenges.
//! The mechanisms themselves (SCRAM-SHA-256, PLAIN, LOGIN, CRAM-MD5,
//! XOAUTH2, OAUTHBEARER, EXTERNAL) are pure and live in `smtp::auth`; here
//! they meet the wire.
//!
//! Every line of the exchange goes out through the session's `write` or
//! `command`, which need the channel's proof that the server was verified
//! (or that the user chose no TLS at all); on top of that,
//! [`Session::authenticate`] refuses cleartext to a host that is not
//! loopback unless the caller allowed it (`smtp.allow-cleartext-auth`).
//! A SCRAM server that cannot prove it knows the password leaves the
//! session broken: nothing more goes over it.
//!
//! Left out: SASL security layers (none of these mechanisms negotiates one).

use super::{in_step, server_label, Security, Session};
use crate::error::{Error, Stage};
use crate::smtp::reply::code;
use crate::smtp::{auth, scram, Command, Credentials, Exchange, Mechanism, Reply, SaslError};

/// The longest command line, CRLF included (RFC 5321 4.5.3.1.4).
const MAX_COMMAND_LINE: usize = 512;

impl Session {
    /// Authenticate with the first of `allowed` that the server offers
    /// (empty: [`Mechanism::DEFAULT`]); returns the mechanism used. Refuses
    /// to send a password over cleartext to a remote host.
    pub fn authenticate(
        &mut self,
        credentials: &Credentials,
        allowed: &[Mechanism],
    ) -> Result<Mechanism, Error> {
        let result = self.try_authenticate(credentials, allowed);
        if let Err(e) = &result {
            self.broken |= !in_step(e);
        }
        result
    }

    /// The mechanism [`authenticate`](Self::authenticate) would use with
    /// `allowed`, given what the server offers on the current channel.
    pub fn auth_mechanism(&self, allowed: &[Mechanism]) -> Option<Mechanism> {
        let allowed = if allowed.is_empty() {
            &Mechanism::DEFAULT[..]
        } else {
            allowed
        };
        Mechanism::choose(allowed, &self.caps)
    }

    fn try_authenticate(
        &mut self,
        credentials: &Credentials,
        allowed: &[Mechanism],
    ) -> Result<Mechanism, Error> {
        self.proof()?;
        if self.config.security == Security::None
            && !self.config.allow_cleartext_auth
            && !self.conn.peer().ip().is_loopback()
        {
            return Err(Error::CleartextAuth {
                server: server_label(&self.config.host, self.config.port),
            });
        }
        let mechanism = self
            .auth_mechanism(allowed)
            .ok_or_else(|| Error::AuthUnavailable {
                offered: self.caps.auth_mechanisms().to_vec(),
                allowed: allowed.iter().map(|m| m.name()).collect(),
            })?;
        let nonce = if mechanism == Mechanism::ScramSha256 {
            scram::client_nonce()
        } else {
            String::new()
        };
        let mut exchange = Exchange::new(mechanism, credentials, nonce);
        let reply = self.send_auth(&mut exchange, mechanism)?;
        let reply = self.answer_challenges(&mut exchange, mechanism, reply)?;
        match reply.code() {
            code::AUTHENTICATED => {
                exchange.finish(&reply).map_err(|failure| {
                    // Logged in to a server that could not prove who it is:
                    // nothing more goes over this connection.
                    self.broken = true;
                    Error::AuthExchange {
                        mechanism: mechanism.name(),
                        failure,
                    }
                })?;
                Ok(mechanism)
            }
            code::CHALLENGE => {
                self.cancel_auth();
                Err(Error::AuthExchange {
                    mechanism: mechanism.name(),
                    failure: SaslError::UnexpectedChallenge,
                })
            }
            _ => Err(Error::AuthRefused {
                mechanism: mechanism.name(),
                reply,
                detail: exchange.detail().map(str::to_owned),
            }),
        }
    }

    /// AUTH with the initial response, and the server's first answer.
    fn send_auth(&mut self, exchange: &mut Exchange, mechanism: Mechanism) -> Result<Reply, Error> {
        let initial = exchange.initial_response(&self.config.host, self.config.port);
        // RFC 4954 4: an initial response that would make the AUTH line
        // longer than SMTP's 512 octets (OAuth2 tokens run to kilobytes)
        // goes as the answer to the server's first, empty, challenge.
        let fits = |ir: &String| {
            "AUTH ".len() + mechanism.name().len() + 1 + ir.len() + 2 <= MAX_COMMAND_LINE
        };
        let (inline, deferred) = match initial {
            Some(ir) if !fits(&ir) => (None, Some(ir)),
            other => (other, None),
        };
        let reply = self.command(
            &Command::Auth {
                mechanism: mechanism.name().into(),
                initial_response: inline,
            },
            Stage::Auth,
        )?;
        match (deferred, reply.code()) {
            (Some(ir), code::CHALLENGE) => self.command(&Command::AuthResponse(ir), Stage::Auth),
            _ => Ok(reply),
        }
    }

    /// Answer the server's 334 challenges (a bounded number); the reply
    /// that is not one.
    fn answer_challenges(
        &mut self,
        exchange: &mut Exchange,
        mechanism: Mechanism,
        mut reply: Reply,
    ) -> Result<Reply, Error> {
        let mut challenges = 0;
        while reply.is_challenge() && challenges < auth::MAX_CHALLENGES {
            challenges += 1;
            let challenge = reply.lines().first().map(|l| String::from_utf8_lossy(l));
            match exchange.answer(challenge.as_deref().unwrap_or("")) {
                Ok(answer) => {
                    reply = self.command(&Command::AuthResponse(answer), Stage::Auth)?;
                }
                Err(failure) => {
                    self.cancel_auth();
                    return Err(Error::AuthExchange {
                        mechanism: mechanism.name(),
                        failure,
                    });
                }
            }
        }
        Ok(reply)
    }

    /// Ends an exchange the client cannot go on with (RFC 4954 4: `*`).
    fn cancel_auth(&mut self) {
        let _ = self.write_raw(b"*\r\n", "*");
        let _ = self.read_reply(Stage::Auth);
    }

    /// A line of the exchange that is not a [`Command`] (the `*` that
    /// cancels it), shown in the transcript as `shown`.
    fn write_raw(&mut self, bytes: &[u8], shown: &str) -> Result<(), Error> {
        if self.observer.wants_transcript() {
            self.observer.transcript(&format!("C: {shown}"));
        }
        self.write(bytes, Stage::Auth)
    }
}
