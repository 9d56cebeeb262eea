"""Valuation maths: sales, market level, price and liquidity models, backtest.

>>> model = fit(sales, attributes, as_of=cutoff)
>>> model.value(token_id, at)          # Valuation with price, interval, P(liquid), why
>>> run_backtest(sales, attributes, cutoff).render()
"""

from valuation.backtest import BacktestReport, run_backtest
from valuation.model import FittedModel, ModelParams, Valuation, fit
from valuation.sales import (
    InvalidSalesData,
    SaleRecord,
    SkippedRow,
    load_sales_csv,
    parse_sales_rows,
)

__all__ = [
    "BacktestReport",
    "FittedModel",
    "InvalidSalesData",
    "ModelParams",
    "SaleRecord",
    "SkippedRow",
    "Valuation",
    "fit",
    "load_sales_csv",
    "parse_sales_rows",
    "run_backtest",
]
