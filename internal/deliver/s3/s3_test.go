package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/exporter-dev/exporter/internal/deliver"
	"github.com/exporter-dev/exporter/internal/s3test"
)

const bucket = "exports"

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, prefix string
		bad                bool
	}{
		{in: "s3://b/", bucket: "b"},
		{in: "s3://b", bucket: "b"},
		{in: "s3://b/p", bucket: "b", prefix: "p/"},
		{in: "s3://b/p/q/", bucket: "b", prefix: "p/q/"},
		{in: "s3://my-bucket.x/daily//", bucket: "my-bucket.x", prefix: "daily//"},
		{in: "http://b/p", bad: true},
		{in: "s3:///p", bad: true},
		{in: "s3://u:pw@b/p", bad: true},
		{in: "s3://b/p?x=1", bad: true},
		{in: "b/p", bad: true},
	} {
		b, p, err := ParseURL(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseURL(%q) = %q, %q; want error", tc.in, b, p)
			}
			continue
		}
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", tc.in, b, p, err, tc.bucket, tc.prefix)
		}
	}
}

func TestNewRejects(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []Config{
		{},
		{Bucket: "b", PartSize: 1 << 20},
		{Bucket: "b", SSE: "rot13"},
		{Bucket: "b", KMSKeyID: "k"},
		{Bucket: "b", Endpoint: "ftp://x"},
		{Bucket: "b", Endpoint: "https://user:secret@x"},
		{Bucket: "b", PresignTTL: 8 * 24 * time.Hour},
	} {
		if _, err := New(ctx, cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("New: error shows the secret: %v", err)
		}
	}
}

func TestMD5ETag(t *testing.T) {
	dir := t.TempDir()
	data := randBytes(11<<20+7, 1)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := md5ETag(f, int64(len(data)), 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	// md5(md5(p1) md5(p2) md5(p3))-3
	var sums []byte
	for off := 0; off < len(data); off += 5 << 20 {
		h := md5Sum(data[off:min(off+5<<20, len(data))])
		sums = append(sums, h...)
	}
	if want := hex.EncodeToString(md5Sum(sums)) + "-3"; got != want {
		t.Fatalf("md5ETag = %s, want %s", got, want)
	}
	if got, want := partSizeFor(100<<30, 8<<20), int64(100<<30/10000+1); got != want {
		t.Fatalf("partSizeFor = %d, want %d", got, want)
	}
}

// env starts versitygw, makes the bucket, points the AWS environment at
// the server and returns a Client for it.
func env(t *testing.T, useTLS bool, mod func(*Config)) (*s3test.Server, *Client) {
	t.Helper()
	srv := s3test.Start(t, useTLS)
	srv.CreateBucket(t, bucket)
	srv.SetEnv(t)
	cfg := Config{
		Bucket:      bucket,
		Prefix:      "daily/2024-05-01",
		Endpoint:    srv.Endpoint,
		PathStyle:   true,
		PartSize:    5 << 20,
		Concurrency: 4,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return srv, c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func md5Sum(b []byte) []byte {
	h := md5.New()
	h.Write(b)
	return h.Sum(nil)
}

// writeFile writes n pseudo-random bytes and describes them.
func writeFile(t testing.TB, n int, seed uint64) (deliver.File, []byte) {
	t.Helper()
	data := randBytes(n, seed)
	p := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return deliver.File{Path: p, Size: int64(n), SHA256: hex.EncodeToString(sum[:]), ContentType: "application/x-test"}, data
}

func getObject(t *testing.T, srv *s3test.Server, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := srv.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, out
}

func httpClientFor(t *testing.T, srv *s3test.Server) *http.Client {
	if srv.CAFile == "" {
		return http.DefaultClient
	}
	pem, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestPutRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := env(t, tc.tls, nil)
			ctx := context.Background()
			if s := c.String(); !strings.HasPrefix(s, "s3://exports/daily/2024-05-01/ at "+srv.Endpoint) {
				t.Errorf("String() = %q", s)
			}
			for i, size := range []int{0, 1 << 10, 20<<20 + 12345} {
				src, data := writeFile(t, size, uint64(i+1))
				name := "f" + string(rune('a'+i)) + ".bin"
				key := "daily/2024-05-01/" + name
				if ok, err := c.Has(ctx, name, src); err != nil || ok {
					t.Fatalf("Has before Put = %v, %v", ok, err)
				}
				if err := c.Put(ctx, name, src); err != nil {
					t.Fatalf("Put %d bytes: %v", size, err)
				}
				got, out := getObject(t, srv, key)
				if !bytes.Equal(got, data) {
					t.Fatalf("%d bytes: read back %d bytes, differ", size, len(got))
				}
				gs := sha256.Sum256(got)
				if hex.EncodeToString(gs[:]) != src.SHA256 {
					t.Fatalf("sha256 differs")
				}
				if m := out.Metadata[MetaSHA256]; m != src.SHA256 {
					t.Errorf("metadata sha256 = %q, want %q (all: %v)", m, src.SHA256, out.Metadata)
				}
				if ct := aws.ToString(out.ContentType); ct != src.ContentType {
					t.Errorf("content type %q", ct)
				}
				etag := strings.Trim(aws.ToString(out.ETag), `"`)
				t.Logf("%d bytes: ETag %s", size, etag)
				multi := reMultiETag.MatchString(etag)
				if multi != (size >= 5<<20) || (!multi && !reSingleETag.MatchString(etag)) {
					t.Errorf("%d bytes: ETag %q not of the expected MD5 form, so verify checked size only", size, etag)
				}

				if ok, err := c.Has(ctx, name, src); err != nil || !ok {
					t.Fatalf("Has same = %v, %v", ok, err)
				}
				other := src
				other.Size++
				if ok, err := c.Has(ctx, name, other); err != nil || ok {
					t.Fatalf("Has other size = %v, %v", ok, err)
				}
				other = src
				other.SHA256 = strings.Repeat("0", 64)
				if ok, err := c.Has(ctx, name, other); err != nil || ok {
					t.Fatalf("Has other sha256 = %v, %v", ok, err)
				}

				u, err := c.Presign(ctx, name, src)
				if err != nil {
					t.Fatalf("Presign: %v", err)
				}
				resp, err := httpClientFor(t, srv).Get(u)
				if err != nil {
					t.Fatalf("GET presigned: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
					t.Fatalf("GET presigned: %s, %d bytes (want %d)", resp.Status, len(body), len(data))
				}

				if err := c.Remove(ctx, name); err != nil {
					t.Fatalf("Remove: %v", err)
				}
				if ok, err := c.Has(ctx, name, src); err != nil || ok {
					t.Fatalf("Has after Remove = %v, %v", ok, err)
				}
				if err := c.Remove(ctx, name); err != nil {
					t.Fatalf("Remove missing: %v", err)
				}
			}
		})
	}
}

// waitUpload waits until the server holds a multipart upload of key with
// at least one part, then calls fn.
func waitUpload(t *testing.T, srv *s3test.Server, key string, fn func()) {
	raw := srv.Client(t)
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := raw.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
		if err == nil {
			for _, u := range out.Uploads {
				if aws.ToString(u.Key) != key {
					continue
				}
				parts, err := raw.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
				if err == nil && len(parts.Parts) > 0 {
					fn()
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Error("no multipart upload with a part seen in 30s")
	fn()
}

func noUploadsNoObject(t *testing.T, srv *s3test.Server, key string) {
	t.Helper()
	raw := srv.Client(t)
	ctx := context.Background()
	out, err := raw.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range out.Uploads {
		t.Errorf("incomplete multipart upload left: %s %s", aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
	if _, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err == nil || !isNotFound(err) {
		t.Errorf("HeadObject %s after failed upload: %v (want not found)", key, err)
	}
}

func TestCancelMidUpload(t *testing.T) {
	srv, c := env(t, false, func(c *Config) { c.Concurrency = 2 })
	src, _ := writeFile(t, 120<<20, 7)
	name, key := "big.bin", "daily/2024-05-01/big.bin"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Put(ctx, name, src) }()
	waitUpload(t, srv, key, cancel)
	err := <-done
	if err == nil {
		t.Fatal("Put succeeded despite cancel (upload too fast to cancel?)")
	}
	t.Logf("cancelled Put: %v", err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error is not context.Canceled: %v", err)
	}
	noUploadsNoObject(t, srv, key)
}

func TestServerStoppedMidUpload(t *testing.T) {
	srv, c := env(t, false, func(c *Config) { c.Concurrency = 2; c.MaxAttempts = 2 })
	src, data := writeFile(t, 120<<20, 8)
	name, key := "big.bin", "daily/2024-05-01/big.bin"
	done := make(chan error, 1)
	go func() { done <- c.Put(context.Background(), name, src) }()
	waitUpload(t, srv, key, srv.Stop)
	err := <-done
	if err == nil {
		t.Fatal("Put succeeded with the server stopped")
	}
	t.Logf("Put with server stopped: %v", err)
	if deliver.IsPermanent(err) {
		t.Fatalf("server stopped mid-upload gave a permanent error: %v", err)
	}
	if strings.Contains(err.Error(), srv.SecretKey) {
		t.Fatal("secret key in error")
	}
	srv.Restart()
	// The abort could not reach the stopped server: what is left is for
	// the bucket's lifecycle rule (AbortIncompleteMultipartUpload).
	if out, err := srv.Client(t).ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}); err == nil {
		t.Logf("incomplete multipart uploads left after the crash: %d", len(out.Uploads))
	}
	if err := c.Put(context.Background(), name, src); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	got, _ := getObject(t, srv, key)
	if !bytes.Equal(got, data) {
		t.Fatal("object after restart differs")
	}
}

func TestPermanentErrors(t *testing.T) {
	srv, c := env(t, true, nil)
	ctx := context.Background()
	src, _ := writeFile(t, 1<<10, 9)

	// Wrong secret key.
	wrong := "wrong-" + srv.SecretKey[:10] + "-zzzzzzzzzzzz"
	t.Setenv("AWS_SECRET_ACCESS_KEY", wrong)
	bad, err := New(ctx, c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkPermanent := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		t.Logf("%s: %v", what, err)
		if !deliver.IsPermanent(err) {
			t.Errorf("%s: not permanent: %v", what, err)
		}
		for _, s := range []string{srv.SecretKey, wrong} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error shows a secret key: %v", what, err)
			}
		}
		if !strings.Contains(err.Error(), "s3://"+bucket+"/") {
			t.Errorf("%s: error does not name the bucket: %v", what, err)
		}
	}
	checkPermanent("wrong secret Put", bad.Put(ctx, "x.bin", src))
	_, err = bad.Has(ctx, "x.bin", src)
	checkPermanent("wrong secret Has", err)
	checkPermanent("wrong secret Remove", bad.Remove(ctx, "x.bin"))
	big, _ := writeFile(t, 12<<20, 10)
	checkPermanent("wrong secret multipart Put", bad.Put(ctx, "big.bin", big))

	// Unknown access key.
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKNOSUCHKEY0000")
	bad, err = New(ctx, c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkPermanent("unknown access key Put", bad.Put(ctx, "x.bin", src))

	// No such bucket.
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	cfg := c.cfg
	cfg.Bucket = "no-such-bucket"
	nb, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = nb.Put(ctx, "x.bin", src)
	if err == nil || !deliver.IsPermanent(err) {
		t.Errorf("no such bucket Put: %v (want permanent)", err)
	}
	_, err = nb.Has(ctx, "x.bin", src)
	if err == nil || !deliver.IsPermanent(err) {
		t.Errorf("no such bucket Has: %v (want permanent)", err)
	}

	// A local file of the wrong size.
	short := src
	short.Size++
	if err := c.Put(ctx, "x.bin", short); !deliver.IsPermanent(err) {
		t.Errorf("size mismatch: %v (want permanent)", err)
	}
}

func TestServerDownIsTransient(t *testing.T) {
	srv, c := env(t, false, func(c *Config) { c.MaxAttempts = 2 })
	srv.Stop()
	src, _ := writeFile(t, 1<<10, 11)
	err := c.Put(context.Background(), "x.bin", src)
	if err == nil || deliver.IsPermanent(err) {
		t.Fatalf("Put to a stopped server: %v (want a transient error)", err)
	}
	t.Logf("server down: %v", err)
	_, err = c.Has(context.Background(), "x.bin", src)
	if err == nil || deliver.IsPermanent(err) {
		t.Fatalf("Has on a stopped server: %v (want a transient error)", err)
	}
}

// TestThroughput uploads a 200 MiB file over loopback HTTP with Put and
// with one plain PutObject, and logs MB/s. Run it with
// EXPORTER_S3_THROUGHPUT=1 (and without -race for meaningful numbers).
func TestThroughput(t *testing.T) {
	if os.Getenv("EXPORTER_S3_THROUGHPUT") != "1" {
		t.Skip("set EXPORTER_S3_THROUGHPUT=1 to measure")
	}
	srv, c := env(t, os.Getenv("EXPORTER_S3_THROUGHPUT_TLS") == "1", func(c *Config) {
		c.PartSize = DefaultPartSize
		c.Logger = slog.New(slog.DiscardHandler)
	})
	const size = 200 << 20
	src, _ := writeFile(t, size, 12)
	ctx := context.Background()
	mbps := func(d time.Duration) float64 { return size / 1e6 / d.Seconds() }
	for i := range 2 {
		start := time.Now()
		if err := c.Put(ctx, "t.bin", src); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		t.Logf("Put (multipart %d MiB x %d, verify included) run %d: %.2fs, %.0f MB/s", c.cfg.PartSize>>20, c.cfg.Concurrency, i, d.Seconds(), mbps(d))
	}
	raw := srv.Client(t)
	for i := range 2 {
		f, err := os.Open(src.Path)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = raw.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain.bin"), Body: f, ContentLength: aws.Int64(size)})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		t.Logf("plain PutObject run %d: %.2fs, %.0f MB/s", i, d.Seconds(), mbps(d))
	}
}

func TestMD5Reader(t *testing.T) {
	for _, size := range []int{0, 1000, 5 << 20, 11<<20 + 7} {
		src, _ := writeFile(t, size, uint64(size))
		f, err := os.Open(src.Path)
		if err != nil {
			t.Fatal(err)
		}
		r := &md5Reader{f: f, partSize: 5 << 20, cur: md5.New()}
		if _, err := r.Seek(0, io.SeekEnd); err != nil { // as SeekerLen does
			t.Fatal(err)
		}
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 3<<20+1) // reads straddle part ends
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
			t.Fatal(err)
		}
		multi := size >= 5<<20
		want, err := md5ETag(f, int64(size), map[bool]int64{true: 5 << 20}[multi])
		if err != nil {
			t.Fatal(err)
		}
		if got := r.etag(int64(size), multi); got != want {
			t.Errorf("%d bytes: etag %q, want %q", size, got, want)
		}
		f.Close()
	}
}

// TestVerifyMismatch: an object whose ETag does not match the local file
// is an error (not permanent) and is taken down.
func TestVerifyMismatch(t *testing.T) {
	for _, size := range []int{1 << 10, 12 << 20} {
		srv, c := env(t, false, nil)
		ctx := context.Background()
		a, _ := writeFile(t, size, 21)
		b, _ := writeFile(t, size, 22)
		if err := c.Put(ctx, "m.bin", a); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(b.Path)
		if err != nil {
			t.Fatal(err)
		}
		err = c.verify(ctx, c.Key("m.bin"), f, &md5Reader{bad: true}, b, size >= 5<<20)
		f.Close()
		if err == nil || deliver.IsPermanent(err) || !strings.Contains(err.Error(), "ETag") {
			t.Fatalf("%d bytes: verify against other content: %v", size, err)
		}
		t.Logf("mismatch: %v", err)
		noUploadsNoObject(t, srv, c.Key("m.bin"))
	}
}
