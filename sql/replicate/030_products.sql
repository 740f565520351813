-- mode: overwrite
-- keys: product_id
-- verify: checksum

-- The catalogue, copied as it is; prices keep PostgreSQL's numeric(10,2).

with

source as (

    select * from products

),

typed as (

    select
        cast(product_id as int) as product_id,
        cast(name as varchar(255)) as name,
        cast(description as varchar(1000)) as description,
        cast(category_id as int) as category_id,
        cast(price as decimal(10, 2)) as price,
        cast(stock_quantity as int) as stock_quantity,
        cast(creation_date as timestamp) as creation_date

    from source

)

select * from typed
