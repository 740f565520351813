-- mode: append

-- Valid registrations become new users. user_id is left out on purpose: PostgreSQL assigns
-- it from the users sequence, so streamed users never collide with generated ones.
-- Appended in the same transaction as the consumed Kafka offsets: exactly once.

with

valid_events as (

    select * from events
    where reason is null

),

new_users as (

    select
        cast(first_name as varchar(100)) as first_name,
        cast(last_name as varchar(100)) as last_name,
        cast(email as varchar(255)) as email,
        cast(phone as varchar(50)) as phone,
        cast(registration_date as timestamp) as registration_date,
        cast(loyalty_status as varchar(10)) as loyalty_status

    from valid_events

)

select * from new_users
