//! hgrc values, as the shim reads them, validated into a session [`Config`].
//!
//! Every value is checked here, in Rust, so that no setting can reach code
//! that would panic on it (`Duration::from_secs_f64(1e20)` does) and so that
//! Rust tests reach the checks. Each refusal is an [`Error::Config`] naming
//! the [`Setting`].

use std::time::Duration;

use crate::error::{Error, Setting};
use crate::session::{Config, Security};
use crate::tls::{self, Dangerous, MinVersion, Pin, TlsPolicy};

/// The shortest `smtp.timeout` accepted: below this nothing can answer.
const MIN_TIMEOUT: f64 = 0.1;
/// The longest `smtp.timeout` accepted: one day.
const MAX_TIMEOUT: f64 = 86_400.0;

/// `smtp.timeout` as written.
#[derive(Clone, Debug)]
pub enum Timeout {
    /// The text from hgrc.
    Text(String),
    /// A number of seconds from a caller that already parsed it.
    Seconds(f64),
}

/// Everything `_core.connect` takes, before validation.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `smtp.host`, in the A-label form DNS and TLS use.
    pub host: String,
    /// `smtp.port`.
    pub port: u16,
    /// `none`, `starttls` or `smtps`.
    pub security: String,
    /// The EHLO name.
    pub hello_name: String,
    /// `smtp.timeout`.
    pub timeout: Timeout,
    /// The CA file, if one is configured.
    pub ca_file: Option<String>,
    /// Whether the default trust store is used when there is no CA file.
    pub load_default_roots: bool,
    /// `hostsecurity.HOST:fingerprints`, as written.
    pub fingerprints: Option<String>,
    /// `hostfingerprints.HOST`, as written.
    pub legacy_fingerprints: Option<String>,
    /// `hostsecurity.HOST:pubkeys`, as written.
    pub pubkeys: Option<String>,
    /// `--insecure`.
    pub insecure: bool,
    /// `tls1.2` or `tls1.3`.
    pub min_version: String,
    /// The cipher list, if configured.
    pub ciphers: Option<String>,
    /// `smtp.pipelining`.
    pub pipelining: bool,
    /// `smtp.allow-cleartext-auth`.
    pub allow_cleartext_auth: bool,
    /// `hg debugsmtp`: complete a failed handshake to report on it.
    pub inspect_only: bool,
    /// A client certificate (PEM file), if the server asks for one.
    pub client_cert: Option<String>,
    /// Its key, when not in the same file.
    pub client_key: Option<String>,
}

impl Settings {
    /// The weakenings of the certificate check asked for, by name.
    fn dangerous(&self) -> Dangerous {
        let mut dangerous = Dangerous::none();
        if self.insecure {
            dangerous = dangerous.skip_ca_and_name_checks();
        }
        if self.inspect_only {
            dangerous = dangerous.complete_failed_handshakes_for_inspection();
        }
        dangerous
    }

    /// The session config, or the first setting that is unusable.
    pub fn validate(self) -> Result<Config, Error> {
        let security = security(&self.security)?;
        let min_version = min_version(&self.min_version)?;
        let timeout = match &self.timeout {
            Timeout::Text(text) => timeout_text(text)?,
            Timeout::Seconds(seconds) => timeout_seconds(*seconds)?,
        };
        if self.port == 0 {
            return Err(config(Setting::Port, "smtp.port 0 is out of range".into()));
        }
        let mut pins = Vec::new();
        for (setting, value, parse) in [
            (
                Setting::Fingerprints,
                &self.fingerprints,
                Pin::parse_fingerprint as fn(&str) -> _,
            ),
            (
                Setting::HostFingerprints,
                &self.legacy_fingerprints,
                Pin::parse_legacy,
            ),
            (Setting::Pubkeys, &self.pubkeys, Pin::parse_pubkey),
        ] {
            if let Some(value) = value {
                pins.extend(
                    Pin::parse_list(value, parse).map_err(|e| config(setting, e.to_string()))?,
                );
            }
        }
        let client_cert = self
            .client_cert
            .as_deref()
            .map(|cert| {
                tls::ClientCert::load(cert.as_ref(), self.client_key.as_deref().map(AsRef::as_ref))
                    .map_err(|e| config(Setting::ClientCert, e.to_string()))
            })
            .transpose()?;
        let dangerous = self.dangerous();
        Ok(Config {
            client_cert,
            tls: TlsPolicy {
                server_name: self.host.clone(),
                ca_file: self.ca_file.map(Into::into),
                load_default_roots: self.load_default_roots,
                pins,
                min_version,
                ciphers: self.ciphers,
                dangerous,
            },
            host: self.host,
            port: self.port,
            security,
            hello_name: self.hello_name,
            connect_timeout: timeout,
            timeout,
            pipelining: self.pipelining,
            allow_cleartext_auth: self.allow_cleartext_auth,
        })
    }
}

fn config(setting: Setting, message: String) -> Error {
    Error::Config { setting, message }
}

fn security(value: &str) -> Result<Security, Error> {
    match value {
        "none" => Ok(Security::None),
        "starttls" => Ok(Security::StartTls),
        "smtps" => Ok(Security::Implicit),
        other => Err(config(
            Setting::Tls,
            format!("invalid smtp.tls value '{other}'"),
        )),
    }
}

fn min_version(value: &str) -> Result<MinVersion, Error> {
    match value {
        "tls1.2" => Ok(MinVersion::Tls12),
        "tls1.3" => Ok(MinVersion::Tls13),
        other => Err(config(
            Setting::MinimumProtocol,
            format!("unsupported minimum protocol '{other}'"),
        )),
    }
}

/// `smtp.timeout` from its hgrc text.
pub fn timeout_text(text: &str) -> Result<Duration, Error> {
    let seconds = text.trim().parse::<f64>().unwrap_or(f64::NAN);
    timeout(seconds, text)
}

/// `smtp.timeout` given in seconds.
pub fn timeout_seconds(seconds: f64) -> Result<Duration, Error> {
    timeout(seconds, &seconds.to_string())
}

/// `smtp.timeout` in seconds: a number from [`MIN_TIMEOUT`] to
/// [`MAX_TIMEOUT`]. Anything else (NaN, infinities, zero, negative, tiny or
/// huge values) is refused, so every deadline computed from it is
/// representable.
fn timeout(seconds: f64, written: &str) -> Result<Duration, Error> {
    if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&seconds) {
        return Ok(Duration::from_secs_f64(seconds));
    }
    let shown: String = crate::smtp::sanitize(written.as_bytes())
        .chars()
        .take(40)
        .collect();
    Err(config(
        Setting::Timeout,
        format!(
            "smtp.timeout must be a number of seconds from {MIN_TIMEOUT} to {MAX_TIMEOUT}, \
             not '{shown}'"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            host: "mail.example.test".into(),
            port: 587,
            security: "starttls".into(),
            hello_name: "client.example.test".into(),
            timeout: Timeout::Text("60".into()),
            ca_file: None,
            load_default_roots: true,
            fingerprints: None,
            legacy_fingerprints: None,
            pubkeys: None,
            min_version: "tls1.2".into(),
            ciphers: None,
            pipelining: true,
            allow_cleartext_auth: false,
            insecure: false,
            inspect_only: false,
            client_cert: None,
            client_key: None,
        }
    }

    #[track_caller]
    fn refused(s: Settings, setting: Setting, needle: &str) {
        match s.validate() {
            Err(Error::Config {
                setting: got,
                message,
            }) => {
                assert_eq!(got, setting, "{message}");
                assert!(message.contains(needle), "{needle:?} not in {message:?}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn ordinary_settings_become_a_config() {
        let config = settings().validate().unwrap();
        assert_eq!(config.security, Security::StartTls);
        assert_eq!(config.timeout, Duration::from_secs(60));
        assert_eq!(config.connect_timeout, Duration::from_secs(60));
        assert_eq!(config.tls.server_name, "mail.example.test");
        assert_eq!(config.tls.min_version, MinVersion::Tls12);
    }

    #[test]
    fn every_unusable_timeout_is_a_config_error_naming_smtp_timeout() {
        for text in [
            "1e20", "1e-12", "nan", "NaN", "-1", "0", "-0", "inf", "-inf", "", "sixty", "0.05",
            "86401", "1e308", "1_000",
        ] {
            let mut s = settings();
            s.timeout = Timeout::Text(text.into());
            refused(s, Setting::Timeout, "smtp.timeout");
        }
        for seconds in [1e20, 1e-12, f64::NAN, -1.0, 0.0, f64::INFINITY, f64::MAX] {
            let mut s = settings();
            s.timeout = Timeout::Seconds(seconds);
            refused(s, Setting::Timeout, "smtp.timeout");
        }
    }

    #[test]
    fn timeouts_in_range_are_taken_as_written() {
        for (text, expected) in [
            ("0.1", Duration::from_millis(100)),
            (" 2.5 ", Duration::from_millis(2500)),
            ("86400", Duration::from_secs(86_400)),
            ("3e1", Duration::from_secs(30)),
        ] {
            assert_eq!(timeout_text(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn a_timeout_shown_in_an_error_is_sanitised_and_short() {
        let Err(Error::Config { message, .. }) =
            timeout_text(&format!("\u{1b}[31m{}", "9".repeat(400)))
        else {
            panic!("accepted")
        };
        assert!(!message.contains('\u{1b}'), "{message:?}");
        assert!(message.len() < 200, "{message:?}");
    }

    #[test]
    fn an_unknown_tls_mode_or_minimum_protocol_is_refused() {
        let mut s = settings();
        s.security = "tls".into();
        refused(s, Setting::Tls, "smtp.tls");
        let mut s = settings();
        s.min_version = "tls1.1".into();
        refused(s, Setting::MinimumProtocol, "tls1.1");
    }

    #[test]
    fn port_zero_is_refused() {
        let mut s = settings();
        s.port = 0;
        refused(s, Setting::Port, "smtp.port");
    }

    #[test]
    fn a_bad_pin_names_the_setting_it_came_from() {
        let mut s = settings();
        s.fingerprints = Some("sha256:zz".into());
        refused(s, Setting::Fingerprints, "");
        let mut s = settings();
        s.legacy_fingerprints = Some("nothex".into());
        refused(s, Setting::HostFingerprints, "");
        let mut s = settings();
        s.pubkeys = Some("sha256/!!".into());
        refused(s, Setting::Pubkeys, "");
    }
}
