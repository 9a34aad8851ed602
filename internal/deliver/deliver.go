// Package deliver hands finished files to destinations: a local folder,
// S3 or SFTP. A destination is a few methods; extra abilities are small
// interfaces found by type assertion, and retry is a decorator (WithRetry)
// around any destination, not code inside each one.
package deliver

import (
	"context"
	"errors"
)

// Destination receives finished files. A file must appear under its final
// name only when complete, so a client polling the destination never
// reads a partial one.
type Destination interface {
	// Put stores the local file at path as name. Its size and SHA-256 (hex)
	// are known up front, so a destination can verify what arrived and
	// record the checksum for the client.
	Put(ctx context.Context, name string, src File) error
	// String names the destination for logs, without secrets.
	String() string
}

// File is a finished local file to deliver.
type File struct {
	Path   string
	Size   int64
	SHA256 string // hex
	// ContentType is the MIME type, such as
	// application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.
	ContentType string
}

// Remover is a destination that can delete a file it holds. The pipeline
// uses it to take down an earlier manifest before replacing the files it
// describes.
type Remover interface {
	Remove(ctx context.Context, name string) error
}

// Checker is a destination that can tell whether it already holds a file
// with the given size and SHA-256, so a re-run sends only what is missing.
type Checker interface {
	Has(ctx context.Context, name string, src File) (bool, error)
}

// Presigner is a destination that can hand out a time-limited URL to
// download a file it holds.
type Presigner interface {
	Presign(ctx context.Context, name string, src File) (string, error)
}

// Closer is a destination holding a connection to close after delivery.
type Closer interface {
	Close() error
}

// PermanentError marks a failure that retrying cannot mend: bad
// credentials, no such bucket, permission denied, a refused host key.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError (nil stays nil).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err must not be retried: a PermanentError or
// a cancelled or expired context.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
