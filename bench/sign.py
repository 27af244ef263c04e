"""`python -m bench sign [--orders N]`: build + sign + serialize + HMAC one CLOB V2 order, ours vs the official client.

Ours: `OrderSigner.limit_order_with_id` (exact amounts, EIP-712 digest from precomputed hashes, coincurve signature,
fresh salt and timestamp), `order_body` and `l2_headers`. Official: py-clob-client-v2 `create_order`,
`order_to_json_v2`, `json.dumps` and `create_level_2_headers`, with its tick size / neg risk / fee / version caches
pre-filled so that it makes no network call. Both sign the same sequence of orders.

Prints one JSON object per line; the last has `median_us`, `p99_us`, `official_median_us` and `ratio`
(official median / ours).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from trader.domain.numbers import Side
from trader.venues.polymarket.auth import ApiCredentials, l2_headers
from trader.venues.polymarket.signing import OrderSigner, order_body

PRIVATE_KEY = "0x48db5eb81e88e30a34cd681994d285bb24027a9551596eafa1038eb41d694603"  # public test key (vectors k4)
API_KEY = "d2f0c3b4-5a6e-4f70-8a91-b2c3d4e5f607"
API_SECRET = "oJr3MXyojk_2aBh_UOseVkSxUo-jqyTs0N-hSKh43zo="
API_PASSPHRASE = "b8689994d1b05fe7515a4e1f24e1de0c07f51805aa71aaf85751afe3d2d9c913"
TOKEN_ID = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
TICK = "0.01"
WARMUP = 200


def _orders(count: int) -> list[tuple[Side, str, str]]:
    """A repeating mix of sides, prices and sizes (strings, as they come from config or the book)."""
    prices = [f"0.{n:02d}" for n in range(5, 96, 7)]
    sizes = ["5", "10", "13.37", "19.99", "250", "1000.5"]
    return [
        (Side.BUY if n % 2 == 0 else Side.SELL, prices[n % len(prices)], sizes[n % len(sizes)]) for n in range(count)
    ]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time_each(step: Callable[[int], object], count: int) -> list[float]:
    for n in range(min(WARMUP, count)):
        step(n)
    gc.collect()
    samples: list[float] = []
    clock = time.perf_counter_ns
    for n in range(count):
        start = clock()
        step(n)
        samples.append((clock() - start) / 1000)
    return samples


def _ours(orders: list[tuple[Side, str, str]]) -> Callable[[int], object]:
    signer = OrderSigner(PRIVATE_KEY)
    credentials = ApiCredentials(API_KEY, API_SECRET, API_PASSPHRASE)
    tick = Decimal(TICK)

    def step(n: int) -> object:
        side, price, size = orders[n]
        order, _order_id = signer.limit_order_with_id(
            token_id=TOKEN_ID, side=side, price=Decimal(price), size=Decimal(size), tick_size=tick, neg_risk=False
        )
        body = order_body(order, owner=API_KEY, order_type="GTC", post_only=False, defer_exec=False)
        return l2_headers(
            credentials,
            address=signer.address,
            timestamp=int(time.time()),
            method="POST",
            request_path="/order",
            body=body,
        )

    return step


def _official(orders: list[tuple[Side, str, str]]) -> Callable[[int], object]:
    from py_clob_client_v2.client import ClobClient
    from py_clob_client_v2.clob_types import ApiCreds, FeeInfo, OrderArgsV2, PartialCreateOrderOptions, RequestArgs
    from py_clob_client_v2.headers.headers import create_level_2_headers
    from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

    client = ClobClient(
        "http://127.0.0.1:9",  # never contacted
        chain_id=137,
        key=PRIVATE_KEY,
        creds=ApiCreds(API_KEY, API_SECRET, API_PASSPHRASE),
    )
    caches: dict[str, Any] = client.__dict__
    caches["_ClobClient__tick_sizes"][TOKEN_ID] = TICK
    caches["_ClobClient__neg_risk"][TOKEN_ID] = False
    caches["_ClobClient__fee_infos"][TOKEN_ID] = FeeInfo()
    caches["_ClobClient__cached_version"] = 2
    options = PartialCreateOrderOptions(tick_size=TICK, neg_risk=False)

    def step(n: int) -> object:
        side, price, size = orders[n]
        order = client.create_order(
            OrderArgsV2(token_id=TOKEN_ID, price=float(price), size=float(size), side=side.value), options
        )
        payload = order_to_json_v2(order, API_KEY, "GTC", False, False)
        serialized = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        return create_level_2_headers(
            client.signer,
            client.creds,
            RequestArgs(method="POST", request_path="/order", body=payload, serialized_body=serialized),
        )

    return step


def _summary(name: str, samples: list[float]) -> dict[str, object]:
    return {
        "name": name,
        "orders": len(samples),
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(_percentile(samples, 0.99), 1),
        "min_us": round(min(samples), 1),
        "mean_us": round(statistics.fmean(samples), 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sign", description=__doc__)
    parser.add_argument("--orders", type=int, default=5000, help="orders timed for each client (default 5000)")
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be positive")
    orders = _orders(args.orders)

    ours = _time_each(_ours(orders), args.orders)
    print(json.dumps(_summary("ours", ours)), flush=True)
    official = _time_each(_official(orders), args.orders)
    print(json.dumps(_summary("py-clob-client-v2", official)), flush=True)

    median_us, official_median_us = statistics.median(ours), statistics.median(official)
    print(
        json.dumps(
            {
                "bench": "sign",
                "what": "build + sign + serialize + HMAC one limit order",
                "orders": args.orders,
                "median_us": round(median_us, 1),
                "p99_us": round(_percentile(ours, 0.99), 1),
                "official_median_us": round(official_median_us, 1),
                "official_p99_us": round(_percentile(official, 0.99), 1),
                "ratio": round(official_median_us / median_us, 1),
            }
        )
    )
    return 0
