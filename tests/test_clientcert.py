"""TLS client certificates (``hostsecurity.<host>:clientcert`` and
``:clientkey``) and SASL EXTERNAL, end to end against an aiosmtpd server
that requires a certificate from its own client CA."""

import datetime
import ssl

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support import hg, sasl, servers
from support.asserts import assert_ok, assert_series_delivered


class ClientPki:
    """A client CA (its PEM for the server) and a certificate for alice."""

    def __init__(self, directory):
        self.dir = directory
        ca = trustme.CA()
        self.ca_file = str(directory / "client-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        issuer = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")]))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca._private_key, hashes.SHA256())
        )
        self.cert = self._write("alice.crt", cert.public_bytes(serialization.Encoding.PEM))
        plain = serialization.NoEncryption()
        self.key = self._write("alice.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, plain))
        self.both = self._write("alice.pem", (directory / "alice.crt").read_bytes() + (directory / "alice.key").read_bytes())
        self.encrypted_key = self._write("alice-enc.key", key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        ))

    def _write(self, name, data):
        path = self.dir / name
        path.write_bytes(data)
        return str(path)


@pytest.fixture
def client_pki(tmp_path):
    return ClientPki(tmp_path)


@pytest.fixture
def cert_server(pki, client_pki):
    started = []

    def make(mode="smtps", **kwargs):
        server = sasl.SaslServer(pki.rsa, mode, client_ca=client_pki.ca_file, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _hgrc(server, pki, mode, cert=None, key=None, **smtp):
    hostsecurity = {}
    if cert:
        hostsecurity["localhost:clientcert"] = cert
    if key:
        hostsecurity["localhost:clientkey"] = key
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert, hostsecurity=hostsecurity)
    cfg["smtp"].update(smtp)
    return cfg


@pytest.mark.parametrize("mode", ["smtps", "starttls"])
def test_client_certificate_and_sasl_external(repo, series, pki, client_pki, cert_server, mode):
    server = cert_server(mode, offer=("EXTERNAL", "PLAIN"))
    cfg = _hgrc(server, pki, mode, client_pki.cert, client_pki.key, auth="external")
    code, out, err = hg.run_hg(repo, hg.email_args() + ["-v"], cfg)
    assert_ok((code, out, err))
    assert_series_delivered(server, series, mode)
    assert server.auth_log == [
        {"mechanism": "EXTERNAL", "user": "alice", "authzid": b"", "ok": True}
    ], server.auth_log
    assert "AUTH EXTERNAL =" in server.commands, server.commands


def test_client_certificate_with_its_key_in_the_same_file(repo, series, pki, client_pki, cert_server):
    server = cert_server("smtps", offer=("EXTERNAL",))
    cfg = _hgrc(server, pki, "smtps", client_pki.both, auth="external")
    assert_ok(hg.run_hg(repo, hg.email_args(), cfg))
    assert_series_delivered(server, series, "smtps")


def test_client_certificate_then_password_login(repo, series, pki, client_pki, cert_server):
    # The certificate opens the TLS door; the login is still a password.
    server = cert_server("smtps", offer=("PLAIN",))
    cfg = _hgrc(server, pki, "smtps", client_pki.cert, client_pki.key,
                username=servers.USER, password=servers.PASSWORD)
    assert_ok(hg.run_hg(repo, hg.email_args(), cfg))
    assert_series_delivered(server, series, "smtps")


def _requiring_server(pki, client_pki):
    # OpenSSL used directly (not asyncio, which hangs up without the alert)
    # sends certificate_required to a TLS 1.3 client without a certificate,
    # as a real mail server does.
    server = servers.BlockingTlsServer(pki.rsa, "smtps")
    server._ctx.verify_mode = ssl.CERT_REQUIRED
    server._ctx.load_verify_locations(cafile=client_pki.ca_file)
    return server.start()


def test_server_requiring_a_certificate_refuses_a_client_without_one(repo, pki, client_pki):
    server = _requiring_server(pki, client_pki)
    try:
        cfg = _hgrc(server, pki, "smtps", auth="external")
        code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    finally:
        server.stop()
    assert code == 255, (code, out, err)
    assert "the server requires a client certificate" in err, err
    assert "hostsecurity.localhost:clientcert" in err, err
    server.assert_nothing_sent()


def test_server_accepts_the_client_certificate_over_openssl(repo, pki, client_pki):
    server = _requiring_server(pki, client_pki)
    try:
        cfg = _hgrc(server, pki, "smtps", client_pki.cert, client_pki.key)
        code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    finally:
        server.stop()
    # Past the handshake this scripted server refuses MAIL (554): the
    # certificate was accepted, the refusal is SMTP's.
    assert code == 255, (code, out, err)
    assert "554" in err and "MAIL FROM" in err, err
    assert server.handshake_error is None, server.handshake_error


def test_encrypted_client_key_is_refused_clearly(repo, pki, client_pki, cert_server):
    server = cert_server("smtps", offer=("EXTERNAL",))
    cfg = _hgrc(server, pki, "smtps", client_pki.cert, client_pki.encrypted_key, auth="external")
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, (code, out, err)
    assert "is encrypted with a passphrase, which is not supported" in err, err
    assert "openssl pkey" in err, err
    assert "hostsecurity.localhost:clientcert" in err, err
    assert server.connections == 0


def test_missing_client_certificate_file_is_refused_before_connecting(repo, pki, client_pki, cert_server):
    server = cert_server("smtps", offer=("EXTERNAL",))
    cfg = _hgrc(server, pki, "smtps", str(client_pki.dir / "nope.pem"), auth="external")
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, (code, out, err)
    assert "hostsecurity.localhost:clientcert does not exist" in err, err
    assert server.connections == 0
