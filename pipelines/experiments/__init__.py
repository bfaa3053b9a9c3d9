"""Online experiments: arms and cohorts (plan), their lifecycle, the nightly business metric
and the promoter/demoter that acts on it."""
