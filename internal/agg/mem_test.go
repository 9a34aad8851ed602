package agg

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exporter-dev/exporter/internal/column"
)

// TestMemoryFootprint aggregates 1M rows into 500k groups with the default
// budget in a child process and checks its peak RSS. It takes a while, so it
// runs only with EXPORTER_AGG_MEMTEST=1 (and not under the race detector,
// which multiplies memory):
//
//	EXPORTER_AGG_MEMTEST=1 go test -run TestMemoryFootprint -v ./internal/agg/
//
// AGG_MEMTEST_SORTED=1 feeds the rows in group order with Sorted set;
// AGG_MEMTEST_ROWS and AGG_MEMTEST_GROUPS change the sizes.
func TestMemoryFootprint(t *testing.T) {
	if os.Getenv("AGG_MEMTEST_CHILD") == "1" {
		memWorkload(t)
		return
	}
	if os.Getenv("EXPORTER_AGG_MEMTEST") != "1" {
		t.Skip("set EXPORTER_AGG_MEMTEST=1 to measure peak RSS")
	}
	if raceEnabled {
		t.Skip("the race detector distorts memory use")
	}
	for _, sorted := range []string{"0", "1"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryFootprint$", "-test.v")
		cmd.Env = append(os.Environ(), "AGG_MEMTEST_CHILD=1", "AGG_MEMTEST_SORTED="+sorted, "AGG_MEMTEST_TMP="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		var peak int64
		for _, line := range strings.Split(string(out), "\n") {
			if i := strings.Index(line, "MEMTEST "); i >= 0 {
				t.Log(line[i:])
				f := strings.Fields(line[i:])
				for _, kv := range f {
					if v, ok := strings.CutPrefix(kv, "peak_rss_mib="); ok {
						p, _ := strconv.ParseFloat(v, 64)
						peak = int64(p)
					}
				}
			}
		}
		if peak == 0 {
			t.Fatalf("no measurement in:\n%s", out)
		}
		if peak > 200 {
			t.Errorf("sorted=%s: peak RSS %d MiB, want under 200", sorted, peak)
		}
	}
}

func memWorkload(t *testing.T) {
	nRows, _ := strconv.Atoi(os.Getenv("AGG_MEMTEST_ROWS"))
	nGroups, _ := strconv.Atoi(os.Getenv("AGG_MEMTEST_GROUPS"))
	if nRows == 0 {
		nRows = 1000000
	}
	if nGroups == 0 {
		nGroups = 500000
	}
	sorted := os.Getenv("AGG_MEMTEST_SORTED") == "1"
	amount := col("amount", column.Numeric)
	amount.Scale, amount.Type = 2, "numeric(12,2)"
	cols := []column.Column{
		col("customer_id", column.Int), col("product_id", column.Int), amount,
		col("unit_price", column.Float), col("created_at", column.TimestampTZ), col("note", column.Text),
	}
	aggs := specs(t, "count(*)", "sum(amount)", "avg(amount)", "min(created_at)", "max(unit_price)",
		"count_distinct(product_id)", "approx_count_distinct(product_id)", "p95(amount)", "max(note)")
	a, err := New(Config{Columns: cols, GroupBy: []string{"customer_id"}, Aggs: aggs, TmpDir: os.Getenv("AGG_MEMTEST_TMP"), Sorted: sorted})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := rand.New(rand.NewPCG(7, 7))
	row := make([][]byte, len(cols))
	start := time.Now()
	for i := 0; i < nRows; i++ {
		g := int(int64(i) * 1000003 % int64(nGroups)) // each group nRows/nGroups times
		if sorted {
			g = i * nGroups / nRows
		}
		row[0] = strconv.AppendInt(row[0][:0], int64(g), 10)
		row[1] = strconv.AppendInt(row[1][:0], int64(r.IntN(100000)), 10)
		row[2] = fmt.Appendf(row[2][:0], "%d.%02d", r.IntN(100000), r.IntN(100))
		row[3] = strconv.AppendFloat(row[3][:0], r.Float64()*1000, 'g', -1, 64)
		row[4] = time.Unix(1735689600+int64(r.IntN(365*86400)), 0).UTC().AppendFormat(row[4][:0], time.RFC3339)
		row[5] = append(row[5][:0], "note "...)
		row[5] = strconv.AppendInt(row[5], int64(r.IntN(1000)), 10)
		if err := a.Add(row); err != nil {
			t.Fatal(err)
		}
	}
	added := time.Since(start)
	var n int
	if err := a.Finish(func([][]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	runs := 0
	if a.sp != nil {
		runs = len(a.sp.runs)
	}
	fmt.Printf("MEMTEST sorted=%v rows=%d groups_out=%d runs=%d add=%s total=%s peak_rss_mib=%d\n",
		sorted, nRows, n, runs, added.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), peakRSS()>>20)
}

// peakRSS reads VmHWM from /proc/self/status.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}
