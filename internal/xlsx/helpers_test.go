package xlsx

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/exporter-dev/exporter/internal/column"
)

// cell is a cell read back from raw sheet XML.
type cell struct {
	Ref   string
	T     string // t attribute: "", "b", "inlineStr"
	S     int    // style ID
	V     string // <v>
	Text  string // <is><t>
	Space string // xml:space on <t>
	HasIS bool
}

type sheetXML struct {
	Raw      string
	Rows     [][]cell // by row, cells in order
	RowNums  []int
	Pane     string // pane element, raw
	Filter   string // autoFilter ref
	Selected bool
}

func (s *sheetXML) cellAt(ref string) (cell, bool) {
	for _, r := range s.Rows {
		for _, c := range r {
			if c.Ref == ref {
				return c, true
			}
		}
	}
	return cell{}, false
}

type workbook struct {
	Names   []string // entry names in archive order
	Parts   map[string][]byte
	Sheets  []*sheetXML
	Formats map[int]string // style ID -> number format code ("" for general)
	Bold    map[int]bool
}

// readWorkbook reads a workbook with archive/zip and encoding/xml only.
func readWorkbook(t testing.TB, path string) *workbook {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer zr.Close()
	wb := &workbook{Parts: map[string][]byte{}}
	for _, f := range zr.File {
		wb.Names = append(wb.Names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		wb.Parts[f.Name] = b
	}
	for i := 1; ; i++ {
		b, ok := wb.Parts["xl/worksheets/sheet"+strconv.Itoa(i)+".xml"]
		if !ok {
			break
		}
		wb.Sheets = append(wb.Sheets, parseSheet(t, b))
	}
	wb.Formats, wb.Bold = parseStyles(t, wb.Parts["xl/styles.xml"])
	return wb
}

func parseSheet(t testing.TB, b []byte) *sheetXML {
	t.Helper()
	s := &sheetXML{Raw: string(b)}
	d := xml.NewDecoder(bytes.NewReader(b))
	var cur *cell
	var inV, inT bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("sheet xml: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			switch x.Name.Local {
			case "row":
				s.Rows = append(s.Rows, nil)
				n, _ := strconv.Atoi(attr(x, "r"))
				s.RowNums = append(s.RowNums, n)
			case "c":
				cur = &cell{Ref: attr(x, "r"), T: attr(x, "t")}
				cur.S, _ = strconv.Atoi(attr(x, "s"))
			case "v":
				inV = true
			case "is":
				cur.HasIS = true
			case "t":
				inT = true
				cur.Space = attr(x, "space")
			case "pane":
				s.Pane = attr(x, "state") + " " + attr(x, "ySplit") + " " + attr(x, "topLeftCell")
			case "autoFilter":
				s.Filter = attr(x, "ref")
			case "sheetView":
				s.Selected = attr(x, "tabSelected") == "true" || attr(x, "tabSelected") == "1"
			}
		case xml.EndElement:
			switch x.Name.Local {
			case "c":
				s.Rows[len(s.Rows)-1] = append(s.Rows[len(s.Rows)-1], *cur)
				cur = nil
			case "v":
				inV = false
			case "t":
				inT = false
			}
		case xml.CharData:
			if inV {
				cur.V += string(x)
			}
			if inT && cur != nil {
				cur.Text += string(x)
			}
		}
	}
	return s
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func parseStyles(t testing.TB, b []byte) (map[int]string, map[int]bool) {
	t.Helper()
	var ss struct {
		NumFmts []struct {
			ID   int    `xml:"numFmtId,attr"`
			Code string `xml:"formatCode,attr"`
		} `xml:"numFmts>numFmt"`
		Fonts []struct {
			B *struct{} `xml:"b"`
		} `xml:"fonts>font"`
		Xfs []struct {
			NumFmt int `xml:"numFmtId,attr"`
			Font   int `xml:"fontId,attr"`
		} `xml:"cellXfs>xf"`
	}
	if err := xml.Unmarshal(b, &ss); err != nil {
		t.Fatalf("styles: %v", err)
	}
	codes := map[int]string{1: "0"}
	for _, n := range ss.NumFmts {
		codes[n.ID] = n.Code
	}
	formats, bold := map[int]string{}, map[int]bool{}
	for i, x := range ss.Xfs {
		formats[i] = codes[x.NumFmt]
		bold[i] = x.Font < len(ss.Fonts) && ss.Fonts[x.Font].B != nil
	}
	return formats, bold
}

// testCols is a mix of every kind.
func testCols() []column.Column {
	return []column.Column{
		{Name: "id", Type: "bigint", Kind: column.Int, Scale: -1},
		{Name: "created_at", Type: "timestamptz", Kind: column.TimestampTZ, Scale: -1},
		{Name: "qty", Type: "integer", Kind: column.Int, Scale: -1},
		{Name: "price", Type: "numeric(12,2)", Kind: column.Numeric, Scale: 2},
		{Name: "ratio", Type: "numeric", Kind: column.Numeric, Scale: -1},
		{Name: "note", Type: "text", Kind: column.Text, Scale: -1},
		{Name: "flag", Type: "boolean", Kind: column.Bool, Scale: -1},
		{Name: "day", Type: "date", Kind: column.Date, Scale: -1},
		{Name: "score", Type: "double precision", Kind: column.Float, Scale: -1},
		{Name: "local", Type: "timestamp", Kind: column.Timestamp, Scale: -1},
	}
}

// rowGen makes deterministic rows for testCols.
type rowGen struct {
	x      uint64
	fields [][]byte
	bufs   [][]byte
}

func newRowGen(seed uint64) *rowGen {
	return &rowGen{x: seed | 1, fields: make([][]byte, 10), bufs: make([][]byte, 10)}
}

func (g *rowGen) rnd() uint64 {
	g.x ^= g.x << 13
	g.x ^= g.x >> 7
	g.x ^= g.x << 17
	return g.x
}

var words = strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega")

// row returns the fields of row i; the slices are reused by the next call.
func (g *rowGen) row(i int) [][]byte {
	b := g.bufs
	for k := range b {
		b[k] = b[k][:0]
	}
	b[0] = strconv.AppendInt(b[0], int64(i), 10)
	sec := int64(1735689600) + int64(i)*37
	b[1] = appendTS(b[1], sec, true)
	b[2] = strconv.AppendInt(b[2], int64(g.rnd()%100000), 10)
	b[3] = strconv.AppendInt(b[3], int64(g.rnd()%1000000), 10)
	b[3] = append(b[3], '.')
	b[3] = append(b[3], byte('0'+g.rnd()%10), byte('0'+g.rnd()%10))
	b[4] = strconv.AppendFloat(b[4], float64(g.rnd()%1000000)/977, 'f', 6, 64)
	n := 2 + int(g.rnd()%8)
	for k := 0; k < n; k++ {
		if k > 0 {
			b[5] = append(b[5], ' ')
		}
		b[5] = append(b[5], words[g.rnd()%uint64(len(words))]...)
	}
	if g.rnd()%2 == 0 {
		b[6] = append(b[6], "true"...)
	} else {
		b[6] = append(b[6], "false"...)
	}
	b[7] = appendTS(b[7], sec, false)[:10]
	b[8] = strconv.AppendFloat(b[8], float64(int64(g.rnd()%2000000)-1000000)/3, 'g', -1, 64)
	b[9] = appendTS(b[9], sec+3600, false)
	copy(g.fields, b)
	if i%7 == 3 {
		g.fields[5] = nil // NULL text
	}
	return g.fields
}

func appendTS(b []byte, sec int64, zone bool) []byte {
	days := sec / 86400
	rem := sec % 86400
	y, m, d := civilFromDays(days)
	b = appendPad(b, y, 4)
	b = append(b, '-')
	b = appendPad(b, m, 2)
	b = append(b, '-')
	b = appendPad(b, d, 2)
	b = append(b, 'T')
	b = appendPad(b, int(rem/3600), 2)
	b = append(b, ':')
	b = appendPad(b, int(rem/60%60), 2)
	b = append(b, ':')
	b = appendPad(b, int(rem%60), 2)
	if zone {
		b = append(b, 'Z')
	}
	return b
}

func appendPad(b []byte, v, w int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < w; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func civilFromDays(z int64) (int, int, int) {
	z += 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return int(y), int(m), int(d)
}

// fileSHA hashes a file on disk.
func fileSHA(t testing.TB, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), int64(len(b))
}

// listDir lists names in dir, sorted.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// captureHandler records log records.
type captureHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func (h *captureHandler) count(level slog.Level, substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}

// writeAll writes rows and closes.
func writeAll(t testing.TB, cols []column.Column, opts Options, rows [][][]byte) []File {
	t.Helper()
	w, err := NewWriter(cols, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if err := w.WriteRow(r); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	files, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func path(dir string, f File) string { return filepath.Join(dir, f.Name) }
