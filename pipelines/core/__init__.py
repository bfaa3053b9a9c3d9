"""The shared core every stage stands on: settings, errors, database connections, named SQL,
locks, run records, hashing, crash points and the Dask client switch.

Nothing in here imports a stage; stages import from here.
"""
