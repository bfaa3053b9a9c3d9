"""The warehouse stage: schema migrations, the simulator and the MIND importer."""
