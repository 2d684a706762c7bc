"""The Open Inference Protocol gRPC messages, compiled (see generate.py for provenance and how to regenerate)."""
