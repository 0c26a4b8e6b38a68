"""Panic readiness: the checks and their fixes (checks), and the report for people and
machines (report), for the metrics, the landing page and `panicwatch check`."""
