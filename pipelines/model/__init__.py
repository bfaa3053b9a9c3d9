"""The model stage: training sets from the feature store, LightGBM LambdaRank with a resumable
search, offline evaluation against baselines, the MLflow registry and the promotion gate."""
