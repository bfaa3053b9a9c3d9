"""The reader's metrics middleware counts each request once under its own route template and
status (it keeps the labelled children per label set: a mix-up would show here)."""

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pipelines.reader.prometheus import MetricsMiddleware, ReaderMetrics


def _samples(metrics: ReaderMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        for s in family.samples
    }


def test_each_request_counts_once_under_its_route_and_status():
    app = FastAPI()
    metrics = ReaderMetrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/v1/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"item_id": item_id}

    with TestClient(app) as client:
        for i in range(3):
            assert client.get(f"/v1/items/{i}").status_code == 200
        for _ in range(2):
            assert client.get("/v1/items/x").status_code == 422
        assert client.get("/nowhere").status_code == 404

    got = _samples(metrics)
    route = "/v1/items/{item_id}"

    def labels(route: str, status: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({"method": "GET", "route": route, "status": status}.items()))

    assert got[("newsrec_reader_requests_total", labels(route, "200"))] == 3
    assert got[("newsrec_reader_requests_total", labels(route, "422"))] == 2
    assert got[("newsrec_reader_requests_total", labels("unmatched", "404"))] == 1
    assert got[("newsrec_reader_request_duration_seconds_count", labels(route, "200"))] == 3
    assert got[("newsrec_reader_request_duration_seconds_count", labels(route, "422"))] == 2
    assert sum(v for (name, _), v in got.items() if name == "newsrec_reader_requests_total") == 6
