"""TAP output of a runtime-tools validation file, and what one runtime fails that another passes.

Checks are matched by their description with every run of digits blanked, and by how many
checks before them had that same description: the suite numbers checks in the order they ran
and puts random paths and IDs in some descriptions, so neither the number nor the raw text is
stable between two runs of the same file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$")
_DIRECTIVE = re.compile(r"\s*#\s*(SKIP|TODO)\b\s*(.*)$", re.IGNORECASE)
_PLAN = re.compile(r"^1\.\.(\d+)")
_DIGITS = re.compile(r"\d+")


@dataclass
class Check:
    number: int
    ok: bool
    description: str
    directive: str = ""  # "skip", "todo" or ""
    diagnostic: list[str] = field(default_factory=list)  # the YAML block and `#` lines after it

    @property
    def outcome(self) -> str:
        return self.directive or ("pass" if self.ok else "fail")

    def lines(self) -> list[str]:
        head = f"{'ok' if self.ok else 'not ok'} {self.number} - {self.description}"
        if self.directive:
            head += f" # {self.directive.upper()}"
        return [head, *self.diagnostic]


@dataclass
class TapRun:
    """One runtime's run of one file: its checks and how the file itself ended."""

    checks: list[Check]
    plan: int | None  # the sum of the plans of its TAP streams (some files print two)
    returncode: int | None  # None: killed at the timeout
    stderr: str = ""
    runtime_log: str = ""
    leftovers: list[str] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        """The file ran to its end: exit 0 and as many checks as it planned (files that only
        speak when the runtime misbehaves print no plan at all)."""
        planned = self.plan == len(self.checks) or (self.plan is None and not self.checks)
        return self.returncode == 0 and planned

    def keyed(self) -> dict[tuple[str, int], Check]:
        seen: dict[str, int] = {}
        keyed = {}
        for check in self.checks:
            name = _DIGITS.sub("N", check.description)
            seen[name] = seen.get(name, 0) + 1
            keyed[(name, seen[name])] = check
        return keyed


def parse(stdout: str) -> tuple[list[Check], int | None]:
    """The checks and the total plan (`1..N`) of the TAP 13 streams of one file."""
    checks: list[Check] = []
    plan = None
    for line in stdout.splitlines():
        result = _RESULT.match(line)
        if result:
            ok, number, description = result.groups()
            directive = _DIRECTIVE.search(description)
            kind = ""
            if directive:
                kind = directive.group(1).lower()
                description = (description[:directive.start()] + " " + directive.group(2)).strip()
            checks.append(Check(int(number) if number else len(checks) + 1, ok == "ok",
                                description.strip(), kind))
        elif _PLAN.match(line):
            plan = (plan or 0) + int(_PLAN.match(line).group(1))
        elif checks and (line.startswith(" ") or line.startswith("#")):
            checks[-1].diagnostic.append(line)
    return checks, plan


@dataclass
class Regression:
    """A check `reference` passes and `candidate` fails, skips or never reaches (None)."""

    reference: Check
    candidate: Check | None


def regressions(reference: TapRun, candidate: TapRun) -> list[Regression]:
    """Every check that passes in `reference` and does not pass in `candidate`."""
    theirs = candidate.keyed()
    return [Regression(check, theirs.get(key)) for key, check in reference.keyed().items()
            if check.outcome == "pass"
            and (key not in theirs or theirs[key].outcome != "pass")]


def passes_file(run: TapRun) -> bool:
    """What a TAP harness calls a pass: the file completed and no check failed."""
    return run.completed and all(check.outcome != "fail" for check in run.checks)
