"""Code the tests share that is not a test: generators, example records, helpers, probes.

Nothing here is collected by pytest (no ``test_*`` modules); fixtures that build on these
helpers live in the ``conftest.py`` files nearest to the tests that use them.

- :mod:`tests.support.waiting`: :func:`~tests.support.waiting.wait_until`, the one polling loop.
- :mod:`tests.support.kafka`: unique names, group membership, committed offsets, reading a
  consumer's assignment to its end.
- :mod:`tests.support.scorer`: :class:`~tests.support.scorer.ScorerSetup`, one scorer
  deployment on a real broker, and the mixed valid/malformed event streams fed to it.
- :mod:`tests.support.reliability`: engines watched from outside (logs, ``/readyz``,
  ``/metrics``, RSS) for the reliability suite.
- :mod:`tests.support.models`: trained and registered Agrawal models.
- :mod:`tests.support.synthetic`: the synthetic 20-feature model of the monitoring tests.
- :mod:`tests.support.contracts`: one valid example record of every wire contract.
- :mod:`tests.support.report`: report data for the rendering and browser tests.
- :mod:`tests.support.browser`: headless Chromium probes of rendered pages.
"""
