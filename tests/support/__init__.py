"""Test support for securesmtp's end-to-end tests.

Importable by the tests (``tests/`` is on ``sys.path`` through conftest.py)
and by scripts (``sys.path.insert(0, "<repo>/tests")``, then
``from support import pki, servers, hg``).
"""
