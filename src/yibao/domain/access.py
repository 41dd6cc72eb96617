"""Staff roles, what each may do, and at which level of division it works.

Social Insurance Law art. 7: each administrative department manages within
its own administrative area; so every role is bound to a home division and
sees only that division's subtree.
"""

from __future__ import annotations

from enum import StrEnum

from yibao.domain.divisions import Level


class Role(StrEnum):
    SERVICE_POINT_CLERK = "service_point_clerk"
    COUNTY_CLERK = "county_clerk"
    CONTRIBUTION_CLERK = "contribution_clerk"
    COUNTY_ADMIN = "county_admin"
    CITY_ADMIN = "city_admin"
    PROVINCE_ADMIN = "province_admin"
    NATIONAL_ADMIN = "national_admin"


class Perm(StrEnum):
    PERSON_READ = "person.read"
    PERSON_WRITE = "person.write"
    CARD_APPLY = "card.apply"  # service point and delegate paths
    CARD_APPLY_CENTER = "card.apply_center"  # county center and employer paths
    CARD_COUNTER = "card.counter"  # collect, report lost, PIN reset
    CARD_MANAGE = "card.manage"  # production, freeze, reissue
    # A card produced for a service point's application is received there
    # and made ready for pickup (seed 000, part two, item 2).
    CARD_RECEIVE = "card.receive"
    # A card handed back (emigration, transfer out, death) or sent back
    # after the pickup window is cancelled at the city, district or county
    # centers or at a service point (seed 000, part three, item 4).
    CARD_CANCEL = "card.cancel"
    EMPLOYER_WRITE = "employer.write"
    INSTITUTION_WRITE = "institution.write"
    STAFF_MANAGE = "staff.manage"
    CALENDAR_WRITE = "calendar.write"
    AUDIT_READ = "audit.read"
    # the medical catalogue the public look-ups show (issue 16); an
    # institution's public fields go with INSTITUTION_WRITE
    CATALOGUE_WRITE = "catalogue.write"
    # the bureau's dashboard and its downloads (issue 17): counts and sums of
    # the area, no person's data; county center clerks and every
    # administrator, not service points nor contribution clerks
    REPORT_READ = "report.read"


ROLE_LEVEL: dict[Role, Level] = {
    Role.SERVICE_POINT_CLERK: Level.STREET,
    Role.COUNTY_CLERK: Level.COUNTY,
    Role.CONTRIBUTION_CLERK: Level.COUNTY,
    Role.COUNTY_ADMIN: Level.COUNTY,
    Role.CITY_ADMIN: Level.CITY,
    Role.PROVINCE_ADMIN: Level.PROVINCE,
    Role.NATIONAL_ADMIN: Level.NATION,
}

_READ = {Perm.PERSON_READ}
_ADMIN = _READ | {Perm.STAFF_MANAGE, Perm.AUDIT_READ, Perm.REPORT_READ}

ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.SERVICE_POINT_CLERK: frozenset(
        _READ
        | {
            Perm.PERSON_WRITE,
            Perm.CARD_APPLY,
            Perm.CARD_COUNTER,
            Perm.CARD_RECEIVE,
            Perm.CARD_CANCEL,
        }
    ),
    Role.COUNTY_CLERK: frozenset(
        _READ
        | {
            Perm.PERSON_WRITE,
            Perm.CARD_APPLY,
            Perm.CARD_APPLY_CENTER,
            Perm.CARD_COUNTER,
            Perm.CARD_MANAGE,
            Perm.CARD_RECEIVE,
            Perm.CARD_CANCEL,
            Perm.EMPLOYER_WRITE,
            Perm.REPORT_READ,
        }
    ),
    Role.CONTRIBUTION_CLERK: frozenset(_READ | {Perm.PERSON_WRITE, Perm.EMPLOYER_WRITE}),
    Role.COUNTY_ADMIN: frozenset(_ADMIN),
    # the city center takes returned cards back too (seed 000, 3.4)
    Role.CITY_ADMIN: frozenset(
        _ADMIN
        | {Perm.INSTITUTION_WRITE, Perm.CALENDAR_WRITE, Perm.CARD_CANCEL, Perm.CATALOGUE_WRITE}
    ),
    Role.PROVINCE_ADMIN: frozenset(
        _ADMIN | {Perm.INSTITUTION_WRITE, Perm.CALENDAR_WRITE, Perm.CATALOGUE_WRITE}
    ),
    Role.NATIONAL_ADMIN: frozenset(
        _ADMIN | {Perm.INSTITUTION_WRITE, Perm.CALENDAR_WRITE, Perm.CATALOGUE_WRITE}
    ),
}

ROLE_ZH = {
    Role.SERVICE_POINT_CLERK: "街道/乡镇服务点经办员",
    Role.COUNTY_CLERK: "县医保中心经办员",
    Role.CONTRIBUTION_CLERK: "征缴经办员",
    Role.COUNTY_ADMIN: "县级行政管理员",
    Role.CITY_ADMIN: "市级行政管理员",
    Role.PROVINCE_ADMIN: "省级行政管理员",
    Role.NATIONAL_ADMIN: "国家级行政管理员",
}
