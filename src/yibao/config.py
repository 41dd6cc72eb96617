"""Settings, read from the environment with the ``YIBAO_`` prefix."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_var_dir() -> Path:
    return Path.cwd() / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIBAO_", extra="ignore")

    var_dir: Path = Field(default_factory=default_var_dir)
    database_url: str = ""
    secret_key: str = ""
    # The key the audit chain is keyed with and its checkpoints are signed
    # with (domain/audit.py): kept outside the database, so that someone who
    # can write the database cannot write an entry that verifies. Unset, one
    # is generated into var/audit_key on first run; at least 32 characters.
    audit_key: str = ""
    # Cookies carry the Secure flag unless an operator serves plain HTTP on
    # purpose (the embedded demo on 127.0.0.1 does; browsers treat loopback as
    # a secure context, so the flag stays on there too).
    cookie_secure: bool = True
    session_hours: int = 8
    # Days a produced card waits at a service point before it goes back to
    # the county center (seed 000, part two, item 2: "within the specified time").
    pickup_window_days: int = 30
    # Working days a service point has to complete an application (seed 000).
    service_point_working_days: int = 3
    staff_login_max_failures: int = 5
    staff_login_lock_minutes: int = 15
    # Argon2 cost: "default" for production, "fast" only for test suites.
    argon2_profile: str = "default"
    timezone: str = "Asia/Shanghai"
    upload_max_bytes: int = 5 * 1024 * 1024
    # The telephone line (issue 6): Twilio-compatible webhooks are signed with
    # this token; "0" on the keypad transfers to the agent number; the public
    # base URL is the one the platform signs (else the request's own, honouring
    # X-Forwarded-Proto/Host); recorded prompts are played from the prompt dir.
    twilio_auth_token: str = ""
    ivr_agent_number: str = ""
    ivr_public_url: str = ""
    ivr_prompt_dir: Path | None = None
    # VoiceXML has no request signature: set, a call starts only when the
    # platform's application URL carries it (``/ivr/vxml/start?key=...``).
    ivr_vxml_key: str = ""

    # Days after a cash visit during an equipment failure within which the
    # institution may re-settle it (seed 000, part three, item 3).
    his_resettle_window_days: int = 90
    # how long a FHIR bearer token (POST /fhir/R4/auth/token) is good for
    fhir_token_minutes: int = 15
    # On PostgreSQL, 1101 and 2207 take the fast path (services/settlement/fast_path.py);
    # off, every request takes the general path.
    his_fast_path: bool = True
    # Some provinces report fund_pay_sumamt with the account payment added
    # (his-interface.md, "a setting"). The split, the ledger and the stored
    # settlements do not change: only what 2206, 2207, 2208 and 5203 answer
    # and what 3201 compares the institution's total with.
    his_fund_pay_includes_acct: bool = False
    # Family mutual aid (issue 16): the most holders one relative may be
    # bound to at once (domain.family).
    family_max_holders: int = 3
    # Seconds without a touch before a self-service terminal forgets the person.
    kiosk_idle_seconds: int = 60
    # Hours a terminal's one-time activation code stays good after staff issue it.
    kiosk_activation_hours: int = 24
    # The public look-ups' JSON (/api/v1/public/..., issue 16), per client
    # address, in a moving window: "<count>/<n> <second|minute|hour>" as the
    # ``limits`` library reads it, e.g. "120/minute" or "5 per 10 seconds".
    public_rate_limit: str = "120/minute"

    # ---- issue 17: high availability
    # A standby of the PostgreSQL cluster (one host, e.g. the pg_auto_failover
    # secondary): set, the balance inquiries that only read (the portal's
    # first page, the terminal) read the
    # balance and the postings there, and the page's "as of" is the standby's
    # last replayed transaction. Unset (or on SQLite), they read the primary.
    read_replica_url: str = ""

    # ---- issue 17: observability
    # GET /metrics answers a request carrying "Authorization: Bearer <this>";
    # unset, it answers only loopback and private addresses (127.0.0.0/8,
    # ::1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7).
    metrics_token: str = ""
    # GET /readyz: seconds the database has to answer before "not ready".
    readyz_timeout_seconds: float = 2.0
    # the log lines' lowest level (DEBUG, INFO, WARNING, ERROR)
    log_level: str = "INFO"

    @field_validator("public_rate_limit")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        from limits import parse

        parse(value)  # refused at start-up, not at the first request
        return value

    @field_validator("audit_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value.encode()) < 32:
            raise ValueError("YIBAO_AUDIT_KEY: at least 32 characters (256 bits of a random text)")
        return value

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.var_dir / 'yibao.sqlite3').resolve()}"

    @cached_property
    def effective_secret_key(self) -> str:
        """The configured key, else one generated on first run and kept in var/."""
        if self.secret_key:
            return self.secret_key
        self.var_dir.mkdir(parents=True, exist_ok=True)
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    @cached_property
    def effective_audit_key(self) -> bytes:
        """The configured audit key, else the one generated on first run into
        var/audit_key. Made at most once, also when several processes start
        together: a key lost after entries were written with it would leave
        them unverifiable, so the file is linked into place whole, and the
        first one there wins."""
        if self.audit_key:
            return self.audit_key.encode()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        path = self.var_dir / "audit_key"
        if not path.exists():
            fresh = path.with_name(f".audit_key.{os.getpid()}.{secrets.token_hex(4)}")
            # readable by its owner alone from the start
            fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            try:
                os.link(fresh, path)
            except FileExistsError:
                pass  # another process made it first: theirs is the key
            finally:
                fresh.unlink()
        return path.read_text().strip().encode()


def get_settings() -> Settings:
    return Settings()
