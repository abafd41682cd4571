"""The bench's bare handler publishing to Kafka (``bench.bare PORT TOPIC``), on real Kafka: it
answers only once the gateway's record of the bench's event is on the topic, sent through the
gateway's own publisher."""

from __future__ import annotations

import urllib.request

from bench import procs
from bench.payloads import body, single_record
from ingest_core.kafka import TopicSpec, ensure_topics
from tests.support.kafka import free_port_pair, read_topic, unique


def test_each_request_is_a_gateway_record_on_kafka_when_the_bare_publishing_handler_answers(
    kafka_bootstrap: str,
) -> None:
    topic = unique("bench-bare")
    ensure_topics(kafka_bootstrap, [TopicSpec(topic, 1)])
    port = free_port_pair()
    proc = procs.start(["-m", "bench.bare", str(port), topic], {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/health")
        sent = [body(1, msgid=f"bare-{i}") for i in range(3)]
        for payload in sent:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/data/in/example", data=payload)
            with urllib.request.urlopen(request, timeout=30) as resp:
                assert resp.status == 200
        records = read_topic(kafka_bootstrap, topic, 3, timeout_s=30)
        expected = single_record()
        assert len(records) == len(sent)
        for m in records:
            assert (m.key(), m.value()) == (expected.key, expected.value)
            assert list(m.headers() or []) == [tuple(h) for h in expected.headers]
    finally:
        procs.stop(proc)
