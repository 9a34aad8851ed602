package agg

import (
	"fmt"
	"strings"
	"testing"

	"github.com/exporter-dev/exporter/internal/column"
)

// null stands for NULL in test rows.
const null = "\x00NULL"

// nullOut is how NULL shows in the rows tests compare.
const nullOut = "∅"

func col(name string, kind column.Kind) column.Column {
	c := column.Column{Name: name, Kind: kind, Scale: -1}
	switch kind {
	case column.Int:
		c.OID, c.Type = column.OIDInt8, "bigint"
	case column.Float:
		c.OID, c.Type = column.OIDFloat8, "double precision"
	case column.Numeric:
		c.OID, c.Type = column.OIDNumeric, "numeric"
	case column.Bool:
		c.OID, c.Type = column.OIDBool, "boolean"
	case column.TimestampTZ:
		c.OID, c.Type = column.OIDTimestampTZ, "timestamp with time zone"
	case column.Timestamp:
		c.OID, c.Type = column.OIDTimestamp, "timestamp without time zone"
	case column.Date:
		c.OID, c.Type = column.OIDDate, "date"
	default:
		c.OID, c.Type = 25, "text"
	}
	return c
}

func fields(row []string) [][]byte {
	f := make([][]byte, len(row))
	for i, v := range row {
		if v != null {
			f[i] = []byte(v)
		}
	}
	return f
}

func specs(t testing.TB, exprs ...string) []Spec {
	t.Helper()
	out := make([]Spec, len(exprs))
	for i, e := range exprs {
		s, err := Parse(e)
		if err != nil {
			t.Fatalf("Parse(%q): %v", e, err)
		}
		out[i] = s
	}
	return out
}

// aggregate runs cfg over rows and returns the output as text rows.
func aggregate(t testing.TB, cfg Config, rows [][]string) []string {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer a.Close()
	for _, r := range rows {
		if err := a.Add(fields(r)); err != nil {
			t.Fatalf("Add(%q): %v", r, err)
		}
	}
	return finish(t, a)
}

func finish(t testing.TB, a *Aggregator) []string {
	t.Helper()
	var out []string
	err := a.Finish(func(row [][]byte) error {
		if len(row) != len(a.Columns()) {
			return fmt.Errorf("row of %d values for %d columns", len(row), len(a.Columns()))
		}
		out = append(out, rowText(row))
		return nil
	})
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return out
}

func rowText(row [][]byte) string {
	parts := make([]string, len(row))
	for i, v := range row {
		if v == nil {
			parts[i] = nullOut
		} else {
			parts[i] = string(v)
		}
	}
	return strings.Join(parts, "|")
}

func diffRows(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d\ngot:\n  %s\nwant:\n  %s", len(got), len(want), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}
