"""The ``bit`` and ``cjson`` libraries Valkey gives scripts; lupa's Lua 5.1 has neither,
so they are Python functions here. (``struct`` and ``cmsgpack`` are not provided.)"""

from __future__ import annotations

import json

from lupa import lua51


def bit_library(table):
    """LuaBitOp's ``bit`` (32-bit operations), as Valkey bundles it."""
    def tobit(x):
        x = int(x) & 0xFFFFFFFF
        return x - 2**32 if x >= 2**31 else x

    def fold(op):
        def f(first, *rest):
            acc = tobit(first)
            for x in rest:
                acc = tobit(op(acc, tobit(x)))
            return acc
        return f

    def rol(x, n):
        x, n = int(x) & 0xFFFFFFFF, int(n) & 31
        return tobit((x << n) | (x >> (32 - n)))

    def ror(x, n):
        return rol(x, 32 - (int(n) & 31))

    def tohex(x, n=8):
        n = int(n)
        digits = "%0*x" % (abs(n), int(x) & (2**(4 * abs(n)) - 1) if abs(n) < 8 else int(x) & 0xFFFFFFFF)
        return (digits.upper() if n < 0 else digits).encode()

    return table({
        b"tobit": tobit, b"bnot": lambda x: tobit(~int(x)),
        b"band": fold(lambda a, b: a & b), b"bor": fold(lambda a, b: a | b),
        b"bxor": fold(lambda a, b: a ^ b),
        b"lshift": lambda x, n: tobit(int(x) << (int(n) & 31)),
        b"rshift": lambda x, n: tobit((int(x) & 0xFFFFFFFF) >> (int(n) & 31)),
        b"arshift": lambda x, n: tobit(tobit(x) >> (int(n) & 31)),
        b"rol": rol, b"ror": ror, b"tohex": tohex,
        b"bswap": lambda x: tobit(int.from_bytes((int(x) & 0xFFFFFFFF).to_bytes(4, "little"), "big")),
    })

def cjson_library(table):
    """``cjson.encode``/``cjson.decode`` (lua-cjson's basics; ``cjson.null`` is nil here)."""
    def plain(value, depth=0):
        if depth > 1000:
            raise ValueError("Cannot serialise, excessive nesting (1001)")
        if type(value) is bytes:
            return value.decode("utf-8", "surrogateescape")
        if value is None or type(value) in (bool, int, float):
            return value
        if lua51.lua_type(value) != "table":
            raise ValueError(f"Cannot serialise {lua51.lua_type(value)}: type not supported")
        keys = list(value.keys())
        if keys and all(type(k) in (int, float) and k >= 1 and k == int(k) for k in keys):
            return [plain(value[i], depth + 1) for i in range(1, int(max(keys)) + 1)]
        if not keys:
            return {}
        return {(k.decode("utf-8", "surrogateescape") if type(k) is bytes else
                 _number_text(k)): plain(v, depth + 1) for k, v in value.items()}

    def encode(value):
        return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogateescape")

    def lua_value(value):
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, list):
            return table([lua_value(v) for v in value])
        if isinstance(value, dict):
            return table({lua_value(k): lua_value(v) for k, v in value.items()})
        return value

    def decode(text):
        return lua_value(json.loads(text.decode("utf-8", "surrogateescape")))

    return table({b"encode": encode, b"decode": decode})


def _number_text(x) -> str:
    return "%d" % x if x == int(x) else "%.14g" % x
