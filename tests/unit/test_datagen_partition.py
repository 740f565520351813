"""Batch murmur2 partitioning matches Kafka's default partitioner exactly."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_murmur2

from datagen.partition import murmur2, partitions


def test_murmur2_matches_kafka_for_keys_of_every_length():
    rng = random.Random(4)
    keys = [bytes(rng.randrange(256) for _ in range(length)) for length in range(0, 70)] * 3
    assert murmur2(keys).tolist() == [kafka_murmur2(key) & 0xFFFFFFFF for key in keys]


def test_partitions_match_kafkas_default_partitioner():
    keys = [f"user{i}-k3f9@example.com".encode() for i in range(2000)]
    for count in (1, 3, 7):
        assert partitions(keys, count).tolist() == \
            [(kafka_murmur2(key) & 0x7FFFFFFF) % count for key in keys]


def test_known_java_value():
    # Kafka's own test vector (Utils.murmur2 of "21"): -973932308.
    assert int(murmur2([b"21"])[0]) == -973932308 & 0xFFFFFFFF
