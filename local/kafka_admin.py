"""Kafka chores of the native platform: readiness (a metadata request) and topic creation.

Usage: python local/kafka_admin.py ready | create-topic
"""

import sys

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from runner import config  # noqa: E402


def admin() -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=config.env("KAFKA_BOOTSTRAP_SERVERS"),
                            client_id="platform-admin", request_timeout_ms=5000)


def ready() -> None:
    client = admin()
    client.list_topics()
    client.close()


def create_topic() -> None:
    topic = config.env("KAFKA_TOPIC_NAME")
    client = admin()
    try:
        if topic in client.list_topics():
            print(f"kafka: topic {topic} exists")
            return
        client.create_topics([NewTopic(topic, config.env_int("KAFKA_TOPIC_PARTITIONS", 3), 1)])
        print(f"kafka: created topic {topic}")
    except TopicAlreadyExistsError:
        print(f"kafka: topic {topic} exists")
    finally:
        client.close()


if __name__ == "__main__":
    {"ready": ready, "create-topic": create_topic}[sys.argv[1]]()
