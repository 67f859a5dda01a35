from typing import Any, Callable, Optional, final

__all__ = [
    "SmtpError",
    "Session",
    "connect",
    "fingerprint",
    "ascii_host",
    "describe_chain",
    "default_roots",
]

class SmtpError(Exception):
    kind: str
    stage: Optional[str]
    code: Optional[int]
    server_text: Optional[str]
    fingerprint: Optional[str]
    spki: Optional[str]
    setting: Optional[str]
    refused: list[tuple[str, int, str]]
    mechanism: Optional[str]
    detail: Optional[str]

@final
class Session:
    def authenticate(
        self, username: str, secret: str, mechanisms: Optional[list[str]] = ...
    ) -> str: ...
    def auth_mechanism(self, mechanisms: Optional[list[str]] = ...) -> Optional[str]: ...
    def send(self, sender: str, recipients: list[str], message: bytes) -> dict: ...
    def quit(self) -> None: ...
    def verdict(self) -> Optional[dict]: ...
    def info(self) -> dict: ...

def connect(
    *,
    host: str,
    port: int,
    security: str,
    hello_name: str,
    timeout: float,
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
    client_cert: Optional[str] = ...,
    client_key: Optional[str] = ...,
) -> Session: ...
def fingerprint(der: bytes, algorithm: str) -> str: ...
def ascii_host(host: str) -> Optional[str]: ...
def describe_chain(chain: list[bytes]) -> list[dict[str, Any]]: ...
def default_roots() -> tuple[str, int]: ...
