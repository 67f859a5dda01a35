//! Everything that lets a handshake through without a passing certificate
//! check. Kept in one small module so it is easy to find and to audit.
//!
//! Neither path skips the handshake signature: the verifier checks it with
//! the ring provider's algorithms in every mode, so the peer still has to
//! hold the private key of the certificate it sent.

use rustls::client::danger::ServerCertVerified;

use super::verifier::{Trust, VerifyFailure};

/// `--insecure`: no CA and no name check (`smtp.verifycert` never gets here).
/// Pins are checked before this is reached and still apply.
pub(super) fn skip_ca_and_name_checks() -> Result<Trust, VerifyFailure> {
    Ok(Trust::Insecure)
}

/// `inspect_only`: the verdict (here a failure) has been recorded; let the
/// handshake complete so `hg debugsmtp` can report on the server. The caller
/// sends nothing on such a connection.
pub(super) fn complete_handshake_for_inspection(_failure: &VerifyFailure) -> ServerCertVerified {
    ServerCertVerified::assertion()
}
