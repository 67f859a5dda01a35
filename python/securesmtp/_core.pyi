"""The Rust core (src/python.rs). Every network wait releases the GIL."""

from typing import Callable, Optional, TypedDict, Union, final

__all__ = [
    "SmtpError",
    "Kind",
    "Stage",
    "Setting",
    "Session",
    "Status",
    "Outcome",
    "Trust",
    "Verdict",
    "connect",
    "ascii_host",
    "timeout_seconds",
    "describe_chain",
    "verify_chain",
]

@final
class Kind:
    """What kind of failure an ``SmtpError`` is."""

    CONFIG: Kind
    CONNECT: Kind
    CONNECT_TIMEOUT: Kind
    TIMEOUT: Kind
    IO: Kind
    PROTOCOL: Kind
    AUTH: Kind
    REPLY: Kind
    START_TLS: Kind
    INJECTION: Kind
    VERIFY: Kind
    TLS: Kind
    TLS_VERSION: Kind
    AUTH_MECHANISM: Kind
    AUTH_SERVER: Kind
    AUTH_PROTOCOL: Kind
    CLEARTEXT_AUTH: Kind
    RECIPIENTS: Kind
    INPUT: Kind
    INTERRUPTED: Kind
    SESSION_CLOSED: Kind
    INTERNAL: Kind
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Stage:
    """Where in the session an ``SmtpError`` happened."""

    CONNECT: Stage
    GREETING: Stage
    HELLO: Stage
    START_TLS: Stage
    HANDSHAKE: Stage
    AUTH: Stage
    MAIL: Stage
    RCPT: Stage
    DATA: Stage
    BODY: Stage
    RESET: Stage
    QUIT: Stage
    @property
    def words(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Setting:
    """The setting an ``SmtpError`` blames: the one a ``Kind.CONFIG`` error
    is about, or the one to change after another failure."""

    HOST: Setting
    PORT: Setting
    TLS: Setting
    TIMEOUT: Setting
    MINIMUM_PROTOCOL: Setting
    FINGERPRINTS: Setting
    HOST_FINGERPRINTS: Setting
    PUBKEYS: Setting
    CIPHERS: Setting
    CA_CERTS: Setting
    CLIENT_CERT: Setting
    AUTH: Setting
    USERNAME: Setting
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class SmtpError(Exception):
    kind: Kind
    stage: Optional[Stage]
    setting: Optional[Setting]
    code: Optional[int]
    server_text: Optional[str]
    fingerprint: Optional[str]
    spki: Optional[str]
    pinned: Optional[str]  # "fingerprints", "pubkeys" or "both"
    refused: list[tuple[str, int, str]]
    mechanism: Optional[str]
    detail: Optional[str]

@final
class Status:
    """What became of one message of a series."""

    ACCEPTED: Status
    REFUSED: Status
    NOT_SENT: Status
    UNKNOWN: Status
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Outcome:
    """One message's outcome, from ``Session.confirm``."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> Status: ...
    @property
    def refused(self) -> list[tuple[str, int, str]]: ...
    @property
    def error(self) -> Optional[SmtpError]: ...

@final
class Trust:
    """How a certificate was trusted, or that it was not."""

    CA: Trust
    SELF_SIGNED: Trust
    COMMON_NAME: Trust
    PIN: Trust
    INSECURE: Trust
    FAILED: Trust
    @property
    def word(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Verdict:
    """The verdict of the certificate check of one handshake."""

    @property
    def sha256(self) -> str: ...
    @property
    def spki(self) -> Optional[str]: ...
    @property
    def chain(self) -> list[bytes]: ...
    @property
    def trust(self) -> Trust: ...
    @property
    def pin(self) -> Optional[str]: ...
    @property
    def legacy_sha1(self) -> bool: ...
    @property
    def failure(self) -> Optional[str]: ...

class Info(TypedDict, total=False):
    peer: str
    greeting: Optional[str]
    capabilities: list[str]
    auth_mechanisms: list[str]
    cleartext_capabilities: Optional[list[str]]
    tls_version: str
    cipher_suite: str
    key_exchange: str

class CertSummary(TypedDict):
    subject: str
    issuer: str
    sans: list[str]
    not_before: str
    not_after: str
    days_left: int
    signature_algorithm: str
    key: str
    sha256: str
    sha1: str
    sha512: str
    spki_sha256: str
    self_signed: bool

@final
class Session:
    def authenticate(
        self, username: str, secret: str, mechanisms: Optional[list[str]] = ...
    ) -> str: ...
    def auth_mechanism(self, mechanisms: Optional[list[str]] = ...) -> Optional[str]: ...
    def submit(self, id: int, sender: str, recipients: list[str], message: bytes) -> None: ...
    def confirm(self) -> tuple[list[Outcome], Optional[SmtpError]]: ...
    def set_timeout(self, timeout: Union[str, float]) -> None: ...
    def quit(self) -> None: ...
    def verdict(self) -> Optional[Verdict]: ...
    def info(self) -> Info: ...

def connect(
    *,
    host: str,
    port: int,
    security: str,
    hello_name: str,
    timeout: Union[str, float],
    ca_file: Optional[str] = ...,
    load_default_roots: bool = ...,
    fingerprints: Optional[str] = ...,
    legacy_fingerprints: Optional[str] = ...,
    pubkeys: Optional[str] = ...,
    insecure: bool = ...,
    min_version: str = ...,
    ciphers: Optional[str] = ...,
    pipelining: bool = ...,
    allow_cleartext_auth: bool = ...,
    inspect_only: bool = ...,
    transcript: Optional[Callable[[str], None]] = ...,
    notice: Optional[Callable[[str], None]] = ...,
    client_cert: Optional[str] = ...,
    client_key: Optional[str] = ...,
) -> Session: ...
def ascii_host(host: str) -> Optional[str]: ...
def timeout_seconds(timeout: Union[str, float]) -> float: ...
def describe_chain(chain: list[bytes]) -> list[CertSummary]: ...
def verify_chain(
    chain: list[bytes],
    host: str,
    cafile: Optional[str] = ...,
    load_default_roots: bool = ...,
    at: Optional[int] = ...,
) -> tuple[bool, str]: ...
