"""The bytes real client libraries send, produced by those libraries' own code.

Installed by ``make test`` (the ``clients`` extra plus three ``--no-deps`` packages, see the
Makefile): ``cloudevents`` 2.x (both its APIs), ``tritonclient[http]``, ``mlserver`` (its codecs
and types), ``seldon-core`` 1.18 (its wrapper's response builder), ``kserve`` (its v2
``InferResponse``). mlserver, seldon-core and kserve pin versions of starlette, protobuf, click
and prometheus-client that would break this project's own pins, so they are installed without
their dependencies and only the modules that build payloads are imported:

* ``mlserver.codecs``/``mlserver.types`` and ``kserve.protocol.infer_type`` are loaded without
  their package ``__init__`` (which starts importing the model servers: FastAPI apps, gRPC,
  Kubernetes clients). The payload modules themselves run unchanged.
* seldon-core's generated protobuf modules predate protobuf 4, so protobuf's pure-Python
  implementation is selected (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``), as
  protobuf's own upgrade notes advise.

Every helper returns what goes on the wire: ``(headers, body bytes)`` or body bytes.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import types
from typing import Any

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

import numpy as np


def _without_package_init(package: str) -> None:
    """Make ``package`` importable as a bare namespace so its submodules load without its
    ``__init__`` (which imports the whole model server)."""
    if package in sys.modules:
        return
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{package} is not installed: run `make venv` (the clients extra)")
    stub = types.ModuleType(package)
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules[package] = stub


def mlserver() -> tuple[Any, Any]:
    """``(mlserver.codecs, mlserver.types)``."""
    _without_package_init("mlserver")
    return importlib.import_module("mlserver.codecs"), importlib.import_module("mlserver.types")


def kserve_infer_type() -> Any:
    _without_package_init("kserve")
    return importlib.import_module("kserve.protocol.infer_type")


def seldon_response(model: Any, request: dict[str, Any], raw_response: Any) -> bytes:
    """What the seldon-core 1.18 Python wrapper answers for ``raw_response`` from ``model.predict``
    (``construct_response_json``, serialised as its Flask app does, with ``json.dumps``)."""
    from seldon_core.utils import construct_response_json

    return json.dumps(construct_response_json(model, False, request, raw_response)).encode()


def seldon_message(**fields: Any) -> bytes:
    """A ``SeldonMessage`` built with seldon-core's protobuf classes and serialised as its
    executor and wrapper do (``seldon_core.utils.seldon_message_to_json``, proto3 JSON, then
    ``json.dumps``). ``fields`` are the ``DefaultData`` fields (``tensor=``, ``tftensor=``, ``names=``)."""
    from seldon_core.proto import prediction_pb2
    from seldon_core.utils import seldon_message_to_json

    msg = prediction_pb2.SeldonMessage(data=prediction_pb2.DefaultData(**fields))
    return json.dumps(seldon_message_to_json(msg)).encode()


def tf_tensor(dtype: str, shape: list[int], **values: Any) -> Any:
    """A TensorFlow ``TensorProto`` from seldon-core's bundled generated classes (``dtype`` like
    ``"DT_HALF"``; ``values`` the proto fields, ``half_val=``, ``tensor_content=`` ...)."""
    from seldon_core.proto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
    return tensor_pb2.TensorProto(dtype=types_pb2.DataType.Value(dtype),
                                  tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **values)


def triton_request(inputs: list[tuple[str, np.ndarray, str]], request_id: str = "") -> bytes:
    """tritonclient's HTTP request body for ``(name, array, datatype)`` inputs, JSON data."""
    import tritonclient.http as httpclient

    tensors = []
    for name, array, datatype in inputs:
        t = httpclient.InferInput(name, list(array.shape), datatype)
        t.set_data_from_numpy(array, binary_data=False)
        tensors.append(t)
    body, json_size = httpclient.InferenceServerClient.generate_request_body(tensors, request_id=request_id)
    assert json_size is None  # no binary extension: the whole body is JSON
    return body if isinstance(body, bytes) else body.encode()


def cloudevent_binary(attributes: dict[str, Any], data: bytes) -> tuple[dict[str, str], bytes]:
    """The CloudEvents SDK 2.x binary-mode HTTP message (it percent-encodes header values)."""
    from cloudevents.core.bindings import http
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    msg = http.to_binary(CloudEvent(attributes=dict(attributes), data=data), JSONFormat())
    return dict(msg.headers), bytes(msg.body)


def cloudevent_structured(attributes: dict[str, Any], data: Any) -> tuple[dict[str, str], bytes]:
    """The CloudEvents SDK 2.x structured-mode HTTP message."""
    from cloudevents.core.bindings import http
    from cloudevents.core.v1.event import CloudEvent

    msg = http.to_structured_event(CloudEvent(attributes=dict(attributes), data=data))
    return dict(msg.headers), bytes(msg.body)


def cloudevent_batch(events: list[tuple[dict[str, Any], Any]]) -> tuple[dict[str, str], bytes]:
    """A batched-mode body: the SDK 2.x JSON format of each event, as one JSON array
    (the SDK has no batch writer; the batch format is an array of structured events)."""
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    fmt = JSONFormat()
    parts = [fmt.write(CloudEvent(attributes=dict(a), data=d)) for a, d in events]
    return {"content-type": "application/cloudevents-batch+json"}, b"[" + b",".join(parts) + b"]"


def cloudevent_legacy_binary(attributes: dict[str, Any], data: Any) -> tuple[dict[str, str], bytes]:
    """The SDK's legacy (1.x-compatible) API, ``cloudevents.v1.http.to_binary``."""
    from cloudevents.v1.http import CloudEvent, to_binary

    headers, body = to_binary(CloudEvent(dict(attributes), data))
    return dict(headers), body if isinstance(body, bytes) else str(body).encode()


def cloudevent_legacy_structured(attributes: dict[str, Any], data: Any) -> tuple[dict[str, str], bytes]:
    from cloudevents.v1.http import CloudEvent, to_structured

    headers, body = to_structured(CloudEvent(dict(attributes), data))
    return dict(headers), body if isinstance(body, bytes) else str(body).encode()
