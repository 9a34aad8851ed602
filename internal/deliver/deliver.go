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

// Remover is a destination that can delete a file it holds. The pipeline
// uses it to take down an earlier manifest before replacing the files it
// describes, and to take back files of a delivery that failed part way.
type Remover interface {
	Remove(ctx context.Context, name string) error
}
