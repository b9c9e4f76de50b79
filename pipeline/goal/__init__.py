"""Compress to a goal: speed-up / size / accuracy goals, per-layer curves, allocation, candidates verified on the artifact.

Modules: ``config`` (goals, the recipe's ``goal:`` block, the command-line options), ``curves`` (layer
shapes, sensitivity, latency tables), ``baseline`` (what the search starts from), ``verify`` (goals
checked on a candidate's report), ``search`` (the loop, resume, shipping), ``command`` (``compress run``).
"""
