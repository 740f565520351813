-- mode: overwrite
-- keys: product_id, status

-- Units sold and revenue of each product, per order status.
-- The grain is one row per product and order status. Order lines are inner-joined to their
-- product and their order, so a product never sold has no row.
-- The products and the orders' statuses are broadcast to the order lines: the largest table
-- is then read once and aggregated where it is read, never shuffled or sorted for a join.

with

order_lines as (

    select /*+ broadcast(products, orders) */
        order_details.product_id,
        products.name,
        orders.status,
        order_details.quantity,
        order_details.total_price

    from order_details
    inner join products
        on order_details.product_id = products.product_id
    inner join orders
        on order_details.order_id = orders.order_id

),

product_sales as (

    select
        product_id,
        name,
        status,
        sum(quantity) as total_quantity_sold,
        sum(total_price) as total_sales

    from order_lines
    group by
        product_id,
        name,
        status

),

typed as (

    select
        cast(product_id as int) as product_id,
        cast(name as varchar(255)) as name,
        cast(status as varchar(20)) as status,
        cast(total_quantity_sold as bigint) as total_quantity_sold,
        cast(total_sales as decimal(15, 2)) as total_sales

    from product_sales

)

select * from typed
