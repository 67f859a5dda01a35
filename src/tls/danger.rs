//! What a user may choose to weaken in the certificate check, as one type
//! that can only be made by naming each weakening (in the spirit of rustls'
//! `dangerous()`): a reader finds every place that weakens verification by
//! looking for [`Dangerous`], not for a `bool` among the other settings.
//!
//! Where each takes effect: `verifier.rs` (the only user of the two
//! queries below). Neither skips the handshake signature: the verifier
//! checks it with the ring provider's algorithms in every mode, so the peer
//! still has to hold the private key of the certificate it sent. Pins are
//! checked before either applies and still do.

/// The weakenings chosen for one connection; none by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dangerous {
    skip_ca_and_name_checks: bool,
    inspect_only: bool,
}

impl Dangerous {
    /// Full verification.
    pub fn none() -> Dangerous {
        Dangerous::default()
    }

    /// `--insecure` (never `smtp.verifycert`): no CA and no name check.
    pub fn skip_ca_and_name_checks(mut self) -> Dangerous {
        self.skip_ca_and_name_checks = true;
        self
    }

    /// `hg debugsmtp`: record the verdict but let a handshake whose check
    /// failed complete, to report on the server. The session sends nothing
    /// on such a connection (its channel stays unverified).
    pub fn complete_failed_handshakes_for_inspection(mut self) -> Dangerous {
        self.inspect_only = true;
        self
    }

    /// Whether the CA and name checks are skipped.
    pub fn skips_ca_and_name_checks(self) -> bool {
        self.skip_ca_and_name_checks
    }

    /// Whether a failed check still completes the handshake.
    pub fn inspects(self) -> bool {
        self.inspect_only
    }
}
