"""An aiosmtpd server with the SASL mechanisms aiosmtpd lacks.

``SaslServer(cert, mode, offer=[...], ...)`` is a :class:`servers.SmtpServer`
whose handler adds XOAUTH2, OAUTHBEARER, SCRAM-SHA-256 and CRAM-MD5 (server
side, written from the RFCs with hashlib/hmac, independent of the client's
Rust code) and offers exactly the mechanisms in ``offer``. Every exchange
is recorded in ``auth_log`` (mechanism, what the client sent, decoded, and
whether it succeeded), so tests can assert what the server received.

Knobs for failures the client must catch:

- ``token``: the only OAuth2 access token accepted; a wrong one gets the
  base64 JSON error challenge, then ``535``.
- ``scram_final``: where the SCRAM server-final goes: ``"challenge"`` (a 334
  the client answers with an empty line, RFC 4954), ``"235"`` (inside the
  success reply) or ``"none"`` (left out).
- ``forge_signature``: the SCRAM server signature is wrong, as from a server
  that does not know the password.
- ``refuse_with``: every PLAIN/LOGIN login gets this reply instead
  (e.g. Microsoft's ``550 5.7.30 ...``).
- ``client_ca``: require a TLS client certificate issued by this CA (PEM
  file); EXTERNAL then logs in as the certificate's common name.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl

from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword, auth_mechanism

from . import servers

ALL = ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256", "CRAM-MD5", "EXTERNAL")
TOKEN = "ya29.a0-Test-Access-Token.Zm9vYmFy"
OAUTH_ERROR = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}


def token_forms(user=servers.USER, token=TOKEN):
    """Every spelling of the token that must never appear in any output."""
    forms = {
        token,
        base64.b64encode(token.encode()).decode(),
        base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()).decode(),
    }
    return sorted(forms) + servers.secret_forms(user=user, password=token)


class _SaslHandler(servers._Handler):
    @auth_mechanism("XOAUTH2")
    async def auth_xoauth2(self, server, args):
        return await self._server._oauth(server, args, "XOAUTH2")

    @auth_mechanism("OAUTHBEARER")
    async def auth_oauthbearer(self, server, args):
        return await self._server._oauth(server, args, "OAUTHBEARER")

    @auth_mechanism("SCRAM-SHA-256")
    async def auth_scram(self, server, args):
        return await self._server._scram(server, args)

    @auth_mechanism("CRAM-MD5")
    async def auth_cram(self, server, args):
        return await self._server._cram(server, args)

    @auth_mechanism("EXTERNAL")
    async def auth_external(self, server, args):
        return await self._server._external(server, args)


async def _initial(server, args):
    if len(args) > 1:
        if args[1] == "=":
            return b""
        try:
            return base64.b64decode(args[1], validate=True)
        except ValueError:
            return None
    blob = await server.challenge_auth("")
    return None if blob is MISSING else blob


class _SaslSMTP(servers._RecordingSMTP):
    # AUTH continuation lines may be 12288 octets (RFC 4954 4); aiosmtpd
    # reads them within this limit (1001 by default). Command lines stay
    # limited to 512 octets (command_size_limit).
    line_length_limit = 12288


class _SaslController(servers._Controller):
    def factory(self):
        self._recorder.connections += 1
        return _SaslSMTP(self.handler, self._recorder, **self.SMTP_kwargs)


class SaslServer(servers.SmtpServer):
    handler_class = _SaslHandler
    controller_class = _SaslController

    def __init__(
        self,
        cert=None,
        mode="starttls",
        offer=ALL,
        user=servers.USER,
        password=servers.PASSWORD,
        token=TOKEN,
        scram_final="challenge",
        forge_signature=False,
        refuse_with=None,
        client_ca=None,
        **kwargs,
    ):
        super().__init__(cert, mode, user=user, password=password, **kwargs)
        if client_ca is not None:
            # A server that requires a client certificate from this CA.
            self.ssl_context.verify_mode = ssl.CERT_REQUIRED
            self.ssl_context.load_verify_locations(cafile=client_ca)
        self.token = token
        self.scram_final = scram_final
        self.forge_signature = forge_signature
        self.refuse_with = refuse_with
        self.auth_log = []
        excluded = [m for m in ALL if m not in offer]
        self._kwargs["auth_exclude_mechanism"] = excluded


    def _record(self, **entry):
        with self._lock:
            self.auth_log.append(entry)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = super()._authenticate(server, session, envelope, mechanism, auth_data)
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        if self.refuse_with:
            self._record(mechanism=mechanism, user=login, ok=False)
            return AuthResult(success=False, handled=False, message=self.refuse_with)
        self._record(mechanism=mechanism, user=login, ok=ok.success)
        return ok

    async def _oauth(self, server, args, mechanism):
        blob = await _initial(server, args)
        if blob is None:
            self._record(mechanism=mechanism, ok=False, error="no initial response")
            return AuthResult(success=False, handled=False, message="501 5.5.2 bad response")
        text = blob.decode("utf-8", "replace")
        if mechanism == "XOAUTH2":
            fields = dict(f.split("=", 1) for f in text.split("\x01") if "=" in f)
            user = fields.get("user")
        else:
            gs2, _, rest = text.partition("\x01")
            user = gs2.split(",")[1][2:] if gs2.startswith("n,a=") else None
            fields = dict(f.split("=", 1) for f in rest.split("\x01") if "=" in f)
        token = (fields.get("auth") or "").replace("Bearer ", "", 1)
        ok = user == self.user and token == self.token
        entry = dict(mechanism=mechanism, user=user, fields=fields, ok=ok, token_ok=token == self.token)
        if ok:
            self._record(**entry)
            return AuthResult(success=True, auth_data=user)
        answer = await server.challenge_auth(json.dumps(OAUTH_ERROR))
        entry["error_answer"] = None if answer is MISSING else answer
        self._record(**entry)
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(
            success=False,
            handled=False,
            message="535 5.7.8 Username and Password not accepted",
        )

    async def _scram(self, server, args):
        first = await _initial(server, args)
        if first is None or not first.startswith(b"n,,"):
            self._record(mechanism="SCRAM-SHA-256", ok=False, error="bad client-first")
            return AuthResult(success=False, handled=False, message="501 5.5.2 bad client-first")
        bare = first[3:].decode()
        attrs = dict(a.split("=", 1) for a in bare.split(","))
        user, cnonce = attrs["n"], attrs["r"]
        nonce = cnonce + secrets.token_hex(8)
        salt = os.urandom(16)
        iterations = 4096
        server_first = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(salt).decode(), iterations)
        final = await server.challenge_auth(server_first)
        if final is MISSING:
            self._record(mechanism="SCRAM-SHA-256", user=user, ok=False, error="cancelled")
            return AuthResult(success=False, handled=True)
        final = final.decode()
        without_proof, _, proof = final.rpartition(",p=")
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        auth_message = ("%s,%s,%s" % (bare, server_first, without_proof)).encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        expected = bytes(a ^ b for a, b in zip(client_key, signature))
        ok = (
            user == self.user
            and without_proof == "c=biws,r=" + nonce
            and base64.b64decode(proof) == expected
        )
        entry = dict(mechanism="SCRAM-SHA-256", user=user, client_final=without_proof, ok=ok)
        if not ok:
            self._record(**entry)
            return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication failed")
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        server_signature = hmac.new(server_key, auth_message, "sha256").digest()
        if self.forge_signature:
            server_signature = bytes(b ^ 0xFF for b in server_signature)
        server_final = "v=" + base64.b64encode(server_signature).decode()
        if self.scram_final == "challenge":
            answer = await server.challenge_auth(server_final)
            entry["final_answer"] = None if answer is MISSING else answer
            self._record(**entry)
            if answer is MISSING:
                return AuthResult(success=False, handled=True)
            return AuthResult(success=True, auth_data=user)
        self._record(**entry)
        if self.scram_final == "235":
            message = "235 2.7.0 " + base64.b64encode(server_final.encode()).decode()
            return AuthResult(success=True, auth_data=user, message=message)
        return AuthResult(success=True, auth_data=user)

    async def _cram(self, server, args):
        challenge = "<%s.%d@sasl.test>" % (secrets.token_hex(6), os.getpid())
        answer = await server.challenge_auth(challenge)
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        user, _, digest = answer.decode().rpartition(" ")
        expected = hmac.new(self.password.encode(), challenge.encode(), "md5").hexdigest()
        ok = user == self.user and digest == expected
        self._record(mechanism="CRAM-MD5", user=user, ok=ok)
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    async def _external(self, server, args):
        # The identity is the TLS client certificate's (RFC 4422 A.1).
        authzid = await _initial(server, args)
        peer = server.transport.get_extra_info("peercert") or {}
        names = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
        ok = bool(names) and authzid == b""
        self._record(mechanism="EXTERNAL", user=names[0] if names else None, authzid=authzid, ok=ok)
        return AuthResult(success=ok, handled=False, auth_data=names[0] if ok else None)
