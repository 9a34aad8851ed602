package xlsx

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

func TestBlockDeflater(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	d := newBlockDeflater(2)
	for _, n := range []int{0, 1, blockSize - 1, blockSize, blockSize + 1, 5*blockSize + 12345} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			in := make([]byte, n)
			for i := range in { // compressible, with some noise
				in[i] = "<row><c>12</c></row>"[i%20]
				if rng.IntN(50) == 0 {
					in[i] = byte(rng.IntN(256))
				}
			}
			var outs [2][]byte
			for k := range outs {
				var buf bytes.Buffer
				d.Reset(&buf)
				for p := in; len(p) > 0; { // odd write sizes
					m := min(len(p), 1+rng.IntN(300000))
					if _, err := d.Write(p[:m]); err != nil {
						t.Fatal(err)
					}
					p = p[m:]
				}
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				outs[k] = buf.Bytes()
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Fatal("two runs over the same input differ")
			}
			// The standard library's inflater is an independent reader.
			got, err := io.ReadAll(flate.NewReader(bytes.NewReader(outs[0])))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, in) {
				t.Fatalf("inflated %d bytes differ from the %d written", len(got), len(in))
			}
		})
	}
}
