-- mode: append
-- keys: kafka_topic_id, kafka_partition, kafka_offset

-- Rejected events, kept with their payload (readable text, and the exact bytes), the reason
-- (decided in 010_events.sql) and their Kafka coordinates, so nothing is lost and a fixed
-- event can be replayed byte for byte. One row per Kafka message: the coordinates are the
-- key, with the topic's id rather than its name, so a deleted and recreated topic (whose
-- offsets start again at 0) never collides with the old one. The payload column is sized for
-- Kafka's default largest message (1 MiB): an unsized string would be VARCHAR(255), and a
-- longer payload would then fail the whole batch instead of being kept.

with

rejected_events as (

    select * from events
    where reason is not null

),

dead_letters as (

    select
        cast(payload as varchar(1048576)) as payload,
        payload_bytes,
        cast(reason as varchar(200)) as reason,
        cast(kafka_topic as varchar(249)) as kafka_topic,
        cast(kafka_topic_id as varchar(36)) as kafka_topic_id,
        cast(kafka_partition as int) as kafka_partition,
        cast(kafka_offset as bigint) as kafka_offset,
        cast(kafka_timestamp as timestamp) as kafka_timestamp

    from rejected_events

)

select * from dead_letters
