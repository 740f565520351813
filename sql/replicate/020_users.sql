-- mode: overwrite
-- keys: user_id
-- verify: checksum

-- The shop's users, copied as they are (streamed registrations included, since the
-- stream writes into PostgreSQL users). loyalty_status may be NULL and stays NULL here;
-- the marts decide how to show it.

with

source as (

    select * from users

),

typed as (

    select
        cast(user_id as int) as user_id,
        cast(first_name as varchar(100)) as first_name,
        cast(last_name as varchar(100)) as last_name,
        cast(email as varchar(255)) as email,
        cast(phone as varchar(50)) as phone,
        cast(registration_date as timestamp) as registration_date,
        cast(loyalty_status as varchar(10)) as loyalty_status

    from source

)

select * from typed
