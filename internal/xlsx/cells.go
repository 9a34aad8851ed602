package xlsx

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Excel's limits.
const (
	maxSheetRows   = 1048575 // data rows: 1,048,576 rows minus the header
	maxColumns     = 16384
	maxCellUnits   = 32767 // UTF-16 code units in one cell
	maxSigDigits   = 15    // significant digits Excel keeps
	minExcelSerial = 61    // 1900-03-01: earlier serials suffer the 1900 leap-year bug
	maxExcelSerial = 2958465
	// Excel's largest and smallest positive numbers.
	maxExcelNumber = 9.99999999999999e307
	minExcelNumber = 2.2250738585072014e-308
)

// cellType is how one value is written.
type cellType uint8

const (
	ctNull  cellType = iota
	ctInt            // int64 number
	ctFloat          // float64 number (Float, Numeric, serial dates)
	ctBool           // boolean
	ctText           // inline string
)

// intValue validates canonical integer text and reports whether Excel can
// hold it as a number: at most 15 significant digits.
func intValue(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(unsafeString(b), 10, 64)
	if err != nil {
		return 0, false
	}
	if b[0] == '-' || b[0] == '+' {
		b = b[1:]
	}
	return v, sigDigits(b) <= maxSigDigits
}

// sigDigits counts the significant digits of a string of digits: leading and
// trailing zeros are not significant.
func sigDigits(d []byte) int {
	i, j := 0, len(d)
	for i < j && d[i] == '0' {
		i++
	}
	for j > i && d[j-1] == '0' {
		j--
	}
	return j - i
}

// numericValue reports whether PostgreSQL numeric text is a number Excel
// shows exactly: at most 15 significant digits and inside Excel's range.
// Integral values that fit an int64 come back as such (isInt).
func numericValue(b []byte) (v float64, iv int64, isInt, ok bool) {
	s := b
	sign := 0
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
		sign = 1
	}
	if len(s) == 0 {
		return 0, 0, false, false
	}
	intLen := -1
	first, last := -1, -1 // digit positions of the first and last non-zero digit
	nd := 0
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			if c != '0' {
				if first < 0 {
					first = nd
				}
				last = nd
			}
			nd++
		case c == '.' && intLen < 0:
			intLen = i
		default:
			return 0, 0, false, false // NaN, Infinity, anything unexpected
		}
	}
	if nd == 0 {
		return 0, 0, false, false
	}
	if intLen < 0 {
		intLen = nd
	}
	if first >= 0 {
		if last-first+1 > maxSigDigits {
			return 0, 0, false, false
		}
		exp := intLen - 1 - first // decimal exponent of the leading digit
		if exp > 307 || exp < -307 {
			return 0, 0, false, false
		}
	}
	if last < intLen && intLen > 0 && intLen <= 18 {
		// No fraction: read the integer part.
		if n, err := strconv.ParseInt(unsafeString(b[:sign+intLen]), 10, 64); err == nil {
			return 0, n, true, true
		}
	}
	v, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil {
		return 0, 0, false, false
	}
	return v, 0, false, true
}

// floatValue parses Float canonical text; NaN, infinities and values outside
// Excel's range are not numbers.
func floatValue(b []byte) (float64, bool) {
	v, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	if a := math.Abs(v); a != 0 && (a < minExcelNumber || a > maxExcelNumber) {
		return 0, false
	}
	return v, true
}

// boolValue parses true/false (and PostgreSQL's t/f).
func boolValue(b []byte) (val, ok bool) {
	switch string(b) {
	case "true", "t":
		return true, true
	case "false", "f":
		return false, true
	}
	return false, false
}

// num parses a run of ASCII digits.
func num(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date.
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

var excelEpoch = daysFromCivil(1899, 12, 30)

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

var monthDays = [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// dateSerial parses YYYY-MM-DD into an Excel serial day number. Dates Excel
// cannot show (before 1900-03-01, after 9999, BC, infinity) are not ok.
func dateSerial(b []byte) (int, bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, false
	}
	y, ok1 := num(b[0:4])
	m, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return 0, false
	}
	md := monthDays[m]
	if m == 2 && isLeap(y) {
		md = 29
	}
	if d > md {
		return 0, false
	}
	s := daysFromCivil(y, m, d) - excelEpoch
	if s < minExcelSerial || s > maxExcelSerial {
		return 0, false
	}
	return s, true
}

// timestampSerial parses the canonical timestamp text
// (2025-01-01T01:00:03.25+01:00, 2025-01-01T00:00:03Z, 2025-01-01T00:00:03)
// into an Excel serial, using the wall clock and ignoring any offset.
func timestampSerial(b []byte) (float64, bool) {
	if len(b) < 19 || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	day, ok := dateSerial(b[:10])
	if !ok {
		return 0, false
	}
	h, ok1 := num(b[11:13])
	mi, ok2 := num(b[14:16])
	s, ok3 := num(b[17:19])
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	rest := b[19:]
	nanos := 0
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		scale := 100000000
		for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
			nanos += int(rest[i]-'0') * scale
			scale /= 10
		}
		if i == 1 {
			return 0, false
		}
		rest = rest[i:]
	}
	if len(rest) > 0 {
		// An offset: Z, +hh, +hh:mm, +hh:mm:ss.
		if rest[0] == 'Z' {
			if len(rest) != 1 {
				return 0, false
			}
		} else if rest[0] != '+' && rest[0] != '-' || len(rest) < 3 {
			return 0, false
		} else {
			for _, c := range rest[1:] {
				if (c < '0' || c > '9') && c != ':' {
					return 0, false
				}
			}
		}
	}
	secs := float64(h*3600+mi*60+s) + float64(nanos)/1e9
	return round15(float64(day)+secs/86400, day), true
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13}

// round15 rounds a serial to 15 significant digits (day is its integer
// part, at least 61), so that excelize, which cuts longer numbers to 15
// digits, writes the nearest 15-digit value instead of a truncated one.
func round15(v float64, day int) float64 {
	n := 2
	for d := day / 100; d > 0; d /= 10 {
		n++
	}
	scale := pow10[15-n]
	return math.Round(v*scale) / scale
}

// appendExcelFloat appends v as excelize writes it: shortest 'f' form,
// cut to 15 significant digits.
func appendExcelFloat(b []byte, v float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	s := b[start:]
	dot := -1
	sig := 0
	for i, c := range s {
		if c == '.' {
			dot = i
			continue
		}
		if c < '0' || c > '9' || sig == 0 && c == '0' {
			continue
		}
		sig++
		if sig <= maxSigDigits {
			continue
		}
		if dot >= 0 {
			if s[i-1] == '.' {
				i--
			}
			return b[:start+i]
		}
		for j := i; j < len(s) && s[j] != '.'; j++ {
			s[j] = '0'
		}
		if k := bytesIndexByte(s, '.'); k >= 0 {
			return b[:start+k]
		}
		return b
	}
	return b
}

func bytesIndexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// appendTrimmedNumeric appends numeric text without trailing fractional
// zeros (as excelize writes the number).
func appendTrimmedNumeric(b, t []byte) []byte {
	if bytesIndexByte(t, '.') >= 0 {
		for len(t) > 0 && t[len(t)-1] == '0' {
			t = t[:len(t)-1]
		}
		if len(t) > 0 && t[len(t)-1] == '.' {
			t = t[:len(t)-1]
		}
	}
	return append(b, t...)
}

// truncateUTF16 cuts b to at most max UTF-16 code units without splitting a
// character. Invalid bytes count as one unit (they become U+FFFD).
func truncateUTF16(b []byte, max int) ([]byte, bool) {
	if len(b) <= max { // a UTF-8 byte never stands for more than one unit
		return b, false
	}
	units := 0
	for i := 0; i < len(b); {
		c := b[i]
		size, u := 1, 1
		if c >= utf8.RuneSelf {
			var r rune
			r, size = utf8.DecodeRune(b[i:])
			if r > 0xFFFF {
				u = 2
			}
		}
		if units+u > max {
			return b[:i], true
		}
		units += u
		i += size
	}
	return b, false
}

// utf16Len counts UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// escExtra[c] is how many bytes excelize's XML escaping adds for byte c
// (xml.EscapeText, with newlines left as they are): &amp; &lt; &gt; &#34;
// &#39; &#x9; &#xD;, and U+FFFD for control characters.
var escExtra = func() (t [256]uint8) {
	t['&'], t['<'], t['>'], t['"'], t['\''] = 4, 3, 3, 4, 4
	t['\t'], t['\r'] = 4, 4
	for c := 0; c < 0x20; c++ {
		if c != '\t' && c != '\n' && c != '\r' {
			t[c] = 2
		}
	}
	// excelize escapes _xHHHH_ sequences as _x005F_xHHHH_: count every
	// underscore as a possible start.
	t['_'] = 6
	return t
}()

// escapedLen is an upper bound of the length of b once excelize has escaped
// it for an inline string.
func escapedLen(b []byte) int {
	n := len(b)
	for _, c := range b {
		n += int(escExtra[c])
	}
	return n
}

// appendEscaped escapes b as excelize does: xml.EscapeText (newlines kept,
// invalid characters replaced by U+FFFD) and _xHHHH_ sequences prefixed
// with _x005F.
func appendEscaped(dst, b []byte) []byte {
	valid := utf8.Valid(b)
	last := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= utf8.RuneSelf && !valid {
			r, size := utf8.DecodeRune(b[i:])
			if r != utf8.RuneError || size != 1 {
				if !isXMLChar(r) {
					dst = append(dst, b[last:i]...)
					dst = append(dst, "\uFFFD"...)
					last = i + size
				}
				i += size - 1
				continue
			}
			dst = append(dst, b[last:i]...)
			dst = append(dst, "\uFFFD"...)
			last = i + 1
			continue
		}
		if escExtra[c] == 0 {
			continue
		}
		if c == '_' {
			if isBstr(b[i:]) {
				dst = append(dst, b[last:i]...)
				dst = append(dst, "_x005F"...)
				last = i
			}
			continue
		}
		dst = append(dst, b[last:i]...)
		last = i + 1
		switch c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '"':
			dst = append(dst, "&#34;"...)
		case '\'':
			dst = append(dst, "&#39;"...)
		case '\t':
			dst = append(dst, "&#x9;"...)
		case '\r':
			dst = append(dst, "&#xD;"...)
		default:
			dst = append(dst, "\uFFFD"...)
		}
	}
	return append(dst, b[last:]...)
}

// isBstr reports whether b starts with _xHHHH_.
func isBstr(b []byte) bool {
	if len(b) < 7 || b[1] != 'x' || b[6] != '_' {
		return false
	}
	for _, c := range b[2:6] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isXMLChar is encoding/xml's test for characters XML 1.0 allows.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// needsSpace reports whether excelize marks the text xml:space="preserve".
func needsSpace(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	isWS := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	return isWS(b[0]) || isWS(b[len(b)-1])
}
