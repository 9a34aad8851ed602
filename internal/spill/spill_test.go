package spill

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	records := [][][]byte{
		{[]byte("1"), nil, []byte("")},
		{[]byte("a,b"), []byte(`say "hi"`), []byte("line1\r\nline2")},
		{nil, nil, nil},
		{[]byte(""), []byte(""), []byte("")},
		{[]byte(`"`), []byte(`""`), []byte("x\n")},
		{[]byte(" lead"), []byte("trail "), []byte("ünïcödé")},
		{[]byte(strings.Repeat("long,", 100000)), []byte("z"), nil},
	}
	path := filepath.Join(t.TempDir(), "c.csv")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range records {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, want := range records {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if len(got) != len(want) {
			t.Fatalf("record %d: %d fields, want %d", i, len(got), len(want))
		}
		for j := range want {
			if (got[j] == nil) != (want[j] == nil) || !bytes.Equal(got[j], want[j]) {
				t.Errorf("record %d field %d: got %q (nil=%v), want %q (nil=%v)", i, j, trunc(got[j]), got[j] == nil, trunc(want[j]), want[j] == nil)
			}
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after last record: %v, want io.EOF", err)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// TestMatchesEncodingCSV checks the bytes against the standard library's
// reader, an independent parser of RFC 4180.
func TestMatchesEncodingCSV(t *testing.T) {
	rec := [][]byte{[]byte("a\"b"), []byte("c,d"), []byte("e\r\nf"), []byte("plain")}
	line := AppendRecord(nil, rec)
	got, err := csv.NewReader(bytes.NewReader(line)).Read()
	if err != nil {
		t.Fatal(err)
	}
	for i := range rec {
		want := strings.ReplaceAll(string(rec[i]), "\r\n", "\n") // encoding/csv folds CRLF inside quotes
		if got[i] != want {
			t.Errorf("field %d: %q, want %q", i, got[i], want)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{"\"abc\r\n", "\"a\"b\r\n", "no line end"} {
		_, err := NewReader(strings.NewReader(in)).Next()
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", in, err)
		}
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	rec := [][]byte{[]byte("123456"), []byte("2025-01-01T00:00:03Z"), []byte("42"), []byte("some text, with comma"), []byte("1234.56"), nil}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], rec)
	}
}

func BenchmarkNext(b *testing.B) {
	line := AppendRecord(nil, [][]byte{[]byte("123456"), []byte("2025-01-01T00:00:03Z"), []byte("42"), []byte("some text, with comma"), []byte("1234.56"), nil})
	data := bytes.Repeat(line, 10000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := NewReader(bytes.NewReader(data))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
