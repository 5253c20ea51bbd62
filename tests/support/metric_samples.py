"""Reading a Prometheus text exposition in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include labels."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def has_sample(text: str, name: str, **labels: str) -> bool:
    """Whether the text holds a sample of the metric with these labels."""
    return any(
        sample.name == name and labels.items() <= sample.labels.items()
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    )
