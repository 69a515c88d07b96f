"""The errors cred-helper reports: one line saying what went wrong, and a hint saying what to do.

Every failure a user can meet is a CredHelperError; the CLI prints it as
`cred-helper: error: MESSAGE` and `hint: HINT` on stderr and exits with `exit_code`.
Messages never carry secrets: callers pass names and paths, never token or key material.
"""

from __future__ import annotations


class CredHelperError(Exception):
    exit_code = 1
    # A failure that may pass by itself (a peer restarting: refused, reset, timed out, 503),
    # so that a long wait may try again instead of ending.
    transient = False
    # A transport failure: True only when the request cannot have reached the peer (no
    # connection was made); any other failure may have come after a write was done.
    unsent = False
    # The peer's answer was larger than the reader's cap (and was not read).
    too_large = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        lines = [f"cred-helper: error: {self.message}"]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines) + "\n"


class UsageError(CredHelperError):
    """A flag, environment variable or profile key has a value we cannot use."""

    exit_code = 2


class NoServer(UsageError):
    """Nothing names the API server: kubectl passes it (provideClusterInfo), a person typing
    the same command does not (cli.get says what to run instead)."""


class CacheError(CredHelperError):
    """The cache directory or an entry is unsafe to use (symlink, foreign owner, open mode)."""


class ServerError(CredHelperError):
    """The API server refused a request, or could not be reached."""

    status: int | None = None  # the HTTP status of a refusal; None: there was no answer
    status_reason: str = ""  # the `Status` reason of a refusal (`TooManyRequests`, `Expired`)
    cause_types: tuple[str, ...] = ()  # its `details.causes[].reason` (`DisruptionBudget`)
    status_message: str = ""  # its `message`, one line, bounded


class BadShape(ServerError):
    """The API server's JSON is not shaped as the Kubernetes API says."""


class CSRDenied(CredHelperError):
    """The certificate signing request was denied or failed."""


class ApprovalTimeout(CredHelperError):
    """Nobody approved the certificate signing request in time."""


class BadCertificate(CredHelperError):
    """The signer returned a certificate we must not use."""


class StillPending(CredHelperError):
    """A renewal's certificate signing request is not approved yet (the cached certificate is
    still valid, so the caller serves it and a later run collects the new one)."""


def server_text(text: str, limit: int = 300) -> str:
    """A peer's free text (a Status message, a CSR's denial reason) fit to show: one line,
    every other non-printable character (a terminal's escape sequences) as `?`, bounded."""
    line = " ".join(text.split())
    return "".join(c if c.isprintable() else "?" for c in line[:limit])


def os_reason(exc: BaseException) -> str:
    """What went wrong, as the OS says it ("No space left on device"); never None."""
    return getattr(exc, "strerror", None) or type(exc).__name__
