package agg

import (
	"bytes"
	"hash/maphash"
)

// arena stores byte strings in large chunks, so that millions of small keys
// cost no more than their bytes and no pointers for the GC to scan.
type arena struct {
	chunks   [][]byte
	maxChunk int // chunks double from 256 bytes up to this size
	mem      *int64
}

// alloc reserves n bytes and returns their reference and the space itself.
func (a *arena) alloc(n int) (uint64, []byte) {
	last := len(a.chunks) - 1
	if last < 0 || cap(a.chunks[last])-len(a.chunks[last]) < n {
		size := 256
		if last >= 0 {
			size = min(2*cap(a.chunks[last]), a.maxChunk)
		}
		size = max(size, n)
		a.chunks = append(a.chunks, make([]byte, 0, size))
		*a.mem += int64(size) + 24
		last++
	}
	c := a.chunks[last]
	off := len(c)
	a.chunks[last] = c[:off+n]
	return uint64(last)<<32 | uint64(off), a.chunks[last][off : off+n : off+n]
}

// from returns the bytes from ref to the end of its chunk.
func (a *arena) from(ref uint64) []byte {
	return a.chunks[ref>>32][uint32(ref):]
}

// byteTable is an open-addressing hash set of byte strings kept in an arena;
// each string gets a dense id in insertion order. An entry may carry extra
// bytes after its key in the arena (the group values' text).
type byteTable struct {
	slots  []uint32 // id+1, 0 for an empty slot
	hashes []uint32 // per id
	refs   []uint64 // per id: arena reference
	lens   []uint32 // per id: key length
	arena  arena
	seed   maphash.Seed
	mem    *int64
}

func newByteTable(mem *int64, maxChunk int) *byteTable {
	t := &byteTable{seed: maphash.MakeSeed(), mem: mem}
	t.arena = arena{maxChunk: maxChunk, mem: mem}
	t.slots = make([]uint32, 16)
	*mem += 16 * 4
	return t
}

// Len returns the number of strings.
func (t *byteTable) Len() int { return len(t.hashes) }

// key returns the key with id.
func (t *byteTable) key(id uint32) []byte {
	return t.arena.from(t.refs[id])[:t.lens[id]]
}

// extra returns the bytes stored after the key with id, up to the end of
// its chunk; the caller knows their length.
func (t *byteTable) extra(id uint32) []byte {
	return t.arena.from(t.refs[id])[t.lens[id]:]
}

// insert finds key, adding it (with room for extra more bytes, returned as
// dst) when it is new.
func (t *byteTable) insert(key []byte, extra int) (id uint32, isNew bool, dst []byte) {
	h := uint32(maphash.Bytes(t.seed, key))
	mask := uint32(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			id = uint32(len(t.hashes))
			ref, b := t.arena.alloc(len(key) + extra)
			copy(b, key)
			t.hashes = appendMem(t.mem, t.hashes, h)
			t.refs = appendMem(t.mem, t.refs, ref)
			t.lens = appendMem(t.mem, t.lens, uint32(len(key)))
			t.slots[i] = id + 1
			if len(t.hashes)*10 > len(t.slots)*7 {
				t.grow()
			}
			return id, true, b[len(key):]
		}
		if t.hashes[s-1] == h && bytes.Equal(t.key(s-1), key) {
			return s - 1, false, nil
		}
	}
}

func (t *byteTable) grow() {
	n := len(t.slots) * 2
	slots := make([]uint32, n)
	*t.mem += int64(n-len(t.slots)) * 4
	mask := uint32(n - 1)
	for id, h := range t.hashes {
		i := h & mask
		for slots[i] != 0 {
			i = (i + 1) & mask
		}
		slots[i] = uint32(id) + 1
	}
	t.slots = slots
}
