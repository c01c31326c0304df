"""The instruments declared on ``Metrics``: each instance has its own, all in its registry."""

import pytest
from prometheus_client import Counter

from service.inference.metrics import Instrument, Metrics


def test_each_metrics_has_its_own_instruments_in_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.rejected_inputs.labels("too_large").inc(3)
    assert isinstance(first.rejected_inputs, Counter)
    assert first.rejected_inputs is not second.rejected_inputs
    assert 'mnist_rejected_inputs_total{reason="too_large"} 3.0' in first.exposition().decode()
    assert "too_large" not in second.exposition().decode()


def test_every_declared_instrument_is_exposed_with_its_help() -> None:
    exposition = Metrics().exposition().decode()
    declared = [value for value in vars(Metrics).values() if isinstance(value, Instrument)]
    assert len(declared) == 10
    for instrument in declared:
        assert f"# HELP {instrument.name}" in exposition, instrument.name


def test_an_instrument_is_read_from_an_instance_made_by_metrics_only() -> None:
    metrics = Metrics()
    del metrics.__dict__["model_loads"]
    with pytest.raises(AttributeError, match=r"made by Metrics\.__init__ only"):
        _ = metrics.model_loads
