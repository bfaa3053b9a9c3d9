"""The optional Neptune mirror writes the registered run in offline mode (the hosted service
closed in March 2026; MLflow stays the registry of record)."""

from pipelines.model import registry


def test_mirror_is_off_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("NEWSREC_NEPTUNE_MIRROR", raising=False)
    assert registry.mirror_to_neptune("1", {"ndcg@10": 0.5}, {"logical_date": "2026-01-01"}) is None


def test_mirror_writes_an_offline_run(monkeypatch, tmp_path):
    monkeypatch.setenv("NEWSREC_NEPTUNE_MIRROR", "1")
    monkeypatch.setenv("NEPTUNE_DATA_DIRECTORY", str(tmp_path / "neptune"))
    folder = registry.mirror_to_neptune("7", {"ndcg@10": 0.61}, {"logical_date": "2026-01-01", "data_window": "a..b"})
    assert folder == str(tmp_path / "neptune")
    written = [p for p in (tmp_path / "neptune").rglob("*") if p.is_file()]
    assert written, "no offline run files"
    assert any(b"0.61" in p.read_bytes() or b"ndcg_at_10" in p.read_bytes() for p in written)
