import os

# One audit key for the whole suite (YIBAO_AUDIT_KEY), as a deployment keeps
# one: the template databases (tests/conftest.py) are written with it and
# every test's services verify with it, whatever var/ directory each uses.
# Set here, before conftest builds any settings; a test of the key's own
# handling removes it with monkeypatch.
os.environ.setdefault("YIBAO_AUDIT_KEY", "yibao-test-suite-audit-key-not-secret-0123456789")
