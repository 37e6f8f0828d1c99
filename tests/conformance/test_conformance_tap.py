"""How runtime-tools' TAP output is read and compared (no runtime involved)."""
from __future__ import annotations

from conformance_tap import TapRun, parse, passes_file, regressions

RUNC = """TAP version 13
ok 1 - has expected hostname
  ---
  {"actual": "mrsdalloway"}
  ...
ok 2 - shared root propagation exposes "/target348456609/mount892511628"
ok 3 # SKIP linux.sysctl not set
ok 4 - has expected hostname
1..4
TAP version 13
1..0
"""


def run(stdout: str, returncode: int = 0) -> TapRun:
    return TapRun(*parse(stdout), returncode)


def test_parse_reads_checks_directives_diagnostics_and_every_plan() -> None:
    checks, plan = parse(RUNC)
    assert [(c.number, c.outcome) for c in checks] == [(1, "pass"), (2, "pass"), (3, "skip"),
                                                      (4, "pass")]
    assert checks[0].diagnostic == ['  ---', '  {"actual": "mrsdalloway"}', "  ..."]
    assert checks[2].description == "linux.sysctl not set"
    assert plan == 4


def test_the_same_checks_with_other_random_paths_are_no_regression() -> None:
    ours = RUNC.replace("348456609/mount892511628", "1/mount2")
    assert regressions(run(RUNC), run(ours)) == []


def test_a_failed_skipped_or_missing_check_that_runc_passes_is_a_regression() -> None:
    ours = run("TAP version 13\nnot ok 1 - has expected hostname\n  ---\n  {}\n  ...\n"
               "ok 2 # SKIP shared root propagation exposes \"/target1/mount2\"\n1..2\n",
               returncode=1)
    found = regressions(run(RUNC), ours)
    assert [(r.reference.number, r.candidate and r.candidate.outcome) for r in found] == \
        [(1, "fail"), (2, "skip"), (4, None)]
    assert found[0].candidate.lines() == ["not ok 1 - has expected hostname", "  ---", "  {}",
                                          "  ..."]


def test_a_file_passes_when_it_completes_without_a_failed_check() -> None:
    assert passes_file(run(RUNC))
    assert passes_file(run(""))  # the *_fail files say nothing when the runtime refuses
    assert not passes_file(run("", returncode=1))
    assert not passes_file(run("ok 1 - a\n1..2\n"))
    assert not passes_file(run("not ok 1 - a\n1..1\n"))
