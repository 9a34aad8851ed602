package xlsx

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestLargeMemory writes millions of rows and checks that the heap does not
// grow with them. It takes a while: set XLSX_LARGE=rows to run it.
func TestLargeMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("XLSX_LARGE"))
	if n == 0 {
		t.Skip("set XLSX_LARGE=rows to run")
	}
	dir := t.TempDir()
	var limit int64
	if v := os.Getenv("XLSX_LARGE_BYTES"); v != "" {
		limit, _ = strconv.ParseInt(v, 10, 64)
	}
	w, err := NewWriter(testCols(), Options{Dir: dir, Prefix: "big", MaxFileBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	g := newRowGen(1)
	var peak uint64
	var ms runtime.MemStats
	for i := 0; i < n; i++ {
		if err := w.WriteRow(g.row(i)); err != nil {
			t.Fatal(err)
		}
		if i%200000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			t.Logf("row %d: heap in use %d MiB, sys %d MiB", i, ms.HeapInuse>>20, ms.Sys>>20)
		}
	}
	files, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	for _, f := range files {
		t.Logf("%s: %d rows, %d bytes, %d sheets", f.Name, f.Rows, f.Bytes, len(f.Sheets))
		if limit > 0 && f.Bytes > limit {
			t.Errorf("%s over the limit", f.Name)
		}
	}
	t.Logf("peak heap in use %d MiB, sys %d MiB", peak>>20, ms.Sys>>20)
	if peak > 200<<20 {
		t.Errorf("heap grew to %d MiB", peak>>20)
	}
}

func TestSpillCheck(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(testCols(), Options{Dir: dir, Prefix: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	rows := genRows(10, 1)
	if err := w.WriteRow(rows[0]); err != nil {
		t.Fatal(err)
	}
	// A small sheet has no spill file: pretend it is big.
	w.sheetXML = spillCheckAt
	err = w.WriteRow(rows[1])
	if err == nil || !strings.Contains(err.Error(), "in memory") {
		t.Fatalf("err = %v", err)
	}
}
