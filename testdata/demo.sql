-- Demo data for `make demo`: an orders-like table with 2,000 rows.
-- Deterministic (no random()) so the demo output is reproducible.
DROP TABLE IF EXISTS orders;

CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    created_at  timestamptz   NOT NULL,
    region      text          NOT NULL,
    status      text          NOT NULL,
    customer_id int           NOT NULL,
    amount      numeric(12,2) NOT NULL,
    unit_price  numeric(14,4) NOT NULL,
    note        text,
    paid        bool          NOT NULL
);

INSERT INTO orders (id, created_at, region, status, customer_id, amount, unit_price, note, paid)
SELECT
    g,
    timestamptz '2024-01-01 00:00:00+00' + (g * interval '37 minutes 13 seconds'),
    (ARRAY['north', 'south', 'east', 'west', 'central'])[1 + g % 5],
    (ARRAY['new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'])[1 + (g * 7) % 6],
    1000 + (g * 7919) % 517,
    round(((g::bigint * 104729) % 1000000) / 100.0 + 0.99, 2),
    round(((g::bigint * 15485863) % 100000000) / 10000.0 + 0.0001, 4),
    CASE
        WHEN g % 7 = 0 THEN NULL
        WHEN g % 11 = 0 THEN 'gift wrap, "fragile"; deliver after 5pm'
        WHEN g % 13 = 0 THEN 'línea con acentos — ünïcödé ✓'
        WHEN g % 17 = 0 THEN E'multi-line\nnote'
        ELSE 'order #' || g
    END,
    g % 3 <> 0
FROM generate_series(1, 2000) AS g;

ANALYZE orders;
