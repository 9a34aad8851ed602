package csvfile

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/exporter-dev/exporter/internal/column"
	"github.com/exporter-dev/exporter/internal/spill"
)

var cols = []column.Column{{Name: "id"}, {Name: "text, with comma"}}

func records(n int, payload func(i int) []byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = spill.AppendRecord(nil, [][]byte{[]byte(fmt.Sprint(i)), payload(i)})
	}
	return out
}

// readBack returns the rows of a finished file, checking its header, size
// and checksum with the standard library's CSV and gzip readers.
func readBack(t *testing.T, dir string, f File) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, f.Name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != f.Bytes || hex.EncodeToString(sum[:]) != f.SHA256 {
		t.Fatalf("%s: size %d sha %x, manifest says %d %s", f.Name, len(b), sum, f.Bytes, f.SHA256)
	}
	var r io.Reader = bytes.NewReader(b)
	if f.Format == "csv.gz" {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	if len(rows) == 0 || rows[0][0] != "id" || rows[0][1] != "text, with comma" {
		t.Fatalf("%s: header %v", f.Name, rows)
	}
	if int64(len(rows)-1) != f.Rows {
		t.Fatalf("%s: %d rows, manifest says %d", f.Name, len(rows)-1, f.Rows)
	}
	return rows[1:]
}

func TestSplit(t *testing.T) {
	random := func(int) []byte {
		b := make([]byte, 300)
		_, _ = rand.Read(b)
		return []byte(hex.EncodeToString(b))
	}
	small := func(i int) []byte { return []byte(fmt.Sprintf("row %d", i)) }
	tests := []struct {
		name    string
		opts    Options
		rows    int
		payload func(int) []byte
		files   int // 0: don't check
	}{
		{"one file", Options{}, 100, small, 1},
		{"rows exactly N", Options{MaxRowsPerFile: 50}, 100, small, 2},
		{"rows N+1", Options{MaxRowsPerFile: 50}, 101, small, 3},
		{"bytes", Options{MaxFileBytes: 10000}, 1000, small, 0},
		{"gzip bytes incompressible", Options{Gzip: true, MaxFileBytes: 400 << 10}, 2000, random, 0},
		{"gzip rows", Options{Gzip: true, MaxRowsPerFile: 7}, 20, small, 3},
		{"empty", Options{}, 0, small, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.opts.Dir, tt.opts.Prefix = dir, "x"
			w, err := NewWriter(cols, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range records(tt.rows, tt.payload) {
				if err := w.WriteRecord(rec); err != nil {
					t.Fatal(err)
				}
			}
			files, err := w.Close()
			if err != nil {
				t.Fatal(err)
			}
			if tt.files > 0 && len(files) != tt.files {
				t.Fatalf("%d files, want %d", len(files), tt.files)
			}
			next := 0
			for i, f := range files {
				if want := fmt.Sprintf("x-%04d.%s", i+1, f.Format); f.Name != want {
					t.Fatalf("file %d named %s, want %s", i, f.Name, want)
				}
				if tt.opts.MaxFileBytes > 0 && f.Bytes > tt.opts.MaxFileBytes {
					t.Fatalf("%s has %d bytes, over the limit %d", f.Name, f.Bytes, tt.opts.MaxFileBytes)
				}
				if tt.opts.MaxFileBytes > 0 && i < len(files)-1 && f.Bytes < tt.opts.MaxFileBytes/3 {
					t.Fatalf("%s has only %d bytes of %d: split too early", f.Name, f.Bytes, tt.opts.MaxFileBytes)
				}
				for _, row := range readBack(t, dir, f) {
					if row[0] != fmt.Sprint(next) {
						t.Fatalf("%s: row %v, want id %d", f.Name, row, next)
					}
					next++
				}
			}
			if next != tt.rows {
				t.Fatalf("%d rows read back, want %d", next, tt.rows)
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".*"))
			if len(left) > 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	var sums []string
	for range 2 {
		w, err := NewWriter(cols, Options{Dir: t.TempDir(), Prefix: "d", Gzip: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range records(5000, func(i int) []byte { return []byte(fmt.Sprint(i * i)) }) {
			if err := w.WriteRecord(rec); err != nil {
				t.Fatal(err)
			}
		}
		files, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, files[0].SHA256)
	}
	if sums[0] != sums[1] {
		t.Fatalf("two runs over the same rows differ: %v", sums)
	}
}

func TestRowOverLimit(t *testing.T) {
	w, err := NewWriter(cols, Options{Dir: t.TempDir(), Prefix: "x", MaxFileBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(spill.AppendRecord(nil, [][]byte{[]byte("1"), bytes.Repeat([]byte("a"), 200)})); err == nil {
		t.Fatal("a row larger than --max-file-bytes was accepted")
	}
	w.Abort()
}
