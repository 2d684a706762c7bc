"""Ground truth from a topic: labels published to ``collector.feedback_topic`` (Kafka, or the
embedded log's table) by whatever learns the outcomes — a batch job, a CRM, a labelling tool.

Each message's value is one feedback item or a JSON array of them, in the shapes
:mod:`collectors.feedback` reads (``{"id", "row"?, "truth", "model"}``, OIP-shaped, Seldon Core
feedback). They become feedback records on the records topic through the one ingest path; the
topic position is committed only after that append is durable (at-least-once; a label
delivered twice counts once downstream, rows being keyed by id). A message that is not JSON,
or an item that is not a label, becomes a dead letter with its reason.

Enabled with ``collector.kinds: [http, feedback_topic]``.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import orjson

from collectors.feedback import feedback_envelopes
from inferwatch.config import CollectorConfig
from inferwatch.ingest import Ingestor
from inferwatch.record import DeadLetter

__all__ = ["FeedbackTopicCollector"]

log = logging.getLogger("inferwatch.collector")


class FeedbackTopicCollector:
    """A :class:`~inferwatch.ingest.Collector` reading ``cfg.feedback_topic`` as ``cfg.feedback_group``."""

    name = "feedback_topic"

    def __init__(self, cfg: CollectorConfig, batch_size: int = 1000) -> None:
        self.topic, self.group, self.batch_size = cfg.feedback_topic, cfg.feedback_group, batch_size
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, ingestor: Ingestor) -> None:
        ingestor.log.create_topics([self.topic])
        consumer = ingestor.log.consumer(self.topic, self.group)
        self.thread = threading.Thread(target=self._run, args=(ingestor, consumer), name="feedback-topic",
                                       daemon=True)
        self.thread.start()
        log.info("reading ground truth from %s as %s", self.topic, self.group)

    def _run(self, ingestor: Ingestor, consumer: object) -> None:
        from inferwatch.log import Consumer

        assert isinstance(consumer, Consumer)
        loop = asyncio.new_event_loop()
        try:
            while not self._stop.is_set():
                entries = consumer.poll(self.batch_size, timeout=0.5)
                if not entries:
                    continue
                items, bad = [], []
                for e in entries:
                    try:
                        value = orjson.loads(e.value)
                    except orjson.JSONDecodeError as exc:
                        bad.append(DeadLetter(raw=e.value, source="feedback_topic", reason=f"not JSON: {exc}"))
                        continue
                    items += value if isinstance(value, list) else [value]
                envs, refused = feedback_envelopes(items, source="feedback_topic")
                while not self._stop.is_set():
                    try:
                        loop.run_until_complete(ingestor.ingest(envs, bad + refused))
                        break
                    except Exception as exc:  # the log is down: keep the position, retry
                        log.warning("feedback topic: append failed, retrying: %s", exc)
                        self._stop.wait(1.0)
                else:
                    return
                consumer.commit(entries)
        except BaseException as exc:  # a failure is reported by alive(), not swallowed
            self.error = exc
            log.exception("feedback topic collector failed")
        finally:
            loop.close()
            close = getattr(consumer, "close", None)
            if close is not None:
                close()

    def alive(self) -> bool:
        return self.thread is None or self.thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(15)
