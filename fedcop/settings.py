"""Instance settings, read once from the environment and validated before anything starts.

Every bad value is reported at once, each with the variable's name and what was expected, so an
operator fixes a deployment in one pass instead of one restart per mistake.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fedcop.errors import SettingsError, ValidationError

_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
    r"(:(?P<port>[0-9]{1,5}))?$"
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MIN_SECRET_LENGTH = 32
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./fedcop.db"


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated configuration of one fedcop instance."""

    domain: str
    scheme: str = "https"
    database_url: str = DEFAULT_DATABASE_URL
    # Connections kept open per process (as many again in bursts); None: the backend's
    # default (fedcop/db.py: 32 on SQLite, 10 on PostgreSQL).
    database_pool_size: int | None = None
    secret_key: str = field(default="", repr=False)
    instance_name: str = "fedcop"
    instance_description: str = "A community of practice server."
    admin_email: str = ""
    open_registrations: bool = False
    allow_private_addresses: bool = False
    authorized_fetch: bool = False
    log_level: str = "info"
    # One log line per request from uvicorn. Off by default: the reverse proxy in front
    # (deploy/nginx.conf) keeps the access log, and a line per inbox POST cost fedcop ~10%.
    access_log: bool = False
    remote_actor_max_age_hours: int = 24
    media_dir: Path = Path("media")
    # Inbox load shedding (fedcop/web/throttle.py): beyond these, 503 / 429 with Retry-After.
    inbox_max_in_flight: int = 256
    inbox_max_in_flight_per_domain: int = 64
    inbox_retry_after_seconds: int = 5

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.domain}"

    @property
    def host(self) -> str:
        """The domain without its port: the part of handles after the `@`."""
        return self.domain.rsplit(":", 1)[0] if ":" in self.domain else self.domain

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `FEDCOP_*` variables; one `SettingsError` lists every problem."""
        reader = _EnvReader(os.environ if env is None else env)
        settings = cls(
            domain=reader.domain(),
            scheme=reader.scheme(),
            database_url=reader.database_url(),
            database_pool_size=reader.integer(
                "FEDCOP_DATABASE_POOL_SIZE", 0, minimum=0, maximum=1000
            )
            or None,
            secret_key=reader.secret_key(),
            instance_name=reader.text("FEDCOP_INSTANCE_NAME", "fedcop", max_length=100),
            instance_description=reader.text(
                "FEDCOP_INSTANCE_DESCRIPTION", "A community of practice server.", max_length=2000
            ),
            admin_email=reader.text("FEDCOP_ADMIN_EMAIL", "", max_length=320),
            open_registrations=reader.flag("FEDCOP_OPEN_REGISTRATIONS", default=False),
            allow_private_addresses=reader.flag("FEDCOP_ALLOW_PRIVATE_ADDRESSES", default=False),
            authorized_fetch=reader.flag("FEDCOP_AUTHORIZED_FETCH", default=False),
            remote_actor_max_age_hours=reader.integer(
                "FEDCOP_REMOTE_ACTOR_MAX_AGE_HOURS", 24, minimum=1, maximum=24 * 30
            ),
            media_dir=Path(reader.text("FEDCOP_MEDIA_DIR", "media", max_length=4096)),
            log_level=reader.choice(
                "FEDCOP_LOG_LEVEL", "info", ("critical", "error", "warning", "info", "debug")
            ),
            access_log=reader.flag("FEDCOP_ACCESS_LOG", default=False),
            inbox_max_in_flight=reader.integer(
                "FEDCOP_INBOX_MAX_IN_FLIGHT", 256, minimum=1, maximum=100_000
            ),
            inbox_max_in_flight_per_domain=reader.integer(
                "FEDCOP_INBOX_MAX_IN_FLIGHT_PER_DOMAIN", 64, minimum=1, maximum=100_000
            ),
            inbox_retry_after_seconds=reader.integer(
                "FEDCOP_INBOX_RETRY_AFTER_SECONDS", 5, minimum=1, maximum=3600
            ),
        )
        if reader.problems:
            raise SettingsError(reader.problems)
        return settings


class _EnvReader:
    """Reads variables one at a time, collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def _get(self, name: str, default: str) -> str:
        return self.env.get(name, default).strip()

    def domain(self) -> str:
        value = self._get("FEDCOP_DOMAIN", "").lower()
        match = _HOST_RE.match(value)
        if not value:
            self.problems.append(
                "FEDCOP_DOMAIN is not set: give the host name people reach this instance at, "
                "e.g. cop.example-trust.nhs.uk (or localhost:8000 for a local trial)"
            )
        elif not match:
            self.problems.append(
                f"FEDCOP_DOMAIN={value!r} is not a host name (letters, digits, dots and dashes, "
                "optionally :port); do not include a scheme or a path"
            )
        elif match.group("port") and not 0 < int(match.group("port")) < 65536:
            self.problems.append(f"FEDCOP_DOMAIN={value!r} has a port outside 1-65535")
        return value

    def scheme(self) -> str:
        # https is the only scheme fediverse servers federate with in production; http exists
        # for local networks and tests and so must be asked for explicitly.
        value = self._get("FEDCOP_SCHEME", "https").lower()
        if value not in ("https", "http"):
            self.problems.append(f"FEDCOP_SCHEME={value!r} must be 'https' (or 'http' for tests)")
        return value

    def database_url(self) -> str:
        value = self._get("FEDCOP_DATABASE_URL", DEFAULT_DATABASE_URL)
        try:
            return normalise_database_url(value)
        except ValueError as exc:
            self.problems.append(f"FEDCOP_DATABASE_URL: {exc}")
            return value

    def secret_key(self) -> str:
        value = self._get("FEDCOP_SECRET_KEY", "")
        if value and len(value) < _MIN_SECRET_LENGTH:
            self.problems.append(
                f"FEDCOP_SECRET_KEY is {len(value)} characters; use at least {_MIN_SECRET_LENGTH} "
                "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if value:
            return value
        return _secret_from_file(Path(self._get("FEDCOP_SECRET_KEY_FILE", "fedcop.secret")))

    def flag(self, name: str, *, default: bool) -> bool:
        value = self._get(name, "true" if default else "false").lower()
        if value in _TRUE:
            return True
        if value not in _FALSE:
            self.problems.append(f"{name}={value!r} must be one of true/false, yes/no, on/off, 1/0")
        return False

    def text(self, name: str, default: str, *, max_length: int) -> str:
        value = self._get(name, default)
        if len(value) > max_length:
            self.problems.append(f"{name} is longer than {max_length} characters")
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self._get(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} must be a whole number")
            return default
        if not minimum <= value <= maximum:
            self.problems.append(f"{name}={value} must be between {minimum} and {maximum}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self._get(name, default).lower()
        if value not in allowed:
            self.problems.append(f"{name}={value!r} must be one of {', '.join(allowed)}")
        return value


def normalise_domain(value: str) -> str:
    """A host name (with optional port) in canonical lowercase form, or ValidationError."""
    domain = value.strip().lower()
    if not _HOST_RE.match(domain):
        raise ValidationError(f"{value!r} is not a host name")
    return domain


def normalise_database_url(url: str) -> str:
    """Map the URLs operators write to the async drivers fedcop uses."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(
        f"{url!r} is not supported; use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
    )


def _secret_from_file(path: Path) -> str:
    """Read the generated secret, creating it (mode 0600) on first start.

    A trial instance should need no configuration, yet the secret must survive restarts.
    """
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
