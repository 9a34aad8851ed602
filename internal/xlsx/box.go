package xlsx

import "unsafe"

// Boxing a float64, int64 or string into an interface allocates. The writer
// hands excelize one value per cell, so that would be one allocation per
// cell. Instead each column owns a few boxes: an interface value whose data
// word points at a variable the writer overwrites for every row. Storing a
// value is then a plain memory write.
//
// This relies on the runtime's layout of an empty interface (type word, data
// word) and on float64, int64 and string being stored indirectly. boxesWork
// checks that at start-up; if it ever fails the writer boxes values the
// ordinary way.

type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// newBox returns a variable and an interface value that always reads the
// variable's current content.
func newBox[T any]() (*T, any) {
	p := new(T)
	var v any = *p
	(*eface)(unsafe.Pointer(&v)).data = unsafe.Pointer(p)
	return p, v
}

var boxesOK = boxesWork()

func boxesWork() bool {
	fp, fv := newBox[float64]()
	ip, iv := newBox[int64]()
	sp, sv := newBox[string]()
	for _, x := range []float64{1.25, -3e300} {
		*fp = x
		if got, ok := fv.(float64); !ok || got != x {
			return false
		}
	}
	for _, x := range []int64{4242, -1 << 62} {
		*ip = x
		if got, ok := iv.(int64); !ok || got != x {
			return false
		}
	}
	for _, x := range []string{"hello", "wörld"} {
		*sp = x
		if got, ok := sv.(string); !ok || got != x {
			return false
		}
	}
	*sp = ""
	return true
}

// unsafeString views b as a string without copying. The caller must not
// let the string outlive b or see b change while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
