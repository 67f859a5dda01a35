//! The only module that imports pyo3: `securesmtp._core`.
//!
//! The Python shim passes plain settings in and gets a `Session` back. Every
//! network wait runs with the GIL released; the transport polls
//! `PyErr_CheckSignals` between 100 ms slices so Ctrl-C lands within a
//! fraction of a second, and the resulting `KeyboardInterrupt` is re-raised
//! as is (Mercurial prints its usual "interrupted!").
//!
//! Core errors become one exception class, `SmtpError`, whose attributes
//! (`kind`, `stage`, `setting`, `code`, `server_text`, `fingerprint`, ...)
//! let the shim choose between `error.SecurityError` and `error.Abort` and
//! write the hint. `kind`, `stage` and `setting` are the core's enums
//! [`Kind`], [`Stage`] and [`Setting`] themselves, so the shim compares
//! typed values, never message text or labels. Every `SmtpError` is made
//! by one map, [`to_pyerr_at`], from an [`Error`]: a session used after
//! `quit` ([`Error::SessionClosed`]) and a caught panic
//! ([`Error::Internal`]) included, so every one carries every attribute.
//!
//! No Rust panic reaches Python as a `PanicException` (a `BaseException`
//! that Mercurial would print as a traceback): every entry point runs in
//! [`guarded`], which turns a panic into `SmtpError` of kind `INTERNAL`.
//! The panic's message is not shown (it could quote a secret, as a string
//! slicing panic does), only where it happened.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::error::{self, Error, Kind, Setting, Stage};
use crate::session::queue::Outcome;
use crate::session::{Observer, Session};
use crate::settings::{Settings, Timeout};
use crate::smtp::{Credentials, Mechanism};
use crate::tls::{self, Dangerous, HashAlg, Trust, Verdict};
use crate::transport::Interrupt;

create_exception!(_core, SmtpError, PyException, "An SMTP session failed.");

// `error::Kind`, `error::Stage` and `error::Setting` are the Python enums
// `Kind`, `Stage` and `Setting` themselves (pyclasses under the `python`
// feature); `Stage` also gives Python its words.
#[pymethods]
impl Stage {
    /// The stage as the user reads it ("end of data", "RCPT TO (recipients)").
    #[getter]
    fn words(&self) -> &'static str {
        self.name()
    }
}

thread_local! {
    /// How many [`guarded`] calls this thread is inside.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
    /// Where the last guarded panic on this thread happened.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keep the default "thread panicked at ..." report (with its message) off
/// stderr for panics that [`guarded`] turns into an `SmtpError`; any other
/// panic is reported as before.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) > 0 {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// Run one entry point of the module; a panic becomes `SmtpError(INTERNAL)`.
fn guarded<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    GUARDED.with(|g| g.set(g.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    result.unwrap_or_else(|_| {
        let at = PANIC_AT
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "an unknown place".to_owned());
        Err(internal_error(format!("at {at}")))
    })
}

/// `SmtpError` of kind `INTERNAL`, saying where.
fn internal_error(context: String) -> PyErr {
    Python::attach(|py| to_pyerr(py, Error::Internal { context }, &Pending::default()))
}

/// Every attribute an `SmtpError` has, at its empty value.
fn set_defaults(value: &Bound<'_, pyo3::exceptions::PyBaseException>) -> PyResult<()> {
    for name in [
        "stage",
        "code",
        "server_text",
        "fingerprint",
        "spki",
        "pinned",
        "setting",
        "mechanism",
        "detail",
    ] {
        value.setattr(name, None::<()>)?;
    }
    value.setattr("refused", Vec::<(String, u16, String)>::new())
}

/// The KeyboardInterrupt (or other signal handler error) that interrupted
/// a wait, to be raised in place of [`Error::Interrupted`].
type Pending = Arc<Mutex<Option<PyErr>>>;

/// Python-side progress hooks, called with the GIL re-acquired.
struct PyObserver {
    transcript: Option<Py<PyAny>>,
    notice: Option<Py<PyAny>>,
    pending: Pending,
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

    fn notice(&mut self, line: &str) {
        if let Some(cb) = &self.notice {
            // A failing printer must not break the session.
            Python::attach(|py| {
                let _ = cb.call1(py, (line,));
            });
        }
    }
}

/// An open SMTP session (see `session::Session`).
#[pyclass(name = "Session", module = "securesmtp._core")]
struct PySession {
    /// None once `quit` has ended the session.
    inner: Mutex<Option<Session>>,
    pending: Pending,
}

impl PySession {
    /// The session, unless an earlier call panicked while holding it (then
    /// it is in no state to continue: say so as the internal error it is).
    fn lock(&self) -> PyResult<MutexGuard<'_, Option<Session>>> {
        self.inner
            .lock()
            .map_err(|_| internal_error("the session was poisoned".to_owned()))
    }

    /// Run `f` on the session with the GIL released, then turn its error
    /// (or a pending KeyboardInterrupt) into a Python exception.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Session) -> Result<T, Error> + Send,
    ) -> PyResult<T> {
        guarded(|| {
            let mut guard = self.lock()?;
            let Some(session) = guard.as_mut() else {
                return Err(to_pyerr(py, Error::SessionClosed, &self.pending));
            };
            let result = py.detach(|| f(&mut *session));
            result.map_err(|e| session_pyerr(py, session, e, &self.pending))
        })
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

    /// Wait for every verdict still due: ([Outcome], error), `error` the
    /// `SmtpError` that ended the connection, or None. Never raises it.
    fn confirm<'py>(&self, py: Python<'py>) -> PyResult<(Vec<MessageOutcome>, Option<Py<PyAny>>)> {
        let mut guard = self.lock()?;
        let Some(session) = guard.as_mut() else {
            return Ok((Vec::new(), None));
        };
        let (outcomes, failure) = py.detach(|| session.confirm());
        let mut out = Vec::with_capacity(outcomes.len());
        for (id, outcome) in outcomes {
            let (status, refused, error) = match outcome {
                Outcome::Accepted(delivery) => {
                    let refused = delivery
                        .refused
                        .iter()
                        .map(|(addr, reply)| (addr.clone(), reply.code(), reply.text()))
                        .collect();
                    (Status::Accepted, refused, None)
                }
                Outcome::Refused(e) => {
                    let err = session_pyerr(py, session, e, &self.pending);
                    (
                        Status::Refused,
                        Vec::new(),
                        Some(err.value(py).clone().into_any().unbind()),
                    )
                }
                Outcome::NotSent => (Status::NotSent, Vec::new(), None),
                Outcome::Unknown => (Status::Unknown, Vec::new(), None),
            };
            out.push(MessageOutcome {
                id,
                status,
                refused,
                error,
            });
        }
        let failure = match failure {
            Some(e) => {
                let err = session_pyerr(py, session, e, &self.pending);
                if err.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                    return Err(err);
                }
                Some(err.value(py).clone().into_any().unbind())
            }
            None => None,
        };
        Ok((out, failure))
    }

    /// From now on the server may stay silent this long (an `smtp.timeout`
    /// value, as for `connect`): a session opened within a shorter bound
    /// (a reconnection) gets the configured one back.
    fn set_timeout(&self, py: Python<'_>, timeout: TimeoutArg) -> PyResult<()> {
        let duration = timeout
            .duration()
            .map_err(|e| to_pyerr(py, e, &self.pending))?;
        self.with(py, |s| {
            s.set_timeout(duration);
            Ok(())
        })
    }

    /// Send QUIT and close. Never raises for a server that is already gone.
    fn quit(&self, py: Python<'_>) -> PyResult<()> {
        guarded(|| {
            let session = self.inner.lock().ok().and_then(|mut g| g.take());
            if let Some(mut session) = session {
                py.detach(move || {
                    let _ = session.quit();
                });
            }
            Ok(())
        })
    }

    /// The verification verdict of the handshake, or None without TLS.
    fn verdict(&self, py: Python<'_>) -> PyResult<Option<PyVerdict>> {
        guarded(|| {
            let guard = self.lock()?;
            Ok(guard
                .as_ref()
                .and_then(|s| s.verdict())
                .map(|v| PyVerdict::new(py, v)))
        })
    }

    /// What the session learned: peer, greeting, capabilities, TLS parameters.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded(|| {
            let guard = self.lock()?;
            let Some(s) = guard.as_ref() else {
                return Err(to_pyerr(py, Error::SessionClosed, &self.pending));
            };
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
        })
    }
}

/// `smtp.timeout` as the shim passes it: the hgrc text, or seconds.
#[derive(FromPyObject)]
enum TimeoutArg {
    Text(String),
    Seconds(f64),
}

impl TimeoutArg {
    /// The duration, checked as `connect` checks `smtp.timeout`.
    fn duration(self) -> Result<std::time::Duration, Error> {
        match self {
            TimeoutArg::Text(text) => crate::settings::timeout_text(&text),
            TimeoutArg::Seconds(seconds) => crate::settings::timeout_seconds(seconds),
        }
    }
}

/// Open a session: connect, greet, secure, EHLO. See the shim for the meaning
/// of each argument; all of them come from hgrc, and all are validated by
/// `settings::Settings::validate`.
#[pyfunction]
#[pyo3(signature = (
    *, host, port, security, hello_name, timeout, ca_file=None, load_default_roots=true,
    fingerprints=None, legacy_fingerprints=None, pubkeys=None, insecure=false,
    min_version="tls1.2".to_owned(), ciphers=None, pipelining=true, allow_cleartext_auth=false,
    inspect_only=false, transcript=None, notice=None, client_cert=None, client_key=None
))]
#[allow(clippy::too_many_arguments)] // mirrors the hgrc settings one to one
fn connect(
    py: Python<'_>,
    host: String,
    port: u16,
    security: String,
    hello_name: String,
    timeout: TimeoutArg,
    ca_file: Option<String>,
    load_default_roots: bool,
    fingerprints: Option<String>,
    legacy_fingerprints: Option<String>,
    pubkeys: Option<String>,
    insecure: bool,
    min_version: String,
    ciphers: Option<String>,
    pipelining: bool,
    allow_cleartext_auth: bool,
    inspect_only: bool,
    transcript: Option<Py<PyAny>>,
    notice: Option<Py<PyAny>>,
    client_cert: Option<String>,
    client_key: Option<String>,
) -> PyResult<PySession> {
    guarded(|| {
        let pending = Arc::new(Mutex::new(None));
        let settings = Settings {
            host,
            port,
            security,
            hello_name,
            timeout: match timeout {
                TimeoutArg::Text(text) => Timeout::Text(text),
                TimeoutArg::Seconds(seconds) => Timeout::Seconds(seconds),
            },
            ca_file,
            load_default_roots,
            fingerprints,
            legacy_fingerprints,
            pubkeys,
            insecure,
            min_version,
            ciphers,
            pipelining,
            allow_cleartext_auth,
            inspect_only,
            client_cert,
            client_key,
        };
        let config = settings.validate().map_err(|e| to_pyerr(py, e, &pending))?;
        let observer = Box::new(PyObserver {
            transcript,
            notice,
            pending: pending.clone(),
        });
        let session = py
            .detach(|| Session::connect(config, observer))
            .map_err(|e| to_pyerr(py, e, &pending))?;
        Ok(PySession {
            inner: Mutex::new(Some(session)),
            pending,
        })
    })
}

/// A host name in the ASCII form DNS and certificates use (UTS-46 / IDNA
/// 2008), or None if it cannot be a host name.
#[pyfunction]
fn ascii_host(host: &str) -> PyResult<Option<String>> {
    guarded(|| Ok(tls::ascii_host(host)))
}

/// `smtp.timeout` in seconds, checked as `connect` checks it, for the
/// shim's own waits (a password command) before any connection.
#[pyfunction]
fn timeout_seconds(py: Python<'_>, timeout: TimeoutArg) -> PyResult<f64> {
    guarded(|| {
        timeout
            .duration()
            .map(|d| d.as_secs_f64())
            .map_err(|e| to_pyerr(py, e, &Pending::default()))
    })
}

/// Summaries of a certificate chain (DER, leaf first) for `hg debugsmtp`.
#[pyfunction]
fn describe_chain<'py>(py: Python<'py>, chain: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyList>> {
    guarded(|| {
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
    })
}

/// Test hook, not API, and not in the wheel (the `test-hooks` feature):
/// panics inside the binding with `secret` in the panic message, so a test
/// can show that the panic surfaces as a clean `SmtpError` of kind
/// `INTERNAL` that does not quote it.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _test_hook_panic(secret: &str) -> PyResult<()> {
    guarded(|| panic!("test hook panic carrying {secret}"))
}

/// The verdict the handshake's verifier gives `chain` (DER, leaf first) for
/// `host`, trusting `cafile` (else the default store, unless
/// `load_default_roots` is false), at `at` seconds since the epoch (else
/// now): `(accepted, how or why not)`. For the differential tests; it
/// trusts nothing a connection would not.
#[pyfunction]
#[pyo3(signature = (chain, host, cafile=None, load_default_roots=true, at=None))]
fn verify_chain(
    chain: Vec<Vec<u8>>,
    host: String,
    cafile: Option<std::path::PathBuf>,
    load_default_roots: bool,
    at: Option<u64>,
) -> PyResult<(bool, String)> {
    guarded(|| {
        let policy = tls::TlsPolicy {
            server_name: host,
            ca_file: cafile,
            load_default_roots,
            pins: Vec::new(),
            min_version: tls::MinVersion::Tls12,
            ciphers: None,
            dangerous: Dangerous::none(),
        };
        let now = match at {
            Some(secs) => {
                rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
            }
            None => rustls::pki_types::UnixTime::now(),
        };
        Ok(match tls::verify_offline(&policy, &chain, now) {
            Ok(verdict) => match verdict.result {
                Ok(trust) => (true, trust.to_string()),
                Err(failure) => (false, failure.to_string()),
            },
            Err(setup) => (false, setup.to_string()),
        })
    })
}

/// SASL names into mechanisms; an unknown name is a config error on `smtp.auth`.
fn mechanism_list(
    py: Python<'_>,
    names: Option<Vec<String>>,
    pending: &Pending,
) -> PyResult<Vec<Mechanism>> {
    names
        .unwrap_or_default()
        .iter()
        .map(|name| {
            Mechanism::from_name(name).ok_or_else(|| Error::Config {
                setting: error::Setting::Auth,
                message: format!("unknown SASL mechanism '{name}' in smtp.auth"),
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| to_pyerr(py, e, pending))
}

/// What became of one message of a series.
#[pyclass(
    eq,
    frozen,
    hash,
    module = "securesmtp._core",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Status {
    /// The server accepted it (for the recipients not in `refused`).
    Accepted,
    /// The server refused it: `error` says where and why.
    Refused,
    /// Its end of data never reached the server: safe to send again.
    NotSent,
    /// Its end of data went out and the verdict was lost: possibly
    /// delivered.
    Unknown,
}

/// One message's outcome, from `Session.confirm`.
#[pyclass(frozen, get_all, name = "Outcome", module = "securesmtp._core")]
struct MessageOutcome {
    /// The id the message was submitted with.
    id: u64,
    status: Status,
    /// For `ACCEPTED`: recipients refused while others were accepted, as
    /// (address, code, text).
    refused: Vec<(String, u16, String)>,
    /// For `REFUSED`: the `SmtpError`.
    error: Option<Py<PyAny>>,
}

/// How a certificate was trusted, or that it was not.
#[pyclass(
    eq,
    frozen,
    hash,
    name = "Trust",
    module = "securesmtp._core",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum TrustKind {
    /// A chain to a trusted CA.
    Ca,
    /// The certificate itself is in the user's CA file.
    SelfSigned,
    /// By its common name, which the user's CA file vouches for.
    CommonName,
    /// A pin matched.
    Pin,
    /// `--insecure`.
    Insecure,
    /// Verification failed (inspect mode only gets this far).
    Failed,
}

#[pymethods]
impl TrustKind {
    /// The word `hg debugsmtp --json` prints.
    #[getter]
    fn word(&self) -> &'static str {
        match self {
            TrustKind::Ca => "ca",
            TrustKind::SelfSigned => "self",
            TrustKind::CommonName => "commonname",
            TrustKind::Pin => "pin",
            TrustKind::Insecure => "insecure",
            TrustKind::Failed => "failed",
        }
    }
}

/// The verdict of the certificate check of one handshake.
#[pyclass(frozen, get_all, name = "Verdict", module = "securesmtp._core")]
struct PyVerdict {
    /// The leaf's SHA-256 fingerprint, as a pin line takes it.
    sha256: String,
    /// The leaf's public-key pin, when its key can be read.
    spki: Option<String>,
    /// The chain as sent, DER, leaf first.
    chain: Vec<Py<PyBytes>>,
    trust: TrustKind,
    /// For `PIN`: the pin that matched.
    pin: Option<String>,
    /// For `PIN`: it came from `[hostfingerprints]` (SHA-1).
    legacy_sha1: bool,
    /// For `FAILED`: why.
    failure: Option<String>,
}

impl PyVerdict {
    fn new(py: Python<'_>, v: &Verdict) -> PyVerdict {
        let leaf = v.leaf();
        let (trust, pin, legacy_sha1) = match &v.result {
            Ok(Trust::CaChain) => (TrustKind::Ca, None, false),
            Ok(Trust::SelfInCaFile) => (TrustKind::SelfSigned, None, false),
            Ok(Trust::CommonNameFallback) => (TrustKind::CommonName, None, false),
            Ok(Trust::Pin { pin, legacy_sha1 }) => {
                (TrustKind::Pin, Some(pin.clone()), *legacy_sha1)
            }
            Ok(Trust::Insecure) => (TrustKind::Insecure, None, false),
            Err(_) => (TrustKind::Failed, None, false),
        };
        PyVerdict {
            sha256: tls::fingerprint(leaf, HashAlg::Sha256),
            spki: tls::spki_pin(leaf).ok(),
            chain: v
                .chain
                .iter()
                .map(|der| PyBytes::new(py, der).unbind())
                .collect(),
            trust,
            pin,
            legacy_sha1,
            failure: v.result.as_ref().err().map(|f| f.to_string()),
        }
    }
}

/// Turn a core error into `SmtpError` with attributes, or re-raise the
/// KeyboardInterrupt that caused an interruption.
fn to_pyerr(py: Python<'_>, e: Error, pending: &Pending) -> PyErr {
    let setting = e.setting();
    to_pyerr_at(py, e, setting, pending)
}

/// [`to_pyerr`] for an error of `session`, which knows more than the error
/// about the setting to blame.
fn session_pyerr(py: Python<'_>, session: &Session, e: Error, pending: &Pending) -> PyErr {
    let setting = session.setting_at_fault(&e);
    to_pyerr_at(py, e, setting, pending)
}

/// The one map from a core error to a Python exception, with the setting
/// to blame decided by the caller: the only place an `SmtpError` is made,
/// so every one has every attribute `_core.pyi` declares.
fn to_pyerr_at(
    py: Python<'_>,
    e: Error,
    setting: Option<error::Setting>,
    pending: &Pending,
) -> PyErr {
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
        set_defaults(value)?;
        value.setattr("kind", e.kind())?;
        value.setattr("stage", e.stage())?;
        value.setattr("code", e.reply().map(|r| r.code()))?;
        value.setattr("server_text", e.reply().map(|r| r.text()))?;
        if let Error::Verify { chain, failure, .. } = &e {
            if let Some(leaf) = chain.first() {
                value.setattr("fingerprint", tls::fingerprint(leaf, HashAlg::Sha256))?;
                value.setattr("spki", tls::spki_pin(leaf).ok())?;
            }
            // Which kinds of pin were configured and did not match, so the
            // hint can show the line to update.
            if let tls::VerifyFailure::PinMismatch {
                certificates,
                public_keys,
                ..
            } = failure
            {
                let pinned = match (certificates, public_keys) {
                    (true, true) => "both",
                    (false, true) => "pubkeys",
                    _ => "fingerprints",
                };
                value.setattr("pinned", pinned)?;
            }
        }
        value.setattr("setting", setting)?;
        match &e {
            Error::AuthRefused {
                mechanism, detail, ..
            } => {
                value.setattr("mechanism", *mechanism)?;
                value.setattr("detail", detail.clone())?;
            }
            Error::AuthExchange { mechanism, .. } => value.setattr("mechanism", *mechanism)?,
            _ => {}
        }
        if let Error::RecipientsRefused { refused } = &e {
            let refused: Vec<(String, u16, String)> = refused
                .iter()
                .map(|(a, r)| (a.clone(), r.code(), r.text()))
                .collect();
            value.setattr("refused", refused)?;
        }
        Ok(())
    })();
    err
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    install_panic_hook();
    m.add("SmtpError", m.py().get_type::<SmtpError>())?;
    m.add_class::<Kind>()?;
    m.add_class::<Stage>()?;
    m.add_class::<Setting>()?;
    m.add_class::<PySession>()?;
    m.add_class::<Status>()?;
    m.add_class::<MessageOutcome>()?;
    m.add_class::<TrustKind>()?;
    m.add_class::<PyVerdict>()?;
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(ascii_host, m)?)?;
    m.add_function(wrap_pyfunction!(timeout_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(describe_chain, m)?)?;
    m.add_function(wrap_pyfunction!(verify_chain, m)?)?;
    #[cfg(feature = "test-hooks")]
    m.add_function(wrap_pyfunction!(_test_hook_panic, m)?)?;
    Ok(())
}
