"""Offsets are released only for the fully delivered prefix of batches."""

from __future__ import annotations

from streams.engine.delivery import DeliveryLedger

P0, P1 = ("events", 0), ("events", 1)


def test_out_of_order_acknowledgements_wait_for_the_prefix() -> None:
    ledger = DeliveryLedger()
    a = ledger.open({P0: 9}, outputs=2)
    b = ledger.open({P0: 19, P1: 3}, outputs=2)
    c = ledger.open({P1: 7}, outputs=1)
    c.acknowledge(None)
    b.acknowledge(None)
    b.acknowledge(None)
    assert ledger.release() == {}
    assert ledger.in_flight == 2
    a.acknowledge(None)
    assert ledger.release() == {}
    a.acknowledge(None)
    assert ledger.release() == {P0: 20, P1: 8}
    assert ledger.in_flight == 0 and ledger.release() == {}


def test_a_failed_delivery_blocks_everything_after_it() -> None:
    ledger = DeliveryLedger()
    a = ledger.open({P0: 4}, outputs=1)
    b = ledger.open({P0: 9}, outputs=1)
    c = ledger.open({P0: 14}, outputs=1)
    a.acknowledge(None)
    b.acknowledge("Broker: Message size too large")
    c.acknowledge(None)
    assert ledger.release() == {P0: 5}
    assert ledger.failure() == "Broker: Message size too large"
    assert ledger.release() == {}
    ledger.clear()
    assert ledger.failure() is None and ledger.in_flight == 0


def test_a_batch_without_outputs_is_released_at_once() -> None:
    ledger = DeliveryLedger()
    ledger.open({P1: 0}, outputs=0)
    released = []
    assert ledger.release(released.append) == {P1: 1}
    assert len(released) == 1
