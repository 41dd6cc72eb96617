"""The words for an enrolment's state and a person's category, as records show them."""

from __future__ import annotations

# an enrolment's status
STATUS_ZH = {"active": "参保缴费", "suspended": "暂停（欠费）", "terminated": "终止参保"}

# the person's category within the scheme
PSN_TYPE_ZH = {
    "employee": "在职职工",
    "flexible": "灵活就业",
    "retiree": "退休人员",
    "resident": "城乡居民",
}
