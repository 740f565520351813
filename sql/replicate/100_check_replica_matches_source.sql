-- mode: check

-- Did every table land in MySQL exactly as it was read from PostgreSQL? Compares, per table,
-- the row count and a checksum of the rows this run read (<table>: the earlier file's result,
-- one snapshot, so rows the stream adds meanwhile cannot cause a false alarm) with the staged
-- MySQL copy (mysql.<table>, what the swap is about to publish). Returns one row per table
-- that differs, naming it; no rows means the replica is faithful.
--
-- The checksum must come out identical whichever driver read the data, so each row is
-- first rendered as canonical text: integers as digits, money with exactly two decimals,
-- timestamps to the microsecond, NULL as JSON null (to_json of an array keeps positions
-- and escapes separators). The checksum is the sum of a 64-bit hash of that text: it
-- ignores row order, and summing as decimal(38, 0) cannot overflow.

with

product_categories_both as (

    select 'postgresql' as side, * from product_categories
    union all
    select 'mysql' as side, * from mysql.product_categories

),

users_both as (

    select 'postgresql' as side, * from users
    union all
    select 'mysql' as side, * from mysql.users

),

products_both as (

    select 'postgresql' as side, * from products
    union all
    select 'mysql' as side, * from mysql.products

),

orders_both as (

    select 'postgresql' as side, * from orders
    union all
    select 'mysql' as side, * from mysql.orders

),

order_details_both as (

    select 'postgresql' as side, * from order_details
    union all
    select 'mysql' as side, * from mysql.order_details

),

row_texts as (

    select
        'product_categories' as table_name,
        side,
        to_json(array(
            cast(category_id as string),
            name,
            cast(parent_category_id as string)
        )) as row_text
    from product_categories_both

    union all

    select
        'users' as table_name,
        side,
        to_json(array(
            cast(user_id as string),
            first_name,
            last_name,
            email,
            phone,
            date_format(registration_date, 'yyyy-MM-dd HH:mm:ss.SSSSSS'),
            loyalty_status
        )) as row_text
    from users_both

    union all

    select
        'products' as table_name,
        side,
        to_json(array(
            cast(product_id as string),
            name,
            description,
            cast(category_id as string),
            cast(cast(price as decimal(38, 2)) as string),
            cast(stock_quantity as string),
            date_format(creation_date, 'yyyy-MM-dd HH:mm:ss.SSSSSS')
        )) as row_text
    from products_both

    union all

    select
        'orders' as table_name,
        side,
        to_json(array(
            cast(order_id as string),
            cast(user_id as string),
            date_format(order_date, 'yyyy-MM-dd HH:mm:ss.SSSSSS'),
            cast(cast(total_amount as decimal(38, 2)) as string),
            status,
            date_format(delivery_date, 'yyyy-MM-dd HH:mm:ss.SSSSSS')
        )) as row_text
    from orders_both

    union all

    select
        'order_details' as table_name,
        side,
        to_json(array(
            cast(order_detail_id as string),
            cast(order_id as string),
            cast(product_id as string),
            cast(quantity as string),
            cast(cast(price_per_unit as decimal(38, 2)) as string),
            cast(cast(total_price as decimal(38, 2)) as string)
        )) as row_text
    from order_details_both

),

fingerprints as (

    select
        table_name,
        side,
        count(*) as row_count,
        sum(cast(xxhash64(row_text) as decimal(38, 0))) as checksum

    from row_texts
    group by table_name, side

),

source_fingerprints as (

    select * from fingerprints where side = 'postgresql'

),

replica_fingerprints as (

    select * from fingerprints where side = 'mysql'

),

-- An empty table has no fingerprint row: the full join and coalesce count it as 0 rows.
compared as (

    select
        coalesce(source.table_name, replica.table_name) as table_name,
        coalesce(source.row_count, 0) as source_rows,
        coalesce(replica.row_count, 0) as replica_rows,
        coalesce(source.checksum, 0) as source_checksum,
        coalesce(replica.checksum, 0) as replica_checksum

    from source_fingerprints as source
    full outer join replica_fingerprints as replica
        on source.table_name = replica.table_name

),

mismatches as (

    select
        table_name,
        case
            when source_rows <> replica_rows then 'row count differs'
            else 'checksum differs'
        end as problem,
        source_rows,
        replica_rows

    from compared
    where source_rows <> replica_rows
        or source_checksum <> replica_checksum

)

select * from mismatches
