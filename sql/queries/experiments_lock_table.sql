-- Serialise experiment creation: the one-running-experiment and unique-name checks hold till commit.
LOCK TABLE ops.experiments IN SHARE ROW EXCLUSIVE MODE
