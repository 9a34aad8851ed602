package agg

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/exporter-dev/exporter/internal/column"
)

var mixCols = []column.Column{
	col("g", column.Text), col("k", column.Int),
	col("x", column.Numeric), col("f", column.Float), col("s", column.Text),
	col("ts", column.TimestampTZ), col("d", column.Date), col("b", column.Bool),
}

var mixAggs = []string{
	"count(*)", "count(x)", "sum(x)", "avg(x)", "min(x)", "max(x)", "count_distinct(x)",
	"approx_count_distinct(x)", "p50(x)", "p95(f)", "sum(f)", "avg(f)", "min(f)", "max(f)",
	"min(s)", "max(s)", "count_distinct(s)", "approx_count_distinct(s)", "min(ts)", "max(ts)",
	"count_distinct(ts)", "min(d)", "max(d)", "min(b)", "max(b)", "sum(k)", "avg(k)",
}

// mixRows makes n rows over about groups groups, a few of them hot (many
// rows, so that sketches come into play). Values have one text per value
// (fixed scales, no -0), and floats are exact in binary, so that any order
// of the rows gives the same results.
func mixRows(seed uint64, n, groups int) [][]string {
	r := rand.New(rand.NewPCG(seed, 1))
	rows := make([][]string, n)
	for i := range rows {
		g := r.IntN(groups)
		if r.IntN(10) < 3 {
			g = r.IntN(5) // hot groups
		}
		row := make([]string, len(mixCols))
		row[0] = "g" + strconv.Itoa(g%97)
		row[1] = strconv.Itoa(g - groups/2)
		if g%101 == 0 {
			row[0] = null
		}
		if g%103 == 0 {
			row[1] = null
		}
		row[2] = fmt.Sprintf("%d.%03d", r.IntN(20001)-10000, r.IntN(1000))
		if row[2][0] == '-' && row[2] == "-0.000" {
			row[2] = "0.000"
		}
		row[3] = strconv.FormatFloat(float64(r.IntN(4001)-2000)/8, 'g', -1, 64)
		if row[3] == "-0" {
			row[3] = "0"
		}
		row[4] = string(rune('a'+r.IntN(26))) + strconv.Itoa(r.IntN(50))
		off := []string{"Z", "+01:00", "-05:30", "+02:00"}[r.IntN(4)]
		row[5] = fmt.Sprintf("2025-%02d-%02dT%02d:%02d:%02d%s", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), off)
		row[6] = fmt.Sprintf("%04d-%02d-%02d", 1900+r.IntN(200), 1+r.IntN(12), 1+r.IntN(28))
		row[7] = []string{"true", "false"}[r.IntN(2)]
		for j := 2; j < len(row); j++ {
			if r.IntN(20) == 0 {
				row[j] = null
			}
		}
		rows[i] = row
	}
	return rows
}

func TestSpillMatchesMemory(t *testing.T) {
	rows := mixRows(1, 40000, 30000)
	aggs := specs(t, mixAggs...)
	ref := aggregate(t, Config{Columns: mixCols, GroupBy: []string{"g", "k"}, Aggs: aggs, MemoryBudget: 1 << 30}, rows)
	if len(ref) < 15000 {
		t.Fatalf("only %d groups", len(ref))
	}

	dir := t.TempDir()
	a, err := New(Config{Columns: mixCols, GroupBy: []string{"g", "k"}, Aggs: aggs, MemoryBudget: 64 << 10, TmpDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, r := range rows {
		if err := a.Add(fields(r)); err != nil {
			t.Fatal(err)
		}
	}
	if a.sp == nil || len(a.sp.runs) < 10 {
		t.Fatalf("expected many spills with a 64 KiB budget")
	}
	t.Logf("%d runs", len(a.sp.runs))
	diffRows(t, finish(t, a), ref)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Close left %d files in the spill folder", len(ents))
	}

	// Grand total too.
	ref = aggregate(t, Config{Columns: mixCols, Aggs: aggs}, rows)
	got := aggregate(t, Config{Columns: mixCols, Aggs: aggs, MemoryBudget: 4 << 10, TmpDir: t.TempDir()}, rows)
	diffRows(t, got, ref)
}

// TestMultiPassMerge spills after every row, so that the merge needs
// intermediate passes.
func TestMultiPassMerge(t *testing.T) {
	rows := mixRows(2, 9000, 3000)
	aggs := specs(t, mixAggs...)
	ref := aggregate(t, Config{Columns: mixCols, GroupBy: []string{"k"}, Aggs: aggs}, rows)
	got := aggregate(t, Config{Columns: mixCols, GroupBy: []string{"k"}, Aggs: aggs, MemoryBudget: 1, TmpDir: t.TempDir()}, rows)
	diffRows(t, got, ref)
}

// keyOrder sorts rows by their group key in this package's order, stably.
func keyOrder(t testing.TB, rows [][]string, cols []column.Column, groupBy []string) [][]string {
	type kr struct {
		key []byte
		row []string
	}
	krs := make([]kr, len(rows))
	for i, r := range rows {
		var key []byte
		for _, name := range groupBy {
			ci := column.Index(cols, name)
			var err error
			key, err = appendGroupKey(key, kindOf(cols[ci]), fields(r)[ci])
			if err != nil {
				t.Fatal(err)
			}
		}
		krs[i] = kr{key, r}
	}
	slices.SortStableFunc(krs, func(a, b kr) int { return bytes.Compare(a.key, b.key) })
	out := make([][]string, len(rows))
	for i := range krs {
		out[i] = krs[i].row
	}
	return out
}

func TestSortedMatchesUnsorted(t *testing.T) {
	rows := mixRows(3, 12000, 3000)
	aggs := specs(t, mixAggs...)
	for _, groupBy := range [][]string{{"g", "k"}, {"k"}, {"s"}, {"ts"}, {"b", "d"}, nil} {
		ref := aggregate(t, Config{Columns: mixCols, GroupBy: groupBy, Aggs: aggs}, rows)
		sorted := keyOrder(t, rows, mixCols, groupBy)
		a, err := New(Config{Columns: mixCols, GroupBy: groupBy, Aggs: aggs, Sorted: true, TmpDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range sorted {
			if err := a.Add(fields(r)); err != nil {
				t.Fatal(err)
			}
		}
		if a.sp != nil && len(a.sp.runs) > 1 {
			t.Errorf("group by %v: sorted input made %d runs", groupBy, len(a.sp.runs))
		}
		diffRows(t, finish(t, a), ref)
		a.Close()

		// Input not in order after all: still right.
		a, err = New(Config{Columns: mixCols, GroupBy: groupBy, Aggs: aggs, Sorted: true, TmpDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range append(slices.Clone(sorted[:len(sorted)/2]), rows...) {
			if err := a.Add(fields(r)); err != nil {
				t.Fatal(err)
			}
		}
		if groupBy != nil && a.sorted {
			t.Errorf("group by %v: still in sorted mode", groupBy)
		}
		ref2 := aggregate(t, Config{Columns: mixCols, GroupBy: groupBy, Aggs: aggs}, append(slices.Clone(sorted[:len(sorted)/2]), rows...))
		diffRows(t, finish(t, a), ref2)
		a.Close()
		// And with a budget one group can outgrow.
		got := aggregate(t, Config{Columns: mixCols, GroupBy: groupBy, Aggs: aggs, Sorted: true, MemoryBudget: 2 << 10, TmpDir: t.TempDir()}, sorted)
		diffRows(t, got, ref)
	}
}

// FuzzMerge splits rows at random points into spilled runs and checks that
// merging them gives exactly what one pass in memory gives, in both modes.
func FuzzMerge(f *testing.F) {
	f.Add([]byte("hello, aggregation"), uint8(3))
	f.Add(bytes.Repeat([]byte{0x81, 0x7f, 0x03, 0x00, 0x80, 0xfe}, 40), uint8(1))
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, 30), uint8(2))
	dir := f.TempDir() // one spill folder: Close removes each run's files
	f.Fuzz(func(t *testing.T, data []byte, raw uint8) { checkMerge(t, dir, data, raw) })
}

func checkMerge(t *testing.T, dir string, data []byte, raw uint8) {
	if len(data) > 2048 {
		data = data[:2048] // keep executions (and minimization) quick
	}
	{
		// Small thresholds so that sketches appear in small inputs.
		defer func(a, q int) { approxRaw, quantRaw = a, q }(approxRaw, quantRaw)
		approxRaw, quantRaw = int(raw%8), int(raw%8)
		cols := []column.Column{col("g", column.Int), col("x", column.Numeric), col("f", column.Float), col("s", column.Text), col("ts", column.TimestampTZ)}
		var rows [][]string
		var spillAfter []bool
		for i := 0; i+4 <= len(data); i += 4 {
			b0, b1, b2, b3 := data[i], data[i+1], data[i+2], data[i+3]
			row := make([]string, len(cols))
			row[0] = strconv.Itoa(int(b0 & 3))
			if b0&3 == 3 && b0&4 != 0 {
				row[0] = null
			}
			// Numerics with mixed scales: 1.0 and 1.00 are equal values.
			switch b2 % 4 {
			case 0:
				row[1] = strconv.Itoa(int(int8(b1)))
			case 1:
				row[1] = fmt.Sprintf("%d.%d", int8(b1)/10, b3%10)
			case 2:
				row[1] = fmt.Sprintf("%d.%02d0", int8(b1), b3%100)
			default:
				row[1] = []string{"NaN", "Infinity", "-Infinity", null, "0.00", "99999999999999999999999.5"}[b3%6]
			}
			row[2] = []string{strconv.Itoa(int(int8(b2)) * 4), fmt.Sprint(float64(int8(b3)) / 4), "NaN", "-0", "Infinity", null, "1e+300", "-1e+300"}[b1%8]
			row[3] = []string{"", "a", "b", "A", "ab", null, "é", "a\x00"}[b3%8]
			row[4] = fmt.Sprintf("2025-10-26T0%d:%02d:00%s", b2%4, b3%60, []string{"Z", "+01:00", "+02:00"}[b1%3])
			if b2%16 == 15 {
				row[4] = []string{"infinity", "-infinity", null}[b3%3]
			}
			rows = append(rows, row)
			spillAfter = append(spillAfter, b0&0x80 != 0)
		}
		aggs := specs(t, "count(*)", "count(x)", "sum(x)", "avg(x)", "min(x)", "max(x)", "count_distinct(x)",
			"approx_count_distinct(x)", "p50(x)", "p90(f)", "sum(f)", "avg(f)", "min(f)", "max(f)",
			"min(s)", "max(s)", "count_distinct(s)", "approx_count_distinct(s)", "min(ts)", "max(ts)", "count_distinct(ts)")
		for _, groupBy := range [][]string{{"g"}, {"x"}, {"s", "g"}, nil} {
			cfg := Config{Columns: cols, GroupBy: groupBy, Aggs: aggs, TmpDir: dir}
			ref := aggregate(t, cfg, rows)

			a, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rows {
				if err := a.Add(fields(r)); err != nil {
					t.Fatal(err)
				}
				if spillAfter[i] {
					if err := a.spillGroups(); err != nil {
						t.Fatal(err)
					}
				}
			}
			diffRows(t, finish(t, a), ref)
			a.Close()

			cfg.Sorted = true
			got := aggregate(t, cfg, rows)
			diffRows(t, got, ref)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	for _, groups := range []int{1000, 500000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			rows := mixRows(4, 1<<16, groups)
			fs := make([][][]byte, len(rows))
			for i, r := range rows {
				fs[i] = fields(r)
			}
			a, err := New(Config{Columns: mixCols, GroupBy: []string{"g", "k"}, Aggs: specs(b, mixAggs...), TmpDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			for _, f := range fs { // the groups exist
				if err := a.Add(f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := a.Add(fs[i%len(fs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
