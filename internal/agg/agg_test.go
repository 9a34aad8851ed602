package agg

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/exporter-dev/exporter/internal/column"
)

func TestParse(t *testing.T) {
	good := []struct {
		expr string
		want Spec
	}{
		{"count(*)", Spec{Func: "count"}},
		{"  COUNT ( * ) ", Spec{Func: "count"}},
		{"count(amount)", Spec{Func: "count", Column: "amount"}},
		{"sum(amount)", Spec{Func: "sum", Column: "amount"}},
		{"Sum( amount )", Spec{Func: "sum", Column: "amount"}},
		{"avg(unit_price)", Spec{Func: "avg", Column: "unit_price"}},
		{"min(created_at)", Spec{Func: "min", Column: "created_at"}},
		{"max(\"Unit Price\")", Spec{Func: "max", Column: "Unit Price"}},
		{`max("say ""hi""")`, Spec{Func: "max", Column: `say "hi"`}},
		{`max("(x)")`, Spec{Func: "max", Column: `(x)`}},
		{"count_distinct(customer_id)", Spec{Func: "count_distinct", Column: "customer_id"}},
		{"count(DISTINCT customer_id)", Spec{Func: "count_distinct", Column: "customer_id"}},
		{`count(distinct "x")`, Spec{Func: "count_distinct", Column: "x"}},
		{"count(distinctive)", Spec{Func: "count", Column: "distinctive"}},
		{"approx_count_distinct(customer_id)", Spec{Func: "approx_count_distinct", Column: "customer_id"}},
		{"p95(amount)", Spec{Func: "p95", Column: "amount", Quantile: 0.95}},
		{"P50(amount)", Spec{Func: "p50", Column: "amount", Quantile: 0.5}},
		{"p99.9(amount)", Spec{Func: "p99.9", Column: "amount", Quantile: 0.999}},
		{"p100(amount)", Spec{Func: "p100", Column: "amount", Quantile: 1}},
		{"p0.5(amount)", Spec{Func: "p0.5", Column: "amount", Quantile: 0.005}},
		{"sum(größe)", Spec{Func: "sum", Column: "größe"}},
		{"sum(a$1)", Spec{Func: "sum", Column: "a$1"}},
	}
	for _, c := range good {
		got, err := Parse(c.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.expr, err)
			continue
		}
		c.want.Expr = c.expr
		if math.Abs(got.Quantile-c.want.Quantile) < 1e-12 {
			got.Quantile = c.want.Quantile
		}
		if got != c.want {
			t.Errorf("Parse(%q) = %+v, want %+v", c.expr, got, c.want)
		}
	}
	bad := []string{
		"", "sum", "sum()", "sum amount", "(amount)", "sum(amount", "sum amount)",
		"sum(*)", "avg(*)", "median(x)", "p0(x)", "p100.1(x)", "p(x)", "p-5(x)", "p9.(x)", "p.5(x)",
		"sum(a b)", "sum(a,b)", "sum((a))", "sum(a) + 1", `sum("a)`, `sum("a"b)`, `sum("")`,
		"count(distinct *)", "sum(1a)", "sum(a-b)", "count(distinct)",
	}
	for _, expr := range bad {
		_, err := Parse(expr)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("Parse(%q) = %v, want a *ConfigError", expr, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "--agg") {
			t.Errorf("Parse(%q) error %q: want one line naming --agg", expr, msg)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cols := []column.Column{col("id", column.Int), col("name", column.Text), col("amount", column.Numeric), col("at", column.TimestampTZ)}
	cases := []struct {
		groupBy []string
		aggs    []Spec
		want    string
	}{
		{[]string{"nope"}, nil, `--group-by "nope": no such column`},
		{[]string{"id", "id"}, nil, `--group-by "id": column given twice`},
		{nil, specs(t, "sum(nope)"), `--agg "sum(nope)": no such column "nope"`},
		{nil, specs(t, "sum(name)"), `--agg "sum(name)": column "name" is text; sum needs a numeric column`},
		{nil, specs(t, "avg(at)"), `avg needs a numeric column`},
		{nil, specs(t, "p95(name)"), `p95 needs a numeric column`},
		{nil, []Spec{{Expr: "bogus(x)"}}, `unknown function "bogus"`},
	}
	for _, c := range cases {
		_, err := New(Config{Columns: cols, GroupBy: c.groupBy, Aggs: c.aggs})
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%v, %v) = %v, want a ConfigError with %q", c.groupBy, c.aggs, err, c.want)
		}
	}
	// Allowed: min/max/count_distinct of any column; names resolve in lower
	// case like unquoted SQL identifiers.
	if _, err := New(Config{Columns: cols, GroupBy: []string{"NAME"}, Aggs: specs(t, "min(at)", "max(name)", "count_distinct(at)", "approx_count_distinct(name)", "sum(ID)", "count(amount)")}); err != nil {
		t.Errorf("New: %v", err)
	}
}

func TestBasicGroups(t *testing.T) {
	amount := col("amount", column.Numeric)
	amount.Scale, amount.Type = 2, "numeric(12,2)"
	qty := col("qty", column.Int)
	qty.OID, qty.Type = column.OIDInt4, "integer"
	cfg := Config{
		Columns: []column.Column{col("g", column.Text), amount, qty},
		GroupBy: []string{"g"},
		Aggs: specs(t, "count(*)", "count(amount)", "sum(amount)", "avg(amount)", "min(amount)", "max(amount)",
			"sum(qty)", "avg(qty)"),
	}
	rows := [][]string{
		{"a", "1.50", "1"},
		{"a", "2.25", "3"},
		{"b", "-1.00", null},
		{null, null, "5"},
		{"a", null, "2"},
		{"", "0.10", "0"},
	}
	want := []string{
		"|1|1|0.10|0.10000000000000000000|0.10|0.10|0|0.00000000000000000000",
		"a|3|2|3.75|1.8750000000000000|1.50|2.25|6|2.0000000000000000",
		"b|1|1|-1.00|-1.00000000000000000000|-1.00|-1.00|∅|∅",
		"∅|1|0|∅|∅|∅|∅|5|5.0000000000000000",
	}
	diffRows(t, aggregate(t, cfg, rows), want)

	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []struct {
		name string
		kind column.Kind
		typ  string
		sc   int
	}{
		{"g", column.Text, "text", -1},
		{"count(*)", column.Int, "bigint", -1},
		{"count(amount)", column.Int, "bigint", -1},
		{"sum(amount)", column.Numeric, "numeric", 2},
		{"avg(amount)", column.Numeric, "numeric", -1},
		{"min(amount)", column.Numeric, "numeric(12,2)", 2},
		{"max(amount)", column.Numeric, "numeric(12,2)", 2},
		{"sum(qty)", column.Int, "bigint", -1},
		{"avg(qty)", column.Numeric, "numeric", -1},
	}
	got := a.Columns()
	if len(got) != len(wantCols) {
		t.Fatalf("%d columns, want %d", len(got), len(wantCols))
	}
	for i, w := range wantCols {
		if got[i].Name != w.name || got[i].Kind != w.kind || got[i].Type != w.typ || got[i].Scale != w.sc {
			t.Errorf("column %d = %+v, want %+v", i, got[i], w)
		}
	}
}

func TestEmptyInput(t *testing.T) {
	cols := []column.Column{col("g", column.Text), col("x", column.Numeric), col("f", column.Float)}
	aggs := specs(t, "count(*)", "count(x)", "sum(x)", "avg(x)", "min(x)", "max(f)", "sum(f)", "avg(f)",
		"count_distinct(x)", "approx_count_distinct(x)", "p95(x)")
	for _, sorted := range []bool{false, true} {
		got := aggregate(t, Config{Columns: cols, GroupBy: []string{"g"}, Aggs: aggs, Sorted: sorted}, nil)
		diffRows(t, got, nil)
		got = aggregate(t, Config{Columns: cols, Aggs: aggs, Sorted: sorted}, nil)
		diffRows(t, got, []string{"0|0|∅|∅|∅|∅|∅|∅|0|0|∅"})
		// All NULL.
		got = aggregate(t, Config{Columns: cols, Aggs: aggs, Sorted: sorted}, [][]string{{"a", null, null}})
		diffRows(t, got, []string{"1|0|∅|∅|∅|∅|∅|∅|0|0|∅"})
	}
}

func TestOneGroup(t *testing.T) {
	cols := []column.Column{col("g", column.Int), col("x", column.Int)}
	var rows [][]string
	for i := 1; i <= 100; i++ {
		rows = append(rows, []string{"7", strconv.Itoa(i)})
	}
	got := aggregate(t, Config{Columns: cols, GroupBy: []string{"g"}, Aggs: specs(t, "count(*)", "sum(x)", "avg(x)", "min(x)", "max(x)", "count_distinct(x)")}, rows)
	diffRows(t, got, []string{"7|100|5050|50.5000000000000000|1|100|100"})
	got = aggregate(t, Config{Columns: cols, Aggs: specs(t, "count(*)", "sum(x)")}, rows)
	diffRows(t, got, []string{"100|5050"})
}

func TestNumericSums(t *testing.T) {
	big38 := "12345678901234567890123456789012345678"
	cases := []struct {
		name string
		vals []string
		sum  string
		avg  string
	}{
		{"scales", []string{"1.5", "2.25", "3"}, "6.75", "2.2500000000000000"},
		{"trailing zeros", []string{"1.000", "2"}, "3.000", "1.5000000000000000"},
		{"zero scale kept", []string{"0.000", "0"}, "0.000", "0.00000000000000000000"},
		{"negative", []string{"-1.25", "0.5"}, "-0.75", "-0.37500000000000000000"},
		{"38 digits", []string{big38, "1"}, "12345678901234567890123456789012345679", "6172839450617283945061728394506172840"},
		{"38 digits neg", []string{"-" + big38, "-" + big38}, "-24691357802469135780246913578024691356", "-12345678901234567890123456789012345678"},
		{"high scale", []string{"-99999999999999999999.999999999999999999", "0.000000000000000001"}, "-99999999999999999999.999999999999999998", "-49999999999999999999.999999999999999999"},
		{"int64 overflow", []string{"9223372036854775807", "1"}, "9223372036854775808", "4611686018427387904"},
		{"int64 overflow back", []string{"9223372036854775807", "9223372036854775807", "-9223372036854775807"}, "9223372036854775807", "3074457345618258602"},
		{"rescale overflow", []string{"922337203685477580", "0.00000000000000000001"}, "922337203685477580.00000000000000000001", "461168601842738790.00000000000000000001"},
		{"tiny", []string{"0.001", "0.002"}, "0.003", "0.00150000000000000000"},
		{"thirds", []string{"1", "1", "0"}, "2", "0.66666666666666666667"},
		{"big quotient", []string{"10000", "20000"}, "30000", "15000.000000000000"},
		{"NaN", []string{"1", "NaN"}, "NaN", "NaN"},
		{"Infinity", []string{"Infinity", "1"}, "Infinity", "Infinity"},
		{"-Infinity", []string{"-Infinity", "1"}, "-Infinity", "-Infinity"},
		{"both infinities", []string{"-Infinity", "Infinity"}, "NaN", "NaN"},
		{"small", []string{"0.00000000000000000005", "0"}, "0.00000000000000000005", "0." + strings.Repeat("0", 19) + "25" + strings.Repeat("0", 15)},
		{"round half away", []string{"1.00000000000000000000000000001", "0"}, "1.00000000000000000000000000001", "0.50000000000000000000000000001"},
		{"round half away neg", []string{"-1.00000000000000000000000000001", "0"}, "-1.00000000000000000000000000001", "-0.50000000000000000000000000001"},
	}
	cols := []column.Column{col("x", column.Numeric)}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rows [][]string
			for _, v := range c.vals {
				rows = append(rows, []string{v})
			}
			got := aggregate(t, Config{Columns: cols, Aggs: specs(t, "sum(x)", "avg(x)")}, rows)
			diffRows(t, got, []string{c.sum + "|" + c.avg})
			// Spilling after every row gives the same.
			got = aggregate(t, Config{Columns: cols, Aggs: specs(t, "sum(x)", "avg(x)"), MemoryBudget: 1, TmpDir: t.TempDir()}, rows)
			diffRows(t, got, []string{c.sum + "|" + c.avg})
		})
	}
}

// TestAvgAgainstRational checks avg's digits against exact rational
// arithmetic: rounded half away from zero at the scale PostgreSQL picks.
func TestAvgAgainstRational(t *testing.T) {
	cols := []column.Column{col("x", column.Numeric)}
	vals := []string{"3.14159", "-2.5", "1000000", "0.000001", "7", "123456789.123456789", "-0.5"}
	for n := 1; n <= len(vals); n++ {
		var rows [][]string
		sum := new(big.Rat)
		for _, v := range vals[:n] {
			rows = append(rows, []string{v})
			r, _ := new(big.Rat).SetString(v)
			sum.Add(sum, r)
		}
		got := aggregate(t, Config{Columns: cols, Aggs: specs(t, "avg(x)")}, rows)
		avg := new(big.Rat).Quo(sum, big.NewRat(int64(n), 1))
		gr, ok := new(big.Rat).SetString(got[0])
		if !ok {
			t.Fatalf("avg %q", got[0])
		}
		scale := 0
		if i := strings.IndexByte(got[0], '.'); i >= 0 {
			scale = len(got[0]) - i - 1
		}
		diff := new(big.Rat).Sub(gr, avg)
		diff.Abs(diff)
		half := new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Mul(big.NewInt(2), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
		if diff.Cmp(half) > 0 {
			t.Errorf("avg of %v = %s, exact %s", vals[:n], got[0], avg.FloatString(30))
		}
	}
}

func TestIntSums(t *testing.T) {
	i4 := col("x", column.Int)
	i4.OID = column.OIDInt4
	cols := []column.Column{i4, col("y", column.Int)}
	rows := [][]string{{"2147483647", "9223372036854775807"}, {"2147483647", "9223372036854775807"}, {"-3", "-9223372036854775808"}}
	got := aggregate(t, Config{Columns: cols, Aggs: specs(t, "sum(x)", "sum(y)", "avg(x)", "min(y)", "max(y)")}, rows)
	diffRows(t, got, []string{"4294967291|9223372036854775806|1431655763.66666667|-9223372036854775808|9223372036854775807"})
	a, _ := New(Config{Columns: cols, Aggs: specs(t, "sum(x)", "sum(y)")})
	if c := a.Columns(); c[0].Kind != column.Int || c[1].Kind != column.Numeric || c[1].Scale != 0 {
		t.Errorf("columns %+v", c)
	}
}

func TestFloatAggs(t *testing.T) {
	f4 := col("r", column.Float)
	f4.OID, f4.Type = column.OIDFloat4, "real"
	cols := []column.Column{col("g", column.Text), col("f", column.Float), f4}
	rows := [][]string{
		{"a", "0.5", "0.1"}, {"a", "0.25", "0.2"},
		{"b", "1e+20", "1e+10"}, {"b", "1e+20", "1"},
		{"c", "NaN", "1"}, {"c", "1", "Infinity"},
		{"d", "Infinity", "-Infinity"}, {"d", "-Infinity", "-1"},
		{"e", "-0", "3.5"},
	}
	got := aggregate(t, Config{Columns: cols, GroupBy: []string{"g"}, Aggs: specs(t, "sum(f)", "avg(f)", "sum(r)", "avg(r)", "min(f)", "max(f)")}, rows)
	want := []string{
		"a|0.75|0.375|0.3|0.15000000223517418|0.25|0.5",
		"b|2e+20|1e+20|1e+10|5000000000.5|1e+20|1e+20",
		"c|NaN|NaN|Infinity|Infinity|1|NaN",
		"d|NaN|NaN|-Infinity|-Infinity|-Infinity|Infinity",
		"e|-0|0|3.5|3.5|-0|-0",
	}
	diffRows(t, got, want)
}

func TestMinMaxKinds(t *testing.T) {
	cases := []struct {
		kind     column.Kind
		vals     []string
		min, max string
	}{
		{column.Int, []string{"10", "9", "-100", "0"}, "-100", "10"},
		{column.Numeric, []string{"10.5", "9.75", "-0.001", "-0.0001"}, "-0.001", "10.5"},
		{column.Numeric, []string{"1.0", "1.00", "1"}, "1", "1"}, // ties: the later value wins
		{column.Numeric, []string{"5", "NaN", "-Infinity", "Infinity"}, "-Infinity", "NaN"},
		{column.Float, []string{"1e+20", "9.5e+19", "-Infinity", "3"}, "-Infinity", "1e+20"},
		{column.Float, []string{"1", "NaN", "Infinity"}, "1", "NaN"},
		{column.Bool, []string{"true", "false", "true"}, "false", "true"},
		{column.Text, []string{"a", "B", "é", "z", ""}, "", "é"},
		{column.Date, []string{"2025-01-01", "-0044-03-15", "10000-01-01", "1999-12-31"}, "-0044-03-15", "10000-01-01"},
		{column.Date, []string{"2025-01-01", "infinity", "-infinity"}, "-infinity", "infinity"},
		{column.Timestamp, []string{"2025-01-01T00:00:03", "2025-01-01T00:00:03.5", "2024-12-31T23:59:59.999999"}, "2024-12-31T23:59:59.999999", "2025-01-01T00:00:03.5"},
		// Across the end of summer time the offset changes: 02:15+01:00 is
		// later than 02:30+02:00.
		{column.TimestampTZ, []string{"2025-10-26T02:30:00+02:00", "2025-10-26T02:15:00+01:00", "2025-10-26T00:45:00Z"}, "2025-10-26T02:30:00+02:00", "2025-10-26T02:15:00+01:00"},
		{column.TimestampTZ, []string{"2025-01-01T01:00:03.5+01:00", "2025-01-01T00:00:03Z", "infinity", "-infinity"}, "-infinity", "infinity"},
		{column.TimestampTZ, []string{"2025-01-01T05:30:00+05:30", "2025-01-01T00:00:00.000001Z", "1883-11-18T12:00:00-04:56:02"}, "1883-11-18T12:00:00-04:56:02", "2025-01-01T00:00:00.000001Z"},
	}
	for _, c := range cases {
		cols := []column.Column{col("x", c.kind)}
		var rows [][]string
		for _, v := range c.vals {
			rows = append(rows, []string{v}, []string{null})
		}
		got := aggregate(t, Config{Columns: cols, Aggs: specs(t, "min(x)", "max(x)")}, rows)
		diffRows(t, got, []string{c.min + "|" + c.max})
	}
}

func TestGroupOrder(t *testing.T) {
	cases := []struct {
		kind column.Kind
		vals []string // in the order PostgreSQL sorts them, NULL last
	}{
		{column.Int, []string{"-9223372036854775808", "-5", "0", "3", "10", "9223372036854775807", null}},
		{column.Numeric, []string{"-Infinity", "-12", "-1.5", "-1.25", "0", "0.001", "1", "1.5", "10", "Infinity", "NaN", null}},
		{column.Float, []string{"-Infinity", "-1e+300", "-2", "0", "5e-324", "1.5", "1e+20", "Infinity", "NaN", null}},
		{column.Text, []string{"", "A", "B", "a", "a\x00", "ab", "b", "é", null}},
		{column.Bool, []string{"false", "true", null}},
		{column.Date, []string{"-infinity", "-0044-03-15", "0001-01-01", "1999-12-31", "2000-01-01", "10000-01-01", "infinity", null}},
		{column.TimestampTZ, []string{"-infinity", "2025-10-26T02:30:00+02:00", "2025-10-26T01:00:00Z", "2025-10-26T02:15:00+01:00", "infinity", null}},
	}
	for _, c := range cases {
		cols := []column.Column{col("x", c.kind)}
		var rows [][]string
		for i := len(c.vals) - 1; i >= 0; i-- {
			rows = append(rows, []string{c.vals[i]})
		}
		var want []string
		for _, v := range c.vals {
			if v == null {
				v = nullOut
			}
			want = append(want, v+"|1")
		}
		for _, sorted := range []bool{false, true} {
			got := aggregate(t, Config{Columns: cols, GroupBy: []string{"x"}, Aggs: specs(t, "count(*)"), Sorted: sorted}, rows)
			diffRows(t, got, want)
		}
	}
}

func TestGroupIdentity(t *testing.T) {
	// Numerics equal in value are one group (the first text seen names it),
	// so are 0 and -0 and all NaNs.
	cols := []column.Column{col("n", column.Numeric), col("f", column.Float)}
	rows := [][]string{{"1.0", "0"}, {"1.00", "-0"}, {"1", "NaN"}, {"2", "NaN"}}
	got := aggregate(t, Config{Columns: cols, GroupBy: []string{"n"}, Aggs: specs(t, "count(*)")}, rows)
	diffRows(t, got, []string{"1.0|3", "2|1"})
	got = aggregate(t, Config{Columns: cols, GroupBy: []string{"f"}, Aggs: specs(t, "count(*)")}, rows)
	diffRows(t, got, []string{"0|2", "NaN|2"})
	// Multi-column keys: NULL last per column, text prefix before longer.
	cols = []column.Column{col("a", column.Text), col("b", column.Int)}
	rows = [][]string{{"x", "2"}, {null, "1"}, {"x", null}, {"x", "1"}, {"xa", "0"}, {null, null}, {"x", "1"}}
	got = aggregate(t, Config{Columns: cols, GroupBy: []string{"a", "b"}, Aggs: specs(t, "count(*)")}, rows)
	diffRows(t, got, []string{"x|1|2", "x|2|1", "x|∅|1", "xa|0|1", "∅|1|1", "∅|∅|1"})
}

func TestCountDistinct(t *testing.T) {
	cols := []column.Column{col("g", column.Int), col("n", column.Numeric), col("f", column.Float), col("s", column.Text), col("t", column.TimestampTZ)}
	rows := [][]string{
		{"1", "1.0", "0", "", "2025-01-01T01:00:00+01:00"},
		{"1", "1.00", "-0", null, "2025-01-01T00:00:00Z"},
		{"1", "1", "NaN", "a", "2025-01-01T00:00:00Z"},
		{"1", "-1", "NaN", "A", "infinity"},
		{"1", null, null, "a", null},
		{"2", null, null, null, null},
	}
	got := aggregate(t, Config{Columns: cols, GroupBy: []string{"g"}, Aggs: specs(t,
		"count_distinct(n)", "count_distinct(f)", "count_distinct(s)", "count_distinct(t)",
		"approx_count_distinct(n)", "approx_count_distinct(f)", "approx_count_distinct(s)", "approx_count_distinct(t)")}, rows)
	diffRows(t, got, []string{"1|2|2|3|2|2|2|3|2", "2|0|0|0|0|0|0|0|0"})
}

func TestApproxCountDistinct(t *testing.T) {
	cols := []column.Column{col("g", column.Int), col("x", column.Int)}
	a, err := New(Config{Columns: cols, GroupBy: []string{"g"}, Aggs: specs(t, "approx_count_distinct(x)", "count_distinct(x)")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sizes := []int{1, 10, 32, 33, 100, 1000, 10000, 200000}
	for g, n := range sizes {
		for i := 0; i < n; i++ {
			v := strconv.Itoa(i * 7919)
			_ = a.Add(fields([]string{strconv.Itoa(g), v}))
			if i%3 == 0 {
				_ = a.Add(fields([]string{strconv.Itoa(g), v})) // duplicates
			}
		}
	}
	i := 0
	err = a.Finish(func(row [][]byte) error {
		est, _ := strconv.Atoi(string(row[1]))
		exact, _ := strconv.Atoi(string(row[2]))
		if exact != sizes[i] {
			t.Errorf("group %d: exact %d, want %d", i, exact, sizes[i])
		}
		if e := math.Abs(float64(est-exact)) / float64(exact); e > 0.02 {
			t.Errorf("group %d: estimate %d for %d distinct values (error %.2f%%)", i, est, exact, e*100)
		}
		if exact <= approxRaw && est != exact {
			t.Errorf("group %d: estimate %d for %d distinct values, want it exact", i, est, exact)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPercentiles(t *testing.T) {
	cols := []column.Column{col("g", column.Text), col("x", column.Numeric)}
	var rows [][]string
	add := func(g string, vals ...float64) {
		for _, v := range vals {
			rows = append(rows, []string{g, strconv.FormatFloat(v, 'f', -1, 64)})
		}
	}
	seq := func(from, to int) []float64 {
		var s []float64
		for i := from; i <= to; i++ {
			s = append(s, float64(i))
		}
		return s
	}
	add("a", seq(1, 100)...)
	add("b", seq(-10, 10)...)
	add("c", seq(-100000, -1)...)
	add("d", 0, 0, 0)
	add("e", 42.5)
	rows = append(rows, []string{"e", "NaN"}, []string{"f", null}, []string{"g", "Infinity"}, []string{"g", "1"})
	got := aggregate(t, Config{Columns: cols, GroupBy: []string{"g"}, Aggs: specs(t, "p50(x)", "p95(x)", "p100(x)", "p0.1(x)")}, rows)
	want := [][]float64{
		{50, 95, 100, 1},
		{0, 9, 10, -10},
		{-50000, -5000, -1, -99900},
		{0, 0, 0, 0},
		{42.5, 42.5, 42.5, 42.5},
		{math.NaN(), math.NaN(), math.NaN(), math.NaN()},
		{1, 1, math.Inf(1), 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i, r := range got {
		parts := strings.Split(r, "|")
		for j, w := range want[i] {
			s := parts[j+1]
			if math.IsNaN(w) {
				if s != nullOut {
					t.Errorf("group %s p%d = %s, want NULL", parts[0], j, s)
				}
				continue
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Errorf("group %s: %q: %v", parts[0], s, err)
				continue
			}
			if v != w && math.Abs(v-w) > 0.01*math.Abs(w)+0.5*math.Abs(w)/100 {
				t.Errorf("group %s agg %d = %v, want %v within 1%%", parts[0], j, v, w)
			}
		}
	}
	a, _ := New(Config{Columns: cols, Aggs: specs(t, "p95(x)")})
	if c := a.Columns()[0]; c.Kind != column.Float {
		t.Errorf("p95 column %+v", c)
	}
}

func TestTotals(t *testing.T) {
	f := col("f", column.Float)
	cols := []column.Column{col("g", column.Int), col("x", column.Numeric), f, col("y", column.Int)}
	a, err := New(Config{Columns: cols, GroupBy: []string{"g"}, Aggs: specs(t, "sum(x)", "avg(x)", "sum(f)", "sum(x)", "count(*)", "sum(y)"), MemoryBudget: 1, TmpDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := 0; i < 1000; i++ {
		x := strconv.Itoa(i) + ".05"
		if i%10 == 0 {
			x = null
		}
		if err := a.Add(fields([]string{strconv.Itoa(i % 7), x, "0.5", null})); err != nil {
			t.Fatal(err)
		}
	}
	tot := a.Totals()
	// sum of i for i%10 != 0: 499500 - 49500 = 450000, plus 900 * 0.05 = 45.
	want := Totals{Rows: 1000, Sums: []ColumnSum{{"x", "450045.00"}, {"f", "500"}, {"y", ""}}}
	if tot.Rows != want.Rows || len(tot.Sums) != len(want.Sums) {
		t.Fatalf("Totals() = %+v, want %+v", tot, want)
	}
	for i := range want.Sums {
		if tot.Sums[i] != want.Sums[i] {
			t.Errorf("Totals().Sums[%d] = %+v, want %+v", i, tot.Sums[i], want.Sums[i])
		}
	}
	var sum big.Rat
	_ = a.Finish(func(row [][]byte) error {
		r, ok := new(big.Rat).SetString(string(row[1]))
		if !ok {
			t.Errorf("sum %q", row[1])
		}
		sum.Add(&sum, r)
		return nil
	})
	if sum.FloatString(2) != "450045.00" {
		t.Errorf("group sums add up to %s", sum.FloatString(2))
	}
}
