"""The model price table that turns tokens into cost when a span carries no cost attribute."""

from __future__ import annotations

from collections.abc import Mapping

from warehouse import Warehouse


def store_prices(warehouse: Warehouse, prices: Mapping[str, tuple[float, float]]) -> None:
    """Upsert (input, output) USD per million tokens by model; the newest price wins."""
    if not prices:
        return
    models = list(prices)
    warehouse.insert_columns(
        "model_prices",
        ["model", "input_usd_per_mtok", "output_usd_per_mtok"],
        [models, [prices[m][0] for m in models], [prices[m][1] for m in models]],
    )
