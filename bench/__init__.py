"""Benchmarks: cold start, DynamoDB calls and capacity per request, store requests, pay notifies, the engine floor.

    python -m bench          # or `make bench`; writes bench/results/*.json and README.md

Modules: `env` (the environment the app needs), `stats` (percentiles), `cold_start`,
`capacity` (a reusable botocore hook that meters DynamoDB calls), `theoretical` (capacity
units from item sizes), `request_cost`, `shop` (cart, product list, checkout and orders on the
demo store, each beside the engine floor), `pay_notify` (WeChat Pay v3 and v2 notifies: payment,
duplicate, refused, refund), `engine_floor`, `report`.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
