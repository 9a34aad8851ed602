package chunk

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/exporter-dev/exporter/internal/column"
)

// PostgreSQL counts timestamps in microseconds and dates in days from
// 2000-01-01.
const (
	pgEpochUnixMicros = 946684800 * 1000000
	pgEpochUnixDays   = 10957
)

const (
	layoutTZ    = "2006-01-02T15:04:05.999999Z07:00"
	layoutLocal = "2006-01-02T15:04:05.999999"
	layoutDate  = "2006-01-02"
)

var (
	infinity    = []byte("infinity")
	negInfinity = []byte("-infinity")
)

// appendTime appends the canonical text of a binary timestamptz, timestamp
// or date value.
func appendTime(dst []byte, kind column.Kind, v []byte, loc *time.Location) ([]byte, error) {
	switch kind {
	case column.Date:
		if len(v) != 4 {
			return dst, fmt.Errorf("date value of %d bytes", len(v))
		}
		d := int32(binary.BigEndian.Uint32(v))
		switch d {
		case math.MaxInt32:
			return append(dst, infinity...), nil
		case math.MinInt32:
			return append(dst, negInfinity...), nil
		}
		t := time.Unix((int64(d)+pgEpochUnixDays)*86400, 0).UTC()
		return t.AppendFormat(dst, layoutDate), nil
	default:
		if len(v) != 8 {
			return dst, fmt.Errorf("timestamp value of %d bytes", len(v))
		}
		us := int64(binary.BigEndian.Uint64(v))
		switch us {
		case math.MaxInt64:
			return append(dst, infinity...), nil
		case math.MinInt64:
			return append(dst, negInfinity...), nil
		}
		t := time.UnixMicro(us + pgEpochUnixMicros)
		if kind == column.Timestamp {
			return t.UTC().AppendFormat(dst, layoutLocal), nil
		}
		t = t.In(loc)
		if _, off := t.Zone(); off%60 != 0 {
			// RFC 3339 offsets have no seconds (local mean time before
			// 1900 had them): give the same instant in UTC.
			t = t.UTC()
		}
		return t.AppendFormat(dst, layoutTZ), nil
	}
}
