package chunk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/exporter-dev/exporter/internal/column"
	"github.com/exporter-dev/exporter/internal/pgtest"
	"github.com/exporter-dev/exporter/internal/spill"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }

// setup creates a database with the given script and connects to it.
func setup(t *testing.T, script string) *pgx.Conn {
	t.Helper()
	dsn := pgtest.NewDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, script); err != nil {
		t.Fatalf("load script: %v", err)
	}
	return conn
}

// fetchAll runs a fetch and returns the spilled records and chunk sizes.
func fetchAll(t *testing.T, conn *pgx.Conn, cfg Config) (*Fetcher, [][]string, []int64, error) {
	t.Helper()
	ctx := context.Background()
	cfg.Dir = t.TempDir()
	f, err := Open(ctx, conn, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close(ctx)
	var recs [][]string
	var sizes []int64
	_, err = f.Run(ctx, func(c Chunk) error {
		sizes = append(sizes, c.Rows)
		r, err := spill.Open(c.Path)
		if err != nil {
			return err
		}
		defer r.Close()
		for {
			fields, err := r.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			rec := make([]string, len(fields))
			for i, f := range fields {
				if f == nil {
					rec[i] = "<NULL>"
				} else {
					rec[i] = string(f)
				}
			}
			recs = append(recs, rec)
		}
	})
	return f, recs, sizes, err
}

func TestKeysetChunksAndBoundaries(t *testing.T) {
	conn := setup(t, `CREATE TABLE t (a int NOT NULL, b int NOT NULL, v text, PRIMARY KEY (a, b));
		INSERT INTO t SELECT i / 3, i % 3, 'v' || i FROM generate_series(0, 29) i;`)
	for _, chunkRows := range []int{1, 3, 4, 10, 29, 30, 31, 1000} {
		t.Run(fmt.Sprint(chunkRows), func(t *testing.T) {
			f, recs, sizes, err := fetchAll(t, conn, Config{Query: "SELECT * FROM t;", Key: []string{"a", "b"}, ChunkRows: chunkRows})
			if err != nil {
				t.Fatal(err)
			}
			if mode, why := f.Mode(); mode != Keyset {
				t.Fatalf("mode %s (%s), want keyset", mode, why)
			}
			if len(recs) != 30 {
				t.Fatalf("%d rows, want 30", len(recs))
			}
			for i, r := range recs {
				if want := []string{fmt.Sprint(i / 3), fmt.Sprint(i % 3), fmt.Sprintf("v%d", i)}; strings.Join(r, ",") != strings.Join(want, ",") {
					t.Fatalf("row %d = %v, want %v", i, r, want)
				}
			}
			for i, n := range sizes {
				if n > int64(chunkRows) || (i < len(sizes)-1 && n != int64(chunkRows)) {
					t.Fatalf("chunk sizes %v for %d rows per chunk", sizes, chunkRows)
				}
			}
		})
	}
}

func TestStreamFallback(t *testing.T) {
	conn := setup(t, `CREATE TABLE s (g text, n int); INSERT INTO s SELECT 'g' || (i % 7), i FROM generate_series(1, 100) i;`)
	for _, q := range []string{
		"SELECT g, count(*) AS c FROM s GROUP BY g",
		"SELECT DISTINCT g FROM s",
		"SELECT n AS id FROM s", // no index on the key
	} {
		t.Run(q, func(t *testing.T) {
			key := "g"
			if strings.Contains(q, "id") {
				key = "id"
			}
			f, recs, sizes, err := fetchAll(t, conn, Config{Query: q, Key: []string{key}, ChunkRows: 3})
			if err != nil {
				t.Fatal(err)
			}
			mode, why := f.Mode()
			if mode != Stream || !strings.Contains(why, "cannot use an index") {
				t.Fatalf("mode %s (%q), want stream with a reason", mode, why)
			}
			var want int
			if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM ("+q+") x").Scan(&want); err != nil {
				t.Fatal(err)
			}
			if len(recs) != want {
				t.Fatalf("%d rows, want %d", len(recs), want)
			}
			if len(sizes) != (want+2)/3 {
				t.Fatalf("chunk sizes %v, want chunks of 3", sizes)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	conn := setup(t, `CREATE TABLE d (id int, v text); CREATE INDEX ON d (id);
		INSERT INTO d SELECT i, 'x' FROM generate_series(1, 10) i;
		CREATE TABLE dn (id int, v text); CREATE INDEX ON dn (id);
		INSERT INTO dn SELECT i, 'x' FROM generate_series(1, 10) i; INSERT INTO dn VALUES (NULL, 'null key');
		CREATE TABLE db (id int); CREATE INDEX ON db (id);
		INSERT INTO db SELECT i FROM generate_series(1, 10) i; INSERT INTO db VALUES (4);
		CREATE TABLE nk (k numeric); CREATE INDEX ON nk (k); INSERT INTO nk VALUES (0.5), (1.0), (1.00), (2);
		CREATE TABLE c2 (a int NOT NULL, b int); CREATE INDEX ON c2 (a, b);
		INSERT INTO c2 VALUES (1, 1), (1, NULL), (2, 1);`)
	tests := []struct {
		name      string
		query     string
		key       []string
		chunkRows int
		reason    string
		column    string
	}{
		{"unknown key", "SELECT * FROM d", []string{"nope"}, 5, "unknown", "nope"},
		{"null key keyset", "SELECT * FROM dn", []string{"id"}, 5, "null", "id"},
		{"null key stream", "SELECT DISTINCT id, v FROM dn", []string{"id"}, 5, "null", "id"},
		{"null in second key column", "SELECT * FROM c2", []string{"a", "b"}, 1, "null", "b"},
		{"duplicate inside a chunk", "SELECT * FROM db", []string{"id"}, 100, "duplicate", "id"},
		{"duplicate straddling chunks", "SELECT * FROM db", []string{"id"}, 4, "duplicate", "id"},
		{"duplicate in stream", "SELECT id FROM db GROUP BY id, ctid", []string{"id"}, 4, "duplicate", "id"},
		{"numeric duplicate of another scale", "SELECT * FROM nk", []string{"k"}, 100, "duplicate", "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := fetchAll(t, conn, Config{Query: tt.query, Key: tt.key, ChunkRows: tt.chunkRows})
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error %v, want a KeyError", err)
			}
			if ke.Reason != tt.reason || ke.Column != tt.column {
				t.Fatalf("KeyError %+v (%v), want reason %s column %s", ke, err, tt.reason, tt.column)
			}
			if !strings.Contains(err.Error(), tt.column) {
				t.Fatalf("message %q does not name the column", err)
			}
		})
	}
}

func TestQueryErrorPosition(t *testing.T) {
	conn := setup(t, `CREATE TABLE q (id int primary key);`)
	_, _, _, err := fetchAll(t, conn, Config{Query: "SELECT id,\n  nope FROM q", Key: []string{"id"}, ChunkRows: 5})
	var qe *QueryError
	if !errors.As(err, &qe) {
		t.Fatalf("error %v, want a QueryError", err)
	}
	if qe.Line != 2 || qe.Column != 3 || !strings.Contains(err.Error(), `column "nope" does not exist`) {
		t.Fatalf("got %q (line %d column %d), want line 2 column 3", err, qe.Line, qe.Column)
	}
}

// TestCanonicalText checks every kind's canonical text against values
// PostgreSQL computes itself.
func TestCanonicalText(t *testing.T) {
	conn := setup(t, `CREATE TABLE ty (
		id bigint PRIMARY KEY, i2 smallint, i4 int, i8 bigint, f4 real, f8 double precision,
		num numeric, num2 numeric(12,2), b boolean, ts timestamp, tstz timestamptz, d date,
		t text, j jsonb, u uuid, arr int[], iv interval, by bytea);
		SET TimeZone = 'UTC';
		INSERT INTO ty VALUES
		 (1, -32768, 2147483647, 9007199254740993, 1.5, 0.1, 12345678901234567890.123456789, -0.05, true,
		  '2025-01-01 00:00:03', '2025-01-01 00:00:03+00', '2025-01-01', 'plain', '{"a": [1, 2]}',
		  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '1 day 02:03:04', '\xdeadbeef'),
		 (2, NULL, NULL, NULL, 'NaN', '-Infinity', 'NaN', NULL, false,
		  '1999-12-31 23:59:59.123456', '1969-07-20 20:17:40.5+00', '1900-01-01', '', 'null', NULL, '{}', '-1 mon', '\x'),
		 (3, NULL, NULL, NULL, NULL, 1e300, NULL, NULL, NULL, 'infinity', '-infinity', 'infinity', NULL, NULL, NULL, NULL, NULL, NULL);`)
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	f, recs, _, err := fetchAll(t, conn, Config{Query: "SELECT * FROM ty", Key: []string{"id"}, ChunkRows: 2, Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]column.Kind{}
	for _, c := range f.Columns() {
		kinds[c.Name] = c.Kind
	}
	if kinds["num2"] != column.Numeric || kinds["tstz"] != column.TimestampTZ || kinds["u"] != column.Text || kinds["i8"] != column.Int {
		t.Fatalf("kinds %v", kinds)
	}
	for _, c := range f.Columns() {
		if c.Name == "num2" && (c.Type != "numeric(12,2)" || c.Scale != 2) {
			t.Fatalf("num2 column %+v", c)
		}
	}
	want := [][]string{
		{"1", "-32768", "2147483647", "9007199254740993", "1.5", "0.1", "12345678901234567890.123456789", "-0.05", "true",
			"2025-01-01T00:00:03", "2024-12-31T19:00:03-05:00", "2025-01-01", "plain", `{"a": [1, 2]}`,
			"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{1,NULL,3}", "1 day 02:03:04", `\xdeadbeef`},
		{"2", "<NULL>", "<NULL>", "<NULL>", "NaN", "-Infinity", "NaN", "<NULL>", "false",
			"1999-12-31T23:59:59.123456", "1969-07-20T16:17:40.5-04:00", "1900-01-01", "", "null", "<NULL>", "{}", "-1 mons", `\x`},
		{"3", "<NULL>", "<NULL>", "<NULL>", "<NULL>", "1e+300", "<NULL>", "<NULL>", "<NULL>", "infinity", "-infinity", "infinity",
			"<NULL>", "<NULL>", "<NULL>", "<NULL>", "<NULL>", "<NULL>"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d rows, want %d", len(recs), len(want))
	}
	for i := range want {
		for j := range want[i] {
			if recs[i][j] != want[i][j] {
				t.Errorf("row %d column %s: %q, want %q", i+1, f.Columns()[j].Name, recs[i][j], want[i][j])
			}
		}
	}
	// Independently: every timestamptz instant and offset agrees with PostgreSQL's.
	var epochUS int64
	var offset int
	if _, err := conn.Exec(context.Background(), `SET TimeZone = 'America/New_York'`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), `SELECT (extract(epoch FROM tstz) * 1000000)::bigint, extract(timezone FROM tstz)::int FROM ty WHERE id = 2`).Scan(&epochUS, &offset); err != nil {
		t.Fatal(err)
	}
	got, err := time.Parse(time.RFC3339Nano, recs[1][10])
	if err != nil {
		t.Fatal(err)
	}
	if _, off := got.Zone(); got.UnixMicro() != epochUS || off != offset {
		t.Fatalf("%s is %d us offset %d, PostgreSQL says %d us offset %d", recs[1][10], got.UnixMicro(), off, epochUS, offset)
	}
}

// TestSnapshot checks that rows committed after the fetch began are not seen.
func TestSnapshot(t *testing.T) {
	conn := setup(t, `CREATE TABLE sn (id int PRIMARY KEY); INSERT INTO sn SELECT generate_series(1, 100);`)
	dsn := conn.Config().ConnString()
	other, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	ctx := context.Background()
	f, err := Open(ctx, conn, Config{Query: "SELECT * FROM sn", Key: []string{"id"}, ChunkRows: 10, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	var rows int64
	first := true
	n, err := f.Run(ctx, func(c Chunk) error {
		rows += c.Rows
		if first {
			first = false
			if _, err := other.Exec(ctx, "INSERT INTO sn SELECT generate_series(101, 200); DELETE FROM sn WHERE id > 50 AND id <= 100"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 100 || rows != 100 {
		t.Fatalf("fetched %d rows (%d in chunks), want the 100 of the snapshot", n, rows)
	}
}

func TestKeyEqual(t *testing.T) {
	tests := []struct {
		kind column.Kind
		a, b string
		want bool
	}{
		{column.Numeric, "1.0", "1.00", true},
		{column.Numeric, "1", "1.000", true},
		{column.Numeric, "10", "1.0", false},
		{column.Numeric, "100", "1", false},
		{column.Numeric, "-0.50", "-0.5", true},
		{column.Float, "-0", "0", true},
		{column.Float, "1", "1.0", false},
		{column.Text, "a", "a ", false},
		{column.Int, "7", "7", true},
	}
	for _, tt := range tests {
		if got := keyEqual(tt.kind, []byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("keyEqual(%s, %q, %q) = %v, want %v", tt.kind, tt.a, tt.b, got, tt.want)
		}
	}
}
