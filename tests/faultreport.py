"""The figures behind README's Guarantees: per fault or crash test, how many injected faults
fired, how many made a write fail, landed a write unanswered, or were absorbed by a retry.
`armed` is counted where a rule is added; a rule that never fired counts nowhere else, as
`tally.rule(...)` takes the rule's own report from GET /_emulator/faults."""
from __future__ import annotations

from dataclasses import asdict, dataclass

KEY = "fault-report"


@dataclass
class Tally:
    armed: int = 0          # fault rules (or crash points) set up
    fired: int = 0          # of those, how many hit a request at least once
    failed_write: int = 0   # fired and the orchestrator saw the write fail (after its retries)
    landed: int = 0         # fired and the write was carried out, its answer lost
    absorbed: int = 0       # fired and a retry made the write succeed
    crashed: int = 0        # crash points where the process died with the write unanswered
    unarmed: int = 0        # fault steps not armed: the step wrote nothing (property tests)

    def rule(self, report: dict, *, failed: bool = False, absorbed: bool = False) -> None:
        """One armed rule's /_emulator/faults report and what the run made of it."""
        if report["hits"] == 0:
            return
        self.fired += 1
        self.landed += report["landed"] > 0
        self.failed_write += failed
        self.absorbed += absorbed

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def line(nodeid: str, figures: dict[str, int]) -> str:
    shown = ", ".join(f"{k} {v}" for k, v in figures.items())
    return f"{nodeid}: {shown}"
