package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/exporter-dev/exporter/internal/deliver"
	"github.com/exporter-dev/exporter/internal/deliver/local"
	s3dest "github.com/exporter-dev/exporter/internal/deliver/s3"
	sftpdest "github.com/exporter-dev/exporter/internal/deliver/sftp"
	"github.com/exporter-dev/exporter/internal/pipeline"
	"github.com/spf13/cobra"
)

// destinationFlags are the flags of the S3 and SFTP destinations and of
// retrying.
type destinationFlags struct {
	S3Endpoint     string
	S3PathStyle    bool
	S3Region       string
	S3SSE          string
	S3KMSKeyID     string
	S3StorageClass string
	Presign        time.Duration

	SFTPKey            string
	SFTPKnownHosts     string
	SFTPInsecureAccept bool

	Retries      int
	RetryMaxWait time.Duration
}

func (f *destinationFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.S3Endpoint, "s3-endpoint", "", "S3 endpoint URL, for S3-compatible servers")
	fl.BoolVar(&f.S3PathStyle, "s3-path-style", false, "address S3 buckets by path (http://host/bucket), as S3-compatible servers often need")
	fl.StringVar(&f.S3Region, "s3-region", "", "S3 region (default from the AWS configuration)")
	fl.StringVar(&f.S3SSE, "s3-sse", "", "S3 server-side encryption: AES256 or aws:kms")
	fl.StringVar(&f.S3KMSKeyID, "s3-kms-key-id", "", "KMS key for --s3-sse aws:kms")
	fl.StringVar(&f.S3StorageClass, "s3-storage-class", "", "S3 storage class, such as STANDARD_IA")
	fl.DurationVar(&f.Presign, "presign", 0, "print presigned S3 download URLs valid this long, and put them in the manifest")
	fl.StringVar(&f.SFTPKey, "sftp-key", "", "SSH private key for SFTP (passphrase from $EXPORTER_SFTP_KEY_PASSPHRASE); else ssh-agent or $EXPORTER_SFTP_PASSWORD")
	fl.StringVar(&f.SFTPKnownHosts, "sftp-known-hosts", "", "known_hosts file for SFTP host keys (default ~/.ssh/known_hosts)")
	fl.BoolVar(&f.SFTPInsecureAccept, "sftp-insecure-accept-host-key", false, "accept any SFTP host key (insecure: for tests only)")
	fl.IntVar(&f.Retries, "retries", 5, "retries of a file after a transient delivery failure")
	fl.DurationVar(&f.RetryMaxWait, "retry-max-wait", 30*time.Second, "longest wait between delivery retries")
	_ = cmd.RegisterFlagCompletionFunc("s3-sse", cobra.FixedCompletions([]string{"AES256", "aws:kms"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("sftp-key")
	_ = cmd.MarkFlagFilename("sftp-known-hosts")
}

// scheme is the kind of an --out: "" for a local folder, s3 or sftp.
func scheme(out string) string {
	if u, err := url.Parse(out); err == nil && len(u.Scheme) > 1 {
		return strings.ToLower(u.Scheme)
	}
	return ""
}

// checkDestinations checks the --out values and the destination flags.
func (o *exportOptions) checkDestinations() error {
	for _, out := range o.Out {
		switch s := scheme(out); s {
		case "":
		case "s3":
			if _, _, err := s3dest.ParseURL(out); err != nil {
				return usagef("--out %s: %w", out, err)
			}
		case "sftp":
			if _, _, _, _, err := sftpdest.ParseURL(out); err != nil {
				return usagef("--out: %w", err)
			}
		default:
			return usagef("--out %s: unknown destination scheme %q: give a local folder, s3://bucket/prefix/ or sftp://user@host/path/", out, s)
		}
	}
	if o.Retries < 0 {
		return usagef("--retries must not be negative")
	}
	if o.Presign < 0 {
		return usagef("--presign must not be negative")
	}
	switch o.S3SSE {
	case "", "AES256", "aws:kms":
	default:
		return usagef("--s3-sse must be AES256 or aws:kms, not %q", o.S3SSE)
	}
	return nil
}

// destinations opens every --out, each wrapped in the retry policy.
func (o *exportOptions) destinations(ctx context.Context, a *app) ([]deliver.Destination, error) {
	policy := deliver.RetryPolicy{Retries: o.Retries, MaxWait: o.RetryMaxWait, Logger: a.logger}
	var dests []deliver.Destination
	for _, out := range o.Out {
		var d deliver.Destination
		var err error
		switch scheme(out) {
		case "":
			d, err = local.New(out)
		case "s3":
			d, err = o.s3Destination(ctx, a, out)
		case "sftp":
			d, err = o.sftpDestination(a, out)
		}
		if err != nil {
			closeDestinations(dests)
			return nil, &pipeline.OutputError{Err: err}
		}
		dests = append(dests, deliver.WithRetry(d, policy))
	}
	return dests, nil
}

func (o *exportOptions) s3Destination(ctx context.Context, a *app, out string) (deliver.Destination, error) {
	bucket, prefix, err := s3dest.ParseURL(out)
	if err != nil {
		return nil, err
	}
	return s3dest.New(ctx, s3dest.Config{
		Bucket: bucket, Prefix: prefix, Endpoint: o.S3Endpoint, PathStyle: o.S3PathStyle, Region: o.S3Region,
		SSE: o.S3SSE, KMSKeyID: o.S3KMSKeyID, StorageClass: o.S3StorageClass, PresignTTL: o.Presign, Logger: a.logger,
	})
}

func (o *exportOptions) sftpDestination(a *app, out string) (deliver.Destination, error) {
	user, host, port, path, err := sftpdest.ParseURL(out)
	if err != nil {
		return nil, err
	}
	passphrase, password := a.getenv("EXPORTER_SFTP_KEY_PASSPHRASE"), a.getenv("EXPORTER_SFTP_PASSWORD")
	for _, s := range []string{passphrase, password} {
		if s != "" {
			a.secrets = append(a.secrets, s)
		}
	}
	return sftpdest.New(sftpdest.Config{
		User: user, Host: host, Port: port, Path: path,
		KeyFile: o.SFTPKey, KeyPassphrase: passphrase, Password: password,
		UseAgent:       o.SFTPKey == "" && password == "" && a.getenv("SSH_AUTH_SOCK") != "",
		KnownHostsFile: o.SFTPKnownHosts, InsecureAcceptHostKey: o.SFTPInsecureAccept, Logger: a.logger,
	})
}

func closeDestinations(dests []deliver.Destination) {
	for _, d := range dests {
		if c, ok := deliver.As[deliver.Closer](d); ok {
			_ = c.Close()
		}
	}
}

// workDir makes the private folder for spill and staged files: inside
// --work-dir, else inside the first local --out (so delivery there is a
// rename on the same file system), else in the system's temporary folder.
func (o *exportOptions) workDir() (string, error) {
	parent := o.WorkDir
	if parent == "" {
		for _, out := range o.Out {
			if scheme(out) == "" {
				parent = out
				break
			}
		}
	}
	if parent == "" {
		parent = os.TempDir()
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", &pipeline.OutputError{Err: fmt.Errorf("work folder: %w", err)}
	}
	work, err := os.MkdirTemp(parent, ".exporter-work-")
	if err != nil {
		return "", &pipeline.OutputError{Err: fmt.Errorf("work folder %s is not writable: %w", parent, err)}
	}
	return work, nil
}
