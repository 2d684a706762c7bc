"""Regenerate ``grpc_predict_v2_pb2.py`` / ``.pyi`` from ``grpc_predict_v2.proto``.

Provenance: ``grpc_predict_v2.proto`` is the Open Inference Protocol (KServe V2) gRPC definition
as published by KServe, ``docs/predict-api/v2/grpc_predict_v2.proto`` of github.com/kserve/kserve
(Apache-2.0, header kept, kept verbatim). Seldon Core v2 writes the same ``ModelInferRequest`` /
``ModelInferResponse`` messages to its Kafka topics.

Run with grpcio-tools whose bundled protoc matches the protobuf runtime's major version
(protobuf 6.x: ``grpcio-tools>=1.75,<1.77``), in any venv::

    python -m venv /tmp/protoc && /tmp/protoc/bin/pip install 'grpcio-tools>=1.75,<1.77'
    /tmp/protoc/bin/python collectors/oip_proto/generate.py

Only messages are generated (no gRPC stubs: nothing here serves or calls gRPC). Two changes at
compile time, neither touching the wire format (which is field numbers and types only):

* the package ``inference`` is compiled as ``inferwatch_oip.inference`` and the file registered as
  ``oip_proto/grpc_predict_v2.proto``, so these classes never clash with other compiled copies of
  the same package (tritonclient, kserve, mlserver) in one process: protobuf's pure-Python
  implementation keeps one global symbol table whatever the pool;
* the file goes into a private descriptor pool rather than protobuf's default one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = "grpc_predict_v2.proto"
PACKAGE = "package inference;"
RENAMED = "package inferwatch_oip.inference;"
DEFAULT = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
PRIVATE = ("_POOL = _descriptor_pool.DescriptorPool()  # private: see collectors/oip_proto/generate.py\n"
           "DESCRIPTOR = _POOL.AddSerializedFile(")


def main() -> None:
    source = (HERE / PROTO).read_text()
    if source.count(PACKAGE) != 1:
        raise SystemExit(f"{PROTO}: expected one {PACKAGE!r}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "oip_proto"
        src.mkdir()
        (src / PROTO).write_text(source.replace(PACKAGE, RENAMED))
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp}", f"--python_out={tmp}",
                        f"--pyi_out={tmp}", str(src / PROTO)], check=True)
        for suffix in ("_pb2.py", "_pb2.pyi"):
            shutil.copy(src / f"grpc_predict_v2{suffix}", HERE / f"grpc_predict_v2{suffix}")
    out = HERE / "grpc_predict_v2_pb2.py"
    text = out.read_text()
    if DEFAULT not in text:
        raise SystemExit(f"{out}: the generated code changed shape; check the private-pool rewrite")
    out.write_text(text.replace(DEFAULT, PRIVATE, 1))


if __name__ == "__main__":
    main()
