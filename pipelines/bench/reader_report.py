"""What the reader benchmark found: every case, the reader's targets and whether they are
met, as ``reader.json`` (:meth:`ReaderBenchmark.to_dict`) and ``reader.md`` (:meth:`render`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.bench import load_generators, reader_world, servers

# What the reader should reach (README, "Benchmarks"): throughput relative to the bare app,
# tail latency at low concurrency, and no errors at all.
TARGET_RATIO = 0.70
TARGET_P99_MS = 5.0
TARGET_P99_CONNECTIONS = 4
BUSY_PCT = 10.0  # background CPU above this before a case: the report warns


@dataclass
class ReaderBenchmark:
    generator: str
    seconds: int
    warmup_seconds: float
    world: reader_world.World
    reader_workers: int = 1
    cases: list[load_generators.LoadResult] = field(default_factory=list)

    def case(self, target: str, connections: int) -> load_generators.LoadResult | None:
        return next((c for c in self.cases if c.target == target and c.connections == connections), None)

    def connections(self) -> list[int]:
        return sorted({c.connections for c in self.cases})

    def ratio(self, connections: int, against: str = "bare") -> float | None:
        reader, bare = self.case("reader", connections), self.case(against, connections)
        if reader is None or bare is None or not bare.requests_per_s:
            return None
        return reader.requests_per_s / bare.requests_per_s

    def checks(self) -> list[dict[str, Any]]:
        """Each target of the reader with the measured value and whether it is met."""
        out: list[dict[str, Any]] = []
        for n in self.connections():
            ratio = self.ratio(n)
            if ratio is not None:
                out.append(
                    {"target": f"reader >= {TARGET_RATIO:.0%} of bare req/s at {n} connections",
                     "value": round(ratio, 3), "met": ratio >= TARGET_RATIO}
                )  # fmt: skip
        low = self.case("reader", TARGET_P99_CONNECTIONS)
        if low is not None:
            out.append(
                {"target": f"reader p99 < {TARGET_P99_MS:g} ms at {TARGET_P99_CONNECTIONS} connections",
                 "value": round(low.p99_ms, 3), "met": low.p99_ms < TARGET_P99_MS}
            )  # fmt: skip
        errors = sum(c.errors for c in self.cases if c.target == "reader")
        out.append({"target": "reader: zero errors (non-2xx and socket)", "value": errors, "met": errors == 0})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "seconds_per_case": self.seconds,
            "warmup_seconds": self.warmup_seconds,
            "world": asdict(self.world),
            "reader_workers": self.reader_workers,
            "cases": [{**asdict(c), "errors": c.errors} for c in self.cases],
            "ratios": {str(n): round(r, 3) for n in self.connections() if (r := self.ratio(n)) is not None},
            "ratios_to_bare_model": {
                str(n): round(r, 3) for n in self.connections() if (r := self.ratio(n, "bare-model")) is not None
            },
            "checks": self.checks(),
        }

    def render(self) -> str:
        w = self.world
        lines = [
            "# Reader load benchmark",
            "",
            f"Load: {self.generator}, {self.seconds} s per case after {self.warmup_seconds:g} s of warm-up, "
            f"127.0.0.1, one server at a time: the reader with {self.reader_workers} uvicorn worker"
            f"{'s' if self.reader_workers != 1 else ''} (serving.reader.workers), the bare apps with 1.",
            f"Live batch {w.batch_id} ({w.model_version}, {w.personal_users:,} users with a personal list"
            f"{', built for this run' if w.built else ''}); requests rotate over {w.known_ids:,} of its users "
            f"and {w.unknown_ids:,} unknown ids (fallback lists).",
            "",
            "| target | connections | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | bytes/resp "
            "| server CPU ms/req | DB CPU ms/req | background CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in sorted(self.cases, key=lambda c: (servers.TARGETS.index(c.target), c.connections)):
            lines.append(
                f"| {c.target} | {c.connections} | {c.requests_per_s:,.0f} | {c.p50_ms:.2f} | {c.p90_ms:.2f} | "
                f"{c.p99_ms:.2f} | {c.max_ms:.1f} | {c.errors} | {c.bytes_per_response:,.0f} | "
                f"{_num(c.server_cpu_ms)} | {_num(c.db_cpu_ms)} | {pct(c.background_cpu_pct)} |"
            )
        lines += ["", "| connections | reader / bare req/s | reader / bare-model req/s |", "|---:|---:|---:|"]
        for n in self.connections():
            shown = [
                f"{r:.0%}" if (r := self.ratio(n, against)) is not None else "-" for against in servers.TARGETS[1:]
            ]
            lines.append(f"| {n} | {' | '.join(shown)} |")
        lines += ["", "| target | measured | met |", "|---|---:|:---:|"]
        for check in self.checks():
            value = check["value"]
            shown = f"{value:.0%}" if "of bare" in check["target"] else f"{value:g}"
            lines.append(f"| {check['target']} | {shown} | {'yes' if check['met'] else '**no**'} |")
        busy = [c.background_cpu_pct for c in self.cases if c.background_cpu_pct is not None]
        if busy and max(busy) > BUSY_PCT:
            lines += ["", f"**The machine was not quiet** (up to {max(busy):.0f}% of all cores busy before a case, "
                      "with the server idle): other work competed for the CPU; compare runs with care."]  # fmt: skip
        if self.generator == "python":
            lines += ["", "wrk was not installed: the Python load generator limits these numbers."]
        lines += ["", "bare: the reader's route returning the constant body as a dict (FastAPI's "
                  "jsonable_encoder + json.dumps); bare-model: the same constant through the reader's response "
                  "model (pydantic straight to JSON bytes, as the reader). The targets compare with bare."]  # fmt: skip
        lines += ["", "server CPU: user + system time of the server's processes (its workers too) per request "
                  "(the load generator and the database run on the same cores); DB CPU: the reader's database "
                  "sessions."]  # fmt: skip
        return "\n".join(lines)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"
