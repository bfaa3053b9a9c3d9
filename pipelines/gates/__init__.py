"""The night's gates: data quality (Great Expectations), drift (Evidently) and the retrain
checker. Each returns a result object that is stored in ``ops``; the run branches on it."""
