"""The settings the shim reads, the ones ``hg help securesmtp`` documents and
the config items the extension registers are the same set.

Reads are found in the source (every ``ui.config*(b"section", b"name")``
call in python/securesmtp/), documentation in the real ``hg help`` output,
registrations in the extension's ``configtable`` and Mercurial's own
``configitems``. A setting added in one place only fails here.
"""

import os
import re

import pytest

from support import hg

SHIM = os.path.join(hg.ROOT, "python", "securesmtp")

# Read but deliberately not documented: Mercurial's own test switch.
UNDOCUMENTED = {"devel.disableloaddefaultcerts"}

_READ = re.compile(
    r"""ui\.config\w*\(\s*b["']([\w.-]+)["']\s*,\s*(?:b["']([^"']+)["']|(bhost)\b)""",
    re.S,
)


def normalise(section, name):
    name = name.replace("%s", "<host>")
    return "%s.%s" % (section, name)


def settings_read():
    found = {}
    for fname in sorted(os.listdir(SHIM)):
        if not fname.endswith(".py"):
            continue
        with open(os.path.join(SHIM, fname), encoding="utf-8") as fp:
            text = fp.read()
        for m in _READ.finditer(text):
            section, name, hostvar = m.groups()
            key = normalise(section, name if name is not None else "<host>")
            found.setdefault(key, fname)
    return found


def settings_documented():
    code, out, err = hg.run_hg(
        hg.ROOT, ["help", "securesmtp"], hgrc={"extensions": {"securesmtp": ""}}
    )
    assert code == 0, err
    documented = set()
    section = None
    lines = out.splitlines()
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if nxt.startswith("---"):
            m = re.search(r'\("\[(\w+)\]"\)', line)
            section = m.group(1) if m else None
            continue
        if re.fullmatch(r'"[^"]+"(, "[^"]+")*', line):
            for term in re.findall(r'"([^"]+)"', line):
                if "." in term:
                    documented.add(term)
                else:
                    assert section, "setting %r outside a [section] heading" % term
                    documented.add("%s.%s" % (section, term))
    return documented


def settings_registered():
    import securesmtp

    registered = set()
    for section, items in securesmtp.configtable.items():
        for name in items:
            name = name.decode()
            name = re.sub(r"^\.\*", "<host>", name).rstrip("$")
            registered.add("%s.%s" % (section.decode(), name))
    return registered


def registered_by_mercurial(key):
    from mercurial import configitems

    section, name = key.split(".", 1)
    items = configitems.coreitems.get(section.encode())
    if items is None:
        return False
    return items.get(name.replace("<host>", "example.org").encode()) is not None


@pytest.fixture(scope="module")
def sets():
    return settings_read(), settings_documented(), settings_registered()


def test_the_parsers_find_something(sets):
    read, documented, registered = sets
    # Guards against a parser that silently finds nothing.
    assert {"smtp.host", "smtp.timeout", "hostsecurity.<host>:pubkeys"} <= set(read)
    assert {"smtp.host", "smtp.timeout", "hostsecurity.<host>:pubkeys"} <= documented
    assert {"smtp.timeout", "hostsecurity.<host>:pubkeys"} <= registered


def test_every_setting_read_is_documented(sets):
    read, documented, registered = sets
    missing = sorted(k for k in read if k not in documented and k not in UNDOCUMENTED)
    assert missing == [], "read but not in hg help securesmtp: %s" % missing


def test_every_documented_setting_is_read(sets):
    read, documented, registered = sets
    assert sorted(documented - set(read)) == []


def test_every_registered_item_is_read_and_documented(sets):
    read, documented, registered = sets
    assert sorted(registered - set(read)) == []
    assert sorted(registered - documented) == []


def test_every_setting_read_is_registered_somewhere(sets):
    # Reading an item nobody registered is a devel-warn in Mercurial's own
    # test runner (devel.all-warnings).
    read, documented, registered = sets
    unregistered = sorted(
        k for k in read if k not in registered and not registered_by_mercurial(k)
    )
    assert unregistered == []


def test_the_extension_does_not_re_register_mercurial_items(sets):
    read, documented, registered = sets
    assert sorted(k for k in registered if registered_by_mercurial(k)) == []
