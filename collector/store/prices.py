"""The price table: what a generative model's tokens cost, per million, from a date on.

A YAML file (``DRIFTLINE_PRICES``)::

    currency: USD
    prices:
      - model: gpt-4o          # the model that answered: the response model, else the model
        provider: openai       # optional: only this provider's decisions (else any provider's)
        effective: 2024-08-06  # from this day, 00:00 UTC, until this model's next entry
        input: 2.50            # per million input tokens not read from the cache
        output: 10.00          # per million output tokens, reasoning ones included
        cached_input: 1.25     # per million cached input tokens (absent: the input price)

A decision costs what the entry in force at its time said, one naming its provider before one
that does not. Adding an entry, dated when a price changes, never changes what past decisions
cost; editing an entry's figures does, and is what correcting a wrong price means. Costs are
computed when read from the token counts the ledger holds, so the table changes nothing stored.
A decision without a matching entry, or without token counts, has no cost (None), never 0.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, Float, and_, case, cast, func, literal
from sqlmodel import col

from driftline.collector.core.config_files import ConfigFileError, load_model
from driftline.collector.store.models import Decision

PerMillion = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]


class PriceFileError(ConfigFileError):
    """A price table that cannot be used; each problem names the file, line and key."""


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Annotated[str, Field(min_length=1, max_length=200)]
    provider: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    effective: date
    input: PerMillion
    output: PerMillion
    cached_input: PerMillion | None = None

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.effective, time(), UTC)

    def cost(self, decision: Decision) -> float | None:
        """The decision's cost by this entry; None without token counts."""
        if decision.input_tokens is None and decision.output_tokens is None:
            return None
        cached = decision.cached_input_tokens or 0
        uncached = (decision.input_tokens or 0) - cached
        cached_price = self.input if self.cached_input is None else self.cached_input
        spent = uncached * self.input + cached * cached_price
        return (spent + (decision.output_tokens or 0) * self.output) / 1e6


class PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    prices: list[Price] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_entry_per_day(self) -> PriceFile:
        seen: set[tuple[str | None, str, date]] = set()
        for price in self.prices:
            key = (price.provider, price.model, price.effective)
            if key in seen:
                provider = f" of {price.provider}" if price.provider else ""
                raise ValueError(f"{price.model}{provider} has two prices from {price.effective}")
            seen.add(key)
        return self


@dataclass(frozen=True)
class PriceTable:
    """The entries by (provider, model), each list in effective order."""

    currency: str
    entries: dict[tuple[str | None, str], list[Price]]

    @classmethod
    def of(cls, prices: PriceFile) -> PriceTable:
        entries: dict[tuple[str | None, str], list[Price]] = defaultdict(list)
        for price in sorted(prices.prices, key=lambda p: p.effective):
            entries[(price.provider, price.model)].append(price)
        return cls(prices.currency, dict(entries))

    def price_of(self, decision: Decision) -> Price | None:
        """The entry in force for the decision: its provider's, else any provider's."""
        model = decision.response_model or decision.model_name
        for provider in (decision.provider, None) if decision.provider else (None,):
            entries = self.entries.get((provider, model), [])
            at = bisect_right([p.starts for p in entries], decision.occurred_at)
            if at:
                return entries[at - 1]
        return None

    def cost(self, decision: Decision) -> float | None:
        price = self.price_of(decision)
        return None if price is None else price.cost(decision)

    def cost_column(self) -> ColumnElement[Any]:
        """A decision's cost as SQL, for ranges and sums: the same figure ``cost`` gives, NULL
        where it gives None."""
        model = func.coalesce(col(Decision.response_model), col(Decision.model_name))
        no_tokens = and_(
            col(Decision.input_tokens).is_(None), col(Decision.output_tokens).is_(None)
        )
        whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = [(no_tokens, literal(None))]
        # A provider's own entries first: the first WHEN that holds gives the price.
        for (provider, name), entries in sorted(self.entries.items(), key=_specific_first):
            for n, price in enumerate(entries):
                holds = [model == name, col(Decision.occurred_at) >= price.starts]
                if provider is not None:
                    holds.append(col(Decision.provider) == provider)
                if n + 1 < len(entries):
                    holds.append(col(Decision.occurred_at) < entries[n + 1].starts)
                whens.append((and_(*holds), _cost_sql(price)))
        return case(*whens, else_=literal(None))


def _specific_first(item: tuple[tuple[str | None, str], list[Price]]) -> tuple[bool, str, str]:
    (provider, model), _ = item
    return provider is None, provider or "", model


def _cost_sql(price: Price) -> ColumnElement[Any]:
    cached = func.coalesce(col(Decision.cached_input_tokens), 0)
    uncached = func.coalesce(col(Decision.input_tokens), 0) - cached
    cached_price = price.input if price.cached_input is None else price.cached_input
    output = func.coalesce(col(Decision.output_tokens), 0)
    spent = uncached * price.input + cached * cached_price + output * price.output
    return cast(spent / 1e6, Float)


def load_prices(path: Path) -> PriceTable:
    """The price table in ``path``; PriceFileError naming each mistake's line."""
    prices, _ = load_model(path, PriceFile, "a mapping with 'prices'", PriceFileError)
    return PriceTable.of(prices)
