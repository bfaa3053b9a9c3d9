"""The feature stage: Beam ETL from the warehouse into the Feast feature store."""
