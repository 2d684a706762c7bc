"""Adapters that run detectors from other libraries behind our interface.

``detectors.adapters.alibi.AlibiDetector`` needs the optional extra ``alibi``, so it is
not imported here.
"""
