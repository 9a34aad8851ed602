// Package xlsx writes the rows of an export into XLSX workbooks, split into
// sheets and files, through excelize's StreamWriter.
//
// Memory does not grow with rows: one sheet is streamed at a time (excelize
// spills its XML to TmpDir beyond 16 MiB), each finished sheet is deflated
// into a spool file, and a workbook is assembled from the spooled parts when
// it is complete. The same rows always give the same bytes.
//
// Values arrive as the canonical text of package column and become typed
// cells: numbers when Excel can hold every significant digit (at most 15),
// dates and timestamps as date serials with a number format, booleans, and
// text (inline strings, never formulas) for everything else, including
// numbers and dates Excel cannot show exactly.
package xlsx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/exporter-dev/exporter/internal/column"
	"github.com/xuri/excelize/v2"
)

// Options configure a Writer.
type Options struct {
	// Dir is the folder where finished workbooks go.
	Dir string
	// Prefix names the workbooks PREFIX-0001.xlsx, PREFIX-0002.xlsx, ...
	Prefix string
	// Name, when set instead of Prefix, is the name of the one workbook
	// written, such as PREFIX-summary.xlsx: files are not split.
	Name string
	// SheetName names the sheets SheetName, "SheetName 2", ...; the
	// default is Sheet1, Sheet2, ...
	SheetName string
	// MaxRowsPerSheet is the number of data rows per sheet (each sheet also
	// has the header row). 0 means 1048575, the most Excel allows.
	MaxRowsPerSheet int
	// MaxRowsPerFile is the number of data rows per workbook; 0 = no limit.
	MaxRowsPerFile int64
	// MaxFileBytes is the largest a finished workbook may be; 0 = no limit.
	// The writer keeps an upper bound of the compressed size as rows go in
	// and starts a new workbook before the limit would be passed; a row
	// that does not fit even in a workbook of its own is an error.
	MaxFileBytes int64
	// TmpDir receives excelize's sheet spill and the writer's spool files;
	// it defaults to Dir and must be writable.
	TmpDir string
	// Logger may be nil.
	Logger *slog.Logger
}

// File describes one finished workbook.
type File struct {
	Name   string  `json:"name"` // base name, in Options.Dir
	Rows   int64   `json:"rows"` // data rows
	Bytes  int64   `json:"bytes"`
	SHA256 string  `json:"sha256"` // hex
	Sheets []Sheet `json:"sheets"`
}

// Sheet describes one sheet of a workbook.
type Sheet struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"` // data rows, without the header
}

// deflateLevel is the compression level of the deflate streams
// (github.com/klauspost/compress/flate): see BenchmarkLevels.
var deflateLevel = 2

// sheetXMLLimit keeps every worksheet part under 4 GiB uncompressed: the
// writer does not go through excelize's zip64 patch.
const sheetXMLLimit = 3584 << 20 // 3.5 GiB

// Slack added to MaxFileBytes estimates (with 0.5% of the sheet): the
// deflate bit writer's buffered bytes, the difference between compressing a
// sheet in one stream and in parts, and between the replica and excelize's
// XML.
const estimateSlack = 2048

var (
	errClosed     = errors.New("xlsx: writer is closed")
	anyTrue   any = true
	anyFalse  any = false
)

// styleSet holds the style IDs the writer uses. Every excelize.File the
// writer makes creates them in the same order, so the IDs are the same in
// all of them; newFile checks that.
type styleSet struct {
	bold, date, timestamp int
	numeric               []int // by scale order, see Writer.scales
}

// colConv turns one column's canonical text into a cell.
type colConv struct {
	kind     column.Kind
	scale    int
	name     string
	letters  string
	numStyle int // style of numbers in this column (numeric scale, date, timestamp)

	cell excelize.Cell
	ptr  any // &cell

	fp *float64
	fv any
	ip *int64
	iv any
	sp *string
	sv any

	// the current value
	ct     cellType
	text   []byte  // canonical text (or the truncated text of a text cell)
	val    float64 // for ctFloat
	ival   int64   // for ctInt
	fmtVal bool    // excelize formats val (Float, timestamps); else text is the number

	warned bool
}

// doneSheet is a finished sheet waiting for its workbook.
type doneSheet struct {
	entry zipEntry
	rows  int64
}

// Writer writes rows into workbooks. It is not safe for concurrent use.
type Writer struct {
	opts          Options
	log           *slog.Logger
	work          string // private folder in TmpDir
	maxSheetRows  int64
	sheetXMLLimit int64

	conv   []colConv
	row    []any
	header []any
	scales []int // distinct numeric scales, in column order
	widths []colRange
	styles *styleSet
	panes  excelize.Panes
	hdrXML int64 // XML bytes of a sheet before its data rows (upper bound)

	level int
	d     *deflater
	ref   []byte
	rep   []byte // replica XML of the current row (MaxFileBytes)
	tmp   []byte

	est       *estimator
	emptySize int64         // compressed size of a sheet with the header only
	overhead  map[int]int64 // zip size of a workbook's parts and headers, by sheet count
	spoolSeq  int

	// current sheet
	sf           *excelize.File
	sw           *excelize.StreamWriter
	sheetRows    int64
	sheetXML     int64 // upper bound of the sheet's XML so far
	spillChecked bool

	// current workbook
	done     []doneSheet
	doneRows int64

	files     []File
	truncated int64
	err       error
	closed    bool
	partial   string // output file being written
}

type colRange struct {
	min, max int
	width    float64
}

// NewWriter checks the options and prepares a writer for cols.
func NewWriter(cols []column.Column, opts Options) (*Writer, error) {
	if opts.Dir == "" {
		return nil, errors.New("xlsx: Options.Dir is empty")
	}
	if opts.Name != "" {
		if opts.Name != filepath.Base(opts.Name) || opts.MaxRowsPerFile != 0 || opts.MaxFileBytes != 0 {
			return nil, fmt.Errorf("xlsx: Options.Name %q needs a plain name and no file limits", opts.Name)
		}
	} else if opts.Prefix == "" || strings.ContainsAny(opts.Prefix, `/\`) || opts.Prefix != filepath.Base(opts.Prefix) {
		return nil, fmt.Errorf("xlsx: bad Options.Prefix %q", opts.Prefix)
	}
	switch {
	case opts.MaxRowsPerSheet < 0 || opts.MaxRowsPerSheet > maxSheetRows:
		return nil, fmt.Errorf("xlsx: MaxRowsPerSheet %d is out of range (1 to %d, or 0 for the maximum)", opts.MaxRowsPerSheet, maxSheetRows)
	case opts.MaxRowsPerFile < 0:
		return nil, fmt.Errorf("xlsx: MaxRowsPerFile %d is negative", opts.MaxRowsPerFile)
	case opts.MaxFileBytes < 0:
		return nil, fmt.Errorf("xlsx: MaxFileBytes %d is negative", opts.MaxFileBytes)
	case len(cols) > maxColumns:
		return nil, fmt.Errorf("xlsx: %d columns, more than Excel's %d", len(cols), maxColumns)
	}
	if st, err := os.Stat(opts.Dir); err != nil {
		return nil, fmt.Errorf("xlsx: output folder: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("xlsx: output folder %s is not a folder", opts.Dir)
	}
	if opts.TmpDir == "" {
		opts.TmpDir = opts.Dir
	}
	w := &Writer{
		opts:          opts,
		log:           opts.Logger,
		maxSheetRows:  int64(opts.MaxRowsPerSheet),
		sheetXMLLimit: sheetXMLLimit,
		overhead:      map[int]int64{},
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.maxSheetRows == 0 {
		w.maxSheetRows = maxSheetRows
	}
	if err := checkWritable(opts.Dir); err != nil {
		return nil, err
	}
	// excelize silently keeps a sheet in memory when it cannot create its
	// spill file: make sure it can.
	work, err := os.MkdirTemp(opts.TmpDir, ".xlsx-work-")
	if err != nil {
		return nil, fmt.Errorf("xlsx: temporary folder: %w", err)
	}
	w.work = work
	if err := checkWritable(work); err != nil {
		w.Abort()
		return nil, err
	}
	w.level = deflateLevel
	if w.d, err = newDeflater(w.level); err != nil {
		w.Abort()
		return nil, err
	}
	w.setup(cols)
	// Make the styles now: conversion needs their IDs.
	f, err := w.newFile()
	if err != nil {
		w.Abort()
		return nil, err
	}
	_ = f.Close()
	if opts.MaxFileBytes > 0 {
		if err := w.setupLimit(); err != nil {
			w.Abort()
			return nil, err
		}
	}
	return w, nil
}

func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".xlsx-probe-")
	if err == nil {
		_, err = f.Write([]byte("probe"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := os.Remove(f.Name()); err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("xlsx: folder %s is not writable: %w", dir, err)
	}
	return nil
}

// setup prepares the per-column converters, header and layout.
func (w *Writer) setup(cols []column.Column) {
	n := len(cols)
	w.conv = make([]colConv, n)
	w.row = make([]any, n)
	w.header = make([]any, n)
	for i, c := range cols {
		cv := &w.conv[i]
		cv.kind, cv.scale, cv.name = c.Kind, c.Scale, c.Name
		cv.letters, _ = excelize.ColumnNumberToName(i + 1)
		cv.ptr = &cv.cell
		if boxesOK {
			cv.fp, cv.fv = newBox[float64]()
			cv.ip, cv.iv = newBox[int64]()
			cv.sp, cv.sv = newBox[string]()
		}
		if c.Kind == column.Numeric && c.Scale < 0 {
			cv.scale = -1
		}
		if c.Kind == column.Numeric && c.Scale >= 0 {
			found := false
			for _, s := range w.scales {
				found = found || s == c.Scale
			}
			if !found {
				w.scales = append(w.scales, c.Scale)
			}
		}
		w.header[i] = &excelize.Cell{Value: c.Name} // StyleID set with the styles
	}
	w.widths = columnWidths(cols)
	w.panes = excelize.Panes{
		Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: "A2", ActiveCell: "A2", Pane: "bottomLeft"}},
	}
	// Upper bound of the XML before the first data row: the worksheet
	// preamble, <cols>, and the header row.
	w.hdrXML = 4096 + 96*int64(n)
	for i := range w.conv {
		w.hdrXML += 64 + int64(escapedLen([]byte(w.conv[i].name)))
	}
}

// columnWidths picks a width for each column from its kind and header.
//
// In stream mode excelize keeps one <col> entry per column once widths are
// set column by column, and looks every cell's column up in that list, so
// wide exports get a single width for all columns instead.
func columnWidths(cols []column.Column) []colRange {
	if len(cols) == 0 {
		return nil
	}
	if len(cols) > 64 {
		return []colRange{{min: 1, max: len(cols), width: 16}}
	}
	rs := make([]colRange, len(cols))
	for i, c := range cols {
		w := 12.0
		switch c.Kind {
		case column.Int:
			w = 12
		case column.Float, column.Numeric:
			w = 14
		case column.Bool:
			w = 8
		case column.Date:
			w = 12
		case column.Timestamp, column.TimestampTZ:
			w = 20
		case column.Text:
			w = 24
		}
		// Room for the name and the filter button.
		w = math.Min(math.Max(w, float64(utf16Len(c.Name))*1.1+4), 50)
		rs[i] = colRange{min: i + 1, max: i + 1, width: math.Round(w)}
	}
	return rs
}

// newFile makes an excelize.File with the writer's styles.
func (w *Writer) newFile() (*excelize.File, error) {
	f := excelize.NewFile(excelize.Options{TmpDir: w.work}) // streams spill into work
	s, err := makeStyles(f, w.scales)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if w.styles == nil {
		w.styles = s
		for i := range w.conv {
			cv := &w.conv[i]
			switch cv.kind {
			case column.Date:
				cv.numStyle = s.date
			case column.Timestamp, column.TimestampTZ:
				cv.numStyle = s.timestamp
			case column.Numeric:
				for k, sc := range w.scales {
					if sc == cv.scale {
						cv.numStyle = s.numeric[k]
					}
				}
			}
		}
		for _, h := range w.header {
			h.(*excelize.Cell).StyleID = s.bold
		}
		return f, nil
	}
	same := s.bold == w.styles.bold && s.date == w.styles.date && s.timestamp == w.styles.timestamp
	for i := range s.numeric {
		same = same && s.numeric[i] == w.styles.numeric[i]
	}
	if !same {
		_ = f.Close()
		return nil, errors.New("xlsx: excelize gave different style IDs to identical workbooks")
	}
	return f, nil
}

func makeStyles(f *excelize.File, scales []int) (*styleSet, error) {
	s := &styleSet{}
	var err error
	if s.bold, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true, Family: "Calibri", Size: 11}}); err != nil {
		return nil, err
	}
	dateFmt, tsFmt := "yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss"
	if s.date, err = f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt}); err != nil {
		return nil, err
	}
	if s.timestamp, err = f.NewStyle(&excelize.Style{CustomNumFmt: &tsFmt}); err != nil {
		return nil, err
	}
	for _, sc := range scales {
		var id int
		if sc == 0 {
			id, err = f.NewStyle(&excelize.Style{NumFmt: 1}) // 0
		} else {
			nf := "0." + strings.Repeat("0", min(sc, 30))
			id, err = f.NewStyle(&excelize.Style{CustomNumFmt: &nf})
		}
		if err != nil {
			return nil, err
		}
		s.numeric = append(s.numeric, id)
	}
	return s, nil
}

// setupLimit measures what MaxFileBytes estimates need: the compressed size
// of a sheet with only the header row.
func (w *Writer) setupLimit() error {
	var err error
	if w.est, err = newEstimator(w.level); err != nil {
		return err
	}
	if err := w.startSheet(); err != nil {
		return err
	}
	ds, err := w.flushSheet()
	if err != nil {
		return err
	}
	_ = os.Remove(ds.entry.path)
	w.emptySize = int64(ds.entry.csize)
	ov, err := w.overheadFor(1)
	if err != nil {
		return err
	}
	if min := ov + w.emptySize; min > w.opts.MaxFileBytes {
		return fmt.Errorf("xlsx: MaxFileBytes %d is smaller than a workbook with only the header row (%d bytes)", w.opts.MaxFileBytes, min)
	}
	return nil
}

// Truncated reports how many text cells were cut to Excel's 32,767
// characters.
func (w *Writer) Truncated() int64 { return w.truncated }

// WriteRow adds one row. fields[i] is column i's canonical text, nil for
// NULL. The slices are not retained.
func (w *Writer) WriteRow(fields [][]byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	if len(fields) != len(w.conv) {
		return fmt.Errorf("xlsx: row has %d fields, want %d", len(fields), len(w.conv))
	}
	for i, b := range fields {
		w.convert(i, b)
	}
	err := w.place()
	if err == nil {
		w.refBuf()
		err = w.sw.SetRow(unsafeString(w.ref), w.row)
	}
	for i := range w.conv {
		cv := &w.conv[i]
		cv.text = nil
		if cv.sp != nil {
			*cv.sp = ""
		}
		cv.cell.Value = nil
	}
	if err != nil {
		return w.fail(err)
	}
	w.sheetRows++
	return nil
}

// fail makes err sticky and cleans up.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	w.cleanup()
	return w.err
}

func (w *Writer) refBuf() {
	w.ref = append(w.ref[:0], 'A')
	w.ref = strconv.AppendInt(w.ref, w.sheetRows+2, 10)
}

// place makes room for the current row: it finishes sheets and files as the
// limits require and makes sure a sheet is open.
func (w *Writer) place() error {
	if max := w.opts.MaxRowsPerFile; max > 0 {
		for w.doneRows+w.sheetRows >= max {
			if err := w.finishSheet(); err != nil {
				return err
			}
			if err := w.finishFile(); err != nil {
				return err
			}
		}
	}
	rowXML := w.rowXMLLen(w.sheetRows + 2)
	if w.sw != nil && (w.sheetRows >= w.maxSheetRows || w.sheetXML+rowXML > w.sheetXMLLimit) {
		if err := w.finishSheet(); err != nil {
			return err
		}
	}
	if w.sw == nil {
		rowXML = w.rowXMLLen(2)
		if w.hdrXML+rowXML > w.sheetXMLLimit {
			return fmt.Errorf("xlsx: one row needs about %d bytes of sheet XML, more than the %d a sheet may hold", rowXML, w.sheetXMLLimit)
		}
	}
	if w.est != nil {
		w.est.fed = false
		for {
			if !w.est.fed {
				w.buildReplica(w.sheetRows + 2)
				w.est.feed(w.rep)
			}
			if w.fits() {
				break
			}
			if w.est.exact() && w.fits() {
				break
			}
			if w.sw == nil && len(w.done) == 0 {
				return fmt.Errorf("xlsx: a workbook holding just this row would be about %d bytes, more than MaxFileBytes %d", w.estimate(), w.opts.MaxFileBytes)
			}
			if err := w.finishSheet(); err != nil {
				return err
			}
			if err := w.finishFile(); err != nil {
				return err
			}
		}
	}
	if w.sw == nil {
		if err := w.startSheet(); err != nil {
			return err
		}
		rowXML = w.rowXMLLen(2)
	}
	w.sheetXML += rowXML
	if !w.spillChecked && w.sheetXML > spillCheckAt {
		w.spillChecked = true
		if err := w.checkSpill(); err != nil {
			return err
		}
	}
	return nil
}

// spillCheckAt is where the sheet XML estimate, at most about 7 times the
// real size, guarantees the real XML passed excelize's 16 MiB spill point.
const spillCheckAt = 256 << 20

// checkSpill makes sure excelize spills the sheet to disk: when it cannot
// create its temporary file it keeps the whole sheet in memory instead.
func (w *Writer) checkSpill() error {
	es, err := os.ReadDir(w.work)
	if err != nil {
		return err
	}
	for _, e := range es {
		if strings.HasPrefix(e.Name(), "excelize-") {
			return nil
		}
	}
	return fmt.Errorf("xlsx: excelize keeps the sheet in memory: it could not create its temporary file in %s", w.work)
}

// estimate is an upper bound of the size of the current workbook with the
// current row in it.
func (w *Writer) estimate() int64 {
	n := len(w.done) + 1
	ov, err := w.overheadFor(n)
	if err != nil {
		return math.MaxInt64
	}
	var done int64
	for _, d := range w.done {
		done += int64(d.entry.csize)
	}
	sheet := w.emptySize + w.est.bound()
	return ov + done + sheet + sheet/200 + estimateSlack
}

func (w *Writer) fits() bool { return w.estimate() <= w.opts.MaxFileBytes }

// convert turns field i into a cell in w.row.
func (w *Writer) convert(i int, b []byte) {
	cv := &w.conv[i]
	if b == nil {
		cv.ct = ctNull
		w.row[i] = nil
		return
	}
	w.row[i] = cv.ptr
	cv.text = b
	cv.fmtVal = false
	switch cv.kind {
	case column.Int:
		if v, ok := intValue(b); ok {
			cv.setInt(v, 0)
			return
		}
	case column.Float:
		if v, ok := floatValue(b); ok {
			cv.setFloat(v, 0)
			cv.fmtVal = true
			return
		}
	case column.Numeric:
		if v, iv, isInt, ok := numericValue(b); ok {
			if isInt {
				cv.setInt(iv, cv.numStyle)
			} else {
				cv.setFloat(v, cv.numStyle)
			}
			return
		}
	case column.Bool:
		if v, ok := boolValue(b); ok {
			cv.ct = ctBool
			cv.cell.StyleID = 0
			if v {
				cv.cell.Value = anyTrue
			} else {
				cv.cell.Value = anyFalse
			}
			return
		}
	case column.Date:
		if d, ok := dateSerial(b); ok {
			cv.setInt(int64(d), cv.numStyle)
			return
		}
	case column.Timestamp, column.TimestampTZ:
		if v, ok := timestampSerial(b); ok {
			cv.setFloat(v, cv.numStyle)
			cv.fmtVal = true
			return
		}
	}
	t, cut := truncateUTF16(b, maxCellUnits)
	if cut {
		w.truncated++
		if !cv.warned {
			cv.warned = true
			w.log.Warn("xlsx: text longer than an Excel cell holds was truncated",
				"column", cv.name, "limit", maxCellUnits)
		}
	}
	cv.ct = ctText
	cv.text = t
	cv.cell.StyleID = 0
	if cv.sp != nil {
		*cv.sp = unsafeString(t)
		cv.cell.Value = cv.sv
	} else {
		cv.cell.Value = string(t)
	}
}

func (cv *colConv) setInt(v int64, style int) {
	cv.ct = ctInt
	cv.ival = v
	cv.cell.StyleID = style
	if cv.ip != nil {
		*cv.ip = v
		cv.cell.Value = cv.iv
	} else {
		cv.cell.Value = v
	}
}

func (cv *colConv) setFloat(v float64, style int) {
	cv.ct = ctFloat
	cv.val = v
	cv.cell.StyleID = style
	if cv.fp != nil {
		*cv.fp = v
		cv.cell.Value = cv.fv
	} else {
		cv.cell.Value = v
	}
}

// rowXMLLen is an upper bound of the XML excelize writes for the current
// row as row number r.
func (w *Writer) rowXMLLen(r int64) int64 {
	nd := int64(digits(r))
	n := 16 + nd
	for i := range w.conv {
		cv := &w.conv[i]
		if cv.ct == ctNull {
			continue
		}
		n += 12 + int64(len(cv.letters)) + nd
		if cv.cell.StyleID != 0 {
			n += 10
		}
		switch cv.ct {
		case ctInt:
			n += 7 + 20
		case ctFloat:
			if cv.fmtVal {
				n += 7 + int64(w.floatLen(cv.val))
			} else {
				n += 8 + int64(len(cv.text))
			}
		case ctBool:
			n += 14
		case ctText:
			n += 51 + int64(escapedLen(cv.text))
		}
	}
	return n
}

func digits(r int64) int {
	n := 1
	for r >= 10 {
		r /= 10
		n++
	}
	return n
}

// floatLen bounds the length of excelize's text for v.
func (w *Writer) floatLen(v float64) int {
	if a := math.Abs(v); a == 0 || (a >= 1e-6 && a < 1e16) {
		return 26
	}
	w.tmp = strconv.AppendFloat(w.tmp[:0], v, 'f', -1, 64)
	return len(w.tmp)
}

// buildReplica writes, into w.rep, the XML excelize writes for the current
// row as row number r (close enough to estimate its compressed size).
func (w *Writer) buildReplica(r int64) {
	b := append(w.rep[:0], `<row r="`...)
	b = strconv.AppendInt(b, r, 10)
	b = append(b, `">`...)
	for i := range w.conv {
		cv := &w.conv[i]
		if cv.ct == ctNull {
			continue
		}
		b = append(b, `<c r="`...)
		b = append(b, cv.letters...)
		b = strconv.AppendInt(b, r, 10)
		b = append(b, '"')
		if cv.cell.StyleID != 0 {
			b = append(b, ` s="`...)
			b = strconv.AppendInt(b, int64(cv.cell.StyleID), 10)
			b = append(b, '"')
		}
		switch cv.ct {
		case ctInt:
			b = append(b, `><v>`...)
			b = strconv.AppendInt(b, cv.ival, 10)
			b = append(b, `</v></c>`...)
		case ctFloat:
			b = append(b, `><v>`...)
			if cv.fmtVal {
				b = appendExcelFloat(b, cv.val)
			} else {
				b = appendTrimmedNumeric(b, cv.text)
			}
			b = append(b, `</v></c>`...)
		case ctBool:
			b = append(b, ` t="b"><v>`...)
			if cv.cell.Value == anyTrue {
				b = append(b, '1')
			} else {
				b = append(b, '0')
			}
			b = append(b, `</v></c>`...)
		case ctText:
			b = append(b, ` t="inlineStr"><is><t`...)
			if needsSpace(cv.text) {
				b = append(b, ` xml:space="preserve"`...)
			}
			b = append(b, '>')
			b = appendEscaped(b, cv.text)
			b = append(b, `</t></is></c>`...)
		}
	}
	w.rep = append(b, `</row>`...)
}

// startSheet opens a new one-sheet excelize.File and writes the header.
func (w *Writer) startSheet() error {
	f, err := w.newFile()
	if err != nil {
		return err
	}
	if len(w.done) > 0 {
		// Only the first sheet of a workbook is selected (several selected
		// tabs are a group in Excel). The first sheet never moves to another
		// workbook, so this is known now.
		if _, err = f.NewSheet("Other"); err == nil {
			f.SetActiveSheet(1)
		}
		if err != nil {
			_ = f.Close()
			return err
		}
	}
	sw, err := f.NewStreamWriter("Sheet1")
	if err == nil {
		// excelize puts the columns of each call before those of earlier
		// calls: go backwards to get them in order.
		for i := len(w.widths) - 1; i >= 0; i-- {
			r := w.widths[i]
			if err = sw.SetColWidth(r.min, r.max, r.width); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = sw.SetPanes(&w.panes)
	}
	if err == nil {
		err = sw.SetRow("A1", w.header)
	}
	if err != nil {
		_ = f.Close()
		return err
	}
	w.sf, w.sw = f, sw
	w.sheetRows = 0
	w.sheetXML = w.hdrXML
	w.spillChecked = false
	return nil
}

// autoFilterRef is the range of a sheet's autofilter: header and data.
func (w *Writer) autoFilterRef(rows int64) string {
	return "A1:" + w.conv[len(w.conv)-1].letters + strconv.FormatInt(rows+1, 10)
}

// flushSheet ends the current sheet and deflates it into a spool file.
func (w *Writer) flushSheet() (doneSheet, error) {
	f, sw := w.sf, w.sw
	w.sf, w.sw = nil, nil
	defer func() { _ = f.Close() }()
	if len(w.conv) > 0 {
		if err := f.AutoFilter("Sheet1", w.autoFilterRef(w.sheetRows), nil); err != nil {
			return doneSheet{}, err
		}
	}
	if err := sw.Flush(); err != nil {
		return doneSheet{}, err
	}
	w.spoolSeq++
	sc := &sheetCapture{
		d:      w.d,
		target: sheetPartName(1),
		path:   filepath.Join(w.work, fmt.Sprintf("sheet-%06d.deflate", w.spoolSeq)),
	}
	if len(w.conv) > 0 {
		sc.dimension = w.autoFilterRef(w.sheetRows)
	}
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return sc })
	err := f.Write(io.Discard)
	if err == nil {
		err = sc.finish()
	}
	if err == nil && sc.entry == nil {
		err = fmt.Errorf("xlsx: excelize did not write %s", sc.target)
	}
	if err != nil {
		sc.abort()
		_ = os.Remove(sc.path)
		return doneSheet{}, err
	}
	if sc.entry.usize >= 1<<32 {
		_ = os.Remove(sc.path)
		return doneSheet{}, fmt.Errorf("xlsx: sheet XML grew to %d bytes, over 4 GiB", sc.entry.usize)
	}
	return doneSheet{entry: *sc.entry, rows: w.sheetRows}, nil
}

// finishSheet ends the current sheet, if any, and adds it to the workbook.
func (w *Writer) finishSheet() error {
	if w.sw == nil {
		return nil
	}
	ds, err := w.flushSheet()
	if err != nil {
		return err
	}
	w.done = append(w.done, ds)
	w.doneRows += ds.rows
	w.sheetRows, w.sheetXML = 0, 0
	if w.est != nil {
		w.log.Debug("xlsx: sheet finished", "rows", ds.rows, "bytes", ds.entry.csize,
			"estimate", w.emptySize+w.est.bound())
		w.est.reset()
	}
	return nil
}

// parts builds the workbook-level parts for sheets with the given row
// counts, through an excelize.File of empty sheets.
func (w *Writer) parts(rows []int64) ([]zipEntry, error) {
	f, err := w.newFile()
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if err := f.SetDocProps(&excelize.DocProperties{
		Creator: "exporter", Created: "1980-01-01T00:00:00Z", Modified: "1980-01-01T00:00:00Z",
	}); err != nil {
		return nil, err
	}
	pc := &partsCapture{d: w.d, sheets: map[string]bool{}}
	for i := range rows {
		name := w.sheetName(i + 1)
		if i > 0 {
			if _, err := f.NewSheet(name); err != nil {
				return nil, err
			}
		} else if name != "Sheet1" {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				return nil, err
			}
		}
		if len(w.conv) > 0 {
			// The autofilter's hidden defined name lives in workbook.xml.
			if err := f.AutoFilter(name, w.autoFilterRef(rows[i]), nil); err != nil {
				return nil, err
			}
		}
		pc.sheets[sheetPartName(i+1)] = false
	}
	f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return pc })
	if err := f.Write(io.Discard); err != nil {
		return nil, err
	}
	if err := pc.finish(); err != nil {
		return nil, err
	}
	for name, seen := range pc.sheets {
		if !seen {
			return nil, fmt.Errorf("xlsx: excelize did not write %s", name)
		}
	}
	for _, p := range pc.parts {
		if strings.HasPrefix(p.name, "xl/worksheets/sheet") {
			return nil, fmt.Errorf("xlsx: excelize wrote unexpected sheet part %s", p.name)
		}
	}
	return pc.parts, nil
}

// overheadFor is the size of a workbook with n sheets apart from the sheet
// data (parts, zip headers), with autofilter ranges of the longest form.
// It is measured up to exactSheets sheets and extrapolated beyond, with
// room for longer sheet numbers (each added sheet compresses better than
// the one before, so the extrapolation is an upper bound).
func (w *Writer) overheadFor(n int) (int64, error) {
	const exactSheets = 4
	if v, ok := w.overhead[n]; ok {
		return v, nil
	}
	if n > exactSheets {
		a, err := w.overheadFor(exactSheets - 1)
		if err != nil {
			return 0, err
		}
		b, err := w.overheadFor(exactSheets)
		if err != nil {
			return 0, err
		}
		return b + int64(n-exactSheets)*(b-a+64), nil
	}
	rows := make([]int64, n)
	for i := range rows {
		rows[i] = maxSheetRows
	}
	es, err := w.parts(rows)
	if err != nil {
		return 0, err
	}
	for i := range n {
		es = append(es, zipEntry{name: sheetPartName(i + 1)})
	}
	v := zipSize(es)
	w.overhead[n] = v
	return v, nil
}

// workbook lays out the entries of a workbook made of sheets.
func (w *Writer) workbook(sheets []doneSheet) ([]zipEntry, error) {
	rows := make([]int64, len(sheets))
	for i, s := range sheets {
		rows[i] = s.rows
	}
	es, err := w.parts(rows)
	if err != nil {
		return nil, err
	}
	for i, s := range sheets {
		e := s.entry
		e.name = sheetPartName(i + 1)
		es = append(es, e)
	}
	sortEntries(es)
	return es, nil
}

// finishFile writes the finished sheets as a workbook. Should they exceed
// MaxFileBytes (the estimate is an upper bound, so this is a safety net),
// the last sheets move on to the next workbook; a single sheet over the
// limit is an error.
func (w *Writer) finishFile() error {
	if len(w.done) == 0 {
		return nil
	}
	n := len(w.done)
	var es []zipEntry
	for {
		var err error
		if es, err = w.workbook(w.done[:n]); err != nil {
			return err
		}
		if w.opts.MaxFileBytes == 0 || zipSize(es) <= w.opts.MaxFileBytes {
			break
		}
		if n == 1 {
			return fmt.Errorf("xlsx: workbook %s with one sheet of %d rows would be %d bytes, more than MaxFileBytes %d",
				w.fileName(len(w.files)+1), w.done[0].rows, zipSize(es), w.opts.MaxFileBytes)
		}
		n--
	}
	sheets := w.done[:n]
	info, err := w.writeFile(es, sheets)
	if err != nil {
		return err
	}
	if w.opts.MaxFileBytes > 0 && info.Bytes > w.opts.MaxFileBytes {
		_ = os.Remove(filepath.Join(w.opts.Dir, info.Name))
		return fmt.Errorf("xlsx: %s is %d bytes, more than MaxFileBytes %d", info.Name, info.Bytes, w.opts.MaxFileBytes)
	}
	for _, s := range sheets {
		_ = os.Remove(s.entry.path)
	}
	w.files = append(w.files, info)
	rest := append([]doneSheet(nil), w.done[n:]...)
	w.done = rest
	w.doneRows = 0
	for _, s := range rest {
		w.doneRows += s.rows
	}
	if len(rest) > 0 {
		w.log.Info("xlsx: sheets moved to the next workbook to stay under MaxFileBytes", "sheets", len(rest))
	}
	return nil
}

// sheetName names the n-th sheet (1-based) of a workbook.
func (w *Writer) sheetName(n int) string {
	switch {
	case w.opts.SheetName == "":
		return "Sheet" + strconv.Itoa(n)
	case n == 1:
		return w.opts.SheetName
	}
	return w.opts.SheetName + " " + strconv.Itoa(n)
}

func (w *Writer) fileName(n int) string {
	if w.opts.Name != "" {
		return w.opts.Name
	}
	return fmt.Sprintf("%s-%04d.xlsx", w.opts.Prefix, n)
}

// writeFile writes a workbook to a temporary name, syncs it and renames it.
func (w *Writer) writeFile(es []zipEntry, sheets []doneSheet) (File, error) {
	name := w.fileName(len(w.files) + 1)
	final := filepath.Join(w.opts.Dir, name)
	tmp := filepath.Join(w.opts.Dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return File{}, err
	}
	w.partial = tmp
	h := sha256.New()
	cw := &countWriter{w: f, h: h}
	err = writeZip(cw, es)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		w.partial = ""
		return File{}, err
	}
	w.partial = ""
	syncDir(w.opts.Dir)
	if want := zipSize(es); want != cw.n {
		w.log.Warn("xlsx: workbook size differs from the prediction", "file", name, "bytes", cw.n, "predicted", want)
	}
	info := File{Name: name, Bytes: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}
	for i, s := range sheets {
		info.Rows += s.rows
		info.Sheets = append(info.Sheets, Sheet{Name: w.sheetName(i + 1), Rows: s.rows})
	}
	w.log.Debug("xlsx: workbook written", "file", name, "rows", info.Rows, "sheets", len(sheets), "bytes", info.Bytes)
	return info, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Close finishes the last sheet and workbook and returns every workbook
// written. With no rows at all it writes one workbook with the header row.
func (w *Writer) Close() ([]File, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.closed {
		return nil, errClosed
	}
	w.closed = true
	if len(w.files) == 0 && len(w.done) == 0 && w.sw == nil {
		if err := w.startSheet(); err != nil {
			return nil, w.fail(err)
		}
	}
	if err := w.finishSheet(); err != nil {
		return nil, w.fail(err)
	}
	for len(w.done) > 0 {
		if err := w.finishFile(); err != nil {
			return nil, w.fail(err)
		}
	}
	w.cleanup()
	return w.files, nil
}

// Abort stops the writer and removes everything partial: the sheet being
// written, spooled sheets and any half-written workbook. Workbooks already
// finished stay in Dir.
func (w *Writer) Abort() {
	w.closed = true
	if w.err == nil {
		w.err = errors.New("xlsx: writer aborted")
	}
	w.cleanup()
}

func (w *Writer) cleanup() {
	if w.sf != nil {
		_ = w.sf.Close()
		w.sf, w.sw = nil, nil
	}
	w.done = nil
	if w.partial != "" {
		_ = os.Remove(w.partial)
		w.partial = ""
	}
	if w.work != "" {
		_ = os.RemoveAll(w.work)
		w.work = ""
	}
}
