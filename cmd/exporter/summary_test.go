package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/exporter-dev/exporter/internal/manifest"
	"github.com/jackc/pgx/v5"
)

// salesTable has NULL groups, negative and high-scale numerics, and
// repeated customers.
const salesTable = `CREATE TABLE sales (
	id bigint PRIMARY KEY, region text, status text NOT NULL, day date NOT NULL, created_at timestamptz NOT NULL,
	customer_id int, amount numeric(14,2), unit_price numeric, qty int, note text);
CREATE INDEX ON sales (day, id);
INSERT INTO sales
SELECT i,
	CASE WHEN i % 11 = 0 THEN NULL ELSE (ARRAY['east', 'West', 'north', 'süd', ''])[1 + i % 5] END,
	(ARRAY['paid', 'open', 'void'])[1 + (i * 7) % 3],
	DATE '2025-01-01' + (i % 40),
	TIMESTAMPTZ '2025-01-01 00:00:00+00' + (i * 37 % 100000) * interval '1 minute',
	CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 7919) % 1500 END,
	CASE WHEN i % 17 = 0 THEN NULL ELSE round(((i::bigint * 104729) % 2000000 - 700000) / 100.0, 2) END,
	CASE WHEN i % 19 = 0 THEN NULL ELSE round(1 + (i::bigint * 15485863 % 1000003) / 7.0, 20) END,
	i % 50 - 10,
	'n' || (i % 97)
FROM generate_series(1, 6000) i;`

// summaryRows reads a summary CSV: header, then rows with "<NULL>" for NULL.
func summaryRows(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A NULL is an unquoted empty field: mark it before encoding/csv folds it.
	var lines []string
	for _, line := range strings.SplitAfter(string(b), "\r\n") {
		if line == "" {
			continue
		}
		fields := strings.Split(strings.TrimSuffix(line, "\r\n"), ",")
		for i, f := range fields {
			if f == "" {
				fields[i] = "<NULL>"
			}
		}
		lines = append(lines, strings.Join(fields, ","))
	}
	recs, err := csv.NewReader(strings.NewReader(strings.Join(lines, "\n"))).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs[0], recs[1:]
}

// pgRows runs a query whose columns are all text, NULL as "<NULL>".
func pgRows(t *testing.T, dsn, query string) [][]string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		rec := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				rec[i] = "<NULL>"
			} else {
				rec[i] = fmt.Sprint(v)
			}
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// closeEnough compares decimals within a relative tolerance.
func closeEnough(a, b string, rel float64) bool {
	if a == b {
		return true
	}
	x, ok1 := new(big.Float).SetPrec(200).SetString(a)
	y, ok2 := new(big.Float).SetPrec(200).SetString(b)
	if !ok1 || !ok2 {
		return false
	}
	d := new(big.Float).Sub(x, y)
	d.Abs(d)
	lim := new(big.Float).Abs(y)
	lim.Mul(lim, big.NewFloat(rel))
	return d.Cmp(lim) <= 0
}

// The columns of the PostgreSQL reference query, by how they compare.
const (
	exact = iota // avg too: its digits and scale are PostgreSQL's
	within2pct
	quantile
)

// checkSummary compares each summary row with PostgreSQL's GROUP BY.
func checkSummary(t *testing.T, got, want [][]string, kinds []int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d summary rows, PostgreSQL has %d\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range want {
		for j, k := range kinds {
			g, w := got[i][j], want[i][j]
			ok := g == w
			switch {
			case ok:
			case k == within2pct:
				ok = closeEnough(g, w, 0.02)
			case k == quantile: // w is "lo hi": PostgreSQL's values at ranks 94.5% and 95.5%
				lohi := strings.Fields(w)
				gv, _ := strconv.ParseFloat(g, 64)
				lo, _ := strconv.ParseFloat(lohi[0], 64)
				hi, _ := strconv.ParseFloat(lohi[1], 64)
				ok = gv >= lo*0.99 && gv <= hi*1.01
			}
			if !ok {
				t.Errorf("row %d column %d: %q, PostgreSQL says %q (row %v)", i, j, g, w, want[i])
			}
		}
	}
}

const groupedReference = `SELECT coalesce(region, '<NULL>'), status, count(*)::text, count(amount)::text, coalesce(sum(amount)::text, '<NULL>'),
	coalesce(sum(qty)::text, '<NULL>'), coalesce(avg(amount)::text, '<NULL>'),
	to_char(min(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
	coalesce(max(unit_price)::text, '<NULL>'), coalesce(min(note COLLATE "C"), '<NULL>'),
	count(DISTINCT customer_id)::text, count(DISTINCT customer_id)::text,
	coalesce((percentile_disc(0.945) WITHIN GROUP (ORDER BY unit_price))::text || ' ' ||
	         (percentile_disc(0.955) WITHIN GROUP (ORDER BY unit_price))::text, '<NULL>')
FROM sales %s GROUP BY region, status ORDER BY region COLLATE "C" NULLS LAST, status COLLATE "C"`

var groupedAggs = []string{"count(*)", "count(amount)", "sum(amount)", "sum(qty)", "avg(amount)", "min(created_at)",
	"max(unit_price)", "min(note)", "count_distinct(customer_id)", "approx_count_distinct(customer_id)", "p95(unit_price)"}

var groupedKinds = []int{exact, exact, exact, exact, exact, exact, exact, exact, exact, exact, exact, within2pct, quantile}

func summaryArgs(dsn, out string, extra ...string) []string {
	args := []string{"export", "--dsn", dsn, "--key", "id", "--out", out, "--format", "csv", "--format", "xlsx", "--name", "s", "--chunk-rows", "1000"}
	return append(args, extra...)
}

func TestSummaryMatchesGroupBy(t *testing.T) {
	dsn := newDB(t, salesTable)
	tests := []struct {
		name  string
		where string
		extra []string
	}{
		{"in memory", "", nil},
		{"spilling", "", []string{"--agg-memory", "16KiB"}},
		{"one group", "WHERE region = 'east' AND status = 'paid'", nil},
		{"empty input", "WHERE false", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			args := summaryArgs(dsn, out, "--query", "SELECT * FROM sales "+tt.where, "--group-by", "region,status")
			for _, a := range groupedAggs {
				args = append(args, "--agg", a)
			}
			r := runCLI(t, nil, append(args, tt.extra...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			header, got := summaryRows(t, filepath.Join(out, "s-summary.csv"))
			if want := append([]string{"region", "status"}, groupedAggs...); !slices.Equal(header, want) {
				t.Fatalf("header %v, want %v", header, want)
			}
			checkSummary(t, got, pgRows(t, dsn, fmt.Sprintf(groupedReference, tt.where)), groupedKinds)

			m := readManifest(t, out)
			var kinds []string
			for _, f := range m.Files {
				if f.Kind == "summary" {
					kinds = append(kinds, f.Name)
					if f.Rows != int64(len(got)) {
						t.Errorf("manifest says %s has %d rows, it has %d", f.Name, f.Rows, len(got))
					}
				}
			}
			if !slices.Equal(kinds, []string{"s-summary.csv", "s-summary.xlsx"}) && !slices.Equal(kinds, []string{"s-summary.xlsx", "s-summary.csv"}) {
				t.Fatalf("summary files in the manifest: %v", kinds)
			}
			total := pgRows(t, dsn, "SELECT count(*)::text, coalesce(sum(amount)::text, '<NULL>'), coalesce(sum(qty)::text, '<NULL>') FROM sales "+tt.where)[0]
			if m.Totals == nil || fmt.Sprint(m.Totals.Rows) != total[0] || deref(m.Totals.Sums["amount"]) != total[1] || deref(m.Totals.Sums["qty"]) != total[2] {
				t.Fatalf("manifest totals %+v, PostgreSQL says %v", m.Totals, total)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<NULL>"
	}
	return *s
}

func TestSummaryGrandTotalAndKeyPrefix(t *testing.T) {
	dsn := newDB(t, salesTable)
	t.Run("grand total", func(t *testing.T) {
		for _, where := range []string{"", "WHERE false"} {
			out := t.TempDir()
			r := runCLI(t, nil, summaryArgs(dsn, out, "--query", "SELECT * FROM sales "+where,
				"--agg", "count(*)", "--agg", "sum(amount)", "--agg", "avg(amount)", "--agg", "max(created_at)", "--agg", "count_distinct(region)")...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			_, got := summaryRows(t, filepath.Join(out, "s-summary.csv"))
			want := pgRows(t, dsn, `SELECT count(*)::text, coalesce(sum(amount)::text, '<NULL>'), coalesce(avg(amount)::text, '<NULL>'),
				coalesce(to_char(max(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '<NULL>'), count(DISTINCT region)::text FROM sales `+where)
			checkSummary(t, got, want, []int{exact, exact, exact, exact, exact})
		}
	})
	t.Run("group by a key prefix", func(t *testing.T) {
		out := t.TempDir()
		r := runCLI(t, nil, "export", "--dsn", dsn, "--query", "SELECT * FROM sales", "--key", "day,id", "--out", out, "--format", "csv",
			"--name", "s", "--chunk-rows", "500", "--group-by", "day", "--agg", "count(*)", "--agg", "sum(amount)", "--agg", "min(region)", "--agg", "count_distinct(status)")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		_, got := summaryRows(t, filepath.Join(out, "s-summary.csv"))
		want := pgRows(t, dsn, `SELECT to_char(day, 'YYYY-MM-DD'), count(*)::text, coalesce(sum(amount)::text, '<NULL>'),
			coalesce(min(region COLLATE "C"), '<NULL>'), count(DISTINCT status)::text FROM sales GROUP BY day ORDER BY day`)
		checkSummary(t, got, want, []int{exact, exact, exact, exact, exact})
	})
}

func TestSummaryXLSX(t *testing.T) {
	dsn := newDB(t, salesTable)
	out := t.TempDir()
	r := runCLI(t, nil, summaryArgs(dsn, out, "--query", "SELECT * FROM sales", "--group-by", "status", "--agg", "count(*)", "--agg", "sum(amount)")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	sheets := readXLSXPython(t, filepath.Join(out, "s-summary.xlsx"))
	if len(sheets) != 1 || sheets[0].Name != "Summary" || !sheets[0].BoldHeader || sheets[0].Freeze == nil || *sheets[0].Freeze != "A2" {
		t.Fatalf("summary workbook: %+v", sheets)
	}
	_, csvRows := summaryRows(t, filepath.Join(out, "s-summary.csv"))
	rows := sheets[0].Rows
	if len(rows) != len(csvRows)+1 || rows[0][1] != [2]string{"str", "count(*)"} || rows[0][2] != [2]string{"str", "sum(amount)"} {
		t.Fatalf("summary sheet rows %v", rows)
	}
	for i, rec := range csvRows {
		if rows[i+1][0][1] != rec[0] || rows[i+1][1] != [2]string{"int", rec[1]} || !sameFloat(rows[i+1][2][1], rec[2]) {
			t.Errorf("sheet row %v, csv %v", rows[i+1], rec)
		}
	}
}

func TestSummaryUsageErrors(t *testing.T) {
	dsn := newDB(t, salesTable)
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--agg", "sum(nope)"}, "nope"},
		{[]string{"--agg", "sum(region)"}, "sum(region)"},
		{[]string{"--agg", "median(amount)"}, "median(amount)"},
		{[]string{"--group-by", "nope", "--agg", "count(*)"}, "nope"},
		{[]string{"--group-by", "region"}, "--group-by needs at least one --agg"},
		{[]string{"--agg", "count(*)", "--agg-memory", "lots"}, "--agg-memory"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			r := runCLI(t, nil, append([]string{"export", "--dsn", dsn, "--query", "SELECT * FROM sales", "--key", "id", "--out", out}, tt.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d naming %q", r.code, r.stderr, exitUsage, tt.msg)
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Fatalf("output left after a usage error: %v", entries)
			}
		})
	}
}

var _ = manifest.Name
