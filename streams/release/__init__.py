"""Releasing a model: score recorded traffic with a candidate, gate it, promote it.

- :mod:`streams.release.replay`     read recorded events, decisions and labels; score them
  with the candidate through the scoring core
- :mod:`streams.release.compare`    champion against candidate: flips, score shift, reason
  codes, fairness, accuracy where labels exist
- :mod:`streams.release.gates`      the promotion gates and their outcomes
- :mod:`streams.release.policy`     the versioned promotion policy beside each model
- :mod:`streams.release.promotion`  the workflow: gate, move the alias, record, announce
- :mod:`streams.release.page`       the comparison drawn as an HTML page
"""
