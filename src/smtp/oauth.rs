//! OAuth 2.0 bearer tokens over SASL: XOAUTH2 (the form Google and
//! Microsoft document) and OAUTHBEARER (RFC 7628).
//!
//! The token goes in the initial response. A server that refuses it sends
//! a 334 challenge carrying base64 JSON (`{"status":"401",...}`); the client
//! must answer before the server sends its final 5xx: with an empty line
//! for XOAUTH2, with a single `%x01` for OAUTHBEARER (RFC 7628 3.2.3). The
//! decoded JSON is what tells the user why (expired token, wrong scope), so
//! it is kept, sanitized, for the error message.
//!
//! Left out: fetching or refreshing tokens (a helper command does that),
//! and the OpenID discovery fields of the error (`openid-configuration`).

use crate::smtp::sasl::saslname;

/// The XOAUTH2 initial response, before base64.
pub fn xoauth2_message(username: &str, token: &str) -> String {
    format!("user={username}\x01auth=Bearer {token}\x01\x01")
}

/// The OAUTHBEARER initial response (RFC 7628 3.1), before base64.
pub fn oauthbearer_message(username: &str, token: &str, host: &str, port: u16) -> String {
    format!(
        "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01",
        saslname(username)
    )
}

/// A readable summary of the server's error challenge: its `status`,
/// `scope` and `schemes` (and any other string fields), or the sanitized
/// text when it is not a JSON object.
pub fn describe_error(challenge: &[u8]) -> String {
    let text = String::from_utf8_lossy(challenge);
    let fields = json_string_fields(&text);
    let shown = if fields.is_empty() {
        text.trim().to_owned()
    } else {
        fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut clean: String = shown
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.chars().count() > 300 {
        clean = clean.chars().take(300).collect::<String>() + "...";
    }
    clean
}

/// The string (and number) members of a flat JSON object, in order. A tiny
/// reader for the one shape servers send; anything else gives nothing.
fn json_string_fields(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let body = text.trim();
    let Some(body) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) else {
        return out;
    };
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(key) = json_string(&mut chars) else {
            return out;
        };
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ':') {
            chars.next();
        }
        let value = if chars.peek() == Some(&'"') {
            json_string(&mut chars)
        } else {
            let mut raw = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                raw.push(c);
                chars.next();
            }
            Some(raw.trim().to_owned())
        };
        match value {
            Some(value) => out.push((key, value)),
            None => return out,
        }
    }
}

fn json_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    if chars.next()? != '"' {
        return None;
    }
    let mut s = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(s),
            '\\' => {
                let escaped = chars.next()?;
                s.push(match escaped {
                    'n' | 'r' | 't' => ' ',
                    other => other,
                });
            }
            c => s.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_message_has_the_documented_form() {
        // Google's example: user=someuser@example.com^Aauth=Bearer ya29...^A^A
        assert_eq!(
            xoauth2_message("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
            "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
    }

    #[test]
    fn oauthbearer_message_matches_rfc_7628() {
        // RFC 7628 4.1, with the user name in the gs2 header.
        assert_eq!(
            oauthbearer_message(
                "user@example.com",
                "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==",
                "server.example.com",
                143
            ),
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01\
             auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert!(oauthbearer_message("a,b=c", "t", "h", 1).starts_with("n,a=a=2Cb=3Dc,"));
    }

    #[test]
    fn error_challenges_are_summarised() {
        // RFC 7628 4.3 and Google's XOAUTH2 error.
        assert_eq!(
            describe_error(
                br#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#
            ),
            "status=invalid_token, scope=example_scope, openid-configuration=https://example.com/.well-known/openid-configuration"
        );
        assert_eq!(
            describe_error(
                br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#
            ),
            "status=401, schemes=bearer, scope=https://mail.google.com/"
        );
        assert_eq!(
            describe_error(b"{\"status\": 400 , \"x\":\"a\\\"b\"}"),
            "status=400, x=a\"b"
        );
    }

    #[test]
    fn odd_error_challenges_are_shown_sanitized_and_bounded() {
        assert_eq!(describe_error(b"not json\x1b[31m"), "not json?[31m");
        assert!(describe_error(&[b'x'; 1000]).len() < 310);
        assert_eq!(describe_error(b"{\"unterminated"), "{\"unterminated");
    }
}
