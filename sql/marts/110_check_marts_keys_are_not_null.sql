-- mode: check

-- Does every mart row have its whole grain key? Reads the staged MySQL copies and
-- returns each row with a NULL key column, naming the mart (to_json leaves the NULL
-- column out of grain_key, so what is shown is what is present).

with

null_keys as (

    select
        'mart_user_activity' as mart,
        to_json(named_struct('user_id', user_id, 'status', status)) as grain_key
    from mysql.mart_user_activity
    where user_id is null
        or status is null

    union all

    select
        'mart_product_sales' as mart,
        to_json(named_struct('product_id', product_id, 'status', status)) as grain_key
    from mysql.mart_product_sales
    where product_id is null
        or status is null

    union all

    select
        'mart_average_check' as mart,
        to_json(named_struct('status', status, 'loyalty_status', loyalty_status)) as grain_key
    from mysql.mart_average_check
    where status is null
        or loyalty_status is null

)

select * from null_keys
