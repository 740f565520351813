-- mode: check

-- Do the marts add up to the source? Compares totals of the staged MySQL marts with the
-- same totals of the replicated tables they are built from, and returns each measure
-- that differs. A mismatch means orders or order lines were lost or counted twice
-- (e.g. an order whose user or product is missing, dropped by an inner join).

with

orders_totals as (

    select
        count(*) as order_count,
        coalesce(sum(total_amount), 0) as total_amount

    from orders

),

order_details_totals as (

    select
        coalesce(sum(quantity), 0) as quantity,
        coalesce(sum(total_price), 0) as total_price

    from order_details

),

user_activity_totals as (

    select
        coalesce(sum(order_count), 0) as order_count,
        coalesce(sum(total_spent), 0) as total_spent

    from mysql.mart_user_activity

),

product_sales_totals as (

    select
        coalesce(sum(total_quantity_sold), 0) as total_quantity_sold,
        coalesce(sum(total_sales), 0) as total_sales

    from mysql.mart_product_sales

),

reconciliation as (

    select
        'mart_user_activity' as mart,
        'sum(order_count) = count(orders)' as measure,
        cast(user_activity_totals.order_count as decimal(38, 2)) as mart_total,
        cast(orders_totals.order_count as decimal(38, 2)) as source_total
    from user_activity_totals
    cross join orders_totals

    union all

    select
        'mart_user_activity' as mart,
        'sum(total_spent) = sum(orders.total_amount)' as measure,
        cast(user_activity_totals.total_spent as decimal(38, 2)) as mart_total,
        cast(orders_totals.total_amount as decimal(38, 2)) as source_total
    from user_activity_totals
    cross join orders_totals

    union all

    select
        'mart_product_sales' as mart,
        'sum(total_quantity_sold) = sum(order_details.quantity)' as measure,
        cast(product_sales_totals.total_quantity_sold as decimal(38, 2)) as mart_total,
        cast(order_details_totals.quantity as decimal(38, 2)) as source_total
    from product_sales_totals
    cross join order_details_totals

    union all

    select
        'mart_product_sales' as mart,
        'sum(total_sales) = sum(order_details.total_price)' as measure,
        cast(product_sales_totals.total_sales as decimal(38, 2)) as mart_total,
        cast(order_details_totals.total_price as decimal(38, 2)) as source_total
    from product_sales_totals
    cross join order_details_totals

),

differences as (

    select * from reconciliation
    where mart_total <> source_total

)

select * from differences
