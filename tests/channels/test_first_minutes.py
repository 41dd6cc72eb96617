"""The first ten minutes of someone trying yibao (issue 15): the package
builds without warnings, ``/`` is a start page, and a sign-in over plain HTTP
from another machine says why it cannot work."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_package_builds_without_a_deprecation_warning(tmp_path):
    # a copy: pip builds a local folder in place, leaving build/ behind
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "src",
        src / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", str(src), "-w", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    said = built.stdout + built.stderr
    assert built.returncode == 0, said
    assert "DeprecationWarning" not in said and "deprecated" not in said.lower(), said
    assert "BuildBackendWarning" not in said, said
    (wheel,) = (tmp_path / "out").glob("yibao-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = whl.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names


def test_readyz_answers_503_and_logs_one_line_when_the_database_is_unreachable(tmp_path, caplog):
    from fastapi.testclient import TestClient

    from tests.helpers import START
    from yibao.app import create_app
    from yibao.clock import FixedClock
    from yibao.config import Settings

    url = f"sqlite:///{tmp_path}/no/such/folder/yibao.sqlite3"
    settings = Settings(
        database_url=url, var_dir=tmp_path / "var", secret_key="t", argon2_profile="fast"
    )
    app = create_app(settings, FixedClock(START))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/readyz")
        alive = client.get("/healthz")
    app.state.services.engine.dispose()
    assert answer.status_code == 503
    assert answer.json()["reason"] == "database unreachable"
    # the process is alive all the same: a load balancer stops sending, and
    # nothing restarts it
    assert alive.status_code == 200
    said = [r.getMessage() for r in caplog.records if r.name == "yibao"]
    assert said == [
        f"readyz: cannot connect to the database 无法连接数据库 {url}: unable to open database file"
    ]
    assert all(r.exc_info is None for r in caplog.records)


# ---------------------------------------------------------------- the start page at /

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def test_the_start_page_links_every_channel_under_the_pages_headers(client):
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert '<html lang="zh-CN">' in html and "医保卡服务" in html
    for href in ("/portal/", "/portal/activate", "/counter/", "/kiosk/activate", "/employer/"):
        assert f'href="{href}"' in html, href
    assert 'href="/docs"' in html
    assert "yibao phone" in html and ".venv/bin/yibao phone" in html
    assert 'href="/?lang=en"' in html


def test_the_start_page_in_english_is_english_throughout(client):
    page = client.get("/?lang=en")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    text = re.sub(r"<[^>]+>", " ", page.text).replace("中文", "")
    assert not CJK.search(text), CJK.findall(text)
    assert "Online service" in text and "Telephone inquiry" in text
    assert 'href="/?lang=zh"' in page.text
    # the choice is kept, as on every other page
    assert '<html lang="en">' in client.get("/").text


def test_other_paths_outside_the_pages_are_unchanged(client):
    assert "content-security-policy" not in client.get("/healthz").headers
    assert client.get("/no-such-thing").headers["content-type"].startswith("application/")


# ---------------------------------------------------------------- signing in over plain HTTP

NEEDS_HTTPS = "YIBAO_COOKIE_SECURE=false"
EXPIRED = "页面已过期"


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def _post_form(client, path: str, fields: dict[str, str]):
    csrf = _csrf(client.get(path).text)
    return client.post(path, data={"csrf": csrf, **fields})


FORMS = [
    ("/portal/login", {"login_id": "330502199007210228", "password": "x"}),
    ("/counter/login", {"username": "wuxing", "password": "x"}),
    ("/kiosk/activate", {"terminal": "T-HZZX-01", "activation_code": "ABCDEFGH"}),
]


@pytest.fixture
def browser_at(app):
    """A client as a browser at ``base``: like one, it keeps a Secure cookie
    but sends it back only over HTTPS (or to loopback, which httpx does not
    know: there the browser's own rule is what the server assumes)."""
    from fastapi.testclient import TestClient

    made = []

    def at(base: str):
        made.append(TestClient(app, base_url=base, raise_server_exceptions=False))
        return made[-1]

    yield at
    for c in made:
        c.close()


@pytest.mark.parametrize(("path", "fields"), FORMS)
def test_a_form_from_another_machine_over_plain_http_says_the_cookie_needs_https(
    browser_at, path, fields
):
    lan = browser_at("http://192.168.1.20:8000")
    answer = _post_form(lan, path, fields)
    assert answer.status_code == 403
    assert "https://" in answer.text and NEEDS_HTTPS in answer.text
    assert EXPIRED not in answer.text
    english = lan.post(f"{path}?lang=en", data={"csrf": "x", **fields})
    assert "session cookie" in english.text and NEEDS_HTTPS in english.text


@pytest.mark.parametrize(("path", "fields"), FORMS)
def test_a_page_that_really_expired_still_says_so(browser_at, clock, path, fields):
    # over HTTPS from the same machine: the cookie was kept, and ran out
    tls = browser_at("https://192.168.1.20")
    csrf = _csrf(tls.get(path).text)
    clock.advance(dt.timedelta(hours=25))  # past the longest, the terminal's day
    later = tls.post(path, data={"csrf": csrf, **fields})
    # over plain HTTP, a browser that sends some cookie kept cookies: not this case
    lan = browser_at("http://192.168.1.20:8000")
    lan.cookies.set("yb_lang", "zh")
    stale = lan.post(path, data={"csrf": "forged-or-old", **fields})
    # and on this machine the browser keeps Secure cookies over plain HTTP
    local = browser_at("http://127.0.0.1:8000").post(path, data={"csrf": "old", **fields})
    for answer in (later, stale, local):
        assert answer.status_code == 403, answer.text
        assert EXPIRED in answer.text and NEEDS_HTTPS not in answer.text


# ---------------------------------------------------------------- the README a newcomer reads


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_the_quick_start_is_two_commands_and_says_how_to_reach_each_channel():
    quick = _section("Quick start")
    (block,) = re.findall(r"```sh\n(.*?)```", quick, re.S)
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ["make run", "make test"]
    for where in ("/portal/", "/counter/", "/kiosk/activate", "/employer/", "/docs"):
        assert where in quick, where
    assert ".venv/bin/yibao phone" in quick and ".venv/bin/yibao --help" in quick
    assert "http://127.0.0.1:8000/" in quick


def test_the_postgresql_section_takes_an_operator_from_nothing_to_serving():
    pg = _section("PostgreSQL")
    for step in (
        "createuser",
        "createdb --owner yibao",
        "CREATE ROLE yibao LOGIN PASSWORD",
        "CREATE DATABASE yibao OWNER yibao",
        "YIBAO_DATABASE_URL=",
        "yibao db upgrade",
        "yibao demo",
        "yibao serve",
        "PostgreSQL 15",
        "YIBAO_SECRET_KEY",
        "YIBAO_AUDIT_KEY",
        "TLS in front",
        "password authentication failed",
    ):
        assert step in pg, step
