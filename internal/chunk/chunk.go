// Package chunk fetches a query's rows from PostgreSQL in keyset-paginated
// chunks inside one consistent snapshot and spills each chunk to a CSV file
// as it arrives.
//
// A chunk is the unit of progress: every stage after the fetch consumes
// whole chunk files in order, so a later checkpoint can resume after the last
// finished chunk from its last key.
package chunk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/exporter-dev/exporter/internal/column"
	"github.com/exporter-dev/exporter/internal/spill"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Mode is how the rows are fetched.
type Mode string

const (
	// Keyset fetches chunk after chunk with WHERE (key) > (last key).
	Keyset Mode = "keyset"
	// Stream runs the query once ordered by the key, because the key
	// predicate cannot reach an index and every chunk would rescan.
	Stream Mode = "stream"
)

// Config is what to fetch and where to spill it.
type Config struct {
	Query     string
	Key       []string
	ChunkRows int
	// Location is the time zone timestamptz values are rendered in.
	Location *time.Location
	// Dir is the folder chunk files are spilled to.
	Dir    string
	Logger *slog.Logger
}

// Chunk is one spilled chunk of rows.
type Chunk struct {
	Seq  int    // 1-based
	Path string // spill file
	Rows int64
}

// KeyError reports a key column that is unknown, NULL or not unique.
type KeyError struct {
	Column string
	Reason string // "unknown", "null" or "duplicate"
	Value  string // the duplicated key, for "duplicate"
}

func (e *KeyError) Error() string {
	switch e.Reason {
	case "unknown":
		return fmt.Sprintf("key column %q is not a column of the query", e.Column)
	case "null":
		return fmt.Sprintf("key column %q is NULL in at least one row: key columns must be non-NULL", e.Column)
	default:
		return fmt.Sprintf("key (%s) is not unique: value (%s) occurs more than once", e.Column, e.Value)
	}
}

// QueryError is an error PostgreSQL reported for the user's query, with the
// position translated into the query as given.
type QueryError struct {
	Err          *pgconn.PgError
	Line, Column int // 1-based; 0 when PostgreSQL gave no position in the query
}

func (e *QueryError) Error() string {
	msg := fmt.Sprintf("query: %s (SQLSTATE %s)", e.Err.Message, e.Err.Code)
	if e.Line > 0 {
		msg += fmt.Sprintf(" at line %d, column %d", e.Line, e.Column)
	}
	if e.Err.Detail != "" {
		msg += ": " + e.Err.Detail
	}
	return msg
}

func (e *QueryError) Unwrap() error { return e.Err }

// TimeZoneError is a time zone PostgreSQL does not know.
type TimeZoneError struct {
	Zone string
	Err  error
}

func (e *TimeZoneError) Error() string {
	return fmt.Sprintf("time zone %q is not known to PostgreSQL: %v", e.Zone, e.Err)
}

func (e *TimeZoneError) Unwrap() error { return e.Err }

// Fetcher fetches one export. Open it, read Columns, Run it, Close it.
type Fetcher struct {
	cfg     Config
	conn    *pgx.Conn
	tx      pgx.Tx
	query   string // the user's query without trailing semicolons
	cols    []column.Column
	keyIdx  []int
	formats pgx.QueryResultFormats
	mode    Mode
	reason  string
	log     *slog.Logger
}

// prefix wraps the user's query; the newline keeps a trailing -- comment in
// the query from swallowing the rest.
const prefix = "SELECT * FROM (\n"

// Open begins a REPEATABLE READ READ ONLY transaction on conn, describes the
// query, checks the key columns and chooses the fetch mode.
func Open(ctx context.Context, conn *pgx.Conn, cfg Config) (*Fetcher, error) {
	if cfg.ChunkRows <= 0 {
		return nil, errors.New("chunk rows must be positive")
	}
	if len(cfg.Key) == 0 {
		return nil, errors.New("at least one key column is required")
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fetcher{cfg: cfg, conn: conn, query: trimQuery(cfg.Query), log: cfg.Logger}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	f.tx = tx
	if err := f.open(ctx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return f, nil
}

// trimQuery drops trailing semicolons and blanks; the start stays as given
// so error positions count from the query's own first line.
func trimQuery(q string) string {
	q = strings.TrimRightFunc(q, unicode.IsSpace)
	for strings.HasSuffix(q, ";") {
		q = strings.TrimRightFunc(strings.TrimSuffix(q, ";"), unicode.IsSpace)
	}
	return q
}

func (f *Fetcher) open(ctx context.Context) error {
	// Stable text renderings for the types written as PostgreSQL prints them.
	if _, err := f.tx.Exec(ctx, `SELECT set_config('DateStyle', 'ISO, YMD', true), set_config('IntervalStyle', 'postgres', true),
		set_config('extra_float_digits', '1', true), set_config('bytea_output', 'hex', true), set_config('TimeZone', $1, true)`,
		f.cfg.Location.String()); err != nil {
		return &TimeZoneError{Zone: f.cfg.Location.String(), Err: err}
	}
	sd, err := f.tx.Conn().Prepare(ctx, "", f.wrap(" q LIMIT 0"))
	if err != nil {
		return f.queryError(err)
	}
	f.cols = make([]column.Column, len(sd.Fields))
	f.formats = make(pgx.QueryResultFormats, len(sd.Fields))
	oids := make([]uint32, len(sd.Fields))
	mods := make([]int32, len(sd.Fields))
	for i, fd := range sd.Fields {
		k := column.KindOf(fd.DataTypeOID)
		f.cols[i] = column.Column{Name: fd.Name, OID: fd.DataTypeOID, Kind: k, Scale: -1}
		if k == column.Numeric {
			f.cols[i].Scale = column.NumericScale(fd.TypeModifier)
		}
		if k == column.TimestampTZ || k == column.Timestamp || k == column.Date {
			f.formats[i] = pgx.BinaryFormatCode
		}
		oids[i], mods[i] = fd.DataTypeOID, fd.TypeModifier
	}
	var names []string
	if err := f.tx.QueryRow(ctx, `SELECT array_agg(format_type(o, m) ORDER BY n) FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS t(o, m, n)`, oids, mods).Scan(&names); err != nil {
		return fmt.Errorf("look up column types: %w", err)
	}
	for i := range f.cols {
		f.cols[i].Type = names[i]
	}
	seen := map[string]bool{}
	for _, k := range f.cfg.Key {
		i := column.Index(f.cols, k)
		if i < 0 {
			return &KeyError{Column: k, Reason: "unknown"}
		}
		if seen[k] {
			return fmt.Errorf("key column %q is given twice", k)
		}
		seen[k] = true
		f.keyIdx = append(f.keyIdx, i)
	}
	return f.chooseMode(ctx)
}

// wrap returns the user's query wrapped as a subquery named q, followed by tail.
func (f *Fetcher) wrap(tail string) string {
	return prefix + f.query + "\n)" + tail
}

func (f *Fetcher) keyList() string {
	ids := make([]string, len(f.cfg.Key))
	for i, k := range f.cfg.Key {
		ids[i] = "q." + pgx.Identifier{k}.Sanitize()
	}
	return strings.Join(ids, ", ")
}

func (f *Fetcher) params() string {
	ps := make([]string, len(f.cfg.Key))
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(i+1)
	}
	return strings.Join(ps, ", ")
}

// chunkSQL is the keyset query for a chunk after the given key, or the first
// chunk when after is false.
func (f *Fetcher) chunkSQL(after bool) string {
	where := ""
	if after {
		where = fmt.Sprintf(" WHERE (%s) > (%s)", f.keyList(), f.params())
	}
	return f.wrap(fmt.Sprintf(" q%s ORDER BY %s LIMIT %d", where, f.keyList(), f.cfg.ChunkRows))
}

// chooseMode checks, on the generic plan of the chunk query, that the key
// predicate reaches an index. Where it cannot (GROUP BY, DISTINCT, LIMIT,
// window functions, no index on the key), every chunk would rescan the
// query, so the query is streamed once in key order instead.
func (f *Fetcher) chooseMode(ctx context.Context) error {
	stmts := []string{
		"SET LOCAL plan_cache_mode = force_generic_plan",
		"PREPARE exporter_chunk_probe AS " + f.chunkSQL(true),
	}
	for _, s := range stmts {
		if _, err := f.tx.Exec(ctx, s); err != nil {
			return f.queryError(err)
		}
	}
	nulls := strings.TrimSuffix(strings.Repeat("NULL, ", len(f.cfg.Key)), ", ")
	var plan []byte
	err := f.tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) EXECUTE exporter_chunk_probe("+nulls+")").Scan(&plan)
	if err != nil {
		return f.queryError(err)
	}
	for _, s := range []string{"DEALLOCATE exporter_chunk_probe", "SET LOCAL plan_cache_mode = auto"} {
		if _, err := f.tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("probe chunk plan: %w", err)
		}
	}
	ok, top, err := planUsesIndexForKey(plan)
	if err != nil {
		return fmt.Errorf("read chunk plan: %w", err)
	}
	if ok {
		f.mode = Keyset
		return nil
	}
	f.mode = Stream
	if rows := planRows(plan); rows >= 0 && rows <= float64(f.cfg.ChunkRows) {
		// The planner expects one chunk at most (a small table is read
		// whole rather than through its index): nothing would be rescanned.
		f.log.Debug("fetch: streaming the query once: the planner expects at most one chunk", "estimated_rows", rows)
		return nil
	}
	f.reason = fmt.Sprintf("the key predicate on (%s) cannot use an index (plan starts with %s), so every chunk would rescan the query: streaming it once in key order instead", strings.Join(f.cfg.Key, ", "), top)
	return nil
}

// planRows is the planner's estimate of the rows the chunk query reads
// before its LIMIT: the input of the top node, or -1 if unknown.
func planRows(raw []byte) float64 {
	var plans []struct {
		Plan struct {
			Plans []struct {
				PlanRows float64 `json:"Plan Rows"`
			} `json:"Plans"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) == 0 || len(plans[0].Plan.Plans) == 0 {
		return -1
	}
	return plans[0].Plan.Plans[0].PlanRows
}

// planUsesIndexForKey reports whether any node of an EXPLAIN (FORMAT JSON)
// plan has an index condition on the first parameter, and the top node type.
func planUsesIndexForKey(raw []byte) (bool, string, error) {
	var plans []struct {
		Plan map[string]any `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &plans); err != nil {
		return false, "", err
	}
	if len(plans) == 0 {
		return false, "", errors.New("empty plan")
	}
	var walk func(n map[string]any) bool
	unstable := false // a LIMIT or TABLESAMPLE inside the query: each chunk could see other rows
	walk = func(n map[string]any) bool {
		if t, _ := n["Node Type"].(string); t == "Sample Scan" {
			unstable = true
		}
		for _, k := range []string{"Index Cond", "Recheck Cond"} {
			if c, ok := n[k].(string); ok && strings.Contains(c, "$1") {
				return true
			}
		}
		children, _ := n["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok && walk(m) {
				return true
			}
		}
		return false
	}
	top, _ := plans[0].Plan["Node Type"].(string)
	found := false
	children, _ := plans[0].Plan["Plans"].([]any)
	var limits func(n map[string]any)
	limits = func(n map[string]any) {
		if t, _ := n["Node Type"].(string); t == "Limit" {
			unstable = true
		}
		kids, _ := n["Plans"].([]any)
		for _, c := range kids {
			if m, ok := c.(map[string]any); ok {
				limits(m)
			}
		}
	}
	for _, c := range children { // below our own LIMIT
		if m, ok := c.(map[string]any); ok {
			limits(m)
		}
	}
	found = walk(plans[0].Plan)
	if unstable {
		return false, top + " with a LIMIT or TABLESAMPLE inside the query", nil
	}
	return found, top, nil
}

// queryError turns a PostgreSQL error on the wrapped query into a
// QueryError with the position in the user's query.
func (f *Fetcher) queryError(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	qe := &QueryError{Err: pg}
	if pg.Position > 0 {
		// Position counts characters from 1 in the statement sent.
		pos := int(pg.Position) - 1 - utf8.RuneCountInString(prefix)
		if pos >= 0 && pos <= utf8.RuneCountInString(f.query) {
			qe.Line, qe.Column = 1, 1
			for _, r := range []rune(f.query)[:pos] {
				if r == '\n' {
					qe.Line++
					qe.Column = 1
				} else {
					qe.Column++
				}
			}
		}
	}
	return qe
}

// Columns are the query's columns.
func (f *Fetcher) Columns() []column.Column { return f.cols }

// KeyIndex are the positions of the key columns in Columns.
func (f *Fetcher) KeyIndex() []int { return f.keyIdx }

// Mode is the chosen fetch mode, and why when it is not Keyset.
func (f *Fetcher) Mode() (Mode, string) { return f.mode, f.reason }

// Close ends the transaction; it is safe after Run.
func (f *Fetcher) Close(ctx context.Context) error {
	if f.tx == nil {
		return nil
	}
	err := f.tx.Rollback(context.WithoutCancel(ctx))
	f.tx = nil
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return err
}

// Run fetches every row, spilling chunk files into Dir and calling emit
// with each finished chunk in order. It commits the transaction when the
// last row has been read, before returning.
func (f *Fetcher) Run(ctx context.Context, emit func(Chunk) error) (rows int64, err error) {
	if f.mode == Keyset {
		if err := f.checkNullKeys(ctx); err != nil {
			return 0, err
		}
	}
	r := newRowConverter(f.cols, f.keyIdx, f.cfg.Location)
	seq := 0
	var w *spill.Writer
	finish := func() error {
		if w == nil {
			return nil
		}
		path := chunkPath(f.cfg.Dir, seq)
		n := w.Rows()
		if err := w.Close(); err != nil {
			return fmt.Errorf("write chunk %d: %w", seq, err)
		}
		w = nil
		return emit(Chunk{Seq: seq, Path: path, Rows: n})
	}
	defer func() {
		if w != nil {
			_ = w.Close()
		}
	}()
	startChunk := func() error {
		seq++
		var err error
		w, err = spill.Create(chunkPath(f.cfg.Dir, seq))
		if err != nil {
			return fmt.Errorf("create chunk file: %w", err)
		}
		return nil
	}
	write := func(raw [][]byte) error {
		fields, err := r.convert(raw)
		if err != nil {
			return err
		}
		return w.Write(fields)
	}

	switch f.mode {
	case Stream:
		f.log.Warn("fetch: " + f.reason)
		sql := f.wrap(" q ORDER BY " + f.keyList())
		// Closing rows reads the rest of the result: on an error, cancel
		// the query first rather than stream everything that is left.
		qctx, cancel := context.WithCancel(ctx)
		qrows, err := f.tx.Query(qctx, sql, f.formats)
		if err != nil {
			cancel()
			return rows, f.queryError(err)
		}
		defer func() {
			if err != nil {
				cancel()
			}
			qrows.Close()
			cancel()
		}()
		for qrows.Next() {
			if w == nil {
				if err := startChunk(); err != nil {
					return rows, err
				}
			}
			if err := write(qrows.RawValues()); err != nil {
				return rows, err
			}
			rows++
			if w.Rows() == int64(f.cfg.ChunkRows) {
				if err := finish(); err != nil {
					return rows, err
				}
			}
		}
		if err := qrows.Err(); err != nil {
			return rows, f.queryError(err)
		}
	default:
		var after []any
		for {
			if err := startChunk(); err != nil {
				return rows, err
			}
			args := []any{f.formats}
			args = append(args, after...)
			qctx, cancel := context.WithCancel(ctx)
			qrows, err := f.tx.Query(qctx, f.chunkSQL(after != nil), args...)
			if err != nil {
				cancel()
				return rows, f.queryError(err)
			}
			for qrows.Next() {
				if err := write(qrows.RawValues()); err != nil {
					cancel() // before Close, which would read the rest of the chunk
					qrows.Close()
					return rows, err
				}
				rows++
			}
			qrows.Close()
			cancel()
			if err := qrows.Err(); err != nil {
				return rows, f.queryError(err)
			}
			n := w.Rows()
			if n > 0 || seq == 1 {
				if err := finish(); err != nil {
					return rows, err
				}
			}
			if n < int64(f.cfg.ChunkRows) {
				break
			}
			if after, err = r.lastKey(f.conn.TypeMap(), f.formats); err != nil {
				return rows, fmt.Errorf("decode last key of chunk %d: %w", seq, err)
			}
			if err := f.checkBoundary(ctx, after, r); err != nil {
				return rows, err
			}
		}
		if w != nil { // an empty chunk after a full one
			_ = w.Close()
			_ = os.Remove(chunkPath(f.cfg.Dir, seq))
			w = nil
		}
	}
	if err := finish(); err != nil {
		return rows, err
	}
	if err := f.tx.Commit(ctx); err != nil {
		return rows, fmt.Errorf("end transaction: %w", err)
	}
	f.tx = nil
	return rows, nil
}

func chunkPath(dir string, seq int) string {
	return filepath.Join(dir, fmt.Sprintf("chunk-%06d.csv", seq))
}

// checkNullKeys finds NULL keys up front: rows whose key comparison is NULL
// would silently fall out of a keyset predicate.
func (f *Fetcher) checkNullKeys(ctx context.Context) error {
	var sel, where []string
	for _, k := range f.cfg.Key {
		id := "q." + pgx.Identifier{k}.Sanitize()
		sel = append(sel, id+" IS NULL")
		where = append(where, id+" IS NULL")
	}
	sql := "SELECT " + strings.Join(sel, ", ") + " FROM (\n" + f.query + "\n) q WHERE " + strings.Join(where, " OR ") + " LIMIT 1"
	nulls := make([]bool, len(f.cfg.Key))
	ptrs := make([]any, len(nulls))
	for i := range nulls {
		ptrs[i] = &nulls[i]
	}
	err := f.tx.QueryRow(ctx, sql).Scan(ptrs...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check key columns for NULL: %w", err)
	}
	for i, isNull := range nulls {
		if isNull {
			return &KeyError{Column: f.cfg.Key[i], Reason: "null"}
		}
	}
	return nil
}

// checkBoundary fails when the last key of a full chunk occurs more than
// once: the next chunk's predicate would skip its other rows.
func (f *Fetcher) checkBoundary(ctx context.Context, last []any, r *rowConverter) error {
	sql := f.wrap(fmt.Sprintf(" q WHERE (%s) = (%s)", f.keyList(), f.params()))
	sql = "SELECT count(*) FROM (" + sql + ") c"
	var n int64
	if err := f.tx.QueryRow(ctx, sql, last...).Scan(&n); err != nil {
		return fmt.Errorf("check key after chunk: %w", err)
	}
	if n > 1 {
		return &KeyError{Column: strings.Join(f.cfg.Key, ", "), Reason: "duplicate", Value: r.prevKeyText()}
	}
	return nil
}

// rowConverter turns a row's raw wire values into canonical text and
// checks the key of each row against the one before.
type rowConverter struct {
	cols    []column.Column
	keyIdx  []int
	loc     *time.Location
	out     [][]byte
	buf     []byte
	prevKey [][]byte // raw wire bytes of the previous row's key
	hasPrev bool
}

func newRowConverter(cols []column.Column, keyIdx []int, loc *time.Location) *rowConverter {
	r := &rowConverter{cols: cols, keyIdx: keyIdx, loc: loc, out: make([][]byte, len(cols)), prevKey: make([][]byte, len(keyIdx))}
	for i := range r.prevKey {
		r.prevKey[i] = make([]byte, 0, 32)
	}
	return r
}

func (r *rowConverter) convert(raw [][]byte) ([][]byte, error) {
	same := r.hasPrev
	for j, i := range r.keyIdx {
		v := raw[i]
		if v == nil {
			return nil, &KeyError{Column: r.cols[i].Name, Reason: "null"}
		}
		if same && !keyEqual(r.cols[i].Kind, v, r.prevKey[j]) {
			same = false
		}
	}
	if same {
		return nil, &KeyError{Column: r.keyNames(), Reason: "duplicate", Value: r.prevKeyText()}
	}
	for j, i := range r.keyIdx {
		r.prevKey[j] = append(r.prevKey[j][:0], raw[i]...)
	}
	r.hasPrev = true

	r.buf = r.buf[:0]
	for i, v := range raw {
		if v == nil {
			r.out[i] = nil
			continue
		}
		switch r.cols[i].Kind {
		case column.Bool:
			if len(v) == 1 && v[0] == 't' {
				r.out[i] = trueText
			} else {
				r.out[i] = falseText
			}
		case column.TimestampTZ, column.Timestamp, column.Date:
			start := len(r.buf)
			var err error
			r.buf, err = appendTime(r.buf, r.cols[i].Kind, v, r.loc)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", r.cols[i].Name, err)
			}
			r.out[i] = r.buf[start:len(r.buf):len(r.buf)]
		default:
			r.out[i] = v
		}
	}
	return r.out, nil
}

// keyEqual compares two wire values of a key column as SQL does where their
// bytes can differ: numeric 1.0 = 1.00 and float -0 = 0 (both in text).
func keyEqual(kind column.Kind, a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	switch kind {
	case column.Numeric:
		return bytes.Equal(trimFraction(a), trimFraction(b))
	case column.Float:
		return isZero(a) && isZero(b)
	}
	return false
}

// trimFraction drops trailing zeros of a decimal's fraction, and the point.
func trimFraction(d []byte) []byte {
	if bytes.IndexByte(d, '.') < 0 {
		return d
	}
	d = bytes.TrimRight(d, "0")
	return bytes.TrimSuffix(d, []byte("."))
}

func isZero(f []byte) bool {
	f = bytes.TrimPrefix(f, []byte("-"))
	return bytes.Equal(f, []byte("0"))
}

var (
	trueText  = []byte("true")
	falseText = []byte("false")
)

func (r *rowConverter) keyNames() string {
	names := make([]string, len(r.keyIdx))
	for j, i := range r.keyIdx {
		names[j] = r.cols[i].Name
	}
	return strings.Join(names, ", ")
}

// prevKeyText renders the previous row's key for an error message.
func (r *rowConverter) prevKeyText() string {
	parts := make([]string, len(r.keyIdx))
	for j, i := range r.keyIdx {
		switch r.cols[i].Kind {
		case column.TimestampTZ, column.Timestamp, column.Date:
			b, err := appendTime(nil, r.cols[i].Kind, r.prevKey[j], r.loc)
			if err != nil {
				parts[j] = "?"
				continue
			}
			parts[j] = string(b)
		default:
			parts[j] = string(r.prevKey[j])
		}
	}
	return strings.Join(parts, ", ")
}

// lastKey decodes the previous row's key into values pgx sends back as
// query parameters of the same types.
func (r *rowConverter) lastKey(m *pgtype.Map, formats pgx.QueryResultFormats) ([]any, error) {
	vals := make([]any, len(r.keyIdx))
	for j, i := range r.keyIdx {
		oid, format := r.cols[i].OID, formats[i]
		t, ok := m.TypeForOID(oid)
		if !ok {
			if format != pgx.TextFormatCode {
				return nil, fmt.Errorf("column %q: no decoder for type %s", r.cols[i].Name, r.cols[i].Type)
			}
			vals[j] = string(r.prevKey[j])
			continue
		}
		var v any
		var err error
		switch r.cols[i].Kind {
		case column.TimestampTZ: // these keep infinity, which pgx can send back
			var ts pgtype.Timestamptz
			err, v = m.Scan(oid, format, r.prevKey[j], &ts), ts
		case column.Timestamp:
			var ts pgtype.Timestamp
			err, v = m.Scan(oid, format, r.prevKey[j], &ts), ts
		case column.Date:
			var d pgtype.Date
			err, v = m.Scan(oid, format, r.prevKey[j], &d), d
		default:
			v, err = t.Codec.DecodeValue(m, oid, format, r.prevKey[j])
		}
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", r.cols[i].Name, err)
		}
		vals[j] = v
	}
	return vals, nil
}
