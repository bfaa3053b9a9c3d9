"""What the soak found: the switches, every response's verdict and the latencies, as
``soak.json`` (:meth:`Soak.to_dict`) and ``soak.md`` (:meth:`Soak.render`); ``passed`` is
the verdict ``newsrec bench soak`` exits with."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Switch:
    kind: str  # publish | rollback
    batch_id: int | None = None  # the batch that went live
    at_s: float | None = None  # when the switch started, seconds into the load
    took_s: float | None = None
    error: str | None = None


@dataclass
class Soak:
    seconds: float
    connections: int
    users: int
    k: int
    reader_workers: int = 1  # serving.reader.workers of the reader under load
    batches: dict[int, str] = field(default_factory=dict)  # batch id -> model version
    switches: list[Switch] = field(default_factory=list)
    requests: int = 0
    ok: int = 0
    non_2xx: dict[str, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    mismatches: int = 0
    mismatch_examples: list[str] = field(default_factory=list)
    responses_by_batch: dict[int, int] = field(default_factory=dict)
    requests_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    max_ms_during_switches: float = 0.0
    final_live_batch: int | None = None
    expected_live_batch: int | None = None
    # Share of all cores busy just before the load, with the reader idle: other work on the
    # machine competes with the reader, the database and the clients (2 cores here).
    background_cpu_pct: float | None = None
    timeline: list[dict[str, float]] = field(default_factory=list)  # per second: requests, max latency

    @property
    def errors(self) -> int:
        return sum(self.non_2xx.values()) + sum(self.socket_errors.values()) + self.mismatches

    def checks(self) -> list[dict[str, Any]]:
        switched_to = [s.batch_id for s in self.switches if s.batch_id is not None]
        unseen = [b for b in switched_to if not self.responses_by_batch.get(b)]
        failed = [s.kind for s in self.switches if s.error]
        return [
            {"check": "zero errors (non-2xx, socket errors, timeouts, wrong lists)", "value": self.errors,
             "met": self.errors == 0},
            {"check": f"every response a complete list of k={self.k} from the one batch it names",
             "value": f"{self.ok:,} of {self.requests:,}", "met": self.requests > 0 and self.ok == self.requests},
            {"check": "every switch succeeded", "value": len(self.switches) - len(failed),
             "met": bool(self.switches) and not failed},
            {"check": "clients read every batch switched to", "value": f"{len(switched_to) - len(unseen)} of "
             f"{len(switched_to)}", "met": bool(switched_to) and not unseen},
            {"check": "the live batch at the end is the last one switched to", "value": self.final_live_batch,
             "met": self.final_live_batch is not None and self.final_live_batch == self.expected_live_batch},
        ]  # fmt: skip

    @property
    def passed(self) -> bool:
        return all(c["met"] for c in self.checks())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["batches"] = {str(b): v for b, v in self.batches.items()}
        data["responses_by_batch"] = {str(b): n for b, n in self.responses_by_batch.items()}
        return {**data, "errors": self.errors, "passed": self.passed, "checks": self.checks()}

    def render(self) -> str:
        lines = [
            "# Reader soak: load during publish switches",
            "",
            f"{self.connections} connections for {self.seconds:g} s (closed loop, Python asyncio + httpx), "
            f"127.0.0.1, `newsrec reader serve` ({self.reader_workers} uvicorn "
            f"worker{'s' if self.reader_workers != 1 else ''}); {self.users:,} users, k = {self.k}; "
            f"every response checked against the list its batch holds.",
            "",
            f"**{'PASSED' if self.passed else 'FAILED'}**: {self.requests:,} requests, {self.errors} errors, "
            f"{self.requests_per_s:,.0f} req/s; latency p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms, max {self.max_ms:.1f} ms (max while a switch ran: "
            f"{self.max_ms_during_switches:.1f} ms).",
            "",
            "| switch | at s | took s | live batch after | responses from it | error |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for s in self.switches:
            at = "-" if s.at_s is None else f"{s.at_s:.1f}"
            took = "-" if s.took_s is None else f"{s.took_s:.2f}"
            seen = self.responses_by_batch.get(s.batch_id, 0) if s.batch_id is not None else 0
            lines.append(f"| {s.kind} | {at} | {took} | {s.batch_id or '-'} | {seen:,} | {s.error or ''} |")
        lines += ["", "| batch | model version | responses |", "|---:|---|---:|"]
        for batch_id, version in sorted(self.batches.items()):
            lines.append(f"| {batch_id} | {version} | {self.responses_by_batch.get(batch_id, 0):,} |")
        lines += ["", "| check | measured | met |", "|---|---:|:---:|"]
        for c in self.checks():
            lines.append(f"| {c['check']} | {c['value']} | {'yes' if c['met'] else '**no**'} |")
        if self.non_2xx or any(self.socket_errors.values()):
            lines += ["", f"non-2xx: {self.non_2xx}; socket errors: {self.socket_errors}"]
        if self.background_cpu_pct is not None:
            lines += ["", f"Background CPU before the load (reader idle): {self.background_cpu_pct:.0f}% of all cores"
                      + (": other work shared the machine; latencies and req/s are not this stack's own."
                         if self.background_cpu_pct > 10 else ".")]  # fmt: skip
        lines += ["", "Publishes and the rollback each run in their own process, as a nightly run would."]
        if self.mismatch_examples:
            lines += ["", "Wrong lists (first few):", *[f"- {m}" for m in self.mismatch_examples]]
        return "\n".join(lines)
