package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/exporter-dev/exporter/internal/pgtest"
)

// table is the benchmark table; it is dropped and reloaded for every row
// count.
const table = "bench_rows"

// loadSQL creates table with n rows generated server-side. Values are
// deterministic; texts are 10-30 characters; comment is NULL in 30% of rows.
func loadSQL(n int64) string {
	return `DROP TABLE IF EXISTS ` + table + `;
CREATE TABLE ` + table + ` (
    id           bigint PRIMARY KEY,
    created_at   timestamptz   NOT NULL,
    qty          int           NOT NULL,
    amount_cents bigint        NOT NULL,
    region       text          NOT NULL,
    note         text          NOT NULL,
    price        numeric(12,2) NOT NULL,
    ratio        numeric       NOT NULL,
    code         int           NOT NULL,
    comment      text          NULL
);
INSERT INTO ` + table + `
SELECT
    g,
    timestamptz '2024-01-01 00:00:00+00' + g * interval '7 seconds 250 milliseconds',
    (1 + (g * 7) % 250)::int,
    (g * 104729) % 10000000,
    (ARRAY['north-america-east', 'europe-west', 'asia-pacific-south',
           'south-america', 'middle-east-and-africa'])[1 + g % 5],
    'order ' || g || ' via ' || (ARRAY['web', 'phone', 'store', 'partner api'])[1 + g % 4],
    round(((g * 15485863) % 100000000) / 100.0, 2),
    round(((g * 7919) % 1000003)::numeric / 997, 6),
    ((g * 31) % 9973)::int,
    CASE WHEN g % 10 < 3 THEN NULL
         ELSE 'comment ' || left(md5(g::text), (2 + g % 20)::int)
    END
FROM generate_series(1, ` + strconv.FormatInt(n, 10) + `::bigint) AS g;
`
}

// load (re)creates the benchmark table with n rows in database db, then
// vacuums, analyzes and checkpoints so the runs see a settled table.
func load(ctx context.Context, srv *pgtest.Server, db string, n int64) error {
	if err := srv.Exec(ctx, db, loadSQL(n)); err != nil {
		return fmt.Errorf("load %d rows: %w", n, err)
	}
	// VACUUM cannot run inside the implicit transaction of a multi-statement
	// query, so it gets its own.
	if err := srv.Exec(ctx, db, "VACUUM (FREEZE, ANALYZE) "+table); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if err := srv.Exec(ctx, db, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
