"""Training: datasets from Feast, LightGBM LambdaRank with a resumable search, evaluation."""
