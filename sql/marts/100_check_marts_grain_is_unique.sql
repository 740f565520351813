-- mode: check

-- Is every mart unique on its grain? Reads the staged MySQL copies (what the swap is about
-- to publish) and returns each grain key that occurs more than once, naming the mart.

with

grain_keys as (

    select
        'mart_user_activity' as mart,
        to_json(named_struct('user_id', user_id, 'status', status)) as grain_key
    from mysql.mart_user_activity

    union all

    select
        'mart_product_sales' as mart,
        to_json(named_struct('product_id', product_id, 'status', status)) as grain_key
    from mysql.mart_product_sales

    union all

    select
        'mart_average_check' as mart,
        to_json(named_struct('status', status, 'loyalty_status', loyalty_status)) as grain_key
    from mysql.mart_average_check

),

duplicated_keys as (

    select
        mart,
        grain_key,
        count(*) as row_count

    from grain_keys
    group by
        mart,
        grain_key
    having count(*) > 1

)

select * from duplicated_keys
