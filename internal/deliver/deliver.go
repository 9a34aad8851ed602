// Package deliver hands finished files to destinations: a local folder
// here, S3 and SFTP beside it.
package deliver

import "context"

// Destination receives finished files. A file must appear under its final
// name only when complete, so a client polling the destination never
// reads a partial one.
type Destination interface {
	// Put stores the local file at path as name.
	Put(ctx context.Context, name, path string) error
	// String names the destination for logs, without secrets.
	String() string
}
