-- mode: overwrite
-- keys: category_id
-- verify: checksum

-- The category tree, copied as it is. The casts give MySQL the column types of
-- PostgreSQL (integer keys, varchar sized like the source), not Spark's TEXT defaults.

with

source as (

    select * from product_categories

),

typed as (

    select
        cast(category_id as int) as category_id,
        cast(name as varchar(100)) as name,
        cast(parent_category_id as int) as parent_category_id

    from source

)

select * from typed
