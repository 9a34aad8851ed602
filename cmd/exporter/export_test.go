package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exporter-dev/exporter/internal/manifest"
	"github.com/exporter-dev/exporter/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command in-process with an isolated environment.
func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{code, stdout.String(), stderr.String()}
}

// newDB makes a database loaded with script and returns its DSN.
func newDB(t *testing.T, script string) string {
	t.Helper()
	dsn := pgtest.NewDB(t)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), script); err != nil {
		t.Fatalf("load: %v", err)
	}
	return dsn
}

func readManifest(t *testing.T, dir string) manifest.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// copyCSV is PostgreSQL's own COPY of a query, with CRLF line ends.
func copyCSV(t *testing.T, dsn, query string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var buf bytes.Buffer
	if _, err := conn.PgConn().CopyTo(context.Background(), &buf, "COPY ("+query+") TO STDOUT (FORMAT csv, HEADER)"); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// sameCSV compares our CSV with PostgreSQL's COPY output, which ends lines
// with LF where ours end with CRLF (RFC 4180).
func sameCSV(t *testing.T, got, pg string) {
	t.Helper()
	if !strings.HasSuffix(got, "\r\n") {
		t.Errorf("CSV records do not end with CRLF: %q", got)
	}
	if strings.ReplaceAll(got, "\r\n", "\n") != pg {
		t.Fatalf("CSV differs from PostgreSQL's COPY of the same values:\n got: %q\nwant: %q", got, pg)
	}
}

const typesTable = `CREATE TABLE ty (
	id bigint PRIMARY KEY, i4 int, big bigint, f8 double precision, num numeric, money numeric(12,2),
	ok boolean, ts timestamp, tstz timestamptz, d date, t text, j jsonb, u uuid, arr text[], iv interval);
SET TimeZone = 'UTC';
INSERT INTO ty VALUES
 (1, 42, 9007199254740993, 0.1, 12345678901234567890.123456789, 1234.50, true,
  '2025-01-01 00:00:03', '2025-01-01 00:00:03+00', '2025-01-01', 'plain', '{"a": 1}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"x,y",NULL}', '1 day'),
 (2, NULL, -5, 'NaN', -0.000123, -0.05, false, '1999-12-31 23:59:59', '2024-06-30 22:30:00+00', '1999-12-31',
  '', 'null', NULL, '{}', '-02:00:00'),
 (3, 7, 100, 1e300, 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 1, 123456789012345, -2.5, 99999999999999.9, 0, true, 'infinity', '2025-03-30 01:30:00+00', '2025-03-30',
  '=1+2 "quoted", comma' || chr(10) || 'line', '[1, "two"]', NULL, NULL, NULL);`

// renderedCSV renders the types table the way the CSV output is specified,
// with PostgreSQL's own COPY, as an independent source of truth.
const renderedCSV = `SELECT id, i4, big, f8, num, money,
	CASE WHEN ok THEN 'true' WHEN NOT ok THEN 'false' END AS ok,
	CASE WHEN ts = 'infinity' THEN 'infinity' ELSE to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS') END AS ts,
	to_char(tstz AT TIME ZONE 'Europe/Paris', 'YYYY-MM-DD"T"HH24:MI:SS') ||
	  CASE WHEN tstz IS NULL THEN NULL ELSE to_char(tstz AT TIME ZONE 'Europe/Paris' - tstz AT TIME ZONE 'UTC', '+HH24:MI') END AS tstz,
	to_char(d, 'YYYY-MM-DD') AS d, t, j, u, arr, iv FROM ty ORDER BY id`

func TestExportTypesMatchPostgres(t *testing.T) {
	dsn := newDB(t, typesTable)
	out := t.TempDir()
	r := runCLI(t, nil, "export", "--dsn", dsn, "--query", "SELECT * FROM ty", "--key", "id", "--out", out,
		"--format", "csv", "--format", "xlsx", "--format", "csv.gz", "--timezone", "Europe/Paris", "--name", "types", "--chunk-rows", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(out, "types-0001.csv"))
	if err != nil {
		t.Fatal(err)
	}
	sameCSV(t, string(got), copyCSV(t, dsn, renderedCSV))
	m := readManifest(t, out)
	if m.Version != 1 || m.Rows != 4 || !slices.Equal(m.Key, []string{"id"}) || m.QuerySHA256 == "" || m.StartedAt.IsZero() || m.FinishedAt.Before(m.StartedAt) {
		t.Fatalf("manifest %+v", m)
	}
	formats := map[string]manifest.File{}
	for _, f := range m.Files {
		formats[f.Format] = f
		if f.Kind != "data" || f.Rows != 4 || f.SHA256 == "" {
			t.Fatalf("manifest file %+v", f)
		}
		st, err := os.Stat(filepath.Join(out, f.Name))
		if err != nil || st.Size() != f.Bytes {
			t.Fatalf("file %s: %v, size mismatch with manifest %d", f.Name, err, f.Bytes)
		}
	}
	if len(formats) != 3 || len(formats["xlsx"].Sheets) != 1 || formats["xlsx"].Sheets[0].Rows != 4 {
		t.Fatalf("manifest files %+v", m.Files)
	}
	checkXLSXAgainstCSV(t, filepath.Join(out, formats["xlsx"].Name), filepath.Join(out, "types-0001.csv"))
}

type pySheet struct {
	Name       string        `json:"name"`
	Rows       [][][2]string `json:"rows"`
	Freeze     *string       `json:"freeze"`
	BoldHeader bool          `json:"bold_header"`
	AutoFilter *string       `json:"autofilter"`
}

// readXLSXPython reads a workbook with openpyxl, an independent reader.
func readXLSXPython(t *testing.T, path string) []pySheet {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import openpyxl").Run(); err != nil {
		if os.Getenv(pgtest.DisallowSkipEnv) == "1" {
			t.Fatalf("openpyxl is not installed for %s (make deps installs python3-openpyxl)", py)
		}
		t.Skip("openpyxl is not installed")
	}
	outb, err := exec.Command(py, "testdata/read_xlsx.py", path).Output()
	if err != nil {
		t.Fatalf("openpyxl: %v", err)
	}
	var sheets []pySheet
	if err := json.Unmarshal(outb, &sheets); err != nil {
		t.Fatal(err)
	}
	return sheets
}

// checkXLSXAgainstCSV compares every cell openpyxl reads with the CSV
// field of the same row and column, by the typing rules.
func checkXLSXAgainstCSV(t *testing.T, xlsxPath, csvPath string) {
	t.Helper()
	sheets := readXLSXPython(t, xlsxPath)
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	records, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// encoding/csv cannot tell NULL from "": read raw lines for that.
	raw, _ := os.ReadFile(csvPath)
	_ = raw
	if len(sheets) != 1 {
		t.Fatalf("%d sheets", len(sheets))
	}
	s := sheets[0]
	if s.Freeze == nil || *s.Freeze != "A2" || !s.BoldHeader || s.AutoFilter == nil {
		t.Errorf("header: freeze %v bold %v autofilter %v", s.Freeze, s.BoldHeader, s.AutoFilter)
	}
	if len(s.Rows) != len(records) {
		t.Fatalf("%d rows in xlsx, %d in csv", len(s.Rows), len(records))
	}
	header := records[0]
	for j, name := range header {
		if s.Rows[0][j] != [2]string{"str", name} {
			t.Errorf("header cell %d = %v, want %q", j, s.Rows[0][j], name)
		}
	}
	expect := map[string]map[string][2]string{ // id -> column -> openpyxl cell
		"1": {"i4": {"int", "42"}, "big": {"str", "9007199254740993"}, "f8": {"float", "0.1"},
			"num": {"str", "12345678901234567890.123456789"}, "money": {"float", "1234.5"}, "ok": {"bool", "true"},
			"ts": {"datetime", "2025-01-01T00:00:03"}, "tstz": {"datetime", "2025-01-01T01:00:03"}, "d": {"datetime", "2025-01-01T00:00:00"},
			"t": {"str", "plain"}, "j": {"str", `{"a": 1}`}, "arr": {"str", `{"x,y",NULL}`}, "iv": {"str", "1 day"}},
		"2": {"i4": {"none", ""}, "big": {"int", "-5"}, "f8": {"str", "NaN"}, "num": {"float", "-0.000123"}, "money": {"float", "-0.05"},
			"ok": {"bool", "false"}, "tstz": {"datetime", "2024-07-01T00:30:00"}, "t": {"str", ""}, "u": {"none", ""}},
		"3": {"f8": {"float", "1e+300"}, "num": {"str", "NaN"}, "money": {"none", ""}, "ok": {"none", ""}, "t": {"none", ""}},
		"4": {"big": {"int", "123456789012345"}, "num": {"float", "99999999999999.9"}, "money": {"int", "0"}, "ts": {"str", "infinity"},
			"tstz": {"datetime", "2025-03-30T03:30:00"}, "t": {"str", "=1+2 \"quoted\", comma\nline"}},
	}
	for i, rec := range records[1:] {
		row := s.Rows[i+1]
		for col, wantCell := range expect[rec[0]] {
			j := slices.Index(header, col)
			got := [2]string{"none", ""}
			if j < len(row) {
				got = row[j]
			}
			if got == wantCell {
				continue
			}
			// openpyxl reads an empty inline string as None or "": either is fine for "".
			if wantCell == [2]string{"str", ""} && got[0] == "none" {
				t.Logf("row %s column %s: empty string reads back as %v", rec[0], col, got)
				continue
			}
			if wantCell[0] == "float" && got[0] == "int" && sameFloat(got[1], wantCell[1]) {
				continue // a whole number in the XML reads back as a Python int
			}
			t.Errorf("row %s column %s: openpyxl reads %v, want %v (CSV %q)", rec[0], col, got, wantCell, rec[j])
		}
	}
}

func sameFloat(a, b string) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && x == y
}

func TestSplitBoundaries(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE s (a int, b int, v text, PRIMARY KEY (a, b));
		INSERT INTO s SELECT i / 4, i % 4, 'row ' || i FROM generate_series(0, 20) i;`)
	tests := []struct {
		name   string
		rows   int
		args   []string
		sheets [][]int64 // per xlsx file, rows per sheet
	}{
		{"exactly N per sheet", 10, []string{"--max-rows-per-sheet", "5"}, [][]int64{{5, 5}}},
		{"N+1 per sheet", 11, []string{"--max-rows-per-sheet", "5"}, [][]int64{{5, 5, 1}}},
		{"exactly N per file", 10, []string{"--max-rows-per-file", "5"}, [][]int64{{5}, {5}}},
		{"N+1 per file", 11, []string{"--max-rows-per-file", "5", "--max-rows-per-sheet", "3"}, [][]int64{{3, 2}, {3, 2}, {1}}},
		{"empty result", 0, nil, [][]int64{{0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			q := fmt.Sprintf("SELECT * FROM s WHERE a * 4 + b < %d", tt.rows)
			args := append([]string{"export", "--dsn", dsn, "--query", q, "--key", "a,b", "--out", out, "--chunk-rows", "3", "--format", "xlsx", "--format", "csv"}, tt.args...)
			r := runCLI(t, nil, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			m := readManifest(t, out)
			if m.Rows != int64(tt.rows) {
				t.Fatalf("manifest rows %d, want %d", m.Rows, tt.rows)
			}
			var got [][]int64
			var csvRows int64
			for _, f := range m.Files {
				switch f.Format {
				case "xlsx":
					var per []int64
					for _, s := range f.Sheets {
						per = append(per, s.Rows)
					}
					got = append(got, per)
					if want := fmt.Sprintf("export-%04d.xlsx", len(got)); f.Name != want {
						t.Errorf("file %s, want %s", f.Name, want)
					}
				case "csv":
					csvRows += f.Rows
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.sheets) {
				t.Fatalf("sheets %v, want %v", got, tt.sheets)
			}
			if csvRows != int64(tt.rows) {
				t.Fatalf("csv rows %d, want %d", csvRows, tt.rows)
			}
			// Read the first workbook back independently: header plus its rows.
			sheets := readXLSXPython(t, filepath.Join(out, "export-0001.xlsx"))
			for i, s := range sheets {
				if int64(len(s.Rows)-1) != tt.sheets[0][i] || s.Rows[0][0] != [2]string{"str", "a"} {
					t.Fatalf("sheet %s has %d rows after the header, want %d", s.Name, len(s.Rows)-1, tt.sheets[0][i])
				}
			}
		})
	}
}

func TestSameDataSameBytes(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE r (id int PRIMARY KEY, v text); INSERT INTO r SELECT i, md5(i::text) FROM generate_series(1, 3000) i;`)
	var sums [][]string
	for range 2 {
		out := t.TempDir()
		r := runCLI(t, nil, "export", "--dsn", dsn, "--query", "SELECT * FROM r", "--key", "id", "--out", out,
			"--format", "xlsx", "--format", "csv", "--format", "csv.gz", "--max-rows-per-sheet", "1000", "--chunk-rows", "700")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var s []string
		for _, f := range readManifest(t, out).Files {
			s = append(s, f.Name+" "+f.SHA256)
		}
		sums = append(sums, s)
	}
	if !slices.Equal(sums[0], sums[1]) {
		t.Fatalf("two exports of the same data differ:\n%v\n%v", sums[0], sums[1])
	}
}

func TestErrors(t *testing.T) {
	srv := pgtest.Shared(t)
	dsn := newDB(t, `CREATE TABLE e (id int, v text); CREATE INDEX ON e (id);
		INSERT INTO e SELECT i, 'x' FROM generate_series(1, 20) i;
		CREATE TABLE en (id int); INSERT INTO en VALUES (1), (NULL);
		CREATE TABLE ed (id int); INSERT INTO ed VALUES (1), (2), (2), (3);`)
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	aFile := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(aFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const pw = "exporter-secret-pw"
	wrongPW := srv.TCPDSN(db, pgtest.TestUser, "wrong-Pa55word")
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		msg    string
		secret string
	}{
		{"no key", nil, []string{"--query", "SELECT 1"}, exitUsage, "--key is required", ""},
		{"bad format", nil, []string{"--query", "SELECT * FROM e", "--key", "id", "--format", "pdf"}, exitUsage, `--format "pdf"`, ""},
		{"bad flag", nil, []string{"--nope"}, exitUsage, "unknown flag", ""},
		{"too many sheet rows", nil, []string{"--query", "SELECT * FROM e", "--key", "id", "--max-rows-per-sheet", "1048576"}, exitUsage, "--max-rows-per-sheet", ""},
		{"bad size", nil, []string{"--query", "SELECT * FROM e", "--key", "id", "--max-file-bytes", "lots"}, exitUsage, "--max-file-bytes", ""},
		{"bad time zone", nil, []string{"--query", "SELECT * FROM e", "--key", "id", "--timezone", "Mars/Base"}, exitUsage, "--timezone", ""},
		{"unknown key", nil, []string{"--query", "SELECT * FROM e", "--key", "nope"}, exitUsage, `key column "nope"`, ""},
		{"sql error", nil, []string{"--query", "SELECT id,\n nope FROM e", "--key", "id"}, exitQuery, `column "nope" does not exist (SQLSTATE 42703) at line 2, column 2`, ""},
		{"syntax error", nil, []string{"--query", "SELEC id FROM e", "--key", "id"}, exitQuery, "syntax error", ""},
		{"null key", nil, []string{"--query", "SELECT * FROM en", "--key", "id"}, exitData, `key column "id" is NULL`, ""},
		{"duplicate key", nil, []string{"--query", "SELECT * FROM ed", "--key", "id", "--chunk-rows", "2"}, exitData, "key (id) is not unique: value (2)", ""},
		{"unwritable output", nil, []string{"--query", "SELECT * FROM e", "--key", "id", "--out", filepath.Join(aFile, "sub")}, exitOutput, "output folder", ""},
		{"wrong password", nil, []string{"--dsn", wrongPW, "--query", "SELECT * FROM e", "--key", "id"}, exitDatabase, "password authentication failed", "wrong-Pa55word"},
		{"wrong password from env", map[string]string{"DATABASE_URL": wrongPW}, []string{"--query", "SELECT * FROM e", "--key", "id"}, exitDatabase, "password authentication failed", "wrong-Pa55word"},
		{"unreachable", nil, []string{"--dsn", "postgres://u:" + pw + "@127.0.0.1:1/db?connect_timeout=5", "--query", "SELECT 1", "--key", "id"}, exitDatabase, "database", pw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"export"}, tt.args...)
			if !slices.Contains(tt.args, "--dsn") && tt.env == nil {
				args = append(args, "--dsn", dsn)
			}
			if !slices.Contains(tt.args, "--out") {
				args = append(args, "--out", out)
			}
			r := runCLI(t, tt.env, args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, tt.code, r.stderr)
			}
			// Logs may come first; the error is one line of its own at the end.
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "exporter: ") || !strings.Contains(last, tt.msg) || strings.Count(r.stderr, "exporter: ") != 1 {
				t.Fatalf("stderr %q: want a last line 'exporter: ...' containing %q", r.stderr, tt.msg)
			}
			if tt.secret != "" && strings.Contains(r.stderr+r.stdout, tt.secret) {
				t.Fatalf("output shows the password: %s", r.stderr)
			}
			entries, _ := os.ReadDir(out)
			for _, e := range entries {
				t.Errorf("output folder holds %s after a failure", e.Name())
			}
		})
	}
}

func TestJSONLogs(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE g (id int, v int); INSERT INTO g SELECT i % 5, i FROM generate_series(1, 50) i;`)
	out := t.TempDir()
	r := runCLI(t, map[string]string{"DATABASE_URL": dsn}, "export", "--query", "SELECT id, sum(v) AS total FROM g GROUP BY id", "--key", "id",
		"--out", out, "--log-format", "json", "--format", "csv", "--chunk-rows", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var sawStream bool
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "streaming it once") {
			sawStream = true
		}
	}
	m := readManifest(t, out)
	if !sawStream || m.Fetch.Mode != "stream" || len(m.Warnings) == 0 {
		t.Fatalf("a GROUP BY query should be streamed with a warning; manifest %+v, stderr %s", m, r.stderr)
	}
	sameCSV(t, mustRead(t, filepath.Join(out, "export-0001.csv")), copyCSV(t, dsn, "SELECT id, sum(v) AS total FROM g GROUP BY id ORDER BY id"))
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHelpAndCompletion(t *testing.T) {
	r := runCLI(t, nil, "export", "--help")
	for _, want := range []string{"Examples:", "exporter export --dsn", "--max-rows-per-sheet", "Exit codes:"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("export --help (exit %d) lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
	r = runCLI(t, nil, "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "__start_exporter") {
		t.Fatalf("completion bash: exit %d %s", r.code, r.stderr)
	}
}

func TestInterrupted(t *testing.T) {
	dsn := newDB(t, `SELECT 1`)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(500 * time.Millisecond)
		cancel()
	}()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"export", "--dsn", dsn, "--query", "SELECT g AS id, pg_sleep(0.0005) AS s FROM generate_series(1, 1000000) g",
		"--key", "id", "--out", out, "--chunk-rows", "100"}, &stdout, &stderr, func(string) string { return "" })
	if code != exitCanceled {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitCanceled, stderr.String())
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Fatalf("an interrupted export left %v", entries)
	}
}

func TestRerunSkipsWhatIsThere(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE rr (id int PRIMARY KEY, v text); INSERT INTO rr SELECT i, 'v' || i FROM generate_series(1, 500) i;`)
	out := t.TempDir()
	args := []string{"export", "--dsn", dsn, "--query", "SELECT * FROM rr", "--key", "id", "--out", out, "--format", "csv", "--format", "xlsx", "--max-rows-per-file", "200"}
	first := runCLI(t, nil, args...)
	if first.code != 0 || !strings.Contains(first.stdout, "7 files sent, 0 skipped") {
		t.Fatalf("first run: exit %d\n%s%s", first.code, first.stdout, first.stderr)
	}
	// A file changed since: only it is sent again.
	if err := os.WriteFile(filepath.Join(out, "export-0002.csv"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := runCLI(t, nil, args...)
	if second.code != 0 || !strings.Contains(second.stdout, "2 files sent, 5 skipped") {
		t.Fatalf("second run: exit %d\n%s%s", second.code, second.stdout, second.stderr)
	}
	readBackCSV := mustRead(t, filepath.Join(out, "export-0002.csv"))
	if !strings.HasPrefix(readBackCSV, "id,v\r\n201,v201\r\n") {
		t.Fatalf("export-0002.csv was not restored: %q", readBackCSV[:min(40, len(readBackCSV))])
	}
}

// TestDSNFromPGEnvironment connects with libpq's PG* variables when there is
// neither --dsn nor DATABASE_URL.
func TestDSNFromPGEnvironment(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE pe (id int PRIMARY KEY); INSERT INTO pe SELECT generate_series(1, 5);`)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGHOST", cfg.Host)
	t.Setenv("PGPORT", strconv.Itoa(int(cfg.Port)))
	t.Setenv("PGUSER", cfg.User)
	t.Setenv("PGDATABASE", cfg.Database)
	out := t.TempDir()
	r := runCLI(t, nil, "export", "--query", "SELECT * FROM pe", "--key", "id", "--out", out, "--format", "csv")
	if r.code != 0 || readManifest(t, out).Rows != 5 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

// TestMaxFileBytes checks that no delivered file passes --max-file-bytes
// and that the rows add up, in every format.
func TestMaxFileBytes(t *testing.T) {
	dsn := newDB(t, `CREATE TABLE mb (id int PRIMARY KEY, v text); INSERT INTO mb SELECT i, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 4000) i;`)
	out := t.TempDir()
	const limit = 40000
	r := runCLI(t, nil, "export", "--dsn", dsn, "--query", "SELECT * FROM mb", "--key", "id", "--out", out,
		"--format", "xlsx", "--format", "csv", "--format", "csv.gz", "--max-file-bytes", "40KB")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rows := map[string]int64{}
	files := map[string]int{}
	for _, f := range readManifest(t, out).Files {
		st, err := os.Stat(filepath.Join(out, f.Name))
		if err != nil || st.Size() != f.Bytes || f.Bytes > limit {
			t.Errorf("%s: %d bytes (manifest %d), limit %d, %v", f.Name, st.Size(), f.Bytes, limit, err)
		}
		rows[f.Format] += f.Rows
		files[f.Format]++
	}
	for _, format := range []string{"xlsx", "csv", "csv.gz"} {
		if rows[format] != 4000 || files[format] < 2 {
			t.Errorf("%s: %d rows in %d files, want 4000 rows split over several", format, rows[format], files[format])
		}
	}
}
