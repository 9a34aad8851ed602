package agg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"strconv"
	"unsafe"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/axiomhq/hyperloglog"
	metro "github.com/dgryski/go-metro"

	"github.com/exporter-dev/exporter/internal/column"
)

// state holds one aggregate's partial state for every group, indexed by a
// dense group number. States serialize to self-delimiting bytes (a spill
// record holds one per aggregate) and merge such bytes into a group; merging
// the states of consecutive row ranges in their order gives what one pass
// over all the rows would have given.
type state interface {
	// grow adds an empty group.
	grow()
	// add folds a non-NULL value into group g (count(*) gets nil).
	add(g uint32, v []byte) error
	// encode appends group g's state.
	encode(dst []byte, g uint32) []byte
	// merge folds an encoded state, taken from the front of src, into g
	// and returns what follows it.
	merge(g uint32, src []byte) ([]byte, error)
	// result appends g's final value as canonical text; false means NULL.
	result(dst []byte, g uint32) ([]byte, bool)
	// reset drops every group. keep retains the per-group arrays for
	// reuse when few groups are expected next.
	reset(keep bool)
}

var errCorrupt = errors.New("corrupt aggregate state in spill file")

// appendMem appends v to s and charges any growth of s to mem.
func appendMem[T any](mem *int64, s []T, v T) []T {
	c := cap(s)
	s = append(s, v)
	if cap(s) != c {
		*mem += int64(cap(s)-c) * int64(unsafe.Sizeof(v))
	}
	return s
}

// setBytes stores b in dst's space, charging any growth to mem.
func setBytes(mem *int64, dst []byte, b ...[]byte) []byte {
	c := cap(dst)
	dst = dst[:0]
	for _, p := range b {
		dst = append(dst, p...)
	}
	if cap(dst) != c {
		*mem += int64(cap(dst) - c)
	}
	return dst
}

func truncate[T any](s []T, keep bool) []T {
	if keep {
		clear(s)
		return s[:0]
	}
	return nil
}

func readUvarint(src []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(src)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return v, src[n:], nil
}

func readVarint(src []byte) (int64, []byte, error) {
	v, n := binary.Varint(src)
	if n <= 0 {
		return 0, nil, errCorrupt
	}
	return v, src[n:], nil
}

func readBytes(src []byte) ([]byte, []byte, error) {
	n, src, err := readUvarint(src)
	if err != nil || uint64(len(src)) < n {
		return nil, nil, errCorrupt
	}
	return src[:n:n], src[n:], nil
}

func readByte(src []byte) (byte, []byte, error) {
	if len(src) == 0 {
		return 0, nil, errCorrupt
	}
	return src[0], src[1:], nil
}

// ---------------------------------------------------------------- count

type countState struct {
	mem *int64
	n   []int64
}

func (s *countState) grow()                        { s.n = appendMem(s.mem, s.n, 0) }
func (s *countState) add(g uint32, _ []byte) error { s.n[g]++; return nil }
func (s *countState) encode(dst []byte, g uint32) []byte {
	return binary.AppendUvarint(dst, uint64(s.n[g]))
}
func (s *countState) merge(g uint32, src []byte) ([]byte, error) {
	v, src, err := readUvarint(src)
	s.n[g] += int64(v)
	return src, err
}
func (s *countState) result(dst []byte, g uint32) ([]byte, bool) {
	return strconv.AppendInt(dst, s.n[g], 10), true
}
func (s *countState) reset(keep bool) { s.n = truncate(s.n, keep) }

// ---------------------------------------------------------------- exact decimal sum and avg

// Flags of sums.
const (
	fHas  = 1 << iota // some non-NULL value
	fBig              // the sum is in bigs
	fNaN              // a NaN was added
	fPInf             // Infinity was added
	fNInf             // -Infinity was added
)

const maxScale = math.MaxInt16

// decSum sums integers and numerics exactly: an int64 mantissa and a scale
// per group, moved to a big.Int when it would overflow. The scale is the
// largest scale of the inputs, as PostgreSQL keeps it. As avg it also counts
// the values and divides as PostgreSQL's numeric division does.
type decSum struct {
	mem   *int64
	avg   bool
	mant  []int64
	scale []int16
	flags []uint8
	bigs  []*big.Int // nil until some group's sum outgrows int64
	cnt   []int64    // avg only
	tmp   big.Int
	tmp2  big.Int
	buf   []byte
	pow   [40]*big.Int
}

func (s *decSum) grow() {
	s.mant = appendMem(s.mem, s.mant, 0)
	s.scale = appendMem(s.mem, s.scale, 0)
	s.flags = appendMem(s.mem, s.flags, 0)
	if s.bigs != nil {
		s.bigs = appendMem(s.mem, s.bigs, nil)
	}
	if s.avg {
		s.cnt = appendMem(s.mem, s.cnt, 0)
	}
}

func (s *decSum) reset(keep bool) {
	s.mant = truncate(s.mant, keep)
	s.scale = truncate(s.scale, keep)
	s.flags = truncate(s.flags, keep)
	s.bigs = nil
	s.cnt = truncate(s.cnt, keep)
}

func (s *decSum) add(g uint32, v []byte) error {
	if s.avg {
		s.cnt[g]++
	}
	switch string(v) {
	case "NaN":
		s.flags[g] |= fHas | fNaN
		return nil
	case "Infinity":
		s.flags[g] |= fHas | fPInf
		return nil
	case "-Infinity":
		s.flags[g] |= fHas | fNInf
		return nil
	}
	d, err := scanDecimal(v)
	if err != nil {
		return err
	}
	scale := d.nd - d.intLen
	if scale > maxScale {
		return errSyntax
	}
	s.flags[g] |= fHas
	if d.first < 0 || d.nd-d.first <= 18 {
		var m int64
		for i := 0; i < d.nd; i++ {
			m = m*10 + int64(d.digit(v, i)-'0')
		}
		if d.neg {
			m = -m
		}
		s.addInt(g, m, scale)
		return nil
	}
	s.buf = s.buf[:0]
	if d.neg {
		s.buf = append(s.buf, '-')
	}
	for i := 0; i < d.nd; i++ {
		s.buf = append(s.buf, d.digit(v, i))
	}
	if _, ok := s.tmp.SetString(string(s.buf), 10); !ok {
		return errSyntax
	}
	s.addBig(g, &s.tmp, scale)
	return nil
}

var pow10 = [19]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// mulPow10 returns m*10^k unless that overflows.
func mulPow10(m int64, k int) (int64, bool) {
	if m == 0 {
		return 0, true
	}
	if k >= len(pow10) {
		return 0, false
	}
	p := pow10[k]
	if m > math.MaxInt64/p || m < math.MinInt64/p {
		return 0, false
	}
	return m * p, true
}

func (s *decSum) addInt(g uint32, m int64, scale int) {
	if s.flags[g]&fBig == 0 {
		cur, cs := s.mant[g], int(s.scale[g])
		x, ok := m, true
		if scale > cs {
			cur, ok = mulPow10(cur, scale-cs)
			cs = scale
		} else if scale < cs {
			x, ok = mulPow10(m, cs-scale)
		}
		if ok {
			sum := cur + x
			if (sum > cur) == (x > 0) {
				s.mant[g], s.scale[g] = sum, int16(cs)
				return
			}
		}
	}
	s.tmp.SetInt64(m)
	s.addBig(g, &s.tmp, scale)
}

func (s *decSum) pow10(k int) *big.Int {
	if k < len(s.pow) {
		if s.pow[k] == nil {
			s.pow[k] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil)
		}
		return s.pow[k]
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil)
}

// addBig adds x*10^-scale to g's sum; x may be changed.
func (s *decSum) addBig(g uint32, x *big.Int, scale int) {
	if s.flags[g]&fBig == 0 {
		if s.bigs == nil {
			s.bigs = make([]*big.Int, len(s.mant), cap(s.mant))
			*s.mem += int64(cap(s.mant)) * 8
		}
		s.bigs[g] = new(big.Int).SetInt64(s.mant[g])
		s.flags[g] |= fBig
		*s.mem += 64
	}
	b := s.bigs[g]
	before := cap(b.Bits())
	cs := int(s.scale[g])
	if scale > cs {
		b.Mul(b, s.pow10(scale-cs))
		s.scale[g] = int16(scale)
	} else if scale < cs {
		x.Mul(x, s.pow10(cs-scale))
	}
	b.Add(b, x)
	*s.mem += int64(cap(b.Bits())-before) * 8
}

func (s *decSum) encode(dst []byte, g uint32) []byte {
	f := s.flags[g]
	dst = append(dst, f)
	if s.avg {
		dst = binary.AppendUvarint(dst, uint64(s.cnt[g]))
	}
	if f&fHas == 0 {
		return dst
	}
	dst = binary.AppendUvarint(dst, uint64(s.scale[g]))
	if f&fBig != 0 {
		b := s.bigs[g]
		dst = append(dst, byte(b.Sign()+1))
		n := (b.BitLen() + 7) / 8
		dst = binary.AppendUvarint(dst, uint64(n))
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		b.FillBytes(dst[start:])
		return dst
	}
	return binary.AppendVarint(dst, s.mant[g])
}

func (s *decSum) merge(g uint32, src []byte) ([]byte, error) {
	f, src, err := readByte(src)
	if err != nil {
		return nil, err
	}
	if s.avg {
		var c uint64
		if c, src, err = readUvarint(src); err != nil {
			return nil, err
		}
		s.cnt[g] += int64(c)
	}
	if f&fHas == 0 {
		return src, nil
	}
	s.flags[g] |= f &^ fBig
	sc, src, err := readUvarint(src)
	if err != nil || sc > maxScale {
		return nil, errCorrupt
	}
	if f&fBig != 0 {
		var sign byte
		var mag []byte
		if sign, src, err = readByte(src); err != nil {
			return nil, err
		}
		if mag, src, err = readBytes(src); err != nil {
			return nil, err
		}
		s.tmp.SetBytes(mag)
		if sign == 0 {
			s.tmp.Neg(&s.tmp)
		}
		s.addBig(g, &s.tmp, int(sc))
		return src, nil
	}
	m, src, err := readVarint(src)
	if err != nil {
		return nil, err
	}
	s.addInt(g, m, int(sc))
	return src, nil
}

// special appends the text of a sum or avg that saw NaN or an infinity.
func special(dst []byte, f uint8) ([]byte, bool) {
	switch {
	case f&fNaN != 0 || f&(fPInf|fNInf) == fPInf|fNInf:
		return append(dst, "NaN"...), true
	case f&fPInf != 0:
		return append(dst, "Infinity"...), true
	case f&fNInf != 0:
		return append(dst, "-Infinity"...), true
	}
	return dst, false
}

// sumInt sets z to g's sum mantissa.
func (s *decSum) sumInt(z *big.Int, g uint32) *big.Int {
	if s.flags[g]&fBig != 0 {
		return z.Set(s.bigs[g])
	}
	return z.SetInt64(s.mant[g])
}

func (s *decSum) result(dst []byte, g uint32) ([]byte, bool) {
	f := s.flags[g]
	if f&fHas == 0 || (s.avg && s.cnt[g] == 0) {
		return dst, false
	}
	if d, ok := special(dst, f); ok {
		return d, true
	}
	if !s.avg {
		if f&fBig == 0 {
			m := s.mant[g]
			u := uint64(m)
			if m < 0 {
				u = -u
			}
			s.buf = strconv.AppendUint(s.buf[:0], u, 10)
			return appendScaled(dst, m < 0, s.buf, int(s.scale[g])), true
		}
		b := s.bigs[g]
		s.buf = s.tmp.Abs(b).Append(s.buf[:0], 10)
		return appendScaled(dst, b.Sign() < 0, s.buf, int(s.scale[g])), true
	}
	return s.appendAvg(dst, g), true
}

// appendAvg divides the sum by the count as PostgreSQL's numeric_div does:
// at a scale giving at least 16 significant digits and no less than the
// sum's scale, rounded half away from zero.
func (s *decSum) appendAvg(dst []byte, g uint32) []byte {
	sum := s.sumInt(&s.tmp, g)
	sc := int(s.scale[g])
	n := s.cnt[g]
	s.buf = s.tmp2.Abs(sum).Append(s.buf[:0], 10)
	w1, d1 := pgWeight(s.buf, sc)
	s.buf = strconv.AppendInt(s.buf[:0], n, 10)
	w2, d2 := pgWeight(s.buf, 0)
	qweight := w1 - w2
	if d1 <= d2 {
		qweight--
	}
	rscale := 16 - qweight*4
	rscale = min(max(rscale, sc, 0), 1000)
	num := s.tmp2.Mul(sum, s.pow10(rscale-sc))
	den := big.NewInt(n)
	var q, r big.Int
	q.QuoRem(num, den, &r)
	r.Abs(&r)
	r.Lsh(&r, 1)
	if r.Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(&q, big.NewInt(1))
		} else {
			q.Add(&q, big.NewInt(1))
		}
	}
	neg := q.Sign() < 0
	s.buf = q.Abs(&q).Append(s.buf[:0], 10)
	return appendScaled(dst, neg, s.buf, rscale)
}

// pgWeight returns the weight (power of 10000) and the first base-10000
// digit of the number with decimal digits ds and scale, as PostgreSQL's
// select_div_scale sees them; 0, 0 for zero.
func pgWeight(ds []byte, scale int) (int, int) {
	if len(ds) == 1 && ds[0] == '0' {
		return 0, 0
	}
	e := len(ds) - 1 - scale // power of 10 of the first digit
	w := e / 4
	if e < 0 && e%4 != 0 {
		w--
	}
	fd := 0
	for p := 4*w + 3; p >= 4*w; p-- {
		d := 0
		if i := e - p; i >= 0 && i < len(ds) {
			d = int(ds[i] - '0')
		}
		fd = fd*10 + d
	}
	return w, fd
}

// appendScaled appends the decimal with absolute digits ds and scale.
func appendScaled(dst []byte, neg bool, ds []byte, scale int) []byte {
	if neg && !(len(ds) == 1 && ds[0] == '0') {
		dst = append(dst, '-')
	}
	if len(ds) <= scale {
		dst = append(dst, '0', '.')
		for i := len(ds); i < scale; i++ {
			dst = append(dst, '0')
		}
		return append(dst, ds...)
	}
	dst = append(dst, ds[:len(ds)-scale]...)
	if scale > 0 {
		dst = append(dst, '.')
		dst = append(dst, ds[len(ds)-scale:]...)
	}
	return dst
}

// ---------------------------------------------------------------- float sum and avg

// floatSum sums floats with Neumaier's compensation, keeping NaN and the
// infinities aside so that they combine as in PostgreSQL.
type floatSum struct {
	mem   *int64
	avg   bool
	f32   bool
	s, c  []float64
	flags []uint8
	cnt   []int64
}

func (s *floatSum) grow() {
	// sum starts from -0 so that the sum of -0 alone is -0: PostgreSQL's
	// sum starts from the first value. avg starts from 0 as PostgreSQL's does.
	start := 0.0
	if !s.avg {
		start = math.Copysign(0, -1)
	}
	s.s = appendMem(s.mem, s.s, start)
	s.c = appendMem(s.mem, s.c, 0)
	s.flags = appendMem(s.mem, s.flags, 0)
	if s.avg {
		s.cnt = appendMem(s.mem, s.cnt, 0)
	}
}

func (s *floatSum) reset(keep bool) {
	s.s = truncate(s.s, keep)
	s.c = truncate(s.c, keep)
	s.flags = truncate(s.flags, keep)
	s.cnt = truncate(s.cnt, keep)
}

func (s *floatSum) add(g uint32, v []byte) error {
	x, err := parseFloat(v, s.f32)
	if err != nil {
		return err
	}
	if s.avg {
		s.cnt[g]++
	}
	s.flags[g] |= fHas
	s.addFloat(g, x)
	return nil
}

func (s *floatSum) addFloat(g uint32, x float64) {
	switch {
	case math.IsNaN(x):
		s.flags[g] |= fNaN
	case math.IsInf(x, 1):
		s.flags[g] |= fPInf
	case math.IsInf(x, -1):
		s.flags[g] |= fNInf
	default:
		sum := s.s[g]
		t := sum + x
		if math.IsInf(t, 0) {
			if t > 0 {
				s.flags[g] |= fPInf
			} else {
				s.flags[g] |= fNInf
			}
			return
		}
		if math.Abs(sum) >= math.Abs(x) {
			s.c[g] += (sum - t) + x
		} else {
			s.c[g] += (x - t) + sum
		}
		s.s[g] = t
	}
}

func (s *floatSum) encode(dst []byte, g uint32) []byte {
	dst = append(dst, s.flags[g])
	if s.avg {
		dst = binary.AppendUvarint(dst, uint64(s.cnt[g]))
	}
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.s[g]))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.c[g]))
}

func (s *floatSum) merge(g uint32, src []byte) ([]byte, error) {
	f, src, err := readByte(src)
	if err != nil {
		return nil, err
	}
	if s.avg {
		var c uint64
		if c, src, err = readUvarint(src); err != nil {
			return nil, err
		}
		s.cnt[g] += int64(c)
	}
	if len(src) < 16 {
		return nil, errCorrupt
	}
	s.flags[g] |= f
	s.addFloat(g, math.Float64frombits(binary.LittleEndian.Uint64(src)))
	if c := math.Float64frombits(binary.LittleEndian.Uint64(src[8:])); c != 0 {
		s.addFloat(g, c) // (-0 + 0 would turn a sum of -0 into 0)
	}
	return src[16:], nil
}

func (s *floatSum) result(dst []byte, g uint32) ([]byte, bool) {
	f := s.flags[g]
	if f&fHas == 0 {
		return dst, false
	}
	if d, ok := special(dst, f); ok {
		return d, true
	}
	v := s.s[g]
	if s.c[g] != 0 {
		v += s.c[g]
	}
	if s.avg {
		return appendFloat(dst, v/float64(s.cnt[g]), false), true
	}
	if s.f32 {
		v = float64(float32(v))
	}
	return appendFloat(dst, v, s.f32), true
}

// ---------------------------------------------------------------- min and max

const noValue = ^uint32(0)

// minMax keeps per group the winning value's encoding followed by its text
// (text alone for text columns, which compare by their bytes). On a tie the
// later value wins, as PostgreSQL's min and max functions do.
type minMax struct {
	mem     *int64
	max     bool
	k       valueKind
	vals    [][]byte
	elen    []uint32 // encoding length within vals[g], noValue for none
	scratch []byte
}

func (s *minMax) grow() {
	s.vals = appendMem(s.mem, s.vals, nil)
	s.elen = appendMem(s.mem, s.elen, noValue)
}

func (s *minMax) reset(keep bool) {
	s.vals = truncate(s.vals, keep)
	s.elen = truncate(s.elen, keep)
}

func (s *minMax) add(g uint32, v []byte) error {
	if s.k.kind == column.Text {
		s.offer(g, nil, v)
		return nil
	}
	enc, err := appendValueKey(s.scratch[:0], s.k, v)
	s.scratch = enc
	if err != nil {
		return err
	}
	s.offer(g, enc, v)
	return nil
}

func (s *minMax) offer(g uint32, enc, text []byte) {
	if el := s.elen[g]; el != noValue {
		cur, key := s.vals[g][:el], enc
		if s.k.kind == column.Text {
			cur, key = s.vals[g], text
		}
		c := bytes.Compare(key, cur)
		if (s.max && c < 0) || (!s.max && c > 0) {
			return
		}
	}
	s.vals[g] = setBytes(s.mem, s.vals[g], enc, text)
	s.elen[g] = uint32(len(enc))
}

func (s *minMax) encode(dst []byte, g uint32) []byte {
	el := s.elen[g]
	if el == noValue {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(el)+1)
	dst = binary.AppendUvarint(dst, uint64(len(s.vals[g])))
	return append(dst, s.vals[g]...)
}

func (s *minMax) merge(g uint32, src []byte) ([]byte, error) {
	el, src, err := readUvarint(src)
	if err != nil || el == 0 {
		return src, err
	}
	b, src, err := readBytes(src)
	if err != nil || uint64(len(b)) < el-1 {
		return nil, errCorrupt
	}
	s.offer(g, b[:el-1], b[el-1:])
	return src, nil
}

func (s *minMax) result(dst []byte, g uint32) ([]byte, bool) {
	el := s.elen[g]
	if el == noValue {
		return dst, false
	}
	return append(dst, s.vals[g][el:]...), true
}

// ---------------------------------------------------------------- count_distinct

// distinct counts distinct values exactly. All groups share one hash set of
// (group, value encoding) pairs; each group threads its entries into a list
// so that its values can be written out.
type distinct struct {
	mem   *int64
	k     valueKind
	chunk int // arena chunk limit
	tab   *byteTable
	head  []uint32 // per group: last entry id+1, 0 for none
	cnt   []int64  // per group
	next  []uint32 // per entry: previous entry of its group, id+1
	kb    []byte
}

func (s *distinct) grow() {
	s.head = appendMem(s.mem, s.head, 0)
	s.cnt = appendMem(s.mem, s.cnt, 0)
}

func (s *distinct) reset(keep bool) {
	s.head = truncate(s.head, keep)
	s.cnt = truncate(s.cnt, keep)
	s.next = nil
	s.tab = nil
}

func (s *distinct) add(g uint32, v []byte) error {
	s.kb = binary.LittleEndian.AppendUint32(s.kb[:0], g)
	var err error
	if s.kb, err = appendValueKey(s.kb, s.k, v); err != nil {
		return err
	}
	s.insert(g)
	return nil
}

func (s *distinct) insert(g uint32) {
	if s.tab == nil {
		s.tab = newByteTable(s.mem, s.chunk)
	}
	id, isNew, _ := s.tab.insert(s.kb, 0)
	if isNew {
		s.next = appendMem(s.mem, s.next, s.head[g])
		s.head[g] = id + 1
		s.cnt[g]++
	}
}

func (s *distinct) encode(dst []byte, g uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(s.cnt[g]))
	for e := s.head[g]; e != 0; e = s.next[e-1] {
		k := s.tab.key(e - 1)[4:]
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
	}
	return dst
}

func (s *distinct) merge(g uint32, src []byte) ([]byte, error) {
	n, src, err := readUvarint(src)
	if err != nil {
		return nil, err
	}
	for ; n > 0; n-- {
		var k []byte
		if k, src, err = readBytes(src); err != nil {
			return nil, err
		}
		s.kb = binary.LittleEndian.AppendUint32(s.kb[:0], g)
		s.kb = append(s.kb, k...)
		s.insert(g)
	}
	return src, nil
}

func (s *distinct) result(dst []byte, g uint32) ([]byte, bool) {
	return strconv.AppendInt(dst, s.cnt[g], 10), true
}

// ---------------------------------------------------------------- approx_count_distinct

// approxRaw is how many distinct hashes a group keeps before it switches to
// a HyperLogLog sketch; up to there the count is exact.
var approxRaw = 32

// promoting keeps, per group, the few values a sketch aggregate has seen
// until the group needs a sketch, and charges the memory of both: the
// bookkeeping approx and quant share.
type promoting[R any, S any] struct {
	mem       *int64
	raw       [][]R
	sk        []*S // nil until some group needs a sketch
	charged   []int32
	chargeCap int32 // the most one sketch is charged
}

func (p *promoting[R, S]) grow() {
	p.raw = appendMem(p.mem, p.raw, nil)
	if p.sk != nil {
		p.sk = appendMem(p.mem, p.sk, nil)
		p.charged = appendMem(p.mem, p.charged, 0)
	}
}

func (p *promoting[R, S]) reset(keep bool) {
	p.raw = truncate(p.raw, keep)
	p.sk = nil
	p.charged = nil
}

// charge adds n bytes to group g's sketch, up to chargeCap.
func (p *promoting[R, S]) charge(g uint32, n int32) {
	if c := p.charged[g]; c < p.chargeCap {
		n = min(n, p.chargeCap-c)
		p.charged[g] += n
		*p.mem += int64(n)
	}
}

// promoteWith replaces group g's raw values with the sketch made of them.
func (p *promoting[R, S]) promoteWith(g uint32, sketch func(raw []R) *S) {
	if p.sk == nil {
		p.sk = make([]*S, len(p.raw), cap(p.raw))
		p.charged = make([]int32, len(p.raw), cap(p.raw))
		*p.mem += int64(cap(p.raw)) * 12
	}
	sk := sketch(p.raw[g])
	var r R
	*p.mem -= int64(cap(p.raw[g])) * int64(unsafe.Sizeof(r))
	p.raw[g] = nil
	p.sk[g] = sk
	p.charge(g, 1024)
}

// approxCharge caps what a sketch is charged: a dense precision-14 sketch
// is 16 KiB of registers.
const approxCharge = 20 << 10

// approx estimates distinct counts with HyperLogLog (precision 14). The
// result depends only on the set of value hashes, not on their order or on
// how the rows were split among spills.
type approx struct {
	promoting[uint64, hyperloglog.Sketch]
	k       valueKind
	scratch []byte
}

func (s *approx) add(g uint32, v []byte) error {
	enc, err := appendValueKey(s.scratch[:0], s.k, v)
	s.scratch = enc
	if err != nil {
		return err
	}
	s.insert(g, metro.Hash64(enc, 1337))
	return nil
}

func (s *approx) insert(g uint32, h uint64) {
	if s.sk != nil && s.sk[g] != nil {
		s.sk[g].InsertHash(h)
		s.charge(g, 8)
		return
	}
	r := s.raw[g]
	for _, x := range r {
		if x == h {
			return
		}
	}
	if len(r) < approxRaw {
		s.raw[g] = appendMem(s.mem, r, h)
		return
	}
	s.promote(g)
	s.sk[g].InsertHash(h)
}

func (s *approx) promote(g uint32) {
	s.promoteWith(g, func(raw []uint64) *hyperloglog.Sketch {
		sk := hyperloglog.New14()
		for _, h := range raw {
			sk.InsertHash(h)
		}
		return sk
	})
}

func (s *approx) encode(dst []byte, g uint32) []byte {
	if s.sk != nil && s.sk[g] != nil {
		var err error
		s.scratch, err = s.sk[g].AppendBinary(s.scratch[:0])
		if err != nil {
			panic(err) // an initialized sketch always encodes
		}
		dst = append(dst, 1)
		dst = binary.AppendUvarint(dst, uint64(len(s.scratch)))
		return append(dst, s.scratch...)
	}
	r := s.raw[g]
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(len(r)))
	for _, h := range r {
		dst = binary.LittleEndian.AppendUint64(dst, h)
	}
	return dst
}

func (s *approx) merge(g uint32, src []byte) ([]byte, error) {
	mode, src, err := readByte(src)
	if err != nil {
		return nil, err
	}
	switch mode {
	case 0:
		var n uint64
		if n, src, err = readUvarint(src); err != nil || uint64(len(src)) < n*8 {
			return nil, errCorrupt
		}
		for ; n > 0; n-- {
			s.insert(g, binary.LittleEndian.Uint64(src))
			src = src[8:]
		}
		return src, nil
	case 1:
		var b []byte
		if b, src, err = readBytes(src); err != nil {
			return nil, err
		}
		o := hyperloglog.New14()
		if err := o.UnmarshalBinary(b); err != nil {
			return nil, errCorrupt
		}
		if s.sk == nil || s.sk[g] == nil {
			s.promote(g)
		}
		if err := s.sk[g].Merge(o); err != nil {
			return nil, errCorrupt
		}
		s.charge(g, int32(min(len(b), approxCharge)))
		return src, nil
	}
	return nil, errCorrupt
}

func (s *approx) result(dst []byte, g uint32) ([]byte, bool) {
	if s.sk != nil && s.sk[g] != nil {
		return strconv.AppendUint(dst, s.sk[g].Estimate(), 10), true
	}
	return strconv.AppendInt(dst, int64(len(s.raw[g])), 10), true
}

// ---------------------------------------------------------------- percentiles

// quantRaw is how many values a group keeps before it switches to a
// DDSketch.
var quantRaw = 64

// quantCharge caps what a sketch is charged.
const quantCharge = 16 << 10

// quantMapping is DDSketch's logarithmic mapping with 1% relative accuracy;
// it is immutable and shared by all sketches.
var quantMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(0.01)
	if err != nil {
		panic(err)
	}
	return m
}()

// qsketch is a DDSketch plus counts of the infinities it cannot hold.
type qsketch struct {
	dd             *ddsketch.DDSketch
	negInf, posInf float64
}

func newQSketch() *qsketch {
	return &qsketch{dd: ddsketch.NewDDSketchFromStoreProvider(quantMapping, store.BufferedPaginatedStoreConstructor)}
}

func (q *qsketch) add(x float64) {
	lim := quantMapping.MaxIndexableValue()
	switch {
	case math.IsInf(x, 1):
		q.posInf++
	case math.IsInf(x, -1):
		q.negInf++
	default:
		_ = q.dd.Add(max(-lim, min(lim, x)))
	}
}

func (q *qsketch) clear() {
	q.dd.Clear()
	q.negInf, q.posInf = 0, 0
}

// quantile follows DDSketch.GetValueAtQuantile with the infinities at the
// ends: the value at rank floor(quantile*(n-1)) in ascending order, within
// 1% of its true value.
func (q *qsketch) quantile(quantile float64) float64 {
	n := q.negInf + q.dd.GetCount() + q.posInf
	rank := float64(quantile * (n - 1))
	if rank < q.negInf {
		return math.Inf(-1)
	}
	rank -= q.negInf
	neg, pos := q.dd.GetNegativeValueStore(), q.dd.GetPositiveValueStore()
	negCount, zero, posCount := neg.TotalCount(), q.dd.GetZeroCount(), pos.TotalCount()
	switch {
	case rank < negCount:
		// DDSketch takes negCount-1-rank here, which for a fractional
		// rank picks the next value up; flooring keeps both sides taking
		// the value at the lower rank.
		return -q.dd.Value(neg.KeyAtRank(negCount - 1 - math.Floor(rank)))
	case rank < negCount+zero:
		return 0
	case rank < negCount+zero+posCount:
		return q.dd.Value(pos.KeyAtRank(rank - zero - negCount))
	}
	return math.Inf(1)
}

// quant computes pNN: exact values while a group has few, then a DDSketch
// with 1% relative accuracy. The result is the sketch's answer for all the
// group's values (raw values are put into a sketch at the end), so it does
// not depend on their order or on spills. NaN is ignored.
type quant struct {
	promoting[float64, qsketch]
	k       valueKind
	q       float64
	tmp     *qsketch
	scratch []byte
}

func (s *quant) add(g uint32, v []byte) error {
	x, err := parseFloat(v, s.k.f32)
	if err != nil {
		return err
	}
	if !math.IsNaN(x) {
		s.insert(g, x)
	}
	return nil
}

func (s *quant) insert(g uint32, x float64) {
	if s.sk != nil && s.sk[g] != nil {
		s.sk[g].add(x)
		s.charge(g, 8)
		return
	}
	if len(s.raw[g]) < quantRaw {
		s.raw[g] = appendMem(s.mem, s.raw[g], x)
		return
	}
	s.promote(g)
	s.sk[g].add(x)
}

func (s *quant) promote(g uint32) {
	s.promoteWith(g, func(raw []float64) *qsketch {
		sk := newQSketch()
		for _, x := range raw {
			sk.add(x)
		}
		return sk
	})
}

func (s *quant) encode(dst []byte, g uint32) []byte {
	if s.sk != nil && s.sk[g] != nil {
		sk := s.sk[g]
		s.scratch = s.scratch[:0]
		sk.dd.Encode(&s.scratch, true)
		dst = append(dst, 1)
		dst = binary.AppendUvarint(dst, uint64(sk.negInf))
		dst = binary.AppendUvarint(dst, uint64(sk.posInf))
		dst = binary.AppendUvarint(dst, uint64(len(s.scratch)))
		return append(dst, s.scratch...)
	}
	r := s.raw[g]
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(len(r)))
	for _, x := range r {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	return dst
}

func (s *quant) merge(g uint32, src []byte) ([]byte, error) {
	mode, src, err := readByte(src)
	if err != nil {
		return nil, err
	}
	switch mode {
	case 0:
		var n uint64
		if n, src, err = readUvarint(src); err != nil || uint64(len(src)) < n*8 {
			return nil, errCorrupt
		}
		for ; n > 0; n-- {
			s.insert(g, math.Float64frombits(binary.LittleEndian.Uint64(src)))
			src = src[8:]
		}
		return src, nil
	case 1:
		var ni, pi uint64
		var b []byte
		if ni, src, err = readUvarint(src); err != nil {
			return nil, err
		}
		if pi, src, err = readUvarint(src); err != nil {
			return nil, err
		}
		if b, src, err = readBytes(src); err != nil {
			return nil, err
		}
		if s.sk == nil || s.sk[g] == nil {
			s.promote(g)
		}
		sk := s.sk[g]
		sk.negInf += float64(ni)
		sk.posInf += float64(pi)
		if err := sk.dd.DecodeAndMergeWith(b); err != nil {
			return nil, errCorrupt
		}
		s.charge(g, int32(min(len(b)*4, quantCharge)))
		return src, nil
	}
	return nil, errCorrupt
}

func (s *quant) result(dst []byte, g uint32) ([]byte, bool) {
	sk := (*qsketch)(nil)
	if s.sk != nil {
		sk = s.sk[g]
	}
	if sk == nil {
		if len(s.raw[g]) == 0 {
			return dst, false
		}
		if s.tmp == nil {
			s.tmp = newQSketch()
		}
		sk = s.tmp
		sk.clear()
		for _, x := range s.raw[g] {
			sk.add(x)
		}
	}
	return appendFloat(dst, sk.quantile(s.q), false), true
}
