// Package agg computes GROUP BY aggregates over the exported rows in bounded
// memory, with the results PostgreSQL's own GROUP BY would give.
//
// Rows arrive as canonical text (see package column). Each group's key is an
// order-preserving encoding of its group values (value.go), kept in an
// arena-backed hash table with one dense number per group; each aggregate
// keeps its state in arrays indexed by that number (state.go).
//
// When the estimated state passes Config.MemoryBudget, the groups are sorted
// by key and written with their partial states as one sorted run to a spill
// file, and the memory is released. Finish writes what is left as a last
// run and merges all runs k ways (at most mergeFanIn at a time, with
// intermediate passes when there are more), combining the states of equal
// keys in run order; the output comes out sorted without a further sort.
// Without a spill, Finish sorts the groups in memory. In Sorted mode each
// group is written to the run as soon as its key changes, so memory stays
// constant; should the input not follow this package's order after all
// (text sorted by another collation, say), that run ends and the aggregator
// goes on in hash mode, within the budget.
package agg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/axiomhq/hyperloglog"
	"github.com/exporter-dev/exporter/internal/column"
)

// DefaultMemoryBudget is the default --agg-memory.
const DefaultMemoryBudget = 64 << 20

// Config describes an aggregation.
type Config struct {
	// Columns are the input columns; Add gets one value per column.
	Columns []column.Column
	// GroupBy names the group columns; none gives one grand-total row.
	GroupBy []string
	Aggs    []Spec
	// MemoryBudget is the bytes of aggregate state held before spilling;
	// 0 means DefaultMemoryBudget.
	MemoryBudget int64
	// TmpDir is where spill files go; "" means os.TempDir().
	TmpDir string
	// Sorted says rows arrive ordered by the group columns, so that each
	// group is complete when the next begins: memory stays constant.
	Sorted bool
}

// Totals are grand totals over all the rows added.
type Totals struct {
	Rows int64
	// Sums has, for each column that some sum() aggregates, the exact sum
	// of all its values as canonical text; "" when it had no non-NULL value.
	Sums []ColumnSum
}

// ColumnSum is the total of one column.
type ColumnSum struct {
	Column string
	Sum    string
}

// Aggregator aggregates rows. It is not safe for concurrent use.
type Aggregator struct {
	cols     []column.Column
	groupIdx []int
	groupK   []valueKind
	specs    []Spec
	aggCol   []int // input column of each aggregate, -1 for count(*)
	out      []column.Column
	sorted   bool
	budget   int64
	chunk    int
	tmpDir   string

	mem    int64 // estimated bytes of groups and states
	states []state
	groups *byteTable // unsorted mode
	keyBuf []byte

	// Sorted mode: the current group (slot 0).
	curKey, curTexts []byte
	hasCur           bool

	sp *spiller

	rows      int64
	sumCols   []int
	sumStates []state
	totMem    int64

	// Merging and output.
	mmem    int64
	mstates []state
	mkey    []byte
	mtexts  []byte
	rec     []byte
	row     [][]byte
	res     []byte
	resEnd  []int

	finished bool
}

func findColumn(cols []column.Column, name string) int {
	i := column.Index(cols, name)
	if i < 0 {
		if lower := strings.ToLower(name); lower != name {
			i = column.Index(cols, lower)
		}
	}
	return i
}

// New checks the configuration and returns an aggregator. Problems with the
// flags are *ConfigError.
func New(cfg Config) (*Aggregator, error) {
	a := &Aggregator{
		cols:   cfg.Columns,
		sorted: cfg.Sorted,
		budget: cfg.MemoryBudget,
		tmpDir: cfg.TmpDir,
	}
	if a.budget <= 0 {
		a.budget = DefaultMemoryBudget
	}
	if a.tmpDir == "" {
		a.tmpDir = os.TempDir()
	}
	a.chunk = int(min(max(a.budget/32, 4<<10), 1<<20))
	seen := map[int]bool{}
	for _, name := range cfg.GroupBy {
		i := findColumn(cfg.Columns, name)
		if i < 0 {
			return nil, &ConfigError{Flag: "--group-by", Value: name, Reason: "no such column" + columnList(cfg.Columns)}
		}
		if seen[i] {
			return nil, &ConfigError{Flag: "--group-by", Value: name, Reason: "column given twice"}
		}
		seen[i] = true
		a.groupIdx = append(a.groupIdx, i)
		a.groupK = append(a.groupK, kindOf(cfg.Columns[i]))
		a.out = append(a.out, cfg.Columns[i])
	}
	sumSeen := map[int]bool{}
	for _, sp := range cfg.Aggs {
		if sp.Func == "" {
			p, err := Parse(sp.Expr)
			if err != nil {
				return nil, err
			}
			sp = p
		}
		ci := -1
		if sp.Column != "" {
			ci = findColumn(cfg.Columns, sp.Column)
			if ci < 0 {
				return nil, aggError(sp.Expr, "no such column %q%s", sp.Column, columnList(cfg.Columns))
			}
		} else if sp.Func != "count" {
			return nil, aggError(sp.Expr, "missing column")
		}
		oc, err := outColumn(sp, cfg.Columns, ci)
		if err != nil {
			return nil, err
		}
		a.out = append(a.out, oc)
		a.aggCol = append(a.aggCol, ci)
		a.specs = append(a.specs, sp)
		if sp.Func == "sum" && !sumSeen[ci] {
			sumSeen[ci] = true
			a.sumCols = append(a.sumCols, ci)
			a.sumStates = append(a.sumStates, newState(sp, cfg.Columns[ci], &a.totMem, a.chunk))
			a.sumStates[len(a.sumStates)-1].grow()
		}
	}
	a.states = a.newStates(&a.mem)
	if !a.sorted {
		a.groups = newByteTable(&a.mem, a.chunk)
	}
	a.res = make([]byte, 0, 256)
	return a, nil
}

func columnList(cols []column.Column) string {
	if len(cols) == 0 || len(cols) > 40 {
		return ""
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return " (columns: " + strings.Join(names, ", ") + ")"
}

// outColumn checks that spec applies to column ci and describes its result.
func outColumn(sp Spec, cols []column.Column, ci int) (column.Column, error) {
	oc := column.Column{Name: sp.Expr, Scale: -1}
	bigint := func() {
		oc.Kind, oc.Type, oc.OID = column.Int, "bigint", column.OIDInt8
	}
	numeric := func(scale int) {
		oc.Kind, oc.Type, oc.OID, oc.Scale = column.Numeric, "numeric", column.OIDNumeric, scale
	}
	float8 := func() {
		oc.Kind, oc.Type, oc.OID = column.Float, "double precision", column.OIDFloat8
	}
	var in column.Column
	if ci >= 0 {
		in = cols[ci]
	}
	needNumber := func() error {
		if !in.Kind.Numeric() {
			t := in.Type
			if t == "" {
				t = in.Kind.String()
			}
			return aggError(sp.Expr, "column %q is %s; %s needs a numeric column", in.Name, t, sp.Func)
		}
		return nil
	}
	switch sp.Func {
	case "count", "count_distinct", "approx_count_distinct":
		bigint()
	case "sum":
		if err := needNumber(); err != nil {
			return oc, err
		}
		switch {
		case in.Kind == column.Float:
			float8()
			if in.OID == column.OIDFloat4 {
				oc.Type, oc.OID = "real", column.OIDFloat4
			}
		case in.Kind == column.Int && (in.OID == column.OIDInt2 || in.OID == column.OIDInt4):
			bigint()
		case in.Kind == column.Int:
			numeric(0)
		default:
			numeric(in.Scale)
		}
	case "avg":
		if err := needNumber(); err != nil {
			return oc, err
		}
		if in.Kind == column.Float {
			float8()
		} else {
			numeric(-1)
		}
	case "min", "max":
		oc = in
		oc.Name = sp.Expr
	default:
		if sp.Quantile <= 0 || sp.Quantile > 1 {
			return oc, aggError(sp.Expr, "unknown function %q", sp.Func)
		}
		if err := needNumber(); err != nil {
			return oc, err
		}
		float8()
	}
	return oc, nil
}

func newState(sp Spec, col column.Column, mem *int64, chunk int) state {
	k := kindOf(col)
	switch sp.Func {
	case "count":
		return &countState{mem: mem}
	case "sum", "avg":
		if col.Kind == column.Float {
			return &floatSum{mem: mem, avg: sp.Func == "avg", f32: k.f32}
		}
		return &decSum{mem: mem, avg: sp.Func == "avg"}
	case "min", "max":
		return &minMax{mem: mem, max: sp.Func == "max", k: k}
	case "count_distinct":
		return &distinct{mem: mem, k: k, chunk: chunk}
	case "approx_count_distinct":
		return &approx{promoting: promoting[uint64, hyperloglog.Sketch]{mem: mem, chargeCap: approxCharge}, k: k}
	}
	return &quant{promoting: promoting[float64, qsketch]{mem: mem, chargeCap: quantCharge}, k: k, q: sp.Quantile}
}

func (a *Aggregator) newStates(mem *int64) []state {
	st := make([]state, len(a.aggCol))
	for i, ci := range a.aggCol {
		var col column.Column
		if ci >= 0 {
			col = a.cols[ci]
		}
		st[i] = newState(a.specs[i], col, mem, a.chunk)
	}
	return st
}

// Columns describes the output: the group columns, then one column per
// aggregate named by its expression.
func (a *Aggregator) Columns() []column.Column { return a.out }

// Add folds one row, a value per input column, into the aggregates. It
// keeps no reference to fields.
func (a *Aggregator) Add(fields [][]byte) error {
	if a.finished {
		return errors.New("agg: Add after Finish")
	}
	if len(fields) != len(a.cols) {
		return fmt.Errorf("agg: row of %d values for %d columns", len(fields), len(a.cols))
	}
	key := a.keyBuf[:0]
	for j, ci := range a.groupIdx {
		var err error
		if key, err = appendGroupKey(key, a.groupK[j], fields[ci]); err != nil {
			return a.valueError(ci, fields[ci])
		}
	}
	a.keyBuf = key
	var g uint32
	if a.sorted && (!a.hasCur || !bytes.Equal(key, a.curKey)) {
		if err := a.nextGroup(fields); err != nil {
			return err
		}
	}
	if !a.sorted {
		id, isNew, dst := a.groups.insert(key, a.textsLen(fields))
		if isNew {
			a.putTexts(dst[:0], fields)
			for _, st := range a.states {
				st.grow()
			}
		}
		g = id
	}
	a.rows++
	for i, st := range a.states {
		ci := a.aggCol[i]
		if ci < 0 {
			st.add(g, nil)
			continue
		}
		v := fields[ci]
		if v == nil {
			continue
		}
		if err := st.add(g, v); err != nil {
			return a.valueError(ci, v)
		}
	}
	for i, st := range a.sumStates {
		if v := fields[a.sumCols[i]]; v != nil {
			if err := st.add(0, v); err != nil {
				return a.valueError(a.sumCols[i], v)
			}
		}
	}
	if a.mem > a.budget {
		if a.sorted {
			// One group outgrew the budget: write what it has so far.
			if err := a.writeCurrent(); err != nil {
				return err
			}
			a.resetStates(false)
			for _, st := range a.states {
				st.grow()
			}
			return nil
		}
		return a.spillGroups()
	}
	return nil
}

func (a *Aggregator) valueError(ci int, v []byte) error {
	c := a.cols[ci]
	return fmt.Errorf("agg: column %q: cannot read %q as %s", c.Name, v, c.Kind)
}

// Group values are kept as text: per value uvarint(len+1) and the bytes, 0
// for NULL.
func (a *Aggregator) textsLen(fields [][]byte) int {
	n := 0
	for _, ci := range a.groupIdx {
		l := len(fields[ci])
		n += uvarintLen(uint64(l)+1) + l
	}
	return n
}

func (a *Aggregator) putTexts(dst []byte, fields [][]byte) []byte {
	for _, ci := range a.groupIdx {
		v := fields[ci]
		if v == nil {
			dst = append(dst, 0)
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(v))+1)
		dst = append(dst, v...)
	}
	return dst
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// textsSpan returns the length of n encoded texts at the start of b.
func textsSpan(b []byte, n int) (int, error) {
	p := 0
	for ; n > 0; n-- {
		l, k := binary.Uvarint(b[p:])
		if k <= 0 {
			return 0, errCorrupt
		}
		p += k
		if l > 0 {
			if uint64(len(b)-p) < l-1 {
				return 0, errCorrupt
			}
			p += int(l - 1)
		}
	}
	return p, nil
}

// appendTexts decodes texts into row; NULL is nil, an empty string non-nil.
func appendTexts(row [][]byte, b []byte, n int) [][]byte {
	for ; n > 0; n-- {
		l, k := binary.Uvarint(b)
		b = b[k:]
		if l == 0 {
			row = append(row, nil)
			continue
		}
		row = append(row, b[:l-1:l-1])
		b = b[l-1:]
	}
	return row
}

// nextGroup starts a new group in Sorted mode, writing the previous one.
// Should the rows turn out not to come in this package's order (the
// database sorted text by another collation, say), the groups so far stay
// a sorted run and the aggregator goes on in hash mode.
func (a *Aggregator) nextGroup(fields [][]byte) error {
	if a.hasCur {
		if err := a.writeCurrent(); err != nil {
			return err
		}
		if bytes.Compare(a.keyBuf, a.curKey) < 0 {
			a.sp.endRun()
			a.sorted, a.hasCur = false, false
			a.resetStates(false)
			return nil
		}
		a.resetStates(true)
	}
	a.curKey = append(a.curKey[:0], a.keyBuf...)
	a.curTexts = a.putTexts(a.curTexts[:0], fields)
	a.hasCur = true
	for _, st := range a.states {
		st.grow()
	}
	return nil
}

func (a *Aggregator) writeCurrent() error {
	sp, err := a.spiller()
	if err != nil {
		return err
	}
	a.rec = appendRecord(a.rec[:0], a.curKey, a.curTexts, a.states, 0)
	err = sp.write(a.rec)
	a.rec = shrink(a.rec)
	return err
}

func (a *Aggregator) resetStates(keep bool) {
	for _, st := range a.states {
		st.reset(keep)
	}
	a.mem = 0
	if !a.sorted {
		a.groups = newByteTable(&a.mem, a.chunk)
	}
}

// sortedIDs returns the in-memory groups in key order.
func (a *Aggregator) sortedIDs() []uint32 {
	ids := make([]uint32, a.groups.Len())
	for i := range ids {
		ids[i] = uint32(i)
	}
	slices.SortFunc(ids, func(x, y uint32) int {
		return bytes.Compare(a.groups.key(x), a.groups.key(y))
	})
	return ids
}

func (a *Aggregator) groupTexts(id uint32) []byte {
	b := a.groups.extra(id)
	n, _ := textsSpan(b, len(a.groupIdx))
	return b[:n]
}

// spillGroups writes the in-memory groups as one sorted run and frees them.
func (a *Aggregator) spillGroups() error {
	if a.groups.Len() == 0 {
		return nil
	}
	sp, err := a.spiller()
	if err != nil {
		return err
	}
	for _, id := range a.sortedIDs() {
		a.rec = appendRecord(a.rec[:0], a.groups.key(id), a.groupTexts(id), a.states, id)
		err := sp.write(a.rec)
		a.rec = shrink(a.rec)
		if err != nil {
			return err
		}
	}
	sp.endRun()
	a.resetStates(false)
	return nil
}

// appendRecord appends a spill record: the key, the group texts and every
// aggregate's state of group g.
func appendRecord(dst, key, texts []byte, states []state, g uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = append(dst, texts...)
	for _, st := range states {
		dst = st.encode(dst, g)
	}
	return dst
}

// Finish emits the result rows in group order: the group values, then one
// value per aggregate, as canonical text with nil for NULL. emit must not
// keep row or its values after it returns. Without group columns there is
// exactly one row, also for no input.
func (a *Aggregator) Finish(emit func(row [][]byte) error) error {
	if a.finished {
		return errors.New("agg: Finish called twice")
	}
	a.finished = true
	if a.sorted && a.hasCur {
		if err := a.writeCurrent(); err != nil {
			return err
		}
		a.sp.endRun()
		a.resetStates(false)
	}
	if a.sp == nil {
		if !a.sorted && a.groups.Len() > 0 {
			for _, id := range a.sortedIDs() {
				if err := a.emitRow(emit, a.groupTexts(id), a.states, id); err != nil {
					return err
				}
			}
			return nil
		}
		if len(a.groupIdx) == 0 {
			// The grand total of no rows.
			ms := a.mergeStates()
			return a.emitRow(emit, nil, ms, 0)
		}
		return nil
	}
	if !a.sorted {
		if err := a.spillGroups(); err != nil {
			return err
		}
		a.groups = nil
	}
	return a.mergeAll(emit)
}

// mergeStates returns the states used for merging, with one empty group.
func (a *Aggregator) mergeStates() []state {
	if a.mstates == nil {
		a.mstates = a.newStates(&a.mmem)
	} else {
		for _, st := range a.mstates {
			st.reset(true)
		}
	}
	for _, st := range a.mstates {
		st.grow()
	}
	return a.mstates
}

func (a *Aggregator) emitRow(emit func([][]byte) error, texts []byte, states []state, g uint32) error {
	row := appendTexts(a.row[:0], texts, len(a.groupIdx))
	a.res = a.res[:0]
	a.resEnd = a.resEnd[:0]
	for _, st := range states {
		var ok bool
		a.res, ok = st.result(a.res, g)
		end := len(a.res)
		if !ok {
			end = -1
		}
		a.resEnd = append(a.resEnd, end)
	}
	start := 0
	for _, end := range a.resEnd {
		if end < 0 {
			row = append(row, nil)
			continue
		}
		row = append(row, a.res[start:end:end])
		start = end
	}
	a.row = row
	return emit(row)
}

// Totals returns the grand totals over every row added so far.
func (a *Aggregator) Totals() Totals {
	t := Totals{Rows: a.rows}
	for i, st := range a.sumStates {
		b, ok := st.result(nil, 0)
		s := ""
		if ok {
			s = string(b)
		}
		t.Sums = append(t.Sums, ColumnSum{Column: a.cols[a.sumCols[i]].Name, Sum: s})
	}
	return t
}

// Close removes the spill files.
func (a *Aggregator) Close() error {
	if a.sp == nil {
		return nil
	}
	err := a.sp.close()
	a.sp = nil
	return err
}
