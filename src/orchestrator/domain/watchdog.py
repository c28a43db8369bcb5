"""What may end or flag a run before it ends by itself: budgets, silence, loops. Pure: the supervisor
asks it at every look and acts on its decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from orchestrator.domain.end_reasons import EndReason
from orchestrator.domain.stream_json import RunSummary

StallAction = Literal["flag", "kill", "kill_resume"]


@dataclass(frozen=True)
class Budget:
    usd: float | None = None
    turns: int | None = None
    wall_seconds: float | None = None

    def remaining_after(self, spent: Spent) -> Budget:
        """What is left of this budget once `spent` is gone: a task's purse after its earlier agents."""
        return Budget(
            usd=None if self.usd is None else self.usd - spent.usd,
            turns=None if self.turns is None else self.turns - spent.turns,
            wall_seconds=None if self.wall_seconds is None else self.wall_seconds - spent.seconds,
        )

    def spent_out(self) -> str | None:
        """Which limit has nothing left, if any."""
        if self.usd is not None and self.usd <= 0:
            return "usd"
        if self.turns is not None and self.turns <= 0:
            return "turns"
        if self.wall_seconds is not None and self.wall_seconds <= 0:
            return "wall_seconds"
        return None

    def tighter(self, other: Budget | None) -> Budget:
        """Each limit the smaller of the two (None: no limit)."""
        if other is None:
            return self

        def least(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        turns = least(self.turns, other.turns)
        return Budget(
            usd=least(self.usd, other.usd),
            turns=None if turns is None else int(turns),
            wall_seconds=least(self.wall_seconds, other.wall_seconds),
        )

    def merged_over(self, defaults: Budget) -> Budget:
        return Budget(
            usd=self.usd if self.usd is not None else defaults.usd,
            turns=self.turns if self.turns is not None else defaults.turns,
            wall_seconds=self.wall_seconds if self.wall_seconds is not None else defaults.wall_seconds,
        )


@dataclass(frozen=True)
class Spent:
    """What a task's agents have used so far: cost, turns, and seconds of running."""

    usd: float = 0.0
    turns: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Prices:
    """USD per million tokens, to estimate spend while a run goes on (the result line has the real cost)."""

    input_per_mtok: float = 4.0
    output_per_mtok: float = 20.0

    def estimate(self, summary: RunSummary) -> float:
        return (
            summary.tokens_in_seen * self.input_per_mtok + summary.tokens_out_seen * self.output_per_mtok
        ) / 1e6


@dataclass(frozen=True)
class WatchRules:
    budget: Budget = field(default_factory=Budget)
    prices: Prices = field(default_factory=Prices)
    stall_seconds: float | None = None
    stall_grace_seconds: float = 30.0
    stall_action: StallAction = "flag"
    loop_repeats: int | None = None


@dataclass(frozen=True)
class Flag:
    name: Literal["stalled", "looping"]
    detail: str


@dataclass(frozen=True)
class Stop:
    kind: Literal["budget", "stalled", "looping"]
    reason: str

    @property
    def end_reason(self) -> EndReason:
        return _END_REASONS[self.kind]


_END_REASONS = {
    "budget": EndReason.BUDGET_EXCEEDED,
    "stalled": EndReason.STALLED,
    "looping": EndReason.LOOPING,
}


Decision = Flag | Stop


class Watchdog:
    def __init__(self, rules: WatchRules, started_at: float) -> None:
        self.rules = rules
        self._started = started_at
        self.flags: dict[str, float] = {}

    def spent(self, summary: RunSummary) -> float:
        estimate = self.rules.prices.estimate(summary)
        return max(estimate, summary.cost_usd or 0.0)

    def check(self, summary: RunSummary, now: float, last_output: float) -> list[Decision]:
        budget = self.rules.budget
        elapsed = now - self._started
        if budget.turns is not None and summary.assistant_messages > budget.turns:
            return [Stop("budget", f"budget_exceeded: {summary.assistant_messages} turns > {budget.turns}")]
        spent = self.spent(summary)
        if budget.usd is not None and spent > budget.usd:
            return [Stop("budget", f"budget_exceeded: ${spent:.4f} > ${budget.usd:.4f}")]
        if budget.wall_seconds is not None and elapsed > budget.wall_seconds:
            return [
                Stop("budget", f"budget_exceeded: {elapsed:.1f} s > {budget.wall_seconds:g} s of wall time")
            ]
        decisions: list[Decision] = []
        silent = now - last_output
        if self.rules.stall_seconds is not None and silent > self.rules.stall_seconds:
            decisions += self._escalate("stalled", f"no output for {silent:.0f} s", now)
        elif "stalled" in self.flags:
            del self.flags["stalled"]
        repeats = self.rules.loop_repeats
        if repeats is not None and summary.same_tool_repeats >= repeats:
            decisions += self._escalate(
                "looping", f"the same tool call {summary.same_tool_repeats} times in a row", now
            )
        return decisions

    def next_due(self, now: float, last_output: float) -> float | None:
        """The first time after `now` at which `check` may decide otherwise with no new output: the
        wall-time budget's end, the silence limit, a flag's grace running out. None when only output can."""
        due = []
        if self.rules.budget.wall_seconds is not None:
            due.append(self._started + self.rules.budget.wall_seconds)
        if self.rules.stall_seconds is not None and "stalled" not in self.flags:
            due.append(last_output + self.rules.stall_seconds)
        if self.rules.stall_action != "flag":
            due += [flagged + self.rules.stall_grace_seconds for flagged in self.flags.values()]
        return min((t for t in due if t > now), default=None)

    def _escalate(self, name: Literal["stalled", "looping"], detail: str, now: float) -> list[Decision]:
        if name not in self.flags:
            self.flags[name] = now
            return [Flag(name, detail)]
        acting = self.rules.stall_action != "flag" and now - self.flags[name] > self.rules.stall_grace_seconds
        return [Stop(name, f"{name}: {detail}")] if acting else []
