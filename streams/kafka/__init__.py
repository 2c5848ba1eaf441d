"""Kafka plumbing: the only package that configures a client or reads a bounded range.

- :mod:`streams.kafka.clients`      presets for every client (group consumer, group-less
  reader, producer, transactional producer, admin), quiet and configured from settings
- :mod:`streams.kafka.messages`     which consumed messages are records; partition counts
- :mod:`streams.kafka.reader`       bounded reads: latest N, a time range, an offset range
- :mod:`streams.kafka.lag`          consumer-group lag on a topic
- :mod:`streams.kafka.topics`       the topic specification file, read and applied
- :mod:`streams.kafka.localbroker`  the local Apache Kafka broker for development and tests
"""
