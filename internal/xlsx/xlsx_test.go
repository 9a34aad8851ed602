package xlsx

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/exporter-dev/exporter/internal/column"
	"github.com/xuri/excelize/v2"
)

func TestCellTypes(t *testing.T) {
	const (
		general = "general"
		date    = "yyyy-mm-dd"
		ts      = "yyyy-mm-dd hh:mm:ss"
	)
	num := func(v string) cell { return cell{V: v} }
	text := func(s string) cell { return cell{T: "inlineStr", Text: s, HasIS: true} }
	tests := []struct {
		name   string
		col    column.Column
		in     []byte
		want   *cell // nil: no <c> at all
		format string
	}{
		{"int", column.Column{Kind: column.Int}, []byte("42"), &cell{V: "42"}, general},
		{"int negative", column.Column{Kind: column.Int}, []byte("-7"), ptr(num("-7")), general},
		{"int 15 digits", column.Column{Kind: column.Int}, []byte("999999999999999"), ptr(num("999999999999999")), general},
		{"int 2^53+1 as text", column.Column{Kind: column.Int}, []byte("9007199254740993"), ptr(text("9007199254740993")), general},
		{"int min int64 as text", column.Column{Kind: column.Int}, []byte("-9223372036854775808"), ptr(text("-9223372036854775808")), general},
		{"int trailing zeros", column.Column{Kind: column.Int}, []byte("1000000000000000000"), ptr(num("1000000000000000000")), general},
		{"numeric scale 2", column.Column{Kind: column.Numeric, Scale: 2}, []byte("12.50"), ptr(num("12.5")), "0.00"},
		{"numeric scale 0", column.Column{Kind: column.Numeric, Scale: 0}, []byte("12"), ptr(num("12")), "0"},
		{"numeric 15 digits", column.Column{Kind: column.Numeric, Scale: -1}, []byte("-1234567890.12345"), ptr(num("-1234567890.12345")), general},
		{"numeric 20 digits as text", column.Column{Kind: column.Numeric, Scale: -1}, []byte("12345678901234567890"), ptr(text("12345678901234567890")), general},
		{"numeric 16 significant as text", column.Column{Kind: column.Numeric, Scale: 4}, []byte("123456789012.3456"), ptr(text("123456789012.3456")), general},
		{"numeric trailing zeros ok", column.Column{Kind: column.Numeric, Scale: 10}, []byte("0.1000000000"), ptr(num("0.1")), "0.0000000000"},
		{"numeric small", column.Column{Kind: column.Numeric, Scale: -1}, []byte("0.000000000000000000001234"), ptr(num("0.000000000000000000001234")), general},
		{"numeric zero", column.Column{Kind: column.Numeric, Scale: 2}, []byte("0.00"), ptr(num("0")), "0.00"},
		{"numeric huge exponent as text", column.Column{Kind: column.Numeric, Scale: -1}, []byte("1" + strings.Repeat("0", 400)), ptr(text("1" + strings.Repeat("0", 400))), general},
		{"numeric NaN", column.Column{Kind: column.Numeric, Scale: -1}, []byte("NaN"), ptr(text("NaN")), general},
		{"numeric Infinity", column.Column{Kind: column.Numeric, Scale: 2}, []byte("Infinity"), ptr(text("Infinity")), general},
		{"numeric -Infinity", column.Column{Kind: column.Numeric, Scale: 2}, []byte("-Infinity"), ptr(text("-Infinity")), general},
		{"float", column.Column{Kind: column.Float}, []byte("1.5"), ptr(num("1.5")), general},
		{"float exponent", column.Column{Kind: column.Float}, []byte("1e-05"), ptr(num("0.00001")), general},
		{"float NaN", column.Column{Kind: column.Float}, []byte("NaN"), ptr(text("NaN")), general},
		{"float Infinity", column.Column{Kind: column.Float}, []byte("Infinity"), ptr(text("Infinity")), general},
		{"float -Infinity", column.Column{Kind: column.Float}, []byte("-Infinity"), ptr(text("-Infinity")), general},
		{"float subnormal as text", column.Column{Kind: column.Float}, []byte("5e-324"), ptr(text("5e-324")), general},
		{"bool true", column.Column{Kind: column.Bool}, []byte("true"), &cell{T: "b", V: "1"}, general},
		{"bool false", column.Column{Kind: column.Bool}, []byte("false"), &cell{T: "b", V: "0"}, general},
		{"date", column.Column{Kind: column.Date}, []byte("2025-01-01"), ptr(num("45658")), date},
		{"date first", column.Column{Kind: column.Date}, []byte("1900-03-01"), ptr(num("61")), date},
		{"date last", column.Column{Kind: column.Date}, []byte("9999-12-31"), ptr(num("2958465")), date},
		{"date too early", column.Column{Kind: column.Date}, []byte("1900-02-28"), ptr(text("1900-02-28")), general},
		{"date too late", column.Column{Kind: column.Date}, []byte("10000-01-01"), ptr(text("10000-01-01")), general},
		{"date infinity", column.Column{Kind: column.Date}, []byte("infinity"), ptr(text("infinity")), general},
		{"date -infinity", column.Column{Kind: column.Date}, []byte("-infinity"), ptr(text("-infinity")), general},
		{"date BC", column.Column{Kind: column.Date}, []byte("0044-03-15 BC"), ptr(text("0044-03-15 BC")), general},
		{"timestamptz Z", column.Column{Kind: column.TimestampTZ}, []byte("2025-01-01T00:00:03Z"), ptr(num("45658.0000347222")), ts},
		{"timestamptz offset ignored", column.Column{Kind: column.TimestampTZ}, []byte("2025-01-01T01:00:03.25+01:00"), ptr(num("45658.0417042824")), ts},
		{"timestamptz noon", column.Column{Kind: column.TimestampTZ}, []byte("2025-06-30T12:00:00-07:00"), ptr(num("45838.5")), ts},
		{"timestamptz infinity", column.Column{Kind: column.TimestampTZ}, []byte("infinity"), ptr(text("infinity")), general},
		{"timestamptz -infinity", column.Column{Kind: column.TimestampTZ}, []byte("-infinity"), ptr(text("-infinity")), general},
		{"timestamptz early", column.Column{Kind: column.TimestampTZ}, []byte("1899-12-31T23:59:59Z"), ptr(text("1899-12-31T23:59:59Z")), general},
		{"timestamp", column.Column{Kind: column.Timestamp}, []byte("2025-06-30T18:00:00"), ptr(num("45838.75")), ts},
		{"timestamp micro", column.Column{Kind: column.Timestamp}, []byte("2025-06-30T00:00:00.000001"), ptr(num("45838")), ts}, // 15 digits: 8.64 µs steps
		{"timestamp year 10000", column.Column{Kind: column.Timestamp}, []byte("10000-01-01T00:00:00"), ptr(text("10000-01-01T00:00:00")), general},
		{"text", column.Column{Kind: column.Text}, []byte("hello"), ptr(text("hello")), general},
		{"text formula-like", column.Column{Kind: column.Text}, []byte("=SUM(A1:A2)"), ptr(text("=SUM(A1:A2)")), general},
		{"text escapes", column.Column{Kind: column.Text}, []byte(`a&b<c>"d'` + "\te\nf"), ptr(text(`a&b<c>"d'` + "\te\nf")), general},
		{"text spaces kept", column.Column{Kind: column.Text}, []byte("  padded "), &cell{T: "inlineStr", Text: "  padded ", HasIS: true, Space: "preserve"}, general},
		{"text json", column.Column{Kind: column.Text}, []byte(`{"a": [1, 2]}`), ptr(text(`{"a": [1, 2]}`)), general},
		{"text number-like stays text", column.Column{Kind: column.Text}, []byte("00123"), ptr(text("00123")), general},
		{"text unicode", column.Column{Kind: column.Text}, []byte("héllo 😀 世界"), ptr(text("héllo 😀 世界")), general},
		{"empty string", column.Column{Kind: column.Text}, []byte{}, &cell{T: "inlineStr", HasIS: true}, general},
		{"empty int is text", column.Column{Kind: column.Int}, []byte{}, &cell{T: "inlineStr", HasIS: true}, general},
		{"NULL text", column.Column{Kind: column.Text}, nil, nil, ""},
		{"NULL int", column.Column{Kind: column.Int}, nil, nil, ""},
		{"NULL date", column.Column{Kind: column.Date}, nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			col := tc.col
			col.Name = "c"
			if col.Kind != column.Numeric {
				col.Scale = -1
			}
			// A second column keeps the row present even for NULL.
			cols := []column.Column{col, {Name: "k", Kind: column.Int, Scale: -1}}
			files := writeAll(t, cols, Options{Dir: dir, Prefix: "t"}, [][][]byte{{tc.in, []byte("1")}})
			wb := readWorkbook(t, path(dir, files[0]))
			got, ok := wb.Sheets[0].cellAt("A2")
			if tc.want == nil {
				if ok {
					t.Fatalf("NULL wrote a cell: %+v", got)
				}
				return
			}
			if !ok {
				t.Fatalf("no cell A2 in %s", wb.Sheets[0].Raw)
			}
			want := *tc.want
			want.Ref = "A2"
			format := wb.Formats[got.S]
			if format == "" {
				format = general
			}
			got.S = 0
			if got != want {
				t.Errorf("cell = %+v, want %+v", got, want)
			}
			if format != tc.format {
				t.Errorf("number format = %q, want %q", format, tc.format)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSerialPrecision(t *testing.T) {
	// Every second of a day must read back as that second.
	for sec := 0; sec < 86400; sec += 7 {
		s := fmt.Sprintf("2031-07-15T%02d:%02d:%02d", sec/3600, sec/60%60, sec%60)
		v, ok := timestampSerial([]byte(s))
		if !ok {
			t.Fatalf("%s not parsed", s)
		}
		// What excelize writes (15 significant digits), read back.
		r, _ := strconv.ParseFloat(string(appendExcelFloat(nil, v)), 64)
		frac := r - math.Floor(r)
		if got := int(math.Round(frac * 86400)); got != sec {
			t.Fatalf("%s: serial %v reads back as second %d", s, r, got)
		}
	}
	bad := []string{"2025-13-01T00:00:00", "2025-02-29T00:00:00", "2025-01-01T24:00:00", "2025-01-01T00:60:00",
		"2025-01-01X00:00:00", "2025-01-01T00:00:00.", "2025-01-01T00:00:00+", "2025-01-01T00:00:00Zx", "2025-01-01T00:00:00 BC"}
	for _, s := range bad {
		if _, ok := timestampSerial([]byte(s)); ok {
			t.Errorf("%q parsed", s)
		}
	}
	if v, ok := timestampSerial([]byte("2024-02-29 12:00:00+05:30")); !ok || v != 45351.5 {
		t.Errorf("leap day with space separator = %v %v", v, ok)
	}
}

func TestTruncation(t *testing.T) {
	long := strings.Repeat("a", 40000)
	// An emoji (two UTF-16 units) straddling the limit is dropped whole.
	straddle := strings.Repeat("b", maxCellUnits-1) + "😀tail"
	// Multi-byte characters: 3 bytes but one unit each.
	han := strings.Repeat("世", maxCellUnits+5)
	exact := strings.Repeat("c", maxCellUnits)
	cols := []column.Column{
		{Name: "t1", Kind: column.Text, Scale: -1},
		{Name: "t2", Kind: column.Text, Scale: -1},
	}
	h := &captureHandler{}
	dir := t.TempDir()
	w, err := NewWriter(cols, Options{Dir: dir, Prefix: "t", Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	rows := [][][]byte{
		{[]byte(long), []byte(straddle)},
		{[]byte(han), []byte(exact)},
		{[]byte(long), nil},
	}
	for _, r := range rows {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	files, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Truncated(); got != 4 {
		t.Errorf("Truncated() = %d, want 4", got)
	}
	if n := h.count(slog.LevelWarn, "truncated"); n != 2 {
		t.Errorf("%d truncation warnings, want one per column (2)", n)
	}
	wb := readWorkbook(t, path(dir, files[0]))
	s := wb.Sheets[0]
	want := map[string]string{
		"A2": long[:maxCellUnits],
		"B2": straddle[:maxCellUnits-1],
		"A3": strings.Repeat("世", maxCellUnits),
		"B3": exact,
		"A4": long[:maxCellUnits],
	}
	for ref, w := range want {
		c, _ := s.cellAt(ref)
		if c.Text != w {
			t.Errorf("%s: %d units, want %d", ref, len(utf16.Encode([]rune(c.Text))), len(utf16.Encode([]rune(w))))
		}
	}
}

func TestTruncateUTF16(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
		cut  bool
	}{
		{"abc", 3, "abc", false},
		{"abcd", 3, "abc", true},
		{"a😀", 2, "a", true},
		{"a😀", 3, "a😀", false},
		{"éé", 1, "é", true},
		{"a\xffb", 2, "a\xff", true},
	}
	for _, tc := range tests {
		got, cut := truncateUTF16([]byte(tc.in), tc.max)
		if string(got) != tc.want || cut != tc.cut {
			t.Errorf("truncateUTF16(%q, %d) = %q, %v; want %q, %v", tc.in, tc.max, got, cut, tc.want, tc.cut)
		}
	}
}

func genRows(n int, seed uint64) [][][]byte {
	g := newRowGen(seed)
	rows := make([][][]byte, n)
	for i := range rows {
		r := g.row(i)
		cp := make([][]byte, len(r))
		for k, f := range r {
			if f != nil {
				cp[k] = append([]byte{}, f...)
			}
		}
		rows[i] = cp
	}
	return rows
}

// checkSheets verifies header, panes, filter and the ids of the data rows.
func checkSheets(t *testing.T, wb *workbook, wantRows []int64, firstID int) int {
	t.Helper()
	return checkSheetsSel(t, wb, wantRows, firstID, true)
}

// checkSheetsSel is checkSheets; firstSelected says whether the first sheet
// must be the selected tab (a sheet moved on by the MaxFileBytes safety net
// is selected in no workbook).
func checkSheetsSel(t *testing.T, wb *workbook, wantRows []int64, firstID int, firstSelected bool) int {
	t.Helper()
	if len(wb.Sheets) != len(wantRows) {
		t.Fatalf("%d sheets, want %d", len(wb.Sheets), len(wantRows))
	}
	id := firstID
	for i, s := range wb.Sheets {
		if got := int64(len(s.Rows) - 1); got != wantRows[i] {
			t.Errorf("sheet %d: %d data rows, want %d", i+1, got, wantRows[i])
		}
		hdr, _ := s.cellAt("A1")
		if hdr.Text != "id" || !wb.Bold[hdr.S] {
			t.Errorf("sheet %d: header A1 = %+v, want bold \"id\"", i+1, hdr)
		}
		if s.Pane != "frozen 1 A2" {
			t.Errorf("sheet %d: pane %q", i+1, s.Pane)
		}
		if want := fmt.Sprintf("$A$1:$J$%d", wantRows[i]+1); s.Filter != want {
			t.Errorf("sheet %d: autofilter %q, want %q", i+1, s.Filter, want)
		}
		if s.Selected != (i == 0 && firstSelected) && (i > 0 || firstSelected) {
			t.Errorf("sheet %d: tabSelected = %v", i+1, s.Selected)
		}
		for r := 1; r < len(s.Rows); r++ {
			if s.RowNums[r] != r+1 {
				t.Fatalf("sheet %d: row %d numbered %d", i+1, r+1, s.RowNums[r])
			}
			c := s.Rows[r][0]
			if c.V != strconv.Itoa(id) {
				t.Fatalf("sheet %d row %d: id %q, want %d", i+1, r+1, c.V, id)
			}
			id++
		}
	}
	wbXML := string(wb.Parts["xl/workbook.xml"])
	for i := range wb.Sheets {
		if !strings.Contains(wbXML, fmt.Sprintf(`<sheet name="Sheet%d"`, i+1)) {
			t.Errorf("workbook.xml lacks Sheet%d: %s", i+1, wbXML)
		}
		if !strings.Contains(wbXML, fmt.Sprintf(`&#39;Sheet%d&#39;!$A$1:$J$%d`, i+1, wantRows[i]+1)) {
			t.Errorf("workbook.xml lacks the filter name of Sheet%d", i+1)
		}
	}
	return id
}

func TestSheetSplit(t *testing.T) {
	tests := []struct {
		rows int
		want []int64
	}{
		{1, []int64{1}},
		{4, []int64{4}},
		{5, []int64{5}},
		{6, []int64{5, 1}},
		{10, []int64{5, 5}},
		{11, []int64{5, 5, 1}},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.rows), func(t *testing.T) {
			dir := t.TempDir()
			files := writeAll(t, testCols(), Options{Dir: dir, Prefix: "s", MaxRowsPerSheet: 5}, genRows(tc.rows, 1))
			if len(files) != 1 {
				t.Fatalf("%d files", len(files))
			}
			var sheets []Sheet
			for i, n := range tc.want {
				sheets = append(sheets, Sheet{Name: "Sheet" + strconv.Itoa(i+1), Rows: n})
			}
			f := files[0]
			if f.Name != "s-0001.xlsx" || f.Rows != int64(tc.rows) || fmt.Sprint(f.Sheets) != fmt.Sprint(sheets) {
				t.Errorf("file = %+v, want %d rows in %v", f, tc.rows, sheets)
			}
			checkSheets(t, readWorkbook(t, path(dir, f)), tc.want, 0)
		})
	}
}

func TestFileSplitRows(t *testing.T) {
	dir := t.TempDir()
	files := writeAll(t, testCols(), Options{Dir: dir, Prefix: "r", MaxRowsPerSheet: 3, MaxRowsPerFile: 7}, genRows(16, 2))
	want := [][]int64{{3, 3, 1}, {3, 3, 1}, {2}}
	if len(files) != len(want) {
		t.Fatalf("%d files, want %d: %+v", len(files), len(want), files)
	}
	id := 0
	for i, f := range files {
		if name := fmt.Sprintf("r-%04d.xlsx", i+1); f.Name != name {
			t.Errorf("name %q, want %q", f.Name, name)
		}
		sum, size := fileSHA(t, path(dir, f))
		if sum != f.SHA256 || size != f.Bytes {
			t.Errorf("%s: sha/bytes %s/%d, on disk %s/%d", f.Name, f.SHA256, f.Bytes, sum, size)
		}
		id = checkSheets(t, readWorkbook(t, path(dir, f)), want[i], id)
	}
	if got := listDir(t, dir); fmt.Sprint(got) != "[r-0001.xlsx r-0002.xlsx r-0003.xlsx]" {
		t.Errorf("dir holds %v", got)
	}
	// Exactly a multiple of the file limit gives no empty trailing file.
	dir2 := t.TempDir()
	files = writeAll(t, testCols(), Options{Dir: dir2, Prefix: "r", MaxRowsPerFile: 5}, genRows(10, 2))
	if len(files) != 2 || files[0].Rows != 5 || files[1].Rows != 5 {
		t.Errorf("10 rows by 5: %+v", files)
	}
}

func TestFileSplitBytes(t *testing.T) {
	for _, limit := range []int64{40 << 10, 200 << 10} {
		t.Run(strconv.FormatInt(limit, 10), func(t *testing.T) {
			dir := t.TempDir()
			rows := genRows(12000, 3)
			files := writeAll(t, testCols(), Options{Dir: dir, Prefix: "b", MaxRowsPerSheet: 1500, MaxFileBytes: limit}, rows)
			if len(files) < 2 {
				t.Fatalf("%d files", len(files))
			}
			var total int64
			id := 0
			for i, f := range files {
				st, err := os.Stat(path(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() != f.Bytes || f.Bytes > limit {
					t.Errorf("%s: %d bytes (reported %d), limit %d", f.Name, st.Size(), f.Bytes, limit)
				}
				// The estimate is an upper bound, but not a loose one.
				if i < len(files)-1 && float64(f.Bytes) < 0.85*float64(limit) {
					t.Errorf("%s: only %d bytes of %d", f.Name, f.Bytes, limit)
				}
				var sheetRows []int64
				for _, s := range f.Sheets {
					sheetRows = append(sheetRows, s.Rows)
				}
				id = checkSheets(t, readWorkbook(t, path(dir, f)), sheetRows, id)
				total += f.Rows
				t.Logf("%s: %d bytes, %d rows, %d sheets", f.Name, f.Bytes, f.Rows, len(f.Sheets))
			}
			if total != int64(len(rows)) || id != len(rows) {
				t.Errorf("%d rows written, want %d", total, len(rows))
			}
		})
	}
}

func TestFileSplitBytesIncompressible(t *testing.T) {
	// Random text compresses badly: the estimate must still hold.
	cols := []column.Column{{Name: "id", Kind: column.Int, Scale: -1}, {Name: "blob", Kind: column.Text, Scale: -1}}
	g := newRowGen(99)
	var rows [][][]byte
	for i := 0; i < 3000; i++ {
		b := make([]byte, 20+g.rnd()%200)
		for k := range b {
			b[k] = byte(33 + g.rnd()%94)
		}
		rows = append(rows, [][]byte{[]byte(strconv.Itoa(i)), b})
	}
	dir := t.TempDir()
	const limit = 100 << 10
	files := writeAll(t, cols, Options{Dir: dir, Prefix: "x", MaxFileBytes: limit}, rows)
	var total int64
	for _, f := range files {
		if f.Bytes > limit {
			t.Errorf("%s: %d bytes > %d", f.Name, f.Bytes, limit)
		}
		total += f.Rows
	}
	if total != 3000 || len(files) < 3 {
		t.Errorf("%d files, %d rows", len(files), total)
	}
}

func TestCarryOver(t *testing.T) {
	// Force the safety net: with the estimate switched off, a finished
	// workbook over the limit moves its last sheets on.
	dir := t.TempDir()
	w, err := NewWriter(testCols(), Options{Dir: dir, Prefix: "c", MaxRowsPerSheet: 400, MaxFileBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	w.est = nil // no estimate: only the check at the end of a workbook
	w.opts.MaxRowsPerFile = 2000
	rows := genRows(4000, 5)
	for _, r := range rows {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	files, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	id := 0
	for _, f := range files {
		if f.Bytes > 64<<10 {
			t.Errorf("%s: %d bytes", f.Name, f.Bytes)
		}
		var sr []int64
		for _, s := range f.Sheets {
			sr = append(sr, s.Rows)
		}
		id = checkSheetsSel(t, readWorkbook(t, path(dir, f)), sr, id, false)
		total += f.Rows
	}
	if len(files) < 2 {
		t.Errorf("%d files", len(files))
	}
	if total != 4000 {
		t.Errorf("%d rows", total)
	}
}

func TestRowTooBig(t *testing.T) {
	cols := []column.Column{{Name: "blob", Kind: column.Text, Scale: -1}}
	dir := t.TempDir()
	w, err := NewWriter(cols, Options{Dir: dir, Prefix: "big", MaxFileBytes: 12 << 10})
	if err != nil {
		t.Fatal(err)
	}
	g := newRowGen(7)
	small := []byte("fits")
	if err := w.WriteRow([][]byte{small}); err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, 30000)
	for i := range huge {
		huge[i] = byte('a' + g.rnd()%26)
	}
	err = w.WriteRow([][]byte{huge})
	if err == nil || !strings.Contains(err.Error(), "MaxFileBytes") {
		t.Fatalf("err = %v, want a MaxFileBytes error", err)
	}
	if err2 := w.WriteRow([][]byte{small}); err2 == nil {
		t.Error("writer still accepts rows after an error")
	}
	if _, err := w.Close(); err == nil {
		t.Error("Close succeeded after an error")
	}
	w.Abort()
	for _, n := range listDir(t, dir) {
		if !strings.HasSuffix(n, ".xlsx") || strings.HasPrefix(n, ".") {
			t.Errorf("left behind: %s", n)
		}
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	cols := testCols()
	bad := []Options{
		{Prefix: "x"},
		{Dir: dir},
		{Dir: dir, Prefix: "a/b"},
		{Dir: dir, Prefix: "x", MaxRowsPerSheet: maxSheetRows + 1},
		{Dir: dir, Prefix: "x", MaxRowsPerSheet: -1},
		{Dir: dir, Prefix: "x", MaxRowsPerFile: -1},
		{Dir: dir, Prefix: "x", MaxFileBytes: -1},
		{Dir: dir, Prefix: "x", MaxFileBytes: 1000}, // smaller than an empty workbook
		{Dir: filepath.Join(dir, "missing"), Prefix: "x"},
		{Dir: dir, Prefix: "x", TmpDir: filepath.Join(dir, "missing")},
	}
	for _, o := range bad {
		if w, err := NewWriter(cols, o); err == nil {
			w.Abort()
			t.Errorf("NewWriter(%+v) succeeded", o)
		}
	}
	if os.Getuid() != 0 {
		ro := t.TempDir()
		_ = os.Chmod(ro, 0o555)
		if w, err := NewWriter(cols, Options{Dir: dir, Prefix: "x", TmpDir: ro}); err == nil {
			w.Abort()
			t.Error("read-only TmpDir accepted")
		}
	}
	many := make([]column.Column, maxColumns+1)
	if _, err := NewWriter(many, Options{Dir: dir, Prefix: "x"}); err == nil {
		t.Error("too many columns accepted")
	}
	w, err := NewWriter(cols, Options{Dir: dir, Prefix: "x", MaxRowsPerSheet: maxSheetRows})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRow(make([][]byte, 3)); err == nil {
		t.Error("short row accepted")
	}
	w.Abort()
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("dir holds %v", got)
	}
}

func TestZeroRows(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	files := writeAll(t, testCols(), Options{Dir: dir, Prefix: "z", TmpDir: tmp}, nil)
	if len(files) != 1 || files[0].Name != "z-0001.xlsx" || files[0].Rows != 0 || len(files[0].Sheets) != 1 || files[0].Sheets[0] != (Sheet{"Sheet1", 0}) {
		t.Fatalf("files = %+v", files)
	}
	wb := readWorkbook(t, path(dir, files[0]))
	checkSheets(t, wb, []int64{0}, 0)
	var hdr []string
	for _, c := range wb.Sheets[0].Rows[0] {
		hdr = append(hdr, c.Text)
	}
	if got := strings.Join(hdr, ","); got != "id,created_at,qty,price,ratio,note,flag,day,score,local" {
		t.Errorf("header %s", got)
	}
	if got := listDir(t, tmp); len(got) != 0 {
		t.Errorf("TmpDir holds %v", got)
	}
	if got := listDir(t, dir); len(got) != 1 {
		t.Errorf("Dir holds %v", got)
	}
	// Zero columns too.
	dir2 := t.TempDir()
	files = writeAll(t, nil, Options{Dir: dir2, Prefix: "z"}, [][][]byte{{}, {}})
	if len(files) != 1 || files[0].Rows != 2 {
		t.Errorf("no columns: %+v", files)
	}
}

func TestDeterminism(t *testing.T) {
	rows := genRows(2500, 11)
	var sums []string
	for run := 0; run < 2; run++ {
		dir := t.TempDir()
		h := &captureHandler{}
		files := writeAll(t, testCols(), Options{Dir: dir, Prefix: "d", MaxRowsPerSheet: 1000, Logger: slog.New(h)}, rows)
		if n := h.count(slog.LevelWarn, ""); n != 0 {
			t.Errorf("%d warnings (size prediction?)", n)
		}
		if len(files) != 1 || len(files[0].Sheets) != 3 {
			t.Fatalf("files = %+v", files)
		}
		sum, size := fileSHA(t, path(dir, files[0]))
		if sum != files[0].SHA256 || size != files[0].Bytes {
			t.Fatalf("reported %s/%d, on disk %s/%d", files[0].SHA256, files[0].Bytes, sum, size)
		}
		sums = append(sums, sum)
		wb := readWorkbook(t, path(dir, files[0]))
		if wb.Names[0] != "[Content_Types].xml" {
			t.Errorf("first entry %s", wb.Names[0])
		}
		core := string(wb.Parts["docProps/core.xml"])
		if strings.Count(core, "W3CDTF\">1980-01-01T00:00:00Z<") != 2 {
			t.Errorf("core.xml: %s", core)
		}
		checkSheets(t, wb, []int64{1000, 1000, 500}, 0)
	}
	if sums[0] != sums[1] {
		t.Errorf("two runs differ: %s %s", sums[0], sums[1])
	}
}

func TestSheetXMLLimit(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(testCols(), Options{Dir: dir, Prefix: "x"})
	if err != nil {
		t.Fatal(err)
	}
	w.sheetXMLLimit = w.hdrXML + 20000
	for _, r := range genRows(300, 4) {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	files, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || len(files[0].Sheets) < 3 {
		t.Fatalf("files = %+v", files)
	}
	wb := readWorkbook(t, path(dir, files[0]))
	for i := 1; i <= len(wb.Sheets); i++ {
		n := len(wb.Parts["xl/worksheets/sheet"+strconv.Itoa(i)+".xml"])
		if int64(n) > w.sheetXMLLimit {
			t.Errorf("sheet %d: %d bytes of XML, limit %d", i, n, w.sheetXMLLimit)
		}
	}
}

func TestNoRetention(t *testing.T) {
	// The caller reuses its buffers: the workbook must hold what each row
	// had when it was written.
	cols := []column.Column{{Name: "t", Kind: column.Text, Scale: -1}, {Name: "n", Kind: column.Float, Scale: -1}}
	dir := t.TempDir()
	w, err := NewWriter(cols, Options{Dir: dir, Prefix: "n", MaxRowsPerSheet: 2})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 16)
	nb := make([]byte, 0, 16)
	for i := 0; i < 5; i++ {
		buf = append(buf[:0], fmt.Sprintf("row-%d", i)...)
		nb = strconv.AppendInt(nb[:0], int64(i*11), 10)
		if err := w.WriteRow([][]byte{buf, nb}); err != nil {
			t.Fatal(err)
		}
		copy(buf, "XXXXXXXX")
		copy(nb, "99")
	}
	files, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	wb := readWorkbook(t, path(dir, files[0]))
	i := 0
	for _, s := range wb.Sheets {
		for _, r := range s.Rows[1:] {
			if r[0].Text != fmt.Sprintf("row-%d", i) || r[1].V != strconv.Itoa(i*11) {
				t.Errorf("row %d = %+v", i, r)
			}
			i++
		}
	}
}

func TestAbort(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	w, err := NewWriter(testCols(), Options{Dir: dir, Prefix: "a", TmpDir: tmp, MaxRowsPerSheet: 10, MaxRowsPerFile: 30})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range genRows(45, 6) {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Abort()
	if got := listDir(t, tmp); len(got) != 0 {
		t.Errorf("TmpDir holds %v", got)
	}
	// The finished first workbook stays; nothing partial does.
	if got := listDir(t, dir); fmt.Sprint(got) != "[a-0001.xlsx]" {
		t.Errorf("Dir holds %v", got)
	}
	if err := w.WriteRow(make([][]byte, 10)); err == nil {
		t.Error("WriteRow after Abort succeeded")
	}
	if _, err := w.Close(); err == nil {
		t.Error("Close after Abort succeeded")
	}
}

func TestExcelizeReadsBack(t *testing.T) {
	dir := t.TempDir()
	files := writeAll(t, testCols(), Options{Dir: dir, Prefix: "e", MaxRowsPerSheet: 50}, genRows(120, 8))
	f, err := excelize.OpenFile(path(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); fmt.Sprint(got) != "[Sheet1 Sheet2 Sheet3]" {
		t.Fatalf("sheets %v", got)
	}
	rows, err := f.GetRows("Sheet3")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 21 || rows[0][0] != "id" || rows[1][0] != "100" {
		t.Errorf("Sheet3 rows: %d, first %v", len(rows), rows[:2])
	}
}

// TestOpenpyxl reads a workbook with an independent reader.
func TestOpenpyxl(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import openpyxl").Run(); err != nil {
		if os.Getenv("EXPORTER_TEST_DISALLOW_SKIP") == "1" {
			t.Fatalf("python3 with openpyxl is needed: %v", err)
		}
		t.Skipf("python3 with openpyxl not available: %v", err)
	}
	dir := t.TempDir()
	cols := testCols()
	rows := [][][]byte{
		{[]byte("1"), []byte("2025-01-01T00:00:03Z"), []byte("9007199254740993"), []byte("12.50"), []byte("12345678901234567890.5"),
			[]byte("=1+1"), []byte("true"), []byte("2025-01-01"), []byte("NaN"), []byte("2025-06-30T18:00:00")},
		{[]byte("2"), []byte("infinity"), nil, []byte("-0.01"), []byte("NaN"), []byte(""), []byte("false"), []byte("1899-12-31"),
			[]byte("-Infinity"), []byte("2025-06-30T00:00:00.5")},
		{[]byte("3"), nil, []byte("0"), nil, []byte("0.5"), []byte("héllo 😀 \"q\" <tag> & more"), nil, nil, []byte("1.25e+100"), nil},
	}
	files := writeAll(t, cols, Options{Dir: dir, Prefix: "p", MaxRowsPerSheet: 2}, rows)
	script := `
import json, sys, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {"sheets": wb.sheetnames, "data": {}}
for ws in wb.worksheets:
    rows = []
    for row in ws.iter_rows():
        cells = []
        for c in row:
            v = c.value
            if isinstance(v, (datetime.datetime, datetime.date)):
                v = v.isoformat()
            cells.append([c.coordinate, type(c.value).__name__, v, c.number_format, bool(c.font.b)])
        rows.append(cells)
    out["data"][ws.title] = {"rows": rows, "freeze": ws.freeze_panes, "filter": ws.auto_filter.ref}
print(json.dumps(out))
`
	sp := filepath.Join(t.TempDir(), "read.py")
	if err := os.WriteFile(sp, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(py, sp, path(dir, files[0]))
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("openpyxl: %v\n%s", err, stderr.String())
	}
	var out struct {
		Sheets []string
		Data   map[string]struct {
			Rows   [][][]any
			Freeze string
			Filter string
		}
	}
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("%v: %s", err, outb)
	}
	if fmt.Sprint(out.Sheets) != "[Sheet1 Sheet2]" {
		t.Fatalf("sheets %v", out.Sheets)
	}
	type want struct {
		typ    string
		val    any
		format string
	}
	cellsOf := func(sheet string) map[string][]any {
		m := map[string][]any{}
		for _, r := range out.Data[sheet].Rows {
			for _, c := range r {
				m[c[0].(string)] = c
			}
		}
		return m
	}
	s1, s2 := cellsOf("Sheet1"), cellsOf("Sheet2")
	checks := []struct {
		cells map[string][]any
		ref   string
		w     want
	}{
		{s1, "A1", want{"str", "id", "General"}},
		{s1, "A2", want{"int", 1.0, "General"}},
		{s1, "B2", want{"datetime", "2025-01-01T00:00:03", "yyyy-mm-dd hh:mm:ss"}},
		{s1, "C2", want{"str", "9007199254740993", "General"}},
		{s1, "D2", want{"float", 12.5, "0.00"}},
		{s1, "E2", want{"str", "12345678901234567890.5", "General"}},
		{s1, "F2", want{"str", "=1+1", "General"}},
		{s1, "G2", want{"bool", true, "General"}},
		{s1, "H2", want{"datetime", "2025-01-01T00:00:00", "yyyy-mm-dd"}},
		{s1, "I2", want{"str", "NaN", "General"}},
		{s1, "J2", want{"datetime", "2025-06-30T18:00:00", "yyyy-mm-dd hh:mm:ss"}},
		{s1, "B3", want{"str", "infinity", "General"}},
		{s1, "C3", want{"NoneType", nil, "General"}},
		{s1, "D3", want{"float", -0.01, "0.00"}},
		{s1, "F3", want{"str", "", "General"}},
		{s1, "G3", want{"bool", false, "General"}},
		{s1, "H3", want{"str", "1899-12-31", "General"}},
		{s1, "I3", want{"str", "-Infinity", "General"}},
		{s1, "J3", want{"datetime", "2025-06-30T00:00:00.500000", "yyyy-mm-dd hh:mm:ss"}},
		{s2, "A2", want{"int", 3.0, "General"}},
		{s2, "C2", want{"int", 0.0, "General"}},
		{s2, "E2", want{"float", 0.5, "General"}},
		{s2, "F2", want{"str", "héllo 😀 \"q\" <tag> & more", "General"}},
		{s2, "I2", want{"int", 1.25e100, "General"}}, // excelize writes every digit
		{s2, "B2", want{"NoneType", nil, "General"}},
	}
	for _, c := range checks {
		got, ok := c.cells[c.ref]
		if !ok {
			if c.w.typ == "NoneType" {
				continue
			}
			t.Errorf("%s missing", c.ref)
			continue
		}
		if got[1] != c.w.typ || fmt.Sprint(got[2]) != fmt.Sprint(c.w.val) || (c.w.typ != "NoneType" && got[3] != c.w.format) {
			t.Errorf("%s = %v, want %v", c.ref, got[1:4], c.w)
		}
	}
	if a1 := s2["A1"]; a1 == nil || a1[4] != true {
		t.Errorf("Sheet2 header not bold: %v", a1)
	}
	for _, name := range out.Sheets {
		d := out.Data[name]
		if d.Freeze != "A2" {
			t.Errorf("%s: freeze %q", name, d.Freeze)
		}
		if f := strings.ReplaceAll(d.Filter, "$", ""); !strings.HasPrefix(f, "A1:J") {
			t.Errorf("%s: filter %q", name, d.Filter)
		}
	}
}

func TestBoxes(t *testing.T) {
	if !boxesOK {
		t.Fatal("mutable interface boxes do not work on this runtime; the writer falls back to allocating")
	}
}

func TestOverheadExtrapolation(t *testing.T) {
	w, err := NewWriter(testCols(), Options{Dir: t.TempDir(), Prefix: "o", MaxFileBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, n := range []int{5, 8, 12, 40} {
		est, err := w.overheadFor(n)
		if err != nil {
			t.Fatal(err)
		}
		rows := make([]int64, n)
		for i := range rows {
			rows[i] = maxSheetRows
		}
		es, err := w.parts(rows)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			es = append(es, zipEntry{name: sheetPartName(i + 1)})
		}
		if exact := zipSize(es); est < exact || est > exact+int64(n)*200 {
			t.Errorf("%d sheets: extrapolated %d, exact %d", n, est, exact)
		} else {
			t.Logf("%d sheets: extrapolated %d, exact %d", n, est, exact)
		}
	}
}

// TestDimension checks each sheet's used range: readers such as openpyxl in
// read-only mode read only that many rows.
func TestDimension(t *testing.T) {
	cols := []column.Column{{Name: "a", Kind: column.Int}, {Name: "b", Kind: column.Text}}
	var rows [][][]byte
	for i := range 7 {
		rows = append(rows, [][]byte{[]byte(strconv.Itoa(i)), []byte("x")})
	}
	dir := t.TempDir()
	files := writeAll(t, cols, Options{Dir: dir, Prefix: "d", MaxRowsPerSheet: 5}, rows)
	zr, err := zip.OpenReader(path(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	want := map[string]string{"xl/worksheets/sheet1.xml": `<dimension ref="A1:B6">`, "xl/worksheets/sheet2.xml": `<dimension ref="A1:B3">`}
	for _, f := range zr.File {
		w, ok := want[f.Name]
		if !ok {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("%s: no %s in %.300s", f.Name, w, b)
		}
		delete(want, f.Name)
	}
	if len(want) > 0 {
		t.Fatalf("sheets not found: %v", want)
	}
}

func TestFixedNameAndSheetName(t *testing.T) {
	cols := []column.Column{{Name: "region", Kind: column.Text}, {Name: "count(*)", Kind: column.Int}}
	rows := [][][]byte{{[]byte("east"), []byte("3")}, {[]byte("west"), []byte("4")}, {nil, []byte("1")}}
	dir := t.TempDir()
	files := writeAll(t, cols, Options{Dir: dir, Name: "r-summary.xlsx", SheetName: "Summary", MaxRowsPerSheet: 2}, rows)
	if len(files) != 1 || files[0].Name != "r-summary.xlsx" || len(files[0].Sheets) != 2 ||
		files[0].Sheets[0].Name != "Summary" || files[0].Sheets[1].Name != "Summary 2" {
		t.Fatalf("files %+v", files)
	}
	f, err := excelize.OpenFile(path(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 2 || got[0] != "Summary" || got[1] != "Summary 2" {
		t.Fatalf("sheets %v", got)
	}
	if v, _ := f.GetCellValue("Summary", "B1"); v != "count(*)" {
		t.Fatalf("header B1 = %q", v)
	}
	if _, err := NewWriter(cols, Options{Dir: dir, Name: "x.xlsx", MaxRowsPerFile: 5}); err == nil {
		t.Fatal("a fixed name with a file limit was accepted")
	}
}
