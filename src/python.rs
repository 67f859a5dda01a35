//! The only module that imports pyo3: `securesmtp._core`.
//!
//! The Python shim passes plain settings in and gets a `Session` back. Every
//! network wait runs with the GIL released; the transport polls
//! `PyErr_CheckSignals` between 100 ms slices so Ctrl-C lands within a
//! fraction of a second, and the resulting `KeyboardInterrupt` is re-raised
//! as is (Mercurial prints its usual "interrupted!").
//!
//! Core errors become one exception class, `SmtpError`, whose attributes
//! (`kind`, `stage`, `code`, `server_text`, `fingerprint`, ...) let the shim
//! choose between `error.SecurityError` and `error.Abort` and write the hint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::error::Error;
use crate::pipeline::Outcome;
use crate::session::{Config, Delivery, Observer, Security, Session};
use crate::smtp::{Credentials, Mechanism};
use crate::tls::{self, HashAlg, MinVersion, Pin, TlsPolicy, Trust, Verdict};
use crate::transport::Interrupt;

create_exception!(_core, SmtpError, PyException, "An SMTP session failed.");

/// Python-side progress hooks, called with the GIL re-acquired.
struct PyObserver {
    transcript: Option<Py<PyAny>>,
    /// The KeyboardInterrupt (or other signal handler error) to re-raise.
    pending: Arc<Mutex<Option<PyErr>>>,
}

impl Interrupt for PyObserver {
    fn interrupted(&mut self) -> bool {
        Python::attach(|py| match py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                if let Ok(mut slot) = self.pending.lock() {
                    *slot = Some(e);
                }
                true
            }
        })
    }
}

impl Observer for PyObserver {
    fn transcript(&mut self, line: &str) {
        if let Some(cb) = &self.transcript {
            // A failing transcript printer must not break the session.
            Python::attach(|py| {
                let _ = cb.call1(py, (line,));
            });
        }
    }

    fn wants_transcript(&self) -> bool {
        self.transcript.is_some()
    }
}

/// An open SMTP session (see `securesmtp.session.Session` in Rust).
#[pyclass(name = "Session", module = "securesmtp._core")]
struct PySession {
    inner: Mutex<Option<Session>>,
    pending: Arc<Mutex<Option<PyErr>>>,
}

impl PySession {
    /// Run `f` on the session with the GIL released, then turn its error
    /// (or a pending KeyboardInterrupt) into a Python exception.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Session) -> Result<T, Error> + Send,
    ) -> PyResult<T> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("session lock poisoned"))?;
        let session = guard
            .as_mut()
            .ok_or_else(|| SmtpError::new_err("the SMTP session is closed"))?;
        let result = py.detach(|| f(session));
        result.map_err(|e| to_pyerr(py, e, &self.pending))
    }
}

#[pymethods]
impl PySession {
    /// Authenticate with the first of `mechanisms` (SASL names, any case)
    /// the server offers; None or empty: the strongest password mechanism.
    /// `secret` is the password or OAuth2 token. Returns the mechanism used.
    #[pyo3(signature = (username, secret, mechanisms=None))]
    fn authenticate(
        &self,
        py: Python<'_>,
        username: String,
        secret: String,
        mechanisms: Option<Vec<String>>,
    ) -> PyResult<&'static str> {
        let allowed = mechanism_list(py, mechanisms, &self.pending)?;
        let credentials = Credentials::new(username, secret);
        self.with(py, move |s| s.authenticate(&credentials, &allowed))
            .map(Mechanism::name)
    }

    /// The mechanism `authenticate` would use with `mechanisms`, or None.
    #[pyo3(signature = (mechanisms=None))]
    fn auth_mechanism(
        &self,
        py: Python<'_>,
        mechanisms: Option<Vec<String>>,
    ) -> PyResult<Option<&'static str>> {
        let allowed = mechanism_list(py, mechanisms, &self.pending)?;
        self.with(py, move |s| {
            Ok(s.auth_mechanism(&allowed).map(Mechanism::name))
        })
    }

    /// Send one message; returns {"accepted": [...], "refused": [(addr, code, text)], "code": int, "text": str}.
    fn send<'py>(
        &self,
        py: Python<'py>,
        sender: String,
        recipients: Vec<String>,
        message: &[u8],
    ) -> PyResult<Bound<'py, PyDict>> {
        let delivery = self.with(py, |s| s.send(&sender, &recipients, message))?;
        delivery_dict(py, &delivery)
    }

    /// Write one message of a series, tagged `id`, without waiting for its
    /// verdict. Raises `SmtpError` when the connection failed; the outcomes
    /// of the messages in flight are then ready for `confirm`.
    fn submit(
        &self,
        py: Python<'_>,
        id: u64,
        sender: String,
        recipients: Vec<String>,
        message: &[u8],
    ) -> PyResult<()> {
        self.with(py, |s| s.submit(id, &sender, &recipients, message))
    }

    /// Wait for every verdict still due: ([{"id", "status", ...}], error).
    /// `status` is "accepted" (with the `send` keys), "refused" (with
    /// "error", an `SmtpError`), "not-sent" or "unknown"; `error` is the
    /// `SmtpError` that ended the connection, or None. Never raises it.
    fn confirm<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, Option<Py<PyAny>>)> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("session lock poisoned"))?;
        let Some(session) = guard.as_mut() else {
            return Ok((PyList::empty(py), None));
        };
        let (outcomes, failure) = py.detach(|| session.confirm());
        let out = PyList::empty(py);
        for (id, outcome) in outcomes {
            let d = match &outcome {
                Outcome::Accepted(delivery) => {
                    let d = delivery_dict(py, delivery)?;
                    d.set_item("status", "accepted")?;
                    d
                }
                Outcome::Refused(_) => {
                    let d = PyDict::new(py);
                    d.set_item("status", "refused")?;
                    d
                }
                Outcome::NotSent => {
                    let d = PyDict::new(py);
                    d.set_item("status", "not-sent")?;
                    d
                }
                Outcome::Unknown => {
                    let d = PyDict::new(py);
                    d.set_item("status", "unknown")?;
                    d
                }
            };
            d.set_item("id", id)?;
            if let Outcome::Refused(e) = outcome {
                d.set_item("error", to_pyerr(py, e, &self.pending).value(py))?;
            }
            out.append(d)?;
        }
        let failure = match failure {
            Some(e) => {
                let err = to_pyerr(py, e, &self.pending);
                if err.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                    return Err(err);
                }
                Some(err.value(py).clone().into_any().unbind())
            }
            None => None,
        };
        Ok((out, failure))
    }

    /// Send QUIT and close. Never raises for a server that is already gone.
    fn quit(&self, py: Python<'_>) -> PyResult<()> {
        let session = self.inner.lock().ok().and_then(|mut g| g.take());
        if let Some(mut session) = session {
            py.detach(move || {
                let _ = session.quit();
            });
        }
        Ok(())
    }

    /// The verification verdict: {"trust": ..., "pin": ..., "legacy_sha1": ..., "sha256": ..., "spki": ..., "chain": [bytes]} or None.
    fn verdict<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("session lock poisoned"))?;
        match guard.as_ref().and_then(|s| s.verdict()) {
            Some(v) => Ok(Some(verdict_dict(py, v)?)),
            None => Ok(None),
        }
    }

    /// What the session learned: peer, greeting, capabilities, TLS parameters.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("session lock poisoned"))?;
        let s = guard
            .as_ref()
            .ok_or_else(|| SmtpError::new_err("the SMTP session is closed"))?;
        let d = PyDict::new(py);
        d.set_item("peer", s.peer().to_string())?;
        d.set_item("greeting", s.greeting().map(|r| r.to_string()))?;
        d.set_item("capabilities", s.capabilities().keywords().to_vec())?;
        d.set_item(
            "auth_mechanisms",
            s.capabilities().auth_mechanisms().to_vec(),
        )?;
        d.set_item(
            "cleartext_capabilities",
            s.cleartext_capabilities().map(|c| c.keywords().to_vec()),
        )?;
        if let Some(info) = s.tls_info() {
            d.set_item("tls_version", info.version)?;
            d.set_item("cipher_suite", info.cipher_suite)?;
            d.set_item("key_exchange", info.key_exchange)?;
        }
        Ok(d)
    }
}

/// Open a session: connect, greet, secure, EHLO. See the shim for the meaning
/// of each argument; all of them come from hgrc.
#[pyfunction]
#[pyo3(signature = (
    *, host, port, security, hello_name, timeout, ca_file=None, load_default_roots=true,
    fingerprints=None, legacy_fingerprints=None, pubkeys=None, insecure=false,
    min_version="tls1.2", ciphers=None, pipelining=true, allow_cleartext_auth=false,
    inspect_only=false, transcript=None, client_cert=None, client_key=None
))]
#[allow(clippy::too_many_arguments)] // mirrors the hgrc settings one to one
fn connect(
    py: Python<'_>,
    host: String,
    port: u16,
    security: &str,
    hello_name: String,
    timeout: f64,
    ca_file: Option<String>,
    load_default_roots: bool,
    fingerprints: Option<&str>,
    legacy_fingerprints: Option<&str>,
    pubkeys: Option<&str>,
    insecure: bool,
    min_version: &str,
    ciphers: Option<String>,
    pipelining: bool,
    allow_cleartext_auth: bool,
    inspect_only: bool,
    transcript: Option<Py<PyAny>>,
    client_cert: Option<String>,
    client_key: Option<String>,
) -> PyResult<PySession> {
    let pending = Arc::new(Mutex::new(None));
    let config = (|| {
        let security = match security {
            "none" => Security::None,
            "starttls" => Security::StartTls,
            "smtps" => Security::Implicit,
            other => {
                return Err(Error::Config {
                    setting: "tls",
                    message: format!("invalid smtp.tls value '{other}'"),
                })
            }
        };
        let min_version = match min_version {
            "tls1.2" => MinVersion::Tls12,
            "tls1.3" => MinVersion::Tls13,
            other => {
                return Err(Error::Config {
                    setting: "minimumprotocol",
                    message: format!("unsupported minimum protocol '{other}'"),
                })
            }
        };
        let mut pins = Vec::new();
        for (setting, value, parse) in [
            (
                "fingerprints",
                fingerprints,
                Pin::parse_fingerprint as fn(&str) -> _,
            ),
            ("hostfingerprints", legacy_fingerprints, Pin::parse_legacy),
            ("pubkeys", pubkeys, Pin::parse_pubkey),
        ] {
            if let Some(value) = value {
                pins.extend(Pin::parse_list(value, parse).map_err(|e| Error::Config {
                    setting,
                    message: e.to_string(),
                })?);
            }
        }
        if !timeout.is_finite() || timeout <= 0.0 {
            return Err(Error::Config {
                setting: "timeout",
                message: format!("invalid timeout {timeout}"),
            });
        }
        let timeout = Duration::from_secs_f64(timeout);
        let client_cert = client_cert
            .map(|cert| {
                tls::ClientCert::load(cert.as_ref(), client_key.as_deref().map(AsRef::as_ref))
                    .map_err(|e| Error::Config {
                        setting: "clientcert",
                        message: e.to_string(),
                    })
            })
            .transpose()?;
        Ok(Config {
            tls: TlsPolicy {
                server_name: host.clone(),
                ca_file: ca_file.map(Into::into),
                load_default_roots,
                pins,
                insecure,
                min_version,
                ciphers,
                inspect_only,
            },
            host,
            port,
            security,
            hello_name,
            connect_timeout: timeout,
            timeout,
            pipelining,
            allow_cleartext_auth,
            client_cert,
        })
    })()
    .map_err(|e| to_pyerr(py, e, &pending))?;
    let observer = Box::new(PyObserver {
        transcript,
        pending: pending.clone(),
    });
    let session = py
        .detach(|| Session::connect(config, observer))
        .map_err(|e| to_pyerr(py, e, &pending))?;
    Ok(PySession {
        inner: Mutex::new(Some(session)),
        pending,
    })
}

/// Mercurial-style fingerprint ("sha256:aa:bb:...") of a DER certificate.
#[pyfunction]
fn fingerprint(der: &[u8], algorithm: &str) -> PyResult<String> {
    let alg = match algorithm {
        "sha1" => HashAlg::Sha1,
        "sha256" => HashAlg::Sha256,
        "sha512" => HashAlg::Sha512,
        other => return Err(PyRuntimeError::new_err(format!("unknown hash {other}"))),
    };
    Ok(tls::fingerprint(der, alg))
}

/// A host name in the ASCII form DNS and certificates use (UTS-46 / IDNA
/// 2008), or None if it cannot be a host name.
#[pyfunction]
fn ascii_host(host: &str) -> Option<String> {
    tls::ascii_host(host)
}

/// Summaries of a certificate chain (DER, leaf first) for `hg debugsmtp`.
#[pyfunction]
fn describe_chain<'py>(py: Python<'py>, chain: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for c in tls::describe_chain(&chain) {
        let d = PyDict::new(py);
        d.set_item("subject", c.subject)?;
        d.set_item("issuer", c.issuer)?;
        d.set_item("sans", c.sans)?;
        d.set_item("not_before", c.not_before)?;
        d.set_item("not_after", c.not_after)?;
        d.set_item("days_left", c.days_left)?;
        d.set_item("signature_algorithm", c.signature_algorithm)?;
        d.set_item("key", c.key)?;
        d.set_item("sha256", c.sha256)?;
        d.set_item("sha1", c.sha1)?;
        d.set_item("sha512", c.sha512)?;
        d.set_item("spki_sha256", c.spki_sha256)?;
        d.set_item("self_signed", c.self_signed)?;
        out.append(d)?;
    }
    Ok(out)
}

/// Where the default trust anchors come from: ("system" | "bundled", count).
#[pyfunction]
fn default_roots() -> (&'static str, usize) {
    match tls::default_roots_source() {
        (tls::DefaultRootsSource::System, n) => ("system", n),
        (tls::DefaultRootsSource::Bundled, n) => ("bundled", n),
    }
}

/// SASL names into mechanisms; an unknown name is a config error on `smtp.auth`.
fn mechanism_list(
    py: Python<'_>,
    names: Option<Vec<String>>,
    pending: &Arc<Mutex<Option<PyErr>>>,
) -> PyResult<Vec<Mechanism>> {
    names
        .unwrap_or_default()
        .iter()
        .map(|name| {
            Mechanism::from_name(name).ok_or_else(|| Error::Config {
                setting: "auth",
                message: format!("unknown SASL mechanism '{name}' in smtp.auth"),
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| to_pyerr(py, e, pending))
}

fn delivery_dict<'py>(py: Python<'py>, d: &Delivery) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("accepted", d.accepted.clone())?;
    let refused = PyList::empty(py);
    for (addr, reply) in &d.refused {
        refused.append((addr, reply.code(), reply.text()))?;
    }
    out.set_item("refused", refused)?;
    out.set_item("code", d.reply.code())?;
    out.set_item("text", d.reply.text())?;
    Ok(out)
}

fn verdict_dict<'py>(py: Python<'py>, v: &Verdict) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let leaf = v.leaf();
    d.set_item("sha256", tls::fingerprint(leaf, HashAlg::Sha256))?;
    d.set_item("spki", tls::spki_pin(leaf).ok())?;
    let chain = PyList::empty(py);
    for der in &v.chain {
        chain.append(PyBytes::new(py, der))?;
    }
    d.set_item("chain", chain)?;
    let (trust, pin, legacy) = match &v.result {
        Ok(Trust::CaChain) => ("ca", None, false),
        Ok(Trust::SelfInCaFile) => ("self", None, false),
        Ok(Trust::CommonNameFallback) => ("commonname", None, false),
        Ok(Trust::Pin { pin, legacy_sha1 }) => ("pin", Some(pin.clone()), *legacy_sha1),
        Ok(Trust::Insecure) => ("insecure", None, false),
        Err(_) => ("failed", None, false),
    };
    d.set_item("trust", trust)?;
    d.set_item("pin", pin)?;
    d.set_item("legacy_sha1", legacy)?;
    d.set_item("failure", v.result.as_ref().err().map(|f| f.to_string()))?;
    Ok(d)
}

/// Turn a core error into `SmtpError` with attributes, or re-raise the
/// KeyboardInterrupt that caused an interruption.
fn to_pyerr(py: Python<'_>, e: Error, pending: &Arc<Mutex<Option<PyErr>>>) -> PyErr {
    if let Error::Interrupted = e {
        if let Some(err) = pending.lock().ok().and_then(|mut p| p.take()) {
            return err;
        }
        return pyo3::exceptions::PyKeyboardInterrupt::new_err(());
    }
    let err = SmtpError::new_err(e.to_string());
    let value = err.value(py);
    // Attribute setting on a fresh exception instance cannot fail short of
    // memory exhaustion; the message alone is still useful if it does.
    let _ = (|| -> PyResult<()> {
        value.setattr("kind", e.kind())?;
        value.setattr("stage", e.stage().map(|s| s.name()))?;
        value.setattr("code", e.reply().map(|r| r.code()))?;
        value.setattr("server_text", e.reply().map(|r| r.text()))?;
        let (fingerprint, spki) = match &e {
            Error::Verify { chain, .. } if !chain.is_empty() => (
                Some(tls::fingerprint(&chain[0], HashAlg::Sha256)),
                tls::spki_pin(&chain[0]).ok(),
            ),
            _ => (None, None),
        };
        value.setattr("fingerprint", fingerprint)?;
        // Which kinds of pin were configured and did not match, so the hint
        // can show the line to update.
        let pinned = match &e {
            Error::Verify {
                failure:
                    tls::VerifyFailure::PinMismatch {
                        certificates,
                        public_keys,
                        ..
                    },
                ..
            } => match (certificates, public_keys) {
                (true, true) => Some("both"),
                (false, true) => Some("pubkeys"),
                _ => Some("fingerprints"),
            },
            _ => None,
        };
        value.setattr("pinned", pinned)?;
        let (mechanism, detail) = match &e {
            Error::AuthRefused {
                mechanism, detail, ..
            } => (Some(*mechanism), detail.clone()),
            Error::AuthExchange { mechanism, .. } => (Some(*mechanism), None),
            _ => (None, None),
        };
        value.setattr("mechanism", mechanism)?;
        value.setattr("detail", detail)?;
        value.setattr("spki", spki)?;
        value.setattr(
            "setting",
            match &e {
                Error::Config { setting, .. } => Some(*setting),
                _ => None,
            },
        )?;
        let refused: Vec<(String, u16, String)> = match &e {
            Error::RecipientsRefused { refused } => refused
                .iter()
                .map(|(a, r)| (a.clone(), r.code(), r.text()))
                .collect(),
            _ => Vec::new(),
        };
        value.setattr("refused", refused)?;
        Ok(())
    })();
    err
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SmtpError", m.py().get_type::<SmtpError>())?;
    m.add_class::<PySession>()?;
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(ascii_host, m)?)?;
    m.add_function(wrap_pyfunction!(describe_chain, m)?)?;
    m.add_function(wrap_pyfunction!(default_roots, m)?)?;
    Ok(())
}
