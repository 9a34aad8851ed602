package s3test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := Start(t, tc.tls)
			if tc.tls && srv.CAFile == "" {
				t.Fatal("no CA file over TLS")
			}
			srv.CreateBucket(t, "bucket1")
			ctx := context.Background()
			c := srv.Client(t)
			roundTrip := func() {
				t.Helper()
				want := []byte("hello versitygw")
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String("bucket1"), Key: aws.String("d/x.txt"), Body: bytes.NewReader(want),
				}); err != nil {
					t.Fatalf("put: %v", err)
				}
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket1"), Key: aws.String("d/x.txt")})
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				got, _ := io.ReadAll(out.Body)
				out.Body.Close()
				if !bytes.Equal(got, want) {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			roundTrip()

			srv.Stop()
			if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("bucket1")}); err == nil {
				t.Fatal("server answered while stopped")
			}
			srv.Restart()
			roundTrip()
		})
	}
}
