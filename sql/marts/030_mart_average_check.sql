-- mode: overwrite
-- keys: status, loyalty_status

-- The average order amount per order status and the user's loyalty status.
-- The grain is one row per order status and loyalty status.
--
-- Users without a loyalty status (NULL) are shown as 'Unknown': loyalty_status is part of
-- the primary key, which cannot hold NULL, and an explicit label reads better anyway.
-- The average is computed exactly (sum / count) and rounded once to cents; avg() would
-- first round to six decimals, and that double rounding can differ by a cent.
-- The users' loyalty statuses are broadcast to the orders, which are then aggregated where
-- they are read: only the few totals per group are shuffled.

with

orders_with_loyalty as (

    select /*+ broadcast(users) */
        orders.status,
        coalesce(users.loyalty_status, 'Unknown') as loyalty_status,
        orders.total_amount

    from orders
    inner join users
        on orders.user_id = users.user_id

),

average_checks as (

    select
        status,
        loyalty_status,
        round(sum(total_amount) / count(*), 2) as average_check

    from orders_with_loyalty
    group by
        status,
        loyalty_status

),

typed as (

    select
        cast(status as varchar(20)) as status,
        cast(loyalty_status as varchar(10)) as loyalty_status,
        cast(average_check as decimal(12, 2)) as average_check

    from average_checks

)

select * from typed
