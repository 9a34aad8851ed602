// Package s3 delivers files to Amazon S3 or an S3-compatible server
// (MinIO, Ceph, versitygw, ...).
//
// Credentials come from the AWS SDK's default chain (environment, shared
// profile, web identity, container or instance role); nothing secret is
// ever put in a Config. Uploads go through the SDK's transfer manager:
// large files as multipart uploads with a bounded number of part buffers
// in memory (about (Concurrency+1) x PartSize), small ones as a single
// PutObject. Either way the object appears under its key only once it is
// complete, and a failed or cancelled multipart upload is aborted.
//
// After each upload the object is checked with HeadObject: its size, and
// its ETag against the MD5 (or, for multipart uploads, the MD5 of the part
// MD5s) computed from the local file. The file's SHA-256 is stored as the
// object's user metadata "sha256", which Has compares.
//
// Errors are classified, not retried here: bad credentials, a missing
// bucket and other 4xx answers are wrapped with deliver.Permanent; 5xx,
// throttling, timeouts and broken connections are left transient for the
// retry decorator. The SDK's own per-request retryer still retries each
// request (and each part) a few times.
package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/exporter-dev/exporter/internal/deliver"
)

// Defaults and limits.
const (
	DefaultPartSize    = 8 << 20
	DefaultConcurrency = 4
	DefaultPresignTTL  = time.Hour
	DefaultMaxAttempts = 5

	minPartSize    = 5 << 20 // S3's minimum for all parts but the last
	maxPartSize    = 5 << 30
	maxUploadParts = 10000
	maxPresignTTL  = 7 * 24 * time.Hour // SigV4 limit

	// failTimeout bounds the clean-up (AbortMultipartUpload) that runs on
	// a fresh context after an upload failed or its context was cancelled.
	failTimeout = 30 * time.Second

	// MetaSHA256 is the user-metadata key holding the file's SHA-256 (hex).
	MetaSHA256 = "sha256"
)

// Config describes one S3 destination.
type Config struct {
	Bucket string
	// Prefix is put before every name ("exports/2024/"); a missing
	// trailing slash is added.
	Prefix string
	// Endpoint is the base URL of an S3-compatible server
	// ("https://minio.example:9000"); empty means AWS.
	Endpoint string
	// PathStyle addresses the bucket in the path (endpoint/bucket/key)
	// rather than the host name, as most S3-compatible servers need.
	PathStyle bool
	// Region overrides the region from the environment or profile.
	// Empty with no region anywhere means us-east-1.
	Region string
	// SSE is the server-side encryption: "", "AES256" or "aws:kms".
	SSE string
	// KMSKeyID is the KMS key for SSE "aws:kms" (empty: the bucket's or
	// account's default key).
	KMSKeyID string
	// StorageClass such as STANDARD_IA; empty leaves the bucket default.
	StorageClass string
	// PresignTTL is how long a presigned URL stays valid (default 1h,
	// at most 7 days).
	PresignTTL time.Duration
	// PartSize of a multipart upload (default 8 MiB, at least 5 MiB).
	// Files smaller than one part go up in a single PutObject.
	PartSize int64
	// Concurrency is the number of parts in flight (default 4).
	Concurrency int
	// MaxAttempts per S3 request, for the SDK's retryer (default 5).
	MaxAttempts int
	Logger      *slog.Logger
}

// Client is an S3 destination.
type Client struct {
	cfg     Config
	s3      *s3.Client
	tm      *transfermanager.Client
	presign *s3.PresignClient
	log     *slog.Logger

	bucketSeen atomic.Bool
}

var (
	_ deliver.Destination = (*Client)(nil)
	_ deliver.Remover     = (*Client)(nil)
	_ deliver.Checker     = (*Client)(nil)
	_ deliver.Presigner   = (*Client)(nil)
)

// ParseURL splits s3://bucket/prefix/ into bucket and prefix. The prefix
// has no leading slash and, unless empty, ends in one.
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("s3: bad URL %q: %w", s, err)
	}
	if u.Scheme != "s3" {
		return "", "", fmt.Errorf("s3: URL %q: scheme must be s3://", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return "", "", fmt.Errorf("s3: URL %q: want s3://bucket/prefix/ only", s)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("s3: URL %q: no bucket", s)
	}
	return u.Host, normPrefix(u.Path), nil
}

func normPrefix(p string) string {
	p = strings.TrimLeft(p, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// New checks cfg, loads the AWS configuration from the default chain and
// returns a client. It makes no request.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	cfg.Prefix = normPrefix(cfg.Prefix)
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < minPartSize || cfg.PartSize > maxPartSize {
		return nil, fmt.Errorf("s3: part size %d out of range [%d, %d]", cfg.PartSize, minPartSize, maxPartSize)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.PresignTTL <= 0 {
		cfg.PresignTTL = DefaultPresignTTL
	}
	if cfg.PresignTTL > maxPresignTTL {
		return nil, fmt.Errorf("s3: presign TTL %s over the 7-day limit", cfg.PresignTTL)
	}
	switch cfg.SSE {
	case "", string(types.ServerSideEncryptionAes256):
		if cfg.KMSKeyID != "" {
			return nil, errors.New(`s3: a KMS key needs SSE "aws:kms"`)
		}
	case string(types.ServerSideEncryptionAwsKms):
	default:
		return nil, fmt.Errorf(`s3: SSE %q: want "AES256" or "aws:kms"`, cfg.SSE)
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3: endpoint %q: want http(s)://host[:port]", redactURL(cfg.Endpoint))
		}
		if u.User != nil {
			return nil, errors.New("s3: endpoint must not hold credentials")
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}

	// The SDK's own buildable client, not an *http.Client: with
	// AWS_CA_BUNDLE set, LoadDefaultConfig can only add the CA to a
	// BuildableClient and fails on anything else.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, 2*cfg.Concurrency+2)
	})
	maxAttempts := cfg.MaxAttempts
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		// Default checksums (CRC32/CRC64NVME with aws-chunked trailers,
		// since SDK releases of early 2025) are refused by many
		// S3-compatible servers: compute and validate them only where
		// the API requires.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
		// No client-side retry quota: concurrent part failures would
		// drain the shared token bucket and fail parts without retrying.
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	cfg.Region = awsCfg.Region

	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	tm := transfermanager.New(s3c, func(o *transfermanager.Options) {
		o.PartSizeBytes = cfg.PartSize
		// Files of at least one part go multipart, so the first read
		// buffers one part, not the default 16 MiB threshold.
		o.MultipartUploadThreshold = cfg.PartSize
		o.Concurrency = cfg.Concurrency
		o.FailTimeout = failTimeout
		// The transfer manager sets the checksum mode on every request
		// itself and does not inherit the client's (aws-sdk-go-v2 #3469).
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ChecksumAlgorithm = ""
		o.DisableChecksumValidation = true
	})
	return &Client{
		cfg:     cfg,
		s3:      s3c,
		tm:      tm,
		presign: s3.NewPresignClient(s3c),
		log:     log.With("dest", "s3", "bucket", cfg.Bucket),
	}, nil
}

// String names the destination, e.g. s3://bucket/prefix/ or
// s3://bucket/prefix/ at http://127.0.0.1:9000.
func (c *Client) String() string {
	s := "s3://" + c.cfg.Bucket + "/" + c.cfg.Prefix
	if c.cfg.Endpoint != "" {
		s += " at " + redactURL(c.cfg.Endpoint)
	}
	return s
}

// Key is the object key for a name: the prefix joined with it.
func (c *Client) Key(name string) string {
	return c.cfg.Prefix + strings.TrimLeft(name, "/")
}

// S3 exposes the underlying SDK client (for tests and tools).
func (c *Client) S3() *s3.Client { return c.s3 }

func (c *Client) where(key string) string { return "s3://" + c.cfg.Bucket + "/" + key }

// Put uploads src as name: multipart from the file when it is at least one
// part, a single PutObject otherwise; then checks what arrived.
func (c *Client) Put(ctx context.Context, name string, src deliver.File) error {
	key := c.Key(name)
	f, err := os.Open(src.Path)
	if err != nil {
		return deliver.Permanent(fmt.Errorf("s3: put %s: %w", c.where(key), err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return deliver.Permanent(fmt.Errorf("s3: put %s: %w", c.where(key), err))
	}
	if fi.Size() != src.Size {
		return deliver.Permanent(fmt.Errorf("s3: put %s: %s is %d bytes, expected %d", c.where(key), src.Path, fi.Size(), src.Size))
	}

	// The transfer manager reads the file once, in order: hash the parts
	// on the way for the ETag check, instead of reading it again.
	body := &md5Reader{f: f, partSize: partSizeFor(src.Size, c.cfg.PartSize), cur: md5.New()}
	in := &transfermanager.UploadObjectInput{
		Bucket:        aws.String(c.cfg.Bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(src.Size),
	}
	if src.ContentType != "" {
		in.ContentType = aws.String(src.ContentType)
	}
	if src.SHA256 != "" {
		in.Metadata = map[string]string{MetaSHA256: strings.ToLower(src.SHA256)}
	}
	if c.cfg.SSE != "" {
		in.ServerSideEncryption = tmtypes.ServerSideEncryption(c.cfg.SSE)
		if c.cfg.KMSKeyID != "" {
			in.SSEKMSKeyID = aws.String(c.cfg.KMSKeyID)
		}
	}
	if c.cfg.StorageClass != "" {
		in.StorageClass = tmtypes.StorageClass(c.cfg.StorageClass)
	}

	start := time.Now()
	out, err := c.tm.UploadObject(ctx, in)
	if err != nil {
		err = c.classify("put", key, err)
		var pe *deliver.PermanentError
		if src.Size >= c.cfg.PartSize && !errors.As(err, &pe) {
			c.abortStale(ctx, key, start)
		}
		return err
	}
	el := time.Since(start)
	c.log.Debug("s3 put", "key", key, "bytes", src.Size, "multipart", out.UploadID != nil,
		"seconds", el.Seconds(), "MBps", float64(src.Size)/1e6/max(el.Seconds(), 1e-9))
	return c.verify(ctx, key, f, body, src, out.UploadID != nil)
}

// abortStale is a best-effort sweep after a failed multipart upload: the
// transfer manager aborts its upload, but not one whose
// CreateMultipartUpload answer was lost, nor when the abort itself failed.
// Uploads of this key begun since this Put started are aborted.
func (c *Client) abortStale(ctx context.Context, key string, since time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failTimeout)
	defer cancel()
	out, err := c.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(c.cfg.Bucket),
		Prefix: aws.String(key),
	})
	if err != nil {
		c.log.Debug("s3 list multipart uploads after failure", "key", key, "err", err)
		return
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) != key || u.Initiated == nil || u.Initiated.Before(since.Add(-time.Minute)) {
			continue
		}
		_, err := c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(c.cfg.Bucket),
			Key:      u.Key,
			UploadId: u.UploadId,
		})
		c.log.Debug("s3 aborted leftover multipart upload", "key", key, "upload", aws.ToString(u.UploadId), "err", err)
	}
}

var (
	reSingleETag = regexp.MustCompile(`^[0-9a-f]{32}$`)
	reMultiETag  = regexp.MustCompile(`^[0-9a-f]{32}-([0-9]+)$`)
)

// verify checks the uploaded object's size and ETag against the local file.
// A mismatch removes the object (it must not stand under its final name)
// and is a transient error: a new upload may well succeed.
func (c *Client) verify(ctx context.Context, key string, f *os.File, hashed *md5Reader, src deliver.File, multipart bool) error {
	head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return c.classify("verify", key, err)
	}
	if n := aws.ToInt64(head.ContentLength); n != src.Size {
		return c.mismatch(ctx, key, fmt.Errorf("s3: verify %s: size %d, local file %d bytes", c.where(key), n, src.Size))
	}
	etag := strings.ToLower(strings.Trim(aws.ToString(head.ETag), `"`))
	if c.cfg.SSE == string(types.ServerSideEncryptionAwsKms) {
		// SSE-KMS ETags are not MD5s.
		return nil
	}
	var want string
	switch m := reMultiETag.FindStringSubmatch(etag); {
	case reSingleETag.MatchString(etag) && !multipart:
		if want = hashed.etag(src.Size, false); want == "" {
			c.log.Debug("s3: reading the file again for its MD5", "key", key)
			want, err = md5ETag(f, src.Size, 0)
		}
	case m != nil && multipart:
		parts, _ := strconv.ParseInt(m[1], 10, 64)
		ps := partSizeFor(src.Size, c.cfg.PartSize)
		if got := (src.Size + ps - 1) / ps; got != parts && !(src.Size == 0 && parts == 1) {
			c.log.Warn("s3: multipart ETag part count differs from the part size used; checked size only",
				"key", key, "etag", etag, "parts", parts, "expected", got)
			return nil
		}
		if want = hashed.etag(src.Size, true); want == "" {
			c.log.Debug("s3: reading the file again for its MD5", "key", key)
			want, err = md5ETag(f, src.Size, ps)
		}
	default:
		c.log.Debug("s3: ETag not an MD5 form; checked size only", "key", key, "etag", etag, "multipart", multipart)
		return nil
	}
	if err != nil {
		return fmt.Errorf("s3: verify %s: read %s: %w", c.where(key), src.Path, err)
	}
	if want != etag {
		return c.mismatch(ctx, key, fmt.Errorf("s3: verify %s: ETag %s, local file gives %s", c.where(key), etag, want))
	}
	return nil
}

func (c *Client) mismatch(ctx context.Context, key string, err error) error {
	if rerr := c.Remove(context.WithoutCancel(ctx), strings.TrimPrefix(key, c.cfg.Prefix)); rerr != nil {
		return fmt.Errorf("%w (and removing it failed: %v)", err, rerr)
	}
	return err
}

// partSizeFor mirrors the transfer manager: the part size grows when the
// file would need more than 10,000 parts.
func partSizeFor(size, partSize int64) int64 {
	if size/partSize >= maxUploadParts {
		return size/maxUploadParts + 1
	}
	return partSize
}

// md5Reader reads the file for the upload and keeps the MD5 of each part
// of partSize bytes as it goes by. Should the reads not cover the file
// once in order (a seek elsewhere), etag gives up and the file is read
// again.
type md5Reader struct {
	f        *os.File
	partSize int64
	off, pos int64 // file offset; bytes hashed in order
	cur      hash.Hash
	inPart   int64
	sums     []byte
	parts    int
	bad      bool
}

func (r *md5Reader) Read(p []byte) (int, error) {
	if r.off != r.pos {
		r.bad = true
	}
	n, err := r.f.Read(p)
	r.off += int64(n)
	if r.bad {
		return n, err
	}
	r.pos += int64(n)
	for b := p[:n]; len(b) > 0; {
		k := min(int64(len(b)), r.partSize-r.inPart)
		r.cur.Write(b[:k])
		r.inPart += k
		b = b[k:]
		if r.inPart == r.partSize {
			r.sums = r.cur.Sum(r.sums)
			r.parts++
			r.cur.Reset()
			r.inPart = 0
		}
	}
	return n, err
}

func (r *md5Reader) Seek(offset int64, whence int) (int64, error) {
	n, err := r.f.Seek(offset, whence)
	if err == nil {
		r.off = n
	}
	return n, err
}

// etag is the ETag of the size bytes read, or "" when they were not all
// read in order.
func (r *md5Reader) etag(size int64, multipart bool) string {
	if r.bad || r.pos != size {
		return ""
	}
	sums, parts := r.sums, r.parts
	if r.inPart > 0 || parts == 0 {
		sums = r.cur.Sum(sums)
		parts++
	}
	if !multipart {
		if parts != 1 {
			return ""
		}
		return hex.EncodeToString(sums)
	}
	sum := md5.Sum(sums)
	return hex.EncodeToString(sum[:]) + "-" + strconv.Itoa(parts)
}

// md5ETag computes the S3 ETag of the file's first size bytes: the hex MD5
// when partSize is 0, else the MD5 of the parts' MD5s followed by -N.
func md5ETag(f *os.File, size, partSize int64) (string, error) {
	r := io.NewSectionReader(f, 0, size)
	if partSize == 0 {
		h := md5.New()
		if _, err := io.Copy(h, r); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	var sums []byte
	n := 0
	for off := int64(0); off < size || n == 0; off += partSize {
		h := md5.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, off, min(partSize, size-off))); err != nil {
			return "", err
		}
		sums = h.Sum(sums)
		n++
	}
	sum := md5.Sum(sums)
	return hex.EncodeToString(sum[:]) + "-" + strconv.Itoa(n), nil
}

// Has reports whether the object exists with src's size and SHA-256.
func (c *Client) Has(ctx context.Context, name string, src deliver.File) (bool, error) {
	key := c.Key(name)
	head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			// A HEAD answer has no body, so a missing bucket looks
			// like a missing key: ask about the bucket (once).
			if err := c.checkBucket(ctx, key); err != nil {
				return false, err
			}
			return false, nil
		}
		return false, c.classify("head", key, err)
	}
	if aws.ToInt64(head.ContentLength) != src.Size || src.SHA256 == "" {
		return false, nil
	}
	for k, v := range head.Metadata {
		if strings.EqualFold(k, MetaSHA256) {
			return strings.EqualFold(v, src.SHA256), nil
		}
	}
	return false, nil
}

// checkBucket returns a permanent error when the bucket does not exist.
// Once the bucket was seen, it is not asked again. Other answers (such as
// 403 for want of s3:ListBucket) are no evidence and pass.
func (c *Client) checkBucket(ctx context.Context, key string) error {
	if c.bucketSeen.Load() {
		return nil
	}
	_, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(c.cfg.Bucket)})
	var re *awshttp.ResponseError
	switch {
	case err == nil:
		c.bucketSeen.Store(true)
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound:
		return deliver.Permanent(fmt.Errorf("s3: head %s: no such bucket: %w", c.where(key), err))
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return c.classify("head bucket", key, err)
	}
	return nil
}

// Remove deletes the object; one that is not there is no error.
func (c *Client) Remove(ctx context.Context, name string) error {
	key := c.Key(name)
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		return c.classify("delete", key, err)
	}
	return nil
}

// Presign returns a GET URL for the object, valid for PresignTTL. It signs
// locally and makes no request.
func (c *Client) Presign(ctx context.Context, name string, src deliver.File) (string, error) {
	key := c.Key(name)
	req, err := c.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(c.cfg.Bucket),
		Key:    aws.String(key),
	}, s3.WithPresignExpires(c.cfg.PresignTTL))
	if err != nil {
		return "", c.classify("presign", key, err)
	}
	return req.URL, nil
}

func isNotFound(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		var ae smithy.APIError
		// A missing bucket is also a 404, and is no "not there" answer.
		return !(errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket")
	}
	var nk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nk) || errors.As(err, &nf)
}

// Codes that are transient despite a 4xx status.
var transientCodes = map[string]bool{
	"RequestTimeout":            true,
	"RequestTimeTooSkewed":      true, // the SDK corrects its clock skew
	"ExpiredToken":              true, // refreshed credentials may mend it
	"TokenRefreshRequired":      true,
	"SlowDown":                  true,
	"Throttling":                true,
	"ThrottlingException":       true,
	"RequestThrottled":          true,
	"TooManyRequests":           true,
	"OperationAborted":          true, // a conflicting operation in progress
	"InternalError":             true,
	"ServiceUnavailable":        true,
	"BadDigest":                 true, // corrupted in transit
	"IncompleteBody":            true,
	"XAmzContentSHA256Mismatch": true,
}

// Codes that are permanent whatever the status.
var permanentCodes = map[string]bool{
	"AccessDenied":                 true,
	"AllAccessDisabled":            true,
	"NoSuchBucket":                 true,
	"InvalidAccessKeyId":           true,
	"SignatureDoesNotMatch":        true,
	"InvalidBucketName":            true,
	"AuthorizationHeaderMalformed": true,
	"KMS.NotFoundException":        true,
	"InvalidStorageClass":          true,
	"PermanentRedirect":            true,
	"InvalidRequest":               true,
}

// classify names the bucket and key in err and marks it permanent when
// retrying cannot help. Cancellation stays as it is (deliver.IsPermanent
// already treats it as final).
func (c *Client) classify(op, key string, err error) error {
	err = fmt.Errorf("s3: %s %s: %w", op, c.where(key), err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isPermanent(err) {
		return deliver.Permanent(err)
	}
	return err
}

func isPermanent(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if transientCodes[code] {
			return false
		}
		if permanentCodes[code] {
			return true
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		s := re.HTTPStatusCode()
		return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
	}
	// Network errors (refused, reset, timeouts, DNS) and anything else
	// without an HTTP answer: transient.
	return false
}

// redactURL drops user info and query from a URL for logs and errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
