package xlsx

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// benchRows are 1024 distinct rows of testCols (int key, timestamptz, int,
// int, text, numeric(12,2), numeric, text, nullable text, bool in spirit).
func benchRows() ([][][]byte, int64) {
	rows := genRows(1024, 42)
	var n int64
	for _, r := range rows {
		for _, f := range r {
			n += int64(len(f)) + 1
		}
	}
	return rows, n
}

func benchWrite(b *testing.B, opts Options) {
	rows, rowBytes := benchRows()
	opts.Dir = b.TempDir()
	opts.Prefix = "bench"
	w, err := NewWriter(testCols(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(rowBytes / int64(len(rows))) // canonical text in, per row
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.WriteRow(rows[i%len(rows)]); err != nil {
			b.Fatal(err)
		}
	}
	files, err := w.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	var size int64
	for _, f := range files {
		size += f.Bytes
	}
	b.ReportMetric(float64(size)/float64(b.N), "xlsx-B/row")
	for _, f := range files {
		_ = os.Remove(path(opts.Dir, f))
	}
}

// BenchmarkWriteRow measures the whole path: conversion, excelize's stream
// writer, deflate of the sheet and assembly of the workbook (in Close).
func BenchmarkWriteRow(b *testing.B) {
	benchWrite(b, Options{})
}

// BenchmarkWriteRowMaxFileBytes adds the MaxFileBytes estimate.
func BenchmarkWriteRowMaxFileBytes(b *testing.B) {
	benchWrite(b, Options{MaxFileBytes: 50 << 20})
}

// BenchmarkLevels compares deflate levels on the same rows.
func BenchmarkLevels(b *testing.B) {
	old := deflateLevel
	defer func() { deflateLevel = old }()
	for _, level := range []int{1, 2, 3, 5} {
		b.Run("level"+strconv.Itoa(level), func(b *testing.B) {
			deflateLevel = level
			benchWrite(b, Options{})
		})
	}
}

// BenchmarkConvert measures the writer's own per-row work (conversion and
// size accounting) without excelize.
func BenchmarkConvert(b *testing.B) {
	rows, rowBytes := benchRows()
	w, err := NewWriter(testCols(), Options{Dir: b.TempDir(), Prefix: "c"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Abort()
	b.ReportAllocs()
	b.SetBytes(rowBytes / int64(len(rows)))
	b.ResetTimer()
	var n int64
	for i := 0; i < b.N; i++ {
		for k, f := range rows[i%len(rows)] {
			w.convert(k, f)
		}
		n += w.rowXMLLen(int64(i + 2))
	}
	if n == 0 {
		b.Fatal(fmt.Sprint(n))
	}
}

// BenchmarkDeflateSheetXML compresses real sheet XML (20,000 rows of
// testCols) at several levels: the choice of deflateLevel.
func BenchmarkDeflateSheetXML(b *testing.B) {
	dir := b.TempDir()
	files := writeAll(b, testCols(), Options{Dir: dir, Prefix: "x"}, genRows(20000, 42))
	wb := readWorkbook(b, path(dir, files[0]))
	data := wb.Parts["xl/worksheets/sheet1.xml"]
	for _, level := range []int{1, 2, 3, 4, 5, 6} {
		b.Run("level"+strconv.Itoa(level), func(b *testing.B) {
			d, err := newDeflater(level)
			if err != nil {
				b.Fatal(err)
			}
			var cw countWriter
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cw.n = 0
				d.fw.Reset(&cw)
				_, _ = d.fw.Write(data)
				_ = d.fw.Close()
			}
			b.ReportMetric(100*float64(cw.n)/float64(len(data)), "%size")
		})
	}
}
