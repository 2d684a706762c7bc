"""Coverage-guided fuzzing of the payload decoders with atheris (libFuzzer).

The first input byte picks the part, the forced protocol (or detection) and the content type;
the rest is the body. ``decode`` may only answer a table or raise ``DecodeError``: any other
exception is a crash, and libFuzzer's ``-timeout`` turns an input slower than that into a
crash too. Seeds are every protocol's encoding of a few tables plus bodies shaped like the
real clients' (``--seeds DIR`` writes them).

    python bench/fuzz_decoders_atheris.py -runs=500000 -timeout=1 -max_len=1048576 CORPUS_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["inferwatch.codecs"]):
    from inferwatch.codecs import PROTOCOLS, decode, encode
    from inferwatch.errors import DecodeError

PARTS = ("request", "response")
FORCED = (None, *PROTOCOLS)
TYPES = (None, "application/json", "application/x-ndjson", "application/json; charset=latin-1",
         "application/json; charset=utf-16", "application/x-protobuf", "text/plain; charset=bogus")
COUNT = {"runs": 0, "decoded": 0, "rejected": 0}


def pick(first: int) -> tuple[str, str | None, str | None]:
    return PARTS[first & 1], FORCED[(first >> 1) % len(FORCED)], TYPES[(first >> 4) % len(TYPES)]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    part, protocol, ctype = pick(data[0])
    COUNT["runs"] += 1
    try:
        decode(data[1:], part=part, protocol=protocol, content_type=ctype)  # type: ignore[arg-type]
    except DecodeError as exc:
        assert exc.reason, "a DecodeError without a reason"
        COUNT["rejected"] += 1
    else:
        COUNT["decoded"] += 1


def seeds() -> list[bytes]:
    tables = [{"a": [1, 2], "b": [0.5, -1.5], "c": ["x", "y"], "d": [True, False]}, {"f0": [1.0]}]
    out = []
    for t in tables:
        for p in PROTOCOLS:
            for part_i, part in enumerate(PARTS):
                out.append(bytes([part_i]) + encode(t, p, part))  # type: ignore[arg-type]
    out += [
        b"\x00" + b'{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP16","data":[1,2,3,4]},'
                  b'{"name":"x","shape":[2],"datatype":"BYTES","parameters":{"content_type":"base64"},'
                  b'"data":["aGk=","/wA="]}]}',
        b"\x01" + b'{"data":{"tensor":{"values":[1],"shape":[1]},"names":[]},"meta":{}}',
        b"\x01" + b'{"data":{"ndarray":[{"a":1},{"b":2}],"names":[]},"meta":{}}',
        b"\x00" + b'{"data":{"tftensor":{"dtype":"DT_STRING","tensorShape":{"dim":[{"size":1}]},"stringVal":["aGk="]}}}',
        b"\x00" + b'{"instances":[{"image":{"b64":"aGk="},"k":[1,2]}],"signature_name":"s"}',
        b"\x00" + b'{"dataframe_split":{"columns":["a"],"index":[0],"data":[[1]]},"params":{"x":1}}',
        b"\x10" + b'{"a":1}\n{"a":2}\n',
        b"\x00" + b"[" * 300 + b"1" + b"]" * 300,
    ]
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--seeds":
        d = Path(sys.argv[2])
        d.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(seeds()):
            (d / f"seed-{i:03d}").write_bytes(s)
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
