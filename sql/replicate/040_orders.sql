-- mode: overwrite
-- keys: order_id
-- verify: checksum

-- Orders, copied as they are; delivery_date is NULL until an order is delivered.

with

source as (

    select * from orders

),

typed as (

    select
        cast(order_id as int) as order_id,
        cast(user_id as int) as user_id,
        cast(order_date as timestamp) as order_date,
        cast(total_amount as decimal(10, 2)) as total_amount,
        cast(status as varchar(20)) as status,
        cast(delivery_date as timestamp) as delivery_date

    from source

)

select * from typed
