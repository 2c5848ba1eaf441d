"""The operator's report: one self-contained HTML page of plots, no network fetches.

- :mod:`streams.report.plots`    data to inline SVG fragments (pure)
- :mod:`streams.report.page`     sections to a whole HTML page (pure)
- :mod:`streams.report.collect`  bounded snapshots of topics (Kafka)
- :mod:`streams.report.drift`    reference and current distributions, episodes (pure)
"""
