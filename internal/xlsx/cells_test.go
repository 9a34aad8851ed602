package xlsx

import (
	"archive/zip"
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// excelizeFloat is what excelize writes for v (through a real cell).
func excelizeFloat(t *testing.T, v float64) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetCellFloat("Sheet1", "A1", v, -1, 64); err != nil {
		t.Fatal(err)
	}
	s, err := f.GetCellValue("Sheet1", "A1", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAppendExcelFloat(t *testing.T) {
	vals := []float64{0, 1, -1, 0.1, 0.30000000000000004, 45658.00003472222, 1e15 + 0.3, 123456789012345678, 1.25e100,
		-2.5e-7, 1e-300, 9007199254740993, math.MaxFloat64 / 3, 0.000123456789012345678}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		vals = append(vals, (r.Float64()-0.5)*math.Pow(10, float64(r.IntN(40)-20)))
	}
	for _, v := range vals {
		want := excelizeFloat(t, v)
		if got := string(appendExcelFloat(nil, v)); got != want {
			t.Errorf("appendExcelFloat(%v) = %s, excelize %s", v, got, want)
		}
	}
}

func TestRound15(t *testing.T) {
	// Rounded serials have at most 15 significant digits, so excelize
	// writes them unchanged.
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		day := 61 + r.IntN(maxExcelSerial-61)
		v := round15(float64(day)+r.Float64(), day)
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if n := sigDigits(digitsOnly(s)); n > 15 {
			t.Fatalf("round15 gave %s (%d digits)", s, n)
		}
		if got := string(appendExcelFloat(nil, v)); got != s {
			t.Fatalf("excelize would write %s for %s", got, s)
		}
	}
}

func digitsOnly(s string) []byte {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return b
}

func TestNumericValue(t *testing.T) {
	tests := []struct {
		in    string
		ok    bool
		isInt bool
		v     float64
	}{
		{"0", true, true, 0},
		{"-0.00", true, true, 0},
		{"12.50", true, false, 12.5},
		{"12.00", true, true, 12},
		{"123456789012345", true, true, 123456789012345},
		{"1234567890123456", false, false, 0},
		{"1234567890123450000", true, false, 1.23456789012345e18},
		{"0.000000000000001", true, false, 1e-15},
		{"-99999999999999.9", true, false, -99999999999999.9},
		{"99999999999999.99", false, false, 0},
		{"NaN", false, false, 0},
		{"Infinity", false, false, 0},
		{"-Infinity", false, false, 0},
		{"", false, false, 0},
		{"-", false, false, 0},
		{"1.2.3", false, false, 0},
		{"1e5", false, false, 0},
	}
	for _, tc := range tests {
		v, iv, isInt, ok := numericValue([]byte(tc.in))
		if isInt {
			v = float64(iv)
		}
		if ok != tc.ok || isInt != tc.isInt || (ok && v != tc.v) {
			t.Errorf("numericValue(%q) = %v %v %v %v, want %v %v %v", tc.in, v, iv, isInt, ok, tc.v, tc.isInt, tc.ok)
		}
	}
}

func TestIntValue(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"0", true}, {"-42", true}, {"999999999999999", true}, {"1000000000000000", true},
		{"9007199254740992", false}, {"9007199254740993", false}, {"-9223372036854775808", false},
		{"99999999999999999999", false}, {"abc", false}, {"", false}, {"1.5", false},
	}
	for _, tc := range tests {
		if _, ok := intValue([]byte(tc.in)); ok != tc.ok {
			t.Errorf("intValue(%q) ok = %v", tc.in, ok)
		}
	}
}

// TestReplicaMatchesExcelize compares the replica XML of odd texts with what
// excelize writes.
func TestReplicaMatchesExcelize(t *testing.T) {
	texts := []string{
		"plain", `a&b<c>"d'e`, "tab\there\r\nnext", "ctl\x01\x02x", "bad\xff\xfeutf8", "_x0041_ and _x005F_ and _xZZZZ_",
		"emoji 😀", "\ufffe\uffff", " lead", "trail ", "",
	}
	for _, s := range texts {
		f := excelize.NewFile()
		sw, err := f.NewStreamWriter("Sheet1")
		if err != nil {
			t.Fatal(err)
		}
		if err := sw.SetRow("A1", []any{s}); err != nil {
			t.Fatal(err)
		}
		if err := sw.Flush(); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := f.Write(&buf); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		var sheet []byte
		for _, zf := range zr.File {
			if zf.Name == "xl/worksheets/sheet1.xml" {
				rc, _ := zf.Open()
				sheet, _ = io.ReadAll(rc)
				rc.Close()
			}
		}
		i := bytes.Index(sheet, []byte("<row"))
		j := bytes.Index(sheet, []byte("</row>"))
		want := string(sheet[i : j+6])
		w := &Writer{conv: []colConv{{letters: "A", ct: ctText, text: []byte(s)}}}
		w.buildReplica(1)
		got := string(w.rep)
		if s == "\ufffe\uffff" {
			// Valid UTF-8 but not XML: excelize writes U+FFFD, the replica
			// keeps them; same length.
			got = strings.ReplaceAll(strings.ReplaceAll(got, "\ufffe", "\ufffd"), "\uffff", "\ufffd")
		}
		if got != want {
			t.Errorf("%q:\n replica  %s\n excelize %s", s, got, want)
		}
		if n := w.rowXMLLen(1); n < int64(len(want)) {
			t.Errorf("%q: rowXMLLen %d < %d", s, n, len(want))
		}
	}
}
