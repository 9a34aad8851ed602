// Package column describes the columns of an export: their names, their
// PostgreSQL types and the kind of value each carries through the pipeline.
//
// Every stage after the fetch sees a value as its canonical text, the bytes
// that also go into the CSV output:
//
//	Int        decimal digits with optional sign: -42
//	Float      shortest round-trip decimal, or NaN, Infinity, -Infinity
//	Numeric    PostgreSQL's numeric text with every digit: -1234.5600, NaN
//	Bool       true or false
//	TimestampTZ RFC 3339 in the export's time zone: 2025-01-01T00:00:03Z,
//	           2025-01-01T01:00:03.5+01:00; infinity and -infinity as such
//	Timestamp  RFC 3339 without offset: 2025-01-01T00:00:03
//	Date       2025-01-01
//	Text       anything else as PostgreSQL prints it (text, json, uuid, arrays, intervals)
//
// A NULL is a nil []byte; an empty string is a non-nil []byte of length 0.
package column

import "fmt"

// Kind is how a column's values are treated by the writers.
type Kind uint8

// The kinds of column values.
const (
	Text Kind = iota
	Int
	Float
	Numeric
	Bool
	TimestampTZ
	Timestamp
	Date
)

var kindNames = [...]string{"text", "int", "float", "numeric", "bool", "timestamptz", "timestamp", "date"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Numeric reports whether the kind holds numbers.
func (k Kind) Numeric() bool { return k == Int || k == Float || k == Numeric }

// PostgreSQL type OIDs that map to a kind other than Text.
const (
	OIDBool        = 16
	OIDInt8        = 20
	OIDInt2        = 21
	OIDInt4        = 23
	OIDOID         = 26
	OIDFloat4      = 700
	OIDFloat8      = 701
	OIDDate        = 1082
	OIDTimestamp   = 1114
	OIDTimestampTZ = 1184
	OIDNumeric     = 1700
)

// KindOf maps a PostgreSQL type OID to a kind.
func KindOf(oid uint32) Kind {
	switch oid {
	case OIDInt2, OIDInt4, OIDInt8, OIDOID:
		return Int
	case OIDFloat4, OIDFloat8:
		return Float
	case OIDNumeric:
		return Numeric
	case OIDBool:
		return Bool
	case OIDTimestampTZ:
		return TimestampTZ
	case OIDTimestamp:
		return Timestamp
	case OIDDate:
		return Date
	}
	return Text
}

// Column is one column of the export.
type Column struct {
	Name string `json:"name"`
	// Type is PostgreSQL's name for the type, such as "numeric(12,2)".
	Type string `json:"type"`
	OID  uint32 `json:"-"`
	Kind Kind   `json:"-"`
	// Scale is the declared scale of a numeric(p,s) column, or -1.
	Scale int `json:"-"`
}

// NumericScale decodes the scale from a numeric type modifier, or -1.
func NumericScale(typmod int32) int {
	if typmod < 4 {
		return -1
	}
	return int((typmod - 4) & 0xffff)
}

// Index returns the position of the column named name, or -1.
func Index(cols []Column, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	return -1
}
