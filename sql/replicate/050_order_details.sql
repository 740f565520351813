-- mode: overwrite
-- keys: order_detail_id
-- verify: checksum

-- Order lines, copied as they are; money keeps PostgreSQL's numeric(10,2).

with

source as (

    select * from order_details

),

typed as (

    select
        cast(order_detail_id as int) as order_detail_id,
        cast(order_id as int) as order_id,
        cast(product_id as int) as product_id,
        cast(quantity as int) as quantity,
        cast(price_per_unit as decimal(10, 2)) as price_per_unit,
        cast(total_price as decimal(10, 2)) as total_price

    from source

)

select * from typed
