"""Every CRLOGNO tag in the module's sources is unique and documented."""
import pathlib
import re

TOP = pathlib.Path(__file__).resolve().parents[2]


def test_every_tag_is_unique_and_documented():
    uses = {}
    for src in sorted(TOP.glob("*.c")):
        for m in re.finditer(r"CRLOGNO\((\d{4})\)", src.read_text()):
            uses.setdefault(m.group(1), []).append(src.name)
    assert uses, "no CRLOGNO tags found"
    doc = (TOP / "docs" / "LOGTAGS.md").read_text()
    documented = set(re.findall(r"^\| CR(\d{4}) \|", doc, re.M))
    reused = {t: f for t, f in uses.items() if len(f) > 1}
    assert not reused, "tags used more than once: %r" % reused
    missing = sorted(set(uses) - documented)
    assert not missing, "tags missing from docs/LOGTAGS.md: %r" % missing
    stale = sorted(documented - set(uses))
    assert not stale, "documented tags no longer used: %r" % stale
