"""Who is acting, through which channel, and what their area is."""

from __future__ import annotations

from dataclasses import dataclass, field

from yibao.domain.access import ROLE_PERMS, Perm, Role
from yibao.domain.audit import AuditRecord
from yibao.domain.divisions import NATION, scope_prefix, within
from yibao.domain.errors import forbidden


class Channel:
    API = "api"
    CLI = "cli"
    COUNTER = "counter"
    PORTAL = "portal"
    KIOSK = "kiosk"
    EMPLOYER = "employer"
    TELEPHONE = "telephone"
    HIS = "his"
    FHIR = "fhir"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    kind: str  # staff, institution, terminal, person, employer, system
    id: str
    division: str
    role: Role | None = None
    perms: frozenset[Perm] = field(default_factory=frozenset)
    name: str = ""

    @classmethod
    def staff(cls, *, username: str, division: str, role: Role, name: str = "") -> Actor:
        return cls("staff", username, division, role, ROLE_PERMS[role], name)

    @classmethod
    def employer(cls, *, uscc: str, division: str, name: str = "") -> Actor:
        """An employer acting for itself on its own channel (issue 15): no
        staff permission; what it may do is its own roll, contributions and
        batches, which the services check by its credit code (``id``)."""
        return cls("employer", uscc, division, None, frozenset(), name)

    @property
    def is_employer(self) -> bool:
        return self.kind == "employer"

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls("system", name, NATION, None, frozenset(Perm), name)

    @property
    def scope(self) -> str:
        return scope_prefix(self.division)

    def sees(self, division_code: str) -> bool:
        return within(division_code, self.division)

    def can(self, perm: Perm) -> bool:
        return perm in self.perms

    def require(self, perm: Perm) -> None:
        if perm not in self.perms:
            raise forbidden(
                "access.forbidden",
                "您的岗位无权办理此项业务",
                f"your role may not do this ({perm.value})",
            )

    def record(
        self,
        *,
        channel: str,
        action: str,
        person_id: int | None = None,
        subject: str = "",
        detail: dict[str, object] | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            actor_kind=self.kind,
            actor_id=self.id,
            actor_division=self.division,
            channel=channel,
            action=action,
            person_id=person_id,
            subject=subject,
            detail=dict(detail or {}),
        )
