-- mode: overwrite
-- keys: user_id, status

-- How many orders each user placed and how much they spent, per order status.
-- The grain is one row per user and order status. Orders are inner-joined to users, so a
-- user without orders has no row (and an order without a user would be dropped; the
-- reconciliation check catches that). The users are broadcast to the orders, so the orders are
-- joined where they are read, not shuffled and sorted for the join.

with

orders_with_users as (

    select /*+ broadcast(users) */
        orders.user_id,
        users.first_name,
        users.last_name,
        orders.status,
        orders.total_amount

    from orders
    inner join users
        on orders.user_id = users.user_id

),

user_activity as (

    select
        user_id,
        first_name,
        last_name,
        status,
        count(*) as order_count,
        sum(total_amount) as total_spent

    from orders_with_users
    group by
        user_id,
        first_name,
        last_name,
        status

),

typed as (

    select
        cast(user_id as int) as user_id,
        cast(first_name as varchar(100)) as first_name,
        cast(last_name as varchar(100)) as last_name,
        cast(status as varchar(20)) as status,
        cast(order_count as bigint) as order_count,
        cast(total_spent as decimal(15, 2)) as total_spent

    from user_activity

)

select * from typed
