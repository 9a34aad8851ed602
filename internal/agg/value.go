package agg

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"

	"github.com/exporter-dev/exporter/internal/column"
)

// This file turns canonical value text (see package column) into
// order-preserving byte strings: for two values a and b of one kind,
// bytes.Compare(enc(a), enc(b)) orders them as PostgreSQL does, and equal
// encodings mean equal values (1.0 and 1.00 encode alike, so do 0 and -0).
//
// Group keys concatenate one encoding per group column; there every column
// starts with a byte below nullByte, and NULL is nullByte alone, so NULL sorts
// last as in PostgreSQL's ascending order. Text in a group key is escaped and
// terminated so that the concatenation stays order preserving.

const nullByte = 0xff

var errSyntax = errors.New("invalid syntax")

// valueKind is what the codecs need to know about a column.
type valueKind struct {
	kind column.Kind
	f32  bool // float4: parse with 32 bits, print the shortest float4
}

func kindOf(c column.Column) valueKind {
	return valueKind{kind: c.Kind, f32: c.Kind == column.Float && c.OID == column.OIDFloat4}
}

// appendGroupKey appends the encoding of one group column value, NULL
// included, with text escaped.
func appendGroupKey(dst []byte, k valueKind, v []byte) ([]byte, error) {
	if v == nil {
		return append(dst, nullByte), nil
	}
	if k.kind == column.Text {
		dst = append(dst, 0x01)
		for _, c := range v {
			if c == 0 {
				dst = append(dst, 0, 0xff)
			} else {
				dst = append(dst, c)
			}
		}
		return append(dst, 0, 0x01), nil
	}
	return appendValueKey(dst, k, v)
}

// appendValueKey appends the encoding of one non-NULL value; text is taken
// as is (it stands alone, so it needs no terminator).
func appendValueKey(dst []byte, k valueKind, v []byte) ([]byte, error) {
	switch k.kind {
	case column.Int:
		n, ok := parseInt(v)
		if !ok {
			// Wider than int64 (never from PostgreSQL's integer types): order
			// it as a numeric.
			return appendNumericKey(dst, v)
		}
		return binary.BigEndian.AppendUint64(append(dst, 0x01), uint64(n)^(1<<63)), nil
	case column.Float:
		f, err := parseFloat(v, k.f32)
		if err != nil {
			return dst, err
		}
		return appendFloatKey(dst, f), nil
	case column.Numeric:
		return appendNumericKey(dst, v)
	case column.Bool:
		switch string(v) {
		case "true", "t":
			return append(dst, 0x02), nil
		case "false", "f":
			return append(dst, 0x01), nil
		}
		return dst, errSyntax
	case column.TimestampTZ, column.Timestamp, column.Date:
		cls, n, err := parseTime(v, k.kind)
		if err != nil {
			return dst, err
		}
		dst = append(dst, cls)
		if cls == timeFinite {
			dst = binary.BigEndian.AppendUint64(dst, uint64(n)^(1<<63))
		}
		return dst, nil
	}
	return append(dst, v...), nil
}

// appendFloatKey orders -Infinity < numbers < Infinity < NaN, with -0 = 0
// and every NaN equal, as PostgreSQL does.
func appendFloatKey(dst []byte, f float64) []byte {
	if math.IsNaN(f) {
		return append(dst, 0x02)
	}
	if f == 0 {
		f = 0
	}
	u := math.Float64bits(f)
	if u>>63 != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(append(dst, 0x01), u)
}

// Numeric classes in order.
const (
	numNegInf = 0x01
	numNeg    = 0x02
	numZero   = 0x03
	numPos    = 0x04
	numPosInf = 0x05
	numNaN    = 0x06
)

// appendNumericKey encodes a numeric as class, exponent and significant
// digits (complemented for negatives), trailing zeros dropped.
func appendNumericKey(dst, v []byte) ([]byte, error) {
	switch string(v) {
	case "NaN":
		return append(dst, numNaN), nil
	case "Infinity":
		return append(dst, numPosInf), nil
	case "-Infinity":
		return append(dst, numNegInf), nil
	}
	d, err := scanDecimal(v)
	if err != nil {
		return dst, err
	}
	if d.first < 0 {
		return append(dst, numZero), nil
	}
	// value = 0.D[first..last] x 10^exp
	exp := int64(d.intLen - d.first)
	var cls byte = numPos
	var flip byte
	if d.neg {
		cls, flip = numNeg, 0xff
	}
	dst = append(dst, cls)
	e := uint32(exp + 1<<31)
	if d.neg {
		e = ^e
	}
	dst = binary.BigEndian.AppendUint32(dst, e)
	for i := d.first; i <= d.last; i++ {
		dst = append(dst, d.digit(v, i)^flip)
	}
	return append(dst, flip), nil
}

// decimal describes the digits of a decimal text without copying them.
type decimal struct {
	neg    bool
	start  int // index in the text of the first digit
	dot    int // index of the '.', or -1
	intLen int // digits before the point
	nd     int // digits in all
	first  int // digit number of the first nonzero digit, or -1 for zero
	last   int // digit number of the last nonzero digit
}

// digit returns digit number i (counting all digits from 0) as ASCII.
func (d *decimal) digit(v []byte, i int) byte {
	p := d.start + i
	if d.dot >= 0 && i >= d.intLen {
		p++
	}
	return v[p]
}

// scanDecimal parses [-+]digits[.digits] as PostgreSQL prints numeric and
// integer values.
func scanDecimal(v []byte) (decimal, error) {
	d := decimal{dot: -1, first: -1}
	i := 0
	if i < len(v) && (v[i] == '-' || v[i] == '+') {
		d.neg = v[i] == '-'
		i++
	}
	d.start = i
	for ; i < len(v); i++ {
		c := v[i]
		if c == '.' {
			if d.dot >= 0 {
				return d, errSyntax
			}
			d.dot = i
			d.intLen = d.nd
			continue
		}
		if c < '0' || c > '9' {
			return d, errSyntax
		}
		if c != '0' {
			if d.first < 0 {
				d.first = d.nd
			}
			d.last = d.nd
		}
		d.nd++
	}
	if d.nd == 0 {
		return d, errSyntax
	}
	if d.dot < 0 {
		d.intLen = d.nd
	}
	return d, nil
}

// parseInt parses a decimal integer that fits int64.
func parseInt(v []byte) (int64, bool) {
	i := 0
	neg := false
	if len(v) > 0 && (v[0] == '-' || v[0] == '+') {
		neg = v[0] == '-'
		i = 1
	}
	if i == len(v) {
		return 0, false
	}
	var u uint64
	for ; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to itself
	}
	if u == 1<<63 {
		return 0, false
	}
	return int64(u), true
}

// parseFloat parses a float column's text; NaN, Infinity and -Infinity
// included. A float4 is rounded to float4 first, so that it carries the same
// value PostgreSQL widens it to.
func parseFloat(v []byte, f32 bool) (float64, error) {
	bits := 64
	if f32 {
		bits = 32
	}
	f, err := strconv.ParseFloat(string(v), bits)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return f, nil // ±Inf or 0, as PostgreSQL's overflow would go
		}
		return 0, errSyntax
	}
	return f, nil
}

// appendFloat appends f as PostgreSQL prints a float8 (float4 when f32)
// with extra_float_digits = 1: the shortest text that reads back exactly,
// in exponent form outside 1e-4 <= |f| < 1e15 (1e6 for float4).
func appendFloat(dst []byte, f float64, f32 bool) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	bits, limit := 64, 15
	if f32 {
		bits, limit = 32, 6
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, bits)
	e := start
	for dst[e] != 'e' {
		e++
	}
	exp, _ := strconv.Atoi(string(dst[e+1:]))
	if exp >= -4 && exp < limit {
		dst = strconv.AppendFloat(dst[:start], f, 'f', -1, bits)
	}
	return dst
}

// Time classes in order.
const (
	timeNegInf = 0x01
	timeFinite = 0x02
	timePosInf = 0x03
)

// parseTime reads the canonical text of a timestamptz, timestamp or date:
// microseconds (days for a date) since 2000-01-01 UTC, or an infinity class.
// It takes [-]YYYY-MM-DD, then for timestamps [T ]hh:mm:ss[.ffffff] and for
// timestamptz an offset Z, ±hh, ±hh:mm or ±hh:mm:ss.
func parseTime(v []byte, kind column.Kind) (cls byte, n int64, err error) {
	switch string(v) {
	case "infinity":
		return timePosInf, 0, nil
	case "-infinity":
		return timeNegInf, 0, nil
	}
	p := 0
	num := func(min, max int) (int64, bool) {
		s := p
		var x int64
		for p < len(v) && v[p] >= '0' && v[p] <= '9' && p-s < max {
			x = x*10 + int64(v[p]-'0')
			p++
		}
		return x, p-s >= min
	}
	expect := func(c byte) bool {
		if p < len(v) && v[p] == c {
			p++
			return true
		}
		return false
	}
	neg := expect('-')
	year, ok := num(4, 9)
	if !ok || !expect('-') {
		return 0, 0, errSyntax
	}
	if neg {
		year = -year
	}
	month, ok1 := num(2, 2)
	ok2 := expect('-')
	day, ok3 := num(2, 2)
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > 31 {
		return 0, 0, errSyntax
	}
	days := daysFromCivil(year, month, day) - 10957 // since 2000-01-01
	if kind == column.Date {
		if p != len(v) {
			return 0, 0, errSyntax
		}
		return timeFinite, days, nil
	}
	if !expect('T') && !expect(' ') {
		return 0, 0, errSyntax
	}
	hh, ok1 := num(2, 2)
	ok2 = expect(':')
	mm, ok3 := num(2, 2)
	ok4 := expect(':')
	ss, ok5 := num(2, 2)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || hh > 24 || mm > 59 || ss > 60 {
		return 0, 0, errSyntax
	}
	us := ((days*24+hh)*60+mm)*60*1e6 + ss*1e6
	if expect('.') {
		s := p
		frac, ok := num(1, 9)
		if !ok {
			return 0, 0, errSyntax
		}
		for k := p - s; k < 6; k++ {
			frac *= 10
		}
		for k := p - s; k > 6; k-- {
			frac /= 10
		}
		us += frac
	}
	if kind == column.TimestampTZ && p < len(v) {
		if expect('Z') {
		} else {
			sign := int64(1)
			switch {
			case expect('+'):
			case expect('-'):
				sign = -1
			default:
				return 0, 0, errSyntax
			}
			oh, ok := num(2, 2)
			if !ok {
				return 0, 0, errSyntax
			}
			off := oh * 3600
			colon := expect(':')
			if p < len(v) {
				om, ok := num(2, 2)
				if !ok {
					return 0, 0, errSyntax
				}
				off += om * 60
				if p < len(v) {
					if colon && !expect(':') {
						return 0, 0, errSyntax
					}
					os, ok := num(2, 2)
					if !ok {
						return 0, 0, errSyntax
					}
					off += os
				}
			}
			us -= sign * off * 1e6
		}
	}
	if p != len(v) {
		return 0, 0, errSyntax
	}
	return timeFinite, us, nil
}

// daysFromCivil counts days from 1970-01-01 in the proleptic Gregorian
// calendar with astronomical years (year 0 is 1 BC), as Go prints them.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
